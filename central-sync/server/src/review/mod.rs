//! The review workflow: decisions on evidence and the append-only, hash-chained audit log of every action.
//!
//! ```text
//!  pending --approve (plate known)--> approved --(export API, CSV, webhook outbox: the fines system)
//!  pending --reject (reason)--------> rejected
//!  pending --correct plate----------> pending (plate as the officer read it)
//!  approved/rejected --reopen (supervisor, reason)--> pending
//! ```
//! The record as the box sealed it never changes; decisions live beside it and each is one audit entry, written
//! in the same transaction.

pub mod bulk;
mod claims;
pub mod notice;
pub mod pages;
mod view;

pub use claims::{Claim, Neighbours, CLAIM_TTL};

pub use view::{best_plate_crop, kind_name};

use crate::accounts::Actor;
use crate::store::{review_status, CentralStore, ReviewStatus, StoreError};
use central_protocol::sha256_hex;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use te_types::EvidenceId;

/// What an officer decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Approve for fining; `plate` replaces the box's reading when given.
    Approve {
        plate: Option<String>,
    },
    Reject {
        reason: String,
    },
    CorrectPlate {
        plate: String,
    },
    Reopen {
        reason: String,
    },
}

impl Decision {
    fn action(&self) -> &'static str {
        match self {
            Decision::Approve { .. } => "approve",
            Decision::Reject { .. } => "reject",
            Decision::CorrectPlate { .. } => "correct_plate",
            Decision::Reopen { .. } => "reopen",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("no evidence {0}")]
    NotFound(EvidenceId),
    #[error("the {role} role may not {action}")]
    Forbidden { role: &'static str, action: &'static str },
    #[error("evidence {id} is {status}; {action} needs it {needed}")]
    WrongState { id: EvidenceId, status: ReviewStatus, action: &'static str, needed: &'static str },
    #[error("{0:?} is not a Vietnamese plate (e.g. 51F-123.45, 59X1-234.56)")]
    BadPlate(String),
    #[error("a reason is needed")]
    ReasonRequired,
    #[error("no plate to fine: correct the plate first")]
    NoPlate,
    #[error("a plain vehicle pass is not an offence and is never sent for fining; reject it if it needs a decision")]
    NotAnOffence,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reasons offered when rejecting (free text is accepted too).
pub const REJECT_REASONS: [(&str, &str); 5] = [
    ("Biển số không đọc được", "Plate unreadable"),
    ("Không có vi phạm", "No violation"),
    ("Xe ưu tiên đang làm nhiệm vụ", "Priority vehicle on duty"),
    ("Hình ảnh không rõ ràng", "Pictures unclear"),
    ("Trùng lặp với trường hợp khác", "Duplicate of another case"),
];

/// One entry of the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub evidence_id: Option<String>,
    pub detail: serde_json::Value,
    pub entry_sha256: String,
}

/// Where the chain breaks, if it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainCheck {
    pub entries: u64,
    /// The first entry whose hash does not follow from its content and its predecessor.
    pub broken_at: Option<i64>,
}

/// Circular 73/2024/TT-BCA: the vehicle's owner is to be identified and notified within 10 days of the
/// violation; an owner who has not responded 20 days after the notice is handled through the portal.
pub const OWNER_DEADLINE_DAYS: i64 = 10;
pub const RESPONSE_DAYS: i64 = 20;

