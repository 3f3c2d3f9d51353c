//! Device health alerts. A box offline (three missed heartbeats of its own interval), its evidence store's alarm
//! (quota reached, refused records) and its clock untrusted are incidents: opened when first seen, closed when
//! the condition clears, kept in `device_incidents`, and each opening and closing is announced once to the
//! operators' webhook (`serve --alert-webhook-url`), signed like the fines system's and retried until taken.

use super::DeviceStatus;
use crate::export::{post, Webhook};
use crate::store::{CentralStore, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// How often the heartbeats are looked at.
pub const CHECK_EVERY: Duration = Duration::from_secs(15);
/// The webhook's event names (header `X-Traffic-Edge-Event` and the body's `event`).
pub const OPENED: &str = "device.incident_opened";
pub const CLOSED: &str = "device.incident_closed";
/// A box's alarm text is its own: kept to this many characters.
const MAX_DETAIL: usize = 300;

/// One incident, as announced and as the devices page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incident {
    pub seq: i64,
    pub device_id: String,
    /// `offline`, `store_alarm` or `clock_untrusted`.
    pub kind: String,
    pub detail: String,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// The body of an announcement.
#[derive(Debug, Serialize)]
struct Announcement<'a> {
    event: &'a str,
    #[serde(flatten)]
    incident: &'a Incident,
}

/// The incidents a box's latest heartbeat shows, as (kind, detail).
pub fn conditions(status: &DeviceStatus) -> Vec<(&'static str, String)> {
    let beat = &status.heartbeat;
    let mut found = Vec::new();
    if status.offline {
        let every = beat.interval_s.unwrap_or(central_protocol::DEFAULT_HEARTBEAT_S);
        found.push(("offline", format!("no heartbeat for {} s (one every {every} s expected)", status.silent_s)));
    }
    if let Some(alarm) = beat.alarm.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        found.push(("store_alarm", alarm.chars().take(MAX_DETAIL).collect()));
    }
    if let Some(clock) = beat.clock.as_ref().filter(|c| !c.trusted) {
        let source: String = clock.source.chars().take(80).collect();
        found.push(("clock_untrusted", format!("clock off by {:+.1} s ({source})", clock.offset_ms as f64 / 1000.0)));
    }
    found
}

fn incident_from_row(row: &sqlx::any::AnyRow) -> Result<Incident, StoreError> {
    let closed: Option<String> = row.try_get("closed_at")?;
    Ok(Incident {
        seq: row.try_get("seq")?,
        device_id: row.try_get("device_id")?,
        kind: row.try_get("kind")?,
        detail: row.try_get("detail")?,
        opened_at: crate::store::parse_time(&row.try_get::<String, _>("opened_at")?)?,
        closed_at: closed.as_deref().map(crate::store::parse_time).transpose()?,
    })
}

impl CentralStore {
    /// Opens an incident for each condition newly seen in the devices' latest heartbeats and closes each open
    /// one whose condition cleared; returns how many were (opened, closed).
    pub async fn review_device_health(&self) -> Result<(usize, usize), StoreError> {
        let now = Utc::now().to_rfc3339();
        let statuses = self.devices().await?;
        let rows = sqlx::query("SELECT seq, device_id, kind FROM device_incidents WHERE closed_at IS NULL")
            .fetch_all(self.db())
            .await?;
        // (seq, (device, kind)) of each open incident.
        let open = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64, _>("seq")?,
                    (r.try_get::<String, _>("device_id")?, r.try_get::<String, _>("kind")?),
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let open_now: HashSet<&(String, String)> = open.iter().map(|(_, key)| key).collect();
        let mut seen = HashSet::new();
        let mut opened = 0;
        for status in &statuses {
            let device = status.heartbeat.device_id.as_str().to_string();
            for (kind, detail) in conditions(status) {
                let key = (device.clone(), kind.to_string());
                if !open_now.contains(&key) {
                    // The partial unique index keeps a second service instance from opening it twice.
                    let done = sqlx::query(
                        "INSERT INTO device_incidents (device_id, kind, detail, opened_at, next_attempt_at) \
                         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (device_id, kind) WHERE closed_at IS NULL DO NOTHING",
                    )
                    .bind(&device)
                    .bind(kind)
                    .bind(&detail)
                    .bind(&now)
                    .execute(self.db())
                    .await?;
                    if done.rows_affected() > 0 {
                        opened += 1;
                        tracing::warn!(device = %device, kind, detail = %detail, "device incident opened");
                    }
                }
                seen.insert(key);
            }
        }
        let mut closed = 0;
        for (seq, key) in &open {
            if seen.contains(key) {
                continue;
            }
            sqlx::query(
                "UPDATE device_incidents SET closed_at = $1, next_attempt_at = $1, attempts = 0 \
                 WHERE seq = $2 AND closed_at IS NULL",
            )
            .bind(&now)
            .bind(seq)
            .execute(self.db())
            .await?;
            closed += 1;
            tracing::info!(device = %key.0, kind = %key.1, "device incident closed");
        }
        Ok((opened, closed))
    }

