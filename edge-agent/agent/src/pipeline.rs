//! The analysis stage: frames in, evidence out. Runs on its own thread (inference is blocking work).
//!
//! ```text
//!  cameras --bounded frames--> detect (ort) -> track (per camera) -> on new vehicle: overview JPEG
//!          -> evidence store (flushed) -> notify uplink
//! ```
//!
//! A frame whose inference fails is logged, counted and skipped; a record the store cannot take is an alarm
//! (logged at error level and counted), because a record is only "recorded" once the store has flushed it.

use central_protocol::{EvidenceRecord, PROTOCOL_VERSION};
use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use te_evidence::EvidenceStore;
use te_infer::VehicleDetector;
use te_track::{TrackEvent, Tracker, TrackerSettings};
use te_types::{CameraId, DeviceId, EventKind, EvidenceId, Frame};
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
    pub inference_errors: u64,
    pub store_errors: u64,
    /// Time spent inside the detector, seconds.
    pub inference_seconds: f64,
}

pub struct AnalysisStage {
    pub device_id: DeviceId,
    pub detector: VehicleDetector,
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
        for frame in frames {
            *report.frames_per_camera.entry(frame.camera.clone()).or_default() += 1;
            report.frames += 1;
            // Still images are single-frame scenes: every detection there is a vehicle in its own right.
            let tracker = trackers.entry(frame.camera.clone()).or_insert_with(|| {
                let min_hits = if frame.scene_cut { 1 } else { self.tracker_settings.min_hits };
                Tracker::new(TrackerSettings { min_hits, ..self.tracker_settings.clone() })
            });
            if frame.scene_cut {
                tracker.scene_cut();
            }
            let started = std::time::Instant::now();
            let detections = match self.detector.detect(&frame) {
                Ok(d) => d,
                Err(e) => {
                    report.inference_errors += 1;
                    tracing::warn!(camera = %frame.camera, frame = frame.number, error = %e, "inference failed; frame skipped");
                    continue;
                }
            };
            report.inference_seconds += started.elapsed().as_secs_f64();
            report.detections += detections.len() as u64;
            let events = tracker.update(frame.number, &detections);
            for event in events {
                if let TrackEvent::Confirmed { track, detection } = event {
                    report.vehicles += 1;
                    match self.record(&frame, track, &detection) {
                        Ok(id) => {
                            report.evidence_written += 1;
                            self.new_evidence.notify_one();
                            tracing::info!(camera = %frame.camera, frame = frame.number, %track, evidence = %id,
                                class = %detection.class, "vehicle recorded");
                        }
                        Err(e) => {
                            report.store_errors += 1;
                            tracing::error!(camera = %frame.camera, frame = frame.number, error = %e,
                                "ALARM: evidence could not be stored");
                        }
                    }
                }
            }
        }
        report
    }

    fn record(
        &self,
        frame: &Frame,
        track: te_types::TrackId,
        detection: &te_types::Detection,
    ) -> anyhow::Result<EvidenceId> {
        let jpeg = crate::overview::overview_jpeg(frame, &detection.bbox)?;
        let record = EvidenceRecord {
            protocol_version: PROTOCOL_VERSION,
            evidence_id: EvidenceId::new(),
            device_id: self.device_id.clone(),
            camera_id: frame.camera.clone(),
            location: self.locations.get(&frame.camera).cloned().unwrap_or_default(),
            kind: EventKind::VehicleDetected,
            captured_at: frame.captured_at,
            recorded_at: chrono::Utc::now(),
            frame_number: frame.number,
            track_id: track,
            vehicle_class: detection.class,
            detection_score: detection.score,
            bbox: detection.bbox,
            overview_sha256: central_protocol::sha256_hex(&jpeg),
        };
        self.store.put(&record, &jpeg)?;
        Ok(record.evidence_id)
    }
}
