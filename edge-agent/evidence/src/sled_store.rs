//! The sled implementation of [`EvidenceStore`].
//!
//! Key layout v2 (trees):
//! - `meta`:    `layout_version` -> "2"; `chain_head` -> JSON [`ChainHead`] (the last sealed record);
//!   `totals` -> JSON [`StoreCounts`] (kept in the same transactions as the records they count)
//! - `records`: ULID (16 bytes, big-endian, so key order = creation order) -> JSON [`StoredEvidence`]
//! - `media`:   only in stores from before the evidence files (read, then moved to the files at open):
//!   ULID ++ "/overview.jpg", "/clip.mp4", "/plate/" ++ SHA-256 hex -> bytes
//! - `pending`: ULID -> empty (the send queue, oldest first)
//!
//! The media live in the evidence files only (see `files`): sled copies of them made the store take several
//! times their size on disk. A record, its pending mark, the new chain head and the totals are written in
//! one transaction after the record's files are synced, so after a crash either all of them exist or none
//! does (and then the record's file is indexed at open), and the chain never skips a number.
//!
//! Space: [`StoreLimits`] sets a retention period and a disk quota (bytes of records + images). Only images of
//! records the central service has acknowledged are ever removed (retention first, then oldest first for the
//! quota); records and seals stay. An undelivered record is never touched (Circular 67/2024/TT-BCA): when the
//! quota is reached and nothing can be freed, the store raises an alarm and keeps recording.
//! v1 (unsealed records) is refused at open: v1 only ever held demo data.

use crate::files::{plate_file, EvidenceFiles, CLIP_FILE, OVERVIEW_FILE};
use crate::{Delivery, DeviceKey, EvidenceError, EvidenceStore, Media, StoreCounts, StoredEvidence, StoredMedia};
use central_protocol::{EvidenceRecord, IngestReceipt};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use std::path::Path;
use std::sync::Mutex;
use te_types::EvidenceId;

const LAYOUT_VERSION: u32 = 2;
/// A record write taking longer than this is a stalled disk.
const STALLED_AFTER: chrono::Duration = chrono::Duration::seconds(10);
const CHAIN_HEAD: &str = "chain_head";
const TOTALS: &str = "totals";

/// How much the store may hold and for how long.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StoreLimits {
    /// Bytes of records and images; above it, images of delivered records are removed, oldest first.
    pub quota_bytes: Option<u64>,
    /// Images of delivered records are removed this long after the central service acknowledged them.
    pub retention: Option<chrono::Duration>,
    /// Free disk space kept in reserve on the store's filesystem: below twice this the alarm rises and images
    /// of delivered records are removed; a record that would eat into it is refused cleanly (counted, alarm),
    /// so the store never meets a full disk in the middle of a write.
    pub reserve_bytes: Option<u64>,
}

type TxError = ConflictableTransactionError<EvidenceError>;

fn abort(e: EvidenceError) -> TxError {
    ConflictableTransactionError::Abort(e)
}

fn read_json<T: serde::de::DeserializeOwned + Default>(
    tree: &sled::transaction::TransactionalTree,
    key: &str,
) -> Result<T, TxError> {
    match tree.get(key)? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|source| abort(EvidenceError::Json { what: key.to_string(), source })),
        None => Ok(T::default()),
    }
}

fn write_json<T: Serialize>(tree: &sled::transaction::TransactionalTree, key: &str, value: &T) -> Result<(), TxError> {
    let bytes = serde_json::to_vec(value).map_err(|e| abort(json("a stored value")(e)))?;
    tree.insert(key, bytes)?;
    Ok(())
}

/// The newest record in the device's chain.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ChainHead {
    sequence: u64,
    record_sha256: String,
}
const OVERVIEW_SUFFIX: &[u8] = b"/overview.jpg";
const CLIP_SUFFIX: &[u8] = b"/clip.mp4";
const PLATE_INFIX: &[u8] = b"/plate/";

#[derive(Debug)]
pub struct SledStore {
    db: sled::Db,
    key: DeviceKey,
    limits: StoreLimits,
    /// Set when the quota is reached and nothing can be freed; cleared when space is back.
    alarm: Mutex<Option<String>>,
    /// Set while free disk space is under twice the reserve.
    disk_alarm: Mutex<Option<String>>,
    /// Records refused at the disk reserve since open.
    refused: std::sync::atomic::AtomicU64,
    /// The store's folder, whose filesystem the reserve is measured on.
    dir: std::path::PathBuf,
    /// Set when the index was rebuilt from the files at open.
    recovery_alarm: Mutex<Option<String>>,
    /// The second copy of every record and its media.
    files: EvidenceFiles,
    /// One writer at a time: a record's sequence is taken before its files are written.
    write_lock: Mutex<()>,
    /// When the write in progress began (ms since the epoch; 0: none): a write that takes longer than
    /// [`STALLED_AFTER`] raises the alarm, so a stalled disk shows in /healthz, the metrics and the heartbeat
    /// while the write waits (a blocked disk write cannot be cancelled; the stop watchdog ends the process).
    writing_since: std::sync::atomic::AtomicI64,
    /// Records written to files that sled refused to index (a full disk): indexed before the next record.
    unindexed: Mutex<Vec<(EvidenceId, std::path::PathBuf)>>,
    meta: sled::Tree,
    records: sled::Tree,
    media: sled::Tree,
    pending: sled::Tree,
}

fn storage(e: sled::Error) -> EvidenceError {
    EvidenceError::Sled(e)
}

/// A JSON failure, saying what was being encoded or decoded.
fn json(what: &'static str) -> impl Fn(serde_json::Error) -> EvidenceError {
    move |source| EvidenceError::Json { what: what.into(), source }
}

fn inconsistent(what: impl Into<String>) -> EvidenceError {
    EvidenceError::Inconsistent(what.into())
}

fn key(id: EvidenceId) -> [u8; 16] {
    id.0 .0.to_be_bytes()
}

fn id_from_key(k: &[u8]) -> Option<EvidenceId> {
    let bytes: [u8; 16] = k.get(..16)?.try_into().ok()?;
    Some(EvidenceId(ulid::Ulid(u128::from_be_bytes(bytes))))
}

fn media_key(id: EvidenceId) -> Vec<u8> {
    let mut k = key(id).to_vec();
    k.extend_from_slice(OVERVIEW_SUFFIX);
    k
}

fn clip_key(id: EvidenceId) -> Vec<u8> {
    let mut k = key(id).to_vec();
    k.extend_from_slice(CLIP_SUFFIX);
    k
}

fn plate_key(id: EvidenceId, sha256: &str) -> Vec<u8> {
    let mut k = key(id).to_vec();
    k.extend_from_slice(PLATE_INFIX);
    k.extend_from_slice(sha256.as_bytes());
    k
}

/// Marks a write in progress for as long as it lives.
struct WriteTimer<'a>(&'a std::sync::atomic::AtomicI64);

impl<'a> WriteTimer<'a> {
    fn start(since: &'a std::sync::atomic::AtomicI64) -> Self {
        since.store(Utc::now().timestamp_millis(), std::sync::atomic::Ordering::Relaxed);
        Self(since)
    }
}

impl Drop for WriteTimer<'_> {
    fn drop(&mut self) {
        self.0.store(0, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Opens sled at `dir` and checks the key layout version.
fn open_db(dir: &Path) -> Result<sled::Db, EvidenceError> {
    let open_err = |source: sled::Error| EvidenceError::Open { path: dir.display().to_string(), source };
    let db = sled::Config::new().path(dir).open().map_err(open_err)?;
    let meta = db.open_tree("meta").map_err(open_err)?;
    match meta.get("layout_version").map_err(open_err)? {
        None => {
            meta.insert("layout_version", LAYOUT_VERSION.to_string().as_bytes()).map_err(open_err)?;
            db.flush().map_err(open_err)?;
        }
        Some(v) if v.as_ref() == LAYOUT_VERSION.to_string().as_bytes() => {}
        Some(v) => {
            return Err(EvidenceError::Layout {
                found: String::from_utf8_lossy(&v).into_owned(),
                expected: LAYOUT_VERSION,
            })
        }
    }
    // Read the index whole (records are small; media are checked as they are read, and come from the
    // evidence files when the index cannot read them): damage shows here, where it can be repaired, rather
    // than in the middle of an upload.
    for name in ["meta", "records", "pending"] {
        let tree = db.open_tree(name).map_err(open_err)?;
        for item in tree.iter() {
            item.map_err(open_err)?;
        }
    }
    let media = db.open_tree("media").map_err(open_err)?;
    media.first().map_err(open_err)?;
    media.last().map_err(open_err)?;
    Ok(db)
}

/// Moves a damaged sled folder aside (never deletes it) and says where.
fn move_aside(dir: &Path) -> Result<std::path::PathBuf, EvidenceError> {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".damaged-{}", Utc::now().format("%Y%m%dT%H%M%S%.3f")));
    let aside = dir.with_file_name(name);
    if dir.exists() {
        std::fs::rename(dir, &aside).map_err(|source| EvidenceError::Io { path: dir.display().to_string(), source })?;
    }
    Ok(aside)
}

