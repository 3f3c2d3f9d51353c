//! Rules: judges tracked vehicles against a camera's scene and says which traffic offences they commit.
//!
//! ```text
//!  confirmed tracks (box per frame) + frame time + signal reads
//!      -> Judge (one per camera): ground point in scene pixels, per-vehicle state
//!      -> red_light (+ stop_line) | wrong_way | wrong_lane | illegal_stopping | speeding | no_helmet
//!      -> Violation { kind, rule, moments before/at, measured facts }
//! ```
//!
//! Invariants: pure code, clocked by frame timestamps (never the wall clock), so a replay judges the same
//! way every time; one violation per vehicle per rule (zone, line, lane or section); a vehicle is judged by
//! the bottom centre of its box, where it meets the road; an unknown signal phase never makes a signal
//! violation.

mod geometry;
mod rules;
pub mod scene;
pub mod signal;

pub use geometry::{DirectedLine, Point, Polygon};
pub use scene::{Scene, SceneConfig, SceneError};
pub use signal::{classify_head, HeadLayout, SignalSettings, SignalSource, SignalTracker};

use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet, VecDeque};
use te_types::{BBox, Moment, MomentRole, SignalPhase, TrackId, VehicleClass, Violation, ViolationKind};

/// One confirmed vehicle in one frame, in that frame's pixels.
#[derive(Debug, Clone, Copy)]
pub struct Observation {
    pub track: TrackId,
    pub class: VehicleClass,
    pub bbox: BBox,
    /// For a motorcyclist whose head region was checked in this frame: the probability that a rider is
    /// bare-headed (the helmet classifier's); `None` when it was not checked.
    pub p_bare: Option<f32>,
}

/// Where a vehicle was at one frame, in scene pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    pub frame: u64,
    pub at: DateTime<Utc>,
    /// Where the vehicle meets the road: its box's bottom centre.
    pub p: Point,
    /// Its front in the direction of travel, where the front wheels meet the road (see [`front_point`]); `p`
    /// while it is not known which way it goes. Stop lines are crossed by this point.
    pub front: Point,
}

/// How far above its box's bottom edge a vehicle driving away from the camera has its front wheels on the
/// road, as a share of the box's height per unit of upward travel. Measured on the junction clips: the
/// minivan of us-junction-a has its front wheels 9 px above its 56 px box's bottom edge (0.16); 0.2 errs
/// towards the line being crossed a few pixels early, which the depth a red-light run must reach absorbs.
const FRONT_DEPTH: f32 = 0.2;

/// The vehicle's front where it meets the road, for travel along the unit vector `d` (picture pixels): the
/// leading side of the box's bottom edge, raised towards the box's middle when it drives away from the camera
/// (its rear is then the box's bottom edge). A vehicle coming towards the camera has its front at the bottom.
fn front_point(bbox: &te_types::BBox, d: Point) -> Point {
    let (cx, bottom) = bbox.ground_point();
    [cx + d[0] * bbox.width() / 2.0, bottom + d[1].min(0.0) * FRONT_DEPTH * bbox.height()]
}

/// Seconds of travel over which the direction of a vehicle is taken.
const DIRECTION_WINDOW_S: f32 = 0.3;

/// A crossing on red whose outcome (ran the light, or stopped past the line) is not yet known.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingCrossing {
    pub before: Sample,
    pub at: Sample,
    pub phase: SignalPhase,
    pub red_for_s: Option<f32>,
}

