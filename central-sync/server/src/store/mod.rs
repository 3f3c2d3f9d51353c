//! Storage: metadata in SQL (SQLite embedded by default), media as files named by evidence id.

pub mod clips;
pub mod media;
pub mod pacing;

use central_protocol::EvidenceRecord;
use chrono::{DateTime, Utc};
pub use clips::{ClipError, ClipStore};
use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use sqlx::{Executor, Row};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use te_types::EvidenceId;

/// Which SQL database holds the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded, one file under the data folder: the demo and single-server installs.
    Sqlite,
    /// The province's data centre.
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("configuration: {0}")]
    Config(String),
    /// An S3 setting that does not parse, or a client that cannot be built.
    #[error("S3 {what}: {source}")]
    S3Setting {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The object store could not be reached.
    #[error("object store, {key}: {}", te_types::error_chain(source))]
    ObjectStoreRequest {
        key: String,
        #[source]
        source: reqwest::Error,
    },
    /// The object store answered, but not with what was asked.
    #[error("object store, {key}: {answer}")]
    ObjectStoreAnswer { key: String, answer: String },
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("media file {path}: {source}")]
    Media { path: PathBuf, source: std::io::Error },
    #[error("evidence {0} was already stored with different content")]
    Conflict(EvidenceId),
    #[error("device {device} seals with key {known}; this record is sealed by {found}")]
    WrongDeviceKey { device: String, known: String, found: String },
    #[error("stored record is unreadable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Clip(#[from] ClipError),
}

/// Whether `id` may name a device: 1-64 letters, digits, '.', '_' or '-' (it names folders and shows on pages).
pub fn valid_device_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The largest clip taken through the clips API, bytes (a minute of 1080p H.264 is about 30 MB).
pub const MAX_CLIP_BYTES: u64 = 256 << 20;

/// The events of the webhook outbox (column `event`): review writes them, export delivers them.
pub const APPROVED: &str = "case.approved";
pub const WITHDRAWN: &str = "case.withdrawn";

/// Where a case stands in review (column `review_status`; lowercase in JSON and SQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReviewStatus {
    /// Waiting for an officer (every record arrives so).
    Pending,
    /// Approved for fining (violations only).
    Approved,
    Rejected,
}

impl ReviewStatus {
    pub const ALL: [ReviewStatus; 3] = [ReviewStatus::Pending, ReviewStatus::Approved, ReviewStatus::Rejected];

    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Pending => "pending",
            ReviewStatus::Approved => "approved",
            ReviewStatus::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// The status as officers read it.
    pub fn vietnamese(self) -> &'static str {
        match self {
            ReviewStatus::Pending => "Chờ xét duyệt",
            ReviewStatus::Approved => "Đã duyệt",
            ReviewStatus::Rejected => "Đã loại",
        }
    }

    pub fn english(self) -> &'static str {
        match self {
            ReviewStatus::Pending => "Pending",
            ReviewStatus::Approved => "Approved",
            ReviewStatus::Rejected => "Rejected",
        }
    }
}

impl std::fmt::Display for ReviewStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the review queue: the record as sealed, and the review beside it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct QueueEntry {
    pub record: EvidenceRecord,
    pub received_at: DateTime<Utc>,
    pub review_status: ReviewStatus,
    /// The plate as a reviewer corrected it (the box's reading stays in `record`).
    pub corrected_plate: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub reject_reason: Option<String>,
}

impl QueueEntry {
    /// The plate the case goes by: the reviewer's correction, else the box's reading.
    pub fn plate(&self) -> Option<&str> {
        self.corrected_plate.as_deref().or(self.record.plate.as_ref().and_then(|p| p.text.as_deref()))
    }
}

