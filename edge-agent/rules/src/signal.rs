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

/// How a signal head's lamp is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HeadLayout {
    /// By the lit lamp's colour alone (large, well-exposed heads).
    #[default]
    Colour,
    /// Red, yellow, green from top to bottom, the region drawn around the housing with a margin of 2-3 px of
    /// background (the housing is found as what is darker than that): the lit lamp's position decides, and its colour, where the camera shows one, must not contradict it. Far heads are a few
    /// pixels tall and their lamps often burn out to white in the picture, so position is what stays readable.
    Vertical,
    /// Red, yellow, green from left to right; read as `vertical`.
    Horizontal,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalSettings {
    pub source: SignalSource,
    /// Signal-head regions `[x1, y1, x2, y2]` in scene pixels (source = "image"). Several heads for one
    /// approach must agree, or the phase is unknown.
    pub heads: Vec<[f32; 4]>,
    /// How the heads' lamps are read.
    pub layout: HeadLayout,
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
            layout: HeadLayout::Colour,
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

/// The lit lamp in one head region of a packed RGB8 picture (`region` in that picture's pixels), read as the
/// settings' `layout` says.
pub fn classify_head(rgb: &[u8], width: u32, height: u32, region: [f32; 4], settings: &SignalSettings) -> SignalPhase {
    let clamp = |v: f32, max: u32| (v.max(0.0) as u32).min(max);
    let (x1, y1) = (clamp(region[0], width), clamp(region[1], height));
    let (x2, y2) = (clamp(region[2], width), clamp(region[3], height));
    if x2 <= x1 || y2 <= y1 || rgb.len() < (width * height * 3) as usize {
        return SignalPhase::Unknown;
    }
    let area = Area { rgb, width, x: x1..x2, y: y1..y2 };
    match settings.layout {
        HeadLayout::Colour => by_colour(&area, settings.min_lit_fraction),
        HeadLayout::Vertical => by_position(&area, false),
        HeadLayout::Horizontal => by_position(&area, true),
    }
}

/// A rectangle of a packed RGB8 picture.
struct Area<'a> {
    rgb: &'a [u8],
    width: u32,
    x: std::ops::Range<u32>,
    y: std::ops::Range<u32>,
}

impl Area<'_> {
    fn pixel(&self, x: u32, y: u32) -> (u8, u8, u8) {
        let i = ((y * self.width + x) * 3) as usize;
        (self.rgb[i], self.rgb[i + 1], self.rgb[i + 2])
    }
}

/// A lit lamp is at least this bright (the largest channel, 2x2 mean) and this much brighter than the
/// region's median.
const LIT_VALUE: f32 = 140.0;
const LIT_CONTRAST: f32 = 35.0;
/// Share of the housing's dark pixels that must lie on one side of the lit lamp (red: below it, green: above).
const ONE_SIDE: f32 = 0.8;
/// Share on each side for yellow (the middle lamp).
const BOTH_SIDES: f32 = 0.25;

