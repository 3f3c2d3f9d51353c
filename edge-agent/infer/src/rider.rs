//! Motorcyclist detector: one box per motorbike and its riders on a whole frame (the project's own model,
//! `models/rider_detector`: FastestDet fine-tuned on Vietnamese street frames, through ort).
//!
//! Input `input` [1,3,288,512] BGR / 255: the frame shrunk to 512x288 by area averaging, stretched, no padding
//! (16:9 cameras are not distorted). Output [1,576,6] per stride-16 cell, already decoded to input pixels: cx,
//! cy, w, h, objectness, class score. Score = objectness^0.6 x class^0.4, then greedy NMS.
//!
//! Why beside YOLOX: the COCO model finds 0.63 of the labelled motorcyclists of the vn_riders validation clips,
//! this one 0.94, and every motorbike missed is a plate never read and a rider never checked for a helmet.

use crate::area::{shrink_i420_into_chw, shrink_into_chw};
use crate::letterbox::{resize_i420_into_chw, resize_into_chw, Canvas};
use crate::nms::non_max_suppression;
use crate::{InferError, ModelDirs, Runtime};
use ort::session::Session;
use ort::value::Tensor;
use te_types::{BBox, Detection, Frame, Pixels, VehicleClass};

const MODEL_NAME: &str = "rider_detector";
const INPUT_W: u32 = 512;
const INPUT_H: u32 = 288;
const ROW: usize = 6;

/// Tuning of the motorcyclist detector.
#[derive(Debug, Clone, PartialEq)]
pub struct RiderDetectorSettings {
    /// Motorcyclists scoring below this are discarded (0.5: recall 0.94, precision 0.69 on the validation clips).
    pub score_threshold: f32,
    /// Boxes overlapping a better one by more than this are dropped.
    pub nms_iou: f32,
    /// ONNX Runtime intra-op threads.
    pub threads: usize,
}

impl Default for RiderDetectorSettings {
    fn default() -> Self {
        Self { score_threshold: 0.5, nms_iou: 0.45, threads: 1 }
    }
}

pub struct RiderDetector {
    session: Session,
    settings: RiderDetectorSettings,
}

impl std::fmt::Debug for RiderDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RiderDetector").field("settings", &self.settings).finish()
    }
}

impl RiderDetector {
    pub fn load(runtime: &Runtime, dirs: &ModelDirs, settings: RiderDetectorSettings) -> Result<Self, InferError> {
        let session = runtime.session(MODEL_NAME, dirs, settings.threads)?;
        Ok(Self { session, settings })
    }

    /// Motorcyclists in one frame (class `Motorbike`, the box spanning bike and riders), best first.
    pub fn detect(&mut self, frame: &Frame) -> Result<Vec<Detection>, InferError> {
        let input = input_tensor(frame);
        let session_err = |source: ort::Error| InferError::Session { name: MODEL_NAME.into(), source };
        let tensor = Tensor::from_array(([1i64, 3, INPUT_H as i64, INPUT_W as i64], input)).map_err(session_err)?;
        let outputs = self.session.run(ort::inputs!["input" => tensor]).map_err(session_err)?;
        let (shape, raw) = outputs["output"].try_extract_tensor::<f32>().map_err(session_err)?;
        let dims: Vec<i64> = shape.iter().copied().collect();
        let scale = (frame.width as f32 / INPUT_W as f32, frame.height as f32 / INPUT_H as f32);
        let found = decode(raw, &dims, scale, self.settings.score_threshold)?;
        Ok(non_max_suppression(found, self.settings.nms_iou)
            .into_iter()
            .map(|d| Detection { bbox: d.bbox.clamp_to(frame.width, frame.height), ..d })
            .collect())
    }
}

/// The frame as the model wants it: 512x288 BGR / 255, area-averaged when shrinking (as the recipe's
/// cv2.INTER_AREA; a video frame's I420 planes are averaged before conversion), bilinear for the rare frame
/// smaller than the input on some side.
fn input_tensor(frame: &Frame) -> Vec<f32> {
    let (w, h) = (INPUT_W as usize, INPUT_H as usize);
    let mut input = vec![0f32; w * h * 3];
    let to_unit = |v: f32| v / 255.0;
    let (width, height) = (frame.width as usize, frame.height as usize);
    let shrink = frame.width >= INPUT_W && frame.height >= INPUT_H;
    let canvas = Canvas { width: w, height: h, x: 0, y: 0 };
    match &frame.pixels {
        Pixels::Rgb(rgb) if shrink => shrink_into_chw(rgb, width, height, w, h, true, to_unit, &mut input),
        Pixels::Rgb(rgb) => resize_into_chw(rgb, width, height, w, h, &canvas, true, to_unit, &mut input),
        Pixels::I420(planes) if shrink => shrink_i420_into_chw(planes, w, h, true, to_unit, &mut input),
        Pixels::I420(planes) => resize_i420_into_chw(planes, w, h, &canvas, true, to_unit, &mut input),
    }
    input
}

