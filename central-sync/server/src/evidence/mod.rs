//! The evidence API: upload (idempotent), list, show, media, totals. Errors are JSON `{"error": ...}`.

mod queries;
pub(crate) use queries::queue_conditions;
mod thumbnail;

use crate::accounts::Actor;
use crate::devices::DeviceAuth;
use crate::store::{ClipError, QueueEntry, QueueFilter, QueueOrder, ReviewStatus};
use crate::web::{ApiError, AppState};
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use central_protocol::{CentralStats, ClipBody, ClipStatus, EvidenceUpload, IngestReceipt, IngestStatus};
use serde::Deserialize;
use te_types::EvidenceId;

fn evidence_id(raw: &str) -> Result<EvidenceId, ApiError> {
    raw.parse().map_err(|_| ApiError::bad_request(format!("{raw:?} is not an evidence id (ULID)")))
}

/// Upload one sealed record (idempotent by evidence id).
///
/// 201 with a receipt when stored now, 200 with the first receipt when already stored.
#[utoipa::path(post, path = central_protocol::EVIDENCE_PATH, tag = "boxes", security(("deviceToken" = [])),
    request_body = EvidenceUpload,
    responses(
        (status = 201, description = "Stored now", body = IngestReceipt),
        (status = 200, description = "Already stored: the first receipt", body = IngestReceipt),
        (status = 400, description = "Malformed", body = central_protocol::ApiError),
        (status = 401, description = "No or unknown device token (the box retries)", body = central_protocol::ApiError),
        (status = 403, description = "Token of another device, or sealed by a key that is not the device's",
            body = central_protocol::ApiError),
        (status = 409, description = "Same id, other content", body = central_protocol::ApiError),
        (status = 413, description = "Too large", body = central_protocol::ApiError),
        (status = 422, description = "Seal, hash, field or version check failed", body = central_protocol::ApiError),
        (status = 424, description = "The clip it names is not held whole yet", body = central_protocol::ApiError),
    ))]
pub async fn upload(
    State(state): State<AppState>,
    device: DeviceAuth,
    body: Result<Json<EvidenceUpload>, JsonRejection>,
) -> Result<(StatusCode, Json<IngestReceipt>), ApiError> {
    let Json(upload) = body?;
    device.check(&state, upload.record.device_id.as_str()).await?;
    // The seal first: nothing of an upload that fails it touches storage.
    let checked = upload.verified_overview(chrono::Utc::now()).and_then(|jpeg| {
        let clip = upload.verified_clip()?;
        Ok((jpeg, clip, upload.verified_plate_crops()?))
    });
    let (jpeg, clip, plate_crops) = checked.map_err(|e| {
        tracing::warn!(evidence = %upload.record.evidence_id, error = %e, "evidence refused");
        ApiError::unprocessable(e.to_string())
    })?;
    let clip = match clip {
        ClipBody::None => None,
        ClipBody::Inline(bytes) => Some(bytes),
        ClipBody::SentAhead(sha) => Some(state.store.clips.take(&sha, device.owner()).await?),
    };
    let receipt = state.store.ingest(&upload.record, &upload.seal, &jpeg, clip.as_deref(), &plate_crops).await?;
    let status = match receipt.status {
        IngestStatus::Created => StatusCode::CREATED,
        IngestStatus::AlreadyStored => StatusCode::OK,
    };
    tracing::info!(evidence = %receipt.evidence_id, device = %upload.record.device_id,
        camera = %upload.record.camera_id, status = ?receipt.status, "evidence received");
    Ok((status, Json(receipt)))
}

/// How many records a list answers.
#[derive(Debug, Deserialize, Default, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct ListLimit {
    /// At most this many (1-1000; 100 when absent).
    limit: Option<i64>,
    /// Skip this many first (paging; 0 when absent).
    offset: Option<i64>,
}

