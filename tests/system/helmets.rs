//! The no_helmet rule end to end on real frames (vn_riders validation clips, never trained on): each frame is
//! played as 4 s of 10 fps video to a replay camera whose scene judges helmets, through the whole agent
//! (motorcyclist detector, tracker, helmet classifier, rule, evidence store).

use std::path::Path;
use te_system_tests::{agent, shared_dir, AgentToml};

/// Runs the agent on `frame` (a vn_riders image) shown for 4 s; returns the `evidence list` lines that are
/// no-helmet records.
fn no_helmet_records(dir: &Path, frame: &str) -> Vec<String> {
    let clip = dir.join("clip.mp4");
    te_camera::bench::still_clip(&shared_dir().join("data/vn_riders/images").join(frame), &clip, 4)
        .expect("still clip");
    let config = AgentToml::new("helmet-test-box", &dir.join("edge"), "http://127.0.0.1:9")
        .time("timeout_ms = 200")
        .replay_camera("gate-1", &clip.display().to_string(), "helmet test")
        .section("[[scenes]]\ncamera = \"gate-1\"\nframe_size = [1280, 720]")
        .write(&dir.join("agent.toml"));
    // No central service: the records stay on the box, and the run says so on its way out.
    let run = agent(&config, &["run", "--exit-when-done", "--drain-timeout", "1"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success() || stderr.contains("still pending on the box"), "{stderr}");
    let list = agent(&config, &["evidence", "list"]);
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    String::from_utf8_lossy(&list.stdout).lines().filter(|l| l.contains(" no_helmet ")).map(String::from).collect()
}

#[test]
fn a_bare_headed_rider_gives_one_no_helmet_record_and_a_helmeted_one_none() {
    let bare = tempfile::tempdir().expect("tempdir");
    let records = no_helmet_records(bare.path(), "IMG_5135_MOV-16.jpg");
    assert_eq!(records.len(), 1, "one record for the bare-headed rider: {records:?}");
    let helmeted = tempfile::tempdir().expect("tempdir");
    let records = no_helmet_records(helmeted.path(), "IMG_5131_MOV-19.jpg");
    assert!(records.is_empty(), "no record for a helmeted rider: {records:?}");
}