/// Which part of the queue to show. Empty fields do not filter.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct QueueFilter {
    /// A camera id, exactly.
    pub camera: String,
    /// An event kind (`red_light`, `vehicle_detected`...).
    pub kind: String,
    /// pending, approved or rejected.
    pub status: String,
    /// Captured on or after this day (YYYY-MM-DD, Vietnam time).
    pub from: String,
    /// Captured on or before this day.
    pub to: String,
    /// Part of a plate, written any way (`51f`, `123.45`, `51F-123`): matches the plate the case goes by (the
    /// reviewer's correction, else the box's reading), ignoring case and punctuation.
    pub plate: String,
    /// `oldest` (capture time ascending: the nearest owner deadline first) or `newest`; empty: the caller's
    /// default (the queue page: oldest; the API: newest).
    pub order: String,
}

/// Which end of the queue comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueOrder {
    /// Captured longest ago first: the nearest owner-identification deadline (Circular 73/2024) first.
    Oldest,
    Newest,
}

impl QueueFilter {
    /// The order asked for, else `default`.
    pub fn order_or(&self, default: QueueOrder) -> QueueOrder {
        match self.order.trim() {
            "oldest" => QueueOrder::Oldest,
            "newest" => QueueOrder::Newest,
            _ => default,
        }
    }
}

/// Whether a stored record still proves what the box saw.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SealCheck {
    /// The signature verifies with the device's pinned key and the record hashes to what was signed.
    pub signature_ok: bool,
    /// The overview file on disk hashes to the record's `overview_sha256`.
    pub overview_ok: bool,
    /// The clip, when there is one, hashes to the record's `clip_sha256`.
    pub clip_ok: Option<bool>,
    /// Every plate picture the record's votes name is held and hashes to its name; `None` when it names none.
    pub plate_crops_ok: Option<bool>,
    pub public_key: String,
    pub detail: String,
}

#[derive(Debug)]
pub struct CentralStore {
    db: AnyPool,
    backend: Backend,
    pub(crate) media: media::MediaStore,
    /// Clips sent ahead of their records.
    pub clips: Arc<ClipStore>,
    /// Audit entries form a chain: one writer at a time.
    pub(crate) audit_lock: tokio::sync::Mutex<()>,
    /// The audit chain as far as it was verified in this process (last seq, its hash, entries): views check
    /// only what was appended since (rows are append-only; `audit verify` re-checks everything).
    pub(crate) audit_verified: std::sync::Mutex<Option<(i64, String, u64)>>,
    /// Login attempts per address and audited lockouts (the accounts feature sets the limits).
    pub(crate) login_pacing: pacing::Pacing,
    /// Clips whose hash was checked, and when (see `clip_checks_out`).
    pub(crate) clips_checked: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

/// How long a clip that hashed right is taken as right by the case view before it is read again.
pub(crate) const CLIP_RECHECK: std::time::Duration = std::time::Duration::from_secs(3600);

impl CentralStore {
    /// Opens (creating if needed) the embedded SQLite database and media folder under `data_dir` and applies
    /// migrations.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(None, data_dir).await
    }

    /// As [`Self::open_with`], with media in an S3-compatible bucket (created when missing) instead of
    /// `data_dir/media`.
    pub async fn open_with_s3(
        database_url: Option<&str>,
        data_dir: &Path,
        s3: &media::S3Settings,
    ) -> Result<Self, StoreError> {
        let media = media::MediaStore::s3(s3)?;
        media.ensure_bucket().await?;
        Self::open_on(database_url, data_dir, media).await
    }

    /// `database_url`: `postgres://...` for PostgreSQL (production), `None` for SQLite in `data_dir`. Media
    /// and clips are files under `data_dir` either way.
    pub async fn open_with(database_url: Option<&str>, data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_on(database_url, data_dir, media::MediaStore::local(data_dir.join("media"))?).await
    }

