//! Loading ONNX Runtime more than once in one process, as the tests of one test file do.

mod common;

/// Pins the defect where the second `Runtime::load` of a process failed with ONNX Runtime's "only one
/// environment is allowed per process", so that plain `cargo test` failed every test file with several tests.
#[test]
fn loading_the_runtime_twice_reuses_the_first_and_refuses_another_library() {
    let first = common::runtime();
    let again = te_infer::Runtime::load(&first.library).expect("the same library loads again");
    assert_eq!(again.library, first.library);

    let other = common::workspace_root().join("Cargo.toml");
    let err = te_infer::Runtime::load(&other).expect_err("a second, different library cannot be loaded");
    let message = err.to_string();
    assert!(message.contains("already loaded ONNX Runtime from"), "{message}");
    assert!(message.contains(&first.library.display().to_string()), "{message}");
}
