//! The devices API: heartbeats in, every device's latest state out.

use super::DeviceAuth;
use crate::accounts::Actor;
use crate::web::{ApiError, AppState};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use central_protocol::Heartbeat;

/// A box's state (queue, disk, clock, cameras); the latest per device is kept.
#[utoipa::path(post, path = central_protocol::HEARTBEAT_PATH, tag = "boxes", security(("deviceToken" = [])),
    request_body = Heartbeat,
    responses(
        (status = 204, description = "Kept"),
        (status = 400, description = "Malformed", body = central_protocol::ApiError),
        (status = 401, description = "No or unknown device token", body = central_protocol::ApiError),
        (status = 403, description = "Another device's token", body = central_protocol::ApiError),
        (status = 422, description = "A field out of range", body = central_protocol::ApiError),
    ))]
pub async fn heartbeat(
    State(state): State<AppState>,
    device: DeviceAuth,
    body: Result<Json<Heartbeat>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(heartbeat) = body?;
    device.check(&state, heartbeat.device_id.as_str()).await?;
    heartbeat.check_fields(chrono::Utc::now()).map_err(|e| ApiError::unprocessable(format!("heartbeat field {e}")))?;
    state.store.heartbeat(&heartbeat).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every device's latest heartbeat.
#[utoipa::path(get, path = "/api/v1/devices", tag = "review", security(("apiToken" = []), ("session" = [])),
    responses(
        (status = 200, description = "Devices", body = Vec<super::DeviceStatus>),
        (status = 403, description = "The role may not read devices", body = central_protocol::ApiError),
    ))]
pub async fn devices(State(state): State<AppState>, actor: Actor) -> Result<Json<Vec<super::DeviceStatus>>, ApiError> {
    if !actor.role.reviews() {
        return Err(ApiError::forbidden(format!("the {} role may not read devices", actor.role.as_str())));
    }
    Ok(Json(state.store.devices().await?))
}
