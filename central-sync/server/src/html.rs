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
    Html(format!(
        "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>Hàng chờ xét duyệt · Review queue</title>\
         <style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;\
         padding:4px 8px;text-align:left;vertical-align:top}}</style></head><body>\
         <h1>Hàng chờ xét duyệt <small>(review queue)</small></h1>\
         <p id=\"totals\">{} bản ghi · {} thiết bị · {} camera</p>\
         <table><thead><tr><th>Ảnh</th><th>Mã chứng cứ</th><th>Loại</th><th>Camera</th><th>Thời gian</th>\
         <th>Biển số</th><th>Phương tiện</th><th>Độ tin cậy</th><th>Trạng thái</th></tr></thead><tbody>\n{rows}</tbody></table></body></html>",
        stats.evidence_total, stats.devices, stats.cameras
    ))
    .into_response()
}

/// The offence in Vietnamese with what the box measured, or the plain event kind for a vehicle pass.
fn kind_cell(r: &central_protocol::EvidenceRecord) -> String {
    match &r.violation {
        Some(v) => format!(
            "<b class=\"violation\">{}</b><br><small>{} · {}: {}</small>",
            esc(v.kind.vietnamese()),
            esc(v.kind.as_str()),
            esc(&v.rule),
            esc(&v.summary)
        ),
        None => esc(r.kind.as_str()),
    }
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
