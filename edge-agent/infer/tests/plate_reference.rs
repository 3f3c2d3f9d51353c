//! The Rust plate detector and plate reader (the project's own models) give the same results as the Python
//! reference (models/reference/plate_reference.py: onnxruntime + OpenCV, the recipes' pre- and
//! post-processing) on the same real images: vehicle crops of vn_riders validation frames for the detector,
//! every 40th vn_plates crop for the reader.
//!
//! Tolerances (JPEG input: the `image` crate's decoder and libjpeg-turbo differ by a grey level here and there;
//! OpenCV resizes in fixed point, the Rust code in f32): detector: same plates, same layout, IoU >= 0.85, score
//! within 0.05, corners within 10% of the plate's width. The plates are small (20-60 px) and these phone frames
//! carry speckle noise, where the two JPEG decoders differ most: a grey level here and there moves a 30 px plate's
//! box by a pixel or three (worst measured: IoU 0.87, score 0.03, corners 2.9 px on a 53 px plate); a fault in
//! pre-processing (channel order, padding, scale) moves it far more.
//! reader: the same characters in the same rows on every crop the reference reads surely (mean character
//! probability >= 0.9) and on at least 47 of the 50, mean confidence within 0.05 where they agree. The few that
//! may differ are reads the model is unsure of (foreign plates, mean probability 0.62-0.84 measured), where a
//! grey level from the other JPEG decoder tips an uncertain character (where the recogniser weighs the
//! runner-up, and refuses to choose between two valid plates).

use common::{model_dirs, runtime, shared_dir, workspace_root};
use serde::Deserialize;
use std::collections::BTreeMap;
use te_infer::{ModelDirs, PlateDetector, PlateDetectorSettings, PlateReader, PlateReaderSettings, RgbView, Runtime};

mod common;
use te_types::{BBox, PlateLayout};

#[derive(Deserialize)]
struct Reference {
    detector_threshold: f32,
    detections: Vec<RefCrop>,
    reads: BTreeMap<String, RefRead>,
}

/// A vehicle crop of a frame (x1, y1, x2, y2 in whole pixels) and the plates found in it, in crop pixels.
#[derive(Deserialize)]
struct RefCrop {
    image: String,
    crop: [u32; 4],
    plates: Vec<RefPlate>,
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

fn setup() -> (Reference, Runtime, ModelDirs) {
    let reference: Reference = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("tests/fixtures/plate_reference.json")).expect("fixture"),
    )
    .expect("fixture parses");
    (reference, runtime(), model_dirs())
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
fn plate_detections_match_the_python_reference_on_real_vehicle_crops() {
    let (reference, runtime, dirs) = setup();
    let settings = PlateDetectorSettings { score_threshold: reference.detector_threshold, ..Default::default() };
    let mut detector = PlateDetector::load(&runtime, &dirs, settings).expect("load plate detector");
    let mut compared = 0;
    for RefCrop { image, crop: [x1, y1, x2, y2], plates: expected } in &reference.detections {
        let name = image;
        let picture = image::imageops::crop_imm(&load(image), *x1, *y1, x2 - x1, y2 - y1).to_image();
        let got = detector.detect(RgbView::of_image(&picture)).expect("detect");
        for r in expected {
            let rb = BBox { x1: r.bbox[0], y1: r.bbox[1], x2: r.bbox[2], y2: r.bbox[3] };
            let corner_tolerance = 0.1 * rb.width();
            let found = got.iter().any(|d| {
                d.layout == r.layout
                    && d.bbox.iou(&rb) >= 0.85
                    && (d.score - r.score).abs() <= 0.05
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

/// Mean character probability from which a read is sure: a sure read must come out the same in Rust.
const SURE_READ: f32 = 0.9;

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
            assert!(
                expected.confidence < SURE_READ,
                "{name}: {:?} vs reference {:?}, which the reference reads surely ({})",
                got.rows,
                expected.rows,
                expected.confidence
            );
            disagreements.push(format!("{name}: {:?} vs reference {:?}", got.rows, expected.rows));
        }
    }
    assert!(reference.reads.len() >= 50, "the fixture should hold 50 crops");
    assert!(disagreements.len() <= 3, "reads differ from the reference: {disagreements:#?}");
}
