//! The frame of every page: navigation for what the viewer may see, who is logged in, the language switch.

use super::lang::Lang;
use askama::Template;
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

/// What the frame of every page needs: the language, who is looking, the title.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub lang: Lang,
    pub viewer: Option<Viewer<'a>>,
    pub title: &'a str,
}

/// A page made from its template (`templates/`, compiled in and escaped by default), with `status`.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => storage_failure("page template", e),
    }
}

/// A page that says one thing: `class` is `error` or `ok`.
#[derive(Template)]
#[template(path = "message.html")]
struct Message<'a> {
    frame: Frame<'a>,
    class: &'a str,
    message: &'a str,
}

/// A page of one message, in the frame.
pub fn message(status: StatusCode, frame: Frame<'_>, class: &str, message: &str) -> Response {
    render(status, &Message { frame, class, message })
}

/// The page for a role that may not see what it asked for.
pub fn forbidden(lang: Lang, viewer: Viewer<'_>) -> Response {
    let frame = Frame { lang, viewer: Some(viewer), title: "403" };
    message(
        StatusCode::FORBIDDEN,
        frame,
        "error",
        lang.t("Vai trò của bạn không được xem trang này.", "Your role may not see this page."),
    )
}

pub fn storage_failure(what: &str, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "{what}");
    (StatusCode::INTERNAL_SERVER_ERROR, "storage failure").into_response()
}
