//! The evidence API: upload (idempotent), list, show, media, totals. Errors are JSON `{"error": ...}`.

use crate::devices::DeviceAuth;
use crate::{Actor, AppState, ClipError, QueueFilter, StoreError};
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use central_protocol::{ApiError, ClipBody, EvidenceUpload, Heartbeat, IngestStatus};
use serde::Deserialize;
use te_types::EvidenceId;

/// A JSON error answer, `{"error": ...}`: the API's one error shape.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(ApiError { error: message.into() })).into_response()
}

fn store_error(e: StoreError) -> Response {
    if !matches!(
        e,
        StoreError::Clip(ClipError::Incomplete { .. })
            | StoreError::Db(_)
            | StoreError::Media { .. }
            | StoreError::ObjectStore { .. }
    ) {
        tracing::warn!(error = %e, "evidence refused");
    }
    match e {
        StoreError::Conflict(_) => error(StatusCode::CONFLICT, e.to_string()),
        StoreError::WrongDeviceKey { .. } => error(StatusCode::FORBIDDEN, e.to_string()),
        StoreError::Clip(e) => clip_error(e),
        other => {
            tracing::error!(error = %other, "storage failure");
            error(StatusCode::INTERNAL_SERVER_ERROR, "storage failure; retry later")
        }
    }
}

