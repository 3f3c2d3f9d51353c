//! The signal phase an approach sees: read from the signal head in the picture (colour of the lit lamp,
//! smoothed over frames) or given by the signal controller (HTTP/UDP input, see the agent), never guessed.
//!
//! Invariants: a phase is only committed after `smoothing_frames` agreeing reads; dark, conflicting or stale
//! input gives `Unknown`; and `Unknown` never makes a red-light or stop-line violation.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use te_types::SignalPhase;

/// Where the phase comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SignalSource {
    /// No signal at this camera: signal rules never fire.
    #[default]
    None,
    /// Classify the lit lamp in `heads` regions of the picture.
    Image,
    /// The signal controller posts the phase to the agent.
    External,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalSettings {
    pub source: SignalSource,
    /// Signal-head regions `[x1, y1, x2, y2]` in scene pixels (source = "image"). Several heads for one
    /// approach must agree, or the phase is unknown.
    pub heads: Vec<[f32; 4]>,
    /// Reads in a row that must agree before the phase changes (filters flicker and passing headlights).
    pub smoothing_frames: u32,
    /// Seconds without input after which the phase is unknown (camera stalled, controller silent).
    pub stale_after_s: f32,
    /// A crossing less than this many seconds after red began is not judged (the all-red clearance some
    /// junctions allow).
    pub red_grace_s: f32,
    /// Treat yellow as red. Vietnamese law lets a vehicle already at the line go on when yellow shows, which a
    /// camera cannot judge reliably, so this is off by default.
    pub yellow_counts_as_red: bool,
    /// Share of a head region that must be a lit lamp colour for the read to count.
    pub min_lit_fraction: f32,
}

impl Default for SignalSettings {
    fn default() -> Self {
        Self {
            source: SignalSource::None,
            heads: Vec::new(),
            smoothing_frames: 3,
            stale_after_s: 3.0,
            red_grace_s: 0.0,
            yellow_counts_as_red: false,
            min_lit_fraction: 0.03,
        }
    }
}

impl SignalSettings {
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.source == SignalSource::Image && self.heads.is_empty() {
            return Err(("heads", "source = \"image\" needs at least one signal-head region".into()));
        }
        if self.smoothing_frames == 0 {
            return Err(("smoothing_frames", "must be at least 1".into()));
        }
        if !(self.stale_after_s.is_finite() && self.stale_after_s > 0.0) {
            return Err(("stale_after_s", format!("must be > 0, got {}", self.stale_after_s)));
        }
        if !(self.red_grace_s.is_finite() && self.red_grace_s >= 0.0) {
            return Err(("red_grace_s", format!("must be >= 0, got {}", self.red_grace_s)));
        }
        if !(self.min_lit_fraction > 0.0 && self.min_lit_fraction <= 1.0) {
            return Err(("min_lit_fraction", format!("must be in (0, 1], got {}", self.min_lit_fraction)));
        }
        Ok(())
    }
}

/// The lit lamp in one head region of a packed RGB8 picture (`region` in that picture's pixels).
pub fn classify_head(rgb: &[u8], width: u32, height: u32, region: [f32; 4], min_lit_fraction: f32) -> SignalPhase {
    let clamp = |v: f32, max: u32| (v.max(0.0) as u32).min(max);
    let (x1, y1) = (clamp(region[0], width), clamp(region[1], height));
    let (x2, y2) = (clamp(region[2], width), clamp(region[3], height));
    if x2 <= x1 || y2 <= y1 || rgb.len() < (width * height * 3) as usize {
        return SignalPhase::Unknown;
    }
    let mut counts = [0u32; 3]; // red, yellow, green
    for y in y1..y2 {
        for x in x1..x2 {
            let i = ((y * width + x) * 3) as usize;
            if let Some(c) = lamp_colour(rgb[i], rgb[i + 1], rgb[i + 2]) {
                counts[c] += 1;
            }
        }
    }
    let total = ((x2 - x1) * (y2 - y1)) as f32;
    let mut order = [0usize, 1, 2];
    order.sort_by_key(|&c| std::cmp::Reverse(counts[c]));
    let (best, second) = (counts[order[0]] as f32, counts[order[1]] as f32);
    // Dark (too little lit) or two colours lit at once (reflections, a changing lamp): do not decide.
    if best < min_lit_fraction * total || second >= 0.5 * best {
        return SignalPhase::Unknown;
    }
    [SignalPhase::Red, SignalPhase::Yellow, SignalPhase::Green][order[0]]
}

/// 0 red, 1 yellow, 2 green for a bright saturated pixel of that hue; `None` otherwise.
fn lamp_colour(r: u8, g: u8, b: u8) -> Option<usize> {
    let (r, g, b) = (f32::from(r), f32::from(g), f32::from(b));
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    if max < 150.0 || (max - min) < 0.4 * max {
        return None;
    }
    let d = max - min;
    let hue = if max == r {
        60.0 * ((g - b) / d).rem_euclid(6.0)
    } else if max == g {
        60.0 * ((b - r) / d + 2.0)
    } else {
        60.0 * ((r - g) / d + 4.0)
    };
    match hue {
        h if !(20.0..335.0).contains(&h) => Some(0),
        h if (20.0..70.0).contains(&h) => Some(1),
        h if (80.0..200.0).contains(&h) => Some(2),
        _ => None,
    }
}

