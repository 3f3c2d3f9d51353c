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

/// The `[[scenes]]` block of camera `camera` in the agent's embedded default configuration, as written there.
fn default_scene(camera: &str) -> String {
    let default = include_str!("../../edge-agent/agent/src/default.toml");
    let start = default.find(&format!("[[scenes]]\ncamera = \"{camera}\"")).expect("the scene in default.toml");
    let rest = &default[start..];
    let end = rest.find("[[cameras]]").or_else(|| rest.find("# A live")).unwrap_or(rest.len());
    rest[..end].to_string()
}

/// The whole pipeline on a real junction: the red-light run of us-junction-b becomes one record whose picture
/// proves it: "before" is a frame before "at", the stop line is drawn on the moments, and each moment has the
/// signal head enlarged under it.
#[test]
fn a_real_red_light_run_is_recorded_with_the_stop_line_and_the_signal_head_in_its_picture() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = te_system_tests::free_port();
    let _central = te_system_tests::Central::start(port, &dir.path().join("central"));
    let central_url = format!("http://127.0.0.1:{port}");
    let config = te_system_tests::AgentToml::new("junction-test-box", &dir.path().join("edge"), &central_url)
        .replay_camera("junction-b", "{data}/intersections/us-junction-b.mp4", "system test")
        .section(default_scene("junction-b"))
        .write(&dir.path().join("agent.toml"));
    let run = te_system_tests::agent(&config, &["run", "--exit-when-done", "--drain-timeout", "30"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let list = te_system_tests::agent(&config, &["evidence", "list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    let red: Vec<&str> = text.lines().filter(|l| l.contains(" red_light ")).collect();
    assert_eq!(red.len(), 1, "one red-light record, for the dark red sedan: {text}");
    let id = red[0].split_whitespace().next().expect("id");

    let out = dir.path().join("export");
    let export = te_system_tests::agent(&config, &["evidence", "export", id, "--to", out.to_str().expect("path")]);
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(id).join("record.json")).expect("record")).expect("JSON");
    let moments = record["violation"]["moments"].as_array().expect("moments");
    let frame_of =
        |role: &str| moments.iter().find(|m| m["role"] == role).and_then(|m| m["frame_number"].as_u64()).expect(role);
    assert!(frame_of("before") < frame_of("at"), "before must come before at: {moments:?}");
    // The crossing's own frames (pinned while the rule decided), not the nearest frames kept every 0.5 s.
    assert_eq!(frame_of("at") - frame_of("before"), 1, "{moments:?}");
    assert!(frame_of("at") < frame_of("after"), "{moments:?}");
    assert_eq!(record["violation"]["signal"], "red");

    let picture = image::open(out.join(id).join("overview.jpg")).expect("overview").into_rgb8();
    let (width, height) = picture.dimensions();
    // Three 640x352 moments side by side, then the plate when one was read.
    assert!(width >= 3 * 640, "{width}");
    // Under the frames: the row of signal-head insets, then captions and the data bar (22 px rows each).
    assert!(height >= 352 + 88 + 3 * 22, "no inset row: {height}");
    // The stop line [[280, 205], [572, 224]] is drawn in yellow on each moment.
    let yellow = |x: u32, y: u32| {
        (-2i32..=2).any(|dy| {
            let p = picture.get_pixel(x, (y as i32 + dy) as u32);
            p[0] > 200 && p[1] > 160 && p[2] < 110
        })
    };
    for panel in 0..3 {
        let on_line = [300u32, 350, 400, 450, 500]
            .iter()
            .filter(|&&x| yellow(panel * 640 + x, (205.0 + (x as f32 - 280.0) * 19.0 / 292.0).round() as u32))
            .count();
        assert!(on_line >= 3, "panel {panel}: the stop line is not drawn ({on_line} of 5 points)");
    }
    // The inset row under each moment holds a picture (the heads and the mast arm), not the black background.
    for panel in 0..3 {
        let lit = (352..352 + 88)
            .flat_map(|y| (panel * 640 + 200..panel * 640 + 440).map(move |x| (x, y)))
            .filter(|&(x, y)| picture.get_pixel(x, y).0.iter().any(|&c| c > 60))
            .count();
        assert!(lit > 5000, "panel {panel}: no signal-head inset under the moment ({lit} bright pixels)");
    }
}
