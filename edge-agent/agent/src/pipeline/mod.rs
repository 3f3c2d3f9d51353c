//! The analysis stage: frames in, evidence out. Runs on its own thread (inference is blocking work).
//!
//! ```text
//!  cameras --bounded frames--> detect (ort) -> track (per camera) -> judge (scene rules, signal phase)
//!          -> read plates on the vehicle while it is tracked (vote; each read keeps the plate's picture)
//!          -> on track end: one record per violation (moments before/at/after side by side), and one per
//!             vehicle pass where the camera records passes -> evidence store (flushed) -> notify uplink
//! ```
//!
//! Records are written when the vehicle's track ends (or when the stream ends), so that every read of its
//! plate has voted; a violation by a vehicle that stays in view (a parked car) is written `HOLD_S` after its
//! last moment with the plate as read so far. A frame whose inference fails is logged, counted and skipped; a
//! record the store cannot take is an alarm (logged at error level and counted), because a record is only
//! "recorded" once the store has flushed it.

pub mod helmets;
pub mod moments;
pub mod overview;
pub mod pictures;
pub mod workers;

use crate::pipeline::moments::RecentFrames;
use crate::telemetry::counters::{bump, AnalysisCounters, AnalysisReport};
use crate::telemetry::latency::Stage;
use central_protocol::{EvidenceRecord, PROTOCOL_VERSION};
use std::collections::HashMap;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use te_evidence::EvidenceStore;
use te_infer::{PlateRecognizer, RgbView, VehicleDetector};
use te_rules::{Judge, Observation, Scene};
use te_track::{PlateBallot, TrackEvent, Tracker, TrackerSettings};
use te_types::{BBox, CameraId, DeviceId, EventKind, EvidenceId, Frame, MomentRole, TrackId, VehicleClass, Violation};
use tokio::sync::Notify;

/// When and how plates are read on tracked vehicles.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlateReading {
    /// Read plates at all (needs the plate models).
    pub enabled: bool,
    /// Vehicles narrower than this (pixels) are not read: their plates are too small to read reliably.
    pub min_vehicle_width: f32,
    /// Reads per vehicle pass at most; each read costs a plate detection and an OCR run.
    pub max_reads_per_vehicle: usize,
    /// Frames between two reads of the same vehicle, so the reads see different moments.
    pub frames_between_reads: u64,
    /// ONNX Runtime threads per plate model.
    pub threads: usize,
}

impl Default for PlateReading {
    fn default() -> Self {
        Self { enabled: true, min_vehicle_width: 48.0, max_reads_per_vehicle: 4, frames_between_reads: 3, threads: 1 }
    }
}

/// Seconds a violation by a vehicle still in view waits for the track to end before it is written anyway.
const HOLD_S: i64 = 30;

/// A violation waiting for its "after" moment and for the vehicle's plate.
struct OpenViolation {
    violation: Violation,
    /// The before and at moments (kept frames: "before" never later than its moment).
    shots: Vec<Shot>,
    /// The first frame at least `after` past the offence in which the vehicle was seen.
    after: Option<Shot>,
    /// The latest frame showing the vehicle: the "after" picture when the track ends sooner.
    last_seen: Option<Shot>,
}

/// One moment of a violation's picture: the frame, the vehicle's box in it, and, for signal rules, the phase
/// the judge held for that frame's time.
struct Shot {
    role: MomentRole,
    frame: Frame,
    bbox: BBox,
    phase: Option<te_types::SignalPhase>,
}

/// A confirmed vehicle whose records wait for its track to end.
struct OpenVehicle {
    /// The vehicle-pass record and its overview, for cameras that record passes.
    pass: Option<(EvidenceRecord, Vec<u8>)>,
    class: VehicleClass,
    score: f32,
    /// When the vehicle was confirmed: the clip starts some seconds before it.
    confirmed_at: chrono::DateTime<chrono::Utc>,
    ballot: PlateBallot,
    last_read_frame: Option<u64>,
    violations: Vec<OpenViolation>,
    /// The most bare-headed helmet check so far: (frame number, the check). The no-helmet rule's "at" moment
    /// is that sighting, and its picture enlarges the region judged then.
    most_bare: Option<(u64, crate::pipeline::helmets::HeadCheck)>,
}

