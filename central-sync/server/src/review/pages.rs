//! The officers' pages: the review queue with its filters, one case with everything that proves it and the
//! decision forms, and the audit log. Every decision is a plain form POST (works without scripts). The pages
//! are templates (`templates/`); `view` works out what they show.

use super::view::{self, AuditRow, KindView, PlateView, QueueRow};
use super::{Decision, ReviewError, REJECT_REASONS, RESPONSE_DAYS};
use crate::accounts::Actor;
use crate::chain::Link;
use crate::store::{QueueFilter, QueueOrder, ReviewStatus, SealCheck};
use crate::web::{forbidden, local_time, message, render, storage_failure, url_encode, AppState, Frame, Lang};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use central_protocol::CentralStats;
use serde::Deserialize;
use te_types::{EventKind, EvidenceId, ViolationKind};

/// One filter of the queue: a select.
struct Filter {
    name: &'static str,
    label: &'static str,
    options: Vec<Choice>,
    chosen: String,
}

struct Choice {
    value: String,
    label: String,
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage<'a> {
    frame: Frame<'a>,
    stats: CentralStats,
    filters: Vec<Filter>,
    plate: &'a str,
    from: &'a str,
    to: &'a str,
    rows: Vec<QueueRow<'a>>,
    paging: PageLinks,
    /// What the last bulk decision did.
    notice: Option<String>,
    /// This page's query, for the bulk form to come back to.
    back: String,
    /// Added to case links so that the case page keeps this page's filters.
    suffix: String,
    reasons: &'a [(&'a str, &'a str)],
}

/// Counts a bulk decision leaves in the queue's address (numbers only: anything else is ignored).
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct BulkDone {
    rejected: String,
    skipped: String,
}

/// Which page of the queue this is, of how many, and the links to its neighbours.
struct PageLinks {
    page: i64,
    pages: i64,
    /// Entries the filters match in all.
    matching: i64,
    /// Positions (from 1) of the first and last entry shown.
    first: i64,
    last: i64,
    previous: Option<String>,
    next: Option<String>,
    oldest_first: bool,
}

/// The page of the queue asked for.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct Paging {
    /// From 1.
    page: Option<i64>,
    /// Entries per page (1-500; 100 when absent).
    per_page: Option<i64>,
}