/// What the judge remembers of one vehicle.
#[derive(Debug, Clone)]
pub(crate) struct VehicleState {
    pub class: VehicleClass,
    pub last: Sample,
    /// Samples of the last few seconds, oldest first (for movement over a window).
    pub recent: VecDeque<Sample>,
    /// The first sample of the current stand-still (the vehicle has stayed within `still_radius_px` of it).
    pub still_since: Sample,
    /// Per lane: when the vehicle entered it (continuously inside since).
    pub lane_since: Vec<Option<Sample>>,
    /// Per stop line.
    pub pending: Vec<Option<PendingCrossing>>,
    /// Per speed section: the entry crossing time and the sample before it.
    pub section_entry: Vec<Option<(DateTime<Utc>, Sample)>>,
    /// (rule kind, rule index) already reported for this vehicle.
    pub fired: HashSet<(ViolationKind, usize)>,
    /// What the helmet checks of this vehicle said so far.
    pub helmet: rules::no_helmet::Votes,
}

/// What the rules see of one frame.
pub(crate) struct FrameContext<'a> {
    pub scene: &'a Scene,
    pub phase: SignalPhase,
    pub phase_since: Option<DateTime<Utc>>,
}

impl FrameContext<'_> {
    /// A violation by `track` against rule `index` named `rule`, unless switched off or already reported.
    pub fn report(
        &self,
        state: &mut VehicleState,
        kind: ViolationKind,
        index: usize,
        (track, rule): (TrackId, &str),
        before: Sample,
        at: Sample,
    ) -> Option<Violation> {
        if !self.scene.enable.allows(kind) || !state.fired.insert((kind, index)) {
            return None;
        }
        let moment = |role, s: Sample| Moment { role, frame_number: s.frame, captured_at: s.at };
        Some(Violation {
            kind,
            track,
            rule: rule.to_owned(),
            at: at.at,
            moments: vec![moment(MomentRole::Before, before), moment(MomentRole::At, at)],
            signal: None,
            red_for_s: None,
            speed_kmh: None,
            limit_kmh: None,
            dwell_s: None,
            certified: true,
            summary: String::new(),
        })
    }
}

pub(crate) fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f32 {
    (to - from).as_seconds_f32()
}

/// Two definite colours that differ (unknown on either side contradicts nothing).
fn contradicts(a: SignalPhase, b: SignalPhase) -> bool {
    a != SignalPhase::Unknown && b != SignalPhase::Unknown && a != b
}

/// One camera's judge.
#[derive(Debug)]
pub struct Judge {
    scene: Scene,
    signal: SignalTracker,
    /// The signal heads in the picture, when the phase comes from the controller and the scene also names
    /// heads: a controller phase the picture contradicts is not trusted.
    picture: Option<SignalTracker>,
    /// Since when the controller and the picture disagree, and whether that was counted.
    disagreeing: Option<(DateTime<Utc>, bool)>,
    disagreements: u64,
    vehicles: HashMap<TrackId, VehicleState>,
}

/// A controller and the picture may disagree for this long at a phase change (the picture is smoothed over
/// a few frames) before it counts as a disagreement. The phase is unknown throughout either way.
const DISAGREEMENT_GRACE_S: f32 = 1.5;

/// One phase from the heads of one approach: the colour the heads that can be read agree on, when at least half
/// of them can be read (a head hidden by a truck or washed out abstains); any two colours, or too few reads,
/// give unknown.
fn combine_heads(reads: &[SignalPhase]) -> SignalPhase {
    let known: Vec<SignalPhase> = reads.iter().copied().filter(|&p| p != SignalPhase::Unknown).collect();
    match known.first() {
        Some(&first) if known.len() * 2 >= reads.len() && known.iter().all(|&p| p == first) => first,
        _ => SignalPhase::Unknown,
    }
}

impl Judge {
    pub fn new(scene: Scene) -> Self {
        let signal = SignalTracker::new(scene.signal.clone());
        let picture = (scene.signal.source == SignalSource::External && !scene.signal.heads.is_empty())
            .then(|| SignalTracker::new(scene.signal.clone()));
        Self { scene, signal, picture, disagreeing: None, disagreements: 0, vehicles: HashMap::new() }
    }

    /// Disagreements between the controller and the picture since the last call (each counted once, when
    /// it has lasted longer than a phase change takes).
    pub fn take_disagreements(&mut self) -> u64 {
        std::mem::take(&mut self.disagreements)
    }

