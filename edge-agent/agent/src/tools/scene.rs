//! `edge-agent scene`: check a camera's scene by eye, and measure the rules on a labelled replay.
//!
//! `scene check` validates every scene (errors name the camera and the field) and draws each one onto a
//! snapshot of its camera as PNG: stop lines red, lanes yellow with their direction, no-stopping zones
//! magenta, speed sections blue, signal heads white. `scene replay` runs the real detector and tracker over a
//! file camera, judges with the scene and a scripted signal (the labels file), and prints precision and
//! recall per rule; `--dump-detections` writes the detector's output so tests can replay it without a model.

use crate::config::AgentConfig;
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use te_camera::{CameraSettings, WhenFull};
use te_rules::{Judge, Observation, Point, Scene, SignalSource};
use te_track::{TrackEvent, Tracker, TrackerSettings};
use te_types::{CameraId, Detection, Frame, SignalPhase, Violation, ViolationKind};

const STOP_LINE: [u8; 3] = [255, 40, 40];
const LANE: [u8; 3] = [255, 220, 0];
const NO_STOPPING: [u8; 3] = [255, 0, 255];
const SPEED: [u8; 3] = [40, 140, 255];
const HEAD: [u8; 3] = [255, 255, 255];

/// The first frame of a camera's source (file, folder of stills or RTSP).
fn snapshot(settings: &CameraSettings) -> anyhow::Result<Frame> {
    let (tx, rx) = std::sync::mpsc::sync_channel(2);
    let settings = CameraSettings { when_full: WhenFull::DropNewest, ..settings.clone() };
    let handle = te_camera::spawn(settings, tx)?;
    let frame = rx.recv_timeout(std::time::Duration::from_secs(20));
    handle.stop();
    drop(rx);
    let _ = handle.join();
    frame.context("the camera gave no frame within 20 s")
}

/// Validates the scenes and writes `<out>/scene-<camera>.png` for each (or just `camera`'s).
pub fn check(
    config: &AgentConfig,
    camera: Option<&str>,
    snapshot_file: Option<&Path>,
    out: &Path,
) -> anyhow::Result<()> {
    let scenes = config.validated_scenes()?;
    if scenes.is_empty() {
        bail!("the configuration has no [[scenes]]: no camera is judged");
    }
    let font = crate::pipeline::overview::DataBarFont::load(Path::new(&config.evidence.data_bar_font))?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (id, scene) in &scenes {
        if camera.is_some_and(|c| c != id.as_str()) {
            continue;
        }
        let picture = match snapshot_file {
            Some(path) => image::open(path).with_context(|| format!("reading {}", path.display()))?.into_rgb8(),
            None => {
                let settings = config.cameras.iter().find(|c| &c.id == id).context("scene without camera")?;
                let frame = snapshot(settings)?;
                image::RgbImage::from_raw(frame.width, frame.height, frame.rgb().into_owned())
                    .context("frame of the wrong size")?
            }
        };
        let mut picture = image::imageops::resize(
            &picture,
            scene.frame_size[0],
            scene.frame_size[1],
            image::imageops::FilterType::Triangle,
        );
        draw_scene(&mut picture, scene, &font);
        let path = out.join(format!("scene-{id}.png"));
        picture.save(&path).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "{id}: ok · {} stop line(s), {} lane(s), {} no-stopping zone(s), {} speed section(s), signal {:?} -> {}",
            scene.stop_lines.len(),
            scene.lanes.len(),
            scene.no_stopping.len(),
            scene.speed_sections.len(),
            scene.signal.source,
            path.display()
        );
    }
    Ok(())
}

