//! `edge-agent doctor`: checks that this box can do its job, prints a table, exits non-zero on a blocking
//! problem. Checks read; they never create or change anything (the device key is not made here).

use crate::config::AgentConfig;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    /// Works, but someone should look.
    Warn,
    /// The agent cannot do its job.
    Fail,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub level: Level,
    pub detail: String,
}

fn check(name: impl Into<String>, level: Level, detail: impl Into<String>) -> Check {
    Check { name: name.into(), level, detail: detail.into() }
}

/// Elements the camera stage builds its pipelines from.
const REQUIRED_ELEMENTS: &[&str] = &[
    "urisourcebin",
    "parsebin",
    "decodebin",
    "videoconvert",
    "videoscale",
    "appsink",
    "rtspsrc",
    "h264parse",
    "h265parse",
    "mp4mux",
    "appsrc",
    "avdec_h264",
    "avdec_h265",
];
/// Hardware decoders a box profile may name.
const HW_DECODERS: &[&str] = &["nvh264dec", "nvh265dec", "nvv4l2decoder", "vah264dec", "vah265dec", "v4l2h264dec"];

fn gstreamer(config: &AgentConfig) -> Vec<Check> {
    let mut configured: Vec<&str> = config.cameras.iter().map(|c| c.decoder.trim()).filter(|d| !d.is_empty()).collect();
    configured.sort_unstable();
    configured.dedup();
    let mut names: Vec<&str> = REQUIRED_ELEMENTS.iter().chain(HW_DECODERS).copied().collect();
    names.extend(&configured);
    let probe = match te_camera::probe(&names) {
        Ok(p) => p,
        Err(e) => return vec![check("GStreamer", Level::Fail, e.to_string())],
    };
    let present = |n: &str| probe.elements.iter().any(|(e, ok)| e == n && *ok);
    let mut checks = vec![check("GStreamer", Level::Ok, probe.version.clone())];
    let missing: Vec<&str> = REQUIRED_ELEMENTS.iter().copied().filter(|e| !present(e)).collect();
    checks.push(if missing.is_empty() {
        check("GStreamer elements", Level::Ok, format!("all {} present", REQUIRED_ELEMENTS.len()))
    } else {
        check("GStreamer elements", Level::Fail, format!("missing {} (run scripts/setup)", missing.join(", ")))
    });
    let hw: Vec<&str> = HW_DECODERS.iter().copied().filter(|e| present(e)).collect();
    checks.push(check(
        "hardware decoders",
        Level::Ok,
        if hw.is_empty() { "none (software decoding)".to_string() } else { hw.join(", ") },
    ));
    for d in configured {
        if !present(d) {
            checks.push(check(format!("decoder {d}"), Level::Fail, "configured for a camera but not installed"));
        }
    }
    checks
}

fn models(config: &AgentConfig) -> Vec<Check> {
    let manifest = match te_infer::ModelManifest::embedded() {
        Ok(m) => m,
        Err(e) => return vec![check("model manifest", Level::Fail, e.to_string())],
    };
    let dirs = config.model_dirs();
    manifest
        .models
        .iter()
        .filter(|m| config.plates.enabled || !m.name.starts_with("plate"))
        .map(|m| match manifest.verified_path(&m.name, &dirs) {
            Ok(path) => check(format!("model {}", m.name), Level::Ok, format!("{} (sha256 matches)", path.display())),
            Err(e) => check(format!("model {}", m.name), Level::Fail, e.to_string()),
        })
        .collect()
}

fn runtime(config: &AgentConfig) -> Vec<Check> {
    let configured = (!config.paths.runtime_library.is_empty()).then(|| Path::new(&config.paths.runtime_library));
    let loaded = te_infer::resolve_runtime_library(configured).and_then(|path| te_infer::Runtime::load(&path));
    let runtime = match loaded {
        Ok(runtime) => runtime,
        Err(e) => return vec![check("ONNX Runtime", Level::Fail, e.to_string())],
    };
    let built_in = runtime.built_in_providers();
    let names = built_in.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ");
    let wanted = config.inference.provider;
    let provider = if built_in.contains(&wanted) {
        check("execution provider", Level::Ok, format!("{wanted} (built into the library)"))
    } else if config.inference.fallback_to_cpu {
        check("execution provider", Level::Warn, format!("{wanted} is not in this library: models run on the CPU"))
    } else {
        check("execution provider", Level::Fail, format!("{wanted} is not in this library (fallback_to_cpu = false)"))
    };
    vec![check("ONNX Runtime", Level::Ok, format!("{} (providers: {names})", runtime.library.display())), provider]
}

/// The profile in effect, and what auto-detection would choose here.
fn profile(config: &AgentConfig) -> Check {
    let (detected, why) = crate::profile::Facts::of_this_box().choose();
    match crate::profile::BoxProfile::named(&config.profile) {
        Ok(p) => check(
            "box profile",
            Level::Ok,
            format!("{}: {} (this box looks like {detected}: {why})", p.name, p.description),
        ),
        Err(e) => check("box profile", Level::Fail, e.to_string()),
    }
}

