//! Uplink: moves evidence from the box's store to the central service.
//!
//! Invariants: only the central service's receipt (a 200/201 answer naming the same evidence id) takes a
//! record out of the send queue; a transport error or 5xx leaves it pending and backs off (capped exponential,
//! with jitter, so 300 boxes coming back after an outage do not hammer the centre in step); a 4xx other than
//! 401/408/424/429 means resending cannot help, so the record is marked rejected, kept, and logged as an alarm.
//! 401 (no or unknown device token) is the box's configuration, not the record's fault: it is retried, so the
//! queue drains by itself once the device is registered and its token installed.
//! Records go oldest first, a few at a time (`concurrency`), within a bandwidth budget (`max_upload_kbps`).
//! A record's video clip goes ahead of it in chunks addressed by the clip's hash, so a clip cut off by a
//! dropped link resumes where the central service says it stopped, and a clip shared by several records of
//! one vehicle travels once. Store calls are blocking (sled flushes) and run on the blocking pool.

pub mod clock;
mod rate;

use central_protocol::{
    ApiError, CentralStats, ClipStatus, EvidenceUpload, Heartbeat, IngestReceipt, CLIPS_PATH, EVIDENCE_PATH,
    HEARTBEAT_PATH,
};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use te_evidence::{EvidenceError, EvidenceStore};
use te_types::backoff::Backoff;
use te_types::EvidenceId;
use te_types::SettingError;
use tokio::sync::{watch, Notify};

pub use rate::RateLimiter;

/// How the uplink reaches the central service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UplinkSettings {
    /// Base URL of the central service, e.g. `https://central.example:8787`.
    pub central_url: String,
    /// PEM file with the CA certificate(s) to trust for an `https` central service, and nothing else (pinned);
    /// empty: the operating system's trust store.
    pub ca_file: String,
    /// Time limit for one request.
    pub request_timeout_secs: u64,
    /// First wait after a failure; doubles per consecutive failure.
    pub backoff_initial_ms: u64,
    /// Longest wait between attempts.
    pub backoff_max_ms: u64,
    /// Records fetched from the store per round.
    pub batch: usize,
    /// Uploads in flight at once.
    pub concurrency: usize,
    /// Upload budget, kilobits per second, averaged over a second (the junction's link is shared with the
    /// cameras' operators); 0: no limit.
    pub max_upload_kbps: u64,
    /// Size of one clip chunk, KiB: what a dropped link costs at most to resend.
    pub clip_chunk_kb: usize,
    /// Seconds between heartbeats (queue depth, disk, clock, cameras) to the central service; 0: none.
    pub heartbeat_s: u64,
    /// File holding this box's device token (from `central-sync device register`), sent as
    /// `Authorization: Bearer` on every request; empty: none (only a centre with open enrolment accepts that).
    pub token_file: String,
}

impl Default for UplinkSettings {
    fn default() -> Self {
        Self {
            central_url: "http://127.0.0.1:8787".into(),
            ca_file: String::new(),
            request_timeout_secs: 30,
            backoff_initial_ms: 500,
            backoff_max_ms: 60_000,
            batch: 16,
            concurrency: 2,
            max_upload_kbps: 0,
            clip_chunk_kb: 256,
            heartbeat_s: 30,
            token_file: String::new(),
        }
    }
}

