//! The Rust vehicle detector gives the same detections as the Python reference pipeline
//! (models/reference/yolox_reference.py, onnxruntime + OpenCV) on the same real images, with the square
//! 416x416 input and with the input fitted to the picture.
//!
//! Tolerance (`common::compare_with_reference`): every reference box has a Rust box of the same class with
//! IoU >= 0.97 and a score within 0.01 on PNG, 0.03 on JPEG input (measured worst case 0.027, typical < 0.006).

use common::{compare_with_reference, detection_fixture, model_dirs, runtime};
use te_infer::{VehicleDetector, VehicleDetectorSettings};

mod common;

#[test]
fn vehicle_detections_match_the_python_reference_on_real_street_photos() {
    let reference = detection_fixture("yolox_reference.json");
    // YOLOX alone: the reference is YOLOX's (the motorcyclist detector has its own reference test).
    let settings = VehicleDetectorSettings {
        score_threshold: reference.score_threshold,
        nms_iou: reference.nms_iou,
        threads: 2,
        motorcyclists: None,
        input: te_infer::DetectorInput::Square,
        input_for: Default::default(),
    };
    let mut detector = VehicleDetector::load(&runtime(), &model_dirs(), settings).expect("load detector");
    let compared = compare_with_reference(&reference, 0.97, |frame| detector.detect(frame).expect("detect"));
    assert!(compared >= 40, "the fixture should hold plenty of detections, found {compared}");
}

#[test]
fn fitted_input_detections_match_the_python_reference_on_real_street_photos() {
    let reference = detection_fixture("yolox_fit_reference.json");
    let settings = VehicleDetectorSettings {
        score_threshold: reference.score_threshold,
        nms_iou: reference.nms_iou,
        threads: 2,
        motorcyclists: None,
        input: te_infer::DetectorInput::Fit,
        input_for: Default::default(),
    };
    let mut detector = VehicleDetector::load(&runtime(), &model_dirs(), settings).expect("load detector");
    let compared = compare_with_reference(&reference, 0.97, |frame| detector.detect(frame).expect("detect"));
    assert!(compared >= 40, "the fixture should hold plenty of detections, found {compared}");
}

#[test]
fn a_camera_named_in_input_for_gets_that_input_and_the_others_the_default() {
    let settings = |input_for: &[(&str, te_infer::DetectorInput)]| VehicleDetectorSettings {
        motorcyclists: None,
        input: te_infer::DetectorInput::Fit,
        input_for: input_for.iter().map(|(c, i)| (c.to_string(), *i)).collect(),
        ..Default::default()
    };
    let square = VehicleDetectorSettings { input: te_infer::DetectorInput::Square, ..settings(&[]) };
    let frame = common::frame_from(&common::shared_dir().join("data/vn_scenes/1.jpg"));
    let runtime = runtime();
    let boxes = |settings: VehicleDetectorSettings| -> Vec<[i32; 4]> {
        let mut detector = VehicleDetector::load(&runtime, &model_dirs(), settings).expect("load detector");
        let found = detector.detect(&frame).expect("detect");
        found.iter().map(|d| [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2].map(|v| v.round() as i32)).collect()
    };
    let (on_square, on_fit) = (boxes(square), boxes(settings(&[])));
    assert!(!on_square.is_empty() && on_square != on_fit, "the photo should tell the two inputs apart");
    let named = settings(&[(frame.camera.as_str(), te_infer::DetectorInput::Square)]);
    assert_eq!(boxes(named), on_square, "the named camera gets the square input");
    let other = settings(&[("another-camera", te_infer::DetectorInput::Square)]);
    assert_eq!(boxes(other), on_fit, "a camera not named keeps the default");
}
