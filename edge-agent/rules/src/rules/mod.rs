//! One module per offence. Each looks at one vehicle's new sample against the scene and reports at most one
//! violation per vehicle per configured line, lane, zone or section.

pub(crate) mod illegal_stopping;
pub(crate) mod no_helmet;
pub(crate) mod red_light;
pub(crate) mod speeding;
pub(crate) mod wrong_lane;
pub(crate) mod wrong_way;

use crate::Sample;
use chrono::Duration;

/// The sample where the path `prev -> cur` was at fraction `t`, timed by interpolation (frames are tens of
/// milliseconds apart; speed sections are measured in fractions of a second).
pub(crate) fn interpolate(prev: crate::Sample, cur: Sample, t: f32) -> chrono::DateTime<chrono::Utc> {
    let span = (cur.at - prev.at).num_microseconds().unwrap_or(0) as f64;
    prev.at + Duration::microseconds((span * f64::from(t)) as i64)
}
