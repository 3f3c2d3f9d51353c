//! The frames a violation's pictures come from: the last few frames of each camera, and one frame every
//! `every_ms` over the last `window_s` seconds, so a "before" moment seconds ago still has a picture without
//! keeping every frame (a 1080p frame is 6 MB).
//!
//! Frames a rule may still need exactly (the frame before a crossing on red and the crossing itself, until the
//! rule decides whether it was an offence) are pinned, so the picture shows those very frames and not the
//! nearest sampled ones, up to half a second off.
//!
//! Invariant: memory per camera is bounded by `3 + window_s * 1000 / every_ms + MAX_PINNED` frames.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use te_types::Frame;
use te_types::SettingError;

/// How violation moments are pictured.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MomentSettings {
    /// The "after" picture is the first frame this many seconds after the offence.
    pub after_s: f32,
    /// Seconds of sampled frames kept per camera for "before" pictures.
    pub window_s: u32,
    /// One frame kept per this many milliseconds in that window.
    pub every_ms: u32,
}

impl Default for MomentSettings {
    fn default() -> Self {
        Self { after_s: 1.0, window_s: 10, every_ms: 500 }
    }
}

impl MomentSettings {
    pub fn after(&self) -> chrono::Duration {
        chrono::Duration::milliseconds((self.after_s * 1000.0) as i64)
    }

    pub fn validate(&self) -> Result<(), SettingError> {
        if !(self.after_s.is_finite() && (0.0..=30.0).contains(&self.after_s)) {
            return Err(SettingError::new("after_s", format!("must be in [0, 30], got {}", self.after_s)));
        }
        if self.every_ms < 40 {
            return Err(SettingError::new("every_ms", format!("must be at least 40, got {}", self.every_ms)));
        }
        if self.window_s > 120 {
            return Err(SettingError::new("window_s", format!("must be at most 120, got {}", self.window_s)));
        }
        Ok(())
    }
}

/// One camera's recent frames (shared pixel buffers: keeping a frame does not copy it).
pub struct RecentFrames {
    settings: MomentSettings,
    latest: VecDeque<Frame>,
    sampled: VecDeque<Frame>,
    /// Frames a rule may still need, by number (see [`RecentFrames::keep_pinned`]).
    pinned: std::collections::BTreeMap<u64, Frame>,
}

const LATEST: usize = 3;
/// Most frames pinned per camera: a few vehicles crossing on red at once. Beyond it the oldest pin goes
/// (its picture then falls back to the nearest sampled frame).
const MAX_PINNED: usize = 12;

impl RecentFrames {
    pub fn new(settings: MomentSettings) -> Self {
        Self { settings, latest: VecDeque::new(), sampled: VecDeque::new(), pinned: Default::default() }
    }

    pub fn push(&mut self, frame: &Frame) {
        if frame.scene_cut {
            self.latest.clear();
            self.sampled.clear();
            self.pinned.clear();
        }
        if self.latest.len() == LATEST {
            self.latest.pop_front();
        }
        self.latest.push_back(frame.clone());
        let every = chrono::Duration::milliseconds(i64::from(self.settings.every_ms));
        if self.sampled.back().is_none_or(|b| frame.captured_at - b.captured_at >= every) {
            self.sampled.push_back(frame.clone());
        }
        let window = chrono::Duration::seconds(i64::from(self.settings.window_s));
        while self.sampled.front().is_some_and(|f| frame.captured_at - f.captured_at > window) {
            self.sampled.pop_front();
        }
    }

    fn kept(&self) -> impl Iterator<Item = &Frame> {
        self.sampled.iter().chain(self.latest.iter()).chain(self.pinned.values())
    }

    /// Keeps exactly the frames `numbers` pinned: those still held are pinned (from the latest frames, where a
    /// moment a rule just noted is), pins not named are released.
    pub fn keep_pinned(&mut self, numbers: &[u64]) {
        self.pinned.retain(|n, _| numbers.contains(n));
        for &n in numbers {
            if self.pinned.contains_key(&n) {
                continue;
            }
            if let Some(frame) = self.latest.iter().chain(self.sampled.iter()).find(|f| f.number == n) {
                self.pinned.insert(n, frame.clone());
            }
        }
        while self.pinned.len() > MAX_PINNED {
            self.pinned.pop_first();
        }
    }

    /// The frame `number` if kept, else the first kept frame after it, else the newest.
    pub fn nearest(&self, number: u64) -> Option<Frame> {
        self.kept()
            .filter(|f| f.number >= number)
            .min_by_key(|f| f.number)
            .or_else(|| self.kept().max_by_key(|f| f.number))
            .cloned()
    }

