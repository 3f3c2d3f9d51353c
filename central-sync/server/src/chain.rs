//! Each device's hash chain as the central service holds it: every record names its predecessor's hash and
//! its place (`sequence`, from 1). A link that does not match means a record was altered or replaced; a
//! missing number means a record the box made has not arrived (in transit, or removed on the way).

use crate::store::{CentralStore, StoreError};
use serde::Serialize;
use sqlx::Row;
use te_types::EvidenceId;

/// How one record links to the one before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Link {
    /// The box's first record.
    First,
    /// The predecessor is here and its hash is the one this record names.
    Verified,
    /// The predecessor has not been received (yet).
    PredecessorMissing,
    /// The predecessor is here with another hash.
    Broken,
    /// Stored before sequences were kept as columns.
    Unknown,
}

/// One device's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceChain {
    pub device_id: String,
    pub records: u64,
    pub highest: i64,
    /// Runs of sequence numbers below the highest that were never received, first and last (inclusive):
    /// ranges, so that a hostile jump in numbering costs one entry, not one per number.
    pub missing: Vec<(i64, i64)>,
    /// Sequences whose record names another hash than its predecessor's, or that two records share.
    pub broken: Vec<i64>,
}

impl DeviceChain {
    /// How many sequence numbers are missing.
    pub fn missing_count(&self) -> u64 {
        self.missing.iter().map(|(a, b)| b.abs_diff(*a) + 1).sum()
    }

    /// The missing runs as text: `2-5, 9`.
    pub fn missing_text(&self) -> String {
        let runs: Vec<String> =
            self.missing.iter().map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
        runs.join(", ")
    }
}

impl CentralStore {
    /// The link of record `id` to its predecessor.
    pub async fn link(&self, id: EvidenceId) -> Result<Link, StoreError> {
        let row =
            sqlx::query("SELECT device_id, sequence, previous_record_sha256 FROM evidence WHERE evidence_id = $1")
                .bind(id.to_string())
                .fetch_optional(self.db())
                .await?;
        let Some(row) = row else { return Ok(Link::Unknown) };
        let sequence: Option<i64> = row.try_get("sequence")?;
        let previous: Option<String> = row.try_get("previous_record_sha256")?;
        let (Some(sequence), Some(previous)) = (sequence, previous) else { return Ok(Link::Unknown) };
        if sequence <= 1 {
            return Ok(Link::First);
        }
        let before = sqlx::query("SELECT record_sha256 FROM evidence WHERE device_id = $1 AND sequence = $2")
            .bind(row.try_get::<String, _>("device_id")?)
            .bind(sequence - 1)
            .fetch_optional(self.db())
            .await?;
        Ok(match before {
            None => Link::PredecessorMissing,
            Some(r) if r.try_get::<Option<String>, _>("record_sha256")?.as_deref() == Some(previous.as_str()) => {
                Link::Verified
            }
            Some(_) => Link::Broken,
        })
    }

    /// Every device's chain, walked in sequence order.
    pub async fn chains(&self) -> Result<Vec<DeviceChain>, StoreError> {
        let rows = sqlx::query(
            "SELECT device_id, sequence, record_sha256, previous_record_sha256 FROM evidence \
             WHERE sequence IS NOT NULL ORDER BY device_id, sequence",
        )
        .fetch_all(self.db())
        .await?;
        let mut chains: Vec<DeviceChain> = Vec::new();
        let mut last: Option<(i64, String)> = None;
        for row in &rows {
            let device: String = row.try_get("device_id")?;
            let sequence: i64 = row.try_get("sequence")?;
            let hash: String = row.try_get::<Option<String>, _>("record_sha256")?.unwrap_or_default();
            let previous: String = row.try_get::<Option<String>, _>("previous_record_sha256")?.unwrap_or_default();
            if chains.last().is_none_or(|c| c.device_id != device) {
                chains.push(DeviceChain { device_id: device, records: 0, highest: 0, missing: vec![], broken: vec![] });
                last = None;
            }
            let Some(chain) = chains.last_mut() else { continue };
            let expected_next = last.as_ref().map(|(s, _)| s + 1).unwrap_or(1);
            if sequence > expected_next {
                chain.missing.push((expected_next, sequence - 1));
            }
            if let Some((s, h)) = &last {
                // A box never reuses a number: two records with one is as wrong as a bad link.
                if (*s == sequence - 1 && *h != previous) || *s == sequence {
                    chain.broken.push(sequence);
                }
            }
            chain.records += 1;
            chain.highest = sequence;
            last = Some((sequence, hash));
        }
        Ok(chains)
    }
}