fn draw_scene(picture: &mut image::RgbImage, scene: &Scene, font: &crate::pipeline::overview::DataBarFont) {
    let mut labels: Vec<(Point, String)> = Vec::new();
    for (name, line) in &scene.stop_lines {
        draw_line(picture, line.a, line.b, STOP_LINE);
        arrow(picture, midpoint(line.a, line.b), line.direction, STOP_LINE);
        labels.push((line.a, name.clone()));
    }
    for lane in &scene.lanes {
        polygon(picture, &lane.polygon.0, LANE);
        let c = centroid(&lane.polygon.0);
        if let Some(d) = lane.direction {
            arrow(picture, c, d, LANE);
        }
        labels.push((c, lane.name.clone()));
    }
    for zone in &scene.no_stopping {
        polygon(picture, &zone.polygon.0, NO_STOPPING);
        labels.push((centroid(&zone.polygon.0), format!("{} ≤{:.0} s", zone.name, zone.max_dwell_s)));
    }
    for s in &scene.speed_sections {
        draw_line(picture, s.entry.a, s.entry.b, SPEED);
        draw_line(picture, s.exit.a, s.exit.b, SPEED);
        labels.push((s.entry.a, format!("{} {:.0} km/h, {:.1} m", s.name, s.limit_kmh, s.distance_m)));
    }
    for h in &scene.signal.heads {
        polygon(picture, &[[h[0], h[1]], [h[2], h[1]], [h[2], h[3]], [h[0], h[3]]], HEAD);
    }
    let (w, h) = picture.dimensions();
    for (p, text) in labels {
        let (x, y) =
            ((p[0].max(0.0) as u32).min(w.saturating_sub(40)), (p[1].max(0.0) as u32).min(h.saturating_sub(22)));
        crate::pipeline::overview::draw_text(picture.as_mut(), (w, h), (x, w), (y, 22), &text, &font.0);
    }
}

fn midpoint(a: Point, b: Point) -> Point {
    [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0]
}

fn centroid(points: &[Point]) -> Point {
    let n = points.len().max(1) as f32;
    [points.iter().map(|p| p[0]).sum::<f32>() / n, points.iter().map(|p| p[1]).sum::<f32>() / n]
}

fn polygon(picture: &mut image::RgbImage, points: &[Point], colour: [u8; 3]) {
    for (i, &a) in points.iter().enumerate() {
        draw_line(picture, a, points[(i + 1) % points.len()], colour);
    }
}

/// A 50 px arrow from `from` along the unit vector `d`.
fn arrow(picture: &mut image::RgbImage, from: Point, d: Point, colour: [u8; 3]) {
    let tip = [from[0] + d[0] * 50.0, from[1] + d[1] * 50.0];
    draw_line(picture, from, tip, colour);
    for (c, s) in [(0.94f32, 0.34f32), (0.94, -0.34)] {
        let back = [-(d[0] * c - d[1] * s), -(d[0] * s + d[1] * c)];
        draw_line(picture, tip, [tip[0] + back[0] * 14.0, tip[1] + back[1] * 14.0], colour);
    }
}

/// A 3 px wide line.
fn draw_line(picture: &mut image::RgbImage, a: Point, b: Point, colour: [u8; 3]) {
    let size = picture.dimensions();
    crate::pipeline::overview::draw_segment(picture.as_mut(), size, a, b, colour, 3);
}

/// One frame's detector output, timed from the start of the video.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DetectedFrame {
    pub frame: u64,
    /// Milliseconds from the first frame.
    pub t_ms: i64,
    pub width: u32,
    pub height: u32,
    pub detections: Vec<Detection>,
}

/// A labelled replay: the signal the controller would have reported, and the offences a person saw.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayLabels {
    /// How the labels were made.
    pub method: String,
    /// Scripted controller reports: the phase from `from_s` seconds into the video.
    #[serde(default)]
    pub phases: Vec<ScriptedPhase>,
    pub expected: Vec<ExpectedViolation>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedPhase {
    pub from_s: f32,
    pub phase: SignalPhase,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedViolation {
    pub kind: ViolationKind,
    pub rule: String,
    /// The offence moment lies in this window, seconds into the video.
    pub from_s: f32,
    pub to_s: f32,
    /// Which vehicle, in words (for people reading the labels; shown when it is missed).
    pub vehicle: String,
}

/// The start of every replay's clock, so replays are judged the same way every time.
fn replay_epoch() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default() // 2026-01-01T00:00:00Z
}

/// How the committed signal phase compared with the labelled one, frame by frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseTally {
    /// Frames with a labelled phase.
    pub frames: usize,
    /// Of those, the committed phase was the label's.
    pub agree: usize,
    /// Of those, the committed phase was another colour (unknown is a disagreement, not a wrong colour).
    pub wrong: usize,
}

