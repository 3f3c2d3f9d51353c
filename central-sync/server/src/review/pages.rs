//! The officers' pages: login, the review queue with its filters, one case with everything that proves it and
//! the decision forms, and the audit log. Every decision is a plain form POST (works without scripts).

use super::{owner_deadline, AuditEntry, Decision, ReviewError, REJECT_REASONS, RESPONSE_DAYS};
use crate::accounts::Actor;
use crate::chain::Link;
use crate::store::{QueueEntry, QueueFilter};
use crate::web::{esc, forbidden, local_time, page, page_with_status, storage_failure, url_encode, AppState, Lang};
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use te_types::EvidenceId;

/// The offence in Vietnamese with what the box measured, or the plain event kind for a vehicle pass. A
/// violation whose box clock was unchecked or off is flagged: its time is not objective until a reviewer looks.
pub fn kind_cell(lang: Lang, r: &central_protocol::EvidenceRecord) -> String {
    match &r.violation {
        Some(v) => format!(
            "<b class=\"violation\">{}</b><br><small>{}: {}</small>{}",
            esc(lang.t(v.kind.vietnamese(), v.kind.english())),
            esc(&v.rule),
            esc(&v.summary),
            clock_flag(lang, r.clock.as_ref()),
        ),
        None => esc(lang.t("Phương tiện đi qua", "Vehicle passed")),
    }
}

pub fn clock_flag(lang: Lang, clock: Option<&central_protocol::ClockCheck>) -> String {
    match clock {
        Some(c) if c.trusted => String::new(),
        Some(c) => format!(
            "<br><b class=\"clock-flag\">⚠ {} {:+.1} s ({})</b>",
            lang.t("Đồng hồ lệch", "Clock off by"),
            c.offset_ms as f64 / 1000.0,
            esc(&c.source)
        ),
        None => format!("<br><b class=\"clock-flag\">⚠ {}</b>", lang.t("Đồng hồ chưa kiểm chứng", "Clock unchecked")),
    }
}

fn status_text(lang: Lang, status: &str) -> String {
    let text = match status {
        "pending" => lang.t("Chờ xét duyệt", "Pending"),
        "approved" => lang.t("Đã duyệt", "Approved"),
        "rejected" => lang.t("Đã loại", "Rejected"),
        other => other,
    };
    format!("<span class=\"status status-{}\">{}</span>", esc(status), esc(text))
}

/// The owner-identification deadline and how many days are left (negative: overdue).
fn deadline_left(entry: &QueueEntry) -> (chrono::DateTime<chrono::Utc>, i64) {
    let due = owner_deadline(entry.record.captured_at);
    (due, (due - chrono::Utc::now()).num_days())
}

fn deadline_cell(lang: Lang, entry: &QueueEntry) -> String {
    if entry.review_status == "rejected" {
        return "—".into();
    }
    let (due, left) = deadline_left(entry);
    let class = if left < 0 {
        "overdue"
    } else if left <= 2 {
        "alarm"
    } else {
        ""
    };
    let left_text = if left < 0 {
        format!("{} {} {}", lang.t("quá hạn", "overdue by"), -left, lang.t("ngày", "days"))
    } else {
        format!("{} {}", left, lang.t("ngày còn lại", "days left"))
    };
    format!("{}<br><small class=\"{class}\">{left_text}</small>", local_time(due).get(..10).unwrap_or_default())
}

fn plate_text(lang: Lang, entry: &QueueEntry) -> String {
    match (&entry.corrected_plate, entry.record.plate.as_ref().and_then(|p| p.text.as_deref())) {
        (Some(corrected), Some(read)) if corrected != read => format!(
            "<b class=\"plate\">{}</b><br><small>{} {}</small>",
            esc(corrected),
            lang.t("sửa từ", "corrected from"),
            esc(read)
        ),
        (Some(corrected), _) => format!("<b class=\"plate\">{}</b>", esc(corrected)),
        (None, Some(read)) => format!("<b class=\"plate\">{}</b>", esc(read)),
        (None, None) => format!("<small>{}</small>", lang.t("không đọc được", "unreadable")),
    }
}