/// When the owner of a vehicle seen at `captured_at` must be identified and notified by.
pub fn owner_deadline(captured_at: DateTime<Utc>) -> DateTime<Utc> {
    // Saturating: a stored time near the calendar's end must not crash a page.
    captured_at.checked_add_signed(chrono::Duration::days(OWNER_DEADLINE_DAYS)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The first entry's predecessor.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn entry_hash(prev: &str, seq: i64, at: &str, actor: &str, action: &str, evidence: &str, detail: &str) -> String {
    sha256_hex(format!("{prev}\n{seq}\n{at}\n{actor}\n{action}\n{evidence}\n{detail}").as_bytes())
}

/// A plate as an officer typed it, checked against the Vietnamese plate grammar and written the standard way;
/// never corrected (the OCR's confusion fixes are for machine reads, not for what a person typed).
pub fn normalise_plate(text: &str) -> Result<String, ReviewError> {
    te_plate::parse_typed(text).map(|p| p.display()).map_err(|_| ReviewError::BadPlate(text.trim().into()))
}

impl CentralStore {
    /// Appends one entry to the audit log (its own transaction).
    pub async fn audit(
        &self,
        actor: &Actor,
        action: &str,
        evidence: Option<EvidenceId>,
        detail: serde_json::Value,
    ) -> Result<(), StoreError> {
        let _chain = self.audit_lock.lock().await;
        let mut tx = self.begin_write().await?;
        append(&mut tx, actor, action, evidence, &detail).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Applies an officer's decision and audits it, in one transaction.
    pub async fn decide(&self, id: EvidenceId, actor: &Actor, decision: Decision) -> Result<(), ReviewError> {
        let action = decision.action();
        let allowed = match decision {
            Decision::Reopen { .. } => actor.role.supervises(),
            _ => actor.role.reviews(),
        };
        if !allowed {
            return Err(ReviewError::Forbidden { role: actor.role.as_str(), action });
        }
        let _chain = self.audit_lock.lock().await;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT review_status, plate_text, corrected_plate, kind, decided_at FROM evidence WHERE evidence_id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from)?
        .ok_or(ReviewError::NotFound(id))?;
        let status = review_status(&row.try_get::<String, _>("review_status").map_err(StoreError::from)?)?;
        let box_plate: Option<String> = row.try_get("plate_text").map_err(StoreError::from)?;
        let corrected: Option<String> = row.try_get("corrected_plate").map_err(StoreError::from)?;
        let kind: String = row.try_get("kind").map_err(StoreError::from)?;
        let decided_at: Option<String> = row.try_get("decided_at").map_err(StoreError::from)?;
        let wrong_state = |needed| ReviewError::WrongState { id, status, action, needed };
        let now = Utc::now().to_rfc3339();
        let detail = match &decision {
            Decision::Approve { plate } => {
                if status != ReviewStatus::Pending {
                    return Err(wrong_state("pending"));
                }
                // Only offences reach the fines system.
                if kind == te_types::EventKind::VehicleDetected.as_str() {
                    return Err(ReviewError::NotAnOffence);
                }
                let plate = match plate.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
                    Some(p) => Some(normalise_plate(p)?),
                    None => None,
                };
                let fined = plate.clone().or(corrected.clone()).or(box_plate.clone()).ok_or(ReviewError::NoPlate)?;
                sqlx::query(
                    "UPDATE evidence SET review_status = 'approved', corrected_plate = COALESCE($1, corrected_plate), \
                     decided_by = $2, decided_at = $3, reject_reason = NULL WHERE evidence_id = $4",
                )
                .bind(&plate)
                .bind(&actor.name)
                .bind(&now)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
                // The hand-off to the fines system, in the same transaction as the approval.
                sqlx::query(
                    "INSERT INTO webhook_outbox (evidence_id, created_at, next_attempt_at) VALUES ($1, $2, $3)",
                )
                .bind(id.to_string())
                .bind(&now)
                .bind(&now)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
                serde_json::json!({ "plate": fined, "box_plate": box_plate })
            }
            Decision::Reject { reason } => {
                if status != ReviewStatus::Pending {
                    return Err(wrong_state("pending"));
                }
                let reason = reason.trim();
                if reason.is_empty() {
                    return Err(ReviewError::ReasonRequired);
                }
                sqlx::query(
                    "UPDATE evidence SET review_status = 'rejected', decided_by = $1, decided_at = $2, reject_reason = $3 \
                     WHERE evidence_id = $4",
                )
                .bind(&actor.name)
                .bind(&now)
                .bind(reason)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
                serde_json::json!({ "reason": reason })
            }
            Decision::CorrectPlate { plate } => {
                if status != ReviewStatus::Pending {
                    return Err(wrong_state("pending"));
                }
                let plate = normalise_plate(plate)?;
                sqlx::query("UPDATE evidence SET corrected_plate = $1 WHERE evidence_id = $2")
                    .bind(&plate)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from)?;
                serde_json::json!({ "from": corrected.or(box_plate), "to": plate })
            }
            Decision::Reopen { reason } => {
                if status == ReviewStatus::Pending {
                    return Err(wrong_state("approved or rejected"));
                }
                let reason = reason.trim();
                if reason.is_empty() {
                    return Err(ReviewError::ReasonRequired);
                }
                if status == ReviewStatus::Approved {
                    // The fines system may hold the case: withdraw it, in the same transaction as the reopening
                    // (the feed of withdrawals, and a webhook event that goes out after the approval's).
                    sqlx::query(
                        "INSERT INTO withdrawals (evidence_id, approved_at, withdrawn_at, withdrawn_by, reason) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(id.to_string())
                    .bind(decided_at.as_deref().unwrap_or_default())
                    .bind(&now)
                    .bind(&actor.name)
                    .bind(reason)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from)?;
                    sqlx::query(
                        "INSERT INTO webhook_outbox (evidence_id, created_at, next_attempt_at, event) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(id.to_string())
                    .bind(&now)
                    .bind(&now)
                    .bind(crate::store::WITHDRAWN)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from)?;
                }
                sqlx::query(
                    "UPDATE evidence SET review_status = 'pending', decided_by = NULL, decided_at = NULL, \
                     reject_reason = NULL WHERE evidence_id = $1",
                )
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
                serde_json::json!({ "was": status, "reason": reason })
            }
        };
        if !matches!(decision, Decision::CorrectPlate { .. }) {
            Self::release_claims(&mut tx, id).await?;
        }
        append(&mut tx, actor, action, Some(id), &detail).await?;
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(evidence = %id, actor = %actor.name, action, "review decision");
        Ok(())
    }

    /// Audit entries, newest first: all of them (`evidence` None) or one record's.
    pub async fn audit_entries(&self, evidence: Option<EvidenceId>, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = match evidence {
            Some(id) => {
                sqlx::query("SELECT * FROM audit_log WHERE evidence_id = $1 ORDER BY seq DESC LIMIT $2")
                    .bind(id.to_string())
                    .bind(limit)
                    .fetch_all(self.db())
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM audit_log ORDER BY seq DESC LIMIT $1")
                    .bind(limit)
                    .fetch_all(self.db())
                    .await?
            }
        };
        rows.iter()
            .map(|row| {
                let at: String = row.try_get("at")?;
                let detail: String = row.try_get("detail")?;
                Ok(AuditEntry {
                    seq: row.try_get("seq")?,
                    at: crate::store::parse_time(&at)?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    evidence_id: row.try_get("evidence_id")?,
                    detail: serde_json::from_str(&detail).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    entry_sha256: row.try_get("entry_sha256")?,
                })
            })
            .collect()
    }

    /// Recomputes the whole chain.
    pub async fn verify_audit(&self) -> Result<ChainCheck, StoreError> {
        self.verify_audit_from(None).await
    }

    /// As [`verify_audit`](Self::verify_audit), checking only the entries appended since the last check in
    /// this process (the first call checks everything): what a page view can afford on a long log.
    pub async fn verify_audit_since_last(&self) -> Result<ChainCheck, StoreError> {
        let known = self.audit_verified.lock().ok().and_then(|k| k.clone());
        self.verify_audit_from(known).await
    }

    /// Walks the chain from `start` (last verified seq, its hash, entries up to it) in pages.
    async fn verify_audit_from(&self, start: Option<(i64, String, u64)>) -> Result<ChainCheck, StoreError> {
        const PAGE: i64 = 5_000;
        let (mut last_seq, mut prev, mut entries) = start.unwrap_or((0, GENESIS.to_string(), 0));
        loop {
            let rows = sqlx::query("SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(last_seq)
                .bind(PAGE)
                .fetch_all(self.db())
                .await?;
            for row in &rows {
                let seq: i64 = row.try_get("seq")?;
                let stored_prev: String = row.try_get("prev_sha256")?;
                let stored: String = row.try_get("entry_sha256")?;
                let evidence: Option<String> = row.try_get("evidence_id")?;
                let expected = entry_hash(
                    &prev,
                    seq,
                    &row.try_get::<String, _>("at")?,
                    &row.try_get::<String, _>("actor")?,
                    &row.try_get::<String, _>("action")?,
                    evidence.as_deref().unwrap_or(""),
                    &row.try_get::<String, _>("detail")?,
                );
                entries += 1;
                if stored_prev != prev || stored != expected {
                    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log").fetch_one(self.db()).await?;
                    return Ok(ChainCheck { entries: total as u64, broken_at: Some(seq) });
                }
                prev = stored;
                last_seq = seq;
            }
            if (rows.len() as i64) < PAGE {
                break;
            }
        }
        if let Ok(mut known) = self.audit_verified.lock() {
            *known = Some((last_seq, prev, entries));
        }
        Ok(ChainCheck { entries, broken_at: None })
    }
}

