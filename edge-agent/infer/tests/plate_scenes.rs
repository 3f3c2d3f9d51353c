//! Plates on Vietnamese streets, along the agent's path (vehicle detector -> each vehicle's crop -> plate
//! detector -> reader -> grammar), with the real models on the team's street photos.

use common::{frame_from, model_dirs, runtime, shared_dir};
use te_infer::{PlateRecognizer, RecognizerSettings, RgbView, VehicleDetector, VehicleDetectorSettings};

mod common;

/// Every plate read (valid or not) in one photo, as the pipeline reads vehicles of at least 48 px.
fn reads_in(photo: &str) -> Vec<te_types::PlateRead> {
    let runtime = runtime();
    let dirs = model_dirs();
    let mut vehicles = VehicleDetector::load(&runtime, &dirs, VehicleDetectorSettings::default()).expect("vehicles");
    let mut plates = PlateRecognizer::load(&runtime, &dirs, RecognizerSettings::default()).expect("plates");
    let frame = frame_from(&shared_dir().join("data/vn_scenes").join(photo));
    let mut reads = Vec::new();
    for vehicle in vehicles.detect(&frame).expect("detect").iter().filter(|d| d.bbox.width() >= 48.0) {
        if let Some((crop, _)) = te_infer::vehicle_crop(&frame, &vehicle.bbox) {
            reads.extend(plates.read_plates(RgbView::of_image(&crop)).expect("read"));
        }
    }
    reads
}

#[test]
fn the_square_motorbike_plates_in_street_photo_1_are_found_and_read() {
    // Issue 17: two large, sharp two-row motorbike plates that the Chinese-trained detector never found.
    let texts: Vec<String> = reads_in("1.jpg").into_iter().filter_map(|r| r.text).collect();
    for plate in ["59-G1/631.88", "59-U1/161.24"] {
        assert!(texts.iter().any(|t| t == plate), "{plate} not read in 1.jpg; read {texts:?}");
    }
}
