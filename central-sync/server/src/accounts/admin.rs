//! Accounts, for admins: list, add, disable or enable, reset a password. Every change is audited; disabling an
//! account or resetting its password ends its sessions.

use super::{AccountError, Actor, Role, UserRow};
use crate::web::{forbidden, render, storage_failure, AppState, Frame, Lang};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage<'a> {
    frame: Frame<'a>,
    users: &'a [UserRow],
    notice: Option<&'a str>,
}

/// GET /admin/users
pub async fn users_page(State(state): State<AppState>, actor: Actor, lang: Lang) -> Response {
    users_view(&state, &actor, lang, StatusCode::OK, None).await
}

async fn users_view(state: &AppState, actor: &Actor, lang: Lang, status: StatusCode, notice: Option<&str>) -> Response {
    if actor.role != Role::Admin {
        return forbidden(lang, actor.viewer());
    }
    let users = match state.store.users().await {
        Ok(users) => users,
        Err(e) => return storage_failure("users page", e),
    };
    let frame = Frame { lang, viewer: Some(actor.viewer()), title: lang.t("Tài khoản", "Accounts") };
    render(status, &UsersPage { frame, users: &users, notice })
}

#[derive(Debug, Deserialize)]
pub struct AccountForm {
    action: String,
    username: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

/// POST /admin/users: add, disable, enable, password.
pub async fn change(State(state): State<AppState>, actor: Actor, lang: Lang, Form(f): Form<AccountForm>) -> Response {
    if actor.role != Role::Admin {
        return forbidden(lang, actor.viewer());
    }
    let username = f.username.trim();
    let outcome = match f.action.as_str() {
        "add" => state.store.add_user(username, &f.password, &f.role, &actor).await,
        "disable" if username == actor.name => Err(AccountError::SelfLockout),
        "disable" => state.store.set_disabled(username, true, &actor).await,
        "enable" => state.store.set_disabled(username, false, &actor).await,
        "password" => state.store.set_password(username, &f.password, &actor).await,
        other => return (StatusCode::BAD_REQUEST, format!("unknown action {other:?}")).into_response(),
    };
    match outcome {
        Ok(()) => Redirect::to("/admin/users").into_response(),
        Err(AccountError::Store(e)) => storage_failure("accounts", e),
        Err(e) => users_view(&state, &actor, lang, StatusCode::UNPROCESSABLE_ENTITY, Some(&e.to_string())).await,
    }
}
