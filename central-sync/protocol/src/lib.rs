//! What an edge box and the central service say to each other. Versioned: a field is only ever added with a
//! default, and a breaking change bumps [`PROTOCOL_VERSION`], which the central service checks. The central
//! service refuses fields it does not know (a record must mean exactly what was sealed), so it is upgraded
//! before the boxes: a box that sends a new field to an older centre gets its records refused (and kept).
//!
//! ```text
//!  edge  POST /api/v1/evidence  EvidenceUpload  ->  central
//!        201 Created | 200 OK (already stored)  <-  IngestReceipt
//!  edge  GET  /api/v1/clips/<sha256>            ->  ClipStatus (bytes held so far)
//!  edge  PUT  /api/v1/clips/<sha256>?offset=N   ->  ClipStatus (chunk appended; resumable)
//!  edge  POST /api/v1/heartbeat  Heartbeat      ->  204
//! ```
//!
//! A video clip may travel inline (base64 in the upload) or, as the edge's uplink does, ahead of its record in
//! chunks addressed by its SHA-256: an interrupted clip resumes at the offset the central service reports, and
//! a clip shared by several records of one vehicle travels once.
//!
//! Plate pictures (the plate as each voting frame showed it, a few KiB each) travel inline with their record;
//! the record names each by SHA-256 in its plate votes, so the seal covers them.

mod seal;
mod validate;

pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use seal::{seal, verify, Seal, SealError};
pub use validate::{check_id, check_text, FieldError, MAX_ID_CHARS, MAX_LOCATION_CHARS, MAX_SEQUENCE};

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use te_types::{BBox, CameraId, DeviceId, EventKind, EvidenceId, PlateConsensus, TrackId, VehicleClass, Violation};

pub const PROTOCOL_VERSION: u32 = 1;

/// The most plate pictures one record may carry (one per plate read; boxes read a vehicle a few times).
pub const MAX_PLATE_CROPS: usize = 32;
/// The largest plate picture accepted, bytes (a plate cut from a 4K frame is a few tens of KiB).
pub const MAX_PLATE_CROP_BYTES: usize = 256 * 1024;

/// The upload path, relative to the central service's base URL.
pub const EVIDENCE_PATH: &str = "/api/v1/evidence";
/// Clip chunks, by SHA-256: `{CLIPS_PATH}/<sha256 hex>`.
pub const CLIPS_PATH: &str = "/api/v1/clips";
/// The box's periodic state report.
pub const HEARTBEAT_PATH: &str = "/api/v1/heartbeat";

/// The facts of one evidence record: what was seen, where and when. Media are referenced by hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EvidenceRecord {
    pub protocol_version: u32,
    pub evidence_id: EvidenceId,
    pub device_id: DeviceId,
    pub camera_id: CameraId,
    /// Human-readable place of the camera, as configured on the box.
    pub location: String,
    pub kind: EventKind,
    /// When the frame was captured (UTC).
    pub captured_at: DateTime<Utc>,
    /// When the box wrote the record (UTC).
    pub recorded_at: DateTime<Utc>,
    pub frame_number: u64,
    pub track_id: TrackId,
    pub vehicle_class: VehicleClass,
    pub detection_score: f32,
    /// The vehicle's box in the overview image's pixels.
    pub bbox: BBox,
    /// SHA-256 (hex) of the overview JPEG.
    pub overview_sha256: String,
    /// SHA-256 (hex) of the video clip (MP4, the camera's own encoding, starting before the event), when the
    /// camera had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_sha256: Option<String>,
    /// The offence, for violation records (`kind` names it too): the rule broken, the moments the overview
    /// shows (before / at / after, side by side), and what was measured. Absent for plain vehicle passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub violation: Option<Violation>,
    /// How far the box's clock was from a reference clock when the record was made; absent when the box could
    /// not measure it. Violations whose clock is unchecked or off by more than the box's limit are flagged for
    /// review: the time of an offence must be objective (Decree 135/2021, Art. 17).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockCheck>,
    /// The vehicle's plate, decided by every read on the track; absent when no plate was seen at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plate: Option<PlateConsensus>,
    /// SHA-256 (hex, first 16 characters) of the box's effective configuration when the record was made: which
    /// thresholds, zones and rules were in force.
    #[serde(default)]
    pub config_version: String,
    /// Position in this device's chain of records, from 1 (0: not yet sealed by the store).
    #[serde(default)]
    pub sequence: u64,
    /// SHA-256 (hex) of the canonical bytes of this device's previous record; empty for the first.
    #[serde(default)]
    pub previous_record_sha256: String,
}

