//! Who is asking: officers log in (Argon2id passwords, a session cookie), systems such as the fines system
//! present an API token (`Authorization: Bearer`). Only SHA-256 digests of sessions and tokens are stored.

pub mod admin;
pub mod csrf;
pub mod pages;

use crate::store::{CentralStore, StoreError};
use crate::web::{request, url_encode, ApiError, AppState, Viewer};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use central_protocol::sha256_hex;
use chrono::{Duration, Utc};
use sqlx::Row;
use std::net::IpAddr;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "te_session";
/// A session lasts one working shift.
pub(crate) const SESSION_HOURS: i64 = 12;
/// Failed logins in a row, from one address, after which that address may not log in under that account
/// name for [`LOCKOUT_MINUTES`]. Per address, so that one person typing wrong passwords cannot lock an officer
/// out of their own desk.
pub const MAX_FAILED_LOGINS: i64 = 5;
/// Failed logins in a row from all addresses together after which the name is refused everywhere: a ceiling on
/// guessing spread over many addresses.
pub const MAX_FAILED_LOGINS_PER_NAME: i64 = 50;
pub const LOCKOUT_MINUTES: i64 = 15;
const LOCKOUT: std::time::Duration = std::time::Duration::from_secs(LOCKOUT_MINUTES as u64 * 60);
/// Login attempts one address may make per minute, whatever the names; past it attempts are refused before
/// any password or database work, and one audit entry says so (a flood must not flood the audit log).
pub const MAX_LOGINS_PER_MINUTE: u32 = 30;

/// An Argon2id hash of a random password, made once: what a login under an unknown name is checked against.
fn unknown_user_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let random = secret().unwrap_or_default();
        Argon2::default().hash_password(random.as_bytes(), &salt).map(|h| h.to_string()).unwrap_or_default()
    })
}

/// What a person or system may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reviews pending evidence: approve, reject with a reason, correct the plate.
    Reviewer,
    /// A reviewer who may also reopen a decided case and read the audit log.
    Supervisor,
    /// A supervisor who also manages accounts.
    Admin,
    /// A system (the fines system): reads approved cases through the export API, nothing else.
    Export,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "reviewer" => Some(Role::Reviewer),
            "supervisor" => Some(Role::Supervisor),
            "admin" => Some(Role::Admin),
            "export" => Some(Role::Export),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reviewer => "reviewer",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
            Role::Export => "export",
        }
    }

    /// Sees evidence (pictures, plates) and decides pending cases.
    pub fn reviews(self) -> bool {
        matches!(self, Role::Reviewer | Role::Supervisor | Role::Admin)
    }

    /// Reopens decided cases and reads the whole audit log.
    pub fn supervises(self) -> bool {
        matches!(self, Role::Supervisor | Role::Admin)
    }

    /// Reads approved cases for fining.
    pub fn exports(self) -> bool {
        self != Role::Reviewer
    }
}

/// The person or system behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub role: Role,
}

impl Actor {
    /// The operator at the server's command line (`central-sync user add`, `device register`...).
    pub fn cli() -> Self {
        Actor { name: "cli".into(), role: Role::Admin }
    }

