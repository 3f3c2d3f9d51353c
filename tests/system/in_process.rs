//! The agent's run started in-process through its library (not the binary), stopped by a future: the way a
//! test or another host embeds it. Every task the run starts must be joined when it returns.

use std::net::TcpStream;
use std::time::{Duration, Instant};
use te_system_tests::{free_port, replay_config, Central};

#[test]
fn a_run_started_in_process_ends_on_its_stop_future_with_every_task_joined() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = free_port();
    let central = Central::start(free_port(), &dir.path().join("central"));
    let path = replay_config(dir.path(), &format!("http://127.0.0.1:{}", central.port), "");
    let text = std::fs::read_to_string(&path).expect("config");
    // The project's models by absolute path: a test binary does not live where the agent's binary does.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (models, derived) = (root.join("models"), root.join(".local/models"));
    let text = text.replacen(
        "[paths]\n",
        &format!("[paths]\nproject_models = \"{}\"\nwheel_models = \"{}\"\n", models.display(), derived.display()),
        1,
    );
    std::fs::write(&path, format!("metrics_listen = \"127.0.0.1:{metrics}\"\n{text}")).expect("write config");
    let args = edge_agent::cli::ConfigArgs {
        config: Some(path),
        shared_dir: None,
        data_dir: None,
        model_dir: None,
        state_dir: None,
        central_url: None,
        device_token_file: None,
    };
    let config = args.load().expect("config loads");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = async move {
        let _ = stop_rx.await;
    };
    // A drain long enough that the stop watchdog (drain + 20 s) leaves a loaded test machine's debug build alone.
    let drain = Duration::from_secs(40);
    let run = runtime.spawn(edge_agent::supervisor::run(config, false, drain, stop));
    let up = Instant::now();
    while TcpStream::connect(("127.0.0.1", metrics)).is_err() {
        assert!(up.elapsed() < Duration::from_secs(90), "the run never opened its metrics endpoint");
        if run.is_finished() {
            panic!("the run ended before it was stopped: {:?}", runtime.block_on(run));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    stop_tx.send(()).expect("the run is waiting for its stop");
    let result = runtime.block_on(async { tokio::time::timeout(Duration::from_secs(90), run).await });
    let outcome = result.expect("the run ended within 90 s of its stop").expect("the run did not panic");
    outcome.expect("the run ends without error when stopped");
    // A run that left a task behind would still be listening.
    assert!(
        TcpStream::connect(("127.0.0.1", metrics)).is_err(),
        "the metrics endpoint still listens after the run returned: a task outlived it"
    );
}
