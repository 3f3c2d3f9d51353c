//! The edge agent as a library: the stages of the box beside the intersection, the supervisor that runs them,
//! and the tools around them. The `edge-agent` binary (`main.rs`) only parses the command line and dispatches.
//!
//! ```text
//!  cameras (te_camera) --bounded queue--> pipeline: detect -> track -> plates/helmets -> judge -> records
//!                                           |                                             |
//!  signal_input (controllers) --phases------+                          evidence store (te_evidence, sled)
//!                                                                                         |
//!  telemetry: /metrics, /healthz, heartbeat                         uplink (te_uplink) -> central service
//! ```
//!
//! - `cli`: the command line. `boot`: logging, store, ONNX Runtime and repository files, shared by commands.
//! - `config` (+ `profile`, the box profiles under it): the configuration and its validation.
//! - `supervisor`: `edge-agent run`, starting and stopping every stage.
//! - `pipeline`: the analysis stage (frames in, evidence records out) with its moments, overview picture and
//!   helmet checks.
//! - `signal_input`: signal phases posted by junction controllers.
//! - `telemetry`: metrics and health endpoint, per-stage latency, the heartbeat to the central service.
//! - `tools`: the other subcommands (evidence, eval, bench, doctor, scene, camera, fuzz).

pub mod boot;
pub mod cli;
pub mod config;
pub mod pipeline;
pub mod profile;
pub mod signal_input;
pub mod supervisor;
pub mod telemetry;
pub mod tools;
