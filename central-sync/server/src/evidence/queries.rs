//! The evidence queries: ingest (idempotent by id, media before the row), the media files of a record, the
//! queue, one record, its seal check, totals.

use crate::store::{
    day_start_utc, entry_from_row, next_day, parse_time, readable_entries, CentralStore, QueueEntry, QueueFilter,
    QueueOrder, SealCheck, StoreError, CLIP_RECHECK, ENTRY_COLUMNS,
};
use central_protocol::{CentralStats, EvidenceRecord, IngestReceipt, IngestStatus, Seal};
use chrono::Utc;
use sqlx::Row;
use te_types::EvidenceId;

impl CentralStore {
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
        .execute(self.db())
        .await?;
        let known: String = sqlx::query("SELECT public_key FROM device_keys WHERE device_id = $1")
            .bind(record.device_id.as_str())
            .fetch_one(self.db())
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
        .execute(self.db())
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
            .fetch_optional(self.db())
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
            .fetch_optional(self.db())
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

    /// The overview scaled down for lists: made on first request and kept beside it. An overview that does not
    /// decode is answered whole (the page still shows it) and logged.
    pub async fn thumbnail(&self, id: EvidenceId) -> Result<Option<Vec<u8>>, StoreError> {
        let key = Self::media_key(id, "thumb.jpg");
        if let Some(thumb) = self.media.get(&key).await? {
            return Ok(Some(thumb));
        }
        let Some(overview) = self.overview(id).await? else { return Ok(None) };
        let (made, overview) = tokio::task::spawn_blocking(move || (super::thumbnail::thumbnail(&overview), overview))
            .await
            .map_err(|e| StoreError::Corrupt(format!("thumbnail task: {e}")))?;
        match made {
            Ok(thumb) => {
                self.media.put(&key, &thumb).await?;
                Ok(Some(thumb))
            }
            Err(e) => {
                tracing::warn!(evidence = %id, error = %e, "no thumbnail; the overview is sent whole");
                Ok(Some(overview))
            }
        }
    }

    /// Newest first, filtered. Placeholders are numbered by hand: sqlx's `QueryBuilder<Any>` writes `?`, which
    /// PostgreSQL refuses (sqlx issue 3000), and every filter value is bound, never spliced.
    /// One page of the queue: `limit` entries after the first `offset`, in `order`.
    pub async fn queue(
        &self,
        filter: &QueueFilter,
        order: QueueOrder,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        let (conditions, binds) = queue_conditions(filter, 1);
        let direction = match order {
            QueueOrder::Oldest => "ASC",
            QueueOrder::Newest => "DESC",
        };
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM evidence WHERE 1 = 1{conditions} ORDER BY captured_at {direction}, \
             evidence_id {direction} LIMIT ${} OFFSET ${}",
            binds.len() + 1,
            binds.len() + 2
        );
        let mut query = sqlx::query(&sql);
        for b in &binds {
            query = query.bind(b);
        }
        let rows = query.bind(limit).bind(offset.max(0)).fetch_all(self.db()).await?;
        Ok(readable_entries(&rows))
    }

    /// How many entries the filter matches in all.
    pub async fn queue_count(&self, filter: &QueueFilter) -> Result<i64, StoreError> {
        let (conditions, binds) = queue_conditions(filter, 1);
        let sql = format!("SELECT COUNT(*) AS n FROM evidence WHERE 1 = 1{conditions}");
        let mut query = sqlx::query(&sql);
        for b in &binds {
            query = query.bind(b);
        }
        Ok(query.fetch_one(self.db()).await?.try_get("n")?)
    }
}

/// The filter as SQL conditions (each starting with ` AND`) and their values, numbered from `$first`.
pub(crate) fn queue_conditions(filter: &QueueFilter, first: usize) -> (String, Vec<String>) {
    let mut sql = String::new();
    let mut binds: Vec<String> = Vec::new();
    // The placeholder of the value just pushed.
    let n = |binds: &Vec<String>| binds.len() + first - 1;
    for (column, value) in [("camera_id", &filter.camera), ("kind", &filter.kind), ("review_status", &filter.status)] {
        if !value.trim().is_empty() {
            binds.push(value.trim().to_string());
            sql.push_str(&format!(" AND {column} = ${}", n(&binds)));
        }
    }
    // Letters and digits only, so nothing in it is a LIKE wildcard; compared with the stored plate stripped
    // of its punctuation the same way (both databases have UPPER and REPLACE).
    let plate = te_plate::compact(&filter.plate);
    if !plate.is_empty() {
        binds.push(format!("%{plate}%"));
        sql.push_str(&format!(
            " AND UPPER(REPLACE(REPLACE(REPLACE(REPLACE(COALESCE(corrected_plate, plate_text, ''), '-', ''), '.', ''), \
             '/', ''), ' ', '')) LIKE ${}",
            n(&binds)
        ));
    }
    // Days are Vietnam's (UTC+7); captured_at is stored as RFC 3339 UTC, which sorts as text.
    if let Some(from) = day_start_utc(&filter.from) {
        binds.push(from);
        sql.push_str(&format!(" AND captured_at >= ${}", n(&binds)));
    }
    if let Some(to) = day_start_utc(&filter.to).and_then(|t| next_day(&t)) {
        binds.push(to);
        sql.push_str(&format!(" AND captured_at < ${}", n(&binds)));
    }
    (sql, binds)
}

impl CentralStore {
    /// The cameras that have sent evidence, for the queue's filter.
    pub async fn cameras(&self) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT DISTINCT camera_id FROM evidence ORDER BY camera_id").fetch_all(self.db()).await?;
        rows.iter().map(|r| Ok(r.try_get("camera_id")?)).collect()
    }

    pub async fn get(&self, id: EvidenceId) -> Result<Option<QueueEntry>, StoreError> {
        let row = sqlx::query(&format!("SELECT {ENTRY_COLUMNS} FROM evidence WHERE evidence_id = $1"))
            .bind(id.to_string())
            .fetch_optional(self.db())
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
        .fetch_optional(self.db())
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
        .fetch_one(self.db())
        .await?;
        let get = |name: &str| -> Result<u64, StoreError> { Ok(row.try_get::<i64, _>(name)?.max(0) as u64) };
        Ok(CentralStats { evidence_total: get("n")?, devices: get("d")?, cameras: get("c")? })
    }
}
