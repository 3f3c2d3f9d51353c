//! The review queue page. Server-rendered and dependency-free so it stays fast on a modest PC;
//! the full review workflow (login, approve/reject, audit) grows from here.

use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// Escapes text for HTML element content and quoted attributes.
fn esc(s: &str) -> String {
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

pub async fn queue_page(State(state): State<AppState>) -> Response {
    let (entries, stats) = match (state.store.queue(200).await, state.store.stats().await) {
        (Ok(e), Ok(s)) => (e, s),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "queue page");
            return (StatusCode::INTERNAL_SERVER_ERROR, "storage failure").into_response();
        }
    };
    let mut rows = String::new();
    for entry in &entries {
        let r = &entry.record;
        let id = r.evidence_id.to_string();
        rows.push_str(&format!(
            "<tr><td><a href=\"/api/v1/evidence/{id}/overview.jpg\"><img src=\"/api/v1/evidence/{id}/overview.jpg\" \
             width=\"160\" loading=\"lazy\" alt=\"ảnh tổng quan {id}\"></a></td><td><code>{id}</code></td><td>{}</td>\
             <td>{}<br><small>{}</small></td><td>{}{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td></tr>\n",
            kind_cell(r),
            esc(r.camera_id.as_str()),
            esc(&r.location),
            r.captured_at.format("%Y-%m-%d %H:%M:%S UTC"),
            if r.clip_sha256.is_some() {
                format!("<br><a href=\"/api/v1/evidence/{id}/clip.mp4\">video</a>")
            } else {
                String::new()
            },
            plate_cell(r.plate.as_ref()),
            esc(r.vehicle_class.as_str()),
            r.detection_score,
            esc(&entry.review_status),
        ));
    }
    page(
        "Hàng chờ xét duyệt · Review queue",
        &format!(
            "<h1>Hàng chờ xét duyệt <small>(review queue)</small></h1>\
             <p id=\"totals\">{} bản ghi · {} thiết bị · {} camera</p>\
             <table><thead><tr><th>Ảnh</th><th>Mã chứng cứ</th><th>Loại</th><th>Camera</th><th>Thời gian</th>\
             <th>Biển số</th><th>Phương tiện</th><th>Độ tin cậy</th><th>Trạng thái</th></tr></thead><tbody>\n{rows}</tbody></table>",
            stats.evidence_total, stats.devices, stats.cameras
        ),
    )
}

/// The offence in Vietnamese with what the box measured, or the plain event kind for a vehicle pass. A
/// violation whose box clock was unchecked or off is flagged: its time is not objective until a reviewer looks.
fn kind_cell(r: &central_protocol::EvidenceRecord) -> String {
    match &r.violation {
        Some(v) => format!(
            "<b class=\"violation\">{}</b><br><small>{} · {}: {}</small>{}",
            esc(v.kind.vietnamese()),
            esc(v.kind.as_str()),
            esc(&v.rule),
            esc(&v.summary),
            clock_flag(r.clock.as_ref()),
        ),
        None => esc(r.kind.as_str()),
    }
}

fn clock_flag(clock: Option<&central_protocol::ClockCheck>) -> String {
    match clock {
        Some(c) if c.trusted => String::new(),
        Some(c) => format!(
            "<br><b class=\"clock-flag\">⚠ Đồng hồ lệch {:+.1} s (clock off, {})</b>",
            c.offset_ms as f64 / 1000.0,
            esc(&c.source)
        ),
        None => "<br><b class=\"clock-flag\">⚠ Đồng hồ chưa kiểm chứng (clock unchecked)</b>".into(),
    }
}

fn page(title: &str, body: &str) -> Response {
    Html(format!(
        "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;\
         padding:4px 8px;text-align:left;vertical-align:top}}.clock-flag,.alarm{{color:#b00}}</style></head><body>\
         <nav><a href=\"/\">Hàng chờ (queue)</a> · <a href=\"/devices\">Thiết bị (devices)</a></nav>{body}</body></html>"
    ))
    .into_response()
}

/// Every box's latest heartbeat: is it alive, how much is waiting on it, is its clock right, are its cameras up.
pub async fn devices_page(State(state): State<AppState>) -> Response {
    let devices = match state.store.devices().await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "devices page");
            return (StatusCode::INTERNAL_SERVER_ERROR, "storage failure").into_response();
        }
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
        "Thiết bị · Devices",
        &format!(
            "<h1>Thiết bị <small>(devices)</small></h1><table><thead><tr><th>Thiết bị</th><th>Nhịp gần nhất (last heartbeat)</th>\
             <th>Chờ gửi (pending)</th><th>Đã gửi</th><th>Bị từ chối</th><th>Đĩa dùng / trống</th><th>Đồng hồ (clock offset)</th>\
             <th>Camera</th><th>Cảnh báo</th></tr></thead><tbody>\n{rows}</tbody></table>"
        ),
    )
}

/// The plate as the box decided it, with how many reads agreed; "không đọc được" (unreadable) otherwise.
fn plate_cell(plate: Option<&te_types::PlateConsensus>) -> String {
    match plate {
        None => "<small>—</small>".into(),
        Some(p) => match &p.text {
            Some(text) => format!(
                "<b class=\"plate\">{}</b><br><small>{:.0}% of {} read(s)</small>",
                esc(text),
                100.0 * p.share,
                p.votes.len()
            ),
            None => format!("<small>không đọc được (unreadable), {} read(s)</small>", p.votes.len()),
        },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(super::esc("<b>\"x\" & 'y'</b>"), "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;");
    }
}