fn storage(config: &AgentConfig) -> Vec<Check> {
    let state = Path::new(&config.paths.state);
    let existing = state.ancestors().find(|p| p.exists()).unwrap_or(Path::new("."));
    let mut checks = Vec::new();
    let writable = std::fs::metadata(existing).map(|m| !m.permissions().readonly()).unwrap_or(false);
    checks.push(check(
        "state folder",
        if writable { Level::Ok } else { Level::Fail },
        format!("{} ({})", state.display(), if state.exists() { "exists" } else { "will be created" }),
    ));
    let quota = config.evidence.limits().quota_bytes;
    match (crate::telemetry::heartbeat::free_bytes(existing), quota) {
        (Some(free), Some(quota)) if free < quota / 10 => checks.push(check(
            "disk space",
            Level::Fail,
            format!("{} MiB free, less than a tenth of the evidence quota ({} MiB)", free >> 20, quota >> 20),
        )),
        (Some(free), Some(quota)) if free < quota => checks.push(check(
            "disk space",
            Level::Warn,
            format!(
                "{} MiB free, less than the evidence quota ({} MiB): the disk fills first",
                free >> 20,
                quota >> 20
            ),
        )),
        (Some(free), _) => checks.push(check("disk space", Level::Ok, format!("{} MiB free", free >> 20))),
        (None, _) => checks.push(check("disk space", Level::Warn, "could not be measured (df)")),
    }
    let key = state.join("device.key");
    checks.push(if key.is_file() {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
        if mode & 0o077 == 0 {
            check("device key", Level::Ok, format!("{} (mode {mode:o})", key.display()))
        } else {
            check(
                "device key",
                Level::Fail,
                format!("{} is readable by others (mode {mode:o}); chmod 600", key.display()),
            )
        }
    } else {
        check("device key", Level::Warn, format!("{} not made yet: it is created on the first run", key.display()))
    });
    checks.push(match crate::pipeline::overview::DataBarFont::load(Path::new(&config.evidence.data_bar_font)) {
        Ok(_) => check("data bar font", Level::Ok, config.evidence.data_bar_font.clone()),
        Err(e) => check("data bar font", Level::Fail, e.to_string()),
    });
    checks
}

/// RTSP cameras: can we open a TCP connection to the camera within 2 s? Files and folders: do they exist?
fn cameras(config: &AgentConfig) -> Vec<Check> {
    config
        .cameras
        .iter()
        .map(|c| {
            let name = format!("camera {}", c.id);
            if let Err(e) = c.check_source() {
                return check(name, Level::Fail, e.to_string());
            }
            if !c.is_live() {
                return check(name, Level::Ok, format!("{} (replay)", c.redacted_source()));
            }
            let authority = c.source.split_once("://").map_or("", |(_, r)| r).split('/').next().unwrap_or("");
            let host_port = authority.rsplit('@').next().unwrap_or("");
            let target = if host_port.contains(':') { host_port.to_string() } else { format!("{host_port}:554") };
            let reachable = std::net::ToSocketAddrs::to_socket_addrs(&target)
                .ok()
                .and_then(|mut a| a.next())
                .is_some_and(|addr| std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
            if reachable {
                check(name, Level::Ok, format!("{} reachable", c.redacted_source()))
            } else {
                // A camera that is down does not stop the box; it reconnects when the camera is back.
                check(name, Level::Warn, format!("{} not reachable now", c.redacted_source()))
            }
        })
        .collect()
}

async fn central(config: &AgentConfig) -> Vec<Check> {
    let client = match te_uplink::http_client(&config.uplink) {
        Ok(c) => c,
        Err(e) => return vec![check("central service", Level::Fail, e.to_string())],
    };
    let url = format!("{}/healthz", config.uplink.central_url.trim_end_matches('/'));
    let mut checks = vec![match client.get(&url).send().await {
        Ok(r) if r.status().is_success() => {
            check("central service", Level::Ok, format!("{} reachable", config.uplink.central_url))
        }
        Ok(r) => {
            check("central service", Level::Warn, format!("{} answered {}", config.uplink.central_url, r.status()))
        }
        // The box records offline and sends later: unreachable is a warning, not a failure.
        Err(e) => check("central service", Level::Warn, format!("{}: {e}", config.uplink.central_url)),
    }];
    let watch = te_uplink::clock::ClockWatch::new(&config.time);
    let source = if config.time.ntp_server.is_empty() {
        "the central service's Date header".to_string()
    } else {
        format!("SNTP {}", config.time.ntp_server)
    };
    checks.push(match te_uplink::clock::check_once(&config.time, &client, &config.uplink.central_url, &watch).await {
        Ok(o) => {
            let level = if o.offset_ms.unsigned_abs() + o.uncertainty_ms > config.time.max_offset_ms {
                Level::Warn
            } else {
                Level::Ok
            };
            check(
                "clock offset",
                level,
                format!(
                    "{:+} ms ±{} against {source} (limit {} ms)",
                    o.offset_ms, o.uncertainty_ms, config.time.max_offset_ms
                ),
            )
        }
        Err(e) => check("clock offset", Level::Warn, format!("not measured: {e}; violations will be flagged")),
    });
    checks
}

/// Runs every check and prints the table; `Ok(false)` when any check failed.
pub fn run(config: &AgentConfig) -> anyhow::Result<bool> {
    let mut checks = vec![profile(config)];
    checks.extend(gstreamer(config));
    checks.extend(runtime(config));
    checks.extend(models(config));
    checks.extend(storage(config));
    checks.extend(cameras(config));
    checks.extend(tokio::runtime::Runtime::new()?.block_on(central(config)));
    let width = checks.iter().map(|c| c.name.chars().count()).max().unwrap_or(10);
    for c in &checks {
        println!("{:<4}  {:<width$}  {}", c.level.as_str(), c.name, c.detail);
    }
    let worst = checks.iter().map(|c| c.level).max().unwrap_or(Level::Ok);
    let (fails, warns) = (
        checks.iter().filter(|c| c.level == Level::Fail).count(),
        checks.iter().filter(|c| c.level == Level::Warn).count(),
    );
    println!("doctor: {} checks, {fails} failed, {warns} warnings", checks.len());
    Ok(worst < Level::Fail)
}