/// What a vehicle's records are stored with besides their own overview: the plate its reads voted for, the
/// pictures those votes name, and the vehicle's clip.
struct VehicleMedia<'a> {
    plate: Option<te_types::PlateConsensus>,
    plate_crops: &'a [Vec<u8>],
    clip: Option<&'a [u8]>,
}

/// What the stage keeps per camera.
struct CameraWork {
    tracker: Tracker,
    /// `None`: no scene for this camera, so no rules (every pass is recorded).
    judge: Option<Judge>,
    recent: RecentFrames,
    /// The last frame the detector ran on.
    last_detected: Option<u64>,
}

pub struct AnalysisStage {
    pub device_id: DeviceId,
    /// Counters the metrics endpoint reads while the stage runs.
    pub counters: Arc<AnalysisCounters>,
    /// Each video camera's pre-event ring buffer, for the clip in every record.
    pub rings: HashMap<CameraId, Arc<std::sync::Mutex<te_camera::ring::RingBuffer>>>,
    /// Seconds of video before the vehicle was confirmed that the clip includes.
    pub clip_before: chrono::Duration,
    /// Hash of the effective configuration, written into every record.
    pub config_version: String,
    /// Writes the data bar on overview images.
    pub data_bar_font: crate::pipeline::overview::DataBarFont,
    pub detector: VehicleDetector,
    /// Frames from one detection to the next per camera (1: every frame); the tracks coast in between.
    pub detect_interval: u64,
    /// `None` when plate reading is off.
    pub plates: Option<PlateRecognizer>,
    pub plate_reading: PlateReading,
    /// `None` when helmet checks are off.
    pub helmets: Option<te_infer::HelmetClassifier>,
    pub helmet_checking: crate::pipeline::helmets::HelmetChecking,
    pub tracker_settings: TrackerSettings,
    pub locations: HashMap<CameraId, String>,
    /// Each camera's validated scene (rules); cameras without one record every vehicle pass.
    pub scenes: HashMap<CameraId, Scene>,
    /// Signal phases posted by junction controllers, for scenes whose signal source is "external".
    pub controller_phases: Arc<crate::signal_input::ControllerPhases>,
    /// The box's latest clock check, stamped into every record.
    pub clock: te_uplink::clock::ClockWatch,
    /// How moments are kept and chosen for violation pictures.
    pub moments: crate::pipeline::moments::MomentSettings,
    pub store: Arc<dyn EvidenceStore>,
    pub new_evidence: Arc<Notify>,
}

/// The models the analysis stage runs, loaded once at start.
pub struct StageModels {
    pub detector: VehicleDetector,
    /// `None` when plate reading is off.
    pub plates: Option<PlateRecognizer>,
    /// `None` when helmet checks are off.
    pub helmets: Option<te_infer::HelmetClassifier>,
    /// Writes the data bar on overview images.
    pub data_bar_font: crate::pipeline::overview::DataBarFont,
}

/// What the analysis stage shares with the rest of the run (every worker the same).
#[derive(Clone)]
pub struct StageLinks {
    /// Counters the metrics endpoint reads while the stage runs.
    pub counters: Arc<AnalysisCounters>,
    /// Each video camera's pre-event ring buffer.
    pub rings: HashMap<CameraId, Arc<std::sync::Mutex<te_camera::ring::RingBuffer>>>,
    pub controller_phases: Arc<crate::signal_input::ControllerPhases>,
    pub clock: te_uplink::clock::ClockWatch,
    pub store: Arc<dyn EvidenceStore>,
    /// Woken after each record is flushed, so the uplink sends it at once.
    pub new_evidence: Arc<Notify>,
}

/// What the analysis stage is told by the configuration (`boot::stage_settings` reads it).
pub struct StageSettings {
    pub device_id: DeviceId,
    /// Seconds of video before the vehicle was confirmed that the clip includes.
    pub clip_before: chrono::Duration,
    /// Hash of the effective configuration, written into every record.
    pub config_version: String,
    /// Frames from one detection to the next per camera (1: every frame).
    pub detect_interval: u64,
    pub plate_reading: PlateReading,
    pub helmet_checking: crate::pipeline::helmets::HelmetChecking,
    pub tracker_settings: TrackerSettings,
    pub locations: HashMap<CameraId, String>,
    /// Each camera's validated scene.
    pub scenes: HashMap<CameraId, Scene>,
    pub moments: crate::pipeline::moments::MomentSettings,
}

