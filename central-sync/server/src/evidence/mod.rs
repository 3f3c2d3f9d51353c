//! The evidence API: upload (idempotent), list, show, media, totals. Errors are JSON `{"error": ...}`.

mod queries;

use crate::accounts::Actor;
use crate::devices::DeviceAuth;
use crate::store::{ClipError, QueueEntry, QueueFilter, ReviewStatus};
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

/// POST /api/v1/evidence: 201 with a receipt when stored now, 200 with the first receipt when already stored.
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

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<i64>,
    #[serde(flatten)]
    filter: QueueFilter,
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

/// GET /api/v1/evidence?limit=N&status=&camera=&kind=&from=&to=: newest first.
pub async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<QueueEntry>>, ApiError> {
    may_list(&actor)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(state.store.queue(&q.filter, limit).await?))
}

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
    };
    let bytes = read?.ok_or_else(|| ApiError::not_found(format!("no {name} for {id}")))?;
    Ok(([(header::CONTENT_TYPE, content_type)], bytes).into_response())
}

pub async fn clip(State(state): State<AppState>, actor: Actor, Path(raw): Path<String>) -> Result<Response, ApiError> {
    media(&state, &actor, &raw, MediaKind::Clip).await
}

pub async fn overview(
    State(state): State<AppState>,
    actor: Actor,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    media(&state, &actor, &raw, MediaKind::Overview).await
}

/// GET /api/v1/evidence/{id}/plates/{sha256}: one of the plate pictures the record's votes name (JPEG).
pub async fn plate_crop(
    State(state): State<AppState>,
    actor: Actor,
    Path((raw, sha)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    media(&state, &actor, &raw, MediaKind::PlateCrop(&sha)).await
}

pub async fn stats(State(state): State<AppState>) -> Result<Json<CentralStats>, ApiError> {
    Ok(Json(state.store.stats().await?))
}

#[derive(Debug, Deserialize)]
pub struct ChunkQuery {
    offset: u64,
}

/// GET /api/v1/clips/{sha}: how much of the clip is held.
pub async fn clip_status(
    State(state): State<AppState>,
    device: DeviceAuth,
    Path(sha): Path<String>,
) -> Result<Json<ClipStatus>, ApiError> {
    Ok(Json(state.store.clips.status(&sha, device.owner()).await?))
}

/// PUT /api/v1/clips/{sha}?offset=N: appends a chunk at N (the length held; 0 starts afresh). 409 with the
/// held length when N is not it.
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
