//! Vehicle detector: YOLOX (COCO) through ort, reduced to the vehicle classes, joined (when set) with the
//! project's motorcyclist detector, whose boxes replace the COCO motorbikes under them (`crate::rider`).
//!
//! YOLOX-Nano 416: input `images` [1,3,H,W] BGR 0..255, letterboxed top-left with pad 114; output [1,N,85]
//! raw per anchor-free cell: (x, y) offsets in grid cells, log (w, h), objectness, 80 class scores.
//!
//! Two inputs ([`DetectorInput`]): the square 416x416 the model was published with (the reference, and the
//! quality oracle of `edge-agent bench`), or one fitted to the frame (416 wide, the height a multiple of 32 that
//! holds the picture: 416x256 for 16:9), which skips the rows of padding and costs about 0.6 of the time.

use crate::letterbox::{Letterbox, PadPlacement};
use crate::rider::{merge_motorcyclists, RiderDetector, RiderDetectorSettings};
use crate::{nms::non_max_suppression, InferError, ModelDirs, Runtime};
use ort::session::Session;
use ort::value::Tensor;
use te_types::{BBox, Detection, Frame, Pixels, VehicleClass};

const MODEL_NAME: &str = "vehicle";
/// The same weights with a named input size (`models/vehicle/derive_dynamic.py`).
const FIT_MODEL_NAME: &str = "vehicle_fit";
/// The input's long side.
const INPUT_SIZE: u32 = 416;
/// The coarsest stride: the input's sides must be multiples of it.
const MAX_STRIDE: u32 = 32;
const STRIDES: [u32; 3] = [8, 16, 32];
const COCO_CLASSES: usize = 80;

/// Tuning of the vehicle detector.
#[derive(Debug, Clone)]
pub struct VehicleDetectorSettings {
    /// Detections scoring below this (objectness x class) are discarded.
    pub score_threshold: f32,
    /// Same-class boxes overlapping more than this are merged by NMS.
    pub nms_iou: f32,
    /// ONNX Runtime intra-op threads.
    pub threads: usize,
    /// The motorcyclist detector run beside YOLOX; `None` runs YOLOX alone.
    pub motorcyclists: Option<RiderDetectorSettings>,
    /// The shape of YOLOX's input.
    pub input: DetectorInput,
    /// Cameras (by id) whose input differs from `input`: a view where the quality gate did not clear it.
    pub input_for: std::collections::BTreeMap<String, DetectorInput>,
}

/// The shape of the vehicle detector's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorInput {
    /// 416 on the frame's long side, the short side the next multiple of 32 (416x256 for 16:9).
    #[default]
    Fit,
    /// 416x416, as the model was published: the reference and the quality oracle.
    Square,
}

impl Default for VehicleDetectorSettings {
    fn default() -> Self {
        Self {
            score_threshold: 0.3,
            nms_iou: 0.45,
            threads: 2,
            motorcyclists: Some(RiderDetectorSettings::default()),
            input: DetectorInput::default(),
            input_for: Default::default(),
        }
    }
}

impl VehicleDetectorSettings {
    /// The same settings with `threads` ONNX Runtime threads for each model.
    /// The input shape for one camera's frames.
    pub fn input_of(&self, camera: &str) -> DetectorInput {
        self.input_for.get(camera).copied().unwrap_or(self.input)
    }

    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        if let Some(m) = self.motorcyclists.as_mut() {
            m.threads = threads;
        }
        self
    }
}

/// The COCO ids the agent keeps, and what they are to us.
fn vehicle_class(coco_id: usize) -> Option<VehicleClass> {
    match coco_id {
        1 => Some(VehicleClass::Bicycle),
        2 => Some(VehicleClass::Car),
        3 => Some(VehicleClass::Motorbike),
        5 => Some(VehicleClass::Bus),
        7 => Some(VehicleClass::Truck),
        _ => None,
    }
}

pub struct VehicleDetector {
    session: Session,
    settings: VehicleDetectorSettings,
    motorcyclists: Option<RiderDetector>,
    /// The people YOLOX saw in the last frame `detect` ran on (COCO class 0), best first.
    people: Vec<BBox>,
}

impl std::fmt::Debug for VehicleDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VehicleDetector").field("settings", &self.settings).finish()
    }
}

impl VehicleDetector {
    /// Loads the detector from `model_dir` after checking it against the manifest.
    pub fn load(runtime: &Runtime, dirs: &ModelDirs, settings: VehicleDetectorSettings) -> Result<Self, InferError> {
        // The published file has a fixed 416x416 input; the derived one (same nodes and weights) takes any.
        let any_fit =
            std::iter::once(&settings.input).chain(settings.input_for.values()).any(|i| *i == DetectorInput::Fit);
        let name = if any_fit { FIT_MODEL_NAME } else { MODEL_NAME };
        let session = runtime.session(name, dirs, settings.threads)?;
        let motorcyclists = match &settings.motorcyclists {
            Some(rider_settings) => Some(RiderDetector::load(runtime, dirs, rider_settings.clone())?),
            None => None,
        };
        Ok(Self { session, settings, motorcyclists, people: Vec::new() })
    }

