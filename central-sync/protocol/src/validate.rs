//! Every field of what a box sends, checked before anything is stored: a registered box is trusted to be
//! who it is, not to send sane values. Numbers must be finite and in range (an `f32` of 1e39 is infinity and
//! would be stored as `null`), times must lie in a window around now (a year 262142 overflows date
//! arithmetic), counters must stay far from the integer limits, and every text has a length limit and no
//! control characters (a newline in an id forges log lines; a 4 MiB location bloats every page).

use crate::{is_sha256_hex, EvidenceRecord, Heartbeat};
use chrono::{DateTime, Duration, TimeZone, Utc};

/// Ids of devices and cameras: this long at most, letters, digits and `-_.:` only.
pub const MAX_ID_CHARS: usize = 64;
/// A camera's place as configured on the box.
pub const MAX_LOCATION_CHARS: usize = 200;
/// Rule names, clock sources, camera states, agent versions.
pub const MAX_NAME_CHARS: usize = 120;
/// The violation's one-line summary and a heartbeat's alarm.
pub const MAX_TEXT_CHARS: usize = 1000;
/// Plate votes on one record and moments of one violation.
pub const MAX_VOTES: usize = 64;
pub const MAX_MOMENTS: usize = 8;
/// Cameras in one heartbeat.
pub const MAX_CAMERAS: usize = 256;
/// Frame numbers, track ids and counters stay exact in JSON numbers and in a signed 64-bit column.
pub const MAX_COUNTER: u64 = (1 << 53) - 1;
/// A box's chain position: four billion records is a century of a busy camera.
pub const MAX_SEQUENCE: u64 = 1 << 32;
/// Pixel coordinates: no camera is this large.
pub const MAX_PIXEL: f32 = 100_000.0;
/// How far ahead of the centre's clock a box's time may be (a box whose clock is off is flagged, not refused;
/// beyond this it is no longer a time at all).
pub const MAX_AHEAD_HOURS: i64 = 24;

/// The first field that is out of bounds, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct FieldError {
    pub field: String,
    pub why: String,
}

fn bad(field: impl Into<String>, why: impl Into<String>) -> FieldError {
    FieldError { field: field.into(), why: why.into() }
}

/// The earliest time any record may carry (the product did not exist before).
fn earliest() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn time(field: &str, t: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), FieldError> {
    let latest = now + Duration::hours(MAX_AHEAD_HOURS);
    if t < earliest() || t > latest {
        return Err(bad(field, format!("{t} is outside 2020-01-01 .. {MAX_AHEAD_HOURS} h from now")));
    }
    Ok(())
}

pub fn check_id(field: &str, s: &str) -> Result<(), FieldError> {
    if s.is_empty() || s.chars().count() > MAX_ID_CHARS {
        return Err(bad(field, format!("must be 1 to {MAX_ID_CHARS} characters")));
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)) {
        return Err(bad(field, "may hold only letters, digits and - _ . :"));
    }
    Ok(())
}

