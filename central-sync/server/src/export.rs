//! Approved cases to the fines system ("phạt nguội"): a documented JSON API, CSV, and a webhook with retries;
//! and their withdrawal when an officer reopens one.
//!
//! ```text
//!  approve --(same transaction)--> webhook_outbox --deliverer (backoff, HMAC-SHA256)--> fines system
//!  reopen an approved case --(same transaction)--> withdrawals + webhook_outbox (case.withdrawn)
//!  GET /api/v1/export/cases[.csv]?since=<RFC 3339>&after_id=<id>  (role export, supervisor or admin)
//!  GET /api/v1/export/withdrawn?after=<seq>                          the cases to drop again
//! ```
//! A withdrawal goes out only after the approval it takes back was sent; one that was never sent is settled
//! without sending either.
//! Each case carries the record exactly as the box sealed it with its seal, so the receiver can verify it, the
//! plate the officer approved, who approved it and when, the owner when a registry is configured, and the
//! Circular 73/2024 owner-identification deadline.

use crate::accounts::Actor;
use crate::owners::{Owner, OwnerRegistry};
use crate::store::{entry_from_row, ENTRY_COLUMNS};
use crate::store::{CentralStore, QueueEntry, StoreError};
use crate::web::{csv_response, ApiError, AppState};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use central_protocol::{EvidenceRecord, Seal};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;

/// The webhook's header with the body's MAC: `sha256=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "X-Traffic-Edge-Signature";
/// The webhook's header naming the event: [`APPROVED`] (the body is an [`ExportCase`]) or [`WITHDRAWN`] (a
/// [`Withdrawal`]).
pub const EVENT_HEADER: &str = "X-Traffic-Edge-Event";
pub use crate::store::{APPROVED, WITHDRAWN};

/// An approved case taken back: an officer reopened it. The fines system drops it (a new approval sends it
/// again as a case).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Withdrawal {
    /// Position in the feed: the next request's `after`.
    pub seq: i64,
    /// Always `case.withdrawn`.
    pub event: String,
    pub evidence_id: String,
    /// When the approval being withdrawn was made.
    pub approved_at: DateTime<Utc>,
    pub withdrawn_at: DateTime<Utc>,
    pub withdrawn_by: String,
    pub reason: String,
}

/// One approved case as the fines system receives it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExportCase {
    pub evidence_id: String,
    /// `red_light`, `wrong_way`... (only offences can be approved).
    pub violation: String,
    pub violation_vi: String,
    /// The plate approved for fining (the officer's correction, else the box's reading).
    pub plate: String,
    pub plate_read_by_box: Option<String>,
    pub captured_at: DateTime<Utc>,
    pub location: String,
    pub camera_id: String,
    pub device_id: String,
    pub vehicle_class: String,
    pub approved_by: String,
    pub approved_at: DateTime<Utc>,
    /// Circular 73/2024/TT-BCA: identify and notify the owner within 10 days of the violation.
    pub owner_deadline: DateTime<Utc>,
    /// Links on this service, under its public address (send the same token to fetch them).
    pub overview_url: String,
    pub clip_url: Option<String>,
    /// The plate as each frame that voted for it showed it, in vote order.
    pub plate_crop_urls: Vec<String>,
    /// The printable violation notice for the owner (A4 PDF, Vietnamese).
    pub notice_url: String,
    /// The owner from the configured registry; `None` without one or when the plate is not in it.
    pub owner: Option<Owner>,
    /// The record exactly as the box sealed it, and its seal: verifiable by the receiver.
    pub record: EvidenceRecord,
    pub seal: Seal,
}