fn select(name: &str, options: &[(String, String)], chosen: &str) -> String {
    let mut out = format!("<select name=\"{name}\" id=\"filter-{name}\">");
    for (value, label) in options {
        let selected = if value == chosen { " selected" } else { "" };
        out.push_str(&format!("<option value=\"{}\"{selected}>{}</option>", esc(value), esc(label)));
    }
    out.push_str("</select>");
    out
}

const KINDS: [&str; 8] = [
    "red_light",
    "stop_line",
    "wrong_way",
    "wrong_lane",
    "illegal_stopping",
    "speeding",
    "no_helmet",
    "vehicle_detected",
];

fn kind_name(lang: Lang, kind: &str) -> String {
    match serde_json::from_value::<te_types::ViolationKind>(serde_json::Value::String(kind.into())) {
        Ok(k) => lang.t(k.vietnamese(), k.english()).to_string(),
        Err(_) => lang.t("Phương tiện đi qua", "Vehicle passed").to_string(),
    }
}

/// GET /: the queue, pending first by default, filtered by camera, kind, status and days.
pub async fn queue(
    State(state): State<AppState>,
    actor: Actor,
    lang: Lang,
    Query(mut filter): Query<QueueFilter>,
    parts: Parts,
) -> Response {
    if !actor.role.reviews() {
        return forbidden(lang, actor.viewer());
    }
    // No query at all: the work waiting. An explicit empty status shows every status.
    if parts.uri.query().is_none() {
        filter.status = "pending".into();
    }
    let (entries, cameras, stats) =
        match tokio::try_join!(state.store.queue(&filter, 300), state.store.cameras(), state.store.stats()) {
            Ok(found) => found,
            Err(e) => return storage_failure("queue page", e),
        };
    let all = lang.t("Tất cả", "All").to_string();
    let camera_options: Vec<(String, String)> =
        std::iter::once((String::new(), all.clone())).chain(cameras.iter().map(|c| (c.clone(), c.clone()))).collect();
    let kind_options: Vec<(String, String)> = std::iter::once((String::new(), all.clone()))
        .chain(KINDS.iter().map(|k| (k.to_string(), kind_name(lang, k))))
        .collect();
    let status_options: Vec<(String, String)> = [
        ("", all.as_str()),
        ("pending", lang.t("Chờ xét duyệt", "Pending")),
        ("approved", lang.t("Đã duyệt", "Approved")),
        ("rejected", lang.t("Đã loại", "Rejected")),
    ]
    .iter()
    .map(|(v, l)| (v.to_string(), l.to_string()))
    .collect();
    let mut rows = String::new();
    for entry in &entries {
        let r = &entry.record;
        let id = r.evidence_id.to_string();
        rows.push_str(&format!(
            "<tr class=\"case\" data-id=\"{id}\"><td><a href=\"/evidence/{id}\"><img src=\"/api/v1/evidence/{id}/overview.jpg\" \
             width=\"160\" loading=\"lazy\" alt=\"{}\"></a></td><td>{}</td><td>{}<br><small>{}</small></td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td><a class=\"open\" href=\"/evidence/{id}\">{}</a></td></tr>\n",
            lang.t("ảnh tổng quan", "overview"),
            kind_cell(lang, r),
            esc(r.camera_id.as_str()),
            esc(&r.location),
            local_time(r.captured_at),
            plate_text(lang, entry),
            status_text(lang, &entry.review_status),
            deadline_cell(lang, entry),
            lang.t("Xem xét", "Review"),
        ));
    }
    let body = format!(
        "<h1>{}</h1><p id=\"totals\">{} {} · {} {} · {} camera · {} {}</p>\
         <form method=\"get\" action=\"/\" id=\"filters\"><label>{} {}</label><label>{} {}</label><label>{} {}</label>\
         <label>{} <input type=\"date\" name=\"from\" value=\"{}\"></label><label>{} <input type=\"date\" name=\"to\" \
         value=\"{}\"></label><button>{}</button></form>\
         <table><thead><tr><th>{}</th><th>{}</th><th>Camera</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr>\
         </thead><tbody>\n{rows}</tbody></table>",
        lang.t("Hàng chờ xét duyệt", "Review queue"),
        stats.evidence_total,
        lang.t("bản ghi", "records"),
        stats.devices,
        lang.t("thiết bị", "devices"),
        stats.cameras,
        entries.len(),
        lang.t("đang hiển thị", "shown"),
        lang.t("Camera", "Camera"),
        select("camera", &camera_options, &filter.camera),
        lang.t("Loại", "Type"),
        select("kind", &kind_options, &filter.kind),
        lang.t("Trạng thái", "Status"),
        select("status", &status_options, &filter.status),
        lang.t("Từ ngày", "From"),
        esc(&filter.from),
        lang.t("Đến ngày", "To"),
        esc(&filter.to),
        lang.t("Lọc", "Filter"),
        lang.t("Ảnh", "Picture"),
        lang.t("Vi phạm", "Violation"),
        lang.t("Thời gian", "Time"),
        lang.t("Biển số", "Plate"),
        lang.t("Trạng thái", "Status"),
        lang.t("Hạn xác minh chủ xe", "Owner deadline"),
    );
    page(lang, Some(actor.viewer()), lang.t("Hàng chờ xét duyệt", "Review queue"), &body)
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct CaseQuery {
    done: String,
}

/// GET /evidence/{id}: everything that proves the case, and the decision forms.
pub async fn case(
    State(state): State<AppState>,
    actor: Actor,
    lang: Lang,
    Path(raw): Path<String>,
    Query(q): Query<CaseQuery>,
) -> Response {
    let notice =
        (!q.done.is_empty()).then(|| format!("<p class=\"ok\" id=\"notice\">{}</p>", lang.t("Đã lưu.", "Saved.")));
    case_page(&state, &actor, lang, &raw, StatusCode::OK, notice.unwrap_or_default()).await
}

async fn case_page(
    state: &AppState,
    actor: &Actor,
    lang: Lang,
    raw: &str,
    status: StatusCode,
    notice: String,
) -> Response {
    if !actor.role.reviews() {
        return forbidden(lang, actor.viewer());
    }
    let Ok(id) = raw.parse::<EvidenceId>() else {
        return page_with_status(
            StatusCode::BAD_REQUEST,
            lang,
            Some(actor.viewer()),
            "400",
            "<p class=\"error\">bad id</p>",
        );
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
            return page_with_status(
                StatusCode::NOT_FOUND,
                lang,
                Some(actor.viewer()),
                "404",
                "<p class=\"error\">404</p>",
            )
        }
        Err(e) => return storage_failure("case page", e),
    };
    let r = &entry.record;
    let yes_no = |ok: bool| {
        if ok {
            format!("<span class=\"ok\">✔ {}</span>", lang.t("khớp", "matches"))
        } else {
            format!("<span class=\"alarm\">✘ {}</span>", lang.t("KHÔNG khớp", "does NOT match"))
        }
    };
    let link_text = match link {
        Link::First => {
            format!("<span class=\"ok\">✔ {}</span>", lang.t("bản ghi đầu tiên của thiết bị", "the box's first record"))
        }
        Link::Verified => format!(
            "<span class=\"ok\">✔ {}</span>",
            lang.t("nối đúng với bản ghi trước", "links to the record before it")
        ),
        Link::PredecessorMissing => {
            lang.t("bản ghi trước chưa đến", "the record before it has not arrived").to_string()
        }
        Link::Broken => format!(
            "<span class=\"alarm\">✘ {}</span>",
            lang.t("KHÔNG nối với bản ghi trước", "does NOT link to the record before it")
        ),
        Link::Unknown => "—".to_string(),
    };
    let other_media: String = [
        seal.clip_ok.map(|ok| format!(" · video: {}", yes_no(ok))),
        seal.plate_crops_ok.map(|ok| format!(" · {}: {}", lang.t("ảnh biển số", "plate pictures"), yes_no(ok))),
    ]
    .into_iter()
    .flatten()
    .collect();
    let seal_html = format!(
        "<tr><th>{}</th><td id=\"seal\">{} <small>{}</small><br>{}: {}{}<br>{}: <span id=\"chain-link\">{link_text}</span>\
         <br><small>{}: <code>{}</code></small></td></tr>",
        lang.t("Chữ ký số", "Signature"),
        if seal.signature_ok {
            format!("<span class=\"ok\">✔ {}</span>", lang.t("hợp lệ", "valid"))
        } else {
            format!("<span class=\"alarm\">✘ {}</span>", lang.t("KHÔNG hợp lệ", "INVALID"))
        },
        esc(&seal.detail),
        lang.t("Ảnh", "Pictures"),
        yes_no(seal.overview_ok),
        other_media,
        lang.t("Chuỗi băm", "Hash chain"),
        lang.t("Khoá thiết bị", "Device key"),
        esc(&seal.public_key),
    );
    let winner = r.plate.as_ref().and_then(|p| p.text.as_deref());
    let for_winner = |v: &te_types::PlateVote| winner.is_some() && v.text.as_deref() == winner;
    let crop_img = |sha: &str, class: &str, frame: u64| {
        format!(
            "<a href=\"/api/v1/evidence/{id}/plates/{sha}\"><img class=\"{class}\" \
             src=\"/api/v1/evidence/{id}/plates/{sha}\" alt=\"{} {frame}\"></a>",
            lang.t("biển số ở khung hình", "plate in frame")
        )
    };
    let votes: String = r
        .plate
        .iter()
        .flat_map(|p| p.votes.iter())
        .map(|v| {
            let for_winner = for_winner(v);
            format!(
                "<tr class=\"vote{}\"><td>{}</td><td>{}</td><td>{}{}</td><td><code>{}</code></td><td>{:.2}</td><td>{:.2}</td></tr>",
                if for_winner { " winner" } else { "" },
                v.crop_sha256.as_deref().map(|sha| crop_img(sha, "vote-crop", v.frame_number)).unwrap_or_default(),
                v.frame_number,
                if for_winner { "✔ " } else { "" },
                esc(v.text.as_deref().unwrap_or("—")),
                esc(&v.raw),
                v.confidence,
                v.weight
            )
        })
        .collect();
    // The plate crop: the heaviest read of the winning plate that has a picture.
    let best_crop = r
        .plate
        .iter()
        .flat_map(|p| p.votes.iter())
        .filter(|v| for_winner(v))
        .filter_map(|v| v.crop_sha256.as_deref().map(|sha| (v.weight, v.frame_number, sha)))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, frame, sha)| format!("<br><span id=\"plate-crop\">{}</span>", crop_img(sha, "plate-crop", frame)))
        .unwrap_or_default();
    let (due, left) = deadline_left(&entry);
    let violation_rows = r
        .violation
        .as_ref()
        .map(|v| {
            let moments: Vec<String> = v
                .moments
                .iter()
                .map(|m| format!("{:?} #{} {}", m.role, m.frame_number, local_time(m.captured_at)))
                .collect();
            format!(
                "<tr><th>{}</th><td>{} · {}<br><small>{}</small></td></tr>",
                lang.t("Quy tắc", "Rule"),
                esc(&v.rule),
                esc(&v.summary),
                esc(&moments.join(" · "))
            )
        })
        .unwrap_or_default();
    let decided = match (&entry.decided_by, entry.decided_at) {
        (Some(by), Some(at)) => format!(
            " {} {} · {}{}",
            lang.t("bởi", "by"),
            esc(by),
            local_time(at),
            entry.reject_reason.as_deref().map(|r| format!(" · {}", esc(r))).unwrap_or_default()
        ),
        _ => String::new(),
    };
    let mut body = format!(
        "<h1>{}</h1>{notice}<p><a href=\"/\">← {}</a></p>\
         <p><img class=\"overview\" src=\"/api/v1/evidence/{id}/overview.jpg\" alt=\"{}\"></p>{}\
         <table class=\"facts\">\
         <tr><th>{}</th><td id=\"status\">{}{decided}</td></tr>\
         <tr><th>{}</th><td><span id=\"plate\">{}</span>{best_crop}</td></tr>\
         <tr><th>{}</th><td>{} <small>(UTC {})</small>{}</td></tr>\
         <tr><th>{}</th><td>{} · {}<br><small>{} {}</small></td></tr>\
         <tr><th>{}</th><td>{} · {:.2}</td></tr>{violation_rows}{seal_html}\
         <tr><th>{}</th><td>{}: {} ({} {}) · {}</td></tr>\
         <tr><th>{}</th><td><code>{id}</code> · {} {} · {}</td></tr></table>",
        kind_name(lang, r.kind.as_str()),
        lang.t("Hàng chờ", "Queue"),
        lang.t("ảnh tổng quan", "overview"),
        r.clip_sha256
            .as_ref()
            .map(|_| format!(
                "<p><video controls preload=\"none\" width=\"640\" src=\"/api/v1/evidence/{id}/clip.mp4\"></video></p>"
            ))
            .unwrap_or_default(),
        lang.t("Trạng thái", "Status"),
        status_text(lang, &entry.review_status),
        lang.t("Biển số", "Plate"),
        plate_text(lang, &entry),
        lang.t("Thời gian", "Time"),
        local_time(r.captured_at),
        r.captured_at.format("%Y-%m-%d %H:%M:%S"),
        clock_flag(lang, r.clock.as_ref()).replace("<br>", " "),
        lang.t("Địa điểm", "Place"),
        esc(&r.location),
        esc(r.camera_id.as_str()),
        lang.t("thiết bị", "device"),
        esc(r.device_id.as_str()),
        lang.t("Phương tiện", "Vehicle"),
        esc(r.vehicle_class.as_str()),
        r.detection_score,
        lang.t("Thời hạn (TT 73/2024/TT-BCA)", "Deadlines (Circular 73/2024/TT-BCA)"),
        lang.t("xác minh, thông báo chủ xe trước", "identify and notify the owner by"),
        local_time(due).get(..10).unwrap_or_default(),
        if left < 0 { -left } else { left },
        if left < 0 { lang.t("ngày quá hạn", "days overdue") } else { lang.t("ngày còn lại", "days left") },
        format_args!(
            "{} {} {}",
            lang.t("chủ xe không phản hồi sau", "owner silent"),
            RESPONSE_DAYS,
            lang.t(
                "ngày kể từ thông báo: xử lý qua cổng dịch vụ công",
                "days after the notice: handled via the public portal"
            )
        ),
        lang.t("Mã chứng cứ", "Evidence id"),
        lang.t("bản ghi số", "record no."),
        r.sequence,
        lang.t("nhận lúc ", "received ").to_string() + &local_time(entry.received_at),
    );
    if !votes.is_empty() {
        body.push_str(&format!(
            "<h2>{}</h2><table id=\"votes\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{votes}</tbody></table>",
            lang.t("Các lần đọc biển số (✔: bỏ phiếu cho biển số)", "Plate reads (✔: voted for the plate)"),
            lang.t("Ảnh", "Picture"),
            lang.t("Khung hình", "Frame"),
            lang.t("Biển số", "Plate"),
            lang.t("Ký tự đọc được", "Characters read"),
            lang.t("Độ tin cậy", "Confidence"),
            lang.t("Trọng số", "Weight"),
        ));
    }
    body.push_str(&decision_forms(lang, actor, &entry));
    body.push_str(&format!("<h2>{}</h2>{}", lang.t("Lịch sử xử lý", "History"), audit_table(lang, &audit)));
    page_with_status(status, lang, Some(actor.viewer()), &kind_name(lang, r.kind.as_str()), &body)
}