/// GET /: the queue, pending first by default, filtered by camera, kind, status, part of a plate and days.
pub async fn queue(
    State(state): State<AppState>,
    actor: Actor,
    lang: Lang,
    Query(mut filter): Query<QueueFilter>,
    Query(paging): Query<Paging>,
    Query(done): Query<BulkDone>,
    parts: Parts,
) -> Response {
    if !actor.role.reviews() {
        return forbidden(lang, actor.viewer());
    }
    // No query at all: the work waiting. An explicit empty status shows every status.
    if parts.uri.query().is_none() {
        filter.status = ReviewStatus::Pending.as_str().into();
    }
    let order = filter.order_or(QueueOrder::Oldest);
    let per_page = paging.per_page.unwrap_or(100).clamp(1, 500);
    let page_no = paging.page.unwrap_or(1).clamp(1, 1_000_000);
    let offset = (page_no - 1) * per_page;
    let found = tokio::try_join!(
        state.store.queue(&filter, order, per_page, offset),
        state.store.queue_count(&filter),
        state.store.cameras(),
        state.store.stats()
    );
    let (entries, matching, cameras, stats) = match found {
        Ok(found) => found,
        Err(e) => return storage_failure("queue page", e),
    };
    let pages = ((matching + per_page - 1) / per_page).max(1);
    // The same filters in the links to the neighbouring pages.
    let link = |n: i64| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("camera", &filter.camera),
            ("kind", &filter.kind),
            ("status", &filter.status),
            ("plate", &filter.plate),
            ("from", &filter.from),
            ("to", &filter.to),
        ] {
            q.append_pair(k, v);
        }
        q.append_pair("order", if order == QueueOrder::Oldest { "oldest" } else { "newest" });
        q.append_pair("per_page", &per_page.to_string());
        q.append_pair("page", &n.to_string());
        format!("/?{}", q.finish())
    };
    let paging = PageLinks {
        page: page_no,
        pages,
        matching,
        first: offset + 1,
        last: offset + entries.len() as i64,
        previous: (page_no > 1).then(|| link(page_no - 1)),
        next: (page_no < pages).then(|| link(page_no + 1)),
        oldest_first: order == QueueOrder::Oldest,
    };
    let all = || Choice { value: String::new(), label: lang.t("Tất cả", "All").into() };
    let kinds = ViolationKind::ALL.iter().map(|k| EventKind::from(*k)).chain([EventKind::VehicleDetected]);
    let filters =
        vec![
            Filter {
                name: "camera",
                label: lang.t("Camera", "Camera"),
                options: std::iter::once(all())
                    .chain(cameras.iter().map(|c| Choice { value: c.clone(), label: c.clone() }))
                    .collect(),
                chosen: filter.camera.clone(),
            },
            Filter {
                name: "kind",
                label: lang.t("Loại", "Type"),
                options: std::iter::once(all())
                    .chain(kinds.map(|k| Choice { value: k.as_str().into(), label: view::kind_name(lang, k).into() }))
                    .collect(),
                chosen: filter.kind.clone(),
            },
            Filter {
                name: "status",
                label: lang.t("Trạng thái", "Status"),
                options: std::iter::once(all())
                    .chain(ReviewStatus::ALL.iter().map(|s| Choice {
                        value: s.as_str().into(),
                        label: lang.t(s.vietnamese(), s.english()).into(),
                    }))
                    .collect(),
                chosen: filter.status.clone(),
            },
        ];
    let rows = entries.iter().map(|e| view::queue_row(lang, e)).collect();
    let frame = Frame { lang, viewer: Some(actor.viewer()), title: lang.t("Hàng chờ xét duyệt", "Review queue") };
    let notice = done.rejected.parse::<u32>().ok().map(|rejected| {
        let skipped = done.skipped.parse::<u32>().unwrap_or(0);
        let mut text = format!("✘ {} {rejected} {}", lang.t("Đã loại bỏ", "Rejected"), lang.t("hồ sơ.", "cases."));
        if skipped > 0 {
            text.push_str(&format!(
                " {skipped} {}",
                lang.t(
                    "hồ sơ đã được quyết định trước đó, giữ nguyên.",
                    "had been decided already and were left as they were."
                )
            ));
        }
        text
    });
    let page = QueuePage {
        frame,
        stats,
        filters,
        plate: &filter.plate,
        from: &filter.from,
        to: &filter.to,
        rows,
        paging,
        notice,
        back: parts.uri.query().unwrap_or_default().to_string(),
        suffix: case_suffix(parts.uri.query().unwrap_or_default()),
        reasons: &REJECT_REASONS,
    };
    render(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct CaseQuery {
    /// The action just taken (`approve`, `reject`, `plate`, `reopen`).
    done: String,
    /// The case it was taken on, when the page shown is the next one.
    decided: String,
    /// The queue's query the officer came from: next and previous stay within its filters.
    q: String,
}

/// A line above the case: saved, or why a decision was refused.
struct Notice {
    class: &'static str,
    text: String,
    /// The case just decided, linked so that a slip of the keyboard is easy to find again.
    decided: Option<EvidenceId>,
}

impl Notice {
    fn refused(lang: Lang, e: &ReviewError) -> Self {
        Notice { class: "error", text: view::refusal(lang, e), decided: None }
    }

    /// What the last decision did; `decided` is the case it was taken on when that is not the one shown.
    fn saved(lang: Lang, done: &str, decided: Option<EvidenceId>) -> Self {
        let text = match done {
            "approve" => lang.t("✔ Đã duyệt, chuyển xử phạt.", "✔ Approved, sent for fining."),
            "reject" => lang.t("✘ Đã loại bỏ.", "✘ Rejected."),
            "plate" => lang.t("Đã sửa biển số.", "Plate corrected."),
            "reopen" => lang.t("Đã mở lại.", "Reopened."),
            _ => lang.t("Đã lưu.", "Saved."),
        };
        let next = if decided.is_some() {
            lang.t(" Đây là trường hợp chờ tiếp theo.", " This is the next pending case.")
        } else {
            ""
        };
        Notice { class: "ok", text: format!("{text}{next}"), decided }
    }
}

/// Another officer has this case open.
struct ClaimView {
    officer: String,
    since: String,
}

struct Decided<'a> {
    by: &'a str,
    at: String,
    reason: Option<&'a str>,
}

