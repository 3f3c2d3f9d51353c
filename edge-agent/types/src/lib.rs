//! The names every stage of the edge agent shares: camera, frame, detection, track, evidence.
//!
//! This crate does no I/O so that every other crate (and the central service's wire types) can depend on it
//! without pulling in GStreamer, ort or sled.

pub mod backoff;
mod geometry;
mod ids;
pub mod pixels;
mod setting;
mod violation;

pub use geometry::{apply_homography, homography, BBox};
pub use ids::{CameraId, DeviceId, EvidenceId, TrackId};
pub use pixels::{Pixels, YuvMatrix, YuvToRgb, I420};
pub use setting::{error_chain, SettingError};
pub use violation::{Moment, MomentRole, SignalPhase, Violation, ViolationKind};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One decoded picture from a camera: packed RGB8 (stills) or the decoder's I420 (video); see [`pixels`].
#[derive(Clone)]
pub struct Frame {
    /// Which camera produced it.
    pub camera: CameraId,
    /// Monotonically increasing per camera, starting at 0; gaps mean frames were dropped upstream.
    pub number: u64,
    /// When the picture was taken (stream time mapped onto the wall clock at the start of the stream).
    pub captured_at: DateTime<Utc>,
    /// Set for still-image cameras: each frame is an unrelated scene, so tracks must not carry across.
    pub scene_cut: bool,
    pub width: u32,
    pub height: u32,
    /// Shared so that the evidence stage can keep a frame without copying it.
    pub pixels: Pixels,
}

impl Frame {
    /// The whole picture as packed RGB8: borrowed for RGB frames, converted for I420 ones.
    pub fn rgb(&self) -> std::borrow::Cow<'_, [u8]> {
        self.pixels.rgb()
    }

    /// Packed RGB8 of the rectangle `x1..x2, y1..y2`, clamped to the frame.
    pub fn rgb_region(&self, x1: u32, y1: u32, x2: u32, y2: u32) -> Vec<u8> {
        match &self.pixels {
            Pixels::Rgb(rgb) => pixels::rgb_region(rgb, self.width, x1, y1, x2, y2),
            Pixels::I420(planes) => planes.rgb_region(x1, y1, x2, y2),
        }
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("camera", &self.camera)
            .field("number", &self.number)
            .field("captured_at", &self.captured_at)
            .field("size", &(self.width, self.height))
            .finish()
    }
}

/// The road-user classes the agent cares about. Everything else a detector sees is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum VehicleClass {
    Bicycle,
    Car,
    Motorbike,
    Bus,
    Truck,
}

impl VehicleClass {
    pub const ALL: [VehicleClass; 5] = [Self::Bicycle, Self::Car, Self::Motorbike, Self::Bus, Self::Truck];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bicycle => "bicycle",
            Self::Car => "car",
            Self::Motorbike => "motorbike",
            Self::Bus => "bus",
            Self::Truck => "truck",
        }
    }

    /// The vehicle as Vietnamese police write it on evidence.
    pub fn vietnamese(self) -> &'static str {
        match self {
            Self::Bicycle => "Xe đạp",
            Self::Car => "Xe ô tô",
            Self::Motorbike => "Xe mô tô",
            Self::Bus => "Xe khách",
            Self::Truck => "Xe tải",
        }
    }
}

impl std::fmt::Display for VehicleClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One object found in one frame, in that frame's pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub class: VehicleClass,
    /// Detector confidence in [0, 1].
    pub score: f32,
    pub bbox: BBox,
}

/// What happened, as the evidence record states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventKind {
    /// A vehicle passed (one event per vehicle pass); recorded where the camera's scene asks for passes.
    VehicleDetected,
    RedLight,
    StopLine,
    WrongWay,
    WrongLane,
    IllegalStopping,
    Speeding,
    NoHelmet,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VehicleDetected => "vehicle_detected",
            Self::RedLight => ViolationKind::RedLight.as_str(),
            Self::StopLine => ViolationKind::StopLine.as_str(),
            Self::WrongWay => ViolationKind::WrongWay.as_str(),
            Self::WrongLane => ViolationKind::WrongLane.as_str(),
            Self::IllegalStopping => ViolationKind::IllegalStopping.as_str(),
            Self::Speeding => ViolationKind::Speeding.as_str(),
            Self::NoHelmet => ViolationKind::NoHelmet.as_str(),
        }
    }

    /// Whether this event is an offence (goes to police review) rather than a plain vehicle pass.
    pub fn is_violation(self) -> bool {
        self != Self::VehicleDetected
    }
}