impl EvidenceRecord {
    /// The plate pictures the record names (SHA-256 hex), each once, in vote order.
    pub fn plate_crop_hashes(&self) -> Vec<&str> {
        let mut hashes: Vec<&str> = Vec::new();
        for sha in self.plate.iter().flat_map(|p| &p.votes).filter_map(|v| v.crop_sha256.as_deref()) {
            if !hashes.contains(&sha) {
                hashes.push(sha);
            }
        }
        hashes
    }

    /// A plain vehicle pass at `now` with no plate, clip or clock check, its overview hashed: the start of
    /// synthetic records (the load and crash benchmarks, tests). Set what matters on the result.
    pub fn synthetic(device: &str, camera: &str, overview_jpeg: &[u8]) -> Self {
        let now = Utc::now();
        Self {
            protocol_version: PROTOCOL_VERSION,
            evidence_id: EvidenceId::new(),
            device_id: DeviceId::new(device),
            camera_id: CameraId::new(camera),
            location: "Ngã tư Lê Lợi – Nguyễn Huệ".into(),
            kind: EventKind::VehicleDetected,
            captured_at: now,
            recorded_at: now,
            frame_number: 1,
            track_id: TrackId(1),
            vehicle_class: VehicleClass::Car,
            detection_score: 0.9,
            bbox: BBox { x1: 0.0, y1: 0.0, x2: 10.0, y2: 10.0 },
            overview_sha256: sha256_hex(overview_jpeg),
            clip_sha256: None,
            violation: None,
            clock: None,
            plate: None,
            config_version: String::new(),
            sequence: 1,
            previous_record_sha256: String::new(),
        }
    }
}

/// One measurement of the box's clock against a reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClockCheck {
    /// Reference time minus box time, milliseconds: add it to the record's times to get reference time.
    pub offset_ms: i64,
    /// How far off the measurement itself may be (half the round trip plus the source's resolution), ms.
    pub uncertainty_ms: u64,
    /// `ntp:<host:port>` (an SNTP server) or `central-date` (the central service's HTTP `Date` header).
    pub source: String,
    /// When it was measured (box time).
    pub measured_at: DateTime<Utc>,
    /// The offset plus its uncertainty is within the box's configured limit, and the measurement is recent.
    pub trusted: bool,
}

/// One record and its media, as sent over HTTP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EvidenceUpload {
    pub record: EvidenceRecord,
    /// The device's seal over the record (which names the media by hash).
    pub seal: Seal,
    /// The overview JPEG, standard base64.
    pub overview_jpeg_base64: String,
    /// The video clip (MP4), standard base64. When the record names a clip and this is absent, the clip was
    /// sent ahead in chunks (`PUT /api/v1/clips/{sha256}`, [`CLIPS_PATH`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_mp4_base64: Option<String>,
    /// The plate pictures the record's plate votes name, JPEG, standard base64, in any order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plate_crops_jpeg_base64: Vec<String>,
}