/// Where the lit lamp sits in its housing: the dark pixels of the housing's columns below it (red, the top
/// lamp), above it (green, the bottom lamp) or on both sides (yellow). Measured against the housing itself, so
/// a head that sways a pixel or two inside its region reads the same; the lamp's colour, where the camera
/// shows one, must not contradict the position.
fn by_position(area: &Area<'_>, horizontal: bool) -> SignalPhase {
    // Coordinates along the head (a) and across it (c), from the region's corner.
    let (along, across) = if horizontal { (&area.x, &area.y) } else { (&area.y, &area.x) };
    let (len, wide) = (along.end - along.start, across.end - across.start);
    if len < 4 || wide < 2 {
        return SignalPhase::Unknown;
    }
    let pixel = |a: u32, c: u32| {
        let (a, c) = (along.start + a, across.start + c);
        if horizontal {
            area.pixel(a, c)
        } else {
            area.pixel(c, a)
        }
    };
    let value = |a: u32, c: u32| {
        let (r, g, b) = pixel(a, c);
        f32::from(r.max(g).max(b))
    };
    let mut values: Vec<f32> =
        (0..len).flat_map(|a| (0..wide).map(move |c| (a, c))).map(|(a, c)| value(a, c)).collect();
    let peak = (0..len - 1)
        .flat_map(|a| (0..wide - 1).map(move |c| (a, c)))
        .map(|(a, c)| (value(a, c) + value(a + 1, c) + value(a, c + 1) + value(a + 1, c + 1)) / 4.0)
        .fold(0f32, f32::max);
    values.sort_by(f32::total_cmp);
    let median = values[values.len() / 2];
    if peak < LIT_VALUE || peak - median < LIT_CONTRAST {
        return SignalPhase::Unknown; // dark
    }
    // The lamp: its bright pixels, their extent along the head and their centre across it.
    let bright_from = LIT_VALUE.max(0.85 * peak);
    let (mut first, mut last, mut sum_c, mut n, mut c_min, mut c_max) = (u32::MAX, 0, 0u64, 0u64, u32::MAX, 0);
    let mut colours = [0u32; 3];
    for a in 0..len {
        for c in 0..wide {
            if value(a, c) >= bright_from {
                (first, last, c_min, c_max) = (first.min(a), last.max(a), c_min.min(c), c_max.max(c));
                sum_c += u64::from(c);
                n += 1;
                let (r, g, b) = pixel(a, c);
                if let Some(colour) = lamp_colour(r, g, b) {
                    colours[colour] += 1;
                }
            }
        }
    }
    if n == 0 {
        return SignalPhase::Unknown;
    }
    // The housing: dark pixels in the lamp's columns (the mast arm beside it does not count).
    let centre = sum_c as f32 / n as f32;
    let half = (((c_max - c_min) as f32) / 2.0 + 1.0).max(2.0);
    let dark_below = 90f32.min(0.6 * median);
    let (mut above, mut below, mut dark) = (0u32, 0u32, 0u32);
    for a in 0..len {
        for c in (0..wide).filter(|&c| (c as f32 - centre).abs() <= half) {
            if value(a, c) < dark_below {
                dark += 1;
                above += u32::from(a < first);
                below += u32::from(a > last);
            }
        }
    }
    if dark < 6 {
        return SignalPhase::Unknown; // no housing in the region
    }
    let (above, below) = (above as f32 / dark as f32, below as f32 / dark as f32);
    let phase = if below >= ONE_SIDE {
        SignalPhase::Red
    } else if above >= ONE_SIDE {
        SignalPhase::Green
    } else if below >= BOTH_SIDES && above >= BOTH_SIDES {
        SignalPhase::Yellow
    } else {
        return SignalPhase::Unknown;
    };
    // Red and yellow glow red or amber, never green; green never red or amber.
    let warm = colours[0] + colours[1];
    let contradicts = match phase {
        SignalPhase::Green => warm > colours[2],
        _ => colours[2] > warm,
    };
    if contradicts {
        SignalPhase::Unknown
    } else {
        phase
    }
}