impl AnalysisStage {
    /// The stage `settings` describe, running `models`, linked to the rest of the run by `links`.
    pub fn new(settings: StageSettings, models: StageModels, links: StageLinks) -> Self {
        let StageSettings {
            device_id,
            clip_before,
            config_version,
            detect_interval,
            plate_reading,
            helmet_checking,
            tracker_settings,
            locations,
            scenes,
            moments,
        } = settings;
        let StageModels { detector, plates, helmets, data_bar_font } = models;
        let StageLinks { counters, rings, controller_phases, clock, store, new_evidence } = links;
        Self {
            device_id,
            counters,
            rings,
            clip_before,
            config_version,
            data_bar_font,
            detector,
            detect_interval,
            plates,
            plate_reading,
            helmets,
            helmet_checking,
            tracker_settings,
            locations,
            scenes,
            controller_phases,
            clock,
            moments,
            store,
            new_evidence,
        }
    }

    /// Runs until every camera has dropped its sender.
    pub fn run(mut self, frames: Receiver<Frame>) -> AnalysisReport {
        let mut cameras: HashMap<CameraId, CameraWork> = HashMap::new();
        let mut open: HashMap<(CameraId, TrackId), OpenVehicle> = HashMap::new();
        for frame in frames {
            let frame_started = std::time::Instant::now();
            self.counters.frame(&frame.camera);
            let work = cameras.entry(frame.camera.clone()).or_insert_with(|| {
                // Still images are single-frame scenes: every detection there is a vehicle in its own right,
                // weak ones included (no later frame can confirm them).
                let settings = if frame.scene_cut {
                    TrackerSettings { min_hits: 1, high_score: 0.0, ..self.tracker_settings.clone() }
                } else {
                    self.tracker_settings.clone()
                };
                CameraWork {
                    tracker: Tracker::new(settings),
                    judge: self.scenes.get(&frame.camera).cloned().map(Judge::new),
                    recent: RecentFrames::new(self.moments.clone()),
                    last_detected: None,
                }
            });
            let mut events = if frame.scene_cut { work.tracker.scene_cut() } else { Vec::new() };
            work.recent.push(&frame);
            let live = self.counters.clone();
            // A detection interval: between detected frames the tracks coast on their motion.
            let detect_now = frame.scene_cut
                || work.last_detected.is_none_or(|last| frame.number >= last + self.detect_interval.max(1));
            if detect_now {
                let started = std::time::Instant::now();
                let detections = match self.detector.detect(&frame) {
                    Ok(d) => d,
                    Err(e) => {
                        bump(&live.inference_errors);
                        tracing::warn!(camera = %frame.camera, frame = frame.number, error = %e, "inference failed; frame skipped");
                        self.close_ended(&frame.camera, events, work, &mut open);
                        continue;
                    }
                };
                live.detected(detections.len(), started.elapsed());
                work.last_detected = Some(frame.number);
                events.extend(
                    live.stages
                        .time(Stage::Track, || work.tracker.update(frame.number, frame.captured_at, &detections)),
                );
            } else {
                live.stages.time(Stage::Track, || work.tracker.coast(frame.number, frame.captured_at));
            }
            for event in &events {
                if let TrackEvent::Confirmed { track, detection } = event {
                    bump(&live.vehicles);
                    let records_passes = work.judge.as_ref().is_none_or(|j| j.scene().record_passes);
                    match self.draft(&frame, *track, detection, records_passes) {
                        Ok(vehicle) => {
                            open.insert((frame.camera.clone(), *track), vehicle);
                        }
                        Err(e) => {
                            bump(&live.store_errors);
                            tracing::error!(camera = %frame.camera, frame = frame.number, error = %e,
                                "ALARM: overview image could not be made; vehicle not recorded");
                        }
                    }
                }
            }
            let seen: Vec<(TrackId, BBox)> = work
                .tracker
                .tracks()
                .iter()
                .filter(|t| t.is_confirmed() && t.last_frame == frame.number)
                .map(|t| (t.id, t.bbox))
                .collect();
            // `live` is a clone of the Arc: read_plates borrows the stage mutably.
            // Helmets and plates are looked at where the detector placed the vehicle, not where it coasted.
            live.stages.time(Stage::Rules, || {
                let checks = if detect_now { self.check_helmets(&frame, &seen, work, &open) } else { HashMap::new() };
                for (track, check) in &checks {
                    if let Some(vehicle) = open.get_mut(&(frame.camera.clone(), *track)) {
                        if vehicle.most_bare.is_none_or(|(_, best)| check.p_bare > best.p_bare) {
                            vehicle.most_bare = Some((frame.number, *check));
                        }
                    }
                }
                let p_bare = checks.iter().map(|(track, check)| (*track, check.p_bare)).collect();
                self.judge(&frame, &seen, &p_bare, work, &mut open)
            });
            if detect_now {
                live.stages.time(Stage::Plates, || self.read_plates(&frame, &seen, &mut open));
            }
            live.stages.time(Stage::Evidence, || {
                self.write_held(&frame, &mut open);
                self.close_ended(&frame.camera, events, work, &mut open);
            });
            live.stages.get(Stage::Frame).observe(frame_started.elapsed());
            live.decided(frame.captured_at);
        }
        // The streams ended: every vehicle still tracked has passed as far as we will see it.
        for (camera, mut work) in cameras {
            let events = work.tracker.scene_cut();
            self.close_ended(&camera, events, &mut work, &mut open);
        }
        self.counters.snapshot()
    }

