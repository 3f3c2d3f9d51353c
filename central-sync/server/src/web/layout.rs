//! The frame of every page: navigation for what the viewer may see, who is logged in, the language switch.

use super::lang::Lang;
use super::text::esc;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// Who is looking at a page, as the navigation needs it (the accounts feature makes one from its actor).
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub name: &'a str,
    pub role: &'a str,
    /// Sees the audit log.
    pub audits: bool,
    /// Manages accounts.
    pub administers: bool,
}

/// The page for a role that may not see what it asked for.
pub fn forbidden(lang: Lang, viewer: Viewer<'_>) -> Response {
    page_with_status(
        StatusCode::FORBIDDEN,
        lang,
        Some(viewer),
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

/// The frame of every page: navigation for what the actor may see, who is logged in, the language switch.
pub fn page(lang: Lang, viewer: Option<Viewer<'_>>, title: &str, body: &str) -> Response {
    page_with_status(StatusCode::OK, lang, viewer, title, body)
}

pub fn page_with_status(
    status: StatusCode,
    lang: Lang,
    viewer: Option<Viewer<'_>>,
    title: &str,
    body: &str,
) -> Response {
    let nav = match viewer {
        Some(a) => format!(
            "<nav><a href=\"/\">{}</a> · <a href=\"/devices\">{}</a>{} · <a href=\"/stats\">{}</a> · <a href=\"/accuracy\">{}</a>\
             <span class=\"who\"><b id=\"who\">{}</b> ({}) <form method=\"post\" action=\"/logout\" class=\"inline\">\
             <button>{}</button></form> · <a href=\"/lang/{}\">{}</a></span></nav>",
            lang.t("Hàng chờ xét duyệt", "Review queue"),
            lang.t("Thiết bị", "Devices"),
            match (a.audits, a.administers) {
                (_, true) => format!(
                    " · <a href=\"/audit\">{}</a> · <a href=\"/admin/users\">{}</a>",
                    lang.t("Nhật ký kiểm tra", "Audit log"),
                    lang.t("Tài khoản", "Accounts")
                ),
                (true, false) => format!(" · <a href=\"/audit\">{}</a>", lang.t("Nhật ký kiểm tra", "Audit log")),
                _ => String::new(),
            },
            lang.t("Thống kê", "Statistics"),
            lang.t("Độ chính xác", "Accuracy"),
            esc(a.name),
            a.role,
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
