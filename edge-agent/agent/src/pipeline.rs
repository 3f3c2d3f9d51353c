//! The analysis stage: frames in, evidence out. Runs on its own thread (inference is blocking work).
//!
//! ```text
//!  cameras --bounded frames--> detect (ort) -> track (per camera) -> on new vehicle: overview JPEG
//!          -> read plates on the vehicle while it is tracked (vote) -> on track end: evidence store (flushed)
//!          -> notify uplink
//! ```
//!
//! One vehicle pass gives one record, written when its track ends (or when the stream ends), so that every read
//! of its plate has voted. A frame whose inference fails is logged, counted and skipped; a record the store
//! cannot take is an alarm (logged at error level and counted), because a record is only "recorded" once the
//! store has flushed it.

use central_protocol::{EvidenceRecord, PROTOCOL_VERSION};
use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use te_evidence::EvidenceStore;
use te_infer::{PlateRecognizer, RgbView, VehicleDetector};
use te_track::{PlateBallot, TrackEvent, Tracker, TrackerSettings};
use te_types::{BBox, CameraId, DeviceId, EventKind, EvidenceId, Frame, TrackId};
use tokio::sync::Notify;

/// What the stage did, per camera and in total; returned when the frame channel closes.
#[derive(Debug, Default, Clone)]
pub struct AnalysisReport {
    pub frames_per_camera: BTreeMap<CameraId, u64>,
    pub frames: u64,
    pub detections: u64,
    /// Confirmed tracks: vehicles, each counted once per pass.
    pub vehicles: u64,
    pub evidence_written: u64,
    /// Vehicles whose plate votes gave a valid plate.
    pub plates_read: u64,
    /// Individual plate reads (each vehicle may be read in several frames).
    pub plate_reads: u64,
    /// Time spent reading plates (plate detector + reader), seconds.
    pub plate_seconds: f64,
    pub inference_errors: u64,
    pub store_errors: u64,
    /// Time spent inside the detector, seconds.
    pub inference_seconds: f64,
}

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
        Self { enabled: true, min_vehicle_width: 80.0, max_reads_per_vehicle: 4, frames_between_reads: 3, threads: 1 }
    }
}

/// A confirmed vehicle whose record waits for its track to end.
struct OpenVehicle {
    record: EvidenceRecord,
    /// When the vehicle was confirmed: the clip starts some seconds before it.
    confirmed_at: chrono::DateTime<chrono::Utc>,
    overview_jpeg: Vec<u8>,
    ballot: PlateBallot,
    last_read_frame: Option<u64>,
}

pub struct AnalysisStage {
    pub device_id: DeviceId,
    /// Counters the metrics endpoint reads while the stage runs.
    pub live: Arc<crate::health::LiveCounters>,
    /// Each video camera's pre-event ring buffer, for the clip in every record.
    pub rings: HashMap<CameraId, Arc<std::sync::Mutex<te_camera::ring::RingBuffer>>>,
    /// Seconds of video before the vehicle was confirmed that the clip includes.
    pub clip_before: chrono::Duration,
    /// Hash of the effective configuration, written into every record.
    pub config_version: String,
    /// Writes the data bar on overview images.
    pub data_bar_font: crate::overview::DataBarFont,
    pub detector: VehicleDetector,
    /// `None` when plate reading is off.
    pub plates: Option<PlateRecognizer>,
    pub plate_reading: PlateReading,
    pub tracker_settings: TrackerSettings,
    pub locations: HashMap<CameraId, String>,
    pub store: Arc<dyn EvidenceStore>,
    pub new_evidence: Arc<Notify>,
}

