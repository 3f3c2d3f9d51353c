//! A token bucket for the upload budget: a request of n bytes waits until n bytes of budget have accrued.
//! Bursts up to one second's budget; a request bigger than that waits for its whole size and goes alone.

use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Debug)]
pub struct RateLimiter {
    bytes_per_s: u64,
    /// Budget available (may go negative: a big request borrows and later ones wait it off) and when it was
    /// last topped up.
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    /// `bytes_per_s` 0: no limit.
    pub fn new(bytes_per_s: u64) -> Self {
        Self { bytes_per_s, state: Mutex::new((bytes_per_s as f64, Instant::now())) }
    }

    /// Waits until `bytes` may be sent.
    pub async fn acquire(&self, bytes: u64) {
        if self.bytes_per_s == 0 {
            return;
        }
        // Held while waiting: requests queue up in order instead of all waking at once.
        let mut state = self.state.lock().await;
        let rate = self.bytes_per_s as f64;
        let now = Instant::now();
        let (budget, last) = *state;
        let budget = (budget + now.duration_since(last).as_secs_f64() * rate).min(rate) - bytes as f64;
        if budget < 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(-budget / rate)).await;
        }
        *state = (budget, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_budget_of_100_kb_per_s_takes_about_three_seconds_for_400_kb() {
        let limiter = RateLimiter::new(100_000);
        let start = Instant::now();
        for _ in 0..8 {
            limiter.acquire(50_000).await;
        }
        // The first second's budget is free (burst), the other 300 KB take 3 s.
        let took = start.elapsed().as_secs_f64();
        assert!((2.9..=3.1).contains(&took), "{took}");
    }

    #[tokio::test(start_paused = true)]
    async fn no_limit_never_waits() {
        let limiter = RateLimiter::new(0);
        let start = Instant::now();
        limiter.acquire(u64::MAX).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
