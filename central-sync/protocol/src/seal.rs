//! The seal on an evidence record: what makes it tamper-evident on the box, in transit and at the centre.
//!
//! ```text
//!  record (with sequence + previous record's hash) --canonical JSON--> SHA-256 --Ed25519 (device key)--> seal
//! ```
//!
//! - The record names its media by SHA-256, so the seal covers the media too.
//! - Each record carries the hash of the device's previous record and a sequence number: a record deleted or
//!   altered in the middle breaks the chain at the next one.
//! - Canonical bytes are `serde_json::to_vec` of the record: field order is fixed by the struct and numbers
//!   print in their shortest round-trip form, so the same record always gives the same bytes on both sides.

use crate::{sha256_hex, EvidenceRecord};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Hash and signature of one record, with the public key that signed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Seal {
    /// SHA-256 (hex) of the record's canonical bytes.
    pub record_sha256: String,
    /// Ed25519 signature (hex, 64 bytes) over the 32 bytes of `record_sha256`.
    pub signature: String,
    /// The device's Ed25519 public key (hex, 32 bytes); the central service checks it against registration.
    pub public_key: String,
}

/// Why a seal does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the record hashes to {actual}, but its seal says {sealed}: the record was altered after sealing")]
    RecordHash { sealed: String, actual: String },
    #[error("the seal's {field} is not valid hex of the right length")]
    Encoding { field: &'static str },
    #[error("the signature does not verify with the seal's public key")]
    Signature,
    #[error("the record was sealed by key {found}, not by this device's key {expected}")]
    WrongKey { expected: String, found: String },
}

impl EvidenceRecord {
    /// The bytes that are hashed and signed.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // Serialising a plain struct of strings, numbers and enums cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn record_sha256(&self) -> String {
        sha256_hex(&self.canonical_bytes())
    }
}

/// Seals `record` with the device key.
pub fn seal(record: &EvidenceRecord, key: &SigningKey) -> Seal {
    let record_sha256 = record.record_sha256();
    // Hex of a SHA-256 always decodes to 32 bytes.
    let digest = hex::decode(&record_sha256).unwrap_or_default();
    Seal {
        record_sha256,
        signature: hex::encode(key.sign(&digest).to_bytes()),
        public_key: hex::encode(key.verifying_key().to_bytes()),
    }
}

/// Checks that `seal` belongs to `record` and was made by the key it names (and, when given, that this key is
/// `expected_key`, the device's registered or local key).
pub fn verify(record: &EvidenceRecord, seal: &Seal, expected_key: Option<&VerifyingKey>) -> Result<(), SealError> {
    let actual = record.record_sha256();
    if actual != seal.record_sha256 {
        return Err(SealError::RecordHash { sealed: seal.record_sha256.clone(), actual });
    }
    let key_bytes: [u8; 32] = hex::decode(&seal.public_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(SealError::Encoding { field: "public_key" })?;
    let key = VerifyingKey::from_bytes(&key_bytes).map_err(|_| SealError::Encoding { field: "public_key" })?;
    if let Some(expected) = expected_key {
        if expected != &key {
            return Err(SealError::WrongKey {
                expected: hex::encode(expected.to_bytes()),
                found: seal.public_key.clone(),
            });
        }
    }
    let signature: [u8; 64] = hex::decode(&seal.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(SealError::Encoding { field: "signature" })?;
    let digest = hex::decode(&seal.record_sha256).map_err(|_| SealError::Encoding { field: "record_sha256" })?;
    key.verify(&digest, &Signature::from_bytes(&signature)).map_err(|_| SealError::Signature)
}