    /// Finds vehicles in one frame; boxes are in the frame's pixels, best score first.
    pub fn detect(&mut self, frame: &Frame) -> Result<Vec<Detection>, InferError> {
        let vehicles = self.detect_coco(frame)?;
        match self.motorcyclists.as_mut() {
            Some(riders) => Ok(merge_motorcyclists(vehicles, riders.detect(frame)?, &self.people)),
            None => Ok(vehicles),
        }
    }

    /// The people YOLOX saw in the frame of the last `detect` call, in its pixels, best first. The helmet
    /// check asks for one on a motorcyclist before it judges the head: a second model's word that the box holds
    /// a rider (the motorcyclist model alone takes a car seen from above for one).
    pub fn people(&self) -> &[BBox] {
        &self.people
    }

    /// YOLOX's vehicles alone (its people kept aside in `self.people`).
    fn detect_coco(&mut self, frame: &Frame) -> Result<Vec<Detection>, InferError> {
        let input_size = match self.settings.input_of(frame.camera.as_str()) {
            DetectorInput::Fit => Letterbox::fit_input(frame.width, frame.height, INPUT_SIZE, MAX_STRIDE),
            DetectorInput::Square => (INPUT_SIZE, INPUT_SIZE),
        };
        let lb = Letterbox::plan_rect(frame.width, frame.height, input_size, PadPlacement::TopLeft);
        // A fresh buffer per frame: the tensor takes it by value (2 MB, small beside the run itself).
        let mut input = Vec::new();
        match &frame.pixels {
            Pixels::Rgb(rgb) => {
                lb.fill_chw_rect(rgb, frame.width, frame.height, input_size, true, 114, 1.0, &mut input)
            }
            Pixels::I420(planes) => lb.fill_chw_rect_i420(planes, input_size, true, 114, 1.0, &mut input),
        }
        let session_err = |source: ort::Error| InferError::Session { name: MODEL_NAME.into(), source };
        let shape = [1i64, 3, input_size.1 as i64, input_size.0 as i64];
        let tensor = Tensor::from_array((shape, input)).map_err(session_err)?;
        let outputs = self.session.run(ort::inputs!["images" => tensor]).map_err(session_err)?;
        let (shape, raw) = outputs["output"].try_extract_tensor::<f32>().map_err(session_err)?;
        let dims: Vec<i64> = shape.iter().copied().collect();
        let (detections, people) = decode(raw, &dims, input_size, &lb, &self.settings)?;
        self.people = crate::nms::suppress(people, self.settings.nms_iou, |p| *p)
            .into_iter()
            .map(|(_, b)| b.clamp_to(frame.width, frame.height))
            .collect();
        Ok(non_max_suppression(detections, self.settings.nms_iou)
            .into_iter()
            .map(|d| Detection { bbox: d.bbox.clamp_to(frame.width, frame.height), ..d })
            .collect())
    }
}

/// COCO's class id for a person.
const PERSON: usize = 0;

/// Turns raw YOLOX output into vehicle detections and people (score, box) above threshold, in frame pixels
/// (before NMS).
#[allow(clippy::type_complexity)]
fn decode(
    raw: &[f32],
    dims: &[i64],
    input_size: (u32, u32),
    lb: &Letterbox,
    settings: &VehicleDetectorSettings,
) -> Result<(Vec<Detection>, Vec<(f32, BBox)>), InferError> {
    let (in_w, in_h) = input_size;
    let cells: usize = STRIDES.iter().map(|s| ((in_w / s) * (in_h / s)) as usize).sum();
    let row = 5 + COCO_CLASSES;
    if dims != [1, cells as i64, row as i64] || raw.len() != cells * row {
        return Err(InferError::Output {
            name: MODEL_NAME.into(),
            message: format!("expected [1, {cells}, {row}], got {dims:?}"),
        });
    }
    let mut detections = Vec::new();
    let mut people = Vec::new();
    let mut cell = 0usize;
    for stride in STRIDES {
        for gy in 0..in_h / stride {
            for gx in 0..in_w / stride {
                let r = &raw[cell * row..(cell + 1) * row];
                cell += 1;
                let objectness = r[4];
                if objectness < settings.score_threshold {
                    continue; // score = obj * cls <= obj: cannot pass
                }
                let Some((coco_id, class_score)) =
                    r[5..].iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, s)| (i, *s))
                else {
                    continue;
                };
                let score = objectness * class_score;
                let class = vehicle_class(coco_id);
                if score < settings.score_threshold || (class.is_none() && coco_id != PERSON) {
                    continue;
                }
                let s = stride as f32;
                let cx = (r[0] + gx as f32) * s;
                let cy = (r[1] + gy as f32) * s;
                let (w, h) = (r[2].exp() * s, r[3].exp() * s);
                let bbox = lb.to_frame(BBox::from_center(cx, cy, w, h));
                match class {
                    Some(class) => detections.push(Detection { class, score, bbox }),
                    None => people.push((score, bbox)),
                }
            }
        }
    }
    Ok((detections, people))
}