impl CentralStore {
    /// Approved cases decided after `since` (all when `None`), oldest decision first. Cases decided at the
    /// very instant `since` come after `after_id` in id order, so a page cut between two cases that share a
    /// decision time neither skips nor repeats one.
    pub async fn approved_cases(
        &self,
        since: Option<DateTime<Utc>>,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<(QueueEntry, Seal)>, StoreError> {
        // Times are stored as the service writes them (`to_rfc3339`), so the text compares in time order.
        let since = since.map(|t| t.to_rfc3339()).unwrap_or_default();
        // Without `after_id`, strictly after `since` (what clients that only send `since` expect).
        let tie = if after_id.is_some() { "OR (decided_at = $1 AND evidence_id > $2)" } else { "AND $2 = ''" };
        let rows = sqlx::query(&format!(
            "SELECT {ENTRY_COLUMNS}, seal_json FROM evidence WHERE review_status = 'approved' \
             AND (decided_at > $1 {tie}) ORDER BY decided_at, evidence_id LIMIT $3"
        ))
        .bind(since)
        .bind(after_id.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.db())
        .await?;
        rows.iter()
            .map(|row| match entry_with_seal(row)? {
                (entry, Some(seal)) => Ok((entry, seal)),
                (entry, None) => Err(StoreError::Corrupt(format!("evidence {} has no seal", entry.record.evidence_id))),
            })
            .collect()
    }

    /// Withdrawals after feed position `after`, in order.
    pub async fn withdrawals(&self, after: i64, limit: i64) -> Result<Vec<Withdrawal>, StoreError> {
        let rows = sqlx::query("SELECT * FROM withdrawals WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(self.db())
            .await?;
        rows.iter().map(withdrawal_from_row).collect()
    }

    /// One approved case with its seal; `None` when it is not (or no longer) approved.
    pub(crate) async fn case_for_export(&self, id: &str) -> Result<Option<(QueueEntry, Seal)>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ENTRY_COLUMNS}, seal_json FROM evidence WHERE evidence_id = $1 AND review_status = 'approved'"
        ))
        .bind(id)
        .fetch_optional(self.db())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(match entry_with_seal(&row)? {
            (entry, Some(seal)) => Some((entry, seal)),
            (_, None) => None,
        })
    }
}

/// A row of `withdrawals`.
fn withdrawal_from_row(r: &sqlx::any::AnyRow) -> Result<Withdrawal, StoreError> {
    Ok(Withdrawal {
        seq: r.try_get("seq")?,
        event: WITHDRAWN.into(),
        evidence_id: r.try_get("evidence_id")?,
        approved_at: crate::store::parse_time(&r.try_get::<String, _>("approved_at")?)?,
        withdrawn_at: crate::store::parse_time(&r.try_get::<String, _>("withdrawn_at")?)?,
        withdrawn_by: r.try_get("withdrawn_by")?,
        reason: r.try_get("reason")?,
    })
}

/// A queue entry and its stored seal (`None`: none stored, or unreadable).
fn entry_with_seal(row: &sqlx::any::AnyRow) -> Result<(QueueEntry, Option<Seal>), StoreError> {
    let seal: Option<String> = row.try_get("seal_json")?;
    Ok((entry_from_row(row)?, seal.and_then(|s| serde_json::from_str(&s).ok())))
}

/// The public address `raw` as the base of media links: an http(s) URL without query or fragment, its trailing
/// `/` dropped.
pub fn public_base(raw: &str) -> Result<String, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{raw:?} must be an http:// or https:// address with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{raw:?} must not carry a query, fragment or credentials"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Builds the exported form of a case, its media links under `base` (the service's public address), asking the
/// registry for the owner.
pub fn export_case(entry: QueueEntry, seal: Seal, owners: Option<&dyn OwnerRegistry>, base: &str) -> ExportCase {
    let plate = entry.plate().unwrap_or_default().to_string();
    let owner = owners.and_then(|o| match o.lookup(&plate) {
        Ok(owner) => owner,
        Err(e) => {
            tracing::warn!(error = %e, "owner lookup failed; exported without the owner");
            None
        }
    });
    let r = entry.record;
    let id = r.evidence_id.to_string();
    // From the record's kind, which every record has (a record without the violation details is still its kind).
    let violation_vi = crate::review::kind_name(crate::web::Lang::Vi, r.kind).to_string();
    ExportCase {
        violation: r.kind.as_str().to_string(),
        violation_vi,
        plate_read_by_box: r.plate.as_ref().and_then(|p| p.text.clone()),
        plate,
        captured_at: r.captured_at,
        location: r.location.clone(),
        camera_id: r.camera_id.to_string(),
        device_id: r.device_id.to_string(),
        vehicle_class: r.vehicle_class.as_str().to_string(),
        approved_by: entry.decided_by.unwrap_or_default(),
        approved_at: entry.decided_at.unwrap_or(entry.received_at),
        owner_deadline: crate::review::owner_deadline(r.captured_at),
        overview_url: format!("{base}/api/v1/evidence/{id}/overview.jpg"),
        clip_url: r.clip_sha256.as_ref().map(|_| format!("{base}/api/v1/evidence/{id}/clip.mp4")),
        plate_crop_urls: r
            .plate_crop_hashes()
            .iter()
            .map(|sha| format!("{base}/api/v1/evidence/{id}/plates/{sha}"))
            .collect(),
        notice_url: format!("{base}/api/v1/evidence/{id}/notice.pdf"),
        owner,
        evidence_id: id,
        record: r,
        seal,
    }
}

