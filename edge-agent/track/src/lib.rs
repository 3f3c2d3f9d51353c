//! Tracking: links per-frame detections of one camera into tracks, so one vehicle pass is one event.
//!
//! ByteTrack-style association over a constant-velocity motion model:
//! 1. every track predicts its box in this frame from its smoothed velocity (so fast vehicles and vehicles
//!    hidden for a few frames are still found where they went, not where they were last seen);
//! 2. confident detections (`score >= high_score`) are matched to predicted boxes first, best IoU first;
//! 3. the weaker detections then extend tracks still unmatched (a vehicle partly hidden scores low, and
//!    dropping those detections would break its track), but never start a track of their own;
//! 4. unmatched confident detections start tentative tracks, confirmed after `min_hits` matches; tracks unseen
//!    for more than `max_missed` frames end.
//!
//! Every track keeps a bounded history of its boxes with frame numbers and capture times: the rules and the
//! evidence stage read positions at past moments from it. Pure code: no clock, no I/O; time comes from the
//! frames, so replays are deterministic.

mod plate_vote;

pub use plate_vote::{PlateBallot, FULL_WEIGHT_WIDTH};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use te_types::SettingError;
use te_types::{BBox, Detection, TrackId, VehicleClass};

/// Tracker tuning.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerSettings {
    /// A detection joins a track when it overlaps the track's predicted box at least this much (IoU).
    pub iou_match: f32,
    /// Frames with a match before a track counts as a vehicle (filters one-frame false positives).
    pub min_hits: u32,
    /// Frames without a match after which a track ends.
    pub max_missed: u32,
    /// Detections at least this confident are matched first and may start tracks; weaker ones only extend
    /// existing tracks (ByteTrack's second pass).
    pub high_score: f32,
    /// Positions kept per track (the newest); bounds memory for vehicles that stay in view for long.
    pub history_len: usize,
}

impl Default for TrackerSettings {
    fn default() -> Self {
        Self { iou_match: 0.3, min_hits: 3, max_missed: 10, high_score: 0.45, history_len: 256 }
    }
}

impl TrackerSettings {
    /// Names the first field that is out of range.
    pub fn validate(&self) -> Result<(), SettingError> {
        if !(0.0..=1.0).contains(&self.iou_match) || self.iou_match == 0.0 {
            return Err(SettingError::new("iou_match", format!("must be in (0, 1], got {}", self.iou_match)));
        }
        if self.min_hits == 0 {
            return Err(SettingError::new("min_hits", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.high_score) {
            return Err(SettingError::new("high_score", format!("must be in [0, 1], got {}", self.high_score)));
        }
        if self.history_len < 2 {
            return Err(SettingError::new("history_len", "must be at least 2"));
        }
        Ok(())
    }
}

/// Where a track was in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackPoint {
    pub frame: u64,
    pub at: DateTime<Utc>,
    pub bbox: BBox,
}

/// How much a new observation moves the velocity estimate (exponential smoothing).
const VELOCITY_GAIN: f32 = 0.5;

/// A vehicle followed across frames.
#[derive(Debug, Clone)]
pub struct Track {
    pub id: TrackId,
    /// Box in the most recent frame with a match.
    pub bbox: BBox,
    /// Smoothed motion of the box centre, pixels per frame number.
    pub velocity: (f32, f32),
    /// Matched frames so far.
    pub hits: u32,
    /// Consecutive frames without a match.
    pub missed: u32,
    pub first_frame: u64,
    pub last_frame: u64,
    /// Matched positions, oldest first, at most `history_len`.
    history: VecDeque<TrackPoint>,
    /// Detector score summed per class: the track's class is the heaviest.
    class_votes: HashMap<VehicleClass, f32>,
    /// Best detection score seen on this track.
    pub best_score: f32,
    confirmed: bool,
}

impl Track {
    pub fn class(&self) -> VehicleClass {
        self.class_votes
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(c, _)| *c)
            .unwrap_or(VehicleClass::Car)
    }

    pub fn is_confirmed(&self) -> bool {
        self.confirmed
    }

    /// Matched positions, oldest first (bounded: the oldest are dropped first).
    pub fn history(&self) -> &VecDeque<TrackPoint> {
        &self.history
    }

    /// The newest position at or before `frame`, if still in the history.
    pub fn position_at(&self, frame: u64) -> Option<&TrackPoint> {
        self.history.iter().rev().find(|p| p.frame <= frame)
    }