/// Text shown to people: at most `max` characters, no control characters.
pub fn check_text(field: &str, s: &str, max: usize) -> Result<(), FieldError> {
    if s.chars().count() > max {
        return Err(bad(field, format!("longer than {max} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(bad(field, "holds a control character"));
    }
    Ok(())
}

fn number(field: &str, v: f32, min: f32, max: f32) -> Result<(), FieldError> {
    if !(v.is_finite() && (min..=max).contains(&v)) {
        return Err(bad(field, format!("{v} is not a number in [{min}, {max}]")));
    }
    Ok(())
}

fn counter(field: &str, v: u64, max: u64) -> Result<(), FieldError> {
    if v > max {
        return Err(bad(field, format!("{v} is over {max}")));
    }
    Ok(())
}

fn sha(field: &str, s: &str) -> Result<(), FieldError> {
    if !is_sha256_hex(s) {
        return Err(bad(field, "is not a SHA-256 in lowercase hex"));
    }
    Ok(())
}

impl EvidenceRecord {
    /// Checks every field's range and length (see the module docs); `now` is the receiver's clock.
    pub fn check_fields(&self, now: DateTime<Utc>) -> Result<(), FieldError> {
        check_id("device_id", self.device_id.as_str())?;
        check_id("camera_id", self.camera_id.as_str())?;
        check_text("location", &self.location, MAX_LOCATION_CHARS)?;
        time("captured_at", self.captured_at, now)?;
        time("recorded_at", self.recorded_at, now)?;
        counter("frame_number", self.frame_number, MAX_COUNTER)?;
        counter("track_id", self.track_id.0, MAX_COUNTER)?;
        number("detection_score", self.detection_score, 0.0, 1.0)?;
        let b = &self.bbox;
        for (name, v) in [("bbox.x1", b.x1), ("bbox.y1", b.y1), ("bbox.x2", b.x2), ("bbox.y2", b.y2)] {
            number(name, v, -MAX_PIXEL, MAX_PIXEL)?;
        }
        if b.x2 < b.x1 || b.y2 < b.y1 {
            return Err(bad("bbox", "x2 < x1 or y2 < y1"));
        }
        sha("overview_sha256", &self.overview_sha256)?;
        if let Some(clip) = &self.clip_sha256 {
            sha("clip_sha256", clip)?;
        }
        if let Some(v) = &self.violation {
            counter("violation.track", v.track.0, MAX_COUNTER)?;
            check_text("violation.rule", &v.rule, MAX_NAME_CHARS)?;
            time("violation.at", v.at, now)?;
            if v.moments.len() > MAX_MOMENTS {
                return Err(bad("violation.moments", format!("more than {MAX_MOMENTS}")));
            }
            for (i, m) in v.moments.iter().enumerate() {
                counter(&format!("violation.moments[{i}].frame_number"), m.frame_number, MAX_COUNTER)?;
                time(&format!("violation.moments[{i}].captured_at"), m.captured_at, now)?;
            }
            let optional = [
                ("violation.red_for_s", v.red_for_s, 0.0, 86_400.0),
                ("violation.speed_kmh", v.speed_kmh, 0.0, 1_000.0),
                ("violation.limit_kmh", v.limit_kmh, 0.0, 1_000.0),
                ("violation.dwell_s", v.dwell_s, 0.0, 604_800.0),
            ];
            for (name, value, min, max) in optional {
                if let Some(value) = value {
                    number(name, value, min, max)?;
                }
            }
            check_text("violation.summary", &v.summary, MAX_TEXT_CHARS)?;
        }
        if let Some(c) = &self.clock {
            // A year either way is far past any flag threshold; beyond it the figure means nothing.
            const YEAR_MS: i64 = 366 * 86_400_000;
            if !(-YEAR_MS..=YEAR_MS).contains(&c.offset_ms) {
                return Err(bad("clock.offset_ms", format!("{} is more than a year", c.offset_ms)));
            }
            counter("clock.uncertainty_ms", c.uncertainty_ms, YEAR_MS as u64)?;
            check_text("clock.source", &c.source, MAX_NAME_CHARS)?;
            time("clock.measured_at", c.measured_at, now)?;
        }
        if let Some(p) = &self.plate {
            if let Some(t) = &p.text {
                check_text("plate.text", t, 16)?;
            }
            number("plate.share", p.share, 0.0, 1.0)?;
            if p.votes.len() > MAX_VOTES {
                return Err(bad("plate.votes", format!("more than {MAX_VOTES}")));
            }
            for (i, v) in p.votes.iter().enumerate() {
                let field = |name: &str| format!("plate.votes[{i}].{name}");
                counter(&field("frame_number"), v.frame_number, MAX_COUNTER)?;
                if let Some(t) = &v.text {
                    check_text(&field("text"), t, 16)?;
                }
                check_text(&field("raw"), &v.raw, 32)?;
                number(&field("confidence"), v.confidence, 0.0, 1.0)?;
                number(&field("weight"), v.weight, 0.0, 1_000.0)?;
                if let Some(crop) = &v.crop_sha256 {
                    sha(&field("crop_sha256"), crop)?;
                }
            }
        }
        if !self.config_version.chars().all(|c| c.is_ascii_hexdigit()) || self.config_version.len() > 64 {
            return Err(bad("config_version", "is not a hex digest of at most 64 characters"));
        }
        if self.sequence == 0 || self.sequence > MAX_SEQUENCE {
            return Err(bad("sequence", format!("{} is not in 1 ..= {MAX_SEQUENCE}", self.sequence)));
        }
        if !self.previous_record_sha256.is_empty() {
            sha("previous_record_sha256", &self.previous_record_sha256)?;
        }
        Ok(())
    }
}

impl Heartbeat {
    /// Checks every field's range and length, as for records.
    pub fn check_fields(&self, now: DateTime<Utc>) -> Result<(), FieldError> {
        check_id("device_id", self.device_id.as_str())?;
        time("sent_at", self.sent_at, now)?;
        check_text("agent_version", &self.agent_version, MAX_NAME_CHARS)?;
        for (name, v) in [
            ("pending", self.pending),
            ("delivered", self.delivered),
            ("rejected", self.rejected),
            ("disk_used_bytes", self.disk_used_bytes),
            ("disk_free_bytes", self.disk_free_bytes),
        ] {
            counter(name, v, MAX_COUNTER)?;
        }
        if let Some(s) = self.interval_s {
            if !(1..=86_400).contains(&s) {
                return Err(bad("interval_s", format!("{s} is not 1-86400 seconds")));
            }
        }
        if let Some(c) = &self.clock {
            check_text("clock.source", &c.source, MAX_NAME_CHARS)?;
            time("clock.measured_at", c.measured_at, now)?;
        }
        if self.cameras.len() > MAX_CAMERAS {
            return Err(bad("cameras", format!("more than {MAX_CAMERAS}")));
        }
        for (i, c) in self.cameras.iter().enumerate() {
            check_id(&format!("cameras[{i}].camera_id"), c.camera_id.as_str())?;
            check_text(&format!("cameras[{i}].state"), &c.state, MAX_NAME_CHARS)?;
            for (name, v) in
                [("frames_in", c.frames_in), ("frames_dropped", c.frames_dropped), ("reconnects", c.reconnects)]
            {
                counter(&format!("cameras[{i}].{name}"), v, MAX_COUNTER)?;
            }
        }
        if let Some(alarm) = &self.alarm {
            check_text("alarm", alarm, MAX_TEXT_CHARS)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use te_types::{DeviceId, Moment, MomentRole, Violation, ViolationKind};

    fn record() -> EvidenceRecord {
        EvidenceRecord {
            config_version: "0123456789abcdef".into(),
            ..EvidenceRecord::synthetic("box-1", "cam-1", b"x")
        }
    }

    fn refused(edit: impl FnOnce(&mut EvidenceRecord)) -> String {
        let mut r = record();
        edit(&mut r);
        r.check_fields(Utc::now()).expect_err("must be refused").field
    }

    #[test]
    fn a_sane_record_passes() {
        record().check_fields(Utc::now()).expect("valid");
    }

    #[test]
    fn a_detection_score_that_is_no_finite_number_is_refused_at_ingest() {
        assert_eq!(refused(|r| r.detection_score = f32::INFINITY), "detection_score");
        assert_eq!(refused(|r| r.detection_score = f32::NAN), "detection_score");
        assert_eq!(refused(|r| r.detection_score = 1.5), "detection_score");
        assert_eq!(refused(|r| r.bbox.x2 = f32::INFINITY), "bbox.x2");
    }

    #[test]
    fn a_capture_time_far_in_the_future_or_past_is_refused_at_ingest() {
        let far = Utc.with_ymd_and_hms(200_000, 12, 31, 23, 59, 59).single().expect("time");
        assert_eq!(refused(|r| r.captured_at = far), "captured_at");
        assert_eq!(refused(|r| r.recorded_at = Utc::now() + Duration::days(3)), "recorded_at");
        assert_eq!(refused(|r| r.captured_at = DateTime::<Utc>::MIN_UTC), "captured_at");
        let mut ok = record();
        ok.captured_at = Utc::now() - Duration::days(30);
        ok.check_fields(Utc::now()).expect("a month-old record from a box that was offline is fine");
    }

    #[test]
    fn a_sequence_near_the_integer_limits_is_refused_at_ingest() {
        assert_eq!(refused(|r| r.sequence = 1 << 40), "sequence");
        assert_eq!(refused(|r| r.sequence = 0), "sequence");
        assert_eq!(refused(|r| r.frame_number = u64::MAX), "frame_number");
    }

    #[test]
    fn oversized_or_control_character_text_is_refused_at_ingest() {
        assert_eq!(refused(|r| r.location = "x".repeat(4 << 20)), "location");
        assert_eq!(refused(|r| r.location = "Ngã tư\nINFO forged line".into()), "location");
        assert_eq!(refused(|r| r.device_id = DeviceId::new("box-1\nINFO evidence received")), "device_id");
        assert_eq!(refused(|r| r.config_version = "<script>".into()), "config_version");
        let violation = |r: &mut EvidenceRecord| Violation {
            kind: ViolationKind::RedLight,
            track: r.track_id,
            rule: "stop line".into(),
            at: r.captured_at,
            moments: vec![Moment { role: MomentRole::At, frame_number: 1, captured_at: r.captured_at }; 9],
            signal: None,
            red_for_s: Some(f32::NAN),
            speed_kmh: None,
            limit_kmh: None,
            dwell_s: None,
            certified: true,
            summary: String::new(),
        };
        assert_eq!(refused(|r| r.violation = Some(violation(r))), "violation.moments");
        assert_eq!(
            refused(|r| {
                let mut v = violation(r);
                v.moments.truncate(2);
                r.violation = Some(v);
            }),
            "violation.red_for_s"
        );
    }
}