    /// The helmet checks of the motorcyclists due one, on cameras whose scene judges helmets.
    fn check_helmets(
        &mut self,
        frame: &Frame,
        seen: &[(TrackId, BBox)],
        work: &CameraWork,
        open: &HashMap<(CameraId, TrackId), OpenVehicle>,
    ) -> HashMap<TrackId, crate::pipeline::helmets::HeadCheck> {
        let judged = work.judge.as_ref().is_some_and(|j| j.scene().enable.allows(te_types::ViolationKind::NoHelmet));
        let Some(classifier) = self.helmets.as_mut().filter(|_| judged) else { return HashMap::new() };
        let vehicles: Vec<(TrackId, BBox, VehicleClass)> = seen
            .iter()
            .filter_map(|&(track, bbox)| Some((track, bbox, open.get(&(frame.camera.clone(), track))?.class)))
            .collect();
        crate::pipeline::helmets::check(classifier, &self.helmet_checking, frame, &vehicles, self.detector.people())
    }

    /// Runs the camera's rules on the vehicles seen in this frame; opens a record for each new violation and
    /// collects the later moments of the open ones.
    fn judge(
        &self,
        frame: &Frame,
        seen: &[(TrackId, BBox)],
        p_bare: &HashMap<TrackId, f32>,
        work: &mut CameraWork,
        open: &mut HashMap<(CameraId, TrackId), OpenVehicle>,
    ) {
        let Some(judge) = work.judge.as_mut() else { return };
        if let Some((at, phase)) = self.controller_phases.latest(&frame.camera) {
            judge.controller_phase(at, phase);
        }
        judge.read_signal(frame.captured_at, frame.width, frame.height, |x1, y1, x2, y2| {
            frame.rgb_region(x1, y1, x2, y2)
        });
        let observations: Vec<Observation> = seen
            .iter()
            .filter_map(|&(track, bbox)| {
                let class = open.get(&(frame.camera.clone(), track))?.class;
                Some(Observation { track, class, bbox, p_bare: p_bare.get(&track).copied() })
            })
            .collect();
        let found = judge.judge(frame.number, frame.captured_at, (frame.width, frame.height), &observations);
        let disagreements = judge.take_disagreements();
        if disagreements > 0 {
            self.counters.signal_disagreements.fetch_add(disagreements, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(camera = %frame.camera,
                "the controller's signal phase and the signal head in the picture disagree; no signal rule is judged while they do");
        }
        let phase_now = judge.signal_phase(frame.captured_at);
        for &(track, bbox) in seen {
            let Some(vehicle) = open.get_mut(&(frame.camera.clone(), track)) else { continue };
            for v in &mut vehicle.violations {
                let phase = v.violation.signal.map(|_| phase_now);
                let shot = |role| Shot { role, frame: frame.clone(), bbox, phase };
                v.last_seen = Some(shot(MomentRole::After));
                let due = v.violation.at + self.moments.after();
                if v.after.is_none() && frame.captured_at >= due {
                    v.after = Some(shot(MomentRole::After));
                }
            }
        }
        for violation in found {
            let key = (frame.camera.clone(), violation.track);
            let Some(vehicle) = open.get_mut(&key) else { continue };
            let Some(track) = work.tracker.track(violation.track) else { continue };
            self.counters.violation(violation.kind.as_str());
            tracing::info!(camera = %frame.camera, track = %violation.track, kind = %violation.kind, rule = %violation.rule,
                summary = %violation.summary, "violation");
            let signal = violation.signal.is_some();
            let shots = violation
                .moments
                .iter()
                .filter_map(|m| {
                    let picture = work.recent.for_moment(m.role, m.frame_number)?;
                    let bbox = track.position_at(picture.number).map_or(track.bbox, |p| p.bbox);
                    let phase = signal.then(|| judge.signal_phase(picture.captured_at));
                    Some(Shot { role: m.role, frame: picture, bbox, phase })
                })
                .collect();
            let phase = signal.then_some(phase_now);
            let last_seen = Shot { role: MomentRole::After, frame: frame.clone(), bbox: track.bbox, phase };
            vehicle.violations.push(OpenViolation { violation, shots, after: None, last_seen: Some(last_seen) });
        }
        // The frames of crossings still undecided stay exactly as they were, for their pictures.
        work.recent.keep_pinned(&judge.pending_moments());
    }

    /// Reads the plates of the vehicles seen in this frame that are due for a read.
    fn read_plates(
        &mut self,
        frame: &Frame,
        seen: &[(TrackId, BBox)],
        open: &mut HashMap<(CameraId, TrackId), OpenVehicle>,
    ) {
        let Some(recognizer) = self.plates.as_mut() else { return };
        let settings = &self.plate_reading;
        for &(track, bbox) in seen {
            let Some(vehicle) = open.get_mut(&(frame.camera.clone(), track)) else { continue };
            let due = vehicle.ballot.len() < settings.max_reads_per_vehicle
                && vehicle.last_read_frame.is_none_or(|f| frame.number >= f + settings.frames_between_reads);
            if !due || bbox.width() < settings.min_vehicle_width {
                continue;
            }
            vehicle.last_read_frame = Some(frame.number);
            let Some((crop, origin)) = te_infer::vehicle_crop(frame, &bbox) else { continue };
            let started = std::time::Instant::now();
            let reads = recognizer.read_plates(RgbView::of_image(&crop));
            self.counters.plate_time(started.elapsed());
            match reads {
                Ok(reads) => {
                    if let Some(mut read) = reads.into_iter().next() {
                        for corner in &mut read.corners {
                            corner[0] += origin.0;
                            corner[1] += origin.1;
                        }
                        bump(&self.counters.plate_reads);
                        let plate_jpeg = plate_picture_jpeg(frame, &read.bbox());
                        vehicle.ballot.add(frame.number, &read, plate_jpeg);
                    }
                }
                Err(e) => {
                    bump(&self.counters.inference_errors);
                    tracing::warn!(camera = %frame.camera, frame = frame.number, error = %e, "plate reading failed");
                }
            }
        }
    }

    /// Writes the violations of vehicles still in view whose after moment is `HOLD_S` old.
    fn write_held(&self, frame: &Frame, open: &mut HashMap<(CameraId, TrackId), OpenVehicle>) {
        for ((camera, _), vehicle) in open.iter_mut().filter(|((c, _), _)| *c == frame.camera) {
            let (held, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut vehicle.violations).into_iter().partition(|v| {
                v.after
                    .as_ref()
                    .is_some_and(|s| frame.captured_at - s.frame.captured_at >= chrono::Duration::seconds(HOLD_S))
            });
            vehicle.violations = kept;
            if held.is_empty() {
                continue;
            }
            let clip = self.cut_clip(camera, vehicle.confirmed_at);
            let media = VehicleMedia {
                plate: (!vehicle.ballot.is_empty()).then(|| vehicle.ballot.consensus()),
                plate_crops: vehicle.ballot.crops(),
                clip: clip.as_deref(),
            };
            for v in held {
                self.write_violation(camera, vehicle, v, &media);
            }
        }
    }

    /// Writes the records of the vehicles whose tracks ended.
    fn close_ended(
        &self,
        camera: &CameraId,
        events: Vec<TrackEvent>,
        work: &mut CameraWork,
        open: &mut HashMap<(CameraId, TrackId), OpenVehicle>,
    ) {
        for event in events {
            let TrackEvent::Ended { track, .. } = event else { continue };
            if let Some(judge) = work.judge.as_mut() {
                judge.vehicle_gone(track);
            }
            let Some(mut vehicle) = open.remove(&(camera.clone(), track)) else { continue };
            let plate = (!vehicle.ballot.is_empty()).then(|| vehicle.ballot.consensus());
            if plate.as_ref().is_some_and(|p| p.text.is_some()) {
                bump(&self.counters.plates_read);
            }
            if vehicle.violations.is_empty() && vehicle.pass.is_none() {
                continue;
            }
            // One clip per vehicle pass: its violation records and its pass record carry the same video.
            let clip = self.cut_clip(camera, vehicle.confirmed_at);
            let violations = std::mem::take(&mut vehicle.violations);
            let pass = vehicle.pass.take();
            let media = VehicleMedia { plate, plate_crops: vehicle.ballot.crops(), clip: clip.as_deref() };
            for v in violations {
                self.write_violation(camera, &vehicle, v, &media);
            }
            if let Some((record, jpeg)) = pass {
                self.store(camera, record, &jpeg, &media);
            }
        }
    }

    /// Composes the violation's moments into its overview and stores its record.
    fn write_violation(&self, camera: &CameraId, vehicle: &OpenVehicle, open: OpenViolation, media: &VehicleMedia<'_>) {
        let OpenViolation { mut violation, mut shots, after, last_seen } = open;
        shots.extend(after.or(last_seen));
        // The record states the moments of the pictures it shows.
        violation.moments = shots
            .iter()
            .map(|s| te_types::Moment { role: s.role, frame_number: s.frame.number, captured_at: s.frame.captured_at })
            .collect();
        let at_index = shots.iter().position(|s| s.role == MomentRole::At).unwrap_or(0);
        let Some(Shot { frame: at_frame, bbox: at_box, .. }) = shots.get(at_index) else { return };
        let x_offset: u32 = shots[..at_index].iter().map(|s| s.frame.width).sum();
        // The picture names its record, so a printed picture leads back to the sealed record.
        let record_id = EvidenceId::new();
        let bar = self.bar_text(
            at_frame,
            &format!(
                "Lỗi vi phạm: {} · {} · {} · Mã hồ sơ {}",
                violation.kind.vietnamese(),
                violation.rule,
                violation.summary,
                record_id
            ),
            vehicle.class,
        );
        let scene = self.scenes.get(camera);
        let inset_height = (at_frame.height / 4).max(48);
        let mut shown: Vec<crate::pipeline::overview::Panel<'_>> = shots
            .iter()
            .map(|s| {
                let caption = format!(
                    "{} · {} · khung hình {}",
                    moment_label(s.role),
                    self.local_time(camera, s.frame.captured_at, "%H:%M:%S%.3f"),
                    s.frame.number
                );
                let mut panel = crate::pipeline::overview::Panel::new(&s.frame, Some(s.bbox), caption);
                if let Some(scene) = scene {
                    let size = (s.frame.width, s.frame.height);
                    panel.lines = pictures::rule_lines(scene, violation.kind, &violation.rule, size);
                    panel.inset = s.phase.and_then(|p| pictures::signal_inset(scene, &s.frame, p, inset_height));
                }
                panel
            })
            .collect();
        // A no-helmet picture must show the head: the region the classifier judged, enlarged to half the frame.
        let judged =
            vehicle.most_bare.filter(|(number, _)| *number == at_frame.number).map_or(*at_box, |(_, c)| c.judged);
        let head = (violation.kind == te_types::ViolationKind::NoHelmet)
            .then(|| te_infer::head_region(&judged, at_frame.width, at_frame.height))
            .flatten()
            .and_then(|region| crate::pipeline::overview::close_up(at_frame, region, at_frame.height / 2));
        if let Some(head) = &head {
            shown.push(crate::pipeline::overview::Panel::new(head, None, "Đầu người lái (phóng to)".into()));
        }
        // The plate as its best read saw it, so the officer compares the plate with the text without the clip.
        let plate = pictures::plate_close_up(media.plate.as_ref(), media.plate_crops, at_frame.height / 3);
        if let Some((plate_picture, caption)) = &plate {
            shown.push(crate::pipeline::overview::Panel::new(plate_picture, None, caption.clone()));
        }
        let composed = crate::pipeline::overview::compose_jpeg(&shown, &bar, &self.data_bar_font);
        let jpeg = match composed {
            Ok(j) => j,
            Err(e) => {
                bump(&self.counters.store_errors);
                tracing::error!(camera = %camera, error = %e, "ALARM: violation overview could not be made; not recorded");
                return;
            }
        };
        let mut record =
            self.record(at_frame, violation.track, violation.kind.into(), vehicle.class, vehicle.score, &jpeg);
        record.evidence_id = record_id;
        record.bbox = at_box.shifted(x_offset as f32, 0.0);
        record.captured_at = violation.at;
        record.violation = Some(violation);
        self.store(camera, record, &jpeg, media);
    }

    /// Stores `record` with its overview `jpeg` and the vehicle's plate, plate pictures and clip.
    fn store(&self, camera: &CameraId, mut record: EvidenceRecord, jpeg: &[u8], media: &VehicleMedia<'_>) {
        record.plate.clone_from(&media.plate);
        record.clip_sha256 = media.clip.map(central_protocol::sha256_hex);
        let media = te_evidence::Media { overview_jpeg: jpeg, clip_mp4: media.clip, plate_crops: media.plate_crops };
        match self.store.put_with_media(&record, &media) {
            Ok(sealed) => {
                let record = &sealed.record;
                bump(&self.counters.evidence_written);
                self.new_evidence.notify_one();
                // A plate number is personal data: INFO logs (shipped off the box) say only whether one was
                // read; DEBUG names it, for a technician at the box.
                let plate = record.plate.as_ref().and_then(|p| p.text.as_deref());
                tracing::info!(camera = %camera, frame = record.frame_number, track = %record.track_id,
                    evidence = %record.evidence_id, kind = record.kind.as_str(), class = %record.vehicle_class,
                    plate_read = plate.is_some(), "evidence recorded");
                tracing::debug!(evidence = %record.evidence_id, plate = plate.unwrap_or("-"), "plate");
            }
            Err(e) => {
                bump(&self.counters.store_errors);
                tracing::error!(camera = %camera, frame = record.frame_number, error = %e,
                    "ALARM: evidence could not be stored");
            }
        }
    }

    /// The camera's encoded video from `clip_before` ahead of `from` until now, as MP4; `None` for cameras
    /// without video (stills) or when the clip cannot be made (logged: the record is kept without it).
    fn cut_clip(&self, camera: &CameraId, from: chrono::DateTime<chrono::Utc>) -> Option<Vec<u8>> {
        let clip = self.rings.get(camera)?.lock().ok()?.clip_since(from - self.clip_before)?;
        let made = (|| -> anyhow::Result<Vec<u8>> {
            let file = tempfile::NamedTempFile::new()?;
            te_camera::ring::write_mp4(&clip, file.path())?;
            Ok(std::fs::read(file.path())?)
        })();
        match made {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                tracing::warn!(camera = %camera, error = format!("{e:#}"), "video clip could not be made; record kept without it");
                None
            }
        }
    }

