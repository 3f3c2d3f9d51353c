//! System tests: the real `edge-agent` and `central-sync` binaries talking over 127.0.0.1, with the real
//! models and footage from the shared folder. `scripts/test` builds the binaries first.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

mod enrolment;
mod faults;
mod helmets;
mod in_process;
mod junctions;
mod tls;

use te_system_tests::{agent, bin, box_evidence, free_port, http, AgentToml, Central};

fn start_central(port: u16, data_dir: &Path) -> Central {
    Central::start(port, data_dir)
}

fn write_config(dir: &Path, port: u16) -> PathBuf {
    AgentToml::new("system-test-box", &dir.join("edge"), &format!("http://127.0.0.1:{port}"))
        .plates()
        .fast_backoff(50, 200)
        .replay_camera("stills", "{data}/vn_scenes", "system test")
        .write(&dir.join("agent.toml"))
}

/// The central total from the run summary line `  central   <n>  records held at ...`.
fn central_total(output: &Output) -> u64 {
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().find(|l| l.trim_start().starts_with("central")).expect("central line in summary");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no total in {line:?}"))
}

#[test]
fn evidence_recorded_while_the_central_service_is_down_is_delivered_once_after_it_comes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config = write_config(dir.path(), port);

    // Central is down: the agent records, cannot deliver, keeps everything and says so.
    let offline = agent(&config, &["run", "--exit-when-done", "--drain-timeout", "2"]);
    assert!(!offline.status.success(), "undelivered evidence must make --exit-when-done fail");
    let recorded = box_evidence(&config).pending;
    assert!(recorded >= 20, "the street photos hold dozens of vehicles, got {recorded}");
    assert_eq!(box_evidence(&config).delivered, 0);

    // Central comes back: the next run re-sends the backlog and its own records.
    let central = start_central(port, &dir.path().join("central"));
    let online = agent(&config, &["run", "--exit-when-done", "--drain-timeout", "30"]);
    assert!(online.status.success(), "{}", String::from_utf8_lossy(&online.stderr));
    assert_eq!(box_evidence(&config).pending, 0);
    assert_eq!(box_evidence(&config).ids.len() as u64, 2 * recorded, "same photos, same detections");
    assert_eq!(central_total(&online), 2 * recorded, "central holds every record exactly once");

    // Plates read on the way arrive with the picture of each read; the case page re-checks them against the seal.
    let listed: Vec<serde_json::Value> =
        serde_json::from_str(&central.get("/api/v1/evidence?limit=1000").expect("list")).expect("list JSON");
    let crops_of = |e: &serde_json::Value| -> Vec<String> {
        e["record"]["plate"]["votes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["crop_sha256"].as_str().map(str::to_string))
            .collect()
    };
    let with_crops = listed.iter().find(|e| !crops_of(e).is_empty()).expect("a record with plate pictures");
    let id = with_crops["record"]["evidence_id"].as_str().expect("id");
    for sha in crops_of(with_crops) {
        let jpeg = central.get(&format!("/api/v1/evidence/{id}/plates/{sha}")).expect("plate picture served");
        assert!(!jpeg.is_empty());
    }
    let page = central.get(&format!("/evidence/{id}")).expect("case page");
    assert!(page.contains("ảnh biển số: <span class=\"ok\">✔"), "plate pictures match their hashes");
    assert!(page.contains("class=\"vote-crop\""), "every read shows its picture");

    // Nothing is sent twice: a third run adds only its own records.
    let again = agent(&config, &["run", "--exit-when-done", "--drain-timeout", "30"]);
    assert!(again.status.success());
    assert_eq!(central_total(&again), 3 * recorded);

    // Every record on the box is sealed, chained and intact, and exports as a package that checks out.
    let verify = agent(&config, &["evidence", "verify"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
    let export_dir = dir.path().join("export");
    let export = agent(&config, &["evidence", "export", "--to", export_dir.to_str().expect("utf8 path")]);
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let package =
        std::fs::read_dir(&export_dir).expect("export dir").next().expect("one package").expect("entry").path();
    let seal: serde_json::Value =
        serde_json::from_slice(&std::fs::read(package.join("seal.json")).expect("seal")).expect("seal json");
    let record = std::fs::read(package.join("record.json")).expect("record");
    use sha2::Digest;
    assert_eq!(seal["record_sha256"].as_str(), Some(hex::encode(sha2::Sha256::digest(&record)).as_str()));
    // Plate pictures travel in the package under their own hash.
    let package = export_dir.join(id);
    let pictures: Vec<_> = std::fs::read_dir(&package)
        .expect("package")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| Some(name.strip_prefix("plate-")?.strip_suffix(".jpg")?.to_string()))
        .collect();
    assert!(!pictures.is_empty(), "{id}: no plate pictures in the package");
    for sha in pictures {
        let bytes = std::fs::read(package.join(format!("plate-{sha}.jpg"))).expect("picture");
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), sha);
    }
}