#[derive(Debug, Deserialize, Default, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Only cases approved after this instant (RFC 3339): the last case's `approved_at` ...
    since: Option<DateTime<Utc>>,
    /// ... and its `evidence_id`: cases approved at that same instant with a later id come too, so paging never
    /// skips or repeats a case.
    after_id: Option<String>,
    /// At most this many (1-5000; 500 when absent).
    limit: Option<i64>,
}

/// Refused unless the actor's role exports (the fines system, supervisors, admins).
fn may_export(actor: &Actor) -> Result<(), ApiError> {
    if actor.role.exports() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("the {} role may not export cases", actor.role.as_str())))
    }
}

/// A page of an export feed: 1-5000 entries, 500 when not asked.
fn page_limit(limit: Option<i64>) -> i64 {
    limit.unwrap_or(500).clamp(1, 5000)
}

async fn cases_for(state: &AppState, actor: &Actor, q: &ExportQuery) -> Result<Vec<ExportCase>, Response> {
    may_export(actor).map_err(IntoResponse::into_response)?;
    let after_id = q.after_id.as_deref().filter(|id| id.len() <= 64);
    let cases = state.store.approved_cases(q.since, after_id, page_limit(q.limit)).await.map_err(|e| {
        tracing::error!(error = %e, "export");
        (StatusCode::INTERNAL_SERVER_ERROR, "storage failure").into_response()
    })?;
    let owners = state.owners.as_deref();
    Ok(cases.into_iter().map(|(entry, seal)| export_case(entry, seal, owners, &state.public_url)).collect())
}

/// Approved cases for the fines system, oldest decision first.
#[utoipa::path(get, path = "/api/v1/export/cases", tag = "export", security(("apiToken" = []), ("session" = [])),
    params(ExportQuery),
    responses(
        (status = 200, description = "Cases", body = Vec<ExportCase>),
        (status = 401, description = "No token", body = central_protocol::ApiError),
        (status = 403, description = "The role may not export", body = central_protocol::ApiError),
    ))]
pub async fn cases_json(State(state): State<AppState>, actor: Actor, Query(q): Query<ExportQuery>) -> Response {
    match cases_for(&state, &actor, &q).await {
        Ok(cases) => Json(cases).into_response(),
        Err(refused) => refused,
    }
}

/// The same cases as CSV, one row per case.
///
/// UTF-8 with a byte order mark, header row; the media as URLs (`plate_crop_urls` space-separated), the record
/// only as its `record_sha256`.
#[utoipa::path(get, path = "/api/v1/export/cases.csv", tag = "export",
    security(("apiToken" = []), ("session" = [])), params(ExportQuery),
    responses(
        (status = 200, description = "CSV, header row", content_type = "text/csv", body = String),
        (status = 401, description = "No token", body = central_protocol::ApiError),
        (status = 403, description = "The role may not export", body = central_protocol::ApiError),
    ))]
pub async fn cases_csv(State(state): State<AppState>, actor: Actor, Query(q): Query<ExportQuery>) -> Response {
    let cases = match cases_for(&state, &actor, &q).await {
        Ok(cases) => cases,
        Err(refused) => return refused,
    };
    let header = [
        "evidence_id",
        "violation",
        "violation_vi",
        "plate",
        "plate_read_by_box",
        "captured_at",
        "location",
        "camera_id",
        "device_id",
        "vehicle_class",
        "approved_by",
        "approved_at",
        "owner_deadline",
        "owner_name",
        "owner_address",
        "owner_id_number",
        "record_sha256",
        // Appended after the first release's columns, so readers that go by position keep working.
        "overview_url",
        "clip_url",
        "plate_crop_urls",
        "notice_url",
    ];
    let rows = cases.into_iter().map(|c| {
        let owner = c.owner.unwrap_or(Owner { name: String::new(), address: String::new(), id_number: String::new() });
        vec![
            c.evidence_id,
            c.violation,
            c.violation_vi,
            c.plate,
            c.plate_read_by_box.unwrap_or_default(),
            c.captured_at.to_rfc3339(),
            c.location,
            c.camera_id,
            c.device_id,
            c.vehicle_class,
            c.approved_by,
            c.approved_at.to_rfc3339(),
            c.owner_deadline.to_rfc3339(),
            owner.name,
            owner.address,
            owner.id_number,
            c.seal.record_sha256,
            c.overview_url,
            c.clip_url.unwrap_or_default(),
            // Space-separated: URLs hold no spaces, and one cell keeps one row per case.
            c.plate_crop_urls.join(" "),
            c.notice_url,
        ]
    });
    csv_response(&header, rows)
}

