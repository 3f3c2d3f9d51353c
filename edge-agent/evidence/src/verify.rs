//! Re-checks a whole store: every record's seal, every media hash, and the chain from the first record to
//! the chain head. Used by `edge-agent evidence verify`, the crash test and the corruption tests.

use crate::{EvidenceError, EvidenceStore};
use central_protocol::VerifyingKey;
use std::collections::BTreeMap;
use te_types::EvidenceId;

/// One thing wrong with the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub evidence: Option<EvidenceId>,
    pub sequence: Option<u64>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.evidence, self.sequence) {
            (Some(id), Some(seq)) => write!(f, "{id} (#{seq}): {}", self.message),
            (Some(id), None) => write!(f, "{id}: {}", self.message),
            (None, Some(seq)) => write!(f, "#{seq}: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Records found in the store.
    pub records: u64,
    /// Records whose seal, media and chain links all hold.
    pub intact: u64,
    /// The sequence number of the newest sealed record, as the store's chain head says.
    pub chain_length: u64,
    pub problems: Vec<Problem>,
    /// Ids with at least one problem.
    pub damaged: Vec<EvidenceId>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks every record against `key` (the device's public key) and the chain against the store's head.
pub fn verify_store(store: &dyn EvidenceStore, key: &VerifyingKey) -> Result<VerifyReport, EvidenceError> {
    let mut report = VerifyReport::default();
    let (head_sequence, head_sha256) = store.chain_head()?;
    report.chain_length = head_sequence;
    // sequence -> (id, record hash, previous hash)
    let mut chain: BTreeMap<u64, (EvidenceId, String, String)> = BTreeMap::new();
    let mut damaged = std::collections::BTreeSet::new();
    let mut problem = |report: &mut VerifyReport, id: Option<EvidenceId>, seq: Option<u64>, message: String| {
        if let Some(id) = id {
            damaged.insert(id);
        }
        report.problems.push(Problem { evidence: id, sequence: seq, message });
    };
    for id in store.list()? {
        report.records += 1;
        let stored = match store.get(id) {
            Ok(s) => s,
            Err(e) => {
                problem(&mut report, Some(id), None, e.to_string());
                continue;
            }
        };
        let seq = stored.record.sequence;
        if stored.record.evidence_id != id {
            problem(
                &mut report,
                Some(id),
                Some(seq),
                format!("stored under another id than its own ({})", stored.record.evidence_id),
            );
        }
        if let Err(e) = central_protocol::verify(&stored.record, &stored.seal, Some(key)) {
            problem(&mut report, Some(id), Some(seq), format!("seal: {e}"));
        }
        let delivered = matches!(stored.delivery, crate::Delivery::Delivered { .. });
        match store.overview(id) {
            Ok(_) => {}
            // Images of delivered records may be removed for space; the record and its seal remain.
            Err(EvidenceError::MediaPurged(_)) if delivered => {}
            Err(EvidenceError::MediaPurged(_)) => problem(
                &mut report,
                Some(id),
                Some(seq),
                "image removed although the central service never acknowledged the record".into(),
            ),
            Err(e) => problem(&mut report, Some(id), Some(seq), format!("overview image: {e}")),
        }
        match store.clip(id) {
            Ok(_) => {}
            Err(EvidenceError::MediaPurged(_)) if delivered => {}
            Err(e) => problem(&mut report, Some(id), Some(seq), format!("video clip: {e}")),
        }
        match store.plate_crops(id) {
            Ok(_) => {}
            Err(EvidenceError::MediaPurged(_)) if delivered => {}
            Err(e) => problem(&mut report, Some(id), Some(seq), format!("plate pictures: {e}")),
        }
        if let Some((other, _, _)) =
            chain.insert(seq, (id, stored.seal.record_sha256.clone(), stored.record.previous_record_sha256.clone()))
        {
            problem(&mut report, Some(id), Some(seq), format!("sequence number also used by {other}"));
        }
    }
    // The chain: 1..=head, each record naming its predecessor's hash.
    let mut previous: Option<(u64, String)> = None;
    for (&seq, (id, sha, prev)) in &chain {
        let expected_prev_seq = previous.as_ref().map_or(0, |(s, _)| *s);
        if seq != expected_prev_seq + 1 {
            let missing = if seq == expected_prev_seq + 2 {
                format!("record #{} is missing from the chain", expected_prev_seq + 1)
            } else {
                format!("records #{}..#{} are missing from the chain", expected_prev_seq + 1, seq - 1)
            };
            problem(&mut report, None, Some(expected_prev_seq + 1), missing);
        } else {
            let expected = previous.as_ref().map_or(String::new(), |(_, h)| h.clone());
            if *prev != expected {
                problem(&mut report, Some(*id), Some(seq), "does not name the previous record's hash".into());
            }
        }
        previous = Some((seq, sha.clone()));
    }
    match previous {
        Some((last, sha)) if last == head_sequence && sha != head_sha256 => {
            problem(&mut report, None, Some(last), "the newest record is not the one the chain head names".into());
        }
        Some((last, _)) if last < head_sequence => {
            problem(
                &mut report,
                None,
                Some(last + 1),
                format!("records #{}..#{head_sequence} are missing (the newest)", last + 1),
            );
        }
        None if head_sequence > 0 => {
            problem(&mut report, None, Some(1), format!("all {head_sequence} records are missing"));
        }
        _ => {}
    }
    report.damaged = damaged.into_iter().collect();
    report.intact = report.records - report.damaged.len() as u64;
    Ok(report)
}
