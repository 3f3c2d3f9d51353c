//! The devices API: heartbeats in, every device's latest state out.

use super::DeviceAuth;
use crate::accounts::Actor;
use crate::web::{ApiError, AppState};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use central_protocol::Heartbeat;

/// POST /api/v1/heartbeat: 204; the device's latest state is kept.
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

/// GET /api/v1/devices: every device's latest heartbeat.
pub async fn devices(State(state): State<AppState>, actor: Actor) -> Result<Json<Vec<super::DeviceStatus>>, ApiError> {
    if !actor.role.reviews() {
        return Err(ApiError::forbidden(format!("the {} role may not read devices", actor.role.as_str())));
    }
    Ok(Json(state.store.devices().await?))
}
