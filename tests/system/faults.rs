//! The box and the centre under faults: a centre that dies and comes back, a box killed mid-upload, a slow
//! link that drops, a record the centre refuses. After each, every record on the box is at the centre exactly
//! once, and nothing else is.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;
use te_system_tests::proxy::Proxy;
use te_system_tests::{
    agent, box_evidence, free_port, kill_hard, replay_config, spawn_agent, wait_for, BoxEvidence, Central,
};

/// The box delivered everything, and the centre holds exactly the box's records, each once.
fn assert_exactly_once(config: &Path, central: &Central) -> BoxEvidence {
    let held = box_evidence(config);
    assert_eq!((held.pending, held.rejected), (0, 0), "everything delivered, nothing refused");
    let ids = central.evidence_ids();
    let distinct: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), distinct.len(), "a record is at the centre twice");
    assert_eq!(distinct, held.ids, "the centre holds exactly the box's records");
    assert_eq!(central.total(), Some(held.ids.len() as u64));
    held
}

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn the_central_service_killed_mid_run_and_restarted_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut central = Central::start(free_port(), &dir.path().join("central"));
    let config = replay_config(dir.path(), &format!("http://127.0.0.1:{}", central.port), "");
    let log = dir.path().join("agent.log");
    let mut run = spawn_agent(&config, &["--exit-when-done", "--drain-timeout", "60"], &log);
    assert!(wait_for(Duration::from_secs(60), || central.total().unwrap_or(0) >= 3), "no record arrived");
    central.kill();
    std::thread::sleep(Duration::from_secs(3));
    central.restart();
    let status = run.wait().expect("agent exit");
    assert!(status.success(), "{}", log_of(&log));
    let held = assert_exactly_once(&config, &central);
    assert!(held.ids.len() >= 20, "{}", held.ids.len());
}

#[test]
fn an_agent_killed_hard_mid_upload_resends_on_restart_and_nothing_arrives_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = Central::start(free_port(), &dir.path().join("central"));
    // 16 Mbit/s and small clip chunks: uploads are in flight when the kill comes.
    let config = replay_config(
        dir.path(),
        &format!("http://127.0.0.1:{}", central.port),
        "max_upload_kbps = 16000\nclip_chunk_kb = 32",
    );
    let log = dir.path().join("agent.log");
    let mut first = spawn_agent(&config, &["--exit-when-done", "--drain-timeout", "60"], &log);
    assert!(wait_for(Duration::from_secs(60), || central.total().unwrap_or(0) >= 3), "no record arrived");
    kill_hard(&mut first);
    let delivered_before_kill = central.total().unwrap_or(0);

    // Restarted: the same replay again (new records) and the first run's backlog.
    let second = agent(&config, &["run", "--exit-when-done", "--drain-timeout", "60"]);
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    let held = assert_exactly_once(&config, &central);
    assert!(held.ids.len() as u64 > delivered_before_kill);
    // Every record still verifies: a kill never leaves a half-written or altered record behind.
    let verify = agent(&config, &["evidence", "verify"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}

#[test]
fn a_slow_link_that_drops_for_seconds_slows_uploads_but_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = Central::start(free_port(), &dir.path().join("central"));
    // 1 MB/s each way: a junction's uplink, not loopback.
    let proxy = Proxy::start(central.port, 1_000_000);
    let config = replay_config(dir.path(), &format!("http://127.0.0.1:{}", proxy.port), "");
    let log = dir.path().join("agent.log");
    let mut run = spawn_agent(&config, &["--exit-when-done", "--drain-timeout", "90"], &log);
    assert!(wait_for(Duration::from_secs(60), || central.total().unwrap_or(0) >= 3), "no record arrived");
    proxy.cut();
    std::thread::sleep(Duration::from_secs(3));
    proxy.restore();
    let status = run.wait().expect("agent exit");
    let text = log_of(&log);
    assert!(status.success(), "{text}");
    assert_exactly_once(&config, &central);
    assert!(proxy.bytes_up() > 1_000_000, "the uploads went through the proxy");
    assert!(text.contains("evidence stays pending"), "the cut was noticed and retried: {text}");
}

#[test]
fn records_the_central_service_refuses_are_kept_marked_and_not_resent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let central = Central::start(free_port(), &dir.path().join("central"));
    let url = format!("http://127.0.0.1:{}", central.port);
    // Two boxes claim one device id; the centre pinned the first one's key, so the second's seals are refused.
    let first_dir = dir.path().join("first");
    let second_dir = dir.path().join("second");
    std::fs::create_dir_all(&first_dir).expect("dir");
    std::fs::create_dir_all(&second_dir).expect("dir");
    let first = replay_config(&first_dir, &url, "");
    let body = std::fs::read_to_string(&first).expect("config").replace(
        "[[cameras]]\nid = \"carpark-1\"\nsource = \"{data}/video/car-detection.mp4\"\nwhen_full = \"block\"\nlocation = \"fault test\"\n",
        "",
    );
    std::fs::write(&first, &body).expect("stills only");
    let second = second_dir.join("agent.toml");
    std::fs::write(&second, body.replace(&first_dir.display().to_string(), &second_dir.display().to_string()))
        .expect("write");
    let run = agent(&first, &["run", "--exit-when-done", "--drain-timeout", "30"]);
    assert!(run.status.success());
    let accepted = central.total().expect("total");

    let run = agent(&second, &["run", "--exit-when-done", "--drain-timeout", "30"]);
    let held = box_evidence(&second);
    assert!(held.rejected > 0 && held.pending == 0 && held.delivered == 0, "{held:?}");
    assert_eq!(central.total(), Some(accepted), "nothing of the impostor's is stored");
    assert!(String::from_utf8_lossy(&run.stderr).contains("ALARM: central refused evidence"));
    // Refused once each, not retried in a loop.
    let refusals = central.log().matches("evidence refused").count() as u64;
    assert_eq!(refusals, held.rejected, "one refusal per record, no retry loop");
    // Still there after another start: kept on the box for an operator, still not resent.
    agent(&second, &["run", "--exit-when-done", "--drain-timeout", "30"]);
    assert_eq!(central.log().matches("evidence refused").count() as u64, 2 * held.rejected);
    assert_eq!(box_evidence(&second).rejected, 2 * held.rejected);
}