struct BestCrop<'a> {
    sha: &'a str,
    frame: u64,
}

struct VoteRow<'a> {
    crop_sha256: Option<&'a str>,
    frame: u64,
    winner: bool,
    text: &'a str,
    raw: &'a str,
    confidence: f32,
    weight: f32,
}

/// Which decision forms the case shows.
enum Forms {
    /// Pending, to a reviewer; `approve`: it is an offence (a plain pass is never sent for fining).
    Decide {
        approve: bool,
    },
    /// Decided, to a supervisor.
    Reopen,
    None,
}

#[derive(Template)]
#[template(path = "case.html")]
struct CasePage<'a> {
    frame: Frame<'a>,
    notice: Option<Notice>,
    id: EvidenceId,
    claimed: Option<ClaimView>,
    /// The pending cases either side of this one, oldest first (others' open cases passed over).
    previous: Option<EvidenceId>,
    next: Option<EvidenceId>,
    /// Added to case links so that they keep the queue's filters (`?q=...` or nothing).
    suffix: String,
    /// The queue's query, sent back with each decision.
    queue: String,
    /// The keyboard and magnifier script.
    script: &'static str,
    has_clip: bool,
    status: ReviewStatus,
    decided: Option<Decided<'a>>,
    plate: PlateView<'a>,
    best_crop: Option<BestCrop<'a>>,
    time: String,
    time_utc: String,
    kind: KindView<'a>,
    location: &'a str,
    camera: &'a str,
    device: &'a str,
    vehicle_class: &'a str,
    detection_score: f32,
    moments: String,
    seal: &'a SealCheck,
    /// The seal check's finding in the page's language.
    seal_detail: String,
    link: Link,
    due: String,
    left: i64,
    /// Only offences have an owner deadline; a plain vehicle pass has none.
    has_deadline: bool,
    response_days: i64,
    sequence: u64,
    received: String,
    votes: Vec<VoteRow<'a>>,
    forms: Forms,
    reasons: &'a [(&'a str, &'a str)],
    audit: Vec<AuditRow<'a>>,
}

/// GET /evidence/{id}: everything that proves the case, and the decision forms.
pub async fn case(
    State(state): State<AppState>,
    actor: Actor,
    lang: Lang,
    Path(raw): Path<String>,
    Query(q): Query<CaseQuery>,
) -> Response {
    // From the query string: only a well-formed id that is not this case is linked.
    let decided = q.decided.parse::<EvidenceId>().ok().filter(|d| d.to_string() != raw);
    let notice = (!q.done.is_empty()).then(|| Notice::saved(lang, &q.done, decided));
    case_page(&state, &actor, lang, &raw, &q.q, StatusCode::OK, notice).await
}

