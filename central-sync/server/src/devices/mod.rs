//! Device registration and the device side of authentication: a box is registered with its public key (the
//! key its records are sealed with, `edge-agent evidence key`) and gets a token it sends with every upload,
//! clip and heartbeat. With open enrolment (demo, tests) an unregistered box may send without a token and its
//! key is pinned on its first record; a registered box always needs its token.

pub mod alerts;
pub mod api;
pub mod page;

use crate::accounts::{new_secret, Actor};
use crate::store::clips::Owner;
use crate::store::{parse_time, valid_device_id, CentralStore, StoreError};
use crate::web::{request, ApiError, AppState};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use central_protocol::{sha256_hex, Heartbeat};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// A device's latest heartbeat, as the central service received it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DeviceStatus {
    pub received_at: DateTime<Utc>,
    pub heartbeat: Heartbeat,
    /// No heartbeat for three of its intervals: the box, its link or its power is down. Its figures and camera
    /// states are the last it sent.
    pub offline: bool,
    /// Seconds since its last heartbeat arrived.
    pub silent_s: i64,
}

impl DeviceStatus {
    /// The status of a box whose latest heartbeat `heartbeat` arrived at `received_at`, seen at `now`.
    pub fn at(received_at: DateTime<Utc>, heartbeat: Heartbeat, now: DateTime<Utc>) -> Self {
        let interval = heartbeat.interval_s.unwrap_or(central_protocol::DEFAULT_HEARTBEAT_S);
        let silent_s = (now - received_at).num_seconds().max(0);
        let offline = silent_s > i64::from(interval) * i64::from(central_protocol::MISSED_HEARTBEATS_OFFLINE);
        Self { received_at, heartbeat, offline, silent_s }
    }
}

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
        let token = new_secret().map_err(|e| RegisterError::Token(e.to_string()))?;
        let now = Utc::now().to_rfc3339();
        let mut tx = self.begin_write().await?;
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
            self.audit(&Actor::cli(), "device_key_replaced", None, detail).await?;
        }
        let detail = serde_json::json!({ "device": device_id, "public_key": key });
        self.audit(&Actor::cli(), "device_registered", None, detail).await?;
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
    pub fn owner(&self) -> Owner<'_> {
        match &self.0 {
            Some(device) => Owner::Device(device),
            None => Owner::Open,
        }
    }

    /// Checks that a record or heartbeat names the device the request comes from.
    pub async fn check(&self, state: &AppState, device_id: &str) -> Result<(), ApiError> {
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

fn refuse(status: StatusCode, message: String) -> ApiError {
    tracing::warn!(%status, %message, "device refused");
    ApiError::new(status, message)
}

fn internal(e: StoreError) -> ApiError {
    ApiError::internal("device token lookup", &e)
}

impl FromRequestParts<AppState> for DeviceAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match request::bearer(&parts.headers) {
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

impl CentralStore {
    /// Keeps `heartbeat` as its device's latest.
    pub async fn heartbeat(&self, heartbeat: &Heartbeat) -> Result<(), StoreError> {
        let json = serde_json::to_string(heartbeat).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO device_heartbeats (device_id, received_at, heartbeat_json) VALUES ($1, $2, $3) \
             ON CONFLICT (device_id) DO UPDATE SET received_at = excluded.received_at, heartbeat_json = excluded.heartbeat_json",
        )
        .bind(heartbeat.device_id.as_str())
        .bind(Utc::now().to_rfc3339())
        .bind(json)
        .execute(self.db())
        .await?;
        Ok(())
    }

    /// Every device's latest heartbeat, by device id.
    pub async fn devices(&self) -> Result<Vec<DeviceStatus>, StoreError> {
        let now = Utc::now();
        let rows = sqlx::query("SELECT received_at, heartbeat_json FROM device_heartbeats ORDER BY device_id")
            .fetch_all(self.db())
            .await?;
        rows.iter()
            .map(|row| {
                let received: String = row.try_get("received_at")?;
                let json: String = row.try_get("heartbeat_json")?;
                let heartbeat = serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                Ok(DeviceStatus::at(parse_time(&received)?, heartbeat, now))
            })
            .collect()
    }
}

/// A heartbeat of box-1 with empty figures, for unit tests.
#[cfg(test)]
pub(crate) fn test_heartbeat(
    clock: Option<central_protocol::ClockCheck>,
    alarm: Option<&str>,
    interval_s: Option<u32>,
) -> Heartbeat {
    Heartbeat {
        device_id: te_types::DeviceId::new("box-1"),
        sent_at: Utc::now(),
        agent_version: "0.1.0".into(),
        pending: 0,
        delivered: 0,
        rejected: 0,
        disk_used_bytes: 0,
        disk_free_bytes: 0,
        clock,
        cameras: Vec::new(),
        alarm: alarm.map(str::to_string),
        interval_s,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn device_ids_cannot_carry_paths_or_markup() {
        assert!(crate::store::valid_device_id("demo-box-01"));
        assert!(
            !crate::store::valid_device_id("../x")
                && !crate::store::valid_device_id("")
                && !crate::store::valid_device_id("<b>")
        );
    }

    /// #24: a box silent for 1,106 s with a 30 s heartbeat showed no alarm. Three missed heartbeats of its own
    /// interval make it offline; a box that does not state its interval is taken at 30 s.
    #[test]
    fn a_box_is_offline_after_three_missed_heartbeats_of_its_own_interval() {
        let beat = |interval_s| super::test_heartbeat(None, None, interval_s);
        let now = chrono::Utc::now();
        let ago = |s| now - chrono::Duration::seconds(s);
        let status = |s, interval| super::DeviceStatus::at(ago(s), beat(interval), now);
        assert!(!status(89, Some(30)).offline && status(91, Some(30)).offline);
        assert!(!status(500, Some(300)).offline, "a box that beats every 5 min is not late at 500 s");
        assert!(status(1106, None).offline, "no interval stated: 30 s");
        assert_eq!(status(1106, None).silent_s, 1106);
    }
}