    pub fn scene(&self) -> &Scene {
        &self.scene
    }

    /// Reads the signal heads in this frame (`width` x `height`; `rgb_region(x1, y1, x2, y2)` gives a rectangle
    /// of it as packed RGB8), when the scene names them:
    /// the phase itself for source = "image", a check of the controller's phase for source = "external".
    pub fn read_signal(
        &mut self,
        at: DateTime<Utc>,
        width: u32,
        height: u32,
        rgb_region: impl Fn(u32, u32, u32, u32) -> Vec<u8>,
    ) {
        let settings = &self.scene.signal;
        if settings.heads.is_empty() || settings.source == SignalSource::None {
            return;
        }
        let (sx, sy) = self.frame_scale(width, height);
        let reads: Vec<SignalPhase> = settings
            .heads
            .iter()
            .map(|h| {
                // Only the head's pixels are converted (a video frame is I420): the same whole pixels that
                // `classify_head` would take from the full picture.
                let clamp = |v: f32, max: u32| (v.max(0.0) as u32).min(max);
                let (x1, y1) = (clamp(h[0] / sx, width), clamp(h[1] / sy, height));
                let (x2, y2) = (clamp(h[2] / sx, width), clamp(h[3] / sy, height));
                if x2 <= x1 || y2 <= y1 {
                    return SignalPhase::Unknown;
                }
                let (w, hh) = (x2 - x1, y2 - y1);
                classify_head(&rgb_region(x1, y1, x2, y2), w, hh, [0.0, 0.0, w as f32, hh as f32], settings)
            })
            .collect();
        let phase = combine_heads(&reads);
        match &mut self.picture {
            Some(picture) => picture.observe(at, phase, false),
            None => self.signal.observe(at, phase, false),
        }
    }

    /// The phase as the signal controller reports it (source = "external"); ignored for other sources.
    pub fn controller_phase(&mut self, at: DateTime<Utc>, phase: SignalPhase) {
        if self.scene.signal.source == SignalSource::External {
            self.signal.observe(at, phase, true);
        }
    }

    /// The committed signal phase at `at`.
    pub fn signal_phase(&self, at: DateTime<Utc>) -> SignalPhase {
        self.checked_phase(at).0
    }

    /// The phase at `at` and when it began; unknown while the controller and the picture show different
    /// colours.
    fn checked_phase(&self, at: DateTime<Utc>) -> (SignalPhase, Option<DateTime<Utc>>) {
        let (phase, since) = self.signal.phase(at);
        match self.picture.as_ref().map(|p| p.phase(at).0) {
            Some(seen) if contradicts(phase, seen) => (SignalPhase::Unknown, None),
            _ => (phase, since),
        }
    }

    /// Counts a disagreement that has outlasted a phase change.
    fn note_disagreement(&mut self, at: DateTime<Utc>) {
        let Some(picture) = &self.picture else { return };
        if !contradicts(self.signal.phase(at).0, picture.phase(at).0) {
            self.disagreeing = None;
            return;
        }
        let (since, counted) = self.disagreeing.get_or_insert((at, false));
        if !*counted && seconds(*since, at) >= DISAGREEMENT_GRACE_S {
            *counted = true;
            self.disagreements += 1;
        }
    }

    /// Scene pixels per frame pixel, horizontally and vertically.
    fn frame_scale(&self, width: u32, height: u32) -> (f32, f32) {
        let [w, h] = self.scene.frame_size;
        (w as f32 / width.max(1) as f32, h as f32 / height.max(1) as f32)
    }