/// The case page; `queue` is the queue's query the officer came from.
async fn case_page(
    state: &AppState,
    actor: &Actor,
    lang: Lang,
    raw: &str,
    queue: &str,
    status: StatusCode,
    notice: Option<Notice>,
) -> Response {
    if !actor.role.reviews() {
        return forbidden(lang, actor.viewer());
    }
    let Ok(id) = raw.parse::<EvidenceId>() else {
        let frame = Frame { lang, viewer: Some(actor.viewer()), title: "400" };
        return message(StatusCode::BAD_REQUEST, frame, "error", "bad id");
    };
    let found = tokio::try_join!(
        state.store.get(id),
        state.store.seal_check(id),
        state.store.audit_entries(Some(id), 100),
        state.store.link(id)
    );
    let (entry, seal, audit, link) = match found {
        Ok((Some(entry), Some(seal), audit, link)) => (entry, seal, audit, link),
        Ok(_) => {
            let frame = Frame { lang, viewer: Some(actor.viewer()), title: "404" };
            return message(StatusCode::NOT_FOUND, frame, "error", "404");
        }
        Err(e) => return storage_failure("case page", e),
    };
    let r = &entry.record;
    let claimed = if entry.review_status == ReviewStatus::Pending {
        match state.store.claim(id, &actor.name).await {
            Ok(claim) => claim.map(|c| ClaimView { officer: c.officer, since: local_time(c.since) }),
            Err(e) => return storage_failure("case page claim", e),
        }
    } else {
        None
    };
    let around = match state.store.neighbours(id, &actor.name, &filter_from(queue)).await {
        Ok(around) => around,
        Err(e) => return storage_failure("case page neighbours", e),
    };
    let winner = r.plate.as_ref().and_then(|p| p.text.as_deref());
    let for_winner = |v: &te_types::PlateVote| winner.is_some() && v.text.as_deref() == winner;
    let all_votes = || r.plate.iter().flat_map(|p| p.votes.iter());
    let votes = all_votes()
        .map(|v| VoteRow {
            crop_sha256: v.crop_sha256.as_deref(),
            frame: v.frame_number,
            winner: for_winner(v),
            text: v.text.as_deref().unwrap_or("—"),
            raw: &v.raw,
            confidence: v.confidence,
            weight: v.weight,
        })
        .collect();
    let best_crop = view::best_plate_crop(r).map(|(sha, frame)| BestCrop { sha, frame });
    let moments = r
        .violation
        .iter()
        .flat_map(|v| v.moments.iter())
        .map(|m| {
            let role = match m.role {
                te_types::MomentRole::Before => lang.t("Trước vi phạm", "Before"),
                te_types::MomentRole::At => lang.t("Thời điểm vi phạm", "At"),
                te_types::MomentRole::After => lang.t("Sau vi phạm", "After"),
            };
            format!("{role}: {} {} · {}", lang.t("khung hình", "frame"), m.frame_number, local_time(m.captured_at))
        })
        .collect::<Vec<_>>()
        .join(" — ");
    let decided = match (&entry.decided_by, entry.decided_at) {
        (Some(by), Some(at)) => Some(Decided { by, at: local_time(at), reason: entry.reject_reason.as_deref() }),
        _ => None,
    };
    let forms = match entry.review_status {
        ReviewStatus::Pending if actor.role.reviews() => Forms::Decide { approve: r.kind.is_violation() },
        ReviewStatus::Approved | ReviewStatus::Rejected if actor.role.supervises() => Forms::Reopen,
        _ => Forms::None,
    };
    let (due, left) = view::deadline_left(&entry);
    let title = view::kind_name(lang, r.kind);
    let page = CasePage {
        frame: Frame { lang, viewer: Some(actor.viewer()), title },
        notice,
        id,
        claimed,
        previous: around.previous,
        next: around.next,
        suffix: case_suffix(queue),
        queue: if queue.trim().is_empty() { String::new() } else { queue_query(queue) },
        script: review_script_path(),
        has_clip: r.clip_sha256.is_some(),
        status: entry.review_status,
        decided,
        plate: view::plate(&entry),
        best_crop,
        time: local_time(r.captured_at),
        time_utc: r.captured_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        kind: view::kind(lang, r),
        location: &r.location,
        camera: r.camera_id.as_str(),
        device: r.device_id.as_str(),
        vehicle_class: lang.t(r.vehicle_class.vietnamese(), r.vehicle_class.as_str()),
        detection_score: r.detection_score,
        moments,
        seal: &seal,
        seal_detail: view::seal_detail(lang, &seal.detail),
        link,
        due: local_time(due).get(..10).unwrap_or_default().to_string(),
        left,
        has_deadline: r.kind.is_violation(),
        response_days: RESPONSE_DAYS,
        sequence: r.sequence,
        received: local_time(entry.received_at),
        votes,
        forms,
        reasons: &REJECT_REASONS,
        audit: view::audit_rows(lang, &audit),
    };
    render(status, &page)
}

