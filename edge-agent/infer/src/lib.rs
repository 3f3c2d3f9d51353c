//! Inference stage: the only crate that links ONNX Runtime (through `ort`, loaded dynamically).
//!
//! ```text
//!  Frame (I420 or RGB) -> letterbox (bilinear, pad; converts only the taps it reads) -> ort session -> decode -> NMS -> Vec<Detection>
//!  Frame (I420 or RGB) -> area shrink 512x288 (planes averaged, then converted) -> RiderDetector -> motorcyclists replace the COCO motorbikes under them
//!  vehicle crop -> PlateDetector -> corners -> rectify -> PlateReader (CTC) -> plate grammar -> PlateRead
//!                                     (uncertain between plates: second PlateReader, both weighed by ctc)
//! ```
//!
//! Invariants: every model is checked against the sha256 pinned in `models/manifest.toml` before a session is
//! built; pre- and post-processing match the model authors' reference code (pinned by a test against a
//! Python onnxruntime run on the same images).

mod area;
mod crop;
mod ctc;
mod helmet;
mod impulse;
mod letterbox;
mod manifest;
mod nms;
mod plate_detector;
mod plate_reader;
mod provider;
mod recognizer;
mod rectify;
mod rider;
mod runtime;
mod vehicle;

pub use crop::{cut, vehicle_crop, RgbSource, VEHICLE_MARGIN};
pub use ctc::StepProbs;
pub use helmet::{head_box, head_region, HelmetClassifier};
pub use impulse::{speck_share, NOISY_SHARE};
pub use letterbox::{Letterbox, PadPlacement};
pub use manifest::{ModelDirs, ModelManifest, ModelSpec, Origin};
pub use nms::{non_max_suppression, suppress};
pub use plate_detector::{PlateDetection, PlateDetector, PlateDetectorSettings};
pub use plate_reader::{HiddenChar, PlateFormat, PlateReader, PlateReaderSettings, RawRead, ReadChar, HIDDEN_AT};
pub use provider::{ExecutionSettings, Provider};
pub use recognizer::{is_cut_off, plate_picture, PlateRecognizer, RecognizerSettings};
pub use rectify::{natural_size, rectify, RgbView};
pub use rider::{merge_motorcyclists, rides, RiderDetector, RiderDetectorSettings};
pub use runtime::{resolve_runtime_library, Runtime, RUNTIME_ENV_VAR};
pub use vehicle::{DetectorInput, VehicleDetector, VehicleDetectorSettings};

use std::path::PathBuf;

/// Why inference could not be set up or run.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error(
        "ONNX Runtime library not found (tried: {tried}). Run `scripts/setup` to install it from the pinned \
         onnxruntime PyPI wheel, or point {env} / `runtime_library` in the config at libonnxruntime.so"
    )]
    RuntimeMissing { tried: String, env: &'static str },
    #[error("cannot load ONNX Runtime from {path}: {message}")]
    RuntimeLoad { path: PathBuf, message: String },
    #[error("model {name}: expected at {path} but it is not there. {how_to_get}")]
    ModelMissing { name: String, path: PathBuf, how_to_get: String },
    #[error("model {name}: {path} has sha256 {actual}, but models/manifest.toml pins {expected}; refusing to load it")]
    ModelMismatch { name: String, path: PathBuf, expected: String, actual: String },
    #[error("model {0} is not in models/manifest.toml")]
    UnknownModel(String),
    #[error("models/manifest.toml is invalid: {0}")]
    Manifest(String),
    #[error("model {name}: ONNX Runtime: {source}")]
    Session {
        name: String,
        #[source]
        source: ort::Error,
    },
    #[error(
        "model {name}: execution provider {provider} could not be registered ({source}); the ONNX Runtime \
         library must be a build with it, on a box that has the device (or set fallback_to_cpu = true)"
    )]
    Provider {
        name: String,
        provider: Provider,
        #[source]
        source: ort::Error,
    },
    #[error("model {name}: unexpected output: {message}")]
    Output { name: String, message: String },
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}
