//! Uplink: moves evidence from the box's store to the central service.
//!
//! Invariants: only the central service's receipt (a 200/201 answer naming the same evidence id) takes a
//! record out of the send queue; a transport error or 5xx leaves it pending and backs off (capped exponential,
//! with jitter, so 300 boxes coming back after an outage do not hammer the centre in step); a 4xx other than
//! 408/429 means resending cannot help, so the record is marked rejected, kept, and logged as an alarm.
//! Store calls are blocking (sled flushes) and run on the blocking pool, never on the async executor.

use central_protocol::{ApiError, CentralStats, EvidenceUpload, IngestReceipt, EVIDENCE_PATH};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use te_evidence::{EvidenceError, EvidenceStore};
use te_types::EvidenceId;
use tokio::sync::{watch, Notify};

/// How the uplink reaches the central service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UplinkSettings {
    /// Base URL of the central service, e.g. `http://127.0.0.1:8787`.
    pub central_url: String,
    /// Time limit for one upload request.
    pub request_timeout_secs: u64,
    /// First wait after a failure; doubles per consecutive failure.
    pub backoff_initial_ms: u64,
    /// Longest wait between attempts.
    pub backoff_max_ms: u64,
    /// Records fetched from the store per round.
    pub batch: usize,
}

impl Default for UplinkSettings {
    fn default() -> Self {
        Self {
            central_url: "http://127.0.0.1:8787".into(),
            request_timeout_secs: 30,
            backoff_initial_ms: 500,
            backoff_max_ms: 60_000,
            batch: 16,
        }
    }
}

