//! The box's clock against a reference: an SNTP server when one is configured (RFC 4330, one query, ms
//! resolution), else the central service's HTTP `Date` header (1 s resolution). The box never adjusts its own
//! clock or its records' times: it measures, puts the measurement in every record, and lets a record whose
//! clock is unchecked or too far off be flagged for review.

use central_protocol::ClockCheck;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use te_types::SettingError;
use tokio::sync::watch;

/// `[time]` in the agent's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClockSettings {
    /// SNTP server as `host:port` (e.g. the province's NTP server, `10.0.0.1:123`); empty: use the central
    /// service's `Date` header.
    pub ntp_server: String,
    /// Seconds between measurements.
    pub check_every_s: u64,
    /// Largest offset (plus the measurement's own uncertainty) that still counts as trusted, ms.
    pub max_offset_ms: u64,
    /// A measurement older than this no longer counts as trusted, s.
    pub max_age_s: u64,
    /// Time limit for one measurement, ms.
    pub timeout_ms: u64,
}

impl Default for ClockSettings {
    fn default() -> Self {
        Self { ntp_server: String::new(), check_every_s: 300, max_offset_ms: 2000, max_age_s: 3600, timeout_ms: 3000 }
    }
}

impl ClockSettings {
    pub fn validate(&self) -> Result<(), SettingError> {
        if !self.ntp_server.is_empty() && !self.ntp_server.contains(':') {
            return Err(SettingError::new(
                "ntp_server",
                format!("{:?} must be host:port, e.g. \"10.0.0.1:123\"", self.ntp_server),
            ));
        }
        if self.check_every_s == 0 {
            return Err(SettingError::new("check_every_s", "must be at least 1"));
        }
        if self.max_age_s < self.check_every_s {
            return Err(SettingError::new(
                "max_age_s",
                "must be at least check_every_s, or every measurement expires unused",
            ));
        }
        if self.timeout_ms == 0 {
            return Err(SettingError::new("timeout_ms", "must be at least 1"));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    #[error("SNTP {server}: {message}")]
    Sntp { server: String, message: String },
    #[error("central Date header: {0}")]
    Central(String),
}

/// A raw measurement: reference minus box, and its uncertainty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offset {
    pub offset_ms: i64,
    pub uncertainty_ms: u64,
}

/// A measurement, where it came from, and when it was taken.
type Measurement = (Offset, String, DateTime<Utc>);

/// The latest measurement, shared between the measuring task and whoever writes records.
#[derive(Debug, Clone, Default)]
pub struct ClockWatch {
    latest: Arc<RwLock<Option<Measurement>>>,
    max_offset_ms: u64,
    max_age: chrono::Duration,
}

impl ClockWatch {
    pub fn new(settings: &ClockSettings) -> Self {
        Self {
            latest: Arc::default(),
            max_offset_ms: settings.max_offset_ms,
            max_age: chrono::Duration::seconds(settings.max_age_s.min(i64::MAX as u64) as i64),
        }
    }

    pub fn record(&self, offset: Offset, source: String, at: DateTime<Utc>) {
        if let Ok(mut latest) = self.latest.write() {
            *latest = Some((offset, source, at));
        }
    }

    /// What a record made at `now` says about the clock; `None` when it was never measured.
    pub fn check(&self, now: DateTime<Utc>) -> Option<ClockCheck> {
        let latest = self.latest.read().ok()?;
        let (offset, source, at) = latest.as_ref()?;
        let bound = offset.offset_ms.unsigned_abs().saturating_add(offset.uncertainty_ms);
        let fresh = now.signed_duration_since(*at) <= self.max_age;
        Some(ClockCheck {
            offset_ms: offset.offset_ms,
            uncertainty_ms: offset.uncertainty_ms,
            source: source.clone(),
            measured_at: *at,
            trusted: fresh && bound <= self.max_offset_ms,
        })
    }
}

/// Seconds between the NTP era (1900) and the Unix epoch.
const NTP_UNIX_OFFSET_S: i64 = 2_208_988_800;

fn to_ntp(t: DateTime<Utc>) -> [u8; 8] {
    let secs = (t.timestamp() + NTP_UNIX_OFFSET_S) as u32;
    let frac = ((u64::from(t.timestamp_subsec_nanos()) << 32) / 1_000_000_000) as u32;
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&secs.to_be_bytes());
    out[4..].copy_from_slice(&frac.to_be_bytes());
    out
}

fn from_ntp(b: &[u8]) -> Option<DateTime<Utc>> {
    let secs = u32::from_be_bytes(b.get(..4)?.try_into().ok()?);
    let frac = u32::from_be_bytes(b.get(4..8)?.try_into().ok()?);
    let nanos = ((u64::from(frac) * 1_000_000_000) >> 32) as u32;
    DateTime::from_timestamp(i64::from(secs) - NTP_UNIX_OFFSET_S, nanos)
}