    /// The data bar: in Vietnamese, local time with its offset and milliseconds (Decree 135/2021 asks that the
    /// picture state the time and place of the offence itself).
    fn bar_text(&self, frame: &Frame, event: &str, class: VehicleClass) -> String {
        format!(
            "{} · {} · Camera {} · Thiết bị {} · {} · {}",
            self.local_time(&frame.camera, frame.captured_at, "%Y-%m-%d %H:%M:%S%.3f"),
            self.locations.get(&frame.camera).map(String::as_str).unwrap_or_default(),
            frame.camera,
            self.device_id,
            event,
            class.vietnamese()
        )
    }

    /// `at` in the camera's local time (its scene's `utc_offset_hours`; Vietnam's +7 without a scene), in
    /// `format`, followed by the offset.
    fn local_time(&self, camera: &CameraId, at: chrono::DateTime<chrono::Utc>, format: &str) -> String {
        let hours = self.scenes.get(camera).map_or(VIETNAM_UTC_OFFSET_HOURS, |s| s.utc_offset_hours);
        match chrono::FixedOffset::east_opt(hours * 3600) {
            Some(offset) => at.with_timezone(&offset).format(&format!("{format} (UTC%:z)")).to_string(),
            None => at.format(&format!("{format} (UTC)")).to_string(),
        }
    }