    /// The open incidents, oldest first, and the latest closed ones (at most `closed` of them).
    pub async fn incidents(&self, closed: i64) -> Result<(Vec<Incident>, Vec<Incident>), StoreError> {
        let open = sqlx::query("SELECT * FROM device_incidents WHERE closed_at IS NULL ORDER BY seq")
            .fetch_all(self.db())
            .await?;
        let done = sqlx::query("SELECT * FROM device_incidents WHERE closed_at IS NOT NULL ORDER BY seq DESC LIMIT $1")
            .bind(closed)
            .fetch_all(self.db())
            .await?;
        Ok((
            open.iter().map(incident_from_row).collect::<Result<_, _>>()?,
            done.iter().map(incident_from_row).collect::<Result<_, _>>()?,
        ))
    }

    /// Announces the due openings and closings; how many were attempted.
    async fn announce_due(&self, hook: &Webhook, client: &reqwest::Client) -> Result<usize, StoreError> {
        let due = sqlx::query(
            "SELECT * FROM device_incidents WHERE (opened_sent_at IS NULL OR (closed_at IS NOT NULL AND \
             closed_sent_at IS NULL)) AND next_attempt_at <= $1 ORDER BY seq LIMIT 16",
        )
        .bind(Utc::now().to_rfc3339())
        .fetch_all(self.db())
        .await?;
        for row in &due {
            let incident = incident_from_row(row)?;
            let attempts: i64 = row.try_get("attempts")?;
            // The opening goes first; the closing after it.
            let opening = row.try_get::<Option<String>, _>("opened_sent_at")?.is_none();
            let (event, column) = if opening { (OPENED, "opened_sent_at") } else { (CLOSED, "closed_sent_at") };
            let body = serde_json::to_vec(&Announcement { event, incident: &incident })
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            match post(client, hook, event, body).await {
                Ok(()) => {
                    sqlx::query(&format!("UPDATE device_incidents SET {column} = $1, attempts = 0 WHERE seq = $2"))
                        .bind(Utc::now().to_rfc3339())
                        .bind(incident.seq)
                        .execute(self.db())
                        .await?;
                }
                Err(message) => {
                    let failures = u32::try_from(attempts).unwrap_or(0);
                    let wait = te_types::backoff::capped(Duration::from_secs(1), Duration::from_secs(600), failures);
                    let next = Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::minutes(10));
                    tracing::warn!(incident = incident.seq, error = %message, "alert webhook failed; will retry");
                    sqlx::query(
                        "UPDATE device_incidents SET attempts = $1, next_attempt_at = $2, last_error = $3 WHERE seq = $4",
                    )
                    .bind(attempts + 1)
                    .bind(next.to_rfc3339())
                    .bind(message)
                    .bind(incident.seq)
                    .execute(self.db())
                    .await?;
                }
            }
        }
        Ok(due.len())
    }
}

/// Looks at the heartbeats every CHECK_EVERY, opening and closing incidents, and announces them to `hook`
/// (incidents are kept and listed on `/devices` without one).
pub async fn watch(store: Arc<CentralStore>, hook: Option<Webhook>, every: Duration) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(15)).build() {
        Ok(c) => c,
        Err(e) => return tracing::error!(error = %e, "alert webhook client; device incidents are not watched"),
    };
    loop {
        if let Err(e) = store.review_device_health().await {
            tracing::error!(error = %e, "device health");
        }
        if let Some(hook) = &hook {
            // Drain what is due, then wait for the next look.
            loop {
                match store.announce_due(hook, &client).await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "alert webhook");
                        break;
                    }
                }
            }
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(silent_s: i64, alarm: Option<&str>, trusted: Option<bool>) -> DeviceStatus {
        let now = Utc::now();
        let clock = trusted.map(|trusted| central_protocol::ClockCheck {
            offset_ms: -2500,
            uncertainty_ms: 20,
            source: "ntp:pool.example:123".into(),
            measured_at: now,
            trusted,
        });
        let beat = crate::devices::test_heartbeat(clock, alarm, Some(30));
        DeviceStatus::at(now - chrono::Duration::seconds(silent_s), beat, now)
    }

    #[test]
    fn a_heartbeat_shows_each_incident_it_holds_and_a_sound_one_none() {
        assert!(conditions(&status(5, None, Some(true))).is_empty());
        assert!(conditions(&status(5, Some("  "), None)).is_empty(), "a blank alarm is none");
        let kinds: Vec<&str> =
            conditions(&status(200, Some("quota reached"), Some(false))).iter().map(|c| c.0).collect();
        assert_eq!(kinds, ["offline", "store_alarm", "clock_untrusted"]);
        let found = conditions(&status(5, Some(&"x".repeat(5000)), Some(false)));
        assert_eq!(found[0].1.chars().count(), MAX_DETAIL, "a box's text is bounded");
        assert_eq!(found[1].1, "clock off by -2.5 s (ntp:pool.example:123)");
    }
}