#[test]
fn the_crash_harness_loses_nothing_acknowledged_when_the_writer_is_killed() {
    crash_harness("none", "12");
}

#[test]
fn nothing_acknowledged_is_lost_when_sled_files_are_damaged_or_kills_land_in_purges_and_rebuilds() {
    for mode in ["damage", "purge", "rebuild"] {
        crash_harness(mode, "8");
    }
}

/// On a 96 MiB tmpfs in a mount namespace of its own (`unshare`), filled to the reserve and to its end.
#[test]
fn a_full_disk_loses_nothing_acknowledged_and_the_alarm_rises_before_the_first_refusal() {
    let last = crash_harness_with("full", "9", "1000");
    assert!(last.contains("refused_before_alarm=0"), "{last}");
}

fn crash_harness(mode: &str, cycles: &str) {
    crash_harness_with(mode, cycles, "200");
}

/// Runs the crash test and checks its last line; returns that line.
fn crash_harness_with(mode: &str, cycles: &str, max_kill_ms: &str) -> String {
    let out = Command::new(bin("edge-agent"))
        .args(["evidence", "crash-test", "--cycles", cycles, "--max-kill-ms", max_kill_ms, "--mode", mode])
        .output()
        .expect("run crash test");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    let last = text.lines().last().expect("last line");
    assert!(out.status.success(), "crash test failed: {last}");
    let field = |key: &str| -> u64 {
        last.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key}= in {last:?}"))
    };
    assert!(field("acknowledged") > 0, "{last}");
    assert_eq!((field("lost"), field("corrupt")), (0, 0), "{last}");
    last.to_string()
}

#[test]
fn a_config_with_an_unknown_field_is_refused_with_the_field_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "device_id = \"x\"\nframe_queu = 3\ncameras = []\n").expect("write");
    let out = agent(&path, &["config", "check"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("frame_queu"));
}

