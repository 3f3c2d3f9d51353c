//! What the pages and the API read from request headers: cookies (through `axum-extra`'s cookie jar), a
//! bearer token, the path of the page a request came from.

use axum::http::{header, HeaderMap};
use axum_extra::extract::CookieJar;

/// The value of cookie `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers).get(name).map(|c| c.value().to_owned())
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

/// The path and query of the `Referer`, when it is a URL (the page to go back to).
pub fn referer_path(headers: &HeaderMap) -> Option<String> {
    let url = url::Url::parse(headers.get(header::REFERER)?.to_str().ok()?).ok()?;
    Some(match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; te_session=abc; te_lang=en"));
        assert_eq!(cookie(&h, "te_session").as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "te_lang").as_deref(), Some("en"));
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn the_referer_gives_its_path_and_query_only() {
        let mut h = HeaderMap::new();
        h.insert(header::REFERER, HeaderValue::from_static("https://central.example:8443/evidence/01H?x=1"));
        assert_eq!(referer_path(&h).as_deref(), Some("/evidence/01H?x=1"));
        h.insert(header::REFERER, HeaderValue::from_static("not a url"));
        assert_eq!(referer_path(&h), None);
    }
}
