//! Storage: metadata in SQL (SQLite embedded by default), media as files named by evidence id.

use crate::clips::{ClipError, ClipStore};
use central_protocol::{CentralStats, EvidenceRecord, Heartbeat, IngestReceipt, IngestStatus, Seal};
use chrono::{DateTime, Utc};
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
    #[error("object store, {key}: {message}")]
    ObjectStore { key: String, message: String },
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

/// The largest clip taken through the clips API, bytes (a minute of 1080p H.264 is about 30 MB).
pub const MAX_CLIP_BYTES: u64 = 256 << 20;

/// A device's latest heartbeat, as the central service received it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceStatus {
    pub received_at: DateTime<Utc>,
    pub heartbeat: Heartbeat,
}

/// One row of the review queue: the record as sealed, and the review beside it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueueEntry {
    pub record: EvidenceRecord,
    pub received_at: DateTime<Utc>,
    pub review_status: String,
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
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct QueueFilter {
    pub camera: String,
    /// An event kind (`red_light`, `vehicle_detected`...).
    pub kind: String,
    /// pending, approved or rejected.
    pub status: String,
    /// Captured on or after this day (YYYY-MM-DD, Vietnam time).
    pub from: String,
    /// Captured on or before this day.
    pub to: String,
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
    media: crate::media::MediaStore,
    /// Clips sent ahead of their records.
    pub clips: Arc<ClipStore>,
    /// Audit entries form a chain: one writer at a time.
    pub(crate) audit_lock: tokio::sync::Mutex<()>,
    /// The audit chain as far as it was verified in this process (last seq, its hash, entries): views check
    /// only what was appended since (rows are append-only; `audit verify` re-checks everything).
    pub(crate) audit_verified: std::sync::Mutex<Option<(i64, String, u64)>>,
    /// Login attempts per address and audited lockouts (see `auth`).
    pub(crate) login_pacing: crate::auth::LoginPacing,
    /// Clips whose hash was checked, and when (see `clip_checks_out`).
    clips_checked: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

/// How long a clip that hashed right is taken as right by the case view before it is read again.
const CLIP_RECHECK: std::time::Duration = std::time::Duration::from_secs(3600);

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
        s3: &crate::media::S3Settings,
    ) -> Result<Self, StoreError> {
        let media = crate::media::MediaStore::s3(s3)?;
        media.ensure_bucket().await?;
        Self::open_on(database_url, data_dir, media).await
    }

    /// `database_url`: `postgres://...` for PostgreSQL (production), `None` for SQLite in `data_dir`. Media
    /// and clips are files under `data_dir` either way.
    pub async fn open_with(database_url: Option<&str>, data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_on(database_url, data_dir, crate::media::MediaStore::local(data_dir.join("media"))?).await
    }

    /// The database and clip folder as [`Self::open_with`] says, with media kept in `media`.
    async fn open_on(
        database_url: Option<&str>,
        data_dir: &Path,
        media: crate::media::MediaStore,
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

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The media key of one of a record's files (the id is a parsed ULID, the name a constant or made of a
    /// checked SHA-256 hex).
    fn media_key(id: EvidenceId, name: &str) -> String {
        format!("{id}/{name}")
    }

    /// Pins the device's key on its first upload; afterwards a record sealed by another key is refused.
    async fn check_device_key(&self, record: &EvidenceRecord, seal: &Seal) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO device_keys (device_id, public_key, first_seen) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(record.device_id.as_str())
        .bind(&seal.public_key)
        .bind(Utc::now().to_rfc3339())
        .execute(&self.db)
        .await?;
        let known: String = sqlx::query("SELECT public_key FROM device_keys WHERE device_id = $1")
            .bind(record.device_id.as_str())
            .fetch_one(&self.db)
            .await?
            .try_get("public_key")?;
        if known != seal.public_key {
            return Err(StoreError::WrongDeviceKey {
                device: record.device_id.to_string(),
                known,
                found: seal.public_key.clone(),
            });
        }
        Ok(())
    }

    /// Stores a verified, sealed record and its overview once; a repeat with the same content gets the first
    /// receipt.
    pub async fn ingest(
        &self,
        record: &EvidenceRecord,
        seal: &Seal,
        overview_jpeg: &[u8],
        clip_mp4: Option<&[u8]>,
        plate_crops: &[(String, Vec<u8>)],
    ) -> Result<IngestReceipt, StoreError> {
        let id = record.evidence_id;
        self.check_device_key(record, seal).await?;
        if let Some(existing) = self.receipt_for(id, &seal.record_sha256).await? {
            return Ok(existing);
        }
        self.media.put(&Self::media_key(id, "overview.jpg"), overview_jpeg).await?;
        // A clip is stored once, under its hash, however many records (one vehicle's offences) name it.
        if let (Some(clip), Some(sha)) = (clip_mp4, &record.clip_sha256) {
            let key = Self::clip_key(sha)?;
            if !self.media.exists(&key).await? {
                self.media.put(&key, clip).await?;
            }
        }
        for (sha, jpeg) in plate_crops {
            self.media.put(&Self::plate_crop_key(id, sha)?, jpeg).await?;
        }
        let now = Utc::now();
        let json = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let seal_json = serde_json::to_string(seal).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let inserted = sqlx::query(
            "INSERT INTO evidence (evidence_id, device_id, camera_id, location, kind, vehicle_class, captured_at, \
             received_at, overview_sha256, record_json, plate_text, seal_json, record_sha256, sequence, \
             previous_record_sha256) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
             ON CONFLICT (evidence_id) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(record.device_id.as_str())
        .bind(record.camera_id.as_str())
        .bind(&record.location)
        .bind(record.kind.as_str())
        .bind(record.vehicle_class.as_str())
        .bind(record.captured_at.to_rfc3339())
        .bind(now.to_rfc3339())
        .bind(&record.overview_sha256)
        .bind(json)
        .bind(record.plate.as_ref().and_then(|p| p.text.as_deref()))
        .bind(seal_json)
        .bind(&seal.record_sha256)
        .bind(record.sequence as i64)
        .bind(&record.previous_record_sha256)
        .execute(&self.db)
        .await?
        .rows_affected();
        if inserted == 0 {
            // Lost a race with a concurrent upload of the same id: answer as for a repeat.
            return self.receipt_for(id, &seal.record_sha256).await?.ok_or(StoreError::Conflict(id));
        }
        Ok(IngestReceipt { evidence_id: id, status: IngestStatus::Created, stored_at: now })
    }

    /// The first receipt for `id`, when it was stored with the same record hash; a different hash is a conflict.
    async fn receipt_for(&self, id: EvidenceId, record_sha256: &str) -> Result<Option<IngestReceipt>, StoreError> {
        let row = sqlx::query("SELECT record_sha256, received_at FROM evidence WHERE evidence_id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.db)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let stored_sha: Option<String> = row.try_get("record_sha256")?;
        if stored_sha.as_deref() != Some(record_sha256) {
            return Err(StoreError::Conflict(id));
        }
        let stored_at = parse_time(&row.try_get::<String, _>("received_at")?)?;
        Ok(Some(IngestReceipt { evidence_id: id, status: IngestStatus::AlreadyStored, stored_at }))
    }

    /// The clip record `id` names; `None` when it names none or it is not held.
    pub async fn clip(&self, id: EvidenceId) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(sha) = self.clip_sha256(id).await? else { return Ok(None) };
        self.clip_named(id, &sha).await
    }

    /// The clip `sha256` that record `id` names (the caller has the record).
    async fn clip_named(&self, id: EvidenceId, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.media.get(&Self::clip_key(sha256)?).await? {
            Some(bytes) => Ok(Some(bytes)),
            // Stored before clips were kept by hash: one copy per record.
            None => self.media.get(&Self::media_key(id, "clip.mp4")).await,
        }
    }

    /// The clip's SHA-256 as record `id` names it.
    async fn clip_sha256(&self, id: EvidenceId) -> Result<Option<String>, StoreError> {
        let json: Option<String> = sqlx::query_scalar("SELECT record_json FROM evidence WHERE evidence_id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.db)
            .await?;
        let Some(json) = json else { return Ok(None) };
        let record: EvidenceRecord = serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(record.clip_sha256)
    }

    fn clip_key(sha256: &str) -> Result<String, StoreError> {
        if !central_protocol::is_sha256_hex(sha256) {
            return Err(StoreError::Corrupt(format!("{sha256:?} is not a clip's SHA-256")));
        }
        Ok(format!("clips/{sha256}.mp4"))
    }

    /// Whether the clip `sha256` hashes right, re-read at most once per [`CLIP_RECHECK`]: a case view must not
    /// read a whole video every time it is opened.
    async fn clip_checks_out(&self, id: EvidenceId, sha256: &str) -> Result<bool, StoreError> {
        let fresh = self.clips_checked.lock().ok().and_then(|c| c.get(sha256).copied());
        if fresh.is_some_and(|at| at.elapsed() < CLIP_RECHECK) {
            return Ok(true);
        }
        let ok = self.clip_named(id, sha256).await?.is_some_and(|b| central_protocol::sha256_hex(&b) == sha256);
        if let Ok(mut checked) = self.clips_checked.lock() {
            if checked.len() > 100_000 {
                checked.retain(|_, at| at.elapsed() < CLIP_RECHECK);
            }
            if ok {
                checked.insert(sha256.to_owned(), std::time::Instant::now());
            } else {
                checked.remove(sha256);
            }
        }
        Ok(ok)
    }

    fn plate_crop_key(id: EvidenceId, sha256: &str) -> Result<String, StoreError> {
        if !central_protocol::is_sha256_hex(sha256) {
            return Err(StoreError::Corrupt(format!("{sha256:?} is not a plate picture's SHA-256")));
        }
        Ok(Self::media_key(id, &format!("plate-{sha256}.jpg")))
    }

    /// The plate picture `sha256` of record `id`; `None` when there is none (or `sha256` is not a SHA-256).
    pub async fn plate_crop(&self, id: EvidenceId, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match Self::plate_crop_key(id, sha256) {
            Ok(key) => self.media.get(&key).await,
            Err(_) => Ok(None),
        }
    }

    pub async fn overview(&self, id: EvidenceId) -> Result<Option<Vec<u8>>, StoreError> {
        self.media.get(&Self::media_key(id, "overview.jpg")).await
    }

    /// Newest first, filtered.
    pub async fn queue(&self, filter: &QueueFilter, limit: i64) -> Result<Vec<QueueEntry>, StoreError> {
        let mut sql = format!("SELECT {ENTRY_COLUMNS} FROM evidence WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        for (column, value) in
            [("camera_id", &filter.camera), ("kind", &filter.kind), ("review_status", &filter.status)]
        {
            if !value.trim().is_empty() {
                binds.push(value.trim().to_string());
                sql.push_str(&format!(" AND {column} = ${}", binds.len()));
            }
        }
        // Days are Vietnam's (UTC+7); captured_at is stored as RFC 3339 UTC, which sorts as text.
        if let Some(from) = day_start_utc(&filter.from) {
            binds.push(from);
            sql.push_str(&format!(" AND captured_at >= ${}", binds.len()));
        }
        if let Some(to) = day_start_utc(&filter.to).and_then(|t| next_day(&t)) {
            binds.push(to);
            sql.push_str(&format!(" AND captured_at < ${}", binds.len()));
        }
        sql.push_str(&format!(" ORDER BY captured_at DESC, evidence_id DESC LIMIT ${}", binds.len() + 1));
        let mut query = sqlx::query(&sql);
        for b in &binds {
            query = query.bind(b);
        }
        let rows = query.bind(limit).fetch_all(&self.db).await?;
        Ok(readable_entries(&rows))
    }

    /// The cameras that have sent evidence, for the queue's filter.
    pub async fn cameras(&self) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT DISTINCT camera_id FROM evidence ORDER BY camera_id").fetch_all(&self.db).await?;
        rows.iter().map(|r| Ok(r.try_get("camera_id")?)).collect()
    }

    pub async fn get(&self, id: EvidenceId) -> Result<Option<QueueEntry>, StoreError> {
        let row = sqlx::query(&format!("SELECT {ENTRY_COLUMNS} FROM evidence WHERE evidence_id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.db)
            .await?;
        row.as_ref().map(entry_from_row).transpose()
    }

    /// Checks the stored record against its seal and the device's pinned key, and the media against the
    /// hashes in the record: anything altered since the box sealed it shows here.
    pub async fn seal_check(&self, id: EvidenceId) -> Result<Option<SealCheck>, StoreError> {
        let row = sqlx::query(
            "SELECT e.record_json, e.seal_json, k.public_key FROM evidence e \
             LEFT JOIN device_keys k ON k.device_id = e.device_id WHERE e.evidence_id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.db)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let record: EvidenceRecord = serde_json::from_str(&row.try_get::<String, _>("record_json")?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let seal: Option<Seal> =
            row.try_get::<Option<String>, _>("seal_json")?.and_then(|j| serde_json::from_str(&j).ok());
        let pinned: Option<String> = row.try_get("public_key")?;
        let (signature_ok, detail, public_key) = match &seal {
            None => (false, "no seal stored".to_string(), String::new()),
            Some(seal) if pinned.as_deref() != Some(seal.public_key.as_str()) => {
                (false, "sealed by a key that is not the device's".into(), seal.public_key.clone())
            }
            Some(seal) => match central_protocol::verify(&record, seal, None) {
                Ok(()) => (true, "Ed25519 signature valid".into(), seal.public_key.clone()),
                Err(e) => (false, e.to_string(), seal.public_key.clone()),
            },
        };
        // Held, and hashes to what the sealed record names.
        let matches = |held: Option<Vec<u8>>, sha: &str| held.is_some_and(|b| central_protocol::sha256_hex(&b) == sha);
        let overview_ok = matches(self.overview(id).await?, &record.overview_sha256);
        let clip_ok = match &record.clip_sha256 {
            Some(sha) => Some(self.clip_checks_out(id, sha).await?),
            None => None,
        };
        let mut plate_crops_ok = None;
        for sha in record.plate_crop_hashes() {
            let ok = matches(self.plate_crop(id, sha).await?, sha);
            plate_crops_ok = Some(plate_crops_ok.unwrap_or(true) && ok);
        }
        Ok(Some(SealCheck { signature_ok, overview_ok, clip_ok, plate_crops_ok, public_key, detail }))
    }

    pub async fn stats(&self) -> Result<CentralStats, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COUNT(DISTINCT device_id) AS d, COUNT(DISTINCT device_id || '/' || camera_id) AS c FROM evidence",
        )
        .fetch_one(&self.db)
        .await?;
        let get = |name: &str| -> Result<u64, StoreError> { Ok(row.try_get::<i64, _>(name)?.max(0) as u64) };
        Ok(CentralStats { evidence_total: get("n")?, devices: get("d")?, cameras: get("c")? })
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
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// Every device's latest heartbeat, by device id.
    pub async fn devices(&self) -> Result<Vec<DeviceStatus>, StoreError> {
        let rows = sqlx::query("SELECT received_at, heartbeat_json FROM device_heartbeats ORDER BY device_id")
            .fetch_all(&self.db)
            .await?;
        rows.iter()
            .map(|row| {
                let received: String = row.try_get("received_at")?;
                let json: String = row.try_get("heartbeat_json")?;
                Ok(DeviceStatus {
                    received_at: parse_time(&received)?,
                    heartbeat: serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                })
            })
            .collect()
    }
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
fn day_start_utc(day: &str) -> Option<String> {
    let date = chrono::NaiveDate::parse_from_str(day.trim(), "%Y-%m-%d").ok()?;
    let local = date.and_hms_opt(0, 0, 0)?.and_local_timezone(vietnam()).single()?;
    Some(local.with_timezone(&Utc).to_rfc3339())
}

fn next_day(rfc3339: &str) -> Option<String> {
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
        review_status: row.try_get("review_status")?,
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