    /// The actor as the page frame shows them.
    pub fn viewer(&self) -> Viewer<'_> {
        Viewer {
            name: &self.name,
            role: self.role.as_str(),
            audits: self.role.supervises(),
            administers: self.role == Role::Admin,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("username must be 3-32 characters of a-z, 0-9, '.', '_' or '-'")]
    BadUsername,
    #[error("password must be at least 10 characters")]
    WeakPassword,
    #[error("unknown role {0:?}: reviewer, supervisor, admin (or export for API tokens)")]
    BadRole(String),
    #[error("{0} already exists")]
    Exists(String),
    #[error("no account {0}")]
    Unknown(String),
    #[error("an admin cannot disable their own account")]
    SelfLockout,
    #[error("password hashing: {0}")]
    Hash(String),
    #[error("too many failed logins for this account; try again in {minutes} minutes")]
    Throttled { minutes: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn valid_name(name: &str) -> bool {
    (3..=32).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

/// A fresh 256-bit secret, hex: sessions, API tokens and device tokens.
pub(crate) fn new_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

fn secret() -> Result<String, AccountError> {
    new_secret().map_err(|e| AccountError::Hash(e.to_string()))
}

impl CentralStore {
    /// Adds an officer's account; `by` is who adds it (audited).
    pub async fn add_user(&self, username: &str, password: &str, role: &str, by: &Actor) -> Result<(), AccountError> {
        if !valid_name(username) {
            return Err(AccountError::BadUsername);
        }
        let role =
            Role::parse(role).filter(|r| *r != Role::Export).ok_or_else(|| AccountError::BadRole(role.into()))?;
        let hash = hash_password(password).await?;
        let inserted = sqlx::query(
            "INSERT INTO users (username, password_hash, role, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(username)
        .bind(hash)
        .bind(role.as_str())
        .bind(Utc::now().to_rfc3339())
        .execute(self.db())
        .await
        .map_err(StoreError::from)?
        .rows_affected();
        if inserted == 0 {
            return Err(AccountError::Exists(format!("user {username}")));
        }
        let detail = serde_json::json!({ "username": username, "role": role });
        self.audit(by, "user_added", None, detail).await?;
        Ok(())
    }

    /// Every account, by name.
    pub async fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        let rows: Vec<UserColumns> =
            sqlx::query_as("SELECT username, role, created_at, disabled FROM users ORDER BY username")
                .fetch_all(self.db())
                .await?;
        Ok(rows.into_iter().map(UserRow::from).collect())
    }

    /// Disables (or enables again) an account; a disabled account's sessions end at once.
    pub async fn set_disabled(&self, username: &str, disabled: bool, by: &Actor) -> Result<(), AccountError> {
        let update = sqlx::query("UPDATE users SET disabled = $1 WHERE username = $2").bind(i64::from(disabled));
        self.update_account(update, username).await?;
        if disabled {
            self.end_sessions(username).await?;
        }
        let action = if disabled { "user_disabled" } else { "user_enabled" };
        self.audit(by, action, None, serde_json::json!({ "username": username })).await?;
        Ok(())
    }

    /// Sets a new password; the account's sessions end.
    pub async fn set_password(&self, username: &str, password: &str, by: &Actor) -> Result<(), AccountError> {
        let hash = hash_password(password).await?;
        let update = sqlx::query("UPDATE users SET password_hash = $1 WHERE username = $2").bind(hash);
        self.update_account(update, username).await?;
        self.end_sessions(username).await?;
        self.audit(by, "password_reset", None, serde_json::json!({ "username": username })).await?;
        Ok(())
    }

    /// Runs `update`, an `UPDATE users ... WHERE username = $N` with every bind but the last, for `username`.
    async fn update_account<'q>(
        &self,
        update: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        username: &'q str,
    ) -> Result<(), AccountError> {
        let changed = update.bind(username).execute(self.db()).await.map_err(StoreError::from)?.rows_affected();
        if changed == 0 {
            return Err(AccountError::Unknown(username.into()));
        }
        Ok(())
    }

    async fn end_sessions(&self, username: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE username = $1").bind(username).execute(self.db()).await?;
        Ok(())
    }

    /// Makes an API token for a system; the token is shown once and only its digest is kept.
    pub async fn create_token(&self, name: &str, role: &str) -> Result<String, AccountError> {
        if !valid_name(name) {
            return Err(AccountError::BadUsername);
        }
        let role = Role::parse(role).ok_or_else(|| AccountError::BadRole(role.into()))?;
        let token = secret()?;
        let inserted = sqlx::query(
            "INSERT INTO api_tokens (token_sha256, name, role, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(sha256_hex(token.as_bytes()))
        .bind(name)
        .bind(role.as_str())
        .bind(Utc::now().to_rfc3339())
        .execute(self.db())
        .await
        .map_err(StoreError::from)?
        .rows_affected();
        if inserted == 0 {
            return Err(AccountError::Exists(format!("token {name}")));
        }
        self.audit(&Actor::cli(), "token_created", None, serde_json::json!({ "name": name, "role": role })).await?;
        Ok(token)
    }

    /// Checks a password; on success opens a session and returns its secret. Every attempt is audited.
    /// `from`: the client's address, when known (behind a reverse proxy it is the proxy's, and the lockout
    /// becomes per account name).
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        from: Option<IpAddr>,
    ) -> Result<Option<(String, Actor)>, AccountError> {
        // The name as typed may be anything: keep it short and printable in the log.
        let shown: String = username.chars().filter(|c| !c.is_control()).take(64).collect();
        // The address goes into the audit entry, whose exact text is what the per-address count matches.
        let origin = match from {
            Some(ip) => serde_json::json!({ "from": ip.to_string() }),
            None => serde_json::json!({}),
        };
        // Guessing is slowed: after MAX_FAILED_LOGINS failures in a row from this address (or
        // MAX_FAILED_LOGINS_PER_NAME from anywhere) the name is refused, without checking the password, until
        // LOCKOUT_MINUTES after the last failure. The refusals are audited too.
        if let Some(ip) = from {
            if let Some(first) = self.login_pacing.over_rate(ip, MAX_LOGINS_PER_MINUTE) {
                if first {
                    let detail = serde_json::json!({ "from": ip.to_string(), "per_minute": MAX_LOGINS_PER_MINUTE });
                    let guard = Actor { name: "login-guard".into(), role: Role::Reviewer };
                    self.audit(&guard, "login_rate_limited", None, detail).await?;
                }
                return Err(AccountError::Throttled { minutes: 1 });
            }
        }
        let (from_here, from_anywhere) = self.failures_in_a_row(&shown, &origin.to_string()).await?;
        if from_here >= MAX_FAILED_LOGINS || from_anywhere >= MAX_FAILED_LOGINS_PER_NAME {
            if self.login_pacing.audit_once(&shown, &origin.to_string(), LOCKOUT) {
                let actor = Actor { name: shown, role: Role::Reviewer };
                self.audit(&actor, "login_throttled", None, origin).await?;
            }
            return Err(AccountError::Throttled { minutes: LOCKOUT_MINUTES });
        }
        let row = sqlx::query("SELECT password_hash, role FROM users WHERE username = $1 AND disabled = 0")
            .bind(username)
            .fetch_optional(self.db())
            .await
            .map_err(StoreError::from)?;
        let account = match &row {
            Some(row) => Some((row.try_get::<String, _>("password_hash").map_err(StoreError::from)?, {
                let role: String = row.try_get("role").map_err(StoreError::from)?;
                Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?
            })),
            None => None,
        };
        let password = password.to_string();
        let stored = account.as_ref().map(|(hash, _)| hash.clone());
        let matches = tokio::task::spawn_blocking(move || match stored {
            Some(hash) => PasswordHash::new(&hash)
                .is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok()),
            // An unknown name costs the same hash as a known one: the answer's timing does not tell
            // which names exist.
            None => {
                let _ = PasswordHash::new(unknown_user_hash())
                    .map(|h| Argon2::default().verify_password(password.as_bytes(), &h));
                false
            }
        })
        .await
        .map_err(|e| AccountError::Hash(e.to_string()))?;
        let Some((_, role)) = account.filter(|_| matches) else {
            let actor = Actor { name: shown, role: Role::Reviewer };
            self.audit(&actor, "login_failed", None, origin).await?;
            return Ok(None);
        };
        let token = secret()?;
        let now = Utc::now();
        sqlx::query("INSERT INTO sessions (token_sha256, username, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(sha256_hex(token.as_bytes()))
            .bind(username)
            .bind(now.to_rfc3339())
            .bind((now + Duration::hours(SESSION_HOURS)).to_rfc3339())
            .execute(self.db())
            .await
            .map_err(StoreError::from)?;
        let actor = Actor { name: shown, role };
        self.audit(&actor, "login", None, serde_json::json!({})).await?;
        Ok(Some((token, actor)))
    }

    /// Failed logins under `name` since its last successful one, within the last [`LOCKOUT_MINUTES`]: (those
    /// whose audit detail is `origin`, all of them).
    async fn failures_in_a_row(&self, name: &str, origin: &str) -> Result<(i64, i64), StoreError> {
        let since = (Utc::now() - Duration::minutes(LOCKOUT_MINUTES)).to_rfc3339();
        let row = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN detail = $1 THEN 1 ELSE 0 END), 0) AS here, COUNT(*) AS anywhere \
             FROM audit_log WHERE actor = $2 AND action = 'login_failed' AND at > $3 \
             AND seq > COALESCE((SELECT MAX(seq) FROM audit_log WHERE actor = $4 AND action = 'login'), 0)",
        )
        .bind(origin)
        .bind(name)
        .bind(since)
        .bind(name)
        .fetch_one(self.db())
        .await?;
        Ok((row.try_get("here")?, row.try_get("anywhere")?))
    }

    pub async fn logout(&self, token: &str, actor: &Actor) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_sha256 = $1")
            .bind(sha256_hex(token.as_bytes()))
            .execute(self.db())
            .await?;
        self.audit(actor, "logout", None, serde_json::json!({})).await
    }

    /// The officer behind a session cookie, or the system behind a token; `None` when neither is valid.
    pub async fn actor(&self, session: Option<&str>, bearer: Option<&str>) -> Result<Option<Actor>, StoreError> {
        if let Some(token) = session {
            let row = sqlx::query(
                "SELECT u.username, u.role FROM sessions s JOIN users u ON u.username = s.username \
                 WHERE s.token_sha256 = $1 AND s.expires_at > $2 AND u.disabled = 0",
            )
            .bind(sha256_hex(token.as_bytes()))
            .bind(Utc::now().to_rfc3339())
            .fetch_optional(self.db())
            .await?;
            if let Some(row) = row {
                return actor_from(row.try_get("username")?, row.try_get("role")?).map(Some);
            }
        }
        if let Some(token) = bearer {
            let row = sqlx::query("SELECT name, role FROM api_tokens WHERE token_sha256 = $1")
                .bind(sha256_hex(token.as_bytes()))
                .fetch_optional(self.db())
                .await?;
            if let Some(row) = row {
                return actor_from(row.try_get("name")?, row.try_get("role")?).map(Some);
            }
        }
        Ok(None)
    }
}