    /// A record of `kind` at `frame`, complete but for its plate (and violation).
    fn record(
        &self,
        frame: &Frame,
        track: TrackId,
        kind: EventKind,
        class: VehicleClass,
        score: f32,
        jpeg: &[u8],
    ) -> EvidenceRecord {
        EvidenceRecord {
            protocol_version: PROTOCOL_VERSION,
            evidence_id: EvidenceId::new(),
            device_id: self.device_id.clone(),
            camera_id: frame.camera.clone(),
            location: self.locations.get(&frame.camera).cloned().unwrap_or_default(),
            kind,
            captured_at: frame.captured_at,
            recorded_at: chrono::Utc::now(),
            frame_number: frame.number,
            track_id: track,
            vehicle_class: class,
            detection_score: score,
            bbox: BBox { x1: 0.0, y1: 0.0, x2: 0.0, y2: 0.0 },
            overview_sha256: central_protocol::sha256_hex(jpeg),
            clip_sha256: None,
            violation: None,
            clock: self.clock.check(chrono::Utc::now()),
            plate: None,
            config_version: self.config_version.clone(),
            // The store seals the record: sequence and previous hash are set there.
            sequence: 0,
            previous_record_sha256: String::new(),
        }
    }

    /// A newly confirmed vehicle, with its pass record drafted when the camera records passes.
    fn draft(
        &self,
        frame: &Frame,
        track: TrackId,
        detection: &te_types::Detection,
        record_pass: bool,
    ) -> anyhow::Result<OpenVehicle> {
        let pass = if record_pass {
            let bar = self.bar_text(frame, "Phương tiện đi qua", detection.class);
            let jpeg = crate::pipeline::overview::overview_jpeg(frame, &detection.bbox, &bar, &self.data_bar_font)?;
            let mut record =
                self.record(frame, track, EventKind::VehicleDetected, detection.class, detection.score, &jpeg);
            record.bbox = detection.bbox;
            Some((record, jpeg))
        } else {
            None
        };
        Ok(OpenVehicle {
            pass,
            class: detection.class,
            score: detection.score,
            confirmed_at: frame.captured_at,
            ballot: PlateBallot::default(),
            last_read_frame: None,
            violations: Vec::new(),
            most_bare: None,
        })
    }
}

