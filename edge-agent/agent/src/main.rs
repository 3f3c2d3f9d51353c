//! `edge-agent`: the binary on the box beside the intersection. It parses the command line and hands each
//! command to the library (`edge_agent::*`), where the work lives.

use clap::Parser;
use edge_agent::boot::{init_logging, load_onnx_runtime, open_store};
use edge_agent::cli::{
    CameraCommand, Cli, Command, ConfigCommand, ControllerCommand, EvidenceCommand as Ev, SceneCommand,
};
use edge_agent::tools::{bench, camera, doctor, eval, evidence, evidence_crash as crash, fuzz, scene};
use edge_agent::{config, signal_input, supervisor};
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let ok = match Cli::parse().command {
        Command::Run { config, exit_when_done, drain_timeout, log_json } => {
            init_logging(log_json);
            let config = config.load()?;
            let drain = Duration::from_secs(drain_timeout);
            let stop = supervisor::wait_for_signal();
            tokio::runtime::Runtime::new()?.block_on(supervisor::run(config, exit_when_done, drain, stop))?;
            true
        }
        Command::Evidence(command) => evidence_command(command)?,
        Command::Camera(CameraCommand::Bench { seconds, cameras }) => {
            camera::bench(seconds.max(1), &cameras).map(|_| true)?
        }
        Command::Camera(CameraCommand::Watch { source, seconds, transport }) => {
            init_logging(false);
            camera::watch(&source, seconds, &transport).map(|_| true)?
        }
        Command::Fuzz { inputs, seed } => fuzz::report(inputs, seed),
        Command::Controller(ControllerCommand::Token { name, cameras }) => {
            signal_input::print_new_token(&name, &cameras).map(|_| true)?
        }
        Command::Scene(SceneCommand::Check { config, camera, snapshot, out }) => {
            scene::check(&config.load()?, camera.as_deref(), snapshot.as_deref(), &out).map(|_| true)?
        }
        Command::Scene(SceneCommand::Replay { config, camera, labels, detections, dump_detections }) => {
            let config = config.load()?;
            scene::replay(&config, &camera, &labels, detections.as_deref(), dump_detections.as_ref()).map(|_| true)?
        }
        Command::Doctor { config } => doctor::run(&config.load()?)?,
        Command::Bench { config, quick, cameras, seconds, repeats, fps, gate_frames, soak_minutes, rtsp_server } => {
            let config = config.load()?;
            let defaults = if quick { bench::BenchOptions::quick() } else { bench::BenchOptions::full() };
            let options = bench::BenchOptions {
                cameras: cameras.unwrap_or(defaults.cameras.clone()),
                seconds: seconds.unwrap_or(defaults.seconds).max(1),
                repeats: repeats.unwrap_or(defaults.repeats).max(1),
                fps: fps.max(1),
                gate_frames: gate_frames.unwrap_or(defaults.gate_frames),
                soak_minutes,
                rtsp_server,
                ..defaults
            };
            bench::run(&config, &load_onnx_runtime(&config)?, &options).map(|_| true)?
        }
        Command::Eval(args) => {
            init_logging(false);
            eval::run(args).map(|_| true)?
        }
        Command::Config(ConfigCommand::Default) => {
            print!("{}", config::DEFAULT_TOML);
            true
        }
        Command::Config(ConfigCommand::Check { config }) => config::print_checked(&config.load()?).map(|_| true)?,
    };
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

/// `edge-agent evidence ...`; false when a check failed (exit status 1).
fn evidence_command(command: Ev) -> anyhow::Result<bool> {
    match command {
        Ev::List { config } => evidence::list(&*open_store(&config.load()?)?)?,
        Ev::Show { config, id } => evidence::show(&*open_store(&config.load()?)?, &id)?,
        Ev::Verify { config } => evidence::verify(&*open_store(&config.load()?)?)?,
        Ev::Export { config, ids, to } => evidence::export_all(&*open_store(&config.load()?)?, &ids, &to)?,
        Ev::Rebuild { config } => evidence::rebuild(&config.load()?)?,
        Ev::Send { config, timeout_s } => {
            init_logging(false);
            let config = config.load()?;
            let store = open_store(&config)?;
            let timeout = Duration::from_secs(timeout_s);
            tokio::runtime::Runtime::new()?.block_on(evidence::send(&config, store, timeout))?
        }
        Ev::SoakFill { config, records, days, media_kb } => {
            let config = config.load()?;
            evidence::soak_fill(&config, &*open_store(&config)?, records, days, media_kb)?
        }
        Ev::Key { config } => println!("{}", open_store(&config.load()?)?.device_key().public_hex()),
        Ev::CrashTest { cycles, dir, seed, max_kill_ms, mode } => {
            return crash::crash_test(cycles, dir.as_deref(), seed, max_kill_ms.max(1), mode);
        }
        Ev::CrashWriter { dir, seed, purge, keep_going, reserve_kb } => {
            crash::crash_writer(&dir, seed, crash::WriterOptions { purge, keep_going, reserve_kb })?
        }
        Ev::CrashRebuilder { dir } => crash::crash_rebuilder(&dir)?,
        Ev::Bench { records, media_kb } => evidence::bench(records.max(1), media_kb)?,
    }
    Ok(true)
}