/// Rows above threshold in frame pixels (before NMS). `scale` is frame pixels per input pixel on each axis.
fn decode(raw: &[f32], dims: &[i64], scale: (f32, f32), threshold: f32) -> Result<Vec<Detection>, InferError> {
    if dims.len() != 3 || dims[0] != 1 || dims[2] != ROW as i64 || raw.len() != dims[1].max(0) as usize * ROW {
        return Err(InferError::Output {
            name: MODEL_NAME.into(),
            message: format!("expected [1, N, {ROW}], got {dims:?}"),
        });
    }
    Ok(raw
        .chunks_exact(ROW)
        .filter_map(|r| {
            // A negative or NaN score gives NaN here, which no threshold passes.
            let score = r[4].powf(0.6) * r[5].powf(0.4);
            let b = BBox::from_center(r[0] * scale.0, r[1] * scale.1, r[2] * scale.0, r[3] * scale.1);
            let finite = [b.x1, b.y1, b.x2, b.y2].iter().all(|v| v.is_finite());
            (score >= threshold && finite).then_some(Detection { class: VehicleClass::Motorbike, score, bbox: b })
        })
        .collect())
}

/// A motorcyclist box YOLOX gives no support to keeps this share of its score (at most 0.4, below the
/// tracker's default `high_score` of 0.45).
pub const UNSUPPORTED_SCORE: f32 = 0.4;

/// True when `person` rides in the motorcyclist box `bike`: its centre inside the box's width and upper 60%,
/// and most of it inside the box.
pub fn rides(person: &BBox, bike: &BBox) -> bool {
    let (cx, cy) = person.center();
    let inside = person.intersection_area(bike) / person.area().max(1e-6);
    (bike.x1..=bike.x2).contains(&cx) && (bike.y1..=bike.y1 + 0.6 * bike.height()).contains(&cy) && inside >= 0.5
}

