//! Plate detector: finds licence plates, their four corners and their layout in one vehicle's crop (the
//! project's own model, `models/plate_detector`: a ShuffleNetV2 backbone with one head per stride-8 cell,
//! trained on Vietnamese motorbike and car plates, through ort).
//!
//! Input `input` [1,3,H,W] RGB scaled to 0..1, letterboxed top-left with pad 114: 256 on the picture's long
//! side, the other side a multiple of 32 that holds it with at least 32 of padding (a motorcyclist's tall crop
//! gets 160x256 or 192x256, not 256x256 of which half is padding; the model was trained on 256x256 and is
//! fully convolutional). Output [1,(H/8)x(W/8),15], already decoded to input pixels: cx, cy, w, h, objectness, four corners (x, y) top-left, top-right,
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
/// The input's long side.
pub(crate) const INPUT_SIZE: u32 = 256;
/// The model's coarsest stride: the input's sides must be multiples of it.
const MAX_STRIDE: u32 = 32;
/// Grey padding kept beside the picture on the input's short side, at least (see [`input_size`]).
const MIN_PAD: u32 = 32;
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
        let size = input_size(picture.width, picture.height);
        let lb = Letterbox::plan_rect(picture.width, picture.height, size, PadPlacement::TopLeft);
        // A fresh tensor each run: ort takes ownership of it.
        let mut input = Vec::new();
        lb.fill_chw_rect(picture.data, picture.width, picture.height, size, false, PAD, 1.0 / 255.0, &mut input);
        let session_err = |source: ort::Error| InferError::Session { name: MODEL_NAME.into(), source };
        let shape = [1i64, 3, size.1 as i64, size.0 as i64];
        let tensor = Tensor::from_array((shape, input)).map_err(session_err)?;
        let outputs = self.session.run(ort::inputs!["input" => tensor]).map_err(session_err)?;
        let (shape, raw) = outputs["output"].try_extract_tensor::<f32>().map_err(session_err)?;
        let dims: Vec<i64> = shape.iter().copied().collect();
        let plates = decode(raw, &dims, &lb, self.settings.score_threshold)?;
        Ok(suppress(plates, self.settings.nms_iou, |p| (p.score, p.bbox)))
    }
}

/// The input (width, height) for a `width` x `height` picture: 256 on its long side, the other side the next
/// multiple of 32 that holds the scaled picture and at least `MIN_PAD` more. The model learnt plates with the
/// grey padding beside the picture that a 256x256 letterbox gives; with none (the input ending at the
/// picture's edge) it found 2 fewer validation plates and read 4 fewer right.
fn input_size(width: u32, height: u32) -> (u32, u32) {
    let (w, h) = Letterbox::fit_input(width, height, INPUT_SIZE, MAX_STRIDE);
    if w < h {
        ((w + MIN_PAD).min(INPUT_SIZE), h)
    } else if h < w {
        (w, (h + MIN_PAD).min(INPUT_SIZE))
    } else {
        (w, h)
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
    fn a_tall_crop_gets_a_narrow_input_with_grey_beside_it_and_a_square_one_the_whole_input() {
        // 100x200 scales to 128x256: 128 is a multiple of 32, plus the 32 of padding.
        assert_eq!(input_size(100, 200), (160, 256));
        // 300x120 scales to 256x102: 128 holds it, plus 32.
        assert_eq!(input_size(300, 120), (256, 160));
        assert_eq!(input_size(90, 90), (256, 256));
        // Nearly square: never more than 256.
        assert_eq!(input_size(250, 256), (256, 256));
        assert_eq!(input_size(1, 4000), (32 + MIN_PAD, 256));
    }

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
