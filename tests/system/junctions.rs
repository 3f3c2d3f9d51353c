//! Red light on real junction footage (shared/data/intersections): `edge-agent scene replay` with the embedded
//! scenes, the signal read from the heads in the decoded pictures, and the recorded detections of the real
//! detector (tests/fixtures/intersections; regenerate with `--dump-detections`). The labels were made by eye
//! (README.md there).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use te_system_tests::{bin, shared_dir};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/intersections").join(name)
}

/// The replay's last line, by key.
fn replay(clip: &str) -> HashMap<String, String> {
    let output = Command::new(bin("edge-agent"))
        .args(["scene", "replay", "--camera", &format!("junction-{clip}"), "--labels"])
        .arg(fixture(&format!("junction-{clip}.toml")))
        .arg("--detections")
        .arg(fixture(&format!("junction-{clip}.detections.json")))
        .env("TE_SHARED_DIR", shared_dir())
        .output()
        .expect("run edge-agent scene replay");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("--- junction-{clip}\n{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "scene replay failed");
    let last = stdout.lines().last().expect("a last line");
    last.split_whitespace().filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect()
}

fn number(fields: &HashMap<String, String>, key: &str) -> f64 {
    fields.get(key).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{key} in {fields:?}"))
}

#[test]
fn red_light_runners_on_three_real_junctions_are_found_with_the_signal_read_from_the_picture() {
    let (mut agree, mut frames) = (0.0, 0.0);
    for clip in ["a", "b", "c"] {
        let fields = replay(clip);
        assert_eq!(number(&fields, "precision"), 1.0, "junction-{clip}: a violation nobody saw");
        assert_eq!(number(&fields, "recall"), 1.0, "junction-{clip}: the labelled red-light run was missed");
        assert_eq!(number(&fields, "phase_wrong"), 0.0, "junction-{clip}: a wrong signal colour");
        let n = number(&fields, "phase_frames");
        // Only the first frames, before the smoothing has seen enough reads, may be unknown.
        assert!(number(&fields, "phase_agreement") * n >= n - 3.0, "junction-{clip}: {fields:?}");
        agree += number(&fields, "phase_agreement") * n;
        frames += n;
    }
    assert!(agree / frames >= 0.99, "phase agreement over the three clips {:.4}", agree / frames);
}