/// Why an upload is not acceptable as it stands.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UploadError {
    #[error("protocol_version {got} is not supported (this service speaks {PROTOCOL_VERSION})")]
    Version { got: u32 },
    #[error("overview_jpeg_base64 is not valid base64")]
    Base64,
    #[error("overview image is not a JPEG")]
    NotJpeg,
    #[error("overview image hashes to {actual}, but the record says {expected}")]
    HashMismatch { expected: String, actual: String },
    #[error("seal: {0}")]
    Seal(#[from] SealError),
    #[error("clip: {0}")]
    Clip(String),
    #[error("plate picture: {0}")]
    PlateCrop(String),
    #[error("record field {0}")]
    Field(#[from] FieldError),
}

impl EvidenceUpload {
    pub fn new(record: EvidenceRecord, seal: Seal, overview_jpeg: &[u8]) -> Self {
        Self {
            record,
            seal,
            overview_jpeg_base64: base64::engine::general_purpose::STANDARD.encode(overview_jpeg),
            clip_mp4_base64: None,
            plate_crops_jpeg_base64: Vec::new(),
        }
    }

    pub fn with_plate_crops(mut self, crops: &[Vec<u8>]) -> Self {
        self.plate_crops_jpeg_base64 =
            crops.iter().map(|c| base64::engine::general_purpose::STANDARD.encode(c)).collect();
        self
    }

    /// Decodes the plate pictures and checks them against the hashes the (sealed) record names.
    pub fn verified_plate_crops(&self) -> Result<Vec<(String, Vec<u8>)>, UploadError> {
        if self.plate_crops_jpeg_base64.len() > MAX_PLATE_CROPS {
            return Err(UploadError::PlateCrop(format!(
                "{} pictures sent, at most {MAX_PLATE_CROPS} accepted",
                self.plate_crops_jpeg_base64.len()
            )));
        }
        let crops = self
            .plate_crops_jpeg_base64
            .iter()
            .map(|b64| {
                base64::engine::general_purpose::STANDARD
                    .decode(b64.as_bytes())
                    .map_err(|_| UploadError::PlateCrop("not valid base64".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        match_plate_crops(&self.record, crops)
    }

    pub fn with_clip(mut self, clip_mp4: Option<&[u8]>) -> Self {
        self.clip_mp4_base64 = clip_mp4.map(|c| base64::engine::general_purpose::STANDARD.encode(c));
        self
    }

    /// Checks an inline clip against the hash the (sealed) record names.
    pub fn verified_clip(&self) -> Result<ClipBody, UploadError> {
        match (&self.record.clip_sha256, &self.clip_mp4_base64) {
            (None, None) => Ok(ClipBody::None),
            (Some(expected), None) => Ok(ClipBody::SentAhead(expected.clone())),
            (None, Some(_)) => Err(UploadError::Clip("a clip was sent that the record does not name".into())),
            (Some(expected), Some(b64)) => {
                let mp4 = base64::engine::general_purpose::STANDARD
                    .decode(b64.as_bytes())
                    .map_err(|_| UploadError::Clip("not valid base64".into()))?;
                check_clip(&mp4, expected)?;
                Ok(ClipBody::Inline(mp4))
            }
        }
    }

    /// Checks version, every field's range (`now`: the receiver's clock), seal, encoding and hash; returns
    /// the decoded JPEG.
    pub fn verified_overview(&self, now: DateTime<Utc>) -> Result<Vec<u8>, UploadError> {
        if self.record.protocol_version != PROTOCOL_VERSION {
            return Err(UploadError::Version { got: self.record.protocol_version });
        }
        self.record.check_fields(now)?;
        verify(&self.record, &self.seal, None)?;
        let jpeg = base64::engine::general_purpose::STANDARD
            .decode(self.overview_jpeg_base64.as_bytes())
            .map_err(|_| UploadError::Base64)?;
        if !jpeg.starts_with(&[0xFF, 0xD8, 0xFF]) {
            return Err(UploadError::NotJpeg);
        }
        let actual = sha256_hex(&jpeg);
        if actual != self.record.overview_sha256 {
            return Err(UploadError::HashMismatch { expected: self.record.overview_sha256.clone(), actual });
        }
        Ok(jpeg)
    }
}

/// Where an upload's clip is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClipBody {
    /// The record names no clip.
    None,
    /// In the upload, decoded and checked.
    Inline(Vec<u8>),
    /// Sent ahead through [`CLIPS_PATH`] under this SHA-256 (hex); the receiver must check it holds it whole.
    SentAhead(String),
}

/// Checks that `mp4` is an MP4 file that hashes to `expected` (hex).
pub fn check_clip(mp4: &[u8], expected: &str) -> Result<(), UploadError> {
    if mp4.get(4..8) != Some(b"ftyp") {
        return Err(UploadError::Clip("not an MP4 file".into()));
    }
    let actual = sha256_hex(mp4);
    if actual != expected {
        return Err(UploadError::Clip(format!("hashes to {actual}, but the record says {expected}")));
    }
    Ok(())
}

/// Pairs plate pictures with the hashes `record` names, in the record's order: each must be a JPEG of at most
/// [`MAX_PLATE_CROP_BYTES`] that the record names, and every picture the record names must be there.
pub fn match_plate_crops(record: &EvidenceRecord, crops: Vec<Vec<u8>>) -> Result<Vec<(String, Vec<u8>)>, UploadError> {
    let named = record.plate_crop_hashes();
    let mut given: Vec<(String, Vec<u8>)> = Vec::with_capacity(crops.len());
    for jpeg in crops {
        if jpeg.len() > MAX_PLATE_CROP_BYTES {
            return Err(UploadError::PlateCrop(format!("{} bytes, at most {MAX_PLATE_CROP_BYTES}", jpeg.len())));
        }
        if !jpeg.starts_with(&[0xFF, 0xD8, 0xFF]) {
            return Err(UploadError::PlateCrop("not a JPEG".into()));
        }
        let sha = sha256_hex(&jpeg);
        if !named.contains(&sha.as_str()) {
            return Err(UploadError::PlateCrop(format!("hashes to {sha}, which the record does not name")));
        }
        given.push((sha, jpeg));
    }
    named
        .iter()
        .map(|sha| {
            given
                .iter()
                .position(|(g, _)| g == sha)
                .map(|i| given.swap_remove(i))
                .ok_or_else(|| UploadError::PlateCrop(format!("the record names {sha}, which was not sent")))
        })
        .collect()
}

/// Whether `s` is a SHA-256 in lowercase hex (what clip addresses are; nothing else reaches a file name).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// How much of a clip the central service holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClipStatus {
    /// Bytes received so far: the offset of the next chunk.
    pub received: u64,
    /// The whole clip is held and checked (another record already brought it): nothing more to send.
    pub complete: bool,
}

/// The box's state, sent every `heartbeat_s`; the central service keeps the latest per device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Heartbeat {
    pub device_id: DeviceId,
    pub sent_at: DateTime<Utc>,
    pub agent_version: String,
    /// Records waiting for delivery (the send queue's depth).
    pub pending: u64,
    pub delivered: u64,
    /// Records the central service refused; kept on the box for an operator.
    pub rejected: u64,
    /// Bytes the evidence store takes on disk, and bytes free on its file system.
    pub disk_used_bytes: u64,
    pub disk_free_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockCheck>,
    pub cameras: Vec<CameraState>,
    /// The store's alarm (quota reached, refused records), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<String>,
    /// Seconds until the box's next heartbeat (its `heartbeat_s`): the centre calls it offline after three
    /// missed. Absent from boxes older than this field: taken as [`DEFAULT_HEARTBEAT_S`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<u32>,
}

/// The heartbeat interval assumed for a box that does not state its own.
pub const DEFAULT_HEARTBEAT_S: u32 = 30;
/// Heartbeats a box may miss before the centre marks it offline.
pub const MISSED_HEARTBEATS_OFFLINE: u32 = 3;

/// One camera in a heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CameraState {
    pub camera_id: CameraId,
    /// `streaming`, `reconnecting`, `ended` (a file replay finished) or `failed`.
    pub state: String,
    pub frames_in: u64,
    pub frames_dropped: u64,
    pub reconnects: u64,
}

/// Whether the central service stored the record now or already had it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum IngestStatus {
    Created,
    AlreadyStored,
}