/// Where the withdrawals feed starts.
#[derive(Debug, Deserialize, Default, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct WithdrawnQuery {
    /// Only withdrawals after this feed position: the last `seq` seen (0 or absent: from the start).
    after: Option<i64>,
    /// At most this many (1-5000; 500 when absent).
    limit: Option<i64>,
}

/// Approved cases an officer has since reopened, in order: the fines system drops each.
#[utoipa::path(get, path = "/api/v1/export/withdrawn", tag = "export", security(("apiToken" = []), ("session" = [])),
    params(WithdrawnQuery),
    responses(
        (status = 200, description = "Withdrawals", body = Vec<Withdrawal>),
        (status = 401, description = "No token", body = central_protocol::ApiError),
        (status = 403, description = "The role may not export", body = central_protocol::ApiError),
    ))]
pub async fn withdrawn_json(
    State(state): State<AppState>,
    actor: Actor,
    Query(q): Query<WithdrawnQuery>,
) -> Result<Json<Vec<Withdrawal>>, ApiError> {
    may_export(&actor)?;
    Ok(Json(state.store.withdrawals(q.after.unwrap_or(0).max(0), page_limit(q.limit)).await?))
}

/// Where approved cases are pushed, and with which shared secret they are signed.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: String,
    /// The service's public address, the base of the cases' media links.
    pub public_url: String,
    /// HMAC-SHA256 key; the body's MAC goes in `X-Traffic-Edge-Signature: sha256=<hex>`.
    pub secret: Vec<u8>,
}