/// An SNTP reply to `request`, read with its own receive time; the offset and round-trip delay (RFC 4330 §5).
fn sntp_offset(request: &[u8; 48], reply: &[u8], t1: DateTime<Utc>, t4: DateTime<Utc>) -> Result<Offset, String> {
    if reply.len() < 48 {
        return Err(format!("reply of {} bytes, expected 48", reply.len()));
    }
    if reply[0] & 0x07 != 4 {
        return Err(format!("reply mode {} is not a server reply", reply[0] & 0x07));
    }
    if reply[1] == 0 {
        return Err("server sent kiss-of-death (stratum 0): it refuses to serve".into());
    }
    if reply[0] >> 6 == 3 {
        return Err("server clock is not synchronised (leap indicator 3)".into());
    }
    // The server copies our transmit time into its originate field: anything else is not an answer to us.
    if reply[24..32] != request[40..48] {
        return Err("reply does not answer our request (originate time differs)".into());
    }
    let t2 = from_ntp(&reply[32..40]).ok_or("bad receive timestamp")?;
    let t3 = from_ntp(&reply[40..48]).ok_or("bad transmit timestamp")?;
    let offset = ((t2 - t1) + (t3 - t4)) / 2;
    let delay = (t4 - t1) - (t3 - t2);
    let delay_ms = delay.num_milliseconds().max(0) as u64;
    Ok(Offset { offset_ms: offset.num_milliseconds(), uncertainty_ms: delay_ms / 2 + 1 })
}