impl AnalysisStage {
    /// Runs until every camera has dropped its sender.
    pub fn run(mut self, frames: Receiver<Frame>) -> AnalysisReport {
        let mut report = AnalysisReport::default();
        let mut trackers: HashMap<CameraId, Tracker> = HashMap::new();
        let mut open: HashMap<(CameraId, TrackId), OpenVehicle> = HashMap::new();
        for frame in frames {
            *report.frames_per_camera.entry(frame.camera.clone()).or_default() += 1;
            report.frames += 1;
            // Still images are single-frame scenes: every detection there is a vehicle in its own right.
            let tracker = trackers.entry(frame.camera.clone()).or_insert_with(|| {
                let min_hits = if frame.scene_cut { 1 } else { self.tracker_settings.min_hits };
                Tracker::new(TrackerSettings { min_hits, ..self.tracker_settings.clone() })
            });
            let mut events = if frame.scene_cut { tracker.scene_cut() } else { Vec::new() };
            let started = std::time::Instant::now();
            let detections = match self.detector.detect(&frame) {
                Ok(d) => d,
                Err(e) => {
                    report.inference_errors += 1;
                    tracing::warn!(camera = %frame.camera, frame = frame.number, error = %e, "inference failed; frame skipped");
                    self.close_ended(&frame.camera, events, &mut open, &mut report);
                    continue;
                }
            };
            report.inference_seconds += started.elapsed().as_secs_f64();
            report.detections += detections.len() as u64;
            self.live.frames.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.live.detections.fetch_add(detections.len() as u64, std::sync::atomic::Ordering::Relaxed);
            self.live
                .detector_micros
                .fetch_add(started.elapsed().as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
            events.extend(tracker.update(frame.number, &detections));
            for event in &events {
                if let TrackEvent::Confirmed { track, detection } = event {
                    report.vehicles += 1;
                    self.live.vehicles.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    match self.draft(&frame, *track, detection) {
                        Ok(vehicle) => {
                            open.insert((frame.camera.clone(), *track), vehicle);
                        }
                        Err(e) => {
                            report.store_errors += 1;
                            tracing::error!(camera = %frame.camera, frame = frame.number, error = %e,
                                "ALARM: overview image could not be made; vehicle not recorded");
                        }
                    }
                }
            }
            let seen: Vec<(TrackId, BBox)> = tracker
                .tracks()
                .iter()
                .filter(|t| t.is_confirmed() && t.last_frame == frame.number)
                .map(|t| (t.id, t.bbox))
                .collect();
            self.read_plates(&frame, &seen, &mut open, &mut report);
            self.close_ended(&frame.camera, events, &mut open, &mut report);
        }
        // The streams ended: every vehicle still tracked has passed as far as we will see it.
        for (camera, mut tracker) in trackers {
            let events = tracker.scene_cut();
            self.close_ended(&camera, events, &mut open, &mut report);
        }
        report
    }

    /// Reads the plates of the vehicles seen in this frame that are due for a read.
    fn read_plates(
        &mut self,
        frame: &Frame,
        seen: &[(TrackId, BBox)],
        open: &mut HashMap<(CameraId, TrackId), OpenVehicle>,
        report: &mut AnalysisReport,
    ) {
        let Some(recognizer) = self.plates.as_mut() else { return };
        let Some(picture) = RgbView::new(&frame.data, frame.width, frame.height) else { return };
        let settings = &self.plate_reading;
        for &(track, bbox) in seen {
            let Some(vehicle) = open.get_mut(&(frame.camera.clone(), track)) else { continue };
            let due = vehicle.ballot.len() < settings.max_reads_per_vehicle
                && vehicle.last_read_frame.is_none_or(|f| frame.number >= f + settings.frames_between_reads);
            if !due || bbox.width() < settings.min_vehicle_width {
                continue;
            }
            vehicle.last_read_frame = Some(frame.number);
            let Some((crop, origin)) = crop_rgb(picture, &bbox) else { continue };
            let started = std::time::Instant::now();
            let reads = recognizer.read_plates(RgbView::of_image(&crop));
            report.plate_seconds += started.elapsed().as_secs_f64();
            match reads {
                Ok(reads) => {
                    if let Some(mut read) = reads.into_iter().next() {
                        for corner in &mut read.corners {
                            corner[0] += origin.0;
                            corner[1] += origin.1;
                        }
                        report.plate_reads += 1;
                        self.live.plate_reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        vehicle.ballot.add(frame.number, &read);
                    }
                }
                Err(e) => {
                    report.inference_errors += 1;
                    tracing::warn!(camera = %frame.camera, frame = frame.number, error = %e, "plate reading failed");
                }
            }
        }
    }

    /// Writes the records of the vehicles whose tracks ended.
    fn close_ended(
        &self,
        camera: &CameraId,
        events: Vec<TrackEvent>,
        open: &mut HashMap<(CameraId, TrackId), OpenVehicle>,
        report: &mut AnalysisReport,
    ) {
        for event in events {
            let TrackEvent::Ended { track, .. } = event else { continue };
            let Some(mut vehicle) = open.remove(&(camera.clone(), track)) else { continue };
            if !vehicle.ballot.is_empty() {
                let consensus = vehicle.ballot.consensus();
                report.plates_read += u64::from(consensus.text.is_some());
                vehicle.record.plate = Some(consensus);
            }
            let clip = self.cut_clip(camera, vehicle.confirmed_at);
            vehicle.record.clip_sha256 = clip.as_deref().map(central_protocol::sha256_hex);
            match self.store.put_with_clip(&vehicle.record, &vehicle.overview_jpeg, clip.as_deref()) {
                Ok(sealed) => {
                    let record = &sealed.record;
                    report.evidence_written += 1;
                    self.live.evidence_written.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.new_evidence.notify_one();
                    tracing::info!(camera = %camera, frame = record.frame_number, %track, evidence = %record.evidence_id,
                        class = %record.vehicle_class,
                        plate = record.plate.as_ref().and_then(|p| p.text.as_deref()).unwrap_or("-"),
                        "vehicle recorded");
                }
                Err(e) => {
                    report.store_errors += 1;
                    self.live.store_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::error!(camera = %camera, frame = vehicle.record.frame_number, error = %e,
                        "ALARM: evidence could not be stored");
                }
            }
        }
    }

    /// The camera's encoded video from `clip_before` ahead of `from` until now, as MP4; `None` for cameras
    /// without video (stills) or when the clip cannot be made (logged: the record is kept without it).
    fn cut_clip(&self, camera: &CameraId, from: chrono::DateTime<chrono::Utc>) -> Option<Vec<u8>> {
        let clip = self.rings.get(camera)?.lock().ok()?.clip_since(from - self.clip_before)?;
        let made = (|| -> Result<Vec<u8>, String> {
            let file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
            te_camera::ring::write_mp4(&clip, file.path())?;
            std::fs::read(file.path()).map_err(|e| e.to_string())
        })();
        match made {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                tracing::warn!(camera = %camera, error = %e, "video clip could not be made; record kept without it");
                None
            }
        }
    }

