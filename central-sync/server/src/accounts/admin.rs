//! Accounts, for admins: list, add, disable or enable, reset a password. Every change is audited; disabling an
//! account or resetting its password ends its sessions.

use super::{AccountError, Actor, Role};
use crate::web::{esc, forbidden, page_with_status, storage_failure, AppState, Lang};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

/// GET /admin/users
pub async fn users_page(State(state): State<AppState>, actor: Actor, lang: Lang) -> Response {
    users_view(&state, &actor, lang, StatusCode::OK, String::new()).await
}

async fn users_view(state: &AppState, actor: &Actor, lang: Lang, status: StatusCode, notice: String) -> Response {
    if actor.role != Role::Admin {
        return forbidden(lang, actor.viewer());
    }
    let users = match state.store.users().await {
        Ok(users) => users,
        Err(e) => return storage_failure("users page", e),
    };
    let mut rows = String::new();
    for u in &users {
        let (toggle, label) = if u.disabled {
            ("enable", lang.t("Mở khoá", "Enable"))
        } else {
            ("disable", lang.t("Khoá", "Disable"))
        };
        rows.push_str(&format!(
            "<tr class=\"user\"><td>{name}</td><td>{}</td><td>{}</td><td>{}</td><td>\
             <form method=\"post\" action=\"/admin/users\" class=\"inline\"><input type=\"hidden\" name=\"action\" \
             value=\"{toggle}\"><input type=\"hidden\" name=\"username\" value=\"{name}\"><button>{label}</button></form> \
             <form method=\"post\" action=\"/admin/users\" class=\"inline\"><input type=\"hidden\" name=\"action\" \
             value=\"password\"><input type=\"hidden\" name=\"username\" value=\"{name}\"><input type=\"password\" \
             name=\"password\" minlength=\"10\" required><button>{}</button></form></td></tr>",
            esc(&u.role),
            esc(&u.created_at[..u.created_at.len().min(10)]),
            if u.disabled { lang.t("đã khoá", "disabled") } else { lang.t("hoạt động", "active") },
            lang.t("Đặt lại mật khẩu", "Reset password"),
            name = esc(&u.username),
        ));
    }
    let body = format!(
        "<h1>{}</h1>{notice}<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr></thead>\
         <tbody>{rows}</tbody></table><h2>{}</h2><form method=\"post\" action=\"/admin/users\" id=\"add-user\">\
         <input type=\"hidden\" name=\"action\" value=\"add\"><label>{} <input name=\"username\" required></label>\
         <label>{} <select name=\"role\"><option>reviewer</option><option>supervisor</option><option>admin</option>\
         </select></label><label>{} <input type=\"password\" name=\"password\" minlength=\"10\" required></label>\
         <button>{}</button></form>",
        lang.t("Tài khoản", "Accounts"),
        lang.t("Tên đăng nhập", "Username"),
        lang.t("Vai trò", "Role"),
        lang.t("Tạo ngày", "Created"),
        lang.t("Trạng thái", "State"),
        lang.t("Thêm tài khoản", "Add an account"),
        lang.t("Tên đăng nhập", "Username"),
        lang.t("Vai trò", "Role"),
        lang.t("Mật khẩu", "Password"),
        lang.t("Thêm", "Add"),
    );
    page_with_status(status, lang, Some(actor.viewer()), lang.t("Tài khoản", "Accounts"), &body)
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
        Err(e) => {
            let notice = format!("<p class=\"error\" id=\"notice\">{}</p>", esc(&e.to_string()));
            users_view(&state, &actor, lang, StatusCode::UNPROCESSABLE_ENTITY, notice).await
        }
    }
}