/// The committed phase of one approach, from a stream of reads.
#[derive(Debug, Clone)]
pub struct SignalTracker {
    settings: SignalSettings,
    committed: SignalPhase,
    /// When the committed phase was first read (its start as far as we saw it).
    since: Option<DateTime<Utc>>,
    /// The phase before the committed one: frames captured before `since` (a controller report can arrive
    /// ahead of frames still in the pipeline) are judged by it.
    previous: (SignalPhase, Option<DateTime<Utc>>),
    candidate: SignalPhase,
    candidate_since: Option<DateTime<Utc>>,
    candidate_reads: u32,
    last_input: Option<DateTime<Utc>>,
}

impl SignalTracker {
    pub fn new(settings: SignalSettings) -> Self {
        Self {
            settings,
            committed: SignalPhase::Unknown,
            since: None,
            previous: (SignalPhase::Unknown, None),
            candidate: SignalPhase::Unknown,
            candidate_since: None,
            candidate_reads: 0,
            last_input: None,
        }
    }

    /// One read of the phase at `at`: from the picture (smoothed) or from the controller (`trusted`: it is
    /// the phase, committed at once).
    pub fn observe(&mut self, at: DateTime<Utc>, phase: SignalPhase, trusted: bool) {
        if self.last_input.is_some_and(|last| at < last) {
            return; // out of order: the newer read stands
        }
        self.last_input = Some(at);
        if phase != self.candidate {
            self.candidate = phase;
            self.candidate_since = Some(at);
            self.candidate_reads = 0;
        }
        self.candidate_reads += 1;
        let needed = if trusted { 1 } else { self.settings.smoothing_frames };
        if self.candidate_reads >= needed && self.committed != self.candidate {
            self.previous = (self.committed, self.since);
            self.committed = self.candidate;
            self.since = self.candidate_since;
        }
    }

    /// The phase at `at` and when it began; `Unknown` when input is stale.
    pub fn phase(&self, at: DateTime<Utc>) -> (SignalPhase, Option<DateTime<Utc>>) {
        let fresh = self.last_input.is_some_and(|last| (at - last).as_seconds_f32() <= self.settings.stale_after_s);
        if !fresh {
            (SignalPhase::Unknown, None)
        } else if self.since.is_some_and(|since| at < since) {
            self.previous
        } else {
            (self.committed, self.since)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_700_000_000_000 + ms).expect("valid")
    }

    /// A 20x20 picture, dark, with a 6x6 lamp of `colour` in the middle.
    fn head(colour: [u8; 3]) -> Vec<u8> {
        let mut rgb = vec![20u8; 20 * 20 * 3];
        for y in 7..13 {
            for x in 7..13 {
                let i = (y * 20 + x) * 3;
                rgb[i..i + 3].copy_from_slice(&colour);
            }
        }
        rgb
    }

    #[test]
    fn a_lit_lamp_is_read_by_its_colour_and_a_dark_head_is_unknown() {
        let region = [0.0, 0.0, 20.0, 20.0];
        assert_eq!(classify_head(&head([255, 40, 30]), 20, 20, region, 0.03), SignalPhase::Red);
        assert_eq!(classify_head(&head([255, 200, 30]), 20, 20, region, 0.03), SignalPhase::Yellow);
        assert_eq!(classify_head(&head([40, 255, 170]), 20, 20, region, 0.03), SignalPhase::Green);
        assert_eq!(classify_head(&head([90, 90, 90]), 20, 20, region, 0.03), SignalPhase::Unknown);
    }

    #[test]
    fn a_phase_changes_only_after_enough_agreeing_reads_and_keeps_its_start() {
        let mut s = SignalTracker::new(SignalSettings { smoothing_frames: 3, ..Default::default() });
        for i in 0..3 {
            s.observe(t(i * 40), SignalPhase::Green, false);
        }
        s.observe(t(120), SignalPhase::Red, false);
        s.observe(t(160), SignalPhase::Red, false);
        assert_eq!(s.phase(t(160)).0, SignalPhase::Green, "two reads are not enough");
        s.observe(t(200), SignalPhase::Red, false);
        assert_eq!(s.phase(t(200)), (SignalPhase::Red, Some(t(120))));
    }

    #[test]
    fn a_frame_captured_before_a_reported_change_is_judged_by_the_phase_before_it() {
        let mut s = SignalTracker::new(SignalSettings::default());
        s.observe(t(0), SignalPhase::Green, true);
        s.observe(t(1_000), SignalPhase::Red, true);
        assert_eq!(s.phase(t(900)), (SignalPhase::Green, Some(t(0))));
        assert_eq!(s.phase(t(1_100)), (SignalPhase::Red, Some(t(1_000))));
    }

    #[test]
    fn a_silent_source_becomes_unknown() {
        let mut s = SignalTracker::new(SignalSettings { stale_after_s: 2.0, ..Default::default() });
        s.observe(t(0), SignalPhase::Red, true);
        assert_eq!(s.phase(t(1_900)).0, SignalPhase::Red);
        assert_eq!(s.phase(t(2_100)).0, SignalPhase::Unknown);
    }
}