/// The central service's acknowledgement: the only proof of delivery the edge accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestReceipt {
    pub evidence_id: EvidenceId,
    pub status: IngestStatus,
    /// When the central service first stored it.
    pub stored_at: DateTime<Utc>,
}

/// An error answer (4xx/5xx) from the central service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    pub error: String,
}

/// Totals the central service reports, for dashboards and the demo summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CentralStats {
    pub evidence_total: u64,
    pub devices: u64,
    pub cameras: u64,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(jpeg: &[u8]) -> EvidenceUpload {
        let record = EvidenceRecord::synthetic("box", "cam", jpeg);
        let seal = seal(&record, &test_key());
        EvidenceUpload::new(record, seal, jpeg)
    }

    fn test_key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    #[test]
    fn an_upload_round_trips_through_json_and_verifies() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3];
        let json = serde_json::to_string(&upload(&jpeg)).expect("serialise");
        let back: EvidenceUpload = serde_json::from_str(&json).expect("parse");
        assert_eq!(back.verified_overview(chrono::Utc::now()).expect("valid"), jpeg);
    }

    #[test]
    fn a_tampered_image_or_wrong_version_is_refused() {
        let mut u = upload(&[0xFF, 0xD8, 0xFF, 0xE0, 1]);
        u.overview_jpeg_base64 =
            EvidenceUpload::new(u.record.clone(), u.seal.clone(), &[0xFF, 0xD8, 0xFF, 0xE0, 2]).overview_jpeg_base64;
        assert!(matches!(u.verified_overview(chrono::Utc::now()), Err(UploadError::HashMismatch { .. })));
        let mut u = upload(&[0xFF, 0xD8, 0xFF, 0xE0, 1]);
        u.record.protocol_version = 99;
        assert_eq!(u.verified_overview(chrono::Utc::now()), Err(UploadError::Version { got: 99 }));
        assert_eq!(upload(b"GIF89a").verified_overview(chrono::Utc::now()), Err(UploadError::NotJpeg));
    }

    #[test]
    fn an_altered_record_or_a_foreign_signature_breaks_the_seal() {
        let mut u = upload(&[0xFF, 0xD8, 0xFF, 0xE0, 1]);
        assert_eq!(verify(&u.record, &u.seal, Some(&test_key().verifying_key())), Ok(()));
        u.record.location = "elsewhere".into();
        assert!(matches!(
            u.verified_overview(chrono::Utc::now()),
            Err(UploadError::Seal(SealError::RecordHash { .. }))
        ));
        // Resealed by another key: the seal holds on its own, but not for this device's key.
        let other = SigningKey::from_bytes(&[8u8; 32]);
        u.seal = seal(&u.record, &other);
        assert_eq!(verify(&u.record, &u.seal, None), Ok(()));
        assert!(matches!(
            verify(&u.record, &u.seal, Some(&test_key().verifying_key())),
            Err(SealError::WrongKey { .. })
        ));
        // A signature copied from another record does not verify.
        let mut forged = u.seal.clone();
        forged.record_sha256 = u.record.record_sha256();
        forged.signature = upload(&[0xFF, 0xD8, 0xFF, 0xE0, 1]).seal.signature;
        assert_eq!(verify(&u.record, &forged, None), Err(SealError::Signature));
    }

    fn record_naming(crops: &[&[u8]]) -> EvidenceRecord {
        let mut record = EvidenceRecord::synthetic("box", "cam", &[0xFF, 0xD8, 0xFF]);
        let vote = |crop: Option<&[u8]>| te_types::PlateVote {
            frame_number: 1,
            text: Some("30A-123.45".into()),
            raw: "30A12345".into(),
            confidence: 0.9,
            weight: 0.9,
            crop_sha256: crop.map(sha256_hex),
        };
        let mut votes: Vec<_> = crops.iter().map(|c| vote(Some(c))).collect();
        votes.push(vote(None));
        record.plate = Some(PlateConsensus { text: Some("30A-123.45".into()), share: 1.0, votes });
        record
    }

    #[test]
    fn plate_pictures_must_be_exactly_the_ones_the_record_names() {
        let (a, b): (&[u8], &[u8]) = (&[0xFF, 0xD8, 0xFF, 1], &[0xFF, 0xD8, 0xFF, 2]);
        // Named twice (two votes on identical pictures), sent once, in another order: accepted, in vote order.
        let record = record_naming(&[a, b, a]);
        assert_eq!(record.plate_crop_hashes(), [sha256_hex(a), sha256_hex(b)]);
        let matched = match_plate_crops(&record, vec![b.to_vec(), a.to_vec()]).expect("matches");
        assert_eq!(matched, [(sha256_hex(a), a.to_vec()), (sha256_hex(b), b.to_vec())]);
        let refused = |crops: Vec<Vec<u8>>| match match_plate_crops(&record, crops) {
            Err(UploadError::PlateCrop(why)) => why,
            other => panic!("{other:?}"),
        };
        assert!(refused(vec![a.to_vec()]).contains("was not sent"));
        assert!(refused(vec![a.to_vec(), b.to_vec(), vec![0xFF, 0xD8, 0xFF, 3]]).contains("does not name"));
        assert!(refused(vec![b"GIF89a".to_vec()]).contains("not a JPEG"));
        let mut huge = vec![0xFF, 0xD8, 0xFF];
        huge.resize(MAX_PLATE_CROP_BYTES + 1, 0);
        assert!(refused(vec![huge]).contains("at most"));
        // Through an upload: the pictures round-trip through JSON and base64.
        let sent = EvidenceUpload::new(record.clone(), seal(&record, &test_key()), &[0xFF, 0xD8, 0xFF])
            .with_plate_crops(&[a.to_vec(), b.to_vec()]);
        let json = serde_json::to_string(&sent).expect("json");
        let back: EvidenceUpload = serde_json::from_str(&json).expect("parse");
        assert_eq!(back.verified_plate_crops().expect("valid").len(), 2);
        let mut bad = back.clone();
        bad.plate_crops_jpeg_base64[0] = "%%".into();
        assert_eq!(bad.verified_plate_crops(), Err(UploadError::PlateCrop("not valid base64".into())));
        // A record without pictures needs none, and an upload without them says nothing about them.
        let plain = upload(&[0xFF, 0xD8, 0xFF]);
        assert_eq!(plain.verified_plate_crops(), Ok(Vec::new()));
        assert!(!serde_json::to_string(&plain).expect("json").contains("plate_crops"));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let json = serde_json::to_value(upload(&[0xFF, 0xD8, 0xFF])).expect("json");
        let mut obj = json.as_object().expect("object").clone();
        obj.insert("extra".into(), serde_json::Value::Bool(true));
        assert!(serde_json::from_value::<EvidenceUpload>(serde_json::Value::Object(obj)).is_err());
    }
}