fn clip_error(e: ClipError) -> Response {
    match e {
        ClipError::BadName(_) => error(StatusCode::BAD_REQUEST, e.to_string()),
        ClipError::TooLarge { .. } => error(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
        // Retryable: the box's other clips finish (or are swept) and make room.
        ClipError::OverQuota { .. } => error(StatusCode::TOO_MANY_REQUESTS, e.to_string()),
        // Retryable by the box: it asks the status and sends what is missing.
        ClipError::Incomplete { .. } => error(StatusCode::FAILED_DEPENDENCY, e.to_string()),
        ClipError::WrongOffset { .. } => error(StatusCode::CONFLICT, e.to_string()),
        ClipError::Io { .. } => {
            tracing::error!(error = %e, "clip storage failure");
            error(StatusCode::INTERNAL_SERVER_ERROR, "storage failure; retry later")
        }
    }
}

fn bad_id(raw: &str) -> Response {
    error(StatusCode::BAD_REQUEST, format!("{raw:?} is not an evidence id (ULID)"))
}

/// POST /api/v1/evidence: 201 with a receipt when stored now, 200 with the first receipt when already stored.
pub async fn upload(
    State(state): State<AppState>,
    device: DeviceAuth,
    body: Result<Json<EvidenceUpload>, JsonRejection>,
) -> Response {
    let Json(upload) = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    if let Err(refused) = device.check(&state, upload.record.device_id.as_str()).await {
        return refused;
    }
    // The seal first: nothing of an upload that fails it touches storage.
    let checked = upload.verified_overview(chrono::Utc::now()).and_then(|jpeg| {
        let clip = upload.verified_clip()?;
        Ok((jpeg, clip, upload.verified_plate_crops()?))
    });
    let (jpeg, clip, plate_crops) = match checked {
        Ok(checked) => checked,
        Err(e) => {
            tracing::warn!(evidence = %upload.record.evidence_id, error = %e, "evidence refused");
            return error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string());
        }
    };
    let clip = match clip {
        ClipBody::None => None,
        ClipBody::Inline(bytes) => Some(bytes),
        ClipBody::SentAhead(sha) => match state.store.clips.take(&sha, device.owner()).await {
            Ok(bytes) => Some(bytes),
            Err(e) => return clip_error(e),
        },
    };
    match state.store.ingest(&upload.record, &upload.seal, &jpeg, clip.as_deref(), &plate_crops).await {
        Ok(receipt) => {
            let status = match receipt.status {
                IngestStatus::Created => StatusCode::CREATED,
                IngestStatus::AlreadyStored => StatusCode::OK,
            };
            tracing::info!(evidence = %receipt.evidence_id, device = %upload.record.device_id,
                camera = %upload.record.camera_id, status = ?receipt.status, "evidence received");
            (status, Json(receipt)).into_response()
        }
        Err(e) => store_error(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<i64>,
    #[serde(flatten)]
    filter: QueueFilter,
}

/// The 403 answer unless the actor reviews: the queue of every record is for officers. The export role
/// (the fines system) reads approved cases only, through the export API and [`may_read_case`].
fn may_list(actor: &Actor) -> Option<Response> {
    (!actor.role.reviews())
        .then(|| error(StatusCode::FORBIDDEN, format!("the {} role may not list evidence", actor.role.as_str())))
}

/// The 403 answer unless the actor may read record `id`: officers any, the export role approved cases only
/// (the ones the export API hands it, with their pictures).
async fn may_read_case(state: &AppState, actor: &Actor, id: EvidenceId) -> Option<Response> {
    if actor.role.reviews() {
        return None;
    }
    if actor.role.exports() {
        match state.store.get(id).await {
            Ok(Some(entry)) if entry.review_status == "approved" => return None,
            Ok(_) => {}
            Err(e) => return Some(store_error(e)),
        }
    }
    Some(error(StatusCode::FORBIDDEN, format!("the {} role may read approved cases only", actor.role.as_str())))
}

/// GET /api/v1/evidence?limit=N&status=&camera=&kind=&from=&to=: newest first.
pub async fn list(State(state): State<AppState>, actor: Actor, Query(q): Query<ListQuery>) -> Response {
    if let Some(refused) = may_list(&actor) {
        return refused;
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    match state.store.queue(&q.filter, limit).await {
        Ok(entries) => Json(entries).into_response(),
        Err(e) => store_error(e),
    }
}

pub async fn show(State(state): State<AppState>, actor: Actor, Path(raw): Path<String>) -> Response {
    let Ok(id) = raw.parse::<EvidenceId>() else { return bad_id(&raw) };
    if let Some(refused) = may_read_case(&state, &actor, id).await {
        return refused;
    }
    match state.store.get(id).await {
        Ok(Some(entry)) => Json(entry).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no evidence {id}")),
        Err(e) => store_error(e),
    }
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
async fn media(state: &AppState, actor: &Actor, raw: &str, kind: MediaKind<'_>) -> Response {
    let Ok(id) = raw.parse::<EvidenceId>() else { return bad_id(raw) };
    if let Some(refused) = may_read_case(state, actor, id).await {
        return refused;
    }
    let (read, content_type, name) = match kind {
        MediaKind::Overview => (state.store.overview(id).await, "image/jpeg", "overview".to_string()),
        MediaKind::Clip => (state.store.clip(id).await, "video/mp4", "clip".to_string()),
        MediaKind::PlateCrop(sha) => {
            (state.store.plate_crop(id, sha).await, "image/jpeg", format!("plate picture {sha:?}"))
        }
    };
    match read {
        Ok(Some(bytes)) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no {name} for {id}")),
        Err(e) => store_error(e),
    }
}

pub async fn clip(State(state): State<AppState>, actor: Actor, Path(raw): Path<String>) -> Response {
    media(&state, &actor, &raw, MediaKind::Clip).await
}

pub async fn overview(State(state): State<AppState>, actor: Actor, Path(raw): Path<String>) -> Response {
    media(&state, &actor, &raw, MediaKind::Overview).await
}

/// GET /api/v1/evidence/{id}/plates/{sha256}: one of the plate pictures the record's votes name (JPEG).
pub async fn plate_crop(
    State(state): State<AppState>,
    actor: Actor,
    Path((raw, sha)): Path<(String, String)>,
) -> Response {
    media(&state, &actor, &raw, MediaKind::PlateCrop(&sha)).await
}

pub async fn stats(State(state): State<AppState>) -> Response {
    match state.store.stats().await {
        Ok(stats) => Json(stats).into_response(),
        Err(e) => store_error(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct ChunkQuery {
    offset: u64,
}

/// GET /api/v1/clips/{sha}: how much of the clip is held.
pub async fn clip_status(State(state): State<AppState>, device: DeviceAuth, Path(sha): Path<String>) -> Response {
    match state.store.clips.status(&sha, device.owner()).await {
        Ok(status) => Json(status).into_response(),
        Err(e) => clip_error(e),
    }
}

/// PUT /api/v1/clips/{sha}?offset=N: appends a chunk at N (the length held; 0 starts afresh). 409 with the
/// held length when N is not it.
pub async fn clip_chunk(
    State(state): State<AppState>,
    device: DeviceAuth,
    Path(sha): Path<String>,
    Query(q): Query<ChunkQuery>,
    body: Bytes,
) -> Response {
    if body.is_empty() {
        return error(StatusCode::BAD_REQUEST, "empty chunk");
    }
    match state.store.clips.append(&sha, device.owner(), q.offset, &body).await {
        Ok(status) => Json(status).into_response(),
        Err(ClipError::WrongOffset { held, .. }) => {
            (StatusCode::CONFLICT, Json(central_protocol::ClipStatus { received: held, complete: false }))
                .into_response()
        }
        Err(e) => clip_error(e),
    }
}

/// POST /api/v1/heartbeat: 204; the device's latest state is kept.
pub async fn heartbeat(
    State(state): State<AppState>,
    device: DeviceAuth,
    body: Result<Json<Heartbeat>, JsonRejection>,
) -> Response {
    let Json(heartbeat) = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    if let Err(refused) = device.check(&state, heartbeat.device_id.as_str()).await {
        return refused;
    }
    if let Err(e) = heartbeat.check_fields(chrono::Utc::now()) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, format!("heartbeat field {e}"));
    }
    match state.store.heartbeat(&heartbeat).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => store_error(e),
    }
}

/// GET /api/v1/devices: every device's latest heartbeat.
pub async fn devices(State(state): State<AppState>, actor: Actor) -> Response {
    if !actor.role.reviews() {
        return error(StatusCode::FORBIDDEN, format!("the {} role may not read devices", actor.role.as_str()));
    }
    match state.store.devices().await {
        Ok(devices) => Json(devices).into_response(),
        Err(e) => store_error(e),
    }
}
