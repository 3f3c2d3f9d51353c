//! Storage: metadata in SQL (SQLite embedded by default), media as files named by evidence id.

use crate::clips::{ClipError, ClipStore};
use central_protocol::{CentralStats, EvidenceRecord, Heartbeat, IngestReceipt, IngestStatus, Seal};
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::path::{Path, PathBuf};
use te_types::EvidenceId;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
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

/// One row of the review queue.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueueEntry {
    pub record: EvidenceRecord,
    pub received_at: DateTime<Utc>,
    pub review_status: String,
}

#[derive(Debug)]
pub struct CentralStore {
    db: SqlitePool,
    media_dir: PathBuf,
    /// Clips sent ahead of their records.
    pub clips: ClipStore,
}

impl CentralStore {
    /// Opens (creating if needed) the database and media folder under `data_dir` and applies migrations.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let media_dir = data_dir.join("media");
        std::fs::create_dir_all(&media_dir).map_err(|source| StoreError::Media { path: media_dir.clone(), source })?;
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join("central.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Evidence is acknowledged to the box only after it is on disk.
            .synchronous(SqliteSynchronous::Full);
        let db = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        sqlx::migrate!("./migrations").run(&db).await?;
        let clips = ClipStore::open(&data_dir.join("clips"), MAX_CLIP_BYTES)?;
        Ok(Self { db, media_dir, clips })
    }

    fn overview_path(&self, id: EvidenceId) -> PathBuf {
        // The id is a parsed ULID, so it cannot smuggle path separators into the name.
        self.media_dir.join(id.to_string()).join("overview.jpg")
    }

    /// Pins the device's key on its first upload; afterwards a record sealed by another key is refused.
    async fn check_device_key(&self, record: &EvidenceRecord, seal: &Seal) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO device_keys (device_id, public_key, first_seen) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(record.device_id.as_str())
        .bind(&seal.public_key)
        .bind(Utc::now().to_rfc3339())
        .execute(&self.db)
        .await?;
        let known: String = sqlx::query("SELECT public_key FROM device_keys WHERE device_id = ?")
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
    ) -> Result<IngestReceipt, StoreError> {
        let id = record.evidence_id;
        self.check_device_key(record, seal).await?;
        if let Some(existing) = self.receipt_for(id, &seal.record_sha256).await? {
            return Ok(existing);
        }
        self.write_media(id, "overview.jpg", overview_jpeg)?;
        if let Some(clip) = clip_mp4 {
            self.write_media(id, "clip.mp4", clip)?;
        }
        let now = Utc::now();
        let json = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let seal_json = serde_json::to_string(seal).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let inserted = sqlx::query(
            "INSERT INTO evidence (evidence_id, device_id, camera_id, location, kind, vehicle_class, captured_at, \
             received_at, overview_sha256, record_json, plate_text, seal_json, record_sha256) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
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
        let row = sqlx::query("SELECT record_sha256, received_at FROM evidence WHERE evidence_id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.db)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let stored_sha: Option<String> = row.try_get("record_sha256")?;
        if stored_sha.as_deref() != Some(record_sha256) {
            return Err(StoreError::Conflict(id));
        }
        let received: String = row.try_get("received_at")?;
        let stored_at = DateTime::parse_from_rfc3339(&received)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?
            .with_timezone(&Utc);
        Ok(Some(IngestReceipt { evidence_id: id, status: IngestStatus::AlreadyStored, stored_at }))
    }

    fn write_media(&self, id: EvidenceId, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        use std::io::Write;
        // The id is a parsed ULID and the name a constant, so neither can smuggle path separators in.
        let dir = self.media_dir.join(id.to_string());
        let path = dir.join(name);
        let media_err = |source| StoreError::Media { path: path.clone(), source };
        std::fs::create_dir_all(&dir).map_err(media_err)?;
        // Write beside, sync, then rename: a crash leaves the old state or the whole file, never half of it.
        let tmp = dir.join(format!("{name}.partial"));
        let mut file = std::fs::File::create(&tmp).map_err(media_err)?;
        file.write_all(bytes).map_err(media_err)?;
        file.sync_all().map_err(media_err)?;
        std::fs::rename(&tmp, &path).map_err(media_err)?;
        Ok(())
    }

    pub fn clip(&self, id: EvidenceId) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.media_dir.join(id.to_string()).join("clip.mp4");
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Media { path, source }),
        }
    }

    pub fn overview(&self, id: EvidenceId) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.overview_path(id);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Media { path, source }),
        }
    }

    /// Newest first.
    pub async fn queue(&self, limit: i64) -> Result<Vec<QueueEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT record_json, received_at, review_status FROM evidence ORDER BY captured_at DESC, evidence_id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.db)
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    pub async fn get(&self, id: EvidenceId) -> Result<Option<QueueEntry>, StoreError> {
        let row = sqlx::query("SELECT record_json, received_at, review_status FROM evidence WHERE evidence_id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.db)
            .await?;
        row.as_ref().map(entry_from_row).transpose()
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
            "INSERT INTO device_heartbeats (device_id, received_at, heartbeat_json) VALUES (?, ?, ?) \
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

fn parse_time(s: &str) -> Result<DateTime<Utc>, StoreError> {
    Ok(DateTime::parse_from_rfc3339(s).map_err(|e| StoreError::Corrupt(e.to_string()))?.with_timezone(&Utc))
}

fn entry_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<QueueEntry, StoreError> {
    let json: String = row.try_get("record_json")?;
    let received: String = row.try_get("received_at")?;
    Ok(QueueEntry {
        record: serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        received_at: DateTime::parse_from_rfc3339(&received)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?
            .with_timezone(&Utc),
        review_status: row.try_get("review_status")?,
    })
}
