//! The devices page: is each box alive, how much is waiting on it, is its clock right, are its cameras up.

use super::alerts::Incident;
use super::DeviceStatus;
use crate::accounts::Actor;
use crate::web::{forbidden, render, storage_failure, AppState, Frame, Lang};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesPage<'a> {
    frame: Frame<'a>,
    devices: &'a [DeviceStatus],
    /// How many are offline.
    offline: usize,
    open: Vec<Incident>,
    closed: Vec<Incident>,
}

impl DevicesPage<'_> {
    /// An incident kind in the page's language.
    fn incident_kind<'k>(&self, kind: &'k str) -> &'k str {
        let lang = self.frame.lang;
        match kind {
            "offline" => lang.t("Mất liên lạc", "Offline"),
            "store_alarm" => lang.t("Cảnh báo bộ lưu trữ", "Store alarm"),
            "clock_untrusted" => lang.t("Đồng hồ không tin cậy", "Clock untrusted"),
            other => other,
        }
    }
}

/// Every box's latest heartbeat: is it alive, how much is waiting on it, is its clock right, are its cameras up.
pub async fn devices_page(State(state): State<AppState>, actor: Actor, lang: Lang) -> Response {
    if !actor.role.reviews() {
        return forbidden(lang, actor.viewer());
    }
    let (devices, (open, closed)) = match tokio::try_join!(state.store.devices(), state.store.incidents(20)) {
        Ok(found) => found,
        Err(e) => return storage_failure("devices page", e),
    };
    let frame = Frame { lang, viewer: Some(actor.viewer()), title: lang.t("Thiết bị", "Devices") };
    let offline = devices.iter().filter(|d| d.offline).count();
    render(StatusCode::OK, &DevicesPage { frame, devices: &devices, offline, open, closed })
}