impl UplinkSettings {
    pub fn validate(&self) -> Result<(), SettingError> {
        let url = reqwest::Url::parse(&self.central_url)
            .map_err(|e| SettingError::new("central_url", format!("is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SettingError::new(
                "central_url",
                format!("scheme must be http or https, got {}", url.scheme()),
            ));
        }
        if !self.ca_file.is_empty() && url.scheme() != "https" {
            return Err(SettingError::new("ca_file", "a pinned CA needs an https central_url"));
        }
        if self.batch == 0 {
            return Err(SettingError::new("batch", "must be at least 1"));
        }
        if self.concurrency == 0 || self.concurrency > 64 {
            return Err(SettingError::new("concurrency", format!("must be 1..=64, got {}", self.concurrency)));
        }
        if self.clip_chunk_kb == 0 || self.clip_chunk_kb > 16 * 1024 {
            return Err(SettingError::new("clip_chunk_kb", format!("must be 1..=16384, got {}", self.clip_chunk_kb)));
        }
        if self.backoff_initial_ms == 0 || self.backoff_max_ms < self.backoff_initial_ms {
            return Err(SettingError::new("backoff_initial_ms", "must be > 0 and <= backoff_max_ms"));
        }
        Ok(())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.central_url.trim_end_matches('/'), path)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error("cannot build the HTTP client: {}", te_types::error_chain(.0))]
    Client(#[source] reqwest::Error),
    /// `setting` (ca_file, token_file) names a file that cannot be read or holds nothing usable.
    #[error("{setting} {path}: {why}")]
    Setting { setting: &'static str, path: String, why: String },
    #[error("{setting} {path}")]
    SettingFile {
        setting: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode the request: {0}")]
    Encode(#[source] serde_json::Error),
    /// The message spells out the causes ("error sending request" alone does not tell an operator that the
    /// certificate's issuer is unknown, or that the connection was refused); the error keeps them as its source.
    #[error("central service unreachable: {}", te_types::error_chain(.0))]
    Transport(#[source] reqwest::Error),
    #[error("central service answered {status}: {message}")]
    Server { status: u16, message: String },
    #[error("central service refused evidence {id} ({status}): {message}")]
    Refused { id: EvidenceId, status: u16, message: String },
    #[error("central service acknowledged {got} when {sent} was sent")]
    WrongReceipt { sent: EvidenceId, got: EvidenceId },
    #[error(transparent)]
    Store(#[from] EvidenceError),
    #[error("store task failed")]
    Join(#[source] tokio::task::JoinError),
}

/// Running totals.
#[derive(Debug, Default)]
pub struct UplinkStats {
    pub delivered: AtomicU64,
    pub already_stored: AtomicU64,
    pub rejected: AtomicU64,
    pub failures: AtomicU64,
    /// Request bodies sent (records, clip chunks, heartbeats), bytes.
    pub bytes_sent: AtomicU64,
    /// Clip bytes the central service already held when a clip upload (re)started.
    pub clip_bytes_resumed: AtomicU64,
    pub heartbeats: AtomicU64,
}

pub struct Uplink {
    settings: UplinkSettings,
    client: reqwest::Client,
    store: Arc<dyn EvidenceStore>,
    limiter: RateLimiter,
    /// Woken by the pipeline when a record is stored, so delivery does not wait for a poll.
    pub new_evidence: Arc<Notify>,
    pub stats: Arc<UplinkStats>,
}

impl Uplink {
    pub fn new(settings: UplinkSettings, store: Arc<dyn EvidenceStore>) -> Result<Self, UplinkError> {
        let client = http_client(&settings)?;
        let limiter = RateLimiter::new(settings.max_upload_kbps * 1000 / 8);
        Ok(Self { settings, client, store, limiter, new_evidence: Arc::new(Notify::new()), stats: Arc::default() })
    }

    /// The HTTP client (TLS settings included), for other talks with the central service.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends until `shutdown` turns true. With `drain` also true, returns as soon as nothing is pending
    /// (used when a replay ends); otherwise waits for new evidence.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>, drain: watch::Receiver<bool>) {
        let mut backoff = Backoff::new(
            Duration::from_millis(self.settings.backoff_initial_ms),
            Duration::from_millis(self.settings.backoff_max_ms),
        );
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
                    let delay = backoff.next(fastrand::f64());
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

    /// One round: sends a batch of pending records, oldest first, `concurrency` at a time. Returns how many left
    /// the queue; the first failure (after the rest of the round finished) when any upload failed.
    pub async fn send_pending(&self) -> Result<usize, UplinkError> {
        use futures_util::StreamExt;
        let store = self.store.clone();
        let batch = self.settings.batch;
        let ids = blocking(move || store.pending(batch)).await??;
        let results: Vec<_> = futures_util::stream::iter(ids)
            .map(|id| self.deliver(id))
            .buffer_unordered(self.settings.concurrency)
            .collect()
            .await;
        let mut done = 0;
        let mut first_error = None;
        for result in results {
            match result {
                Ok(()) => done += 1,
                Err(e) if first_error.is_none() => first_error = Some(e),
                Err(_) => {}
            }
        }
        match first_error {
            // Progress was made: report it, so the caller goes on at once; the failed record is retried next round.
            Some(e) if done == 0 => Err(e),
            Some(e) => {
                tracing::warn!(error = %e, "an upload failed; retrying next round");
                Ok(done)
            }
            None => Ok(done),
        }
    }

    /// Sends one record; a refusal is recorded on the box (rejected, kept) and counts as done.
    async fn deliver(&self, id: EvidenceId) -> Result<(), UplinkError> {
        match self.send_one(id).await {
            Err(UplinkError::Refused { id, status, message }) => {
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::error!(evidence = %id, status, %message, "ALARM: central refused evidence; kept on the box, not resent");
                let store = self.store.clone();
                let reason = format!("{status}: {message}");
                blocking(move || store.mark_rejected(id, &reason)).await??;
                Ok(())
            }
            other => other,
        }
    }

    async fn send_one(&self, id: EvidenceId) -> Result<(), UplinkError> {
        let store = self.store.clone();
        let (upload, clip) = blocking(move || -> Result<_, EvidenceError> {
            let (stored, media) = store.with_media(id)?;
            let upload = EvidenceUpload::new(stored.record, stored.seal, &media.overview_jpeg)
                .with_plate_crops(&media.plate_crops);
            Ok((upload, media.clip_mp4))
        })
        .await??;
        if let (Some(clip), Some(sha)) = (clip, upload.record.clip_sha256.clone()) {
            self.send_clip(id, &sha, &clip).await?;
        }
        let body = serde_json::to_vec(&upload).map_err(UplinkError::Encode)?;
        let response = self
            .send_bytes(reqwest::Method::POST, &self.settings.url(EVIDENCE_PATH), body, "application/json")
            .await
            .map_err(transport)?;
        let status = response.status();
        if status.is_success() {
            let receipt: IngestReceipt = response.json().await.map_err(transport)?;
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
        Err(answer_error(id, response).await)
    }

    /// Brings the central service's copy of a clip up to its full length, from where it stopped.
    async fn send_clip(&self, id: EvidenceId, sha: &str, clip: &[u8]) -> Result<(), UplinkError> {
        let url = self.settings.url(&format!("{CLIPS_PATH}/{sha}"));
        let response = self.client.get(&url).send().await.map_err(transport)?;
        if !response.status().is_success() {
            return Err(answer_error(id, response).await);
        }
        let held: ClipStatus = response.json().await.map_err(transport)?;
        if held.complete {
            return Ok(());
        }
        // Not complete although as long as the clip (the central hashes on status): its copy is wrong; start again.
        let mut offset = if held.received as usize >= clip.len() { 0 } else { held.received as usize };
        if offset > 0 {
            self.stats.clip_bytes_resumed.fetch_add(offset as u64, Ordering::Relaxed);
            tracing::info!(evidence = %id, clip = sha, offset, total = clip.len(), "resuming clip upload");
        }
        let chunk = self.settings.clip_chunk_kb * 1024;
        while offset < clip.len() {
            let end = (offset + chunk).min(clip.len());
            let response = self
                .send_bytes(
                    reqwest::Method::PUT,
                    &format!("{url}?offset={offset}"),
                    clip[offset..end].to_vec(),
                    "application/octet-stream",
                )
                .await
                .map_err(transport)?;
            let status = response.status();
            if status == reqwest::StatusCode::CONFLICT {
                // Our idea of the offset is stale (an earlier chunk did arrive after all): take the central's.
                let held: ClipStatus = response.json().await.map_err(transport)?;
                if held.received as usize == clip.len() {
                    break; // another upload of this clip finished it; the record's upload checks it
                }
                offset = if held.received as usize > clip.len() { 0 } else { held.received as usize };
                continue;
            }
            if !status.is_success() {
                return Err(answer_error(id, response).await);
            }
            let held: ClipStatus = response.json().await.map_err(transport)?;
            offset = held.received as usize;
        }
        Ok(())
    }

    /// One request with a body, within the bandwidth budget.
    async fn send_bytes(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> reqwest::Result<reqwest::Response> {
        self.limiter.acquire(body.len() as u64).await;
        self.stats.bytes_sent.fetch_add(body.len() as u64, Ordering::Relaxed);
        self.client.request(method, url).header(reqwest::header::CONTENT_TYPE, content_type).body(body).send().await
    }

    /// Reports the box's state; the central service answers 204.
    pub async fn send_heartbeat(&self, heartbeat: &Heartbeat) -> Result<(), UplinkError> {
        let body = serde_json::to_vec(heartbeat).map_err(UplinkError::Encode)?;
        let response = self
            .send_bytes(reqwest::Method::POST, &self.settings.url(HEARTBEAT_PATH), body, "application/json")
            .await
            .map_err(transport)?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            let message = response.json::<ApiError>().await.map(|b| b.error).unwrap_or_default();
            return Err(UplinkError::Server { status, message });
        }
        self.stats.heartbeats.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Asks the central service for its totals.
    pub async fn central_stats(&self) -> Result<CentralStats, UplinkError> {
        let response = self.client.get(self.settings.url("/api/v1/stats")).send().await.map_err(transport)?;
        if !response.status().is_success() {
            return Err(UplinkError::Server { status: response.status().as_u16(), message: "stats".into() });
        }
        response.json().await.map_err(transport)
    }
}

/// What a non-success answer means: a refusal of this record (kept, not resent), or a failure worth retrying
/// (401 device token missing or unknown, 408 timeout, 424 clip not held whole yet, 429 slow down, 5xx).
async fn answer_error(id: EvidenceId, response: reqwest::Response) -> UplinkError {
    let status = response.status();
    let message = match response.json::<ApiError>().await {
        Ok(body) => body.error,
        Err(_) => status.canonical_reason().unwrap_or("").to_string(),
    };
    if status.is_client_error() && !matches!(status.as_u16(), 401 | 408 | 424 | 429) {
        UplinkError::Refused { id, status: status.as_u16(), message }
    } else {
        UplinkError::Server { status: status.as_u16(), message }
    }
}

/// The HTTP client: rustls (ring), trusting only `ca_file`'s certificates when it is set.
pub fn http_client(settings: &UplinkSettings) -> Result<reqwest::Client, UplinkError> {
    // reqwest is built without a default TLS provider; ring is the one we ship. A second install is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(settings.request_timeout_secs))
        .connect_timeout(Duration::from_secs(settings.request_timeout_secs.min(10)))
        .user_agent(concat!("traffic-edge/", env!("CARGO_PKG_VERSION")));
    if !settings.ca_file.is_empty() {
        let path = || settings.ca_file.clone();
        let pem = std::fs::read(&settings.ca_file).map_err(|source| UplinkError::SettingFile {
            setting: "ca_file",
            path: path(),
            source,
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| UplinkError::Setting {
            setting: "ca_file",
            path: path(),
            why: te_types::error_chain(&e),
        })?;
        if certs.is_empty() {
            return Err(UplinkError::Setting { setting: "ca_file", path: path(), why: "no certificate in it".into() });
        }
        builder = builder.tls_certs_only(certs);
    }
    if !settings.token_file.is_empty() {
        let token = std::fs::read_to_string(&settings.token_file).map_err(|source| UplinkError::SettingFile {
            setting: "token_file",
            path: settings.token_file.clone(),
            source,
        })?;
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim())).map_err(|_| {
            UplinkError::Setting { setting: "token_file", path: settings.token_file.clone(), why: "not a token".into() }
        })?;
        // Kept out of debug output and logs.
        value.set_sensitive(true);
        builder = builder.default_headers([(reqwest::header::AUTHORIZATION, value)].into_iter().collect());
    }
    builder.build().map_err(UplinkError::Client)
}

fn transport(e: reqwest::Error) -> UplinkError {
    UplinkError::Transport(e)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, UplinkError> {
    tokio::task::spawn_blocking(f).await.map_err(UplinkError::Join)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_name_the_bad_field() {
        let bad = UplinkSettings { central_url: "ftp://x".into(), ..Default::default() };
        assert_eq!(bad.validate().expect_err("invalid").field, "central_url");
        assert!(UplinkSettings::default().validate().is_ok());
    }
}