impl PhaseTally {
    pub fn agreement(&self) -> Option<f64> {
        (self.frames > 0).then(|| self.agree as f64 / self.frames as f64)
    }
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayOutcome {
    pub found: Vec<Violation>,
    /// Only for scenes that read their signal from the picture (a scripted controller agrees by design).
    pub phase: Option<PhaseTally>,
}

/// A replay in progress: frames in, violations out, on the frames' own clock. A scene whose signal comes
/// from a controller gets the labels' phases as controller reports; one that reads its signal heads gets the
/// pictures, and the labels' phases are what a person saw, to measure it against.
pub struct Replay<'a> {
    labels: &'a ReplayLabels,
    from_picture: bool,
    tracker: Tracker,
    judge: Judge,
    classes: BTreeMap<te_types::TrackId, te_types::VehicleClass>,
    found: Vec<Violation>,
    tally: PhaseTally,
}

impl<'a> Replay<'a> {
    pub fn new(scene: &Scene, tracker: &TrackerSettings, labels: &'a ReplayLabels) -> Self {
        Self {
            labels,
            from_picture: scene.signal.source == SignalSource::Image,
            tracker: Tracker::new(tracker.clone()),
            judge: Judge::new(scene.clone()),
            classes: BTreeMap::new(),
            found: Vec::new(),
            tally: PhaseTally::default(),
        }
    }

    /// Whether frames need their pictures (the signal is read from them).
    pub fn needs_pictures(&self) -> bool {
        self.from_picture
    }

    /// One frame's detections, with its picture (packed RGB8) when the signal is read from it.
    pub fn frame(&mut self, f: &DetectedFrame, picture: Option<&Frame>) {
        let at = replay_epoch() + chrono::Duration::milliseconds(f.t_ms);
        let labelled = self.labels.phases.iter().rev().find(|p| f64::from(p.from_s) * 1000.0 <= f.t_ms as f64);
        if self.from_picture {
            if let Some(picture) = picture {
                self.judge.read_signal(at, picture.width, picture.height, |x1, y1, x2, y2| {
                    picture.rgb_region(x1, y1, x2, y2)
                });
            }
        } else if let Some(p) = labelled {
            self.judge.controller_phase(at, p.phase);
        }
        for event in self.tracker.update(f.frame, at, &f.detections) {
            match event {
                TrackEvent::Confirmed { track, detection } => {
                    self.classes.insert(track, detection.class);
                }
                TrackEvent::Ended { track, .. } => self.judge.vehicle_gone(track),
            }
        }
        let seen: Vec<Observation> = self
            .tracker
            .tracks()
            .iter()
            .filter(|t| t.is_confirmed() && t.last_frame == f.frame)
            .map(|t| Observation {
                track: t.id,
                class: self.classes.get(&t.id).copied().unwrap_or(t.class()),
                bbox: t.bbox,
                p_bare: None,
            })
            .collect();
        self.found.extend(self.judge.judge(f.frame, at, (f.width, f.height), &seen));
        if let (true, Some(label)) = (self.from_picture, labelled) {
            let phase = self.judge.signal_phase(at);
            self.tally.frames += 1;
            self.tally.agree += usize::from(phase == label.phase);
            self.tally.wrong += usize::from(phase != label.phase && phase != SignalPhase::Unknown);
        }
    }

    pub fn finish(self) -> ReplayOutcome {
        ReplayOutcome { found: self.found, phase: self.from_picture.then_some(self.tally) }
    }
}

/// Tracks and judges recorded detections with `scene` and the scripted signal; returns every violation.
/// (Scenes that read their signal from the picture need the pictures: see [`Replay`].)
pub fn judge_replay(
    frames: &[DetectedFrame],
    scene: &Scene,
    tracker: &TrackerSettings,
    labels: &ReplayLabels,
) -> Vec<Violation> {
    let mut replay = Replay::new(scene, tracker, labels);
    for f in frames {
        replay.frame(f, None);
    }
    replay.finish().found
}

/// For each found violation, the index of the expected one it matches (same kind and rule, moment inside
/// the labelled window; each label matches once).
fn matches(found: &[Violation], labels: &ReplayLabels) -> Vec<Option<usize>> {
    let epoch = replay_epoch();
    let mut used = vec![false; labels.expected.len()];
    found
        .iter()
        .map(|v| {
            let s = (v.at - epoch).as_seconds_f32();
            let (i, _) =
                labels.expected.iter().enumerate().find(|(i, e)| {
                    !used[*i] && e.kind == v.kind && e.rule == v.rule && (e.from_s..=e.to_s).contains(&s)
                })?;
            used[i] = true;
            Some(i)
        })
        .collect()
}