/// Refused unless the actor reviews: the queue of every record is for officers. The export role (the fines
/// system) reads approved cases only, through the export API and [`may_read_case`].
fn may_list(actor: &Actor) -> Result<(), ApiError> {
    if actor.role.reviews() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("the {} role may not list evidence", actor.role.as_str())))
    }
}

/// Refused unless the actor may read record `id`: officers any, the export role approved cases only (the ones
/// the export API hands it, with their pictures).
async fn may_read_case(state: &AppState, actor: &Actor, id: EvidenceId) -> Result<(), ApiError> {
    if actor.role.reviews() {
        return Ok(());
    }
    if actor.role.exports() {
        if let Some(entry) = state.store.get(id).await? {
            if entry.review_status == ReviewStatus::Approved {
                return Ok(());
            }
        }
    }
    Err(ApiError::forbidden(format!("the {} role may read approved cases only", actor.role.as_str())))
}

/// Records and their review, filtered, newest first (`order=oldest`: nearest owner deadline first).
#[utoipa::path(get, path = central_protocol::EVIDENCE_PATH, tag = "review",
    security(("apiToken" = []), ("session" = [])), params(QueueFilter, ListLimit),
    responses(
        (status = 200, description = "Queue entries", body = Vec<QueueEntry>),
        (status = 401, description = "Not logged in", body = central_protocol::ApiError),
        (status = 403, description = "The role may not list evidence", body = central_protocol::ApiError),
    ))]
pub async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Query(filter): Query<QueueFilter>,
    Query(page): Query<ListLimit>,
) -> Result<Json<Vec<QueueEntry>>, ApiError> {
    may_list(&actor)?;
    let limit = page.limit.unwrap_or(100).clamp(1, 1000);
    let offset = page.offset.unwrap_or(0).clamp(0, i64::from(i32::MAX));
    Ok(Json(state.store.queue(&filter, filter.order_or(QueueOrder::Newest), limit, offset).await?))
}

/// One record and its review.
///
/// Officers read any record; the export role approved cases only.
#[utoipa::path(get, path = "/api/v1/evidence/{id}", tag = "review",
    security(("apiToken" = []), ("session" = [])), params(("id" = String, Path, description = "Evidence id (ULID)")),
    responses(
        (status = 200, description = "Queue entry", body = QueueEntry),
        (status = 400, description = "Not a ULID", body = central_protocol::ApiError),
        (status = 403, description = "The role may not read it", body = central_protocol::ApiError),
        (status = 404, description = "Unknown", body = central_protocol::ApiError),
    ))]
pub async fn show(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<String>,
) -> Result<Json<QueueEntry>, ApiError> {
    let id = evidence_id(&raw)?;
    may_read_case(&state, &actor, id).await?;
    let entry = state.store.get(id).await?.ok_or_else(|| ApiError::not_found(format!("no evidence {id}")))?;
    Ok(Json(entry))
}

/// One media file of a record, by kind.
#[derive(Debug, Clone, Copy)]
enum MediaKind<'a> {
    Overview,
    Clip,
    /// A plate picture, by the SHA-256 its vote names.
    PlateCrop(&'a str),
    /// The overview scaled down for the queue.
    Thumbnail,
}

/// The media file, to an actor who may read evidence.
async fn media(state: &AppState, actor: &Actor, raw: &str, kind: MediaKind<'_>) -> Result<Response, ApiError> {
    let id = evidence_id(raw)?;
    may_read_case(state, actor, id).await?;
    let (read, content_type, name) = match kind {
        MediaKind::Overview => (state.store.overview(id).await, "image/jpeg", "overview".to_string()),
        MediaKind::Clip => (state.store.clip(id).await, "video/mp4", "clip".to_string()),
        MediaKind::PlateCrop(sha) => {
            (state.store.plate_crop(id, sha).await, "image/jpeg", format!("plate picture {sha:?}"))
        }
        MediaKind::Thumbnail => (state.store.thumbnail(id).await, "image/jpeg", "overview".to_string()),
    };
    let bytes = read?.ok_or_else(|| ApiError::not_found(format!("no {name} for {id}")))?;
    // A record's files never change once stored (they are sealed, the thumbnail is made from the sealed
    // overview): the officer's browser keeps them. Private: they show people and plates.
    let headers =
        [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "private, max-age=31536000, immutable")];
    Ok((headers, bytes).into_response())
}