/// Caption of a moment's picture, Vietnamese first.
fn moment_label(role: MomentRole) -> &'static str {
    match role {
        MomentRole::Before => "Trước vi phạm",
        MomentRole::At => "Thời điểm vi phạm",
        MomentRole::After => "Sau vi phạm",
    }
}

/// The local time of a camera without a scene: Vietnam (UTC+7, no daylight saving).
const VIETNAM_UTC_OFFSET_HOURS: i32 = 7;

/// JPEG quality of plate pictures: high, as they are small and their characters are what a reviewer checks.
const PLATE_PICTURE_QUALITY: u8 = 92;

/// The plate as the frame shows it, with a margin (a quarter of its width each side, half its height above and
/// below) so the reviewer sees it sits on this vehicle; at the camera's own resolution, as JPEG. `None` (the
/// read still counts) for a box outside the frame or a picture that cannot be encoded.
pub(crate) fn plate_picture_jpeg(picture: impl te_infer::RgbSource, plate: &BBox) -> Option<Vec<u8>> {
    let (crop, _) = te_infer::cut(picture, plate, (0.25, 0.5))?;
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, PLATE_PICTURE_QUALITY)
        .encode_image(&crop)
        .map_err(|e| tracing::warn!(error = %e, "plate picture could not be encoded; the read counts without it"))
        .ok()?;
    // A plate cut from a very large frame could exceed what the central service takes: keep the read, not it.
    (jpeg.len() <= central_protocol::MAX_PLATE_CROP_BYTES).then_some(jpeg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plate_picture_keeps_a_margin_around_the_plate_and_stops_at_the_frame_edge() {
        let data = vec![128u8; 400 * 300 * 3];
        let picture = RgbView::new(&data, 400, 300).expect("view");
        let size = |jpeg: Vec<u8>| {
            let img = image::load_from_memory(&jpeg).expect("a JPEG");
            (img.width(), img.height())
        };
        // A 80 x 20 plate: 20 px more each side, 10 px above and below.
        let plate = BBox { x1: 100.0, y1: 100.0, x2: 180.0, y2: 120.0 };
        assert_eq!(plate_picture_jpeg(picture, &plate).map(size), Some((120, 40)));
        // At the frame's corner the margin is cut where the frame ends.
        let corner = BBox { x1: 0.0, y1: 0.0, x2: 40.0, y2: 10.0 };
        assert_eq!(plate_picture_jpeg(picture, &corner).map(size), Some((50, 15)));
        // Outside the frame: no picture (the read still counts).
        let outside = BBox { x1: 500.0, y1: 400.0, x2: 540.0, y2: 410.0 };
        assert_eq!(plate_picture_jpeg(picture, &outside), None);
    }
}