/// What [`SledStore::rebuild`] did.
#[derive(Debug, Clone, Default)]
pub struct RebuildReport {
    /// Record files read back into a fresh index.
    pub records: u64,
    /// Record files that could not be read or whose seal fails: left where they are, not indexed.
    pub damaged: Vec<String>,
    /// Where the old sled files went.
    pub moved_aside: Option<std::path::PathBuf>,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`, checking the key layout version; `key` seals new records.
    ///
    /// Every record also lives as files beside sled (see `files`). When sled's files cannot be opened (damaged,
    /// truncated, deleted), they are moved aside and the index is rebuilt from those files, loudly (an ERROR
    /// line and an alarm until restart): the store goes on recording and delivering. Records whose file was
    /// written but never indexed (a kill in between) are indexed at open.
    pub fn open(dir: &Path, key: DeviceKey) -> Result<Self, EvidenceError> {
        let files = EvidenceFiles::beside(dir);
        let existed = dir.exists();
        let opened = std::panic::catch_unwind(|| open_db(dir))
            .unwrap_or_else(|_| Err(inconsistent(format!("sled panicked opening {}", dir.display()))));
        let (db, recovered) = match opened {
            Ok(db) => (db, None),
            Err(e @ EvidenceError::Layout { .. }) => return Err(e),
            Err(e) if files.records()?.is_empty() => return Err(e),
            Err(e) => {
                let aside = move_aside(dir)?;
                tracing::error!(error = %e, moved_to = %aside.display(),
                    "ALARM: evidence index damaged; rebuilding it from the evidence files");
                let why = format!(
                    "the evidence index was damaged ({e}) and was rebuilt from the evidence files at start; the \
                     damaged files are kept at {}",
                    aside.display()
                );
                (open_db(dir)?, Some(why))
            }
        };
        let store = Self::with_db(dir, db, key, files)?;
        let imported = store.reconcile()?;
        let debris = store.files.remove_partials()?;
        if debris > 0 {
            tracing::warn!(files = debris, "half-written evidence files of records never acknowledged were removed");
        }
        // A kill between the files and the index leaves one record unindexed; more, or a missing index, is
        // damage and is said as loudly as a broken one.
        let recovered = recovered.or_else(|| {
            (imported > 1 || (imported > 0 && !existed)).then(|| {
                format!(
                    "{imported} record(s) were in the evidence files but not in the index (its files were lost or \
                     replaced) and were indexed again at start"
                )
            })
        });
        if let Some(why) = recovered {
            tracing::error!(imported, "ALARM: {why}");
            if let Ok(mut r) = store.recovery_alarm.lock() {
                *r = Some(why);
            }
        }
        Ok(store)
    }

    /// Moves sled's files aside (if any) and indexes every record file afresh, checking each seal against
    /// `key` and the chain as it goes. `edge-agent evidence rebuild`.
    pub fn rebuild(dir: &Path, key: DeviceKey) -> Result<(Self, RebuildReport), EvidenceError> {
        let files = EvidenceFiles::beside(dir);
        let moved_aside = dir.exists().then(|| move_aside(dir)).transpose()?;
        let store = Self::with_db(dir, open_db(dir)?, key, files)?;
        let mut report = RebuildReport { moved_aside, ..Default::default() };
        for (_, id, path) in store.files.records()? {
            match store.import_file(id, &path) {
                Ok(true) => report.records += 1,
                Ok(false) => {}
                Err(e) => report.damaged.push(format!("{}: {e}", path.display())),
            }
        }
        store.db.flush().map_err(storage)?;
        Ok((store, report))
    }

    fn with_db(dir: &Path, db: sled::Db, key: DeviceKey, files: EvidenceFiles) -> Result<Self, EvidenceError> {
        let open_err = |source: sled::Error| EvidenceError::Open { path: dir.display().to_string(), source };
        let meta = db.open_tree("meta").map_err(open_err)?;
        // The store remembers the key that seals it: a box whose device.key was lost must not go on under a
        // new identity beside records the old one sealed.
        let public = key.public_hex();
        match meta.get("device_public_key").map_err(open_err)? {
            Some(stored) if stored.as_ref() != public.as_bytes() => {
                return Err(EvidenceError::OtherDeviceKey {
                    stored: String::from_utf8_lossy(&stored).into_owned(),
                    given: public,
                    path: key.path().display().to_string(),
                });
            }
            Some(_) => {}
            None => {
                meta.insert("device_public_key", public.as_bytes()).map_err(open_err)?;
                db.flush().map_err(open_err)?;
            }
        }
        let store = Self {
            key,
            limits: StoreLimits::default(),
            alarm: Mutex::new(None),
            disk_alarm: Mutex::new(None),
            recovery_alarm: Mutex::new(None),
            refused: Default::default(),
            dir: dir.to_path_buf(),
            files,
            write_lock: Mutex::new(()),
            writing_since: Default::default(),
            unindexed: Mutex::new(Vec::new()),
            meta,
            records: db.open_tree("records").map_err(open_err)?,
            media: db.open_tree("media").map_err(open_err)?,
            pending: db.open_tree("pending").map_err(open_err)?,
            db,
        };
        if store.meta.get(TOTALS).map_err(open_err)?.is_none() {
            store.rebuild_totals()?;
        }
        Ok(store)
    }

    /// Brings the index and the files into step: a store from before the files existed gets them written; a
    /// record file past the index's chain head (written, then killed before sled had it) is indexed. Returns
    /// how many records were indexed.
    fn reconcile(&self) -> Result<u64, EvidenceError> {
        let on_disk = self.files.records()?;
        if on_disk.is_empty() && !self.records.is_empty() {
            for id in self.list()? {
                let stored = self.get(id)?;
                let media = self.media_of(id, &stored)?;
                let named: Vec<(String, &[u8])> = media.iter().map(|(n, b)| (n.clone(), b.as_slice())).collect();
                let pending = StoredEvidence { delivery: Delivery::Pending, ..stored.clone() };
                self.files.write_record(&pending, &named)?;
                self.files.write_delivery(id, &stored.delivery)?;
            }
            // The media now live in the files only.
            self.media.clear().map_err(storage)?;
            self.db.flush().map_err(storage)?;
            return Ok(0);
        }
        let head: ChainHead = self
            .meta
            .get(CHAIN_HEAD)
            .map_err(storage)?
            .map_or(Ok(ChainHead::default()), |b| serde_json::from_slice(&b).map_err(json("chain head")))?;
        let mut imported = 0;
        for (seq, id, path) in on_disk {
            if seq > head.sequence && self.import_file(id, &path)? {
                imported += 1;
            }
        }
        if imported > 0 {
            self.db.flush().map_err(storage)?;
            tracing::warn!(imported, "evidence written to files but not yet indexed was indexed at open");
        }
        Ok(imported)
    }

    /// A record's media as (file name, bytes), as the files keep them.
    fn media_of(&self, id: EvidenceId, stored: &StoredEvidence) -> Result<Vec<(String, Vec<u8>)>, EvidenceError> {
        let mut out = Vec::new();
        if stored.media_purged_at.is_some() {
            return Ok(out);
        }
        out.push((OVERVIEW_FILE.to_string(), self.overview_of(id, stored)?));
        if let Some(clip) = self.clip_of(id, stored)? {
            out.push((CLIP_FILE.to_string(), clip));
        }
        for (sha, jpeg) in stored.record.plate_crop_hashes().into_iter().zip(self.plate_crops_of(id, stored)?) {
            out.push((plate_file(sha), jpeg));
        }
        Ok(out)
    }

    /// Indexes one record file (seal checked against this store's key, media against their hashes) with
    /// the delivery state its markers say. `Ok(false)` when it is indexed already.
    fn import_file(&self, id: EvidenceId, path: &Path) -> Result<bool, EvidenceError> {
        if self.records.contains_key(key(id)).map_err(storage)? {
            return Ok(false);
        }
        let mut stored = self.files.read_record(path)?;
        if stored.record.evidence_id != id {
            return Err(inconsistent(format!("{} holds record {}", path.display(), stored.record.evidence_id)));
        }
        central_protocol::verify(&stored.record, &stored.seal, Some(&self.key.public()))
            .map_err(|e| inconsistent(format!("{}: seal: {e}", path.display())))?;
        stored.delivery = self.files.delivery(id);
        let overview = self.files.read_media_checked(id, OVERVIEW_FILE, &stored.record.overview_sha256)?;
        let clip = match &stored.record.clip_sha256 {
            Some(sha) => self.files.read_media_checked(id, CLIP_FILE, sha)?,
            None => None,
        };
        let mut crops = Vec::new();
        for sha in stored.record.plate_crop_hashes() {
            if let Some(jpeg) = self.files.read_media_checked(id, &plate_file(sha), sha)? {
                crops.push((sha.to_string(), jpeg));
            }
        }
        if overview.is_none() && stored.media_purged_at.is_none() {
            // Purged after delivery (the files go with sled's), or lost: the record stays, its seal proves it.
            stored.media_purged_at = matches!(stored.delivery, Delivery::Delivered { .. }).then(Utc::now);
        }
        let record_bytes = serde_json::to_vec(&stored).map_err(json("record"))?;
        let media_bytes = overview.as_ref().map_or(0, Vec::len)
            + clip.as_ref().map_or(0, Vec::len)
            + crops.iter().map(|(_, j)| j.len()).sum::<usize>();
        (&self.meta, &self.records, &self.pending)
            .transaction(|(meta, records, pending)| {
                if records.get(key(id))?.is_some() {
                    return Ok(());
                }
                records.insert(&key(id), record_bytes.as_slice())?;
                if stored.delivery == Delivery::Pending {
                    pending.insert(&key(id), &[])?;
                }
                let head: ChainHead = read_json(meta, CHAIN_HEAD)?;
                if stored.record.sequence > head.sequence {
                    let next = ChainHead {
                        sequence: stored.record.sequence,
                        record_sha256: stored.seal.record_sha256.clone(),
                    };
                    write_json(meta, CHAIN_HEAD, &next)?;
                }
                let mut totals: StoreCounts = read_json(meta, TOTALS)?;
                totals.total += 1;
                count_state(&mut totals, &stored.delivery, 1);
                totals.bytes += (record_bytes.len() + media_bytes) as u64;
                totals.media_purged += u64::from(stored.media_purged_at.is_some());
                write_json(meta, TOTALS, &totals)?;
                Ok(())
            })
            .map_err(tx_error)?;
        Ok(true)
    }

    /// Indexes the records whose files were written but that sled refused (see `put`); an error while any
    /// is left.
    fn index_left_over(&self) -> Result<(), EvidenceError> {
        let mut left = self.unindexed.lock().map_err(|_| inconsistent("unindexed list poisoned"))?;
        if left.is_empty() {
            return Ok(());
        }
        while let Some((id, path)) = left.first() {
            self.import_file(*id, path).map_err(|e| {
                inconsistent(format!(
                    "record {id} is in its files but not yet indexed (a full disk?), so no new record is taken: {e}"
                ))
            })?;
            left.remove(0);
        }
        self.db.flush().map(drop).map_err(storage)
    }

    /// Where the second copy of the records (the files) is kept.
    pub fn files_dir(&self) -> &Path {
        self.files.root()
    }

    /// Sets the retention period and disk quota.
    pub fn with_limits(mut self, limits: StoreLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Counts everything by scanning (a store written before totals were kept, or after a repair).
    fn rebuild_totals(&self) -> Result<(), EvidenceError> {
        let mut totals = StoreCounts::default();
        for item in self.records.iter() {
            let (k, bytes) = item.map_err(storage)?;
            let id = id_from_key(&k).ok_or_else(|| inconsistent("malformed key in records tree"))?;
            let stored: StoredEvidence =
                serde_json::from_slice(&bytes).map_err(|e| EvidenceError::Corrupt { id, message: e.to_string() })?;
            count_state(&mut totals, &stored.delivery, 1);
            totals.total += 1;
            totals.bytes += bytes.len() as u64 + self.files.media_bytes(id)?;
            totals.media_purged += u64::from(stored.media_purged_at.is_some());
        }
        for item in self.media.iter() {
            totals.bytes += item.map_err(storage)?.1.len() as u64;
        }
        self.meta.insert(TOTALS, serde_json::to_vec(&totals).map_err(json("totals"))?).map_err(storage)?;
        self.db.flush().map_err(storage)?;
        Ok(())
    }

    /// Removes the media of a delivered record, keeping the record and its seal. Returns the bytes freed, or
    /// `None` when the record is not delivered or its media are already gone.
    fn purge_media(&self, id: EvidenceId, now: DateTime<Utc>) -> Result<Option<u64>, EvidenceError> {
        let legacy = |stored: &StoredEvidence| {
            let mut keys = vec![media_key(id), clip_key(id)];
            keys.extend(stored.record.plate_crop_hashes().into_iter().map(|sha| plate_key(id, sha)));
            keys
        };
        let purged = (&self.meta, &self.records)
            .transaction(|(meta, records)| {
                let Some(bytes) = records.get(key(id))? else { return Ok(None) };
                let mut stored: StoredEvidence =
                    serde_json::from_slice(&bytes).map_err(|e| abort(json("record")(e)))?;
                if !matches!(stored.delivery, Delivery::Delivered { .. }) || stored.media_purged_at.is_some() {
                    return Ok(None); // never an undelivered record's image
                }
                // Measured here, so that the quota's walk over every record reads only the folders it purges.
                let file_bytes = self.files.media_bytes(id).map_err(ConflictableTransactionError::Abort)?;
                stored.media_purged_at = Some(now);
                let new_bytes = serde_json::to_vec(&stored).map_err(|e| abort(json("record")(e)))?;
                records.insert(&key(id), new_bytes.as_slice())?;
                let mut totals: StoreCounts = read_json(meta, TOTALS)?;
                totals.bytes = (totals.bytes + new_bytes.len() as u64).saturating_sub(file_bytes + bytes.len() as u64);
                totals.media_purged += 1;
                write_json(meta, TOTALS, &totals)?;
                Ok(Some((stored, file_bytes)))
            })
            .map_err(tx_error)?;
        let Some((stored, file_bytes)) = purged else { return Ok(None) };
        // Said durably before the files go: a kill in between must leave "purged", not "missing".
        self.db.flush().map_err(storage)?;
        self.files.purge_media(id)?;
        // A store from before the evidence files kept media in sled.
        let mut freed = file_bytes;
        for k in legacy(&stored) {
            freed += self.media.remove(k).map_err(storage)?.map_or(0, |m| m.len() as u64);
        }
        Ok(Some(freed))
    }

    /// Removes images of records delivered longer ago than the retention period. Returns how many.
    pub fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, EvidenceError> {
        let Some(retention) = self.limits.retention else { return Ok(0) };
        let mut purged = 0;
        for id in self.list()? {
            let stored = self.get(id)?;
            if let Delivery::Delivered { receipt } = &stored.delivery {
                if stored.media_purged_at.is_none() && receipt.stored_at + retention <= now {
                    purged += u64::from(self.purge_media(id, now)?.is_some());
                }
            }
        }
        if purged > 0 {
            self.db.flush().map_err(storage)?;
            tracing::info!(purged, "images of delivered evidence past retention removed");
        }
        Ok(purged)
    }

    /// Keeps the store under its quota by removing images of delivered records, oldest first; raises the
    /// alarm when only undelivered evidence is left to fill the quota.
    fn enforce_quota(&self, now: DateTime<Utc>) -> Result<(), EvidenceError> {
        let Some(quota) = self.limits.quota_bytes else { return Ok(()) };
        if self.counts()?.bytes <= quota {
            self.set_alarm(None);
            return Ok(());
        }
        for id in self.list()? {
            if self.purge_media(id, now)?.is_some() && self.counts()?.bytes <= quota {
                break;
            }
        }
        self.db.flush().map_err(storage)?;
        let counts = self.counts()?;
        if counts.bytes > quota {
            self.set_alarm(Some(format!(
                "evidence store holds {} bytes, over its quota of {quota}, and nothing more can be freed: \
                 {} record(s) wait for the central service. Recording continues; add disk or restore the link.",
                counts.bytes, counts.pending
            )));
        } else {
            self.set_alarm(None);
        }
        Ok(())
    }

    /// Free bytes on the store's filesystem (what an unprivileged writer may use).
    fn free_bytes(&self) -> Result<u64, EvidenceError> {
        let st = rustix::fs::statvfs(&self.dir)
            .map_err(|e| EvidenceError::Io { path: self.dir.display().to_string(), source: e.into() })?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }

    /// Makes sure `needed` bytes fit above the reserve: under twice the reserve the alarm rises and images of
    /// delivered records go, oldest first; a record that would still eat into the reserve is refused.
    fn make_room(&self, needed: u64) -> Result<(), EvidenceError> {
        let Some(reserve) = self.limits.reserve_bytes else { return Ok(()) };
        // The evidence files hold it once; sled writes it to its log and again when it compacts: three times.
        let needed = needed.saturating_mul(3);
        let mut free = self.free_bytes()?;
        if free < needed.saturating_add(reserve.saturating_mul(2)) {
            for id in self.list()? {
                if self.purge_media(id, Utc::now())?.is_some() {
                    self.db.flush().map_err(storage)?;
                    free = self.free_bytes()?;
                    if free >= needed.saturating_add(reserve.saturating_mul(2)) {
                        break;
                    }
                }
            }
        }
        let low = free < needed.saturating_add(reserve.saturating_mul(2));
        self.set_disk_alarm(low.then(|| {
            format!(
                "disk nearly full: {} MiB free on the evidence store's disk; new records are refused below {} MiB. \
                 Delivered images are removed first; undelivered evidence is kept. Add disk or restore the link.",
                free >> 20,
                reserve >> 20
            )
        }));
        if free < needed.saturating_add(reserve) {
            self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(EvidenceError::DiskReserve { free, needed, reserve });
        }
        Ok(())
    }

    fn set_disk_alarm(&self, alarm: Option<String>) {
        let Ok(mut current) = self.disk_alarm.lock() else { return };
        if alarm.is_some() && current.is_none() {
            tracing::error!(alarm = alarm.as_deref().unwrap_or_default(), "ALARM: evidence disk nearly full");
        }
        *current = alarm;
    }

    fn set_alarm(&self, alarm: Option<String>) {
        let Ok(mut current) = self.alarm.lock() else { return };
        if alarm.is_some() && current.is_none() {
            tracing::error!(alarm = alarm.as_deref().unwrap_or_default(), "ALARM: evidence store full");
        }
        *current = alarm;
    }

    /// The device key's public half: what verifies this store's seals.
    pub fn public_key(&self) -> central_protocol::VerifyingKey {
        self.key.public()
    }

    pub fn device_key(&self) -> &DeviceKey {
        &self.key
    }

    fn write_state(&self, id: EvidenceId, delivery: Delivery) -> Result<(), EvidenceError> {
        if !self.records.contains_key(key(id)).map_err(storage)? {
            return Err(EvidenceError::NotFound(id));
        }
        self.files.write_delivery(id, &delivery)?;
        (&self.meta, &self.records, &self.pending)
            .transaction(|(meta, records, pending)| {
                let bytes =
                    records.get(key(id))?.ok_or(ConflictableTransactionError::Abort(EvidenceError::NotFound(id)))?;
                let mut stored: StoredEvidence = serde_json::from_slice(&bytes).map_err(|e| {
                    ConflictableTransactionError::Abort(EvidenceError::Corrupt { id, message: e.to_string() })
                })?;
                let mut totals: StoreCounts = read_json(meta, TOTALS)?;
                count_state(&mut totals, &stored.delivery, -1);
                count_state(&mut totals, &delivery, 1);
                stored.delivery = delivery.clone();
                let new_bytes = serde_json::to_vec(&stored).map_err(|e| abort(json("record")(e)))?;
                totals.bytes = (totals.bytes + new_bytes.len() as u64).saturating_sub(bytes.len() as u64);
                records.insert(&key(id), new_bytes.as_slice())?;
                pending.remove(&key(id))?;
                write_json(meta, TOTALS, &totals)?;
                Ok(())
            })
            .map_err(tx_error)?;
        self.db.flush().map_err(storage)?;
        Ok(())
    }
}

fn tx_error(e: TransactionError<EvidenceError>) -> EvidenceError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => storage(e),
    }
}

/// Adds `delta` to the counter of `state`.
fn count_state(totals: &mut StoreCounts, state: &Delivery, delta: i64) {
    let counter = match state {
        Delivery::Pending => &mut totals.pending,
        Delivery::Delivered { .. } => &mut totals.delivered,
        Delivery::Rejected { .. } => &mut totals.rejected,
    };
    *counter = counter.saturating_add_signed(delta);
}

/// Media reads for a record already read (stored under `id`); each is checked against the hash it names.
impl SledStore {
    fn overview_of(&self, id: EvidenceId, stored: &StoredEvidence) -> Result<Vec<u8>, EvidenceError> {
        if stored.media_purged_at.is_some() {
            return Err(EvidenceError::MediaPurged(id));
        }
        self.checked(id, media_key(id), OVERVIEW_FILE, &stored.record.overview_sha256, "overview")?
            .ok_or(EvidenceError::NotFound(id))
    }

    fn clip_of(&self, id: EvidenceId, stored: &StoredEvidence) -> Result<Option<Vec<u8>>, EvidenceError> {
        let Some(expected) = &stored.record.clip_sha256 else { return Ok(None) };
        if stored.media_purged_at.is_some() {
            return Err(EvidenceError::MediaPurged(id));
        }
        self.checked(id, clip_key(id), CLIP_FILE, expected, "clip")?.ok_or(EvidenceError::NotFound(id)).map(Some)
    }

    fn plate_crops_of(&self, id: EvidenceId, stored: &StoredEvidence) -> Result<Vec<Vec<u8>>, EvidenceError> {
        let named = stored.record.plate_crop_hashes();
        if named.is_empty() {
            return Ok(Vec::new());
        }
        if stored.media_purged_at.is_some() {
            return Err(EvidenceError::MediaPurged(id));
        }
        named
            .into_iter()
            .map(|sha| {
                let what = format!("plate picture {sha}");
                self.checked(id, plate_key(id, sha), &plate_file(sha), sha, &what)?
                    .ok_or_else(|| EvidenceError::Corrupt { id, message: format!("{what} is missing") })
            })
            .collect()
    }

    /// A record's medium (`file` among the evidence files; `media_key` in sled for a store from before them),
    /// checked against `expected`: media that no longer match the hash the record was written with are
    /// reported as altered, never served and never quietly replaced.
    fn checked(
        &self,
        id: EvidenceId,
        media_key: Vec<u8>,
        file: &str,
        expected: &str,
        what: &str,
    ) -> Result<Option<Vec<u8>>, EvidenceError> {
        let bytes = match self.files.read_media(id, file)? {
            Some(bytes) => bytes,
            None => match self.media.get(media_key) {
                Ok(Some(bytes)) => bytes.to_vec(),
                Ok(None) => return Ok(None),
                Err(e) => return Err(storage(e)),
            },
        };
        let actual = central_protocol::sha256_hex(&bytes);
        if actual != expected {
            return Err(EvidenceError::Corrupt { id, message: format!("{what} hashes to {actual}") });
        }
        Ok(Some(bytes))
    }

    /// The index failed to read something the files had: said once, loudly, with what to do.
    fn note_index_damage(&self, what: &str) {
        let Ok(mut alarm) = self.recovery_alarm.lock() else { return };
        if alarm.is_none() {
            tracing::error!(what, "ALARM: evidence index damaged; reading from the evidence files");
            *alarm = Some(format!(
                "the evidence index is damaged ({what}); evidence is read from the evidence files: run \
                 `edge-agent evidence rebuild` at a quiet moment"
            ));
        }
    }
}

impl EvidenceStore for SledStore {
    fn put_with_media(&self, draft: &EvidenceRecord, media: &Media<'_>) -> Result<StoredEvidence, EvidenceError> {
        let id = draft.evidence_id;
        let Media { overview_jpeg, clip_mp4, plate_crops } = *media;
        let clip_hash = clip_mp4.map(central_protocol::sha256_hex);
        if clip_hash != draft.clip_sha256 {
            return Err(inconsistent(format!("{id}: the clip given does not match the record's clip_sha256")));
        }
        let plate_crops = central_protocol::match_plate_crops(draft, plate_crops.to_vec())
            .map_err(|e| inconsistent(format!("{id}: {e}")))?;
        let media_bytes = overview_jpeg.len()
            + clip_mp4.map_or(0, <[u8]>::len)
            + plate_crops.iter().map(|(_, jpeg)| jpeg.len()).sum::<usize>();
        // A refusal here is clean: nothing was written, the alarm is up and the refusal counted.
        self.make_room(media_bytes as u64 + 4096)?;
        let _writer = self.write_lock.lock().map_err(|_| inconsistent("writer lock poisoned"))?;
        let _timing = WriteTimer::start(&self.writing_since);
        self.index_left_over()?;
        if self.records.contains_key(key(id)).map_err(storage)? {
            return Err(EvidenceError::Exists(id));
        }
        let head: ChainHead = match self.meta.get(CHAIN_HEAD).map_err(storage)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(json("record"))?,
            None => ChainHead::default(),
        };
        let mut record = draft.clone();
        record.sequence = head.sequence + 1;
        record.previous_record_sha256 = head.record_sha256.clone();
        let seal = central_protocol::seal(&record, self.key.signing_key());
        let next = ChainHead { sequence: record.sequence, record_sha256: seal.record_sha256.clone() };
        let stored = StoredEvidence { record, seal, delivery: Delivery::Pending, media_purged_at: None };
        // The files first, synced: from here on the record survives whatever happens to sled.
        let mut named: Vec<(String, &[u8])> = vec![(OVERVIEW_FILE.into(), overview_jpeg)];
        if let Some(clip) = clip_mp4 {
            named.push((CLIP_FILE.into(), clip));
        }
        for (sha, jpeg) in &plate_crops {
            named.push((plate_file(sha), jpeg.as_slice()));
        }
        self.files.write_record(&stored, &named)?;
        let bytes = serde_json::to_vec(&stored).map_err(json("record"))?;
        let sealed = (&self.meta, &self.records, &self.pending)
            .transaction(|(meta, records, pending)| {
                if records.get(key(id))?.is_some() {
                    return Err(ConflictableTransactionError::Abort(EvidenceError::Exists(id)));
                }
                let now_head: ChainHead = read_json(meta, CHAIN_HEAD)?;
                if now_head.sequence != head.sequence {
                    return Err(abort(inconsistent("the chain head moved while a record was being written")));
                }
                let mut totals: StoreCounts = read_json(meta, TOTALS)?;
                totals.total += 1;
                totals.pending += 1;
                totals.bytes += (bytes.len() + media_bytes) as u64;
                records.insert(&key(id), bytes.as_slice())?;
                pending.insert(&key(id), &[])?;
                write_json(meta, CHAIN_HEAD, &next)?;
                write_json(meta, TOTALS, &totals)?;
                Ok(stored.clone())
            })
            .map_err(tx_error);
        // Refused by sled (a full disk): the record is in its files, but sled may hold part of it (its
        // transactions are not atomic under I/O errors). It is indexed from its file before anything else is
        // written, so that no sequence number is given twice and the chain has no hole; until then the store
        // refuses records. It is not acknowledged, but not lost either.
        let sealed = sealed.inspect_err(|_| {
            if let Ok(mut left) = self.unindexed.lock() {
                left.push((id, self.files.record_path(stored.record.sequence, id)));
            }
        })?;
        // The acknowledgement to the pipeline: nothing counts as recorded before this flush.
        self.db.flush().map_err(storage)?;
        // Space is made after the record is safe: a full disk quota never refuses evidence.
        if let Err(e) = self.enforce_quota(Utc::now()) {
            tracing::error!(error = %e, "disk quota could not be enforced");
        }
        Ok(sealed)
    }

    fn get(&self, id: EvidenceId) -> Result<StoredEvidence, EvidenceError> {
        let bytes = match self.records.get(key(id)) {
            Ok(bytes) => bytes.ok_or(EvidenceError::NotFound(id))?,
            Err(e) => {
                let Some(path) = self.files.find_record(id)? else { return Err(storage(e)) };
                self.note_index_damage(&format!("record {id}: {e}"));
                let mut stored = self.files.read_record(&path)?;
                stored.delivery = self.files.delivery(id);
                return Ok(stored);
            }
        };
        serde_json::from_slice(&bytes).map_err(|e| EvidenceError::Corrupt { id, message: e.to_string() })
    }

    fn overview(&self, id: EvidenceId) -> Result<Vec<u8>, EvidenceError> {
        self.overview_of(id, &self.get(id)?)
    }

    fn clip(&self, id: EvidenceId) -> Result<Option<Vec<u8>>, EvidenceError> {
        self.clip_of(id, &self.get(id)?)
    }

    fn plate_crops(&self, id: EvidenceId) -> Result<Vec<Vec<u8>>, EvidenceError> {
        self.plate_crops_of(id, &self.get(id)?)
    }

    fn with_media(&self, id: EvidenceId) -> Result<(StoredEvidence, StoredMedia), EvidenceError> {
        let stored = self.get(id)?;
        let media = StoredMedia {
            overview_jpeg: self.overview_of(id, &stored)?,
            clip_mp4: self.clip_of(id, &stored)?,
            plate_crops: self.plate_crops_of(id, &stored)?,
        };
        Ok((stored, media))
    }

    fn pending(&self, limit: usize) -> Result<Vec<EvidenceId>, EvidenceError> {
        self.pending
            .iter()
            .keys()
            .take(limit)
            .map(|k| {
                let k = k.map_err(storage)?;
                id_from_key(&k).ok_or_else(|| inconsistent("malformed key in pending tree"))
            })
            .collect()
    }

    fn mark_delivered(&self, receipt: &IngestReceipt) -> Result<(), EvidenceError> {
        self.write_state(receipt.evidence_id, Delivery::Delivered { receipt: receipt.clone() })
    }

    fn mark_rejected(&self, id: EvidenceId, reason: &str) -> Result<(), EvidenceError> {
        self.write_state(id, Delivery::Rejected { reason: reason.to_string(), at: chrono::Utc::now() })
    }

    fn list(&self) -> Result<Vec<EvidenceId>, EvidenceError> {
        self.records
            .iter()
            .keys()
            .map(|k| {
                let k = k.map_err(storage)?;
                id_from_key(&k).ok_or_else(|| inconsistent("malformed key in records tree"))
            })
            .collect()
    }

    fn chain_head(&self) -> Result<(u64, String), EvidenceError> {
        let head: ChainHead = match self.meta.get(CHAIN_HEAD).map_err(storage)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| EvidenceError::Json { what: "chain head".into(), source })?,
            None => ChainHead::default(),
        };
        Ok((head.sequence, head.record_sha256))
    }

    fn counts(&self) -> Result<StoreCounts, EvidenceError> {
        match self.meta.get(TOTALS).map_err(storage)? {
            Some(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| EvidenceError::Json { what: "totals".into(), source })
            }
            None => Ok(StoreCounts::default()),
        }
    }

    fn refused(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn alarm(&self) -> Option<String> {
        let since = self.writing_since.load(std::sync::atomic::Ordering::Relaxed);
        let stalled = (since > 0)
            .then(|| Utc::now() - DateTime::from_timestamp_millis(since).unwrap_or_default())
            .filter(|took| *took > STALLED_AFTER)
            .map(|took| {
                format!(
                    "an evidence write has been waiting for the disk for {} s: the disk is stalled or failing",
                    took.num_seconds()
                )
            });
        if stalled.is_some() {
            return stalled;
        }
        let recovery = self.recovery_alarm.lock().ok().and_then(|a| a.clone());
        let disk = self.disk_alarm.lock().ok().and_then(|a| a.clone());
        recovery.or(disk).or_else(|| self.alarm.lock().ok().and_then(|a| a.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::EvidenceFiles;
    use crate::verify_store;
    use central_protocol::{sha256_hex, IngestStatus};
    use std::sync::atomic::Ordering::Relaxed;

    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 9, 9];

    fn record() -> EvidenceRecord {
        EvidenceRecord { sequence: 0, ..EvidenceRecord::synthetic("box", "cam", JPEG) }
    }

    fn open(dir: &Path) -> SledStore {
        let key = DeviceKey::load_or_create(&dir.join("device.key")).expect("device key");
        SledStore::open(&dir.join("store"), key).expect("open")
    }

    /// Overwrites a medium's file behind the store's back, as someone with disk access might.
    fn tamper(store: &SledStore, id: EvidenceId, file: &str, bytes: &[u8]) {
        std::fs::write(store.files.media_dir(id).join(file), bytes).expect("tamper");
    }

    fn receipt(id: EvidenceId) -> IngestReceipt {
        IngestReceipt { evidence_id: id, status: IngestStatus::Created, stored_at: chrono::Utc::now() }
    }

    #[test]
    fn below_the_disk_reserve_a_record_is_refused_cleanly_and_the_alarm_rises_before_the_first_refusal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let free = store.free_bytes().expect("free");
        // A reserve at 60% of the free space: under twice the reserve, so the alarm is up, but records fit.
        let warn = StoreLimits { reserve_bytes: Some(free / 10 * 6), ..Default::default() };
        let store = store.with_limits(warn);
        let kept = store.put(&record(), JPEG).expect("a record still fits");
        assert!(store.alarm().is_some_and(|a| a.contains("disk nearly full")), "{:?}", store.alarm());
        assert_eq!(store.refused(), 0, "the alarm came before any refusal");
        // A reserve larger than the free space: refused, counted, and nothing written.
        let full = StoreLimits { reserve_bytes: Some(free + (1 << 30)), ..Default::default() };
        let store = store.with_limits(full);
        let before = store.counts().expect("counts");
        let err = store.put(&record(), JPEG).expect_err("refused");
        assert!(matches!(err, EvidenceError::DiskReserve { .. }), "{err}");
        assert_eq!(store.refused(), 1);
        assert_eq!(store.counts().expect("counts"), before, "nothing of the refused record was written");
        assert_eq!(store.chain_head().expect("head").0, kept.record.sequence, "the chain skips no number");
        assert_eq!(store.get(kept.record.evidence_id).expect("kept"), kept);
    }

    #[test]
    fn deleted_sled_files_are_rebuilt_from_the_evidence_files_at_open_with_delivery_state_and_an_alarm() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b, c) = (record(), record(), record());
        {
            let store = open(dir.path());
            for r in [&a, &b, &c] {
                store.put(r, JPEG).expect("put");
            }
            store.mark_delivered(&receipt(a.evidence_id)).expect("deliver a");
        }
        std::fs::remove_dir_all(dir.path().join("store")).expect("lose the sled files");
        let store = open(dir.path());
        assert!(store.alarm().is_some_and(|a| a.contains("indexed again")), "{:?}", store.alarm());
        assert_eq!(store.pending(10).expect("pending"), vec![b.evidence_id, c.evidence_id]);
        assert!(matches!(store.get(a.evidence_id).expect("a").delivery, Delivery::Delivered { .. }));
        assert_eq!(store.overview(c.evidence_id).expect("image"), JPEG);
        let report = verify_store(&store, &store.public_key()).expect("verify");
        assert!(report.is_clean(), "{:?}", report.problems);
        assert_eq!(report.chain_length, 3);
        // Recording goes on from the chain's head.
        assert_eq!(store.put(&record(), JPEG).expect("put").record.sequence, 4);
    }

    #[test]
    fn damaged_sled_files_are_moved_aside_and_every_record_is_read_back_from_the_evidence_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ids = Vec::new();
        {
            let store = open(dir.path());
            for _ in 0..20 {
                ids.push(store.put(&record(), JPEG).expect("put").record.evidence_id);
            }
        }
        // Overwrite the start of every file sled has with junk.
        for entry in std::fs::read_dir(dir.path().join("store")).expect("dir").flatten() {
            if entry.path().is_file() {
                let mut bytes = std::fs::read(entry.path()).expect("read");
                for b in bytes.iter_mut().take(4096) {
                    *b ^= 0x5a;
                }
                std::fs::write(entry.path(), bytes).expect("damage");
            }
        }
        let store = open(dir.path());
        for id in &ids {
            assert_eq!(store.overview(*id).expect("readable"), JPEG);
        }
        assert!(verify_store(&store, &store.public_key()).expect("verify").is_clean());
        let aside = std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("store.damaged-"));
        assert_eq!(aside.count(), 1, "the damaged files are kept, not deleted");
    }

    #[test]
    fn rebuild_indexes_every_record_file_afresh_and_reports_a_damaged_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = open(dir.path());
            for _ in 0..5 {
                store.put(&record(), JPEG).expect("put");
            }
        }
        let files = EvidenceFiles::beside(&dir.path().join("store"));
        let (_, _, third) = files.records().expect("records").remove(2);
        let mut bytes = std::fs::read(&third).expect("read");
        let at = bytes.len() / 2;
        bytes[at] ^= 1;
        std::fs::write(&third, bytes).expect("flip a byte");
        let key = DeviceKey::load_or_create(&dir.path().join("device.key")).expect("key");
        let (store, report) = SledStore::rebuild(&dir.path().join("store"), key).expect("rebuild");
        assert_eq!((report.records, report.damaged.len()), (4, 1), "{report:?}");
        assert!(report.moved_aside.is_some());
        assert_eq!(store.counts().expect("counts").total, 4);
        let verified = verify_store(&store, &store.public_key()).expect("verify");
        assert!(!verified.is_clean(), "the chain shows the record that could not be read back");
    }

    #[test]
    fn a_write_that_waits_on_the_disk_for_long_raises_the_alarm_while_it_waits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        assert!(store.alarm().is_none());
        // As a write blocked for 11 s would leave it.
        let timer = WriteTimer::start(&store.writing_since);
        store.writing_since.store((Utc::now() - chrono::Duration::seconds(11)).timestamp_millis(), Relaxed);
        assert!(store.alarm().is_some_and(|a| a.contains("stalled")), "{:?}", store.alarm());
        drop(timer);
        assert!(store.alarm().is_none(), "cleared when the write ends");
    }

    #[test]
    fn a_deleted_device_key_is_refused_not_silently_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        open(dir.path()).put(&record(), JPEG).expect("put");
        std::fs::remove_file(dir.path().join("device.key")).expect("delete the key");
        let key = DeviceKey::load_or_create(&dir.path().join("device.key")).expect("a new key");
        let err = SledStore::open(&dir.path().join("store"), key).expect_err("refused");
        assert!(matches!(err, EvidenceError::OtherDeviceKey { .. }), "{err}");
        assert!(err.to_string().contains("restore the original device.key"), "{err}");
    }

    #[test]
    fn a_stored_record_reads_back_after_reopening_and_stays_pending_until_delivered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (record(), record());
        let sealed_a = {
            let store = open(dir.path());
            let sealed_a = store.put(&a, JPEG).expect("put a");
            store.put(&b, JPEG).expect("put b");
            sealed_a
        };
        let store = open(dir.path());
        assert_eq!(store.get(a.evidence_id).expect("get"), sealed_a);
        assert_eq!(sealed_a.record, EvidenceRecord { sequence: 1, ..a.clone() });
        assert_eq!(store.overview(b.evidence_id).expect("overview"), JPEG);
        assert_eq!(store.pending(10).expect("pending"), vec![a.evidence_id, b.evidence_id]);
        store.mark_delivered(&receipt(a.evidence_id)).expect("deliver");
        assert_eq!(store.pending(10).expect("pending"), vec![b.evidence_id]);
        let counts = store.counts().expect("counts");
        assert_eq!((counts.total, counts.pending, counts.delivered, counts.rejected), (2, 1, 1, 0));
    }

    #[test]
    fn a_record_is_never_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let a = record();
        store.put(&a, JPEG).expect("put");
        assert!(matches!(store.put(&a, JPEG), Err(EvidenceError::Exists(_))));
    }

    #[test]
    fn a_rejected_record_is_kept_but_leaves_the_send_queue() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let a = record();
        store.put(&a, JPEG).expect("put");
        store.mark_rejected(a.evidence_id, "bad signature").expect("reject");
        assert!(store.pending(10).expect("pending").is_empty());
        assert!(matches!(store.get(a.evidence_id).expect("get").delivery, Delivery::Rejected { .. }));
    }

    #[test]
    fn media_that_no_longer_matches_its_hash_is_not_served() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let a = record();
        store.put(&a, JPEG).expect("put");
        tamper(&store, a.evidence_id, OVERVIEW_FILE, &[0xFF, 0xD8, 0xFF, 0xE0, 9, 8]);
        assert!(matches!(store.overview(a.evidence_id), Err(EvidenceError::Corrupt { .. })));
    }

    #[test]
    fn a_store_with_another_layout_version_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = sled::open(dir.path()).expect("sled");
            db.open_tree("meta").expect("meta").insert("layout_version", "0").expect("insert");
            db.flush().expect("flush");
        }
        let key = DeviceKey::load_or_create(&dir.path().join("device.key")).expect("key");
        let result = SledStore::open(dir.path(), key);
        assert!(matches!(result, Err(EvidenceError::Layout { .. })), "{result:?}");
    }

    #[test]
    fn records_are_sealed_in_a_chain_that_verifies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let first = store.put(&record(), JPEG).expect("put");
        let second = store.put(&record(), JPEG).expect("put");
        assert_eq!((first.record.sequence, second.record.sequence), (1, 2));
        assert_eq!(second.record.previous_record_sha256, first.seal.record_sha256);
        assert_eq!(store.chain_head().expect("head"), (2, second.seal.record_sha256.clone()));
        let report = verify_store(&store, &store.public_key()).expect("verify");
        assert!(report.is_clean(), "{:?}", report.problems);
        assert_eq!((report.records, report.intact, report.chain_length), (2, 2, 2));
    }

    #[test]
    fn a_record_deleted_from_the_middle_of_the_chain_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let ids: Vec<_> = (0..3).map(|_| store.put(&record(), JPEG).expect("put").record.evidence_id).collect();
        store.records.remove(key(ids[1])).expect("delete behind the store's back");
        let report = verify_store(&store, &store.public_key()).expect("verify");
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert_eq!(report.problems[0].sequence, Some(2));
        assert!(report.problems[0].message.contains("missing"));
        // Deleting the newest record is caught by the chain head.
        store.records.remove(key(ids[2])).expect("delete the newest");
        let report = verify_store(&store, &store.public_key()).expect("verify");
        assert!(report.problems.iter().any(|p| p.message.contains("newest")), "{:?}", report.problems);
    }

    #[test]
    fn a_flipped_byte_in_a_record_or_its_image_is_detected_not_served() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let a = store.put(&record(), JPEG).expect("put").record.evidence_id;
        let b = store.put(&record(), JPEG).expect("put").record.evidence_id;
        // Record: change the vehicle class in the stored JSON, as an editor with disk access might.
        let bytes = store.records.get(key(a)).expect("get").expect("present");
        let text = String::from_utf8(bytes.to_vec()).expect("utf8").replace("\"car\"", "\"bus\"");
        store.records.insert(key(a), text.as_bytes()).expect("tamper");
        // Image: flip one bit.
        let mut jpeg = JPEG.to_vec();
        jpeg[5] ^= 1;
        tamper(&store, b, OVERVIEW_FILE, &jpeg);
        assert!(matches!(store.overview(b), Err(EvidenceError::Corrupt { .. })));
        let report = verify_store(&store, &store.public_key()).expect("verify");
        assert_eq!(report.damaged, vec![a, b], "{:?}", report.problems);
        assert!(report.problems.iter().any(|p| p.message.contains("altered")));
    }

    #[test]
    fn a_store_sealed_by_another_device_key_does_not_verify() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        store.put(&record(), JPEG).expect("put");
        let stranger = DeviceKey::load_or_create(&dir.path().join("other.key")).expect("key");
        let report = verify_store(&store, &stranger.public()).expect("verify");
        assert!(report.problems.iter().any(|p| p.message.contains("not by this device")), "{:?}", report.problems);
    }

    /// Random operations against an in-memory model of what the store must hold; several seeds.
    #[test]
    fn the_store_agrees_with_a_simple_model_under_random_operations() {
        use std::collections::BTreeMap;
        for seed in 1..=5u64 {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut store = open(dir.path());
            // id -> (state: 0 pending, 1 delivered, 2 rejected, jpeg)
            let mut model: BTreeMap<EvidenceId, (u8, Vec<u8>)> = BTreeMap::new();
            for _ in 0..120 {
                let known: Vec<EvidenceId> = model.keys().copied().collect();
                match rng.u8(0..10) {
                    0..=4 => {
                        let mut jpeg = JPEG.to_vec();
                        jpeg.extend((0..rng.usize(0..64)).map(|_| rng.u8(..)));
                        let mut r = record();
                        r.overview_sha256 = sha256_hex(&jpeg);
                        store.put(&r, &jpeg).expect("put");
                        model.insert(r.evidence_id, (0, jpeg));
                    }
                    5 | 6 if !known.is_empty() => {
                        let id = known[rng.usize(..known.len())];
                        store.mark_delivered(&receipt(id)).expect("deliver");
                        model.get_mut(&id).expect("known").0 = 1;
                    }
                    7 if !known.is_empty() => {
                        let id = known[rng.usize(..known.len())];
                        store.mark_rejected(id, "test").expect("reject");
                        model.get_mut(&id).expect("known").0 = 2;
                    }
                    8 => {
                        drop(store);
                        store = open(dir.path());
                    }
                    _ => {
                        let id = EvidenceId::new();
                        assert!(matches!(store.get(id), Err(EvidenceError::NotFound(_))));
                    }
                }
                let pending: Vec<_> = model.iter().filter(|(_, (s, _))| *s == 0).map(|(id, _)| *id).collect();
                assert_eq!(store.pending(usize::MAX).expect("pending"), pending, "seed {seed}");
                let in_state = |state: u8| model.values().filter(|(s, _)| *s == state).count() as u64;
                let c = store.counts().expect("counts");
                assert_eq!(
                    (c.total, c.pending, c.delivered, c.rejected),
                    (model.len() as u64, in_state(0), in_state(1), in_state(2)),
                    "seed {seed}"
                );
            }
            assert_eq!(store.list().expect("list"), model.keys().copied().collect::<Vec<_>>());
            for (id, (state, jpeg)) in &model {
                assert_eq!(&store.overview(*id).expect("overview"), jpeg);
                let delivery = store.get(*id).expect("get").delivery;
                let actual = match delivery {
                    Delivery::Pending => 0,
                    Delivery::Delivered { .. } => 1,
                    Delivery::Rejected { .. } => 2,
                };
                assert_eq!(actual, *state, "seed {seed}");
            }
            assert!(verify_store(&store, &store.public_key()).expect("verify").is_clean());
        }
    }

    fn delivered(store: &SledStore, id: EvidenceId, at: DateTime<Utc>) {
        let receipt = IngestReceipt { evidence_id: id, status: IngestStatus::Created, stored_at: at };
        store.mark_delivered(&receipt).expect("deliver");
    }

    fn put_with_image(store: &SledStore, image_bytes: usize) -> EvidenceId {
        let mut jpeg = JPEG.to_vec();
        jpeg.resize(image_bytes, 7);
        let mut r = record();
        r.overview_sha256 = sha256_hex(&jpeg);
        store.put(&r, &jpeg).expect("put").record.evidence_id
    }

    #[test]
    fn over_quota_only_delivered_images_go_oldest_first_and_records_stay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = StoreLimits { quota_bytes: Some(40_000), ..Default::default() };
        let store = open(dir.path()).with_limits(limits);
        let old = put_with_image(&store, 10_000);
        let newer = put_with_image(&store, 10_000);
        let waiting = put_with_image(&store, 10_000);
        delivered(&store, old, Utc::now());
        delivered(&store, newer, Utc::now());
        assert!(store.alarm().is_none());
        // The fourth image takes the store over quota: the oldest delivered image makes room.
        let fourth = put_with_image(&store, 10_000);
        assert!(matches!(store.overview(old), Err(EvidenceError::MediaPurged(_))));
        assert_eq!(store.overview(newer).expect("kept").len(), 10_000);
        assert_eq!(store.overview(waiting).expect("pending kept").len(), 10_000);
        assert!(store.counts().expect("counts").bytes <= 40_000);
        assert_eq!(store.get(old).expect("record stays").record.evidence_id, old);
        assert!(verify_store(&store, &store.public_key()).expect("verify").is_clean());
        // Only undelivered evidence left over quota: the alarm rises, nothing pending is touched, recording goes on.
        let more: Vec<_> = (0..3).map(|_| put_with_image(&store, 10_000)).collect();
        assert!(store.alarm().is_some_and(|a| a.contains("quota")), "{:?}", store.alarm());
        for id in [waiting, fourth].iter().chain(&more) {
            assert_eq!(store.overview(*id).expect("pending image never removed").len(), 10_000);
        }
        assert_eq!(store.counts().expect("counts").pending, 5);
    }

    #[test]
    fn images_of_delivered_records_are_removed_after_retention_and_pending_ones_never() {
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = StoreLimits { retention: Some(chrono::Duration::days(30)), ..Default::default() };
        let store = open(dir.path()).with_limits(limits);
        let long_ago = put_with_image(&store, 1000);
        let recent = put_with_image(&store, 1000);
        let pending = put_with_image(&store, 1000);
        delivered(&store, long_ago, Utc::now() - chrono::Duration::days(31));
        delivered(&store, recent, Utc::now() - chrono::Duration::days(1));
        assert_eq!(store.purge_expired(Utc::now()).expect("purge"), 1);
        assert!(matches!(store.overview(long_ago), Err(EvidenceError::MediaPurged(_))));
        assert!(store.overview(recent).is_ok() && store.overview(pending).is_ok());
        // Purging again finds nothing more; totals survive a reopen.
        assert_eq!(store.purge_expired(Utc::now() + chrono::Duration::days(400)).expect("purge"), 1);
        let before = store.counts().expect("counts");
        drop(store);
        let store = open(dir.path());
        assert_eq!(store.counts().expect("counts"), before);
        assert_eq!((before.total, before.pending, before.media_purged), (3, 1, 2));
        assert!(store.overview(pending).is_ok());
    }

    #[test]
    fn a_clip_is_stored_with_its_record_checked_by_hash_and_removed_with_the_image() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path())
            .with_limits(StoreLimits { retention: Some(chrono::Duration::days(1)), ..Default::default() });
        let clip = b"\0\0\0\x18ftypisom-clip-bytes".to_vec();
        let mut r = record();
        r.clip_sha256 = Some(sha256_hex(&clip));
        assert!(store.put(&r, JPEG).is_err(), "a record naming a clip needs the clip");
        let media = Media { overview_jpeg: JPEG, clip_mp4: Some(&clip), ..Media::default() };
        let id = store.put_with_media(&r, &media).expect("put").record.evidence_id;
        assert_eq!(store.clip(id).expect("clip"), Some(clip.clone()));
        let plain = store.put(&record(), JPEG).expect("put").record.evidence_id;
        assert_eq!(store.clip(plain).expect("no clip"), None);
        let mut tampered = clip.clone();
        tampered[10] ^= 1;
        tamper(&store, id, CLIP_FILE, &tampered);
        assert!(matches!(store.clip(id), Err(EvidenceError::Corrupt { .. })));
        let report = verify_store(&store, &store.public_key()).expect("verify");
        assert_eq!(report.damaged, vec![id], "{:?}", report.problems);
        tamper(&store, id, CLIP_FILE, &clip);
        delivered(&store, id, Utc::now() - chrono::Duration::days(2));
        assert_eq!(store.purge_expired(Utc::now()).expect("purge"), 1);
        assert!(!store.files.media_dir(id).join(CLIP_FILE).exists(), "the clip goes with the image");
        assert!(verify_store(&store, &store.public_key()).expect("verify").is_clean());
    }

    #[test]
    fn plate_pictures_are_stored_with_their_record_checked_by_hash_and_removed_with_the_image() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path())
            .with_limits(StoreLimits { retention: Some(chrono::Duration::days(1)), ..Default::default() });
        let crops = vec![vec![0xFF, 0xD8, 0xFF, 1], vec![0xFF, 0xD8, 0xFF, 2]];
        let mut r = record();
        let vote = |crop: &[u8]| te_types::PlateVote {
            frame_number: 3,
            text: Some("30A-123.45".into()),
            raw: "30A12345".into(),
            confidence: 0.9,
            weight: 0.9,
            crop_sha256: Some(sha256_hex(crop)),
        };
        r.plate = Some(te_types::PlateConsensus {
            text: Some("30A-123.45".into()),
            share: 1.0,
            votes: crops.iter().map(|c| vote(c)).collect(),
        });
        assert!(store.put(&r, JPEG).is_err(), "a record naming plate pictures needs them");
        let one_missing = Media { overview_jpeg: JPEG, plate_crops: &crops[..1], ..Media::default() };
        assert!(store.put_with_media(&r, &one_missing).is_err());
        assert_eq!(store.counts().expect("counts").total, 0, "a refused record leaves nothing behind");
        let reversed: Vec<_> = crops.iter().rev().cloned().collect();
        let media = Media { overview_jpeg: JPEG, plate_crops: &reversed, ..Media::default() };
        let id = store.put_with_media(&r, &media).expect("put").record.evidence_id;
        assert_eq!(store.plate_crops(id).expect("crops"), crops, "in vote order");
        let (stored, media) = store.with_media(id).expect("with media");
        assert_eq!((stored.record.evidence_id, media.overview_jpeg.as_slice()), (id, JPEG));
        assert_eq!((media.clip_mp4, media.plate_crops), (None, crops.clone()));
        let plain = store.put(&record(), JPEG).expect("put").record.evidence_id;
        assert_eq!(store.plate_crops(plain).expect("none"), Vec::<Vec<u8>>::new());
        let file = plate_file(&sha256_hex(&crops[1]));
        tamper(&store, id, &file, &[0xFF, 0xD8, 0xFF, 9]);
        assert!(matches!(store.plate_crops(id), Err(EvidenceError::Corrupt { .. })));
        assert!(matches!(store.with_media(id), Err(EvidenceError::Corrupt { .. })), "never sent altered");
        let report = verify_store(&store, &store.public_key()).expect("verify");
        assert_eq!(report.damaged, vec![id], "{:?}", report.problems);
        tamper(&store, id, &file, &crops[1]);
        delivered(&store, id, Utc::now() - chrono::Duration::days(2));
        assert_eq!(store.purge_expired(Utc::now()).expect("purge"), 1);
        assert!(!store.files.media_dir(id).join(&file).exists(), "the plate pictures go with the image");
        assert!(matches!(store.plate_crops(id), Err(EvidenceError::MediaPurged(_))));
        assert!(verify_store(&store, &store.public_key()).expect("verify").is_clean());
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read_dir") {
            let entry = entry.expect("entry");
            let target = to.join(entry.file_name());
            if entry.file_type().expect("type").is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).expect("copy");
            }
        }
    }

    /// A power cut keeps what was synced and may lose anything written since: sled's files may go back to
    /// their last flush (or further: its own fsyncs cover its log, not a half-written page), a file that was
    /// being written is left as its `.partial` twin, a media folder may exist without its record file. The
    /// record files are synced, renamed and their folder synced before a record is acknowledged, so every
    /// acknowledged record survives; this rolls sled back to an older state, leaves the debris a cut leaves,
    /// and checks the store opens with every acknowledged record, its chain whole and its next number new.
    #[test]
    fn a_power_cut_that_rolls_the_index_back_loses_no_acknowledged_record_and_reuses_no_sequence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let snapshot = dir.path().join("snapshot");
        let (early, late) =
            ((0..3).map(|_| record()).collect::<Vec<_>>(), (0..4).map(|_| record()).collect::<Vec<_>>());
        {
            let store = open(dir.path());
            for r in &early {
                store.put(r, JPEG).expect("put");
            }
            store.db.flush().expect("flush");
            copy_dir(&dir.path().join("store"), &snapshot);
            for r in &late {
                store.put(r, JPEG).expect("put");
            }
            store.mark_delivered(&receipt(late[0].evidence_id)).expect("deliver");
        }
        // The cut: sled as it was at the snapshot, and the debris of writes in flight.
        std::fs::remove_dir_all(dir.path().join("store")).expect("rm");
        std::fs::rename(&snapshot, dir.path().join("store")).expect("roll back");
        let files = dir.path().join("store.files");
        std::fs::write(files.join("records").join("00000000000000000099-junk.partial"), b"{\"rec").expect("partial");
        let orphan = files.join("media").join(EvidenceId::new().to_string());
        std::fs::create_dir_all(&orphan).expect("orphan media");
        std::fs::write(orphan.join(OVERVIEW_FILE), &JPEG[..3]).expect("an image whose record never came");
        std::fs::write(orphan.join("clip.partial"), b"\0\0").expect("half a clip");

        let store = open(dir.path());
        for r in early.iter().chain(&late) {
            let stored = store.get(r.evidence_id).expect("every acknowledged record is there");
            central_protocol::verify(&stored.record, &stored.seal, Some(&store.public_key())).expect("seal");
            assert_eq!(store.overview(r.evidence_id).expect("image"), JPEG);
        }
        assert!(
            matches!(store.get(late[0].evidence_id).expect("late 0").delivery, Delivery::Delivered { .. }),
            "the delivery marker was synced before sled had it"
        );
        let next = store.put(&record(), JPEG).expect("recording goes on");
        assert_eq!(next.record.sequence, (early.len() + late.len() + 1) as u64, "no sequence number used twice");
        let report = verify_store(&store, &store.public_key()).expect("verify");
        assert!(report.is_clean(), "{:?}", report.problems);
        assert!(!files.join("records").join("00000000000000000099-junk.partial").exists(), "debris cleared");
        assert!(!orphan.join("clip.partial").exists(), "debris cleared");
        assert!(orphan.join(OVERVIEW_FILE).exists(), "a complete file is kept even without its record");
    }
}