impl From<ViolationKind> for EventKind {
    fn from(kind: ViolationKind) -> Self {
        match kind {
            ViolationKind::RedLight => Self::RedLight,
            ViolationKind::StopLine => Self::StopLine,
            ViolationKind::WrongWay => Self::WrongWay,
            ViolationKind::WrongLane => Self::WrongLane,
            ViolationKind::IllegalStopping => Self::IllegalStopping,
            ViolationKind::Speeding => Self::Speeding,
            ViolationKind::NoHelmet => Self::NoHelmet,
        }
    }
}

/// How the characters sit on a licence plate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PlateLayout {
    /// Long plate, one row (most cars).
    OneLine,
    /// Square plate, two rows (motorbikes, some cars and trucks).
    TwoLine,
}

impl PlateLayout {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OneLine => "one_line",
            Self::TwoLine => "two_line",
        }
    }
}

/// What the recognition stage made of one plate in one picture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlateRead {
    /// The plate as printed after the grammar checked it, rows joined by `/` (`30A-123.45`, `59-U1/729.79`);
    /// `None` when the characters make no valid plate ("unreadable": never guessed).
    pub text: Option<String>,
    /// The characters exactly as the reader saw them, rows joined by `/`, kept so a reviewer can see why.
    pub raw: String,
    /// Why the grammar refused the read, when `text` is `None`.
    pub unreadable_reason: Option<String>,
    /// Mean per-character reader confidence in [0, 1].
    pub confidence: f32,
    pub layout: PlateLayout,
    /// The plate's corners in the picture's pixels: top-left, top-right, bottom-right, bottom-left.
    pub corners: [[f32; 2]; 4],
    /// Plate detector score; 1.0 when the whole picture was read as the plate (crop datasets).
    pub detector_score: f32,
}

impl PlateRead {
    /// Upper-case characters of the accepted text, without separators: the form for matching and search.
    pub fn compact(&self) -> Option<String> {
        self.text.as_ref().map(|t| t.chars().filter(|c| c.is_ascii_alphanumeric()).collect())
    }

    /// The axis-aligned box around the corners.
    pub fn bbox(&self) -> BBox {
        let xs = self.corners.map(|c| c[0]);
        let ys = self.corners.map(|c| c[1]);
        let min = |v: [f32; 4]| v.into_iter().fold(f32::INFINITY, f32::min);
        let max = |v: [f32; 4]| v.into_iter().fold(f32::NEG_INFINITY, f32::max);
        BBox { x1: min(xs), y1: min(ys), x2: max(xs), y2: max(ys) }
    }
}

/// One plate read that counted towards a track's plate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlateVote {
    /// The frame it was read in.
    pub frame_number: u64,
    /// Accepted text (`None`: unreadable).
    pub text: Option<String>,
    /// The characters as read, rows joined by `/`.
    pub raw: String,
    pub confidence: f32,
    /// How much this read counted: reader confidence x detector score x plate size (small plates count less).
    pub weight: f32,
    /// SHA-256 (hex) of the JPEG of the plate as this frame showed it (cut from the frame around the plate),
    /// so a reviewer sees what was read; absent for reads made without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop_sha256: Option<String>,
}

/// The plate of one vehicle pass: every read on the track voted; the heaviest text wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlateConsensus {
    /// The winning plate as printed; `None` when no read gave a valid plate ("unreadable").
    pub text: Option<String>,
    /// The winner's share of all vote weight, in [0, 1]: 1 means every read agreed.
    pub share: f32,
    /// Every read, in frame order, so a reviewer can see how the plate was decided.
    pub votes: Vec<PlateVote>,
}
