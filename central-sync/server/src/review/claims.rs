//! Who has a case open. Opening a pending case claims it for a few minutes; a second officer who opens it sees
//! who is reviewing it, and "next case" passes it by, so that two officers working down the same queue do not
//! decide the same case twice. A claim lapses on its own; a decision removes it. Claims only steer officers:
//! the decision itself is still checked against the case's state in its transaction.

use crate::store::{CentralStore, QueueFilter, StoreError};
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::Row;
use te_types::EvidenceId;

/// How long an opened case stays claimed without a new look.
pub const CLAIM_TTL: chrono::Duration = chrono::Duration::minutes(5);

/// Another officer's live claim on a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub officer: String,
    pub since: DateTime<Utc>,
}

/// The pending cases either side of one, in the queue's oldest-first order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Neighbours {
    pub previous: Option<EvidenceId>,
    pub next: Option<EvidenceId>,
}

/// Claim times as fixed-width text, so that they compare as text in both databases.
fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl CentralStore {
    /// Claims `id` for `officer` (or renews the claim) unless another officer's live claim holds it: that claim
    /// is returned and left as it is.
    pub async fn claim(&self, id: EvidenceId, officer: &str) -> Result<Option<Claim>, StoreError> {
        let now = Utc::now();
        sqlx::query(
            "INSERT INTO review_claims (evidence_id, officer, claimed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (evidence_id) DO UPDATE SET officer = excluded.officer, claimed_at = excluded.claimed_at \
             WHERE review_claims.officer = excluded.officer OR review_claims.claimed_at < $4",
        )
        .bind(id.to_string())
        .bind(officer)
        .bind(stamp(now))
        .bind(stamp(now - CLAIM_TTL))
        .execute(self.db())
        .await?;
        let row = sqlx::query("SELECT officer, claimed_at FROM review_claims WHERE evidence_id = $1")
            .bind(id.to_string())
            .fetch_optional(self.db())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let holder: String = row.try_get("officer")?;
        if holder == officer {
            return Ok(None);
        }
        let since: String = row.try_get("claimed_at")?;
        // A row that does not parse (written by hand) is shown as claimed now rather than failing the page.
        let since = DateTime::parse_from_rfc3339(&since).map(|t| t.with_timezone(&Utc)).unwrap_or(now);
        Ok(Some(Claim { officer: holder, since }))
    }

    /// The pending cases just before and after case `id`, oldest first, among those the queue's `filter` picks
    /// (its status aside: always pending), passing over the cases other officers have claimed. "Next" wraps
    /// round to the oldest such case; none when no other is pending.
    pub async fn neighbours(
        &self,
        id: EvidenceId,
        officer: &str,
        filter: &QueueFilter,
    ) -> Result<Neighbours, StoreError> {
        let cutoff = stamp(Utc::now() - CLAIM_TTL);
        let (picked, values) =
            crate::evidence::queue_conditions(&QueueFilter { status: String::new(), ..filter.clone() }, 4);
        let free = format!(
            "review_status = 'pending' AND evidence_id <> $1 AND NOT EXISTS (SELECT 1 FROM review_claims c \
             WHERE c.evidence_id = evidence.evidence_id AND c.officer <> $2 AND c.claimed_at >= $3){picked}"
        );
        // The case's own capture time, as stored (the order the queue sorts by).
        let at = "(SELECT e.captured_at FROM evidence e WHERE e.evidence_id = $1)";
        let one = |sql: String| {
            let (cutoff, values) = (cutoff.clone(), values.clone());
            async move {
                let mut query = sqlx::query(&sql).bind(id.to_string()).bind(officer).bind(cutoff);
                for value in values {
                    query = query.bind(value);
                }
                let row = query.fetch_optional(self.db()).await?;
                row.map(|r| r.try_get::<String, _>("evidence_id")).transpose().map_err(StoreError::from)
            }
        };
        let after = format!(
            "SELECT evidence_id FROM evidence WHERE {free} AND (captured_at > {at} OR (captured_at = {at} AND \
             evidence_id > $1)) ORDER BY captured_at ASC, evidence_id ASC LIMIT 1"
        );
        let before = format!(
            "SELECT evidence_id FROM evidence WHERE {free} AND (captured_at < {at} OR (captured_at = {at} AND \
             evidence_id < $1)) ORDER BY captured_at DESC, evidence_id DESC LIMIT 1"
        );
        let oldest =
            format!("SELECT evidence_id FROM evidence WHERE {free} ORDER BY captured_at ASC, evidence_id ASC LIMIT 1");
        let previous = one(before).await?;
        let next = match one(after).await? {
            Some(next) => Some(next),
            None => one(oldest).await?,
        };
        // Ids come from the database; one that does not parse is passed over rather than linked.
        Ok(Neighbours { previous: previous.and_then(|s| s.parse().ok()), next: next.and_then(|s| s.parse().ok()) })
    }

    /// Removes every claim on `id` (a decision was taken).
    pub(super) async fn release_claims(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        id: EvidenceId,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM review_claims WHERE evidence_id = $1").bind(id.to_string()).execute(&mut **tx).await?;
        Ok(())
    }
}
