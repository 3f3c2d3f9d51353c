//! Device registration and the device side of authentication: a box is registered with its public key (the
//! key its records are sealed with, `edge-agent evidence key`) and gets a token it sends with every upload,
//! clip and heartbeat. With open enrolment (demo, tests) an unregistered box may send without a token and its
//! key is pinned on its first record; a registered box always needs its token.

use crate::{AppState, CentralStore, StoreError};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use central_protocol::sha256_hex;
use chrono::Utc;
use sqlx::Row;

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("device id must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' or '-'")]
    BadDeviceId,
    #[error("public key must be 64 hex characters (an Ed25519 key, as `edge-agent evidence key` prints it)")]
    BadKey,
    #[error("device {0} is already registered")]
    Exists(String),
    #[error(
        "device {device} already sends records sealed by key {pinned} (pinned under open enrolment); register \
         that key, or, if that was not the real box, register again with --replace-pinned-key"
    )]
    OtherKeyPinned { device: String, pinned: String },
    #[error("token: {0}")]
    Token(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(crate) fn valid_device_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl CentralStore {
    /// Registers a device with its sealing key; returns its token (shown once, only its digest is kept).
    pub async fn register_device(&self, device_id: &str, public_key: &str) -> Result<String, RegisterError> {
        self.register_device_with(device_id, public_key, false).await
    }

    /// As [`register_device`](Self::register_device); with `replace_pinned_key`, a key pinned under open
    /// enrolment by a box that was never registered gives way to this one (someone took the name first: key
    /// squatting). The replacement is audited; the squatter's records stay, flagged as sealed by a key that is
    /// not the device's.
    pub async fn register_device_with(
        &self,
        device_id: &str,
        public_key: &str,
        replace_pinned_key: bool,
    ) -> Result<String, RegisterError> {
        if !valid_device_id(device_id) {
            return Err(RegisterError::BadDeviceId);
        }
        let key = public_key.trim().to_ascii_lowercase();
        let bytes: [u8; 32] = hex::decode(&key).ok().and_then(|b| b.try_into().ok()).ok_or(RegisterError::BadKey)?;
        central_protocol::VerifyingKey::from_bytes(&bytes).map_err(|_| RegisterError::BadKey)?;
        let token = crate::auth::new_secret().map_err(|e| RegisterError::Token(e.to_string()))?;
        let now = Utc::now().to_rfc3339();
        let mut tx = self.db().begin().await.map_err(StoreError::from)?;
        let pinned: Option<String> = sqlx::query("SELECT public_key FROM device_keys WHERE device_id = $1")
            .bind(device_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from)?
            .map(|r| r.try_get("public_key"))
            .transpose()
            .map_err(StoreError::from)?;
        let mut replaced = None;
        match pinned {
            Some(pinned) if pinned != key && replace_pinned_key => {
                sqlx::query("UPDATE device_keys SET public_key = $1 WHERE device_id = $2")
                    .bind(&key)
                    .bind(device_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from)?;
                replaced = Some(pinned);
            }
            Some(pinned) if pinned != key => {
                return Err(RegisterError::OtherKeyPinned { device: device_id.into(), pinned });
            }
            Some(_) => {}
            None => {
                sqlx::query("INSERT INTO device_keys (device_id, public_key, first_seen) VALUES ($1, $2, $3)")
                    .bind(device_id)
                    .bind(&key)
                    .bind(&now)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from)?;
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO device_tokens (token_sha256, device_id, registered_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(sha256_hex(token.as_bytes()))
        .bind(device_id)
        .bind(&now)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?
        .rows_affected();
        if inserted == 0 {
            return Err(RegisterError::Exists(device_id.into()));
        }
        tx.commit().await.map_err(StoreError::from)?;
        if let Some(old) = replaced {
            tracing::warn!(device = device_id, old_key = %old, "pinned key replaced at registration");
            let detail = serde_json::json!({ "device": device_id, "replaced_key": old, "public_key": key });
            self.audit(&crate::Actor::cli(), "device_key_replaced", None, detail).await?;
        }
        let detail = serde_json::json!({ "device": device_id, "public_key": key });
        self.audit(&crate::Actor::cli(), "device_registered", None, detail).await?;
        Ok(token)
    }

    async fn device_for_token(&self, token: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT device_id FROM device_tokens WHERE token_sha256 = $1")
            .bind(sha256_hex(token.as_bytes()))
            .fetch_optional(self.db())
            .await?;
        Ok(row.map(|r| r.try_get("device_id")).transpose()?)
    }

    async fn is_registered(&self, device_id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM device_tokens WHERE device_id = $1")
            .bind(device_id)
            .fetch_optional(self.db())
            .await?;
        Ok(row.is_some())
    }
}

/// The device a request comes from: `Some(id)` from a valid token, `None` for an unregistered box under open
/// enrolment. Anything else is refused with 401 before the body is read.
#[derive(Debug, Clone)]
pub struct DeviceAuth(pub Option<String>);

impl DeviceAuth {
    /// Whose partial clips this request works on.
    pub fn owner(&self) -> crate::clips::Owner<'_> {
        match &self.0 {
            Some(device) => crate::clips::Owner::Device(device),
            None => crate::clips::Owner::Open,
        }
    }

    /// Checks that a record or heartbeat names the device the request comes from.
    pub async fn check(&self, state: &AppState, device_id: &str) -> Result<(), Response> {
        match &self.0 {
            Some(device) if device == device_id => Ok(()),
            Some(device) => {
                Err(refuse(StatusCode::FORBIDDEN, format!("this token belongs to device {device}, not {device_id}")))
            }
            None => match state.store.is_registered(device_id).await {
                Ok(false) => Ok(()),
                Ok(true) => Err(refuse(
                    StatusCode::UNAUTHORIZED,
                    format!("device {device_id} is registered: send its token (Authorization: Bearer)"),
                )),
                Err(e) => Err(internal(e)),
            },
        }
    }
}

fn refuse(status: StatusCode, message: String) -> Response {
    tracing::warn!(%status, %message, "device refused");
    crate::ingest::error(status, message)
}

fn internal(e: StoreError) -> Response {
    tracing::error!(error = %e, "device token lookup");
    crate::ingest::error(StatusCode::INTERNAL_SERVER_ERROR, "storage failure")
}

impl FromRequestParts<AppState> for DeviceAuth {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match crate::auth::bearer(parts) {
            Some(token) => match state.store.device_for_token(token).await {
                Ok(Some(device)) => Ok(DeviceAuth(Some(device))),
                Ok(None) => Err(refuse(StatusCode::UNAUTHORIZED, "unknown device token".into())),
                Err(e) => Err(internal(e)),
            },
            None if state.open_enrolment => Ok(DeviceAuth(None)),
            None => Err(refuse(
                StatusCode::UNAUTHORIZED,
                "no device token: register the device (`central-sync device register`) and set uplink.token_file"
                    .into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn device_ids_cannot_carry_paths_or_markup() {
        assert!(super::valid_device_id("demo-box-01"));
        assert!(!super::valid_device_id("../x") && !super::valid_device_id("") && !super::valid_device_id("<b>"));
    }
}