    /// Where the box should be in `frame`, from the last match and the velocity.
    pub fn predicted(&self, frame: u64) -> BBox {
        let dt = frame.saturating_sub(self.last_frame) as f32;
        self.bbox.shifted(self.velocity.0 * dt, self.velocity.1 * dt)
    }

    fn observe(&mut self, point: TrackPoint, det: &Detection, history_len: usize) {
        let dt = point.frame.saturating_sub(self.last_frame).max(1) as f32;
        let (ox, oy) = self.bbox.center();
        let (nx, ny) = det.bbox.center();
        let step = ((nx - ox) / dt, (ny - oy) / dt);
        self.velocity = if self.hits == 1 {
            step
        } else {
            (
                self.velocity.0 + VELOCITY_GAIN * (step.0 - self.velocity.0),
                self.velocity.1 + VELOCITY_GAIN * (step.1 - self.velocity.1),
            )
        };
        self.bbox = det.bbox;
        self.hits += 1;
        self.missed = 0;
        self.last_frame = point.frame;
        self.best_score = self.best_score.max(det.score);
        *self.class_votes.entry(det.class).or_default() += det.score;
        if self.history.len() == history_len {
            self.history.pop_front();
        }
        self.history.push_back(point);
    }
}

/// What one update changed.
#[derive(Debug, Clone, PartialEq)]
pub enum TrackEvent {
    /// A track reached `min_hits` in this frame: a new vehicle. Carries the detection that confirmed it.
    Confirmed { track: TrackId, detection: Detection },
    /// A confirmed track ended (missed too long, or a scene cut).
    Ended { track: TrackId, class: VehicleClass, frames: u64 },
}

/// One camera's tracker.
#[derive(Debug)]
pub struct Tracker {
    settings: TrackerSettings,
    tracks: Vec<Track>,
    next_id: u64,
}

impl Tracker {
    pub fn new(settings: TrackerSettings) -> Self {
        Self { settings, tracks: Vec::new(), next_id: 1 }
    }

    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    pub fn track(&self, id: TrackId) -> Option<&Track> {
        self.tracks.iter().find(|t| t.id == id)
    }

    /// Feeds one frame's detections (`frame` numbers increase; gaps are dropped frames).
    pub fn update(&mut self, frame: u64, at: DateTime<Utc>, detections: &[Detection]) -> Vec<TrackEvent> {
        let mut events = Vec::new();
        let predicted: Vec<BBox> = self.tracks.iter().map(|t| t.predicted(frame)).collect();
        let mut track_used = vec![false; self.tracks.len()];
        let mut det_used = vec![false; detections.len()];
        let high = self.settings.high_score;
        // First pass: confident detections; second pass: the rest, for tracks still unmatched.
        for confident in [true, false] {
            let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
            for (ti, bbox) in predicted.iter().enumerate() {
                if track_used[ti] {
                    continue;
                }
                for (di, det) in detections.iter().enumerate() {
                    if det_used[di] || (det.score >= high) != confident {
                        continue;
                    }
                    let iou = bbox.iou(&det.bbox);
                    if iou >= self.settings.iou_match {
                        pairs.push((iou, ti, di));
                    }
                }
            }
            pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
            for (_, ti, di) in pairs {
                if track_used[ti] || det_used[di] {
                    continue;
                }
                track_used[ti] = true;
                det_used[di] = true;
                let det = detections[di];
                let track = &mut self.tracks[ti];
                track.observe(TrackPoint { frame, at, bbox: det.bbox }, &det, self.settings.history_len);
                if !track.confirmed && track.hits >= self.settings.min_hits {
                    track.confirmed = true;
                    events.push(TrackEvent::Confirmed {
                        track: track.id,
                        detection: Detection { class: track.class(), ..det },
                    });
                }
            }
        }
        for (ti, used) in track_used.iter().enumerate() {
            if !used {
                self.tracks[ti].missed += 1;
            }
        }
        let max_missed = self.settings.max_missed;
        self.end_where(&mut events, |t| t.missed > max_missed);
        for (di, det) in detections.iter().enumerate() {
            if det_used[di] || det.score < high {
                continue;
            }
            let id = TrackId(self.next_id);
            self.next_id += 1;
            let mut track = Track {
                id,
                bbox: det.bbox,
                velocity: (0.0, 0.0),
                hits: 1,
                missed: 0,
                first_frame: frame,
                last_frame: frame,
                history: VecDeque::from([TrackPoint { frame, at, bbox: det.bbox }]),
                class_votes: HashMap::from([(det.class, det.score)]),
                best_score: det.score,
                confirmed: false,
            };
            if self.settings.min_hits <= 1 {
                track.confirmed = true;
                events.push(TrackEvent::Confirmed { track: id, detection: *det });
            }
            self.tracks.push(track);
        }
        events
    }