#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    action: String,
    #[serde(default)]
    plate: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    note: String,
    /// The queue's query the officer came from.
    #[serde(default)]
    q: String,
}

/// POST /evidence/{id}/decide: one decision; back to the case (303) or the case with the error.
pub async fn decide(
    State(state): State<AppState>,
    actor: Actor,
    lang: Lang,
    Path(raw): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    let Ok(id) = raw.parse::<EvidenceId>() else { return (StatusCode::BAD_REQUEST, "bad id").into_response() };
    let reason =
        [form.reason.trim(), form.note.trim()].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join(": ");
    let decision = match form.action.as_str() {
        "approve" => Decision::Approve { plate: Some(form.plate).filter(|p| !p.trim().is_empty()) },
        "reject" => Decision::Reject { reason },
        "plate" => Decision::CorrectPlate { plate: form.plate },
        "reopen" => Decision::Reopen { reason },
        other => return (StatusCode::BAD_REQUEST, format!("unknown action {other:?}")).into_response(),
    };
    match state.store.decide(id, &actor, decision).await {
        Ok(()) => Redirect::to(&after_decision(&state, &actor, id, &form.action, &form.q).await).into_response(),
        Err(e) => {
            let status = match &e {
                ReviewError::NotFound(_) => StatusCode::NOT_FOUND,
                ReviewError::Forbidden { .. } => StatusCode::FORBIDDEN,
                ReviewError::WrongState { .. } => StatusCode::CONFLICT,
                ReviewError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            if let ReviewError::Store(cause) = &e {
                tracing::error!(evidence = %id, error = %cause, "decision not saved");
            }
            let notice = Notice::refused(lang, &e);
            case_page(&state, &actor, lang, &raw, &form.q, status, Some(notice)).await
        }
    }
}

/// Where the officer goes after a decision: a corrected plate stays on its case (to be approved next); a
/// decision moves on to the next pending case nobody else has open within the queue's filters (`queue`), or
/// back to that queue when there is none.
async fn after_decision(state: &AppState, actor: &Actor, id: EvidenceId, action: &str, queue: &str) -> String {
    // The queue's query travels as `q` (re-encoded from its own parameters only).
    let q = case_suffix(queue).replacen('?', "&", 1);
    let stay = format!("/evidence/{id}?done={}{q}", url_encode(action));
    if action == "plate" || action == "reopen" {
        return stay;
    }
    match state.store.neighbours(id, &actor.name, &filter_from(queue)).await.map(|n| n.next) {
        Ok(Some(next)) => format!("/evidence/{next}?done={}&decided={id}{q}", url_encode(action)),
        // Nothing else pending there: the queue the officer came from (the pending queue by default).
        Ok(None) if queue.trim().is_empty() => "/".to_string(),
        Ok(None) => format!("/?{}", queue_query(queue)),
        // The decision is saved; only the way on failed: show the decided case.
        Err(e) => {
            tracing::warn!(evidence = %id, error = %e, "next case after a decision");
            stay
        }
    }
}

/// The queue's own parameters, the only ones a return address keeps.
const QUEUE_KEYS: [&str; 9] = ["camera", "kind", "status", "plate", "from", "to", "order", "per_page", "page"];

/// A return address made from the queue's own parameters only (re-encoded: nothing else survives), or the
/// pending queue when there are none.
pub(super) fn queue_query(back: &str) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (key, value) in form_urlencoded::parse(back.trim_start_matches('?').as_bytes()) {
        if QUEUE_KEYS.contains(&key.as_ref()) {
            out.append_pair(&key, &value.chars().take(100).collect::<String>());
            any = true;
        }
    }
    if any {
        out.finish()
    } else {
        "status=pending".into()
    }
}

