//! Evidence store: every record the pipeline produces is kept on the box until the central service
//! acknowledges it, and after that until retention ends.
//!
//! Invariants:
//! - [`EvidenceStore::put`] returns only after the record and its media are flushed to disk: the pipeline
//!   counts a record as recorded only then.
//! - A record leaves the pending set only through [`EvidenceStore::mark_delivered`], which needs the central
//!   service's receipt. Nothing here deletes an undelivered record (Circular 67/2024/TT-BCA).
//! - sled is pre-1.0 and promises no on-disk format: it sits behind the [`EvidenceStore`] trait, and the key
//!   layout carries a version checked at open.
//! - Every record is sealed as it is stored: it gets the next sequence number and the hash of the device's
//!   previous record, then an Ed25519 signature over its hash ([`central_protocol::seal`]). [`verify_store`]
//!   re-checks every seal, every media hash and the whole chain.

mod device_key;
mod files;
mod sled_store;
mod verify;

pub use device_key::{DeviceKey, KeyError};
pub use sled_store::{RebuildReport, SledStore, StoreLimits};
pub use verify::{verify_store, Problem, VerifyReport};

use central_protocol::{EvidenceRecord, IngestReceipt, Seal};
use serde::{Deserialize, Serialize};
use te_types::EvidenceId;

/// Where a record is in its life on the box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Delivery {
    /// Not yet acknowledged by the central service.
    Pending,
    /// The central service refused it for a reason resending will not fix; kept, never retried automatically.
    Rejected { reason: String, at: chrono::DateTime<chrono::Utc> },
    /// Acknowledged: the receipt is the proof.
    Delivered { receipt: IngestReceipt },
}

/// A record as the box keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvidence {
    pub record: EvidenceRecord,
    pub seal: Seal,
    pub delivery: Delivery,
    /// When the image was removed to free space (only ever after delivery: retention or disk quota). The
    /// record and its seal stay, so the chain still verifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_purged_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Counts for the summary, health and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreCounts {
    pub total: u64,
    pub pending: u64,
    pub delivered: u64,
    pub rejected: u64,
    /// Bytes of records and images held (what the disk quota counts).
    pub bytes: u64,
    /// Delivered records whose image was removed to free space.
    pub media_purged: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("evidence store at {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: sled::Error,
    },
    #[error(
        "evidence store layout version {found} is not the one this agent writes ({expected}); export and migrate first"
    )]
    Layout { found: String, expected: u32 },
    #[error(
        "the evidence store was sealed with device key {stored}, but {path} holds key {given} (a deleted \
         device.key is replaced by a new one on start): restore the original device.key from its backup; to \
         start a new identity on purpose, deliver everything, then move the evidence folder aside"
    )]
    OtherDeviceKey { stored: String, given: String, path: String },
    #[error(
        "disk nearly full: {free} bytes free, {needed} needed, and {reserve} are kept in reserve; record refused \
         (images of delivered records are removed first; undelivered evidence never is)"
    )]
    DiskReserve { free: u64, needed: u64, reserve: u64 },
    /// The index (sled) failed.
    #[error("evidence store I/O: {0}")]
    Sled(#[from] sled::Error),
    /// A file of the store (records, media, the folder itself) could not be read or written.
    #[error("evidence store file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A stored or to-be-stored value could not be encoded or decoded.
    #[error("evidence store, {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// What the store found contradicts itself (a record in the wrong file, a malformed key, a poisoned lock).
    #[error("evidence store: {0}")]
    Inconsistent(String),
    #[error("evidence {0} is not in the store")]
    NotFound(EvidenceId),
    #[error("evidence {id}: stored bytes are unreadable: {message}")]
    Corrupt { id: EvidenceId, message: String },
    #[error("evidence {0} already exists; records are never overwritten")]
    Exists(EvidenceId),
    #[error(
        "evidence {0}: the image was removed after delivery (retention or disk quota); the central service holds it"
    )]
    MediaPurged(EvidenceId),
}

/// What a record is stored with. The record names each by hash; the store refuses media that do not match.
#[derive(Debug, Clone, Copy, Default)]
pub struct Media<'a> {
    pub overview_jpeg: &'a [u8],
    pub clip_mp4: Option<&'a [u8]>,
    /// The pictures of the plate the record's votes name (each at least once; in any order).
    pub plate_crops: &'a [Vec<u8>],
}

/// A record's media as read back, each checked against the hash the record names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMedia {
    pub overview_jpeg: Vec<u8>,
    pub clip_mp4: Option<Vec<u8>>,
    /// In vote order, as [`EvidenceStore::plate_crops`].
    pub plate_crops: Vec<Vec<u8>>,
}

/// The evidence store's contract, independent of the engine behind it.
pub trait EvidenceStore: Send + Sync {
    /// Seals and stores a new record with its media (the overview, the clip the record names, the plate
    /// pictures its votes name); durable when this returns. The store sets the record's `sequence` and
    /// `previous_record_sha256`; the sealed record is returned.
    fn put_with_media(&self, record: &EvidenceRecord, media: &Media<'_>) -> Result<StoredEvidence, EvidenceError>;
    /// [`EvidenceStore::put_with_media`] with an overview only.
    fn put(&self, record: &EvidenceRecord, overview_jpeg: &[u8]) -> Result<StoredEvidence, EvidenceError> {
        self.put_with_media(record, &Media { overview_jpeg, ..Media::default() })
    }
    /// The record's video clip, checked against its hash; `None` when the record has none.
    fn clip(&self, id: EvidenceId) -> Result<Option<Vec<u8>>, EvidenceError>;
    /// The plate pictures the record's votes name, checked against their hashes, in vote order.
    fn plate_crops(&self, id: EvidenceId) -> Result<Vec<Vec<u8>>, EvidenceError>;
    fn get(&self, id: EvidenceId) -> Result<StoredEvidence, EvidenceError>;
    fn overview(&self, id: EvidenceId) -> Result<Vec<u8>, EvidenceError>;
    /// The record with all its media (what is sent and exported), reading the record once.
    fn with_media(&self, id: EvidenceId) -> Result<(StoredEvidence, StoredMedia), EvidenceError>;
    /// Up to `limit` pending record ids, oldest first.
    fn pending(&self, limit: usize) -> Result<Vec<EvidenceId>, EvidenceError>;
    /// Records the central service's receipt; the record stops being pending. Durable when this returns.
    fn mark_delivered(&self, receipt: &IngestReceipt) -> Result<(), EvidenceError>;
    /// Records a refusal that resending cannot fix; the record is kept but leaves the send queue.
    fn mark_rejected(&self, id: EvidenceId, reason: &str) -> Result<(), EvidenceError>;
    /// All record ids, oldest first.
    fn list(&self) -> Result<Vec<EvidenceId>, EvidenceError>;
    fn counts(&self) -> Result<StoreCounts, EvidenceError>;
    /// The newest sealed record: (sequence, record hash); (0, "") for an empty store.
    fn chain_head(&self) -> Result<(u64, String), EvidenceError>;
    /// Records refused since start because the disk reached its reserve.
    fn refused(&self) -> u64 {
        0
    }

    /// A condition operators must act on (disk quota reached with nothing left to free, disk nearly full), if
    /// any.
    fn alarm(&self) -> Option<String> {
        None
    }
}
