//! Operator's tools that drive the whole service in-process: the load benchmark and the fuzzer.

pub mod bench;
pub mod fuzz;