/// One account, as the admin page lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserRow {
    pub username: String,
    pub role: String,
    pub created_at: String,
    pub disabled: bool,
}

/// A `users` row as stored (`disabled` is an integer in both databases).
#[derive(sqlx::FromRow)]
struct UserColumns {
    username: String,
    role: String,
    created_at: String,
    disabled: i64,
}

impl From<UserColumns> for UserRow {
    fn from(c: UserColumns) -> Self {
        UserRow { username: c.username, role: c.role, created_at: c.created_at, disabled: c.disabled != 0 }
    }
}

/// Argon2id of a password of at least 10 characters.
async fn hash_password(password: &str) -> Result<String, AccountError> {
    if password.chars().count() < 10 {
        return Err(AccountError::WeakPassword);
    }
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
    })
    .await
    .map_err(|e| AccountError::Hash(e.to_string()))?
    .map_err(|e| AccountError::Hash(e.to_string()))
}

fn actor_from(name: String, role: String) -> Result<Actor, StoreError> {
    let role = Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?;
    Ok(Actor { name, role })
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = Response;

    /// Pages send a person without a session to the login page; the API answers 401.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let session = request::cookie(&parts.headers, SESSION_COOKIE);
        let found = state.store.actor(session.as_deref(), request::bearer(&parts.headers)).await;
        match found {
            Ok(Some(actor)) => Ok(actor),
            Ok(None) if parts.uri.path().starts_with("/api/") => {
                Err(ApiError::unauthorized("log in or send Authorization: Bearer <token>").into_response())
            }
            Ok(None) => {
                let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
                Err(Redirect::to(&format!("/login?next={}", url_encode(next))).into_response())
            }
            Err(e) => {
                tracing::error!(error = %e, "session lookup");
                Err((StatusCode::INTERNAL_SERVER_ERROR, "storage failure").into_response())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_nest_and_export_sees_no_queue() {
        assert!(Role::Reviewer.reviews() && !Role::Reviewer.supervises() && !Role::Reviewer.exports());
        assert!(Role::Supervisor.supervises() && Role::Admin.supervises());
        assert!(Role::Export.exports() && !Role::Export.reviews());
        assert_eq!(Role::parse("admin"), Some(Role::Admin));
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn names_are_short_and_plain() {
        assert!(valid_name("nguyen.van-a_1"));
        assert!(!valid_name("ab") && !valid_name("Admin") && !valid_name("a b c") && !valid_name("../etc"));
    }
}
