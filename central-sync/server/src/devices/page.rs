//! The devices page: is each box alive, how much is waiting on it, is its clock right, are its cameras up.

use crate::accounts::Actor;
use crate::web::{esc, forbidden, page, storage_failure, AppState, Lang};
use axum::extract::State;
use axum::response::Response;

/// Every box's latest heartbeat: is it alive, how much is waiting on it, is its clock right, are its cameras up.
pub async fn devices_page(State(state): State<AppState>, actor: Actor, lang: Lang) -> Response {
    if !actor.role.reviews() {
        return forbidden(lang, actor.viewer());
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
        Some(actor.viewer()),
        "Thiết bị · Devices",
        &format!(
            "<h1>Thiết bị <small>(devices)</small></h1><table><thead><tr><th>Thiết bị</th><th>Nhịp gần nhất (last heartbeat)</th>\
             <th>Chờ gửi (pending)</th><th>Đã gửi</th><th>Bị từ chối</th><th>Đĩa dùng / trống</th><th>Đồng hồ (clock offset)</th>\
             <th>Camera</th><th>Cảnh báo</th></tr></thead><tbody>\n{rows}</tbody></table>"
        ),
    )
}