    /// A frame the detector skipped (a detection interval): every track matched in the last detected frame
    /// moves to where its motion puts it, so the rules and pictures see it in this frame too. Hits, misses,
    /// velocity and class votes are untouched: only a detection confirms, extends or ends a track.
    pub fn coast(&mut self, frame: u64, at: DateTime<Utc>) {
        let history_len = self.settings.history_len;
        for track in self.tracks.iter_mut().filter(|t| t.missed == 0 && frame > t.last_frame) {
            let bbox = track.predicted(frame);
            track.bbox = bbox;
            track.last_frame = frame;
            if track.history.len() == history_len {
                track.history.pop_front();
            }
            track.history.push_back(TrackPoint { frame, at, bbox });
        }
    }

    /// Ends every track: the next frame shows an unrelated scene (still images) or the stream ended.
    pub fn scene_cut(&mut self) -> Vec<TrackEvent> {
        let mut events = Vec::new();
        self.end_where(&mut events, |_| true);
        events
    }

    fn end_where(&mut self, events: &mut Vec<TrackEvent>, ends: impl Fn(&Track) -> bool) {
        self.tracks.retain(|t| {
            if !ends(t) {
                return true;
            }
            if t.confirmed {
                events.push(TrackEvent::Ended {
                    track: t.id,
                    class: t.class(),
                    frames: t.last_frame - t.first_frame + 1,
                });
            }
            false
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn car_at(x: f32) -> Detection {
        Detection { class: VehicleClass::Car, score: 0.9, bbox: BBox { x1: x, y1: 0.0, x2: x + 100.0, y2: 50.0 } }
    }

    /// Frame `f` of a 25 fps stream.
    fn at(f: u64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_700_000_000_000 + f as i64 * 40).expect("valid time")
    }

    fn confirmed(events: &[TrackEvent]) -> usize {
        events.iter().filter(|e| matches!(e, TrackEvent::Confirmed { .. })).count()
    }

    #[test]
    fn a_car_moving_steadily_is_one_vehicle_confirmed_once() {
        let mut tracker = Tracker::new(TrackerSettings::default());
        let total: usize = (0..30).map(|f| confirmed(&tracker.update(f, at(f), &[car_at(f as f32 * 5.0)]))).sum();
        assert_eq!(total, 1);
        assert_eq!(tracker.tracks().len(), 1);
    }

    #[test]
    fn a_detection_seen_fewer_than_min_hits_frames_is_not_a_vehicle() {
        let mut tracker = Tracker::new(TrackerSettings::default());
        let mut n = confirmed(&tracker.update(0, at(0), &[car_at(0.0)]));
        n += confirmed(&tracker.update(1, at(1), &[car_at(0.0)]));
        for f in 2..20 {
            n += confirmed(&tracker.update(f, at(f), &[]));
        }
        assert_eq!(n, 0);
        assert!(tracker.tracks().is_empty());
    }

    #[test]
    fn a_short_occlusion_keeps_the_same_track() {
        let mut tracker = Tracker::new(TrackerSettings::default());
        for f in 0..5 {
            tracker.update(f, at(f), &[car_at(0.0)]);
        }
        for f in 5..10 {
            tracker.update(f, at(f), &[]);
        }
        let events = tracker.update(10, at(10), &[car_at(2.0)]);
        assert_eq!(confirmed(&events), 0);
        assert_eq!(tracker.tracks().len(), 1);
    }

    #[test]
    fn two_cars_side_by_side_are_two_vehicles_and_a_scene_cut_ends_both() {
        let mut tracker = Tracker::new(TrackerSettings::default());
        let mut n = 0;
        for f in 0..5 {
            n += confirmed(&tracker.update(f, at(f), &[car_at(0.0), car_at(300.0)]));
        }
        assert_eq!(n, 2);
        let ended = tracker.scene_cut();
        assert_eq!(ended.len(), 2);
        assert!(tracker.tracks().is_empty());
    }

    #[test]
    fn the_track_class_is_the_score_weighted_majority() {
        let mut tracker = Tracker::new(TrackerSettings { min_hits: 1, ..Default::default() });
        let truck = Detection { class: VehicleClass::Truck, score: 0.4, ..car_at(0.0) };
        tracker.update(0, at(0), &[car_at(0.0)]);
        tracker.update(1, at(1), &[truck]);
        tracker.update(2, at(2), &[car_at(0.0)]);
        assert_eq!(tracker.tracks()[0].class(), VehicleClass::Car);
    }

    #[test]
    fn out_of_range_settings_are_named() {
        let err = TrackerSettings { iou_match: 1.5, ..Default::default() }.validate().expect_err("invalid");
        assert_eq!(err.field, "iou_match");
    }

    #[test]
    fn a_fast_car_hidden_for_a_few_frames_is_found_where_it_went() {
        // 30 px per frame: after 4 hidden frames the car is 150 px away, far from any overlap with its last box.
        let mut tracker = Tracker::new(TrackerSettings::default());
        for f in 0..6 {
            tracker.update(f, at(f), &[car_at(f as f32 * 30.0)]);
        }
        for f in 6..10 {
            tracker.update(f, at(f), &[]);
        }
        let events = tracker.update(10, at(10), &[car_at(300.0)]);
        assert_eq!(confirmed(&events), 0, "no second vehicle");
        assert_eq!(tracker.tracks().len(), 1);
        assert_eq!(tracker.tracks()[0].hits, 7);
    }

    #[test]
    fn a_weak_detection_extends_a_track_but_never_starts_one() {
        let mut tracker = Tracker::new(TrackerSettings::default());
        let weak = |x: f32| Detection { score: 0.35, ..car_at(x) };
        for f in 0..5 {
            tracker.update(f, at(f), &[weak(0.0)]);
        }
        assert!(tracker.tracks().is_empty());
        for f in 5..8 {
            tracker.update(f, at(f), &[car_at(0.0)]);
        }
        for f in 8..12 {
            tracker.update(f, at(f), &[weak(0.0)]);
        }
        assert_eq!(tracker.tracks().len(), 1);
        assert_eq!(tracker.tracks()[0].missed, 0, "the weak detections kept the track alive");
    }

    #[test]
    fn history_is_bounded_and_answers_where_the_track_was() {
        let mut tracker = Tracker::new(TrackerSettings { history_len: 10, ..Default::default() });
        for f in 0..50 {
            tracker.update(f, at(f), &[car_at(f as f32)]);
        }
        let track = &tracker.tracks()[0];
        assert_eq!(track.history().len(), 10);
        assert_eq!(track.position_at(45).map(|p| p.bbox.x1), Some(45.0));
        assert_eq!(track.position_at(45).map(|p| p.at), Some(at(45)));
        assert!(track.position_at(30).is_none(), "older than the history");
    }

    #[test]
    fn a_skipped_frame_moves_matched_tracks_by_their_motion_and_a_detection_then_continues_them() {
        let mut t = Tracker::new(TrackerSettings { min_hits: 2, ..Default::default() });
        let at = Utc::now();
        let car = |x: f32| Detection {
            class: VehicleClass::Car,
            score: 0.9,
            bbox: BBox { x1: x, y1: 0.0, x2: x + 40.0, y2: 30.0 },
        };
        t.update(0, at, &[car(0.0)]);
        t.update(1, at, &[car(10.0)]);
        t.coast(2, at);
        let track = &t.tracks()[0];
        assert_eq!((track.last_frame, track.hits, track.missed), (2, 2, 0));
        assert!((track.bbox.x1 - 20.0).abs() < 1e-3, "{:?}", track.bbox);
        // The next detection joins the same track, and the velocity stays 10 px a frame.
        t.update(3, at, &[car(30.0)]);
        assert_eq!(t.tracks().len(), 1);
        assert!((t.tracks()[0].velocity.0 - 10.0).abs() < 1e-3, "{:?}", t.tracks()[0].velocity);
        // A track that missed its last detection does not coast.
        t.update(4, at, &[]);
        t.coast(5, at);
        assert_eq!(t.tracks()[0].last_frame, 3);
    }
}