    /// The database and clip folder as [`Self::open_with`] says, with media kept in `media`.
    async fn open_on(
        database_url: Option<&str>,
        data_dir: &Path,
        media: media::MediaStore,
    ) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (url, backend) = match database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                (url.to_string(), Backend::Postgres)
            }
            Some(other) => {
                return Err(StoreError::Config(format!("database URL must be postgres://..., got {other:?}")))
            }
            None => (format!("sqlite://{}?mode=rwc", data_dir.join("central.db").display()), Backend::Sqlite),
        };
        let db = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 16 })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL for readers beside the writer; FULL: evidence is acknowledged to the box only
                        // after it is on disk.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&db).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&db).await?,
        }
        let clips = Arc::new(ClipStore::open(&data_dir.join("clips"), MAX_CLIP_BYTES)?);
        Ok(Self {
            db,
            backend,
            media,
            clips,
            audit_lock: tokio::sync::Mutex::new(()),
            audit_verified: Default::default(),
            login_pacing: Default::default(),
            clips_checked: Default::default(),
        })
    }

    pub(crate) fn db(&self) -> &AnyPool {
        &self.db
    }

    /// A transaction that reads and then writes. SQLite's plain `BEGIN` starts as a reader, and the first write
    /// fails at once with "database is locked" if another connection committed since that read (the busy
    /// timeout does not apply to that upgrade); `BEGIN IMMEDIATE` takes the write lock up front and waits for it.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.db.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.db.begin().await?,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }
}

pub(crate) fn review_status(s: &str) -> Result<ReviewStatus, StoreError> {
    ReviewStatus::parse(s).ok_or_else(|| StoreError::Corrupt(format!("review status {s:?}")))
}

pub(crate) fn parse_time(s: &str) -> Result<DateTime<Utc>, StoreError> {
    Ok(DateTime::parse_from_rfc3339(s).map_err(|e| StoreError::Corrupt(e.to_string()))?.with_timezone(&Utc))
}

/// Vietnam's offset from UTC (no daylight saving).
pub const VIETNAM_OFFSET_S: i32 = 7 * 3600;

/// Vietnam's time zone, in which officers, the fines system and the statistics read times.
pub fn vietnam() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(VIETNAM_OFFSET_S).expect("UTC+7 is a valid offset")
}

/// Midnight in Vietnam of a `YYYY-MM-DD` day, as RFC 3339 UTC; `None` for anything else.
pub(crate) fn day_start_utc(day: &str) -> Option<String> {
    let date = chrono::NaiveDate::parse_from_str(day.trim(), "%Y-%m-%d").ok()?;
    let local = date.and_hms_opt(0, 0, 0)?.and_local_timezone(vietnam()).single()?;
    Some(local.with_timezone(&Utc).to_rfc3339())
}

pub(crate) fn next_day(rfc3339: &str) -> Option<String> {
    Some((parse_time(rfc3339).ok()? + chrono::Duration::days(1)).to_rfc3339())
}

pub(crate) const ENTRY_COLUMNS: &str =
    "evidence_id, record_json, received_at, review_status, corrected_plate, decided_by, decided_at, reject_reason";

/// The entries of `rows` that can be read; one that cannot (stored before ingest checked every field, or
/// damaged) is logged and left out, so that it cannot take the whole queue down with it.
pub(crate) fn readable_entries(rows: &[sqlx::any::AnyRow]) -> Vec<QueueEntry> {
    rows.iter()
        .filter_map(|row| match entry_from_row(row) {
            Ok(entry) => Some(entry),
            Err(e) => {
                let id: Option<String> = row.try_get("evidence_id").ok();
                tracing::error!(evidence = ?id, error = %e, "stored record unreadable; left out of the list");
                None
            }
        })
        .collect()
}

pub(crate) fn entry_from_row(row: &sqlx::any::AnyRow) -> Result<QueueEntry, StoreError> {
    let json: String = row.try_get("record_json")?;
    let received: String = row.try_get("received_at")?;
    let decided: Option<String> = row.try_get("decided_at")?;
    Ok(QueueEntry {
        record: serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        received_at: parse_time(&received)?,
        review_status: review_status(&row.try_get::<String, _>("review_status")?)?,
        corrected_plate: row.try_get("corrected_plate")?,
        decided_by: row.try_get("decided_by")?,
        decided_at: decided.as_deref().map(parse_time).transpose()?,
        reject_reason: row.try_get("reject_reason")?,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_vietnamese_day_starts_at_17_utc_the_day_before() {
        assert_eq!(super::day_start_utc("2026-11-24").as_deref(), Some("2026-11-23T17:00:00+00:00"));
        assert_eq!(super::day_start_utc("24/11/2026"), None);
    }
}