/// The record's video clip (MP4).
#[utoipa::path(get, path = "/api/v1/evidence/{id}/clip.mp4", tag = "review",
    security(("apiToken" = []), ("session" = [])), params(("id" = String, Path, description = "Evidence id (ULID)")),
    responses(
        (status = 200, description = "MP4", content_type = "video/mp4", body = Vec<u8>),
        (status = 404, description = "No such record, or it has no clip", body = central_protocol::ApiError),
    ))]
pub async fn clip(State(state): State<AppState>, actor: Actor, Path(raw): Path<String>) -> Result<Response, ApiError> {
    media(&state, &actor, &raw, MediaKind::Clip).await
}

/// The record's overview picture (JPEG, with its data bar).
#[utoipa::path(get, path = "/api/v1/evidence/{id}/overview.jpg", tag = "review",
    security(("apiToken" = []), ("session" = [])), params(("id" = String, Path, description = "Evidence id (ULID)")),
    responses(
        (status = 200, description = "JPEG", content_type = "image/jpeg", body = Vec<u8>),
        (status = 404, description = "No such record", body = central_protocol::ApiError),
    ))]
pub async fn overview(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    media(&state, &actor, &raw, MediaKind::Overview).await
}

/// The violation notice of an approved offence: one A4 page in Vietnamese (PDF) for the vehicle's owner.
#[utoipa::path(get, path = "/api/v1/evidence/{id}/notice.pdf", tag = "review",
    security(("apiToken" = []), ("session" = [])), params(("id" = String, Path, description = "Evidence id (ULID)")),
    responses(
        (status = 200, description = "PDF", content_type = "application/pdf", body = Vec<u8>),
        (status = 404, description = "No such record", body = central_protocol::ApiError),
        (status = 409, description = "Not an approved offence", body = central_protocol::ApiError),
    ))]
pub async fn notice(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = evidence_id(&raw)?;
    may_read_case(&state, &actor, id).await?;
    let Some((entry, seal)) = state.store.case_for_export(&id.to_string()).await? else {
        return Err(match state.store.get(id).await? {
            Some(_) => ApiError::new(StatusCode::CONFLICT, format!("{id} is not an approved offence: no notice")),
            None => ApiError::not_found(format!("no evidence {id}")),
        });
    };
    let overview =
        state.store.overview(id).await?.ok_or_else(|| ApiError::not_found(format!("no overview for {id}")))?;
    let plate = match crate::review::best_plate_crop(&entry.record) {
        Some((sha, _)) => state.store.plate_crop(id, sha).await?,
        None => None,
    };
    let facts = crate::review::notice::facts(&entry, &seal, &state.public_url);
    let pdf = tokio::task::spawn_blocking(move || crate::review::notice::render(&facts, &overview, plate.as_deref()))
        .await
        .map_err(|e| ApiError::internal("notice", &e))?
        .map_err(|e| ApiError::internal("notice", &e))?;
    let headers = [
        (header::CONTENT_TYPE, "application/pdf".to_string()),
        (header::CONTENT_DISPOSITION, format!("inline; filename=\"thong-bao-vi-pham-{id}.pdf\"")),
        // Reopening withdraws the case: never keep an old notice.
        (header::CACHE_CONTROL, "private, no-store".to_string()),
    ];
    Ok((headers, pdf).into_response())
}