fn decision_forms(lang: Lang, actor: &Actor, entry: &QueueEntry) -> String {
    let id = entry.record.evidence_id;
    let action = format!("/evidence/{id}/decide");
    if entry.review_status == "pending" && actor.role.reviews() {
        let approve = if entry.record.kind.is_violation() {
            format!(
                "<form method=\"post\" action=\"{action}\" class=\"decision\" id=\"approve-form\"><input type=\"hidden\" \
                 name=\"action\" value=\"approve\"><button id=\"approve\">✔ {}</button></form>",
                lang.t("Duyệt (chuyển xử phạt)", "Approve (send for fining)")
            )
        } else {
            format!(
                "<p id=\"not-an-offence\">{}</p>",
                lang.t(
                    "Phương tiện đi qua, không phải vi phạm: không chuyển xử phạt.",
                    "A plain vehicle pass, not an offence: never sent for fining."
                )
            )
        };
        let reasons: String = REJECT_REASONS
            .iter()
            .map(|(vi, en)| format!("<option value=\"{}\">{}</option>", esc(vi), esc(lang.t(vi, en))))
            .collect();
        format!(
            "<h2>{}</h2>{approve}\
             <form method=\"post\" action=\"{action}\" class=\"decision\" id=\"plate-form\"><input type=\"hidden\" \
             name=\"action\" value=\"plate\"><label>{} <input name=\"plate\" id=\"plate-input\" placeholder=\"51F-123.45\" \
             required></label><button id=\"correct\">{}</button></form>\
             <form method=\"post\" action=\"{action}\" class=\"decision\" id=\"reject-form\"><input type=\"hidden\" \
             name=\"action\" value=\"reject\"><label>{} <select name=\"reason\" id=\"reason\">{reasons}</select></label>\
             <label>{} <input name=\"note\" id=\"reject-note\"></label><button id=\"reject\">✘ {}</button></form>",
            lang.t("Quyết định", "Decision"),
            lang.t("Biển số đúng", "Correct plate"),
            lang.t("Sửa biển số", "Correct the plate"),
            lang.t("Lý do", "Reason"),
            lang.t("Ghi chú", "Note"),
            lang.t("Loại bỏ", "Reject"),
        )
    } else if entry.review_status != "pending" && actor.role.supervises() {
        format!(
            "<h2>{}</h2><form method=\"post\" action=\"{action}\" class=\"decision\" id=\"reopen-form\"><input \
             type=\"hidden\" name=\"action\" value=\"reopen\"><label>{} <input name=\"note\" id=\"reopen-note\" required>\
             </label><button id=\"reopen\">{}</button></form>",
            lang.t("Mở lại", "Reopen"),
            lang.t("Lý do", "Reason"),
            lang.t("Mở lại để xét duyệt", "Reopen for review"),
        )
    } else {
        String::new()
    }
}