#[test]
fn doctor_names_a_missing_decoder_and_fails_but_passes_a_sound_box() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), free_port());
    let sound = agent(&config, &["doctor"]);
    let text = String::from_utf8_lossy(&sound.stdout);
    assert!(sound.status.success(), "{text}");
    assert!(text.lines().any(|l| l.starts_with("ok") && l.contains("model vehicle")), "{text}");
    // The central service is down: a warning, not a failure (the box records offline).
    assert!(text.lines().any(|l| l.starts_with("WARN") && l.contains("central service")), "{text}");

    let broken = dir.path().join("broken.toml");
    let body = std::fs::read_to_string(&config)
        .expect("config")
        .replace("when_full = \"block\"", "when_full = \"block\"\ndecoder = \"nvh264dec-not-on-this-box\"");
    std::fs::write(&broken, body).expect("write");
    let out = agent(&broken, &["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.lines().any(|l| l.starts_with("FAIL") && l.contains("nvh264dec-not-on-this-box")), "{text}");
}

#[test]
fn a_car_crossing_the_stop_line_while_the_controller_reports_red_reaches_the_review_queue_as_a_red_light_violation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (port, agent_port, controller_port) = (free_port(), free_port(), free_port());
    let central = start_central(port, &dir.path().join("central"));
    // The controller's token: the line goes into the tokens file, the token to the controller.
    let made = Command::new(bin("edge-agent"))
        .args(["controller", "token", "junction-controller-1", "--cameras", "carpark-1"])
        .output()
        .expect("controller token");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let tokens_file = dir.path().join("controllers");
    std::fs::write(&tokens_file, &made.stdout).expect("tokens file");
    let stderr = String::from_utf8_lossy(&made.stderr);
    let token = stderr.trim().rsplit(' ').next().expect("token").to_owned();
    assert_eq!(token.len(), 64, "{stderr}");
    // The demo's car-park scene, with a controller that keeps reporting red. Replay runs faster than real time,
    // so frame times run ahead of the reports: a long staleness limit keeps the phase valid for the test.
    let config = AgentToml::new("system-test-box", &dir.path().join("edge"), &format!("http://127.0.0.1:{port}"))
        .top(format!("metrics_listen = \"127.0.0.1:{agent_port}\""))
        // The province's time server says the box runs 5 s slow: its violations get flagged.
        .time(format!("ntp_server = \"{}\"", te_system_tests::fake_sntp_server(5000)))
        .section(format!(
            "[controller]\nlisten = \"127.0.0.1:{controller_port}\"\ntokens_file = \"{}\"",
            tokens_file.display()
        ))
        .replay_camera("carpark-1", "{data}/video/car-detection.mp4", "system test")
        .section(
            r#"[[scenes]]
camera = "carpark-1"
frame_size = [768, 432]
[scenes.signal]
source = "external"
stale_after_s = 600
[[scenes.stop_lines]]
name = "stop line"
line = [[0, 216], [768, 216]]
direction = [0, -1]"#,
        )
        .write(&dir.path().join("agent.toml"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let controller = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let body = r#"{"phase":"red"}"#;
            let request = |auth: &str| {
                format!(
                    "POST /api/v1/signal/carpark-1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                     {auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            let authorised = request(&format!("Authorization: Bearer {token}\r\n"));
            let (mut accepted, mut forged_accepted) = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if http(controller_port, &authorised).is_some_and(|r| r.starts_with("HTTP/1.1 204")) {
                    accepted += 1;
                }
                // Neither the metrics port nor the controller port takes a phase without the token.
                for port in [agent_port, controller_port] {
                    if http(port, &request("")).is_some_and(|r| r.starts_with("HTTP/1.1 2")) {
                        forged_accepted += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (accepted, forged_accepted)
        })
    };
    let run = agent(&config, &["run", "--exit-when-done", "--drain-timeout", "30"]);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (accepted, forged_accepted) = controller.join().expect("controller thread");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(accepted > 0, "the agent took no controller report");
    assert_eq!(forged_accepted, 0, "a phase report without the controller's token was taken");

    let list = agent(&config, &["evidence", "list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    let red: Vec<&str> = text.lines().filter(|l| l.contains(" red_light ")).collect();
    assert_eq!(red.len(), 1, "one red-light record for the red car: {text}");
    assert!(red[0].contains("delivered"), "{}", red[0]);
    let id = red[0].split_whitespace().next().expect("id");
    let show = agent(&config, &["evidence", "show", id]);
    let record: serde_json::Value = serde_json::from_slice(&show.stdout).expect("record JSON");
    let violation = &record["record"]["violation"];
    assert_eq!(violation["signal"], "red");
    let roles: Vec<&str> =
        violation["moments"].as_array().expect("moments").iter().filter_map(|m| m["role"].as_str()).collect();
    assert_eq!(roles, ["before", "at", "after"]);
    assert!(record["record"]["clip_sha256"].is_string(), "a video camera's violation carries its clip");
    let clock = &record["record"]["clock"];
    let offset = clock["offset_ms"].as_i64().expect("clock offset in the record");
    assert!((4900..=5100).contains(&offset) && clock["trusted"] == false, "{clock}");

    let page = central.get("/").expect("queue page");
    assert!(page.contains("Vượt đèn đỏ"), "the review queue shows the offence");
    assert!(page.contains("Đồng hồ lệch +5.0 s"), "and flags the box's clock");
}

/// systemd's stop timeout for the agent, from the unit the box installs.
fn unit_stop_timeout() -> Duration {
    let unit = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../hw/systemd/edge-agent.service"))
        .expect("systemd unit");
    let secs = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("TimeoutStopSec in the unit");
    Duration::from_secs(secs)
}

#[test]
fn one_sigterm_stops_a_live_agent_within_the_systemd_stop_timeout() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("tempdir");
    let (port, rtsp_port, agent_port) = (free_port(), free_port(), free_port());
    let _central = start_central(port, &dir.path().join("central"));
    let mut camera = Command::new(bin("te-rtsp-test-server"))
        .args(["--port", &rtsp_port.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start te-rtsp-test-server");
    let mut ready = String::new();
    std::io::BufReader::new(camera.stdout.take().expect("stdout")).read_line(&mut ready).expect("ready line");
    assert!(ready.starts_with("ready"), "{ready}");
    let config = AgentToml::new("sigterm-test-box", &dir.path().join("edge"), &format!("http://127.0.0.1:{port}"))
        .top(format!("metrics_listen = \"127.0.0.1:{agent_port}\""))
        .time("timeout_ms = 300")
        .section(format!(
            "[[cameras]]\nid = \"live-1\"\nsource = \"rtsp://127.0.0.1:{rtsp_port}/cam\"\nlocation = \"system test\""
        ))
        .write(&dir.path().join("agent.toml"));
    let log = dir.path().join("agent.log");
    let mut agent = te_system_tests::spawn_agent(&config, &["--drain-timeout", "20"], &log);
    let streaming = te_system_tests::wait_for(Duration::from_secs(60), || {
        te_system_tests::http_body(agent_port, "GET /metrics")
            .is_some_and(|m| m.contains("te_camera_state{camera=\"live-1\",state=\"streaming\"} 1"))
    });
    let pid = agent.id().to_string();
    assert!(streaming, "the live camera never streamed: {}", std::fs::read_to_string(&log).unwrap_or_default());
    std::thread::sleep(Duration::from_secs(2));
    let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
    assert!(sent.success());
    let limit = unit_stop_timeout();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = agent.try_wait().expect("wait") {
            break Some(status);
        }
        if started.elapsed() > limit {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = camera.kill();
    let _ = camera.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let Some(status) = status else {
        te_system_tests::kill_hard(&mut agent);
        panic!("one SIGTERM did not stop the agent within systemd's {limit:?}: {text}");
    };
    assert!(status.success(), "exit {status:?}: {text}");
    eprintln!("stopped {:.1} s after SIGTERM", started.elapsed().as_secs_f32());
}

#[test]
fn the_camera_benchmark_serves_live_cameras_and_prints_its_contract_line() {
    // A short run (one camera, 3 s, 10 gate frames per clip): the figures are the benchmark's business, not a
    // test's; what is pinned here is that it runs end to end over RTSP and that its last line keeps its keys.
    let out = Command::new(bin("edge-agent"))
        .args(["bench", "--quick", "--cameras", "1", "--seconds", "3", "--gate-frames", "10", "--shared-dir"])
        .arg(te_system_tests::shared_dir())
        .output()
        .expect("run edge-agent bench");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "bench failed");
    let last = text.lines().last().expect("last line");
    let field = |key: &str| -> f64 {
        last.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key}= in {last:?}"))
    };
    for key in ["cameras", "fps_per_camera", "drop_pct", "p95_latency_ms", "cores_per_camera", "rss_mb"] {
        assert!(field(key) >= 0.0, "{key} in {last:?}");
    }
    assert!((0.0..=1.0).contains(&field("detection_agreement")), "{last}");
    // The one camera was analysed (a debug build may not hold 8 frames/s, but it does deliver frames).
    assert!(text.lines().any(|l| l.trim_start().starts_with("1 ")), "no row for one camera:\n{text}");
    assert!(field("cores_per_camera") > 0.0, "{last}");
}