/// The overview scaled to 320 pixels wide, for lists (made on first request and kept).
#[utoipa::path(get, path = "/api/v1/evidence/{id}/thumb.jpg", tag = "review",
    security(("apiToken" = []), ("session" = [])), params(("id" = String, Path, description = "Evidence id (ULID)")),
    responses(
        (status = 200, description = "JPEG", content_type = "image/jpeg", body = Vec<u8>),
        (status = 404, description = "No such record", body = central_protocol::ApiError),
    ))]
pub async fn thumbnail(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    media(&state, &actor, &raw, MediaKind::Thumbnail).await
}

/// One plate picture: the plate as a frame that voted for it showed it.
///
/// Named by `crop_sha256` in `record.plate.votes`.
#[utoipa::path(get, path = "/api/v1/evidence/{id}/plates/{sha256}", tag = "review",
    security(("apiToken" = []), ("session" = [])),
    params(("id" = String, Path, description = "Evidence id (ULID)"),
        ("sha256" = String, Path, description = "SHA-256 hex of the JPEG, as the vote names it")),
    responses(
        (status = 200, description = "JPEG", content_type = "image/jpeg", body = Vec<u8>),
        (status = 404, description = "No such record or picture", body = central_protocol::ApiError),
    ))]
pub async fn plate_crop(
    State(state): State<AppState>,
    actor: Actor,
    Path((raw, sha)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    media(&state, &actor, &raw, MediaKind::PlateCrop(&sha)).await
}

/// Totals (no plates, no ids).
#[utoipa::path(get, path = "/api/v1/stats", tag = "open data", responses((status = 200, description = "Totals", body = CentralStats)))]
pub async fn stats(State(state): State<AppState>) -> Result<Json<CentralStats>, ApiError> {
    Ok(Json(state.store.stats().await?))
}

/// Where a clip chunk goes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChunkQuery {
    /// The length held so far (0 starts afresh).
    offset: u64,
}

/// How much of a clip sent ahead of its record is held.
#[utoipa::path(get, path = "/api/v1/clips/{sha}", tag = "boxes", security(("deviceToken" = [])),
    params(("sha" = String, Path, description = "SHA-256 hex of the whole clip", pattern = "^[0-9a-f]{64}$")),
    responses(
        (status = 200, description = "Held so far", body = ClipStatus),
        (status = 400, description = "Bad name", body = central_protocol::ApiError),
        (status = 401, description = "No or unknown device token", body = central_protocol::ApiError),
    ))]
pub async fn clip_status(
    State(state): State<AppState>,
    device: DeviceAuth,
    Path(sha): Path<String>,
) -> Result<Json<ClipStatus>, ApiError> {
    Ok(Json(state.store.clips.status(&sha, device.owner()).await?))
}

/// Append a chunk of a clip sent ahead of its record.
///
/// The chunk goes at `offset`, which must be the length held; 409 answers the held length when it is not.
#[utoipa::path(put, path = "/api/v1/clips/{sha}", tag = "boxes", security(("deviceToken" = [])),
    params(("sha" = String, Path, description = "SHA-256 hex of the whole clip", pattern = "^[0-9a-f]{64}$"),
        ChunkQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Held so far", body = ClipStatus),
        (status = 409, description = "Wrong offset: the length held", body = ClipStatus),
        (status = 400, description = "Bad name or empty chunk", body = central_protocol::ApiError),
        (status = 401, description = "No or unknown device token", body = central_protocol::ApiError),
        (status = 413, description = "Too large", body = central_protocol::ApiError),
    ))]
pub async fn clip_chunk(
    State(state): State<AppState>,
    device: DeviceAuth,
    Path(sha): Path<String>,
    Query(q): Query<ChunkQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("empty chunk"));
    }
    match state.store.clips.append(&sha, device.owner(), q.offset, &body).await {
        Ok(status) => Ok(Json(status).into_response()),
        Err(ClipError::WrongOffset { held, .. }) => {
            Ok((StatusCode::CONFLICT, Json(ClipStatus { received: held, complete: false })).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
