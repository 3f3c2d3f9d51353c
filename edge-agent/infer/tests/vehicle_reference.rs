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
    };
    let mut detector = VehicleDetector::load(&runtime(), &model_dirs(), settings).expect("load detector");
    let compared = compare_with_reference(&reference, 0.97, |frame| detector.detect(frame).expect("detect"));
    assert!(compared >= 40, "the fixture should hold plenty of detections, found {compared}");
}
