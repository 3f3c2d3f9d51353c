//! Helmet classifier: from the head region of a motorcyclist's box, the probability that a rider on it is
//! bare-headed (the project's own model, `models/helmet_classifier`: ShuffleNetV2 from ImageNet weights,
//! trained on Vietnamese riders, through ort).
//!
//! Input `input` [1,3,96,96] RGB / 255: the box's full width (+5% each side), from 10% of its height above its
//! top to 30% of its height below it, resized bilinear (as OpenCV's INTER_LINEAR) to 96x96, stretched. Output
//! `p_bare` [1,1]. What counts as a verdict (thresholds, "unsure") is the rule's business, not this module's.

use crate::crop::RgbSource;
use crate::letterbox::{resize_into_chw, Canvas};
use crate::{InferError, ModelDirs, Runtime};
use ort::session::Session;
use ort::value::Tensor;
use te_types::BBox;

const MODEL_NAME: &str = "helmet_classifier";
const SIZE: u32 = 96;
/// The head region, as shares of the motorcyclist box: each side, above its top, below its top.
const SIDE: f32 = 0.05;
const ABOVE: f32 = 0.10;
const BELOW: f32 = 0.30;

pub struct HelmetClassifier {
    session: Session,
}

impl std::fmt::Debug for HelmetClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HelmetClassifier").finish()
    }
}

impl HelmetClassifier {
    pub fn load(runtime: &Runtime, dirs: &ModelDirs, threads: usize) -> Result<Self, InferError> {
        Ok(Self { session: runtime.session(MODEL_NAME, dirs, threads)? })
    }

    /// The probability that a rider of the motorcyclist box `rider` (frame pixels) is bare-headed; `None` when
    /// the head region lies outside the frame or is under two pixels on a side.
    pub fn p_bare(&mut self, frame: impl RgbSource, rider: &BBox) -> Result<Option<f32>, InferError> {
        let (width, height) = frame.size();
        let Some(region) = head_region(rider, width, height) else { return Ok(None) };
        let (x1, y1, x2, y2) = region;
        let (w, h) = ((x2 - x1) as usize, (y2 - y1) as usize);
        let pixels = frame.rgb_region(x1, y1, x2, y2);
        let side = SIZE as usize;
        let mut input = vec![0f32; side * side * 3];
        let canvas = Canvas { width: side, height: side, x: 0, y: 0 };
        resize_into_chw(&pixels, w, h, side, side, &canvas, false, |v| v / 255.0, &mut input);
        let session_err = |source: ort::Error| InferError::Session { name: MODEL_NAME.into(), source };
        let tensor = Tensor::from_array(([1i64, 3, SIZE as i64, SIZE as i64], input)).map_err(session_err)?;
        let outputs = self.session.run(ort::inputs!["input" => tensor]).map_err(session_err)?;
        let (_, raw) = outputs["p_bare"].try_extract_tensor::<f32>().map_err(session_err)?;
        match raw.first() {
            Some(p) if p.is_finite() && (0.0..=1.0).contains(p) => Ok(Some(*p)),
            other => Err(InferError::Output {
                name: MODEL_NAME.into(),
                message: format!("expected one probability, got {other:?} of {} values", raw.len()),
            }),
        }
    }
}

/// The motorcyclist box to judge the head of: `bike` with its top moved down to the highest head of the
/// `riders` (people riding in it, YOLOX's boxes), where the box reaches above them. The classifier learnt boxes
/// whose top is the rider's head; a detected box that also takes in a pole, a canopy or a tree above the rider
/// puts that in the head region instead (both wrong tickets on the validation clips' own boxes were such).
/// Never moved up, and `bike` as it is when no rider is given.
pub fn head_box(bike: &BBox, riders: &[BBox]) -> BBox {
    let top = riders.iter().map(|p| p.y1).filter(|y| y.is_finite()).fold(f32::INFINITY, f32::min);
    if top.is_finite() && top > bike.y1 && top < bike.y2 {
        BBox { y1: top, ..*bike }
    } else {
        *bike
    }
}

/// The head region of `rider` in whole pixels, clipped to the frame: (x1, y1, x2, y2), or `None` when it is
/// empty, degenerate or not finite. Rounded as the recipe rounds (to nearest). The region the classifier
/// judges, and the one the evidence picture enlarges.
pub fn head_region(rider: &BBox, width: u32, height: u32) -> Option<(u32, u32, u32, u32)> {
    let (w, h) = (rider.width(), rider.height());
    let edges = [rider.x1 - SIDE * w, rider.y1 - ABOVE * h, rider.x2 + SIDE * w, rider.y1 + BELOW * h];
    if !edges.iter().all(|v| v.is_finite()) {
        return None;
    }
    let x1 = edges[0].round().clamp(0.0, width as f32) as u32;
    let y1 = edges[1].round().clamp(0.0, height as f32) as u32;
    let x2 = edges[2].round().clamp(0.0, width as f32) as u32;
    let y2 = edges[3].round().clamp(0.0, height as f32) as u32;
    (x2 >= x1 + 2 && y2 >= y1 + 2).then_some((x1, y1, x2, y2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_region_is_the_top_of_the_box_clipped_to_the_frame() {
        let rider = BBox { x1: 100.0, y1: 50.0, x2: 200.0, y2: 250.0 };
        assert_eq!(head_region(&rider, 1280, 720), Some((95, 30, 205, 110)));
        let at_edge = BBox { x1: -10.0, y1: 0.0, x2: 90.0, y2: 200.0 };
        assert_eq!(head_region(&at_edge, 1280, 720), Some((0, 0, 95, 60)));
    }

    #[test]
    fn the_head_box_starts_at_the_highest_rider_and_never_above_the_box() {
        let bike = BBox { x1: 100.0, y1: 50.0, x2: 200.0, y2: 400.0 };
        let low = BBox { x1: 110.0, y1: 150.0, x2: 190.0, y2: 300.0 };
        let high = BBox { x1: 120.0, y1: 120.0, x2: 180.0, y2: 280.0 };
        assert_eq!(head_box(&bike, &[low, high]).y1, 120.0);
        assert_eq!(head_box(&bike, &[]), bike);
        let above = BBox { y1: 20.0, ..high };
        assert_eq!(head_box(&bike, &[above]), bike, "a head above the box leaves it as it is");
        let nan = BBox { y1: f32::NAN, ..high };
        assert_eq!(head_box(&bike, &[nan]), bike);
    }

    #[test]
    fn a_box_outside_the_frame_or_not_finite_has_no_head_region() {
        assert_eq!(head_region(&BBox { x1: 2000.0, y1: 10.0, x2: 2100.0, y2: 200.0 }, 1280, 720), None);
        assert_eq!(head_region(&BBox { x1: f32::NAN, y1: 10.0, x2: 100.0, y2: 200.0 }, 1280, 720), None);
    }
}