/// The queue's filters from a return address (its status aside: a case page moves among pending cases).
fn filter_from(query: &str) -> QueueFilter {
    let mut filter = QueueFilter::default();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let value: String = value.chars().take(100).collect();
        match key.as_ref() {
            "camera" => filter.camera = value,
            "kind" => filter.kind = value,
            "plate" => filter.plate = value,
            "from" => filter.from = value,
            "to" => filter.to = value,
            _ => {}
        }
    }
    filter
}

/// What a case link adds so the case page keeps the queue's filters: `?q=<the queue's query>`, or nothing.
fn case_suffix(query: &str) -> String {
    if query.trim().is_empty() {
        String::new()
    } else {
        format!("?q={}", url_encode(&queue_query(query)))
    }
}

/// The case page's script: keyboard shortcuts and the magnifier.
const REVIEW_JS: &str = include_str!("../../static/review.js");

/// Where the script is served: its name carries a hash of its content, so browsers may keep it for good and a
/// new build's script is never mistaken for an old one.
pub fn review_script_path() -> &'static str {
    static PATH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("/static/review-{}.js", &central_protocol::sha256_hex(REVIEW_JS.as_bytes())[..12])
    });
    &PATH
}

/// GET /static/{name}: the page scripts (no login needed: they hold no data).
pub async fn static_file(Path(name): Path<String>) -> Response {
    if review_script_path().strip_prefix("/static/") != Some(name.as_str()) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let headers = [
        (axum::http::header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
        (axum::http::header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
    ];
    (headers, REVIEW_JS).into_response()
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage<'a> {
    frame: Frame<'a>,
    broken_at: Option<i64>,
    checked: u64,
    entries: Vec<AuditRow<'a>>,
}

/// GET /audit: the latest entries and whether the whole chain still verifies (supervisors, admins).
pub async fn audit(State(state): State<AppState>, actor: Actor, lang: Lang) -> Response {
    if !actor.role.supervises() {
        return forbidden(lang, actor.viewer());
    }
    let (entries, chain) =
        match tokio::try_join!(state.store.audit_entries(None, 500), state.store.verify_audit_since_last()) {
            Ok(found) => found,
            Err(e) => return storage_failure("audit page", e),
        };
    let frame = Frame { lang, viewer: Some(actor.viewer()), title: lang.t("Nhật ký kiểm tra", "Audit log") };
    render(
        StatusCode::OK,
        &AuditPage {
            frame,
            broken_at: chain.broken_at,
            checked: chain.entries,
            entries: view::audit_rows(lang, &entries),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_return_address_keeps_only_the_queues_own_filters() {
        assert_eq!(queue_query("status=pending&plate=l2+149&rejected=3"), "status=pending&plate=l2+149");
        assert_eq!(queue_query(""), "status=pending");
        assert_eq!(queue_query("next=https%3A%2F%2Fevil.example&x=%0D%0A"), "status=pending");
        assert_eq!(queue_query("?camera=a%26b%0D%0A"), "camera=a%26b%0D%0A", "re-encoded, never spliced");
    }

    #[test]
    fn a_case_link_carries_the_queues_filters_and_the_case_page_reads_them_back() {
        let suffix = case_suffix("camera=nga-tu-1&plate=51F&status=&rejected=2");
        assert_eq!(suffix, "?q=camera%3Dnga-tu-1%26plate%3D51F%26status%3D");
        let back =
            percent_encoding::percent_decode_str(suffix.trim_start_matches("?q=")).decode_utf8_lossy().to_string();
        let filter = filter_from(&back);
        assert_eq!((filter.camera.as_str(), filter.plate.as_str(), filter.status.as_str()), ("nga-tu-1", "51F", ""));
        assert_eq!(case_suffix(""), "");
    }
}