    /// Judges one frame's confirmed vehicles (`width` x `height`: the frame's size). Returns the offences
    /// first seen in this frame.
    pub fn judge(
        &mut self,
        frame: u64,
        at: DateTime<Utc>,
        (width, height): (u32, u32),
        vehicles: &[Observation],
    ) -> Vec<Violation> {
        let (sx, sy) = self.frame_scale(width, height);
        self.note_disagreement(at);
        let (phase, phase_since) = self.checked_phase(at);
        let ctx = FrameContext { scene: &self.scene, phase, phase_since };
        let scene = &self.scene;
        let mut out = Vec::new();
        for v in vehicles {
            let (gx, gy) = v.bbox.ground_point();
            let p = [gx * sx, gy * sy];
            // Which way it goes: from where it was a moment ago (in scene pixels), once it has moved.
            let travel = self.vehicles.get(&v.track).and_then(|state| {
                let from = state.recent.iter().rev().find(|s| seconds(s.at, at) >= DIRECTION_WINDOW_S)?;
                let d = [p[0] - from.p[0], p[1] - from.p[1]];
                let len = geometry::distance(p, from.p);
                (len > scene.thresholds.still_radius_px).then(|| [d[0] / len, d[1] / len])
            });
            let front = match travel {
                Some(d) => {
                    // The direction in the frame's pixels, where the box is.
                    let d = [d[0] / sx.max(f32::EPSILON), d[1] / sy.max(f32::EPSILON)];
                    let len = (d[0] * d[0] + d[1] * d[1]).sqrt().max(f32::EPSILON);
                    let f = front_point(&v.bbox, [d[0] / len, d[1] / len]);
                    [f[0] * sx, f[1] * sy]
                }
                None => p,
            };
            let cur = Sample { frame, at, p, front };
            let Some(state) = self.vehicles.get_mut(&v.track) else {
                self.vehicles.insert(
                    v.track,
                    VehicleState {
                        class: v.class,
                        last: cur,
                        recent: VecDeque::from([cur]),
                        still_since: cur,
                        lane_since: scene.lanes.iter().map(|l| l.polygon.contains(cur.p).then_some(cur)).collect(),
                        pending: vec![None; scene.stop_lines.len()],
                        section_entry: vec![None; scene.speed_sections.len()],
                        fired: HashSet::new(),
                        helmet: Default::default(),
                    },
                );
                continue;
            };
            if frame <= state.last.frame {
                continue; // already judged (or out of order)
            }
            state.class = v.class;
            let prev = state.last;
            if geometry::distance(cur.p, state.still_since.p) > scene.thresholds.still_radius_px {
                state.still_since = cur;
            }
            let keep = scene.thresholds.wrong_way_window_s + 1.0;
            while state.recent.front().is_some_and(|s| seconds(s.at, at) > keep) || state.recent.len() >= 256 {
                state.recent.pop_front();
            }
            rules::red_light::check(&ctx, v.track, state, prev, cur, &mut out);
            rules::wrong_way::check(&ctx, v.track, state, cur, &mut out);
            rules::wrong_lane::check(&ctx, v.track, state, cur, &mut out);
            rules::illegal_stopping::check(&ctx, v.track, state, cur, &mut out);
            rules::speeding::check(&ctx, v.track, state, prev, cur, &mut out);
            rules::no_helmet::check(&ctx, v.track, state, cur, v.p_bare, &mut out);
            state.recent.push_back(cur);
            state.last = cur;
        }
        out
    }

    /// The frames (before, at) of every crossing on red whose outcome is not decided yet: the pictures its
    /// record will need if it becomes one, which the caller keeps until then.
    pub fn pending_moments(&self) -> Vec<u64> {
        self.vehicles
            .values()
            .flat_map(|v| v.pending.iter().flatten())
            .flat_map(|p| [p.before.frame, p.at.frame])
            .collect()
    }

    /// Forgets a vehicle whose track ended. A crossing on red whose outcome was not seen is dropped: the
    /// evidence would not show the offence.
    pub fn vehicle_gone(&mut self, track: TrackId) {
        self.vehicles.remove(&track);
    }
}

#[cfg(test)]
mod tests;