/// The signature header's value for `body`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Delivers the outbox until the process ends: every due case is POSTed; 2xx marks it delivered, anything
/// else is retried after 2^attempts seconds (at most an hour). Nothing is dropped.
pub async fn deliver(store: Arc<CentralStore>, owners: Option<Arc<dyn OwnerRegistry>>, hook: Webhook) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(15)).build() {
        Ok(c) => c,
        Err(e) => return tracing::error!(error = %e, "webhook client; approved cases are not pushed"),
    };
    loop {
        match deliver_due(&store, owners.as_deref(), &hook, &client).await {
            Ok(0) => tokio::time::sleep(Duration::from_millis(500)).await,
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "webhook outbox");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

/// One pass over the due entries; how many were attempted.
async fn deliver_due(
    store: &CentralStore,
    owners: Option<&dyn OwnerRegistry>,
    hook: &Webhook,
    client: &reqwest::Client,
) -> Result<usize, StoreError> {
    let now = Utc::now();
    let due = sqlx::query(
        "SELECT seq, evidence_id, attempts, event FROM webhook_outbox WHERE delivered_at IS NULL \
         AND next_attempt_at <= $1 ORDER BY seq LIMIT 16",
    )
    .bind(now.to_rfc3339())
    .fetch_all(store.db())
    .await?;
    for row in &due {
        let seq: i64 = row.try_get("seq")?;
        let id: String = row.try_get("evidence_id")?;
        let attempts: i64 = row.try_get("attempts")?;
        let event: String = row.try_get("event")?;
        let body = if event == WITHDRAWN {
            match store.withdrawal_to_send(seq, &id).await? {
                Send::Now(withdrawal) => serde_json::to_vec(&withdrawal),
                Send::Later => continue,
                Send::Never(why) => {
                    settle_unsent(store, seq, why).await?;
                    continue;
                }
            }
        } else {
            match store.case_for_export(&id).await? {
                Some((entry, seal)) => serde_json::to_vec(&export_case(entry, seal, owners, &hook.public_url)),
                None => {
                    // Reopened before it went out (a new approval queues it again).
                    settle_unsent(store, seq, "withdrawn: the case was reopened before delivery").await?;
                    continue;
                }
            }
        };
        let outcome = match body {
            Ok(body) => post(client, hook, &event, body).await,
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => {
                let now = Utc::now().to_rfc3339();
                sqlx::query("UPDATE webhook_outbox SET delivered_at = $1, sent_at = $1, attempts = $2 WHERE seq = $3")
                    .bind(now)
                    .bind(attempts + 1)
                    .bind(seq)
                    .execute(store.db())
                    .await?;
                tracing::info!(evidence = %id, event = %event, "delivered to the fines system");
            }
            Err(message) => {
                let failures = u32::try_from(attempts).unwrap_or(0);
                let wait = te_types::backoff::capped(Duration::from_secs(1), Duration::from_secs(3600), failures);
                let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
                tracing::warn!(evidence = %id, attempts = attempts + 1, error = %message, "webhook failed; will retry");
                sqlx::query(
                    "UPDATE webhook_outbox SET attempts = $1, next_attempt_at = $2, last_error = $3 WHERE seq = $4",
                )
                .bind(attempts + 1)
                .bind((Utc::now() + wait).to_rfc3339())
                .bind(message)
                .bind(seq)
                .execute(store.db())
                .await?;
            }
        }
    }
    Ok(due.len())
}

/// Whether a withdrawal goes out.
enum Send {
    Now(Withdrawal),
    /// The approval it takes back is still being delivered.
    Later,
    /// Nothing to take back: why.
    Never(&'static str),
}

impl CentralStore {
    /// Outbox entry `seq` withdraws case `id`: it is sent when the approval before it was sent, waits while
    /// that approval is still in the outbox, and is settled unsent when it never went out.
    async fn withdrawal_to_send(&self, seq: i64, id: &str) -> Result<Send, StoreError> {
        let approval = sqlx::query(
            "SELECT delivered_at, sent_at FROM webhook_outbox WHERE evidence_id = $1 AND event = $2 AND seq < $3 \
             ORDER BY seq DESC LIMIT 1",
        )
        .bind(id)
        .bind(APPROVED)
        .bind(seq)
        .fetch_optional(self.db())
        .await?;
        let Some(approval) = approval else { return Ok(Send::Never("withdrawn: no approval of it was queued")) };
        if approval.try_get::<Option<String>, _>("sent_at")?.is_none() {
            return Ok(match approval.try_get::<Option<String>, _>("delivered_at")? {
                None => Send::Later,
                Some(_) => Send::Never("withdrawn: its approval was never sent"),
            });
        }
        // The feed's entry made in the same transaction as this outbox entry: the latest for the case.
        let row = sqlx::query("SELECT * FROM withdrawals WHERE evidence_id = $1 ORDER BY seq DESC LIMIT 1")
            .bind(id)
            .fetch_optional(self.db())
            .await?;
        Ok(match row {
            Some(row) => Send::Now(withdrawal_from_row(&row)?),
            None => Send::Never("withdrawn: no withdrawal recorded"),
        })
    }
}

/// Marks outbox entry `seq` settled without sending it, and why.
async fn settle_unsent(store: &CentralStore, seq: i64, why: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE webhook_outbox SET delivered_at = $1, last_error = $2 WHERE seq = $3")
        .bind(Utc::now().to_rfc3339())
        .bind(why)
        .bind(seq)
        .execute(store.db())
        .await?;
    Ok(())
}

pub(crate) async fn post(client: &reqwest::Client, hook: &Webhook, event: &str, body: Vec<u8>) -> Result<(), String> {
    let response = client
        .post(&hook.url)
        .header(header::CONTENT_TYPE, "application/json")
        .header(EVENT_HEADER, event)
        .header(SIGNATURE_HEADER, sign(&hook.secret, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("receiver answered {}", response.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_address_is_an_http_url_with_a_host_and_nothing_after_its_path() {
        assert_eq!(public_base("https://phatnguoi.example.vn/").as_deref(), Ok("https://phatnguoi.example.vn"));
        assert_eq!(public_base("http://10.0.0.5:8787/central").as_deref(), Ok("http://10.0.0.5:8787/central"));
        for bad in ["ftp://x", "phatnguoi.example.vn", "https://x/?a=1", "https://u:p@x", "https://x/#f", ""] {
            assert!(public_base(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        let mac = sign(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(mac, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
