//! The evidence API: upload (idempotent), list, show, media, totals. Errors are JSON `{"error": ...}`.

use crate::{AppState, StoreError};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use central_protocol::{ApiError, EvidenceUpload, IngestStatus};
use serde::Deserialize;
use te_types::EvidenceId;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(ApiError { error: message.into() })).into_response()
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::Conflict(_) => error(StatusCode::CONFLICT, e.to_string()),
        StoreError::WrongDeviceKey { .. } => error(StatusCode::FORBIDDEN, e.to_string()),
        other => {
            tracing::error!(error = %other, "storage failure");
            error(StatusCode::INTERNAL_SERVER_ERROR, "storage failure; retry later")
        }
    }
}

fn bad_id(raw: &str) -> Response {
    error(StatusCode::BAD_REQUEST, format!("{raw:?} is not an evidence id (ULID)"))
}

/// POST /api/v1/evidence: 201 with a receipt when stored now, 200 with the first receipt when already stored.
pub async fn upload(State(state): State<AppState>, body: Result<Json<EvidenceUpload>, JsonRejection>) -> Response {
    let Json(upload) = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    let (jpeg, clip) = match (upload.verified_overview(), upload.verified_clip()) {
        (Ok(jpeg), Ok(clip)) => (jpeg, clip),
        (Err(e), _) | (_, Err(e)) => return error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    };
    match state.store.ingest(&upload.record, &upload.seal, &jpeg, clip.as_deref()).await {
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
}

/// GET /api/v1/evidence?limit=N: newest first.
pub async fn list(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Response {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    match state.store.queue(limit).await {
        Ok(entries) => Json(entries).into_response(),
        Err(e) => store_error(e),
    }
}

pub async fn show(State(state): State<AppState>, Path(raw): Path<String>) -> Response {
    let Ok(id) = raw.parse::<EvidenceId>() else { return bad_id(&raw) };
    match state.store.get(id).await {
        Ok(Some(entry)) => Json(entry).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no evidence {id}")),
        Err(e) => store_error(e),
    }
}

/// One media file of a record, by kind.
#[derive(Debug, Clone, Copy)]
enum MediaKind {
    Overview,
    Clip,
}

fn media(state: &AppState, raw: &str, kind: MediaKind) -> Response {
    let Ok(id) = raw.parse::<EvidenceId>() else { return bad_id(raw) };
    let (read, content_type, name) = match kind {
        MediaKind::Overview => (state.store.overview(id), "image/jpeg", "overview"),
        MediaKind::Clip => (state.store.clip(id), "video/mp4", "clip"),
    };
    match read {
        Ok(Some(bytes)) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no {name} for {id}")),
        Err(e) => store_error(e),
    }
}

pub async fn clip(State(state): State<AppState>, Path(raw): Path<String>) -> Response {
    media(&state, &raw, MediaKind::Clip)
}

pub async fn overview(State(state): State<AppState>, Path(raw): Path<String>) -> Response {
    media(&state, &raw, MediaKind::Overview)
}

pub async fn stats(State(state): State<AppState>) -> Response {
    match state.store.stats().await {
        Ok(stats) => Json(stats).into_response(),
        Err(e) => store_error(e),
    }
}
