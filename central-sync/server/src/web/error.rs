//! The API's one error answer, `{"error": ...}` with its status. Handlers return `Result<_, ApiError>` and use
//! `?`: storage and clip errors map to their status here, once.

use crate::store::{ClipError, StoreError};
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// A refused or failed API request.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// A failure of ours, logged with its cause; the client is told only to retry.
    pub fn internal(what: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "{what}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "storage failure; retry later")
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(central_protocol::ApiError { error: self.message })).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::new(rejection.status(), rejection.body_text())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(_) => {
                tracing::warn!(error = %e, "evidence refused");
                Self::new(StatusCode::CONFLICT, e.to_string())
            }
            StoreError::WrongDeviceKey { .. } => {
                tracing::warn!(error = %e, "evidence refused");
                Self::forbidden(e.to_string())
            }
            StoreError::Clip(e) => e.into(),
            other => Self::internal("storage failure", &other),
        }
    }
}

impl From<ClipError> for ApiError {
    fn from(e: ClipError) -> Self {
        let status = match e {
            ClipError::BadName(_) => StatusCode::BAD_REQUEST,
            ClipError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            // Retryable: the box's other clips finish (or are swept) and make room.
            ClipError::OverQuota { .. } => StatusCode::TOO_MANY_REQUESTS,
            // Retryable by the box: it asks the status and sends what is missing.
            ClipError::Incomplete { .. } => StatusCode::FAILED_DEPENDENCY,
            ClipError::WrongOffset { .. } => StatusCode::CONFLICT,
            ClipError::Io { .. } => return Self::internal("clip storage failure", &e),
        };
        Self::new(status, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storage_failure_tells_the_client_nothing_of_its_cause() {
        let e = ApiError::from(StoreError::Corrupt("row 7: secret detail".into()));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message.contains("secret"), "{}", e.message);
    }

    #[test]
    fn clip_errors_keep_their_retry_semantics() {
        assert_eq!(ApiError::from(ClipError::OverQuota { held: 1, quota: 1 }).status(), StatusCode::TOO_MANY_REQUESTS);
    }
}
