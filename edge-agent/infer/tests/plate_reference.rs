//! The Rust plate detector and plate reader give the same results as the Python reference pipeline
//! (models/reference/plate_reference.py, onnxruntime + OpenCV) on the same real images.
//!
//! Tolerances (JPEG input: the `image` crate's decoder and libjpeg-turbo differ by a grey level here and there):
//! detector: same plates, same layout, IoU >= 0.95, score within 0.03, corners within 2% of the plate's width;
//! reader: the same characters in the same rows on at least 48 of the 50 crops, mean confidence within 0.05
//! where the characters agree (measured: all 50 agree; worst confidence differences 0.032 and 0.028 on JPEG
//! crops, typical < 0.001; the JPEG decoders differ and OpenCV resizes in fixed point, the Rust code in f32).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use te_infer::{ModelDirs, PlateDetector, PlateDetectorSettings, PlateReader, PlateReaderSettings, RgbView, Runtime};
use te_types::{BBox, PlateLayout};

#[derive(Deserialize)]
struct Reference {
    detector_threshold: f32,
    detections: BTreeMap<String, Vec<RefPlate>>,
    reads: BTreeMap<String, RefRead>,
}

#[derive(Deserialize)]
struct RefPlate {
    score: f32,
    #[serde(rename = "box")]
    bbox: [f32; 4],
    corners: [[f32; 2]; 4],
    layout: PlateLayout,
}

#[derive(Deserialize)]
struct RefRead {
    rows: Vec<String>,
    confidence: f32,
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shared_dir() -> PathBuf {
    std::env::var_os("TE_SHARED_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("../shared"))
}

fn setup() -> (Reference, Runtime, ModelDirs) {
    let reference: Reference = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("tests/fixtures/plate_reference.json")).expect("fixture"),
    )
    .expect("fixture parses");
    let local = workspace_root().join(".local/onnxruntime/libonnxruntime.so");
    let configured = std::env::var_os("ORT_DYLIB_PATH").is_none().then_some(local);
    let library = te_infer::resolve_runtime_library(configured.as_deref()).expect("ONNX Runtime (run scripts/setup)");
    let runtime = Runtime::load(&library).expect("load ONNX Runtime");
    let dirs = ModelDirs { model_dir: shared_dir().join("models"), wheel_dir: workspace_root().join(".local/models") };
    (reference, runtime, dirs)
}

fn load(name: &str) -> image::RgbImage {
    let path = shared_dir().join("data").join(name);
    image::ImageReader::open(&path)
        .and_then(|r| r.with_guessed_format())
        .expect("open test image")
        .decode()
        .expect("decode test image")
        .into_rgb8()
}

#[test]
fn plate_detections_match_the_python_reference_on_real_street_photos() {
    let (reference, runtime, dirs) = setup();
    let settings = PlateDetectorSettings { score_threshold: reference.detector_threshold, ..Default::default() };
    let mut detector = PlateDetector::load(&runtime, &dirs, settings).expect("load plate detector");
    let mut compared = 0;
    for (name, expected) in &reference.detections {
        let picture = load(name);
        let got = detector.detect(RgbView::of_image(&picture)).expect("detect");
        for r in expected {
            let rb = BBox { x1: r.bbox[0], y1: r.bbox[1], x2: r.bbox[2], y2: r.bbox[3] };
            let corner_tolerance = 0.02 * rb.width();
            let found = got.iter().any(|d| {
                d.layout == r.layout
                    && d.bbox.iou(&rb) >= 0.95
                    && (d.score - r.score).abs() <= 0.03
                    && d.corners.iter().zip(&r.corners).all(|(a, b)| {
                        (a[0] - b[0]).abs() <= corner_tolerance && (a[1] - b[1]).abs() <= corner_tolerance
                    })
            });
            assert!(found, "{name}: reference plate {:?} score {} not found in {got:?}", r.bbox, r.score);
            compared += 1;
        }
        let borderline = reference.detector_threshold + 0.03;
        let extra = got.iter().filter(|d| d.score > borderline).count();
        assert!(extra <= expected.len(), "{name}: Rust found plates the reference did not: {got:?}");
    }
    assert!(compared >= 5, "the fixture should hold several plates, compared {compared}");
}

#[test]
fn plate_reads_match_the_python_reference_on_real_vietnamese_crops() {
    let (reference, runtime, dirs) = setup();
    let mut reader = PlateReader::load(&runtime, &dirs, &PlateReaderSettings::default()).expect("load reader");
    let mut disagreements = Vec::new();
    for (name, expected) in &reference.reads {
        let picture = load(name);
        let layout = if (picture.width() as f32 / picture.height() as f32) < 2.6 {
            PlateLayout::TwoLine
        } else {
            PlateLayout::OneLine
        };
        let got = reader.read(RgbView::of_image(&picture), layout).expect("read");
        if got.rows == expected.rows {
            assert!(
                (got.confidence - expected.confidence).abs() <= 0.05,
                "{name}: confidence {} vs reference {}",
                got.confidence,
                expected.confidence
            );
        } else {
            disagreements.push(format!("{name}: {:?} vs reference {:?}", got.rows, expected.rows));
        }
    }
    assert!(reference.reads.len() >= 50, "the fixture should hold 50 crops");
    assert!(disagreements.len() <= 2, "reads differ from the reference: {disagreements:#?}");
}