fn audit_table(lang: Lang, entries: &[AuditEntry]) -> String {
    let rows: String = entries
        .iter()
        .map(|e| {
            format!(
                "<tr class=\"audit\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><small>{}</small></td><td><small><code>{}</code></small></td></tr>",
                e.seq,
                local_time(e.at),
                esc(&e.actor),
                esc(&e.action),
                esc(&e.detail.to_string()),
                esc(e.entry_sha256.get(..16).unwrap_or(&e.entry_sha256)),
            )
        })
        .collect();
    format!(
        "<table><thead><tr><th>#</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>SHA-256</th></tr></thead><tbody>{rows}</tbody></table>",
        lang.t("Thời gian", "Time"),
        lang.t("Người thực hiện", "Who"),
        lang.t("Hành động", "Action"),
        lang.t("Chi tiết", "Detail"),
    )
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
        Ok(()) => Redirect::to(&format!("/evidence/{id}?done={}", url_encode(&form.action))).into_response(),
        Err(e) => {
            let status = match &e {
                ReviewError::NotFound(_) => StatusCode::NOT_FOUND,
                ReviewError::Forbidden { .. } => StatusCode::FORBIDDEN,
                ReviewError::WrongState { .. } => StatusCode::CONFLICT,
                ReviewError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let notice = format!("<p class=\"error\" id=\"notice\">{}</p>", esc(&e.to_string()));
            case_page(&state, &actor, lang, &raw, status, notice).await
        }
    }
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
    let chain_text = match chain.broken_at {
        None => format!(
            "<p class=\"ok\" id=\"chain\">✔ {} {} {}</p>",
            lang.t("Chuỗi băm nguyên vẹn:", "Hash chain intact:"),
            chain.entries,
            lang.t("mục", "entries")
        ),
        Some(seq) => format!(
            "<p class=\"alarm\" id=\"chain\">✘ {} #{seq}</p>",
            lang.t("Chuỗi băm bị phá vỡ tại mục", "Hash chain broken at entry")
        ),
    };
    let body =
        format!("<h1>{}</h1>{chain_text}{}", lang.t("Nhật ký kiểm tra", "Audit log"), audit_table(lang, &entries));
    page(lang, Some(actor.viewer()), lang.t("Nhật ký kiểm tra", "Audit log"), &body)
}
