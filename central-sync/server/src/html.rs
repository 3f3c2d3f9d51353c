//! Shared pieces of the server-rendered pages (plain HTML, no scripts, so they stay fast on a modest PC):
//! escaping, the language choice, the page frame with its navigation, and the devices page.

use crate::auth::{cookie, Actor, Role};
use crate::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use std::convert::Infallible;

/// The UI language: Vietnamese unless the officer chose English (`/lang/en`, kept in a cookie).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Vi,
    En,
}

pub const LANG_COOKIE: &str = "te_lang";

impl Lang {
    /// The text in this language.
    pub fn t<'a>(self, vi: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Vi => vi,
            Lang::En => en,
        }
    }

    fn code(self) -> &'static str {
        self.t("vi", "en")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(if cookie(parts, LANG_COOKIE) == Some("en") { Lang::En } else { Lang::Vi })
    }
}

/// Percent-encodes a query value.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// Times on pages are Vietnam's (UTC+7), as officers and the fines system read them.
pub fn local_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&crate::store::vietnam()).format("%d/%m/%Y %H:%M:%S").to_string()
}

/// A CSV answer: UTF-8, a header row, then `rows`. Cells a spreadsheet would run as a formula are written as
/// text (a box's `location` or an officer's note of `=HYPERLINK(...)` must not run on the fines clerk's PC).
pub fn csv_response(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> Response {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let written = std::iter::once(writer.write_record(header))
        .chain(rows.into_iter().map(|row| writer.write_record(row.iter().map(|cell| as_text(cell).into_owned()))))
        .collect::<Result<Vec<()>, _>>();
    match written.map_err(|e| e.to_string()).and_then(|_| writer.into_inner().map_err(|e| e.to_string())) {
        Ok(bytes) => ([(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")], bytes).into_response(),
        Err(e) => storage_failure("csv", e),
    }
}

/// A cell as a spreadsheet will show it: one that starts like a formula (`=`, `+`, `-`, `@`, a tab or a carriage
/// return) and is not a plain number gets a leading `'` (OWASP's advice for CSV injection).
fn as_text(cell: &str) -> std::borrow::Cow<'_, str> {
    let formula = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if formula && cell.trim().parse::<f64>().is_err() {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// The page for a role that may not see what it asked for.
pub fn forbidden(lang: Lang, actor: &Actor) -> Response {
    page_with_status(
        StatusCode::FORBIDDEN,
        lang,
        Some(actor),
        "403",
        &format!(
            "<p class=\"error\">{}</p>",
            lang.t("Vai trò của bạn không được xem trang này.", "Your role may not see this page.")
        ),
    )
}

pub fn storage_failure(what: &str, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "{what}");
    (StatusCode::INTERNAL_SERVER_ERROR, "storage failure").into_response()
}

/// Escapes text for HTML element content and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

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

/// The frame of every page: navigation for what the actor may see, who is logged in, the language switch.
pub fn page(lang: Lang, actor: Option<&Actor>, title: &str, body: &str) -> Response {
    page_with_status(StatusCode::OK, lang, actor, title, body)
}

pub fn page_with_status(status: StatusCode, lang: Lang, actor: Option<&Actor>, title: &str, body: &str) -> Response {
    let nav = match actor {
        Some(a) => format!(
            "<nav><a href=\"/\">{}</a> · <a href=\"/devices\">{}</a>{} · <a href=\"/stats\">{}</a> · <a href=\"/accuracy\">{}</a>\
             <span class=\"who\"><b id=\"who\">{}</b> ({}) <form method=\"post\" action=\"/logout\" class=\"inline\">\
             <button>{}</button></form> · <a href=\"/lang/{}\">{}</a></span></nav>",
            lang.t("Hàng chờ xét duyệt", "Review queue"),
            lang.t("Thiết bị", "Devices"),
            match a.role {
                Role::Admin => format!(
                    " · <a href=\"/audit\">{}</a> · <a href=\"/admin/users\">{}</a>",
                    lang.t("Nhật ký kiểm tra", "Audit log"),
                    lang.t("Tài khoản", "Accounts")
                ),
                r if r.supervises() => {
                    format!(" · <a href=\"/audit\">{}</a>", lang.t("Nhật ký kiểm tra", "Audit log"))
                }
                _ => String::new(),
            },
            lang.t("Thống kê", "Statistics"),
            lang.t("Độ chính xác", "Accuracy"),
            esc(&a.name),
            a.role.as_str(),
            lang.t("Đăng xuất", "Log out"),
            lang.t("en", "vi"),
            lang.t("English", "Tiếng Việt"),
        ),
        None => format!("<nav><a href=\"/lang/{}\">{}</a></nav>", lang.t("en", "vi"), lang.t("English", "Tiếng Việt")),
    };
    let html = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{} · traffic-edge</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><style>{STYLE}</style></head><body>{nav}{body}</body></html>",
        lang.code(),
        esc(title),
    );
    (status, Html(html)).into_response()
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}.clock-flag,.alarm,.overdue,.error{color:#b00}\
.ok{color:#070}nav{margin-bottom:1em}.who{float:right}.inline{display:inline}form.decision{margin:.5em 0;padding:.5em;\
border:1px solid #ddd}.plate{font-family:monospace;font-size:1.2em}img.overview{max-width:100%}img.plate-crop{height:96px;image-rendering:pixelated;border:1px solid #999}img.vote-crop{height:40px;image-rendering:pixelated}tr.winner{background:#eef8ee}label{margin-right:1em}";

/// Every box's latest heartbeat: is it alive, how much is waiting on it, is its clock right, are its cameras up.
pub async fn devices_page(State(state): State<AppState>, actor: Actor, lang: Lang) -> Response {
    if !actor.role.reviews() {
        return forbidden(lang, &actor);
    }
    let devices = match state.store.devices().await {
        Ok(d) => d,
        Err(e) => return storage_failure("devices page", e),
    };
    let now = chrono::Utc::now();
    let mut rows = String::new();
    for d in &devices {
        let h = &d.heartbeat;
        let age = (now - d.received_at).num_seconds();
        let clock = match &h.clock {
            Some(c) => format!(
                "{:+} ms ±{} <small>{}</small>{}",
                c.offset_ms,
                c.uncertainty_ms,
                esc(&c.source),
                if c.trusted { "" } else { " <b class=\"alarm\">⚠</b>" }
            ),
            None => "<b class=\"alarm\">chưa đo (unmeasured)</b>".into(),
        };
        let cameras: Vec<String> = h
            .cameras
            .iter()
            .map(|c| {
                format!(
                    "{}: {} <small>({} frames, {} dropped, {} reconnects)</small>",
                    esc(c.camera_id.as_str()),
                    esc(&c.state),
                    c.frames_in,
                    c.frames_dropped,
                    c.reconnects
                )
            })
            .collect();
        rows.push_str(&format!(
            "<tr class=\"device\"><td><code>{}</code><br><small>{}</small></td><td>{} <small>({age} s ago)</small></td>\
             <td class=\"pending\">{}</td><td>{}</td><td>{}</td><td>{:.1} / {:.1} GB</td><td>{clock}</td><td>{}</td><td class=\"alarm\">{}</td></tr>\n",
            esc(h.device_id.as_str()),
            esc(&h.agent_version),
            d.received_at.format("%Y-%m-%d %H:%M:%S UTC"),
            h.pending,
            h.delivered,
            h.rejected,
            h.disk_used_bytes as f64 / 1e9,
            h.disk_free_bytes as f64 / 1e9,
            cameras.join("<br>"),
            esc(h.alarm.as_deref().unwrap_or("")),
        ));
    }
    page(
        lang,
        Some(&actor),
        "Thiết bị · Devices",
        &format!(
            "<h1>Thiết bị <small>(devices)</small></h1><table><thead><tr><th>Thiết bị</th><th>Nhịp gần nhất (last heartbeat)</th>\
             <th>Chờ gửi (pending)</th><th>Đã gửi</th><th>Bị từ chối</th><th>Đĩa dùng / trống</th><th>Đồng hồ (clock offset)</th>\
             <th>Camera</th><th>Cảnh báo</th></tr></thead><tbody>\n{rows}</tbody></table>"
        ),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_csv_cell_that_a_spreadsheet_would_run_as_a_formula_is_written_as_text() {
        use super::as_text;
        assert_eq!(as_text("=HYPERLINK(\"http://x\")"), "'=HYPERLINK(\"http://x\")");
        assert_eq!(as_text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(as_text("+84 90"), "'+84 90");
        assert_eq!(as_text("-2+3"), "'-2+3");
        assert_eq!(as_text("\t=1"), "'\t=1");
        assert_eq!(as_text("-12.5"), "-12.5", "a negative number stays a number");
        assert_eq!(as_text("59-U1/729.79"), "59-U1/729.79");
        assert_eq!(as_text("Vượt đèn đỏ"), "Vượt đèn đỏ");
    }

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(super::esc("<b>\"x\" & 'y'</b>"), "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;");
    }
}