async fn append(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    actor: &Actor,
    action: &str,
    evidence: Option<EvidenceId>,
    detail: &serde_json::Value,
) -> Result<(), StoreError> {
    let last = sqlx::query("SELECT seq, entry_sha256 FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    let (seq, prev) = match last {
        Some(row) => (row.try_get::<i64, _>("seq")? + 1, row.try_get::<String, _>("entry_sha256")?),
        None => (1, GENESIS.to_string()),
    };
    let at = Utc::now().to_rfc3339();
    let evidence = evidence.map(|id| id.to_string());
    let detail = detail.to_string();
    let hash = entry_hash(&prev, seq, &at, &actor.name, action, evidence.as_deref().unwrap_or(""), &detail);
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor, action, evidence_id, detail, prev_sha256, entry_sha256) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(seq)
    .bind(at)
    .bind(&actor.name)
    .bind(action)
    .bind(evidence)
    .bind(detail)
    .bind(prev)
    .bind(hash)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plates_are_checked_and_written_the_standard_way() {
        assert_eq!(normalise_plate("51f12345").expect("plate"), "51F-123.45");
        assert_eq!(normalise_plate(" 51F-123.45 ").expect("plate"), "51F-123.45");
        assert!(matches!(normalise_plate("HELLO"), Err(ReviewError::BadPlate(_))));
        assert!(matches!(normalise_plate(""), Err(ReviewError::BadPlate(_))));
    }

    #[test]
    fn the_entry_hash_covers_every_field() {
        let base = entry_hash(GENESIS, 1, "t", "a", "approve", "e", "{}");
        assert_ne!(base, entry_hash(GENESIS, 1, "t", "b", "approve", "e", "{}"));
        assert_ne!(base, entry_hash(GENESIS, 2, "t", "a", "approve", "e", "{}"));
        assert_ne!(base, entry_hash(GENESIS, 1, "t", "a", "approve", "e", "{\"x\":1}"));
    }
}
