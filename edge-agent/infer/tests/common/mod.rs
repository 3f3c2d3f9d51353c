//! What the model tests share: where the repository, the shared folder and ONNX Runtime are, the model
//! folders, a frame from an image file, and the comparison of detections with a Python reference fixture.
#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::sync::Arc;
use te_infer::{ModelDirs, Runtime};
use te_types::{CameraId, Frame};

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn shared_dir() -> PathBuf {
    std::env::var_os("TE_SHARED_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("../shared"))
}

pub fn runtime() -> Runtime {
    let local = workspace_root().join(".local/onnxruntime/libonnxruntime.so");
    let configured = std::env::var_os("ORT_DYLIB_PATH").is_none().then_some(local);
    let library = te_infer::resolve_runtime_library(configured.as_deref()).expect("ONNX Runtime (run scripts/setup)");
    Runtime::load(&library).expect("load ONNX Runtime")
}

pub fn model_dirs() -> ModelDirs {
    ModelDirs {
        model_dir: shared_dir().join("models"),
        wheel_dir: workspace_root().join(".local/models"),
        project_dir: workspace_root().join("models"),
    }
}

pub fn frame_from(path: &Path) -> Frame {
    let image = image::open(path).expect("decode test image").into_rgb8();
    Frame {
        camera: CameraId::new("reference"),
        number: 0,
        captured_at: chrono::Utc::now(),
        scene_cut: true,
        width: image.width(),
        height: image.height(),
        pixels: te_types::Pixels::Rgb(Arc::new(image.into_raw())),
    }
}

/// A detection fixture written by a Python reference (`models/reference/*_reference.py`).
#[derive(serde::Deserialize)]
pub struct DetectionFixture {
    pub score_threshold: f32,
    pub nms_iou: f32,
    /// Image (relative to the shared data folder) -> its reference detections, best first.
    pub images: std::collections::BTreeMap<String, Vec<RefDetection>>,
}

#[derive(serde::Deserialize, Debug)]
pub struct RefDetection {
    /// The vehicle class, for fixtures of several classes.
    #[serde(default)]
    pub class: Option<String>,
    pub score: f32,
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
}

pub fn detection_fixture(name: &str) -> DetectionFixture {
    let path = workspace_root().join("tests/fixtures").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("fixture parses")
}

/// Runs `detect` on every image of `fixture` and checks it against the reference: every reference detection has
/// a Rust one of the same class with IoU >= `min_iou` and a score within 0.01 on lossless (PNG) input, 0.03 on
/// JPEG input (the `image` crate's JPEG decoder and libjpeg-turbo round chroma upsampling differently); a
/// detection on one side only is allowed just when it scores within that tolerance of the threshold. Returns how
/// many reference detections were compared.
pub fn compare_with_reference(
    fixture: &DetectionFixture,
    min_iou: f32,
    mut detect: impl FnMut(&Frame) -> Vec<te_types::Detection>,
) -> usize {
    let matches = |r: &RefDetection, d: &te_types::Detection, tolerance: f32| {
        let rb = te_types::BBox { x1: r.bbox[0], y1: r.bbox[1], x2: r.bbox[2], y2: r.bbox[3] };
        r.class.as_deref().is_none_or(|c| c == d.class.as_str())
            && rb.iou(&d.bbox) >= min_iou
            && (d.score - r.score).abs() <= tolerance
    };
    let mut compared = 0;
    for (name, expected) in &fixture.images {
        let tolerance = if name.ends_with(".png") { 0.01 } else { 0.03 };
        let borderline = fixture.score_threshold + tolerance;
        let got = detect(&frame_from(&shared_dir().join("data").join(name)));
        for r in expected {
            assert!(
                got.iter().any(|d| matches(r, d, tolerance)) || r.score < borderline,
                "{name}: reference {r:?} has no match in {got:?}"
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
    compared
}
