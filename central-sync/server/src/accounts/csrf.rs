//! Cross-site request forgery and browser hardening for the review UI, as one layer over every route.
//!
//! `SameSite=Strict` alone does not stop a page on another port of the same host (same *site*), so every
//! state-changing browser request (any method but GET/HEAD/OPTIONS outside `/api/`) must:
//! 1. come from this service's own origin: `Origin` (or, without it, `Referer`) must name the host the
//!    request was sent to (`Host`), scheme and port included; neither header: refused;
//! 2. when it carries a session, hold a form field `csrf` equal to a token derived from that session
//!    (SHA-256 of a label and the session secret, which the HttpOnly cookie keeps from scripts): a page on
//!    the same site can make the browser send the cookie, but cannot know the token.
//!
//! The token is written into every `<form method="post">` of every HTML page the layer passes to a
//! logged-in browser, so no form can forget it. The API (`/api/`, bearer tokens, no cookies) is not affected.
//! Every response also gets the security headers (CSP, frame-ancestors, nosniff, referrer policy; HSTS
//! when served over TLS).

use super::SESSION_COOKIE;
use crate::web::request;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The form field that carries the token.
pub const FIELD: &str = "csrf";
/// Form bodies larger than this are refused before parsing (the largest form is a few hundred bytes).
const MAX_FORM_BYTES: usize = 64 * 1024;
/// HTML pages larger than this are passed through without tokens (none of ours is near it).
const MAX_PAGE_BYTES: usize = 32 * 1024 * 1024;

/// The token for the session whose secret is `session`.
pub fn token(session: &str) -> String {
    hex::encode(Sha256::digest(format!("traffic-edge csrf\n{session}").as_bytes()))
}

/// Settings of the layer.
#[derive(Debug, Clone, Copy)]
pub struct Guard {
    /// Served over TLS: add HSTS.
    pub tls: bool,
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    request::cookie(headers, SESSION_COOKIE)
}

/// Whether `Origin` (or `Referer`) names the host this request was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let claimed = headers
        .get(header::ORIGIN)
        .filter(|o| o.as_bytes() != b"null")
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| url::Url::parse(v).ok());
    let Some(url) = claimed else { return false };
    let Some(claimed_host) = url.host_str() else { return false };
    let authority = match url.port() {
        Some(port) => format!("{claimed_host}:{port}"),
        None => claimed_host.to_owned(),
    };
    matches!(url.scheme(), "http" | "https") && authority.eq_ignore_ascii_case(host)
}

fn refused(why: &'static str) -> Response {
    tracing::warn!(why, "browser request refused (cross-site request forgery guard)");
    (StatusCode::FORBIDDEN, why).into_response()
}

/// The layer: checks state-changing browser requests, adds tokens to pages and security headers to all.
pub async fn layer(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let browser = !path.starts_with("/api/");
    let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let session = session_cookie(request.headers());
    let request = if browser && !safe {
        if !same_origin(request.headers()) {
            return with_headers(refused("the request did not come from this service's own pages"), guard);
        }
        match &session {
            Some(session) => match check_form_token(request, session).await {
                Ok(request) => request,
                Err(response) => return with_headers(response, guard),
            },
            None => request,
        }
    } else {
        request
    };
    let response = next.run(request).await;
    let response = match (&session, browser) {
        (Some(session), true) => add_tokens(response, &token(session)).await,
        _ => response,
    };
    with_headers(response, guard)
}

/// Reads the form body, checks its `csrf` field, and rebuilds the request with the same bytes.
async fn check_form_token(request: Request, session: &str) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response())?;
    let sent = form_urlencoded::parse(&bytes).find(|(k, _)| k == FIELD).map(|(_, v)| v.into_owned());
    let expected = token(session);
    // Both are hex of one length; compare without an early exit all the same.
    let matches = sent.is_some_and(|s| {
        s.len() == expected.len() && s.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    });
    if !matches {
        return Err(refused("the form's security token is missing or stale: reload the page and try again"));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Writes the token into every POST form of an HTML page.
async fn add_tokens(response: Response, token: &str) -> Response {
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !is_html {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_PAGE_BYTES).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "page too large").into_response();
    };
    let html = String::from_utf8_lossy(&bytes);
    let with_tokens = insert_tokens(&html, token);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(with_tokens))
}

/// `html` with a hidden `csrf` input right after each `<form method="post" ...>` opening tag.
fn insert_tokens(html: &str, token: &str) -> String {
    let hidden = format!("<input type=\"hidden\" name=\"{FIELD}\" value=\"{token}\">");
    let mut out = String::with_capacity(html.len() + 128);
    let mut rest = html;
    while let Some(start) = rest.find("<form method=\"post\"") {
        let Some(end) = rest[start..].find('>') else { break };
        let cut = start + end + 1;
        out.push_str(&rest[..cut]);
        out.push_str(&hidden);
        rest = &rest[cut..];
    }
    out.push_str(rest);
    out
}

fn with_headers(mut response: Response, guard: Guard) -> Response {
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name: &'static str, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    set(h, "x-frame-options", "DENY");
    set(h, "x-content-type-options", "nosniff");
    // Same-origin requests keep their Referer (the origin check's fallback); other sites learn nothing.
    set(h, "referrer-policy", "same-origin");
    if guard.tls {
        set(h, "strict-transport-security", "max-age=31536000");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn only_the_services_own_origin_counts_as_same_origin() {
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")])));
        assert!(!same_origin(&headers(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:9999")])));
        assert!(!same_origin(&headers(&[("host", "127.0.0.1:8080"), ("origin", "null")])));
        assert!(same_origin(&headers(&[("host", "review.cs.vn"), ("referer", "https://review.cs.vn/evidence/1")])));
        assert!(!same_origin(&headers(&[("host", "review.cs.vn"), ("referer", "https://review.cs.vn.evil/x")])));
        assert!(!same_origin(&headers(&[("host", "127.0.0.1:8080")])), "neither header: refused");
    }

    #[test]
    fn every_post_form_gets_the_token_and_get_forms_do_not() {
        let html = "<form method=\"get\" action=\"/\"></form><form method=\"post\" action=\"/a\" class=\"x\">\
                    <button></button></form><form method=\"post\" action=\"/b\">";
        let out = insert_tokens(html, "ab12");
        assert_eq!(out.matches("name=\"csrf\" value=\"ab12\"").count(), 2, "{out}");
        assert!(out.starts_with("<form method=\"get\" action=\"/\"></form>"));
    }
}
