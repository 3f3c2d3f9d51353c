//! The analysis stage's counters: one set, bumped by the stage as it works, read live by `/metrics` and the
//! heartbeat, and read once more at the end of a run as the summary's [`AnalysisReport`]. One set, so the
//! endpoint and the summary cannot disagree.

use crate::telemetry::latency::{Stage, StageLatencies};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;
use te_types::CameraId;

#[derive(Debug, Default)]
pub struct AnalysisCounters {
    /// Frames handed to the stage (a frame whose inference fails counts here and in `inference_errors`).
    pub frames: AtomicU64,
    pub detections: AtomicU64,
    /// Confirmed tracks: vehicles, each counted once per pass.
    pub vehicles: AtomicU64,
    /// Individual plate reads (each vehicle may be read in several frames).
    pub plate_reads: AtomicU64,
    /// Vehicles whose plate votes gave a valid plate.
    pub plates_read: AtomicU64,
    pub evidence_written: AtomicU64,
    /// Violations found by the rules (each is written as a record when its vehicle leaves).
    pub violations: AtomicU64,
    /// Records the store could not take, and vehicles whose record could not be made: alarms.
    pub store_errors: AtomicU64,
    /// Frames or plates whose model run failed.
    pub inference_errors: AtomicU64,
    /// Times a controller's phase and the picture's signal head disagreed for longer than a phase change takes.
    pub signal_disagreements: AtomicU64,
    detect_micros: AtomicU64,
    plate_micros: AtomicU64,
    frames_per_camera: Mutex<BTreeMap<CameraId, u64>>,
    violations_by_kind: Mutex<BTreeMap<&'static str, u64>>,
    /// Time per frame in each step of the analysis stage.
    pub stages: StageLatencies,
    /// Frame-to-decision times, milliseconds, when a benchmark asked for them (`None`: not kept).
    decisions: Mutex<Option<Vec<f32>>>,
}

/// Frame-to-decision times kept at most (a benchmark window at 10 cameras x 8 fps x 60 s is 4,800).
const DECISIONS_KEPT: usize = 200_000;

/// The counters at one moment, for the run's summary.
#[derive(Debug, Default, Clone)]
pub struct AnalysisReport {
    pub frames_per_camera: BTreeMap<CameraId, u64>,
    pub frames: u64,
    pub detections: u64,
    pub vehicles: u64,
    pub evidence_written: u64,
    pub plates_read: u64,
    pub plate_reads: u64,
    /// Time spent reading plates (plate detector + reader), seconds.
    pub plate_seconds: f64,
    /// Violations found, by kind.
    pub violations: BTreeMap<&'static str, u64>,
    pub inference_errors: u64,
    pub store_errors: u64,
    /// Time spent inside the detector, seconds.
    pub inference_seconds: f64,
}

/// Adds one.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

impl AnalysisCounters {
    /// A frame arrived from `camera`.
    pub fn frame(&self, camera: &CameraId) {
        bump(&self.frames);
        if let Ok(mut map) = self.frames_per_camera.lock() {
            *map.entry(camera.clone()).or_default() += 1;
        }
    }

    /// The detector found `count` vehicles in `took`.
    pub fn detected(&self, count: usize, took: Duration) {
        self.detections.fetch_add(count as u64, Relaxed);
        self.detect_micros.fetch_add(took.as_micros() as u64, Relaxed);
        self.stages.get(Stage::Detect).observe(took);
    }

    /// Time spent reading one vehicle's plate.
    pub fn plate_time(&self, took: Duration) {
        self.plate_micros.fetch_add(took.as_micros() as u64, Relaxed);
    }

    /// Start keeping each live frame's frame-to-decision time (for `edge-agent bench`).
    pub fn keep_decision_times(&self) {
        if let Ok(mut kept) = self.decisions.lock() {
            kept.get_or_insert_with(Vec::new);
        }
    }

    /// A frame captured at `captured_at` has been fully analysed now.
    pub fn decided(&self, captured_at: chrono::DateTime<chrono::Utc>) {
        if let Ok(mut kept) = self.decisions.lock() {
            if let Some(times) = kept.as_mut().filter(|t| t.len() < DECISIONS_KEPT) {
                let ms = (chrono::Utc::now() - captured_at).num_microseconds().unwrap_or(i64::MAX) as f32 / 1000.0;
                times.push(ms);
            }
        }
    }

    /// The frame-to-decision times kept so far, emptied.
    pub fn take_decision_times(&self) -> Vec<f32> {
        self.decisions.lock().ok().and_then(|mut kept| kept.as_mut().map(std::mem::take)).unwrap_or_default()
    }

    pub fn violation(&self, kind: &'static str) {
        bump(&self.violations);
        if let Ok(mut map) = self.violations_by_kind.lock() {
            *map.entry(kind).or_default() += 1;
        }
    }

    pub fn snapshot(&self) -> AnalysisReport {
        AnalysisReport {
            frames_per_camera: copy(&self.frames_per_camera),
            frames: self.frames.load(Relaxed),
            detections: self.detections.load(Relaxed),
            vehicles: self.vehicles.load(Relaxed),
            evidence_written: self.evidence_written.load(Relaxed),
            plates_read: self.plates_read.load(Relaxed),
            plate_reads: self.plate_reads.load(Relaxed),
            plate_seconds: self.plate_micros.load(Relaxed) as f64 / 1e6,
            violations: copy(&self.violations_by_kind),
            inference_errors: self.inference_errors.load(Relaxed),
            store_errors: self.store_errors.load(Relaxed),
            inference_seconds: self.detect_micros.load(Relaxed) as f64 / 1e6,
        }
    }
}

/// A copy of a per-key count (empty if a panic poisoned the lock).
fn copy<K: Clone + Ord>(counts: &Mutex<BTreeMap<K, u64>>) -> BTreeMap<K, u64> {
    counts.lock().map(|m| m.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_a_snapshot_of_the_counters_the_endpoint_reads() {
        let c = AnalysisCounters::default();
        let camera = CameraId::new("nga-tu-1");
        c.frame(&camera);
        c.frame(&camera);
        c.detected(3, Duration::from_millis(20));
        c.violation("red_light");
        bump(&c.store_errors);
        let report = c.snapshot();
        assert_eq!(report.frames, 2);
        assert_eq!(report.frames_per_camera.get(&camera), Some(&2));
        assert_eq!(report.detections, 3);
        assert_eq!(report.violations.get("red_light"), Some(&1));
        assert_eq!(c.violations.load(Relaxed), 1);
        assert_eq!(report.store_errors, 1);
        assert!((report.inference_seconds - 0.02).abs() < 1e-6);
    }
}
