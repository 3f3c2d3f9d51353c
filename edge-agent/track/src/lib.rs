//! Tracking: links per-frame detections of one camera into tracks, so one vehicle pass is one event.
//!
//! A greedy IoU tracker (SORT without the Kalman filter): good enough for the thin end-to-end path; the
//! ByteTrack-style tracker with a motion model replaces the association step later without changing the API.
//! Pure code: no clock, no I/O; time is the frame number the caller passes in, so replays are deterministic.

mod plate_vote;

pub use plate_vote::{PlateBallot, FULL_WEIGHT_WIDTH};

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use te_types::{BBox, Detection, TrackId, VehicleClass};

/// Tracker tuning.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerSettings {
    /// A detection joins a track when their boxes overlap at least this much (IoU).
    pub iou_match: f32,
    /// Frames with a match before a track counts as a vehicle (filters one-frame false positives).
    pub min_hits: u32,
    /// Frames without a match after which a track ends.
    pub max_missed: u32,
}

impl Default for TrackerSettings {
    fn default() -> Self {
        Self { iou_match: 0.3, min_hits: 3, max_missed: 10 }
    }
}

impl TrackerSettings {
    /// Names the first field that is out of range.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.iou_match) || self.iou_match == 0.0 {
            return Err(format!("iou_match must be in (0, 1], got {}", self.iou_match));
        }
        if self.min_hits == 0 {
            return Err("min_hits must be at least 1".into());
        }
        Ok(())
    }
}

/// A vehicle followed across frames.
#[derive(Debug, Clone)]
pub struct Track {
    pub id: TrackId,
    /// Box in the most recent frame with a match.
    pub bbox: BBox,
    /// Matched frames so far.
    pub hits: u32,
    /// Consecutive frames without a match.
    pub missed: u32,
    pub first_frame: u64,
    pub last_frame: u64,
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

    /// Feeds one frame's detections. Greedy association: best-IoU pairs first.
    pub fn update(&mut self, frame: u64, detections: &[Detection]) -> Vec<TrackEvent> {
        let mut events = Vec::new();
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, track) in self.tracks.iter().enumerate() {
            for (di, det) in detections.iter().enumerate() {
                let iou = track.bbox.iou(&det.bbox);
                if iou >= self.settings.iou_match {
                    pairs.push((iou, ti, di));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut track_used = vec![false; self.tracks.len()];
        let mut det_used = vec![false; detections.len()];
        for (_, ti, di) in pairs {
            if track_used[ti] || det_used[di] {
                continue;
            }
            track_used[ti] = true;
            det_used[di] = true;
            let det = detections[di];
            let track = &mut self.tracks[ti];
            track.bbox = det.bbox;
            track.hits += 1;
            track.missed = 0;
            track.last_frame = frame;
            track.best_score = track.best_score.max(det.score);
            *track.class_votes.entry(det.class).or_default() += det.score;
            if !track.confirmed && track.hits >= self.settings.min_hits {
                track.confirmed = true;
                events.push(TrackEvent::Confirmed {
                    track: track.id,
                    detection: Detection { class: track.class(), ..det },
                });
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
            if det_used[di] {
                continue;
            }
            let id = TrackId(self.next_id);
            self.next_id += 1;
            let mut track = Track {
                id,
                bbox: det.bbox,
                hits: 1,
                missed: 0,
                first_frame: frame,
                last_frame: frame,
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

    fn confirmed(events: &[TrackEvent]) -> usize {
        events.iter().filter(|e| matches!(e, TrackEvent::Confirmed { .. })).count()
    }

    #[test]
    fn a_car_moving_steadily_is_one_vehicle_confirmed_once() {
        let mut tracker = Tracker::new(TrackerSettings::default());
        let total: usize = (0..30).map(|f| confirmed(&tracker.update(f, &[car_at(f as f32 * 5.0)]))).sum();
        assert_eq!(total, 1);
        assert_eq!(tracker.tracks().len(), 1);
    }

    #[test]
    fn a_detection_seen_fewer_than_min_hits_frames_is_not_a_vehicle() {
        let mut tracker = Tracker::new(TrackerSettings::default());
        let mut n = confirmed(&tracker.update(0, &[car_at(0.0)]));
        n += confirmed(&tracker.update(1, &[car_at(0.0)]));
        for f in 2..20 {
            n += confirmed(&tracker.update(f, &[]));
        }
        assert_eq!(n, 0);
        assert!(tracker.tracks().is_empty());
    }

    #[test]
    fn a_short_occlusion_keeps_the_same_track() {
        let mut tracker = Tracker::new(TrackerSettings::default());
        for f in 0..5 {
            tracker.update(f, &[car_at(0.0)]);
        }
        for f in 5..10 {
            tracker.update(f, &[]);
        }
        let events = tracker.update(10, &[car_at(2.0)]);
        assert_eq!(confirmed(&events), 0);
        assert_eq!(tracker.tracks().len(), 1);
    }

    #[test]
    fn two_cars_side_by_side_are_two_vehicles_and_a_scene_cut_ends_both() {
        let mut tracker = Tracker::new(TrackerSettings::default());
        let mut n = 0;
        for f in 0..5 {
            n += confirmed(&tracker.update(f, &[car_at(0.0), car_at(300.0)]));
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
        tracker.update(0, &[car_at(0.0)]);
        tracker.update(1, &[truck]);
        tracker.update(2, &[car_at(0.0)]);
        assert_eq!(tracker.tracks()[0].class(), VehicleClass::Car);
    }

    #[test]
    fn out_of_range_settings_are_named() {
        let err = TrackerSettings { iou_match: 1.5, ..Default::default() }.validate().expect_err("invalid");
        assert!(err.contains("iou_match"));
    }
}
