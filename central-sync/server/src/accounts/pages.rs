//! Logging in and out, and the language choice.

use super::{AccountError, Actor, SESSION_COOKIE, SESSION_HOURS};
use crate::web::{render, request, storage_failure, AppState, Frame, Lang, LANG_COOKIE};
use askama::Template;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct LoginQuery {
    next: String,
}

fn safe_next(next: &str) -> &str {
    // Only paths on this site: no scheme, no `//host`, and only visible ASCII (a URL's path and query are
    // percent-encoded): browsers drop tabs and line breaks from a Location, so `/<TAB>/host` would become
    // `//host`, and a line break cannot go into a header at all.
    let on_site = next.starts_with('/') && !next.starts_with("//") && !next.contains('\\');
    if on_site && next.bytes().all(|b| b.is_ascii_graphic()) {
        next
    } else {
        "/"
    }
}

/// The login form; `error`, when set, is shown above it.
#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    frame: Frame<'a>,
    next: &'a str,
    error: Option<&'a str>,
}

fn login_form(status: StatusCode, lang: Lang, next: &str, error: Option<&str>) -> Response {
    let frame = Frame { lang, viewer: None, title: lang.t("Đăng nhập", "Log in") };
    render(status, &LoginPage { frame, next: safe_next(next), error })
}

pub async fn login_page(lang: Lang, Query(q): Query<LoginQuery>) -> Response {
    login_form(StatusCode::OK, lang, &q.next, None)
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

pub async fn login(
    State(state): State<AppState>,
    lang: Lang,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Response {
    let from = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    match state.store.login(form.username.trim(), &form.password, from).await {
        Ok(Some((token, _))) => {
            let session = Cookie::build((SESSION_COOKIE, token))
                .path("/")
                .http_only(true)
                .same_site(SameSite::Strict)
                .max_age(time::Duration::hours(SESSION_HOURS))
                .secure(state.secure_cookies);
            (jar.add(session), Redirect::to(safe_next(&form.next))).into_response()
        }
        Ok(None) => {
            let wrong = lang.t("Sai tên đăng nhập hoặc mật khẩu.", "Wrong username or password.");
            refused_login(lang, &form.next, StatusCode::UNAUTHORIZED, wrong)
        }
        Err(AccountError::Throttled { minutes }) => {
            let why = format!(
                "{} {minutes} {}",
                lang.t(
                    "Tài khoản tạm khoá vì đăng nhập sai nhiều lần. Thử lại sau",
                    "Too many failed logins for this account. Try again in"
                ),
                lang.t("phút.", "minutes.")
            );
            refused_login(lang, &form.next, StatusCode::TOO_MANY_REQUESTS, &why)
        }
        Err(e) => storage_failure("login", e),
    }
}

/// The login form again, with why the last try was refused.
fn refused_login(lang: Lang, next: &str, status: StatusCode, why: &str) -> Response {
    login_form(status, lang, next, Some(why))
}

pub async fn logout(State(state): State<AppState>, actor: Actor, jar: CookieJar) -> Response {
    if let Some(token) = jar.get(SESSION_COOKIE) {
        if let Err(e) = state.store.logout(token.value(), &actor).await {
            return storage_failure("logout", e);
        }
    }
    let expired = Cookie::build((SESSION_COOKIE, "")).path("/").http_only(true).same_site(SameSite::Strict);
    (jar.remove(expired), Redirect::to("/login")).into_response()
}

/// `/lang/en` or `/lang/vi`: remembers the choice and goes back.
pub async fn set_lang(Path(code): Path<String>, headers: HeaderMap, jar: CookieJar) -> Response {
    let code = if code == "en" { "en" } else { "vi" };
    let back = request::referer_path(&headers).unwrap_or_else(|| "/".into());
    let choice =
        Cookie::build((LANG_COOKIE, code)).path("/").same_site(SameSite::Lax).max_age(time::Duration::days(365));
    (jar.add(choice), Redirect::to(safe_next(&back))).into_response()
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn a_login_never_redirects_off_site_nor_puts_a_control_character_in_its_location() {
        assert_eq!(safe_next("/evidence/01ABC?lang=en"), "/evidence/01ABC?lang=en");
        assert_eq!(safe_next("/?plate=59-U1%2F729.79"), "/?plate=59-U1%2F729.79");
        for hostile in [
            "//evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\\evil.example",
            "https://evil.example",
            "/a\r\nSet-Cookie: x=y",
            "/ /evil",
            "",
        ] {
            assert_eq!(safe_next(hostile), "/", "{hostile:?}");
        }
    }
}
