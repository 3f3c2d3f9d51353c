//! Bulk reject: one reason for many pending cases picked on the queue. Each case is still its own decision with
//! its own audit entry, so a case another officer decided meanwhile is left as it is and counted, not changed.

use super::{Decision, ReviewError};
use crate::accounts::Actor;
use crate::web::{forbidden, message, AppState, Frame, Lang};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use te_types::EvidenceId;

/// The most cases one bulk decision takes (a page of the queue holds at most 500; officers pick far fewer).
pub const MAX_BULK: usize = 200;

/// What the queue's bulk form sends: `id` once per picked case, `reason` (a listed reason), `note`.
#[derive(Debug, PartialEq, Eq)]
struct BulkForm {
    ids: Vec<EvidenceId>,
    reason: String,
    /// The queue's filters the officer picked the cases under, to return to.
    back: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
enum BulkFormError {
    #[error("no case was picked")]
    NoneChosen,
    #[error("{0} cases were picked; at most {MAX_BULK} at once")]
    TooMany(usize),
    #[error("{0:?} is not an evidence id")]
    BadId(String),
    #[error("a reason is needed")]
    NoReason,
}

impl BulkFormError {
    fn text(&self, lang: Lang) -> String {
        match (lang, self) {
            (Lang::En, e) => e.to_string(),
            (Lang::Vi, BulkFormError::NoneChosen) => "Chưa chọn hồ sơ nào.".into(),
            (Lang::Vi, BulkFormError::TooMany(n)) => format!("Đã chọn {n} hồ sơ; tối đa {MAX_BULK} mỗi lần."),
            (Lang::Vi, BulkFormError::BadId(id)) => format!("«{id}» không phải mã chứng cứ."),
            (Lang::Vi, BulkFormError::NoReason) => "Cần ghi lý do.".into(),
        }
    }
}

fn parse(body: &[u8]) -> Result<BulkForm, BulkFormError> {
    let (mut ids, mut reason, mut note, mut back) = (Vec::new(), String::new(), String::new(), String::new());
    for (key, value) in form_urlencoded::parse(body) {
        match key.as_ref() {
            "id" => {
                let id = value
                    .trim()
                    .parse::<EvidenceId>()
                    .map_err(|_| BulkFormError::BadId(value.chars().take(40).collect()))?;
                if !ids.contains(&id) {
                    ids.push(id);
                }
                if ids.len() > MAX_BULK {
                    return Err(BulkFormError::TooMany(ids.len()));
                }
            }
            "reason" => reason = value.trim().to_string(),
            "note" => note = value.trim().to_string(),
            "back" => back = value.to_string(),
            _ => {}
        }
    }
    if ids.is_empty() {
        return Err(BulkFormError::NoneChosen);
    }
    let reason = [reason, note].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(": ");
    if reason.is_empty() {
        return Err(BulkFormError::NoReason);
    }
    Ok(BulkForm { ids, reason, back })
}

/// POST /bulk/reject: rejects each picked pending case with the one reason, then back to the pending queue with
/// how many were rejected and how many had been decided already.
pub async fn bulk_reject(State(state): State<AppState>, actor: Actor, lang: Lang, body: Bytes) -> Response {
    if !actor.role.reviews() {
        return forbidden(lang, actor.viewer());
    }
    let form = match parse(&body) {
        Ok(form) => form,
        Err(e) => {
            let frame =
                Frame { lang, viewer: Some(actor.viewer()), title: lang.t("Loại bỏ hàng loạt", "Bulk reject") };
            return message(StatusCode::UNPROCESSABLE_ENTITY, frame, "error", &e.text(lang));
        }
    };
    let (mut rejected, mut skipped) = (0usize, 0usize);
    for id in &form.ids {
        match state.store.decide(*id, &actor, Decision::Reject { reason: form.reason.clone() }).await {
            Ok(()) => rejected += 1,
            Err(ReviewError::Store(e)) => {
                // What is done is done and audited; say so, and stop.
                tracing::error!(evidence = %id, error = %e, rejected, "bulk reject stopped");
                let frame = Frame { lang, viewer: Some(actor.viewer()), title: "500" };
                let text = format!(
                    "{} {rejected}. {}",
                    lang.t("Lỗi lưu trữ; số hồ sơ đã loại bỏ:", "Storage failure; cases rejected so far:"),
                    lang.t("Hãy thử lại với các hồ sơ còn lại.", "Try again with the remaining cases.")
                );
                return message(StatusCode::INTERNAL_SERVER_ERROR, frame, "error", &text);
            }
            Err(_) => skipped += 1,
        }
    }
    tracing::info!(actor = %actor.name, rejected, skipped, "bulk reject");
    let back = super::pages::queue_query(&form.back);
    Redirect::to(&format!("/?{back}&rejected={rejected}&skipped={skipped}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_takes_repeated_ids_once_each_and_joins_reason_and_note() {
        let (a, b) = (EvidenceId::new(), EvidenceId::new());
        let body = format!(
            "id={a}&id={b}&id={a}&reason=Kh%C3%B4ng+c%C3%B3+vi+ph%E1%BA%A1m&note=+xe+c%E1%BB%A9u+th%C6%B0%C6%A1ng"
        );
        let form = parse(body.as_bytes()).expect("form");
        assert_eq!(form.ids, vec![a, b]);
        assert_eq!(form.reason, "Không có vi phạm: xe cứu thương");
    }

    #[test]
    fn a_hostile_bulk_form_is_refused_with_a_reason() {
        let a = EvidenceId::new();
        assert_eq!(parse(b"reason=x"), Err(BulkFormError::NoneChosen));
        assert_eq!(parse(format!("id={a}").as_bytes()), Err(BulkFormError::NoReason));
        assert!(matches!(parse(b"id=../../etc&reason=x"), Err(BulkFormError::BadId(_))));
        let many: String = (0..=MAX_BULK).map(|_| format!("id={}&", EvidenceId::new())).collect();
        assert_eq!(parse(format!("{many}reason=x").as_bytes()), Err(BulkFormError::TooMany(MAX_BULK + 1)));
    }
}
