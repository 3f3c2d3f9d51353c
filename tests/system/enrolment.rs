//! Device registration end to end: a centre with closed enrolment keeps an unregistered box's evidence out (the
//! box keeps it pending, not rejected), and once the box is registered with its key and given its token, the
//! same queue drains by itself.

use te_system_tests::{agent, box_evidence, central_admin, free_port, shared_dir, Central};

#[test]
fn an_unregistered_box_keeps_its_evidence_until_it_is_registered_then_delivers_it_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let photos = dir.path().join("photos");
    std::fs::create_dir_all(&photos).expect("photos");
    for name in ["1.jpg", "101.jpg"] {
        std::fs::copy(shared_dir().join("data/vn_scenes").join(name), photos.join(name)).expect("copy photo");
    }
    let port = free_port();
    let data = dir.path().join("central");
    let central = Central::start_closed(port, &data);
    let config = dir.path().join("box.toml");
    std::fs::write(
        &config,
        format!(
            "device_id = \"enrol-test-box\"\n[paths]\nshared = \"{}\"\nstate = \"{}\"\n[plates]\nenabled = false\n\
             [uplink]\ncentral_url = \"http://127.0.0.1:{port}\"\nbackoff_initial_ms = 100\nbackoff_max_ms = 500\n\
             [[cameras]]\nid = \"stills\"\nsource = \"{}\"\nwhen_full = \"block\"\n",
            shared_dir().display(),
            dir.path().join("edge").display(),
            photos.display()
        ),
    )
    .expect("config");

    let run = agent(&config, &["run", "--exit-when-done", "--drain-timeout", "3"]);
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(log.contains("no device token"), "{log}");
    let held = box_evidence(&config);
    assert!(held.pending > 0 && held.delivered == 0 && held.rejected == 0, "kept, not given up: {held:?}");
    assert!(central.evidence_ids().is_empty());

    let key = String::from_utf8_lossy(&agent(&config, &["evidence", "key"]).stdout).trim().to_string();
    let token = central_admin(
        &data,
        &["device", "register", "--device-id", "enrol-test-box", "--public-key", key.as_str()],
        "",
    );
    let token_file = dir.path().join("device.token");
    std::fs::write(&token_file, format!("{token}\n")).expect("token file");
    let run = agent(
        &config,
        &[
            "run",
            "--exit-when-done",
            "--drain-timeout",
            "20",
            "--device-token-file",
            token_file.to_str().expect("utf8"),
        ],
    );
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let held = box_evidence(&config);
    assert_eq!((held.pending, held.rejected), (0, 0), "{held:?}");
    let central_ids = central.evidence_ids();
    assert_eq!(central_ids.len(), held.ids.len(), "each record once");
    assert_eq!(central_ids.into_iter().collect::<std::collections::BTreeSet<_>>(), held.ids);
    assert!(!String::from_utf8_lossy(&run.stderr).contains(&token), "the token is never logged");
}