/// Joins the COCO detector's vehicles with the motorcyclists: a COCO motorbike or bicycle that is the same
/// vehicle as a motorcyclist box gives way to it (bike and riders, which the plate search and the helmet check
/// need). Same vehicle: they overlap (IoU >= 0.3), or the bike lies inside the box and is a fair part of it. A
/// small bike inside a large box is another vehicle: a parked one behind a rider close to the camera, or one
/// of a row of parked bikes that the model saw as one; dropping it would lose its plate.
///
/// A motorcyclist box keeps its score only with YOLOX's support: a COCO motorbike or bicycle that is the same
/// vehicle, or a person riding in it (`rides`). Without it the box is seen by one model only and its score is
/// multiplied by [`UNSUPPORTED_SCORE`], below the tracker's `high_score` (0.45): in video it can extend a track
/// but never start one, and a still keeps it (its plate can still be read). The motorcyclist model was trained
/// on one class at street level; seen from above it takes a car for a rider (the car-park clip: a grey car at
/// 0.74, where YOLOX sees nothing), and such a box made a false wrong-way record and a false no-helmet record
/// in the demo. A box that is mostly a car, bus or truck YOLOX found is that vehicle, and is dropped.
pub fn merge_motorcyclists(vehicles: Vec<Detection>, motorcyclists: Vec<Detection>, people: &[BBox]) -> Vec<Detection> {
    let same_vehicle = |bike: &BBox, rider: &BBox| {
        let inside = bike.intersection_area(rider) / bike.area().max(1e-6);
        bike.iou(rider) >= 0.3 || (inside >= 0.8 && bike.area() >= 0.3 * rider.area())
    };
    let two_wheeled = |v: &Detection| matches!(v.class, VehicleClass::Motorbike | VehicleClass::Bicycle);
    let four_wheeled = |v: &Detection| matches!(v.class, VehicleClass::Car | VehicleClass::Bus | VehicleClass::Truck);
    let motorcyclists: Vec<Detection> = motorcyclists
        .into_iter()
        .filter(|m| !vehicles.iter().any(|v| four_wheeled(v) && v.bbox.iou(&m.bbox) >= 0.5))
        .map(|m| {
            let supported = vehicles.iter().any(|v| two_wheeled(v) && same_vehicle(&v.bbox, &m.bbox))
                || people.iter().any(|p| rides(p, &m.bbox));
            if supported {
                m
            } else {
                Detection { score: m.score * UNSUPPORTED_SCORE, ..m }
            }
        })
        .collect();
    let mut merged: Vec<Detection> = vehicles
        .into_iter()
        .filter(|v| {
            !matches!(v.class, VehicleClass::Motorbike | VehicleClass::Bicycle)
                || !motorcyclists.iter().any(|m| same_vehicle(&v.bbox, &m.bbox))
        })
        .collect();
    merged.extend(motorcyclists);
    merged.sort_by(|a, b| b.score.total_cmp(&a.score));
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(class: VehicleClass, score: f32, b: [f32; 4]) -> Detection {
        Detection { class, score, bbox: BBox { x1: b[0], y1: b[1], x2: b[2], y2: b[3] } }
    }

    #[test]
    fn rows_decode_to_frame_pixels_with_the_recipes_score() {
        let raw = [100.0, 50.0, 20.0, 40.0, 0.81, 0.5, 10.0, 10.0, 5.0, 5.0, 0.1, 0.9];
        let out = decode(&raw, &[1, 2, 6], (2.0, 3.0), 0.5).expect("decodes");
        assert_eq!(out.len(), 1);
        assert!((out[0].score - 0.81f32.powf(0.6) * 0.5f32.powf(0.4)).abs() < 1e-6);
        assert_eq!(out[0].bbox, BBox { x1: 180.0, y1: 90.0, x2: 220.0, y2: 210.0 });
    }

    #[test]
    fn hostile_rows_and_shapes_are_dropped_or_refused_not_panicked_on() {
        let raw = [f32::NAN, 0.0, 1.0, 1.0, 0.9, 0.9, 0.0, 0.0, 1.0, 1.0, -0.5, 0.9];
        assert!(decode(&raw, &[1, 2, 6], (1.0, 1.0), 0.1).expect("decodes").is_empty());
        assert!(decode(&raw, &[1, 3, 6], (1.0, 1.0), 0.1).is_err());
        assert!(decode(&raw, &[1, -2, 6], (1.0, 1.0), 0.1).is_err());
    }

    #[test]
    fn a_coco_motorbike_under_a_motorcyclist_gives_way_and_cars_and_parked_bikes_stay() {
        let rider = det(VehicleClass::Motorbike, 0.7, [100.0, 50.0, 160.0, 200.0]);
        let bike_under_rider = det(VehicleClass::Motorbike, 0.8, [105.0, 120.0, 158.0, 198.0]);
        let parked = det(VehicleClass::Motorbike, 0.6, [400.0, 120.0, 450.0, 198.0]);
        let car = det(VehicleClass::Car, 0.9, [90.0, 40.0, 300.0, 220.0]);
        let out = merge_motorcyclists(vec![bike_under_rider, parked, car], vec![rider], &[]);
        assert_eq!(out, vec![car, rider, parked]);
    }

    #[test]
    fn a_motorcyclist_box_that_is_mostly_a_car_is_the_car() {
        let car = det(VehicleClass::Car, 0.8, [270.0, 100.0, 480.0, 420.0]);
        let car_seen_as_rider = det(VehicleClass::Motorbike, 0.74, [276.0, 104.0, 476.0, 422.0]);
        let rider_beside = det(VehicleClass::Motorbike, 0.6, [480.0, 200.0, 560.0, 420.0]);
        let person_on_it = BBox { x1: 490.0, y1: 190.0, x2: 550.0, y2: 330.0 };
        let out = merge_motorcyclists(vec![car], vec![car_seen_as_rider, rider_beside], &[person_on_it]);
        assert_eq!(out, vec![car, rider_beside]);
    }

    #[test]
    fn a_motorcyclist_box_that_yolox_sees_neither_a_bike_nor_a_rider_in_is_too_weak_to_start_a_track() {
        // The car park from above: the motorcyclist model boxes a car that YOLOX does not see at all.
        let car_roof = det(VehicleClass::Motorbike, 0.74, [276.0, 104.0, 476.0, 422.0]);
        let pedestrian_beside = BBox { x1: 500.0, y1: 100.0, x2: 560.0, y2: 300.0 };
        let weak = merge_motorcyclists(vec![], vec![car_roof], &[pedestrian_beside]);
        assert_eq!(weak.len(), 1);
        assert!(weak[0].score < 0.45, "below the tracker's high_score: {}", weak[0].score);
        let rider_on_it = BBox { x1: 300.0, y1: 90.0, x2: 450.0, y2: 300.0 };
        assert_eq!(merge_motorcyclists(vec![], vec![car_roof], &[rider_on_it]), vec![car_roof]);
    }

    #[test]
    fn a_small_bike_inside_a_large_motorcyclist_box_is_another_vehicle_and_stays() {
        let close_rider = det(VehicleClass::Motorbike, 0.7, [0.0, 100.0, 700.0, 720.0]);
        let parked_behind = det(VehicleClass::Motorbike, 0.6, [440.0, 190.0, 500.0, 300.0]);
        let person_on_it = BBox { x1: 100.0, y1: 90.0, x2: 500.0, y2: 500.0 };
        let out = merge_motorcyclists(vec![parked_behind], vec![close_rider], &[person_on_it]);
        assert_eq!(out, vec![close_rider, parked_behind]);
    }

    #[test]
    fn a_frame_smaller_than_the_input_is_stretched_not_refused() {
        let frame = Frame {
            camera: te_types::CameraId::new("test"),
            number: 0,
            captured_at: chrono::Utc::now(),
            scene_cut: false,
            width: 100,
            height: 50,
            pixels: Pixels::Rgb(std::sync::Arc::new(vec![255u8; 100 * 50 * 3])),
        };
        let input = input_tensor(&frame);
        assert_eq!(input.len(), 3 * 512 * 288);
        assert!(input.iter().all(|v| (*v - 1.0).abs() < 1e-6));
    }
}