/// One SNTP query to `server` (`host:port`).
pub async fn measure_sntp(server: &str, timeout: Duration) -> Result<Offset, ClockError> {
    let err = |message: String| ClockError::Sntp { server: server.to_string(), message };
    let query = async {
        let socket = tokio::net::UdpSocket::bind(if server.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" })
            .await
            .map_err(|e| err(e.to_string()))?;
        socket.connect(server).await.map_err(|e| err(e.to_string()))?;
        let mut request = [0u8; 48];
        request[0] = 0x23; // leap 0, version 4, mode 3 (client)
        let t1 = Utc::now();
        request[40..48].copy_from_slice(&to_ntp(t1));
        socket.send(&request).await.map_err(|e| err(e.to_string()))?;
        let mut reply = [0u8; 68];
        let n = socket.recv(&mut reply).await.map_err(|e| err(e.to_string()))?;
        let t4 = Utc::now();
        sntp_offset(&request, &reply[..n], t1, t4).map_err(err)
    };
    tokio::time::timeout(timeout, query).await.map_err(|_| err(format!("no answer within {timeout:?}")))?
}

/// One look at the central service's `Date` header (`GET /healthz`). The header truncates to the second, so
/// the reference is taken as the middle of that second, ±500 ms plus half the round trip.
pub async fn measure_central(client: &reqwest::Client, central_url: &str) -> Result<Offset, ClockError> {
    let url = format!("{}/healthz", central_url.trim_end_matches('/'));
    let sent = Utc::now();
    let response = client.get(&url).send().await.map_err(|e| ClockError::Central(e.to_string()))?;
    let received = Utc::now();
    let date = response
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
        .ok_or_else(|| ClockError::Central("the central service sent no Date header".into()))?;
    let round_trip = received - sent;
    let midpoint = sent + round_trip / 2;
    let reference = date.with_timezone(&Utc) + chrono::Duration::milliseconds(500);
    Ok(Offset {
        offset_ms: (reference - midpoint).num_milliseconds(),
        uncertainty_ms: 500 + (round_trip.num_milliseconds().max(0) as u64) / 2,
    })
}

/// One measurement from the configured source, kept in `watch` when it succeeds.
pub async fn check_once(
    settings: &ClockSettings,
    client: &reqwest::Client,
    central_url: &str,
    watch: &ClockWatch,
) -> Result<Offset, ClockError> {
    let timeout = Duration::from_millis(settings.timeout_ms);
    let (result, source) = if settings.ntp_server.is_empty() {
        let measured = tokio::time::timeout(timeout, measure_central(client, central_url))
            .await
            .unwrap_or_else(|_| Err(ClockError::Central(format!("no answer within {timeout:?}"))));
        (measured, "central-date".to_string())
    } else {
        (measure_sntp(&settings.ntp_server, timeout).await, format!("ntp:{}", settings.ntp_server))
    };
    let offset = result?;
    let limit = settings.max_offset_ms;
    if offset.offset_ms.unsigned_abs() + offset.uncertainty_ms > limit {
        tracing::warn!(offset_ms = offset.offset_ms, uncertainty_ms = offset.uncertainty_ms, limit_ms = limit,
            %source, "ALARM: box clock is off; its violations are flagged for review");
    } else {
        tracing::debug!(offset_ms = offset.offset_ms, %source, "clock checked");
    }
    watch.record(offset, source, Utc::now());
    Ok(offset)
}

/// Measures every `check_every_s` until `shutdown`; failures are logged and retried sooner. The last good
/// measurement stays (and ages out of `trusted` after `max_age_s`). A measurement already in `watch` (the
/// start-up check) counts as the first one.
pub async fn run(
    settings: ClockSettings,
    client: reqwest::Client,
    central_url: String,
    watch: ClockWatch,
    mut shutdown: watch::Receiver<bool>,
) {
    if watch.check(Utc::now()).is_some() {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(settings.check_every_s)) => {}
            _ = shutdown.changed() => return,
        }
    }
    loop {
        let next = match check_once(&settings, &client, &central_url, &watch).await {
            Ok(_) => Duration::from_secs(settings.check_every_s),
            Err(e) => {
                tracing::warn!(error = %e, "clock check failed; will retry");
                Duration::from_secs(settings.check_every_s.min(30))
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(next) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-shot SNTP server on loopback whose clock runs `skew_ms` ahead.
    fn fake_server(skew_ms: i64, reply_mode: u8) -> String {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = socket.local_addr().expect("addr").to_string();
        std::thread::spawn(move || {
            let mut buf = [0u8; 48];
            if let Ok((_, peer)) = socket.recv_from(&mut buf) {
                let now = Utc::now() + chrono::Duration::milliseconds(skew_ms);
                let mut reply = [0u8; 48];
                reply[0] = 0x20 | reply_mode;
                reply[1] = 1;
                reply[24..32].copy_from_slice(&buf[40..48]);
                reply[32..40].copy_from_slice(&to_ntp(now));
                reply[40..48].copy_from_slice(&to_ntp(now));
                let _ = socket.send_to(&reply, peer);
            }
        });
        addr
    }

    #[tokio::test]
    async fn an_sntp_server_ahead_by_five_seconds_is_measured_to_the_millisecond() {
        let server = fake_server(5000, 4);
        let offset = measure_sntp(&server, Duration::from_secs(2)).await.expect("measured");
        // Within the uncertainty the measurement itself reports (half the round trip: a few ms on an idle
        // machine, more when other work holds the CPU), never off by more than it admits.
        assert!((offset.offset_ms - 5000).unsigned_abs() <= offset.uncertainty_ms.max(5), "{offset:?}");
        assert!(offset.uncertainty_ms <= 250, "{offset:?}");
    }

    #[tokio::test]
    async fn a_reply_that_is_not_a_server_reply_or_never_comes_is_an_error() {
        let server = fake_server(0, 3);
        assert!(measure_sntp(&server, Duration::from_secs(2)).await.is_err());
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = silent.local_addr().expect("addr").to_string();
        let e = measure_sntp(&addr, Duration::from_millis(200)).await.expect_err("timeout");
        assert!(e.to_string().contains("no answer"), "{e}");
    }

    #[test]
    fn ntp_timestamps_round_trip_to_the_microsecond() {
        let t = DateTime::from_timestamp(1_790_000_000, 123_456_789).expect("time");
        let back = from_ntp(&to_ntp(t)).expect("parse");
        assert!((back - t).num_microseconds().expect("small").abs() <= 1);
    }

    #[test]
    fn a_check_is_trusted_only_when_small_and_fresh() {
        let settings = ClockSettings { max_offset_ms: 1000, max_age_s: 60, ..Default::default() };
        let watch = ClockWatch::new(&settings);
        let now = Utc::now();
        assert_eq!(watch.check(now), None, "never measured");
        watch.record(Offset { offset_ms: -700, uncertainty_ms: 200 }, "ntp:x:123".into(), now);
        assert!(watch.check(now).expect("check").trusted);
        assert!(!watch.check(now + chrono::Duration::seconds(61)).expect("check").trusted, "stale");
        watch.record(Offset { offset_ms: 900, uncertainty_ms: 200 }, "ntp:x:123".into(), now);
        let check = watch.check(now).expect("check");
        assert!(!check.trusted && check.offset_ms == 900, "{check:?}");
    }

    #[test]
    fn settings_name_the_bad_field() {
        let bad = ClockSettings { ntp_server: "pool.ntp.org".into(), ..Default::default() };
        assert_eq!(bad.validate().expect_err("no port").field, "ntp_server");
        assert!(ClockSettings::default().validate().is_ok());
    }
}