/// The labelled violations nothing matched.
pub fn missed<'a>(found: &[Violation], labels: &'a ReplayLabels) -> Vec<&'a ExpectedViolation> {
    let hit: Vec<usize> = matches(found, labels).into_iter().flatten().collect();
    labels.expected.iter().enumerate().filter(|(i, _)| !hit.contains(i)).map(|(_, e)| e).collect()
}

/// Precision and recall per kind: (kind, found, expected, matched).
pub fn score(found: &[Violation], labels: &ReplayLabels) -> Vec<(ViolationKind, usize, usize, usize)> {
    let mut matched_kind: BTreeMap<ViolationKind, usize> = BTreeMap::new();
    for (v, m) in found.iter().zip(matches(found, labels)) {
        if m.is_some() {
            *matched_kind.entry(v.kind).or_default() += 1;
        }
    }
    ViolationKind::ALL
        .iter()
        .map(|&k| {
            let f = found.iter().filter(|v| v.kind == k).count();
            let e = labels.expected.iter().filter(|x| x.kind == k).count();
            (k, f, e, matched_kind.get(&k).copied().unwrap_or(0))
        })
        .collect()
}

/// Every frame of a file camera, in order, to `each`.
fn for_each_frame(settings: &CameraSettings, mut each: impl FnMut(Frame) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel(4);
    let settings = CameraSettings { when_full: WhenFull::Block, ..settings.clone() };
    let handle = te_camera::spawn(settings, tx)?;
    let mut result = Ok(());
    for frame in rx.iter() {
        result = each(frame);
        if result.is_err() {
            break;
        }
    }
    handle.stop();
    drop(rx);
    handle.join()?;
    result
}