impl UplinkSettings {
    pub fn validate(&self) -> Result<(), String> {
        let url = reqwest::Url::parse(&self.central_url).map_err(|e| format!("central_url: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("central_url: scheme must be http or https, got {}", url.scheme()));
        }
        if self.batch == 0 {
            return Err("batch must be at least 1".into());
        }
        if self.backoff_initial_ms == 0 || self.backoff_max_ms < self.backoff_initial_ms {
            return Err("backoff_initial_ms must be > 0 and <= backoff_max_ms".into());
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("central service unreachable: {0}")]
    Transport(String),
    #[error("central service answered {status}: {message}")]
    Server { status: u16, message: String },
    #[error("central service refused evidence {id} ({status}): {message}")]
    Refused { id: EvidenceId, status: u16, message: String },
    #[error("central service acknowledged {got} when {sent} was sent")]
    WrongReceipt { sent: EvidenceId, got: EvidenceId },
    #[error(transparent)]
    Store(#[from] EvidenceError),
    #[error("store task failed: {0}")]
    Join(String),
}

/// Running totals.
#[derive(Debug, Default)]
pub struct UplinkStats {
    pub delivered: AtomicU64,
    pub already_stored: AtomicU64,
    pub rejected: AtomicU64,
    pub failures: AtomicU64,
}

/// Capped exponential backoff with full jitter.
#[derive(Debug)]
struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    fn next_delay(&mut self) -> Duration {
        let exp = self.initial.saturating_mul(1u32 << self.failures.min(16));
        self.failures = self.failures.saturating_add(1);
        let cap = exp.min(self.max);
        // Full jitter: anywhere in [cap/2, cap], never zero.
        let half = cap / 2;
        half + Duration::from_millis(fastrand::u64(0..=half.as_millis() as u64))
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

pub struct Uplink {
    settings: UplinkSettings,
    client: reqwest::Client,
    store: Arc<dyn EvidenceStore>,
    /// Woken by the pipeline when a record is stored, so delivery does not wait for a poll.
    pub new_evidence: Arc<Notify>,
    pub stats: Arc<UplinkStats>,
}

impl Uplink {
    pub fn new(settings: UplinkSettings, store: Arc<dyn EvidenceStore>) -> Result<Self, UplinkError> {
        let client = http_client(&settings)?;
        Ok(Self { settings, client, store, new_evidence: Arc::new(Notify::new()), stats: Arc::default() })
    }

    /// Sends until `shutdown` turns true. With `drain` also true, returns as soon as nothing is pending
    /// (used when a replay ends); otherwise waits for new evidence.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>, drain: watch::Receiver<bool>) {
        let mut backoff = Backoff {
            initial: Duration::from_millis(self.settings.backoff_initial_ms),
            max: Duration::from_millis(self.settings.backoff_max_ms),
            failures: 0,
        };
        loop {
            if *shutdown.borrow() {
                return;
            }
            let wait = match self.send_pending().await {
                Ok(0) if *drain.borrow() => return,
                Ok(0) => None,
                Ok(_) => {
                    backoff.reset();
                    continue;
                }
                Err(e) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "uplink failed; evidence stays pending");
                    Some(delay)
                }
            };
            let sleep = tokio::time::sleep(wait.unwrap_or(Duration::from_secs(5)));
            tokio::select! {
                _ = sleep => {}
                _ = self.new_evidence.notified(), if wait.is_none() => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One round: sends a batch of pending records oldest first. Returns how many left the queue.
    pub async fn send_pending(&self) -> Result<usize, UplinkError> {
        let store = self.store.clone();
        let batch = self.settings.batch;
        let ids = blocking(move || store.pending(batch)).await??;
        let mut done = 0;
        for id in ids {
            match self.send_one(id).await {
                Ok(()) => done += 1,
                Err(UplinkError::Refused { id, status, message }) => {
                    self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(evidence = %id, status, %message, "ALARM: central refused evidence; kept on the box, not resent");
                    let store = self.store.clone();
                    let reason = format!("{status}: {message}");
                    blocking(move || store.mark_rejected(id, &reason)).await??;
                    done += 1;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    async fn send_one(&self, id: EvidenceId) -> Result<(), UplinkError> {
        let store = self.store.clone();
        let upload = blocking(move || -> Result<EvidenceUpload, EvidenceError> {
            let stored = store.get(id)?;
            let jpeg = store.overview(id)?;
            let clip = store.clip(id)?;
            Ok(EvidenceUpload::new(stored.record, stored.seal, &jpeg).with_clip(clip.as_deref()))
        })
        .await??;
        let url = format!("{}{}", self.settings.central_url.trim_end_matches('/'), EVIDENCE_PATH);
        let response =
            self.client.post(&url).json(&upload).send().await.map_err(|e| UplinkError::Transport(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            let receipt: IngestReceipt = response.json().await.map_err(|e| UplinkError::Transport(e.to_string()))?;
            if receipt.evidence_id != id {
                return Err(UplinkError::WrongReceipt { sent: id, got: receipt.evidence_id });
            }
            if receipt.status == central_protocol::IngestStatus::AlreadyStored {
                self.stats.already_stored.fetch_add(1, Ordering::Relaxed);
            }
            let store = self.store.clone();
            blocking(move || store.mark_delivered(&receipt)).await??;
            self.stats.delivered.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(evidence = %id, "delivered");
            return Ok(());
        }
        let message = match response.json::<ApiError>().await {
            Ok(body) => body.error,
            Err(_) => status.canonical_reason().unwrap_or("").to_string(),
        };
        if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
            Err(UplinkError::Refused { id, status: status.as_u16(), message })
        } else {
            Err(UplinkError::Server { status: status.as_u16(), message })
        }
    }

    /// Asks the central service for its totals.
    pub async fn central_stats(&self) -> Result<CentralStats, UplinkError> {
        let url = format!("{}/api/v1/stats", self.settings.central_url.trim_end_matches('/'));
        let response = self.client.get(&url).send().await.map_err(|e| UplinkError::Transport(e.to_string()))?;
        if !response.status().is_success() {
            return Err(UplinkError::Server { status: response.status().as_u16(), message: "stats".into() });
        }
        response.json().await.map_err(|e| UplinkError::Transport(e.to_string()))
    }
}

fn http_client(settings: &UplinkSettings) -> Result<reqwest::Client, UplinkError> {
    // reqwest is built without a default TLS provider; ring is the one we ship. A second install is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(settings.request_timeout_secs))
        .user_agent(concat!("traffic-edge/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| UplinkError::Client(e.to_string()))
}

/// The central service's clock minus ours, from its `Date` header (1 s resolution, so ±0.5 s plus half the
/// round trip): the fallback clock check when no NTP server is configured.
pub async fn clock_offset(settings: &UplinkSettings) -> Result<chrono::Duration, UplinkError> {
    let client = http_client(settings)?;
    let url = format!("{}/healthz", settings.central_url.trim_end_matches('/'));
    let sent = chrono::Utc::now();
    let response = client.get(&url).send().await.map_err(|e| UplinkError::Transport(e.to_string()))?;
    let received = chrono::Utc::now();
    let date = response
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        .ok_or_else(|| UplinkError::Transport("the central service sent no Date header".into()))?;
    let midpoint = sent + (received - sent) / 2;
    Ok(date.with_timezone(&chrono::Utc) - midpoint)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, UplinkError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| UplinkError::Join(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter_and_resets() {
        let mut b = Backoff { initial: Duration::from_millis(100), max: Duration::from_millis(1000), failures: 0 };
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100), "{first:?}");
        for _ in 0..20 {
            let d = b.next_delay();
            assert!(d <= Duration::from_millis(1000) && d >= Duration::from_millis(50), "{d:?}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn settings_name_the_bad_field() {
        let bad = UplinkSettings { central_url: "ftp://x".into(), ..Default::default() };
        assert!(bad.validate().expect_err("invalid").starts_with("central_url"));
        assert!(UplinkSettings::default().validate().is_ok());
    }
}