/// The colour most of the region's lit pixels show.
fn by_colour(area: &Area<'_>, min_lit_fraction: f32) -> SignalPhase {
    let (x1, x2, y1, y2) = (area.x.start, area.x.end, area.y.start, area.y.end);
    let mut counts = [0u32; 3]; // red, yellow, green
    for y in y1..y2 {
        for x in x1..x2 {
            let (r, g, b) = area.pixel(x, y);
            if let Some(c) = lamp_colour(r, g, b) {
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
    /// The committed phase was seen to begin: it followed another colour. One first read after nothing was
    /// known (start-up, a dark head) began at a moment nobody saw, so its start is not reported.
    began_seen: bool,
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
            began_seen: false,
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
            self.previous = (self.committed, self.began());
            self.began_seen = self.committed != SignalPhase::Unknown;
            self.committed = self.candidate;
            self.since = self.candidate_since;
        }
    }

    /// The phase at `at` and when it began (`None` when that was not seen); `Unknown` when input is stale.
    pub fn phase(&self, at: DateTime<Utc>) -> (SignalPhase, Option<DateTime<Utc>>) {
        let fresh = self.last_input.is_some_and(|last| (at - last).as_seconds_f32() <= self.settings.stale_after_s);
        if !fresh {
            (SignalPhase::Unknown, None)
        } else if self.since.is_some_and(|since| at < since) {
            self.previous
        } else {
            (self.committed, self.began())
        }
    }

    fn began(&self) -> Option<DateTime<Utc>> {
        self.since.filter(|_| self.began_seen)
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
        let s = SignalSettings::default();
        assert_eq!(classify_head(&head([255, 40, 30]), 20, 20, region, &s), SignalPhase::Red);
        assert_eq!(classify_head(&head([255, 200, 30]), 20, 20, region, &s), SignalPhase::Yellow);
        assert_eq!(classify_head(&head([40, 255, 170]), 20, 20, region, &s), SignalPhase::Green);
        assert_eq!(classify_head(&head([90, 90, 90]), 20, 20, region, &s), SignalPhase::Unknown);
    }

    /// A far head as junction cameras show it: a 6x15 dark housing on grey sky, one lamp lit in third `cell`,
    /// its core `core` and a one-pixel halo `halo` around it.
    fn far_head(cell: u32, core: [u8; 3], halo: [u8; 3]) -> Vec<u8> {
        let (w, h) = (10u32, 19u32);
        let mut rgb = [120u8, 125, 130].repeat((w * h) as usize);
        let mut paint = |x: u32, y: u32, c: [u8; 3]| {
            let i = ((y * w + x) * 3) as usize;
            rgb[i..i + 3].copy_from_slice(&c);
        };
        for y in 2..17 {
            for x in 2..8 {
                paint(x, y, [30, 28, 25]);
            }
        }
        let cy = 2 + cell * 5 + 2;
        for y in cy - 2..=cy + 2 {
            for x in 2..8 {
                if y != cy - 2 && y != cy + 2 && (3..7).contains(&x) {
                    paint(x, y, if (4..6).contains(&x) && y == cy { core } else { halo });
                }
            }
        }
        rgb
    }

    #[test]
    fn a_far_head_is_read_by_its_lit_lamps_position_and_a_contradicting_colour_makes_it_unknown() {
        let s = SignalSettings { layout: HeadLayout::Vertical, ..Default::default() };
        let region = [0.0, 0.0, 10.0, 19.0]; // the housing and a margin of sky, as drawn in a scene
        let read = |rgb: Vec<u8>| classify_head(&rgb, 10, 19, region, &s);
        // Burnt out to white with a warm halo (clip us-junction-a): the top lamp, so red.
        assert_eq!(read(far_head(0, [255, 246, 232], [230, 160, 140])), SignalPhase::Red);
        assert_eq!(read(far_head(0, [255, 60, 50], [200, 40, 40])), SignalPhase::Red);
        assert_eq!(read(far_head(1, [255, 220, 120], [230, 170, 60])), SignalPhase::Yellow);
        assert_eq!(read(far_head(2, [200, 255, 230], [60, 220, 150])), SignalPhase::Green);
        // Top lamp but a green glow: something else is lit there (a reflection, a misplaced region).
        assert_eq!(read(far_head(0, [120, 255, 180], [60, 220, 150])), SignalPhase::Unknown);
        // Nothing lit.
        assert_eq!(read(far_head(1, [40, 38, 35], [35, 33, 30])), SignalPhase::Unknown);
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

    /// A clip that starts on red: how long it had been red is not known, and must not be reported as the time
    /// since the first frame.
    #[test]
    fn a_phase_first_seen_after_nothing_known_has_no_start() {
        let mut s = SignalTracker::new(SignalSettings { smoothing_frames: 3, ..Default::default() });
        for i in 0..5 {
            s.observe(t(i * 40), SignalPhase::Red, false);
        }
        assert_eq!(s.phase(t(160)), (SignalPhase::Red, None));
        for i in 5..8 {
            s.observe(t(i * 40), SignalPhase::Green, false);
        }
        assert_eq!(s.phase(t(280)), (SignalPhase::Green, Some(t(200))), "a change seen: its start is known");
    }

    #[test]
    fn a_frame_captured_before_a_reported_change_is_judged_by_the_phase_before_it() {
        let mut s = SignalTracker::new(SignalSettings::default());
        s.observe(t(0), SignalPhase::Green, true);
        s.observe(t(1_000), SignalPhase::Red, true);
        assert_eq!(s.phase(t(900)), (SignalPhase::Green, None), "green's own start was not seen");
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
