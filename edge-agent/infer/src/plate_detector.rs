//! Plate detector: finds licence plates, their four corners and their layout in one vehicle's crop (the
//! project's own model, `models/plate_detector`: a ShuffleNetV2 backbone with one head per stride-8 cell,
//! trained on Vietnamese motorbike and car plates, through ort).
//!
//! Input `input` [1,3,256,256] RGB scaled to 0..1, letterboxed top-left with pad 114. Output [1,1024,15],
//! already decoded to input pixels: cx, cy, w, h, objectness, four corners (x, y) top-left, top-right,
//! bottom-right, bottom-left, then two class scores (one-row plate, two-row plate). Score = objectness x best
//! class score. It looks at a vehicle's crop, not a whole frame: a 15 px plate of a 1080p junction view is
//! ~40 px in the crop of its motorbike, and one small run per vehicle costs ~2 ms on one core.

use crate::letterbox::{Letterbox, PadPlacement};
use crate::nms::suppress;
use crate::rectify::RgbView;
use crate::{InferError, ModelDirs, Runtime};
use ort::session::Session;
use ort::value::Tensor;
use te_types::{BBox, PlateLayout};

const MODEL_NAME: &str = "plate_detector";
pub(crate) const INPUT_SIZE: u32 = 256;
const PAD: u8 = 114;
const ROW: usize = 15;

/// Tuning of the plate detector.
#[derive(Debug, Clone)]
pub struct PlateDetectorSettings {
    /// Plates scoring below this are discarded.
    pub score_threshold: f32,
    /// Plates overlapping a better one by more than this are dropped.
    pub nms_iou: f32,
    /// ONNX Runtime intra-op threads.
    pub threads: usize,
}

impl Default for PlateDetectorSettings {
    fn default() -> Self {
        Self { score_threshold: 0.5, nms_iou: 0.5, threads: 1 }
    }
}

/// One plate found in a picture, in that picture's pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct PlateDetection {
    pub score: f32,
    pub bbox: BBox,
    /// Top-left, top-right, bottom-right, bottom-left.
    pub corners: [[f32; 2]; 4],
    pub layout: PlateLayout,
}

pub struct PlateDetector {
    session: Session,
    settings: PlateDetectorSettings,
}

impl std::fmt::Debug for PlateDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlateDetector").field("settings", &self.settings).finish()
    }
}

impl PlateDetector {
    pub fn load(runtime: &Runtime, dirs: &ModelDirs, settings: PlateDetectorSettings) -> Result<Self, InferError> {
        let session = runtime.session(MODEL_NAME, dirs, settings.threads)?;
        Ok(Self { session, settings })
    }

    /// Plates overlapping a better one by more than this are dropped.
    pub(crate) fn nms_iou(&self) -> f32 {
        self.settings.nms_iou
    }

    /// Plates in `picture`, best first.
    pub fn detect(&mut self, picture: RgbView<'_>) -> Result<Vec<PlateDetection>, InferError> {
        let lb = Letterbox::plan(picture.width, picture.height, INPUT_SIZE, PadPlacement::TopLeft);
        // A fresh tensor each run: ort takes ownership of it.
        let mut input = Vec::new();
        lb.fill_chw(picture.data, picture.width, picture.height, INPUT_SIZE, false, PAD, 1.0 / 255.0, &mut input);
        let session_err = |source: ort::Error| InferError::Session { name: MODEL_NAME.into(), source };
        let side = INPUT_SIZE as i64;
        let tensor = Tensor::from_array(([1i64, 3, side, side], input)).map_err(session_err)?;
        let outputs = self.session.run(ort::inputs!["input" => tensor]).map_err(session_err)?;
        let (shape, raw) = outputs["output"].try_extract_tensor::<f32>().map_err(session_err)?;
        let dims: Vec<i64> = shape.iter().copied().collect();
        let plates = decode(raw, &dims, &lb, self.settings.score_threshold)?;
        Ok(suppress(plates, self.settings.nms_iou, |p| (p.score, p.bbox)))
    }
}

/// Rows above threshold, mapped back to picture pixels (before NMS).
fn decode(raw: &[f32], dims: &[i64], lb: &Letterbox, threshold: f32) -> Result<Vec<PlateDetection>, InferError> {
    if dims.len() != 3 || dims[0] != 1 || dims[2] != ROW as i64 || raw.len() != dims[1] as usize * ROW {
        return Err(InferError::Output {
            name: MODEL_NAME.into(),
            message: format!("expected [1, N, {ROW}], got {dims:?}"),
        });
    }
    let to_picture = |x: f32, y: f32| [(x - lb.pad_x) / lb.scale, (y - lb.pad_y) / lb.scale];
    Ok(raw
        .chunks_exact(ROW)
        .filter(|r| r[4] >= threshold)
        .filter_map(|r| {
            let (layout, class_score) =
                if r[13] >= r[14] { (PlateLayout::OneLine, r[13]) } else { (PlateLayout::TwoLine, r[14]) };
            let score = r[4] * class_score;
            (score >= threshold).then(|| PlateDetection {
                score,
                bbox: lb.to_frame(BBox::from_center(r[0], r[1], r[2], r[3])),
                corners: std::array::from_fn(|i| to_picture(r[5 + 2 * i], r[6 + 2 * i])),
                layout,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_decode_to_picture_pixels_with_the_better_class() {
        let lb = Letterbox::plan(512, 256, INPUT_SIZE, PadPlacement::TopLeft); // scale 0.5, no pad
        let mut row = [0f32; ROW];
        row[..5].copy_from_slice(&[100.0, 100.0, 40.0, 20.0, 0.9]);
        row[5..13].copy_from_slice(&[80.0, 90.0, 120.0, 90.0, 120.0, 110.0, 80.0, 110.0]);
        row[13..].copy_from_slice(&[0.2, 0.8]);
        let mut weak = row;
        weak[4] = 0.1;
        let raw: Vec<f32> = row.iter().chain(weak.iter()).copied().collect();
        let out = decode(&raw, &[1, 2, ROW as i64], &lb, 0.5).expect("decodes");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].layout, PlateLayout::TwoLine);
        assert!((out[0].score - 0.72).abs() < 1e-6);
        assert_eq!(out[0].bbox, BBox { x1: 160.0, y1: 180.0, x2: 240.0, y2: 220.0 });
        assert_eq!(out[0].corners[2], [240.0, 220.0]);
    }

    #[test]
    fn a_wrong_output_shape_is_an_error_not_a_panic() {
        let lb = Letterbox::plan(10, 10, INPUT_SIZE, PadPlacement::TopLeft);
        assert!(decode(&[0.0; 14], &[1, 1, 14], &lb, 0.5).is_err());
    }
}