    /// The record of a newly confirmed vehicle, complete but for its plate.
    fn draft(&self, frame: &Frame, track: TrackId, detection: &te_types::Detection) -> anyhow::Result<OpenVehicle> {
        let location = self.locations.get(&frame.camera).cloned().unwrap_or_default();
        let bar = format!(
            "{} UTC · {} · camera {} · box {} · {} · {}",
            frame.captured_at.format("%Y-%m-%d %H:%M:%S%.3f"),
            location,
            frame.camera,
            self.device_id,
            EventKind::VehicleDetected.as_str(),
            detection.class
        );
        let jpeg = crate::overview::overview_jpeg(frame, &detection.bbox, &bar, &self.data_bar_font)?;
        let record = EvidenceRecord {
            protocol_version: PROTOCOL_VERSION,
            evidence_id: EvidenceId::new(),
            device_id: self.device_id.clone(),
            camera_id: frame.camera.clone(),
            location,
            kind: EventKind::VehicleDetected,
            captured_at: frame.captured_at,
            recorded_at: chrono::Utc::now(),
            frame_number: frame.number,
            track_id: track,
            vehicle_class: detection.class,
            detection_score: detection.score,
            bbox: detection.bbox,
            overview_sha256: central_protocol::sha256_hex(&jpeg),
            clip_sha256: None,
            plate: None,
            config_version: self.config_version.clone(),
            // The store seals the record: sequence and previous hash are set there.
            sequence: 0,
            previous_record_sha256: String::new(),
        };
        Ok(OpenVehicle {
            record,
            confirmed_at: frame.captured_at,
            overview_jpeg: jpeg,
            ballot: PlateBallot::default(),
            last_read_frame: None,
        })
    }
}

/// The vehicle's box grown by 10% on each side (plates sit at the edge of the box), cut out of the frame;
/// with the crop's top-left in frame pixels. `None` for a box outside the frame.
pub(crate) fn crop_rgb(picture: RgbView<'_>, bbox: &BBox) -> Option<(image::RgbImage, (f32, f32))> {
    let (mx, my) = (bbox.width() * 0.1, bbox.height() * 0.1);
    let x1 = (bbox.x1 - mx).max(0.0) as u32;
    let y1 = (bbox.y1 - my).max(0.0) as u32;
    let x2 = ((bbox.x2 + mx).min(picture.width as f32) as u32).min(picture.width);
    let y2 = ((bbox.y2 + my).min(picture.height as f32) as u32).min(picture.height);
    if x2 <= x1 + 1 || y2 <= y1 + 1 {
        return None;
    }
    let (w, h) = (x2 - x1, y2 - y1);
    let stride = picture.width as usize * 3;
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in y1..y2 {
        let row = y as usize * stride;
        data.extend_from_slice(&picture.data[row + x1 as usize * 3..row + x2 as usize * 3]);
    }
    image::RgbImage::from_raw(w, h, data).map(|img| (img, (x1 as f32, y1 as f32)))
}
