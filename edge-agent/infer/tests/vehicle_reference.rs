//! The Rust vehicle detector gives the same detections as the Python reference pipeline
//! (models/reference/yolox_reference.py, onnxruntime + OpenCV) on the same real images.
//!
//! Tolerance: every reference box has a Rust box of the same class with IoU >= 0.97 and a score within 0.01 on
//! lossless (PNG) input, 0.03 on JPEG input (the `image` crate's JPEG decoder and libjpeg-turbo round chroma
//! upsampling differently; measured worst case 0.027, typical < 0.006). A detection present on one side only is
//! allowed just when it scores within that tolerance of the threshold.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use te_infer::{ModelDirs, Runtime, VehicleDetector, VehicleDetectorSettings};
use te_types::{BBox, CameraId, Detection, Frame};

#[derive(Deserialize)]
struct Reference {
    score_threshold: f32,
    nms_iou: f32,
    images: BTreeMap<String, Vec<RefDetection>>,
}

#[derive(Deserialize)]
struct RefDetection {
    class: String,
    score: f32,
    #[serde(rename = "box")]
    bbox: [f32; 4],
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shared_dir() -> PathBuf {
    std::env::var_os("TE_SHARED_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("../shared"))
}

fn runtime() -> Runtime {
    let local = workspace_root().join(".local/onnxruntime/libonnxruntime.so");
    let configured = std::env::var_os("ORT_DYLIB_PATH").is_none().then_some(local);
    let library = te_infer::resolve_runtime_library(configured.as_deref()).expect("ONNX Runtime (run scripts/setup)");
    Runtime::load(&library).expect("load ONNX Runtime")
}

fn frame_from(path: &std::path::Path) -> Frame {
    let image = image::open(path).expect("decode test image").into_rgb8();
    Frame {
        camera: CameraId::new("reference"),
        number: 0,
        captured_at: chrono::Utc::now(),
        scene_cut: true,
        width: image.width(),
        height: image.height(),
        data: Arc::new(image.into_raw()),
    }
}

fn matches(r: &RefDetection, d: &Detection, score_tolerance: f32) -> bool {
    let rb = BBox { x1: r.bbox[0], y1: r.bbox[1], x2: r.bbox[2], y2: r.bbox[3] };
    d.class.as_str() == r.class && rb.iou(&d.bbox) >= 0.97 && (d.score - r.score).abs() <= score_tolerance
}

#[test]
fn vehicle_detections_match_the_python_reference_on_real_street_photos() {
    let reference: Reference = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("tests/fixtures/yolox_reference.json")).expect("fixture"),
    )
    .expect("fixture parses");
    let dirs = ModelDirs { model_dir: shared_dir().join("models"), wheel_dir: workspace_root().join(".local/models") };
    let settings =
        VehicleDetectorSettings { score_threshold: reference.score_threshold, nms_iou: reference.nms_iou, threads: 2 };
    let mut detector = VehicleDetector::load(&runtime(), &dirs, settings).expect("load detector");
    let mut compared = 0;
    for (name, expected) in &reference.images {
        let tolerance = if name.ends_with(".png") { 0.01 } else { 0.03 };
        let borderline = reference.score_threshold + tolerance;
        let got = detector.detect(&frame_from(&shared_dir().join("data").join(name))).expect("detect");
        for r in expected {
            assert!(
                got.iter().any(|d| matches(r, d, tolerance)) || r.score < borderline,
                "{name}: reference {} {:.3} {:?} has no match in {got:?}",
                r.class,
                r.score,
                r.bbox
            );
            compared += 1;
        }
        for d in &got {
            assert!(
                expected.iter().any(|r| matches(r, d, tolerance)) || d.score < borderline,
                "{name}: extra detection {d:?} not in the reference"
            );
        }
    }
    assert!(compared >= 40, "the fixture should hold plenty of detections, found {compared}");
}