    /// The frame `number` if kept, else the last kept frame before it; none when every kept frame is later. A
    /// "before" picture must never show a moment after the one it stands for (the vehicle past the line).
    pub fn at_or_before(&self, number: u64) -> Option<Frame> {
        self.kept().filter(|f| f.number <= number).max_by_key(|f| f.number).cloned()
    }

    /// The frame a violation's moment is pictured with: "before" never later than the moment, the others at
    /// it or just after.
    pub fn for_moment(&self, role: te_types::MomentRole, number: u64) -> Option<Frame> {
        match role {
            te_types::MomentRole::Before => self.at_or_before(number),
            te_types::MomentRole::At | te_types::MomentRole::After => self.nearest(number),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.latest.len() + self.sampled.len() + self.pinned.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use te_types::CameraId;

    fn frame(number: u64) -> Frame {
        Frame {
            camera: CameraId::new("c"),
            number,
            captured_at: chrono::DateTime::from_timestamp_millis(1_700_000_000_000 + number as i64 * 40)
                .expect("valid"),
            scene_cut: false,
            width: 2,
            height: 1,
            pixels: te_types::Pixels::Rgb(Arc::new(vec![0; 6])),
        }
    }

    #[test]
    fn recent_frames_are_bounded_and_give_the_frame_at_or_just_after_a_moment() {
        let settings = MomentSettings { window_s: 2, every_ms: 200, ..Default::default() };
        let mut recent = RecentFrames::new(settings);
        for n in 0..1000 {
            recent.push(&frame(n));
        }
        assert!(recent.len() <= 3 + 11, "{}", recent.len());
        assert_eq!(recent.nearest(999).map(|f| f.number), Some(999));
        assert_eq!(recent.nearest(998).map(|f| f.number), Some(998));
        // 1 s ago: sampled every 5 frames.
        let one_second_ago = recent.nearest(974).map(|f| f.number).expect("kept");
        assert!((974..980).contains(&one_second_ago), "{one_second_ago}");
        // Older than the window: the oldest kept.
        assert!(recent.nearest(10).is_some_and(|f| f.number >= 940));
    }

    /// #224: the "before" picture was the first kept frame after the moment, up to 500 ms later, with the
    /// car already past the line (and the same frame as "at").
    #[test]
    fn a_before_picture_is_never_a_frame_after_its_moment() {
        let mut recent = RecentFrames::new(MomentSettings::default()); // one frame kept per 500 ms
        for n in 0..=200 {
            recent.push(&frame(n));
        }
        let wanted = 197; // not kept: sampled frames are 12.5 apart, the latest three are 198..=200
        let before = recent.for_moment(te_types::MomentRole::Before, wanted).expect("an earlier frame is kept");
        assert!(before.number <= wanted, "before picture {} is after its moment {wanted}", before.number);
        assert!(wanted - before.number <= 13, "the last kept frame before it: {}", before.number);
        assert_eq!(recent.for_moment(te_types::MomentRole::At, 200).map(|f| f.number), Some(200));
        assert!(recent.nearest(wanted).is_some_and(|f| f.number > wanted), "what `nearest` would have given");
        assert_eq!(recent.for_moment(te_types::MomentRole::Before, 1).map(|f| f.number), Some(0));
        // Nothing kept from before the moment (a scene cut since): no picture rather than a later one.
        let mut cut = RecentFrames::new(MomentSettings::default());
        for n in 50..60 {
            cut.push(&frame(n));
        }
        assert!(cut.for_moment(te_types::MomentRole::Before, 10).is_none());
    }

    /// The frames of a crossing on red, pinned while its rule decides, are the pictures even seconds later,
    /// when only sampled frames are left around them; released pins free their frames.
    #[test]
    fn pinned_moments_are_pictured_exactly_until_released() {
        let mut recent = RecentFrames::new(MomentSettings::default());
        for n in 0..=57 {
            recent.push(&frame(n));
        }
        recent.keep_pinned(&[56, 57]); // the crossing: before 56, at 57
        for n in 58..=80 {
            recent.push(&frame(n));
            recent.keep_pinned(&[56, 57]);
        }
        assert_eq!(recent.for_moment(te_types::MomentRole::Before, 56).map(|f| f.number), Some(56));
        assert_eq!(recent.for_moment(te_types::MomentRole::At, 57).map(|f| f.number), Some(57));
        recent.keep_pinned(&[]);
        assert_ne!(recent.for_moment(te_types::MomentRole::At, 57).map(|f| f.number), Some(57), "released");
        // Bounded: pins beyond the limit drop the oldest.
        recent.keep_pinned(&(60..80).collect::<Vec<_>>());
        assert!(recent.pinned.len() <= MAX_PINNED);
    }
}
