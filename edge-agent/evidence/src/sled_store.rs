//! The sled implementation of [`EvidenceStore`].
//!
//! Key layout v1 (trees):
//! - `meta`:    `layout_version` -> "1"
//! - `records`: ULID (16 bytes, big-endian, so key order = creation order) -> JSON [`StoredEvidence`]
//! - `media`:   ULID ++ "/overview.jpg" -> JPEG bytes
//! - `pending`: ULID -> empty (the send queue, oldest first)
//!
//! A record, its media and its pending mark are written in one transaction, so after a crash either all three
//! exist or none does.

use crate::{Delivery, EvidenceError, EvidenceStore, StoreCounts, StoredEvidence};
use central_protocol::{EvidenceRecord, IngestReceipt};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use std::path::Path;
use te_types::EvidenceId;

const LAYOUT_VERSION: u32 = 1;
const OVERVIEW_SUFFIX: &[u8] = b"/overview.jpg";

#[derive(Debug)]
pub struct SledStore {
    db: sled::Db,
    records: sled::Tree,
    media: sled::Tree,
    pending: sled::Tree,
}

fn storage(e: impl std::fmt::Display) -> EvidenceError {
    EvidenceError::Storage(e.to_string())
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

impl SledStore {
    /// Opens (or creates) the store in `dir`, checking the key layout version.
    pub fn open(dir: &Path) -> Result<Self, EvidenceError> {
        let open_err = |e: sled::Error| EvidenceError::Open { path: dir.display().to_string(), message: e.to_string() };
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
        Ok(Self {
            records: db.open_tree("records").map_err(open_err)?,
            media: db.open_tree("media").map_err(open_err)?,
            pending: db.open_tree("pending").map_err(open_err)?,
            db,
        })
    }

    fn write_state(&self, id: EvidenceId, delivery: Delivery) -> Result<(), EvidenceError> {
        let mut stored = self.get(id)?;
        stored.delivery = delivery;
        let bytes = serde_json::to_vec(&stored).map_err(storage)?;
        (&self.records, &self.pending)
            .transaction(|(records, pending)| {
                records.insert(&key(id), bytes.as_slice())?;
                pending.remove(&key(id))?;
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(|e: TransactionError<()>| match e {
                TransactionError::Abort(()) => storage("transaction aborted"),
                TransactionError::Storage(e) => storage(e),
            })?;
        self.db.flush().map_err(storage)?;
        Ok(())
    }
}

impl EvidenceStore for SledStore {
    fn put(&self, record: &EvidenceRecord, overview_jpeg: &[u8]) -> Result<(), EvidenceError> {
        let id = record.evidence_id;
        let stored = StoredEvidence { record: record.clone(), delivery: Delivery::Pending };
        let bytes = serde_json::to_vec(&stored).map_err(storage)?;
        (&self.records, &self.media, &self.pending)
            .transaction(|(records, media, pending)| {
                if records.get(key(id))?.is_some() {
                    return Err(ConflictableTransactionError::Abort(()));
                }
                records.insert(&key(id), bytes.as_slice())?;
                media.insert(media_key(id), overview_jpeg)?;
                pending.insert(&key(id), &[])?;
                Ok(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(()) => EvidenceError::Exists(id),
                TransactionError::Storage(e) => storage(e),
            })?;
        // The acknowledgement to the pipeline: nothing counts as recorded before this flush.
        self.db.flush().map_err(storage)?;
        Ok(())
    }

    fn get(&self, id: EvidenceId) -> Result<StoredEvidence, EvidenceError> {
        let bytes = self.records.get(key(id)).map_err(storage)?.ok_or(EvidenceError::NotFound(id))?;
        serde_json::from_slice(&bytes).map_err(|e| EvidenceError::Corrupt { id, message: e.to_string() })
    }

    fn overview(&self, id: EvidenceId) -> Result<Vec<u8>, EvidenceError> {
        let bytes = self.media.get(media_key(id)).map_err(storage)?.ok_or(EvidenceError::NotFound(id))?;
        let stored = self.get(id)?;
        // Never serve media that no longer matches the hash the record was written with.
        let actual = central_protocol::sha256_hex(&bytes);
        if actual != stored.record.overview_sha256 {
            return Err(EvidenceError::Corrupt { id, message: format!("overview hashes to {actual}") });
        }
        Ok(bytes.to_vec())
    }

    fn pending(&self, limit: usize) -> Result<Vec<EvidenceId>, EvidenceError> {
        self.pending
            .iter()
            .keys()
            .take(limit)
            .map(|k| {
                let k = k.map_err(storage)?;
                id_from_key(&k).ok_or_else(|| storage("malformed key in pending tree"))
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
                id_from_key(&k).ok_or_else(|| storage("malformed key in records tree"))
            })
            .collect()
    }

    fn counts(&self) -> Result<StoreCounts, EvidenceError> {
        let mut counts = StoreCounts::default();
        for id in self.list()? {
            counts.total += 1;
            match self.get(id)?.delivery {
                Delivery::Pending => counts.pending += 1,
                Delivery::Delivered { .. } => counts.delivered += 1,
                Delivery::Rejected { .. } => counts.rejected += 1,
            }
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use central_protocol::{sha256_hex, IngestStatus, PROTOCOL_VERSION};
    use te_types::{BBox, CameraId, DeviceId, EventKind, TrackId, VehicleClass};

    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 9, 9];

    fn record() -> EvidenceRecord {
        EvidenceRecord {
            protocol_version: PROTOCOL_VERSION,
            evidence_id: EvidenceId::new(),
            device_id: DeviceId::new("box"),
            camera_id: CameraId::new("cam"),
            location: String::new(),
            kind: EventKind::VehicleDetected,
            captured_at: chrono::Utc::now(),
            recorded_at: chrono::Utc::now(),
            frame_number: 1,
            track_id: TrackId(1),
            vehicle_class: VehicleClass::Car,
            detection_score: 0.9,
            bbox: BBox { x1: 0.0, y1: 0.0, x2: 1.0, y2: 1.0 },
            overview_sha256: sha256_hex(JPEG),
            plate: None,
        }
    }

    fn receipt(id: EvidenceId) -> IngestReceipt {
        IngestReceipt { evidence_id: id, status: IngestStatus::Created, stored_at: chrono::Utc::now() }
    }

    #[test]
    fn a_stored_record_reads_back_after_reopening_and_stays_pending_until_delivered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (record(), record());
        {
            let store = SledStore::open(dir.path()).expect("open");
            store.put(&a, JPEG).expect("put a");
            store.put(&b, JPEG).expect("put b");
        }
        let store = SledStore::open(dir.path()).expect("reopen");
        assert_eq!(store.get(a.evidence_id).expect("get").record, a);
        assert_eq!(store.overview(b.evidence_id).expect("overview"), JPEG);
        assert_eq!(store.pending(10).expect("pending"), vec![a.evidence_id, b.evidence_id]);
        store.mark_delivered(&receipt(a.evidence_id)).expect("deliver");
        assert_eq!(store.pending(10).expect("pending"), vec![b.evidence_id]);
        assert_eq!(store.counts().expect("counts"), StoreCounts { total: 2, pending: 1, delivered: 1, rejected: 0 });
    }

    #[test]
    fn a_record_is_never_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path()).expect("open");
        let a = record();
        store.put(&a, JPEG).expect("put");
        assert!(matches!(store.put(&a, JPEG), Err(EvidenceError::Exists(_))));
    }

    #[test]
    fn a_rejected_record_is_kept_but_leaves_the_send_queue() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path()).expect("open");
        let a = record();
        store.put(&a, JPEG).expect("put");
        store.mark_rejected(a.evidence_id, "bad signature").expect("reject");
        assert!(store.pending(10).expect("pending").is_empty());
        assert!(matches!(store.get(a.evidence_id).expect("get").delivery, Delivery::Rejected { .. }));
    }

    #[test]
    fn media_that_no_longer_matches_its_hash_is_not_served() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path()).expect("open");
        let a = record();
        store.put(&a, JPEG).expect("put");
        store.media.insert(media_key(a.evidence_id), &[0xFF, 0xD8, 0xFF, 0xE0, 9, 8][..]).expect("tamper");
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
        let result = SledStore::open(dir.path());
        assert!(matches!(result, Err(EvidenceError::Layout { .. })), "{result:?}");
    }
}
