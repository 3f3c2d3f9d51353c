//! Violations: what the rules stage found a vehicle doing, with the moments that show it.
//!
//! A violation names its rule (the zone or line it broke, as configured), its evidence moments (before, at,
//! after) by frame, and the measured facts a reviewer needs to decide (signal phase, speed, dwell time).

use crate::TrackId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The traffic offences the rules stage judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ViolationKind {
    /// Crossed the stop line into the junction while the signal was red.
    RedLight,
    /// Stopped past the stop line while the signal was red (did not run the light, but blocks the crossing).
    StopLine,
    /// Drove against the lane's direction of travel.
    WrongWay,
    /// Drove in a lane not open to its vehicle class (at that time of day).
    WrongLane,
    /// Stood still in a no-stopping zone longer than allowed.
    IllegalStopping,
    /// Average speed over a measured section above the limit.
    Speeding,
    /// A rider (driver or passenger) of a motorbike without a helmet.
    NoHelmet,
}

impl ViolationKind {
    pub const ALL: [ViolationKind; 7] = [
        Self::RedLight,
        Self::StopLine,
        Self::WrongWay,
        Self::WrongLane,
        Self::IllegalStopping,
        Self::Speeding,
        Self::NoHelmet,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RedLight => "red_light",
            Self::StopLine => "stop_line",
            Self::WrongWay => "wrong_way",
            Self::WrongLane => "wrong_lane",
            Self::IllegalStopping => "illegal_stopping",
            Self::Speeding => "speeding",
            Self::NoHelmet => "no_helmet",
        }
    }

    /// The offence as Vietnamese police write it.
    pub fn vietnamese(self) -> &'static str {
        match self {
            Self::RedLight => "Vượt đèn đỏ",
            Self::StopLine => "Dừng xe vượt vạch dừng",
            Self::WrongWay => "Đi ngược chiều",
            Self::WrongLane => "Đi sai làn đường",
            Self::IllegalStopping => "Dừng, đỗ xe sai quy định",
            Self::Speeding => "Chạy quá tốc độ",
            Self::NoHelmet => "Không đội mũ bảo hiểm",
        }
    }
}

impl ViolationKind {
    /// The offence in English, for the review UI's English view.
    pub fn english(self) -> &'static str {
        match self {
            Self::RedLight => "Red light",
            Self::StopLine => "Stopped past the stop line",
            Self::WrongWay => "Wrong way",
            Self::WrongLane => "Wrong lane",
            Self::IllegalStopping => "Illegal stopping or parking",
            Self::Speeding => "Speeding",
            Self::NoHelmet => "Riding without a helmet",
        }
    }
}

impl std::fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the signal showed the vehicle's approach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SignalPhase {
    Red,
    Yellow,
    Green,
    /// Not known (no signal source, dark or conflicting heads, stale controller input): never a red light.
    Unknown,
}

impl SignalPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Red => "red",
            Self::Yellow => "yellow",
            Self::Green => "green",
            Self::Unknown => "unknown",
        }
    }

    /// The lamp's colour as written on Vietnamese evidence ("đèn đỏ").
    pub fn vietnamese(self) -> &'static str {
        match self {
            Self::Red => "đỏ",
            Self::Yellow => "vàng",
            Self::Green => "xanh",
            Self::Unknown => "không rõ",
        }
    }
}

/// Which part of the story a moment shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MomentRole {
    /// Before the offence (e.g. in front of the stop line while red).
    Before,
    /// The offence itself (the crossing, the limit reached).
    At,
    /// After it (e.g. in the junction).
    After,
}

/// One frame of a violation's evidence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Moment {
    pub role: MomentRole,
    pub frame_number: u64,
    pub captured_at: DateTime<Utc>,
}

/// One offence by one tracked vehicle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Violation {
    pub kind: ViolationKind,
    pub track: TrackId,
    /// The configured zone, lane, line or section it broke.
    pub rule: String,
    /// When the offence happened (the `at` moment).
    pub at: DateTime<Utc>,
    /// The frames that show it, before / at / after; `after` is added when it has been seen.
    pub moments: Vec<Moment>,
    /// Signal phase at the moment, for signal rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<SignalPhase>,
    /// Seconds the signal had been red at the moment, for signal rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub red_for_s: Option<f32>,
    /// Average speed over the section, km/h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_kmh: Option<f32>,
    /// The section's limit, km/h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_kmh: Option<f32>,
    /// Seconds stood still in the zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dwell_s: Option<f32>,
    /// False when a measurement backs the offence but the camera has no certified calibration (speed):
    /// the record says "uncertified measurement" and needs a reviewer's decision.
    #[serde(default = "certified_default")]
    pub certified: bool,
    /// One line for the reviewer, in English: what was measured.
    pub summary: String,
}

fn certified_default() -> bool {
    true
}
