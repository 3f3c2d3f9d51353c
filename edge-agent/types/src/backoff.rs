//! Capped exponential backoff, the one schedule every retry loop uses: the box's uplink, its camera reconnects
//! and the central service's webhook to the fines system. Pure: the caller brings the randomness (jitter spreads
//! 300 boxes that lost the centre together, so they do not all come back in the same second).

use std::time::Duration;

/// `initial * 2^failures`, at most `max` (and at least `initial`).
pub fn capped(initial: Duration, max: Duration, failures: u32) -> Duration {
    initial.saturating_mul(1u32 << failures.min(20)).min(max.max(initial))
}

/// Retry delays that double from `initial` to `max`, with equal jitter: each delay lies in [d/2, d], so it is
/// never zero and the mean is 3/4 of the schedule.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        Self { initial, max: max.max(initial), failures: 0 }
    }

    /// The wait before the next attempt; `unit` is a random number in [0, 1] (anything else is clamped).
    pub fn next(&mut self, unit: f64) -> Duration {
        let d = capped(self.initial, self.max, self.failures);
        self.failures = self.failures.saturating_add(1);
        let unit = if unit.is_finite() { unit.clamp(0.0, 1.0) } else { 0.5 };
        d / 2 + (d / 2).mul_f64(unit)
    }

    /// After a success: the next failure starts from `initial` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The longest wait.
    pub fn max(&self) -> Duration {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_to_the_cap_within_their_jitter_and_start_over_after_a_reset() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(800));
        for (i, base) in [100u64, 200, 400, 800, 800, 800].into_iter().enumerate() {
            let unit = [0.0, 1.0, 0.5][i % 3];
            let d = b.next(unit);
            assert!(d >= ms(base / 2) && d <= ms(base), "attempt {i}: {d:?} for {base} ms");
        }
        b.reset();
        assert!(b.next(1.0) <= ms(100));
        assert!(b.next(f64::NAN) > Duration::ZERO, "a bad random number still waits");
    }

    #[test]
    fn the_schedule_never_overflows_and_never_passes_its_cap() {
        let cap = Duration::from_secs(3600);
        assert_eq!(capped(Duration::from_secs(1), cap, 0), Duration::from_secs(1));
        assert_eq!(capped(Duration::from_secs(1), cap, 5), Duration::from_secs(32));
        assert_eq!(capped(Duration::from_secs(1), cap, u32::MAX), cap);
    }
}