/// Replays `camera` of `config` against `labels`: the detections recorded in `detections`, or the detector run
/// on every frame; the camera's pictures are decoded when its signal is read from them. Returns the outcome and
/// every frame's detections.
pub fn run_replay(
    config: &AgentConfig,
    camera: &str,
    labels: &ReplayLabels,
    detections: Option<&Path>,
) -> anyhow::Result<(ReplayOutcome, Vec<DetectedFrame>)> {
    let id = CameraId::new(camera);
    let scenes = config.validated_scenes()?;
    let scene = scenes.get(&id).with_context(|| format!("camera {camera} has no scene"))?;
    let settings = config.cameras.iter().find(|c| c.id == id).with_context(|| format!("no camera {camera}"));
    let mut replay = Replay::new(scene, &config.tracker, labels);
    let frames = match detections {
        Some(path) => {
            let frames: Vec<DetectedFrame> =
                serde_json::from_slice(&std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
                    .with_context(|| format!("parsing {}", path.display()))?;
            if replay.needs_pictures() {
                let by_number: BTreeMap<u64, &DetectedFrame> = frames.iter().map(|f| (f.frame, f)).collect();
                for_each_frame(settings?, |picture| {
                    if let Some(f) = by_number.get(&picture.number) {
                        replay.frame(f, Some(&picture));
                    }
                    Ok(())
                })?;
            } else {
                frames.iter().for_each(|f| replay.frame(f, None));
            }
            frames
        }
        None => {
            let ort = crate::boot::load_onnx_runtime(config)?;
            let mut detector = te_infer::VehicleDetector::load(&ort, &config.model_dirs(), config.detector.settings())?;
            let mut frames = Vec::new();
            let mut first = None;
            for_each_frame(settings?, |picture| {
                let start = *first.get_or_insert(picture.captured_at);
                let f = DetectedFrame {
                    frame: picture.number,
                    t_ms: (picture.captured_at - start).num_milliseconds(),
                    width: picture.width,
                    height: picture.height,
                    detections: detector.detect(&picture)?,
                };
                replay.frame(&f, Some(&picture));
                frames.push(f);
                Ok(())
            })?;
            frames
        }
    };
    Ok((replay.finish(), frames))
}

/// `scene replay`: prints each violation, precision/recall per rule and, for a signal read from the picture,
/// its agreement with the labels. Last line: `precision=<x> recall=<y> found=<n> expected=<m>
/// phase_agreement=<f> phase_frames=<n> phase_wrong=<n>` (`n/a` where the signal is a scripted controller).
pub fn replay(
    config: &AgentConfig,
    camera: &str,
    labels_path: &Path,
    detections: Option<&Path>,
    dump: Option<&PathBuf>,
) -> anyhow::Result<()> {
    let labels: ReplayLabels = toml::from_str(
        &std::fs::read_to_string(labels_path).with_context(|| format!("reading {}", labels_path.display()))?,
    )
    .with_context(|| format!("parsing {}", labels_path.display()))?;
    let (outcome, frames) = run_replay(config, camera, &labels, detections)?;
    if let Some(path) = dump {
        std::fs::write(path, serde_json::to_vec(&frames)?).with_context(|| format!("writing {}", path.display()))?;
        println!("detections of {} frames written to {}", frames.len(), path.display());
    }
    let found = &outcome.found;
    println!("labels: {}", labels.method);
    for v in found {
        let moments: Vec<String> = v.moments.iter().map(|m| format!("{:?} {}", m.role, m.frame_number)).collect();
        println!(
            "{:>7.2} s  {:<16} {:<20} track {}  [{}]  {}",
            (v.at - replay_epoch()).as_seconds_f32(),
            v.kind.as_str(),
            v.rule,
            v.track,
            moments.join(", "),
            v.summary
        );
    }
    for missed in missed(found, &labels) {
        println!("missed: {} {} ({})", missed.kind.as_str(), missed.rule, missed.vehicle);
    }
    let (mut f_all, mut e_all, mut m_all) = (0, 0, 0);
    for (kind, f, e, m) in score(found, &labels) {
        if f + e > 0 {
            println!(
                "{:<16} found={f} expected={e} matched={m} precision={} recall={}",
                kind.as_str(),
                ratio(m, f),
                ratio(m, e)
            );
        }
        (f_all, e_all, m_all) = (f_all + f, e_all + e, m_all + m);
    }
    let phase = match outcome.phase {
        Some(t) => {
            format!("phase_agreement={} phase_frames={} phase_wrong={}", ratio(t.agree, t.frames), t.frames, t.wrong)
        }
        None => "phase_agreement=n/a phase_frames=n/a phase_wrong=n/a".to_string(),
    };
    println!("precision={} recall={} found={f_all} expected={e_all} {phase}", ratio(m_all, f_all), ratio(m_all, e_all));
    Ok(())
}

fn ratio(a: usize, b: usize) -> String {
    if b == 0 {
        "n/a".into()
    } else {
        format!("{:.3}", a as f64 / b as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AgentConfig, DEFAULT_TOML};

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(name)
    }

    /// The car-park replay: the recorded detector output of the real video, the demo's scene and the labelled
    /// signal script. Regenerate with `edge-agent scene replay --camera carpark-1 --labels
    /// tests/fixtures/carpark_violations.toml --dump-detections tests/fixtures/carpark_detections.json`.
    #[test]
    fn the_carpark_replay_finds_the_red_light_run_once_and_reports_nothing_unlabelled() {
        let config = AgentConfig::parse(DEFAULT_TOML, "default").expect("parses");
        let scenes = config.validated_scenes().expect("valid scenes");
        let scene = scenes.get(&CameraId::new("carpark-1")).expect("car-park scene");
        let labels: ReplayLabels =
            toml::from_str(&std::fs::read_to_string(fixture("carpark_violations.toml")).expect("labels"))
                .expect("parse");
        let frames: Vec<DetectedFrame> =
            serde_json::from_slice(&std::fs::read(fixture("carpark_detections.json")).expect("detections"))
                .expect("json");
        let found = judge_replay(&frames, scene, &config.tracker, &labels);
        let scores = score(&found, &labels);
        let red = scores.iter().find(|s| s.0 == ViolationKind::RedLight).expect("row");
        assert_eq!(*red, (ViolationKind::RedLight, 1, 1, 1), "{found:?}");
        assert!(scores.iter().all(|(_, f, _, m)| f == m), "no false positives: {scores:?}");
        // The same frames judged twice give the same violations (clocked by frames, not the wall clock).
        assert_eq!(judge_replay(&frames, scene, &config.tracker, &labels), found);
    }
}
