//! The Rust helmet classifier gives the recipe's scores (models/reference/helmet_reference.py: onnxruntime +
//! OpenCV) on the same motorcyclist boxes of real frames.
//!
//! Tolerance 0.03 on p_bare: the frames are JPEG, and the `image` crate's decoder and libjpeg-turbo round chroma
//! upsampling differently (the same tolerance as the detectors' reference tests).

use common::{frame_from, model_dirs, runtime, shared_dir, workspace_root};
use serde::Deserialize;
use te_infer::HelmetClassifier;
use te_types::BBox;

mod common;

#[derive(Deserialize)]
struct Reference {
    riders: Vec<RefRider>,
}

#[derive(Deserialize)]
struct RefRider {
    image: String,
    #[serde(rename = "box")]
    bbox: [f32; 4],
    p_bare: f32,
}

#[test]
fn helmet_scores_match_the_python_reference_on_real_riders() {
    let reference: Reference = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("tests/fixtures/helmet_reference.json")).expect("fixture"),
    )
    .expect("fixture parses");
    let mut classifier = HelmetClassifier::load(&runtime(), &model_dirs(), 1).expect("load classifier");
    let mut worst = 0f32;
    for r in &reference.riders {
        let frame = frame_from(&shared_dir().join("data").join(&r.image));
        let rider = BBox { x1: r.bbox[0], y1: r.bbox[1], x2: r.bbox[2], y2: r.bbox[3] };
        let p = classifier.p_bare(&frame, &rider).expect("classify").expect("a head region");
        worst = worst.max((p - r.p_bare).abs());
        assert!((p - r.p_bare).abs() <= 0.03, "{} {:?}: rust {p:.4}, reference {:.4}", r.image, r.bbox, r.p_bare);
    }
    assert!(reference.riders.len() >= 40, "the fixture should hold plenty of riders, found {}", reference.riders.len());
    eprintln!("{} riders, worst difference {worst:.4}", reference.riders.len());
}
