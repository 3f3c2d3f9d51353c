//! Per-stage latency histograms of the analysis stage, lock-free (the stage thread observes, `/metrics` reads).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the buckets, seconds: from a tracker update (µs) to a slow plate read on a busy box.
pub const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0];

/// One Prometheus histogram: counts per bucket (not cumulative; summed when rendered), total and sum.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&le| seconds <= le) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(elapsed.as_micros() as u64, Relaxed);
    }

    /// (upper bound, count in that bucket alone) per bucket, the last one `f64::INFINITY` (+Inf) for what is over
    /// every bound: the shape Prometheus' encoder takes.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        let mut within = 0;
        let mut out: Vec<(f64, u64)> = BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(&le, n)| {
                let n = n.load(Relaxed);
                within += n;
                (le, n)
            })
            .collect();
        out.push((f64::INFINITY, self.count.load(Relaxed).saturating_sub(within)));
        out
    }

    /// (upper bound, cumulative count) per bucket, then the count and the sum in seconds.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut running = 0;
        let cumulative = BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(&le, n)| {
                running += n.load(Relaxed);
                (le, running)
            })
            .collect();
        (cumulative, self.count.load(Relaxed), self.sum_micros.load(Relaxed) as f64 / 1e6)
    }
}

/// The analysis stage's steps, each timed per frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The vehicle detector (model `vehicle`).
    Detect,
    /// The tracker update.
    Track,
    /// The scene's rules.
    Rules,
    /// Plate detection and OCR on the vehicles due a read (models `plate_detector`, `plate_reader`).
    Plates,
    /// Overview images, clips, sealing and flushing the records due in this frame.
    Evidence,
    /// The whole frame, from leaving the queue to the last step.
    Frame,
}

impl Stage {
    pub const ALL: [Stage; 6] =
        [Stage::Detect, Stage::Track, Stage::Rules, Stage::Plates, Stage::Evidence, Stage::Frame];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Detect => "detect",
            Stage::Track => "track",
            Stage::Rules => "rules",
            Stage::Plates => "plates",
            Stage::Evidence => "evidence",
            Stage::Frame => "frame",
        }
    }
}

/// One histogram per [`Stage`].
#[derive(Debug, Default)]
pub struct StageLatencies([Histogram; 6]);

impl StageLatencies {
    pub fn get(&self, stage: Stage) -> &Histogram {
        &self.0[stage as usize]
    }

    /// Runs `step` and records its time under `stage`.
    pub fn time<T>(&self, stage: Stage, step: impl FnOnce() -> T) -> T {
        let started = std::time::Instant::now();
        let out = step();
        self.get(stage).observe(started.elapsed());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_the_sum_is_kept() {
        let h = Histogram::default();
        for ms in [0, 3, 3, 40, 7000] {
            h.observe(Duration::from_millis(ms));
        }
        let (buckets, count, sum) = h.snapshot();
        assert_eq!(count, 5);
        assert!((sum - 7.046).abs() < 1e-9, "{sum}");
        let at = |le: f64| buckets.iter().find(|(b, _)| *b == le).map(|(_, n)| *n);
        assert_eq!(at(0.0005), Some(1));
        assert_eq!(at(0.005), Some(3));
        assert_eq!(at(0.05), Some(4));
        // 7 s is above the last bucket: only +Inf (the count) holds it.
        assert_eq!(at(5.0), Some(4));
    }

    #[test]
    fn each_stage_has_its_own_histogram() {
        let l = StageLatencies::default();
        assert_eq!(l.time(Stage::Plates, || 7), 7);
        assert_eq!(l.get(Stage::Plates).snapshot().1, 1);
        assert_eq!(l.get(Stage::Detect).snapshot().1, 0);
    }
}
