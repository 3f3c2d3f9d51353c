//! Statistics: open data (counts per intersection, hour and violation type; never a plate or an id) with a
//! chart page, and the per-camera plate-accuracy self-audit that reviewers' corrections feed (QCVN 05:2024/BCA
//! draft: at least 93% by day, 80% at night).

use crate::accounts::Actor;
use crate::store::{CentralStore, StoreError};
use crate::web::{csv_response, esc, forbidden, page, storage_failure, ApiError, AppState, Lang};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Timelike, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::collections::BTreeMap;

/// QCVN 05:2024/BCA (draft) plate recognition targets.
pub const DAY_TARGET: f64 = 0.93;
pub const NIGHT_TARGET: f64 = 0.80;
/// Below this many reviewed cases a figure is shown but not judged.
const MIN_SAMPLE: u64 = 30;

/// One open-data row.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HourCount {
    pub camera_id: String,
    pub location: String,
    /// Local (Vietnam) hour, `YYYY-MM-DDTHH`.
    pub hour: String,
    pub kind: String,
    /// Events recorded by the boxes.
    pub recorded: u64,
    /// Of those, approved by a reviewer.
    pub approved: u64,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct CountQuery {
    /// Violations only unless `all=true` (vehicle passes are traffic counts).
    all: bool,
}

impl CentralStore {
    pub async fn hourly_counts(&self, include_passes: bool) -> Result<Vec<HourCount>, StoreError> {
        // The local hour, in each database's dialect (times are stored as RFC 3339 UTC text).
        let hour = match self.backend() {
            crate::store::Backend::Sqlite => "strftime('%Y-%m-%dT%H', captured_at, '+7 hours')",
            crate::store::Backend::Postgres => {
                "to_char(captured_at::timestamptz AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM-DD\"T\"HH24')"
            }
        };
        let passes = if include_passes { "" } else { "WHERE kind <> 'vehicle_detected'" };
        let sql = format!(
            "SELECT camera_id, location, {hour} AS hour, kind, COUNT(*) AS recorded, \
             SUM(CASE WHEN review_status = 'approved' THEN 1 ELSE 0 END) AS approved FROM evidence {passes} \
             GROUP BY camera_id, location, hour, kind ORDER BY hour, camera_id, kind"
        );
        let rows = sqlx::query(&sql).fetch_all(self.db()).await?;
        rows.iter()
            .map(|r| {
                Ok(HourCount {
                    camera_id: r.try_get("camera_id")?,
                    location: r.try_get("location")?,
                    hour: r.try_get::<Option<String>, _>("hour")?.unwrap_or_default(),
                    kind: r.try_get("kind")?,
                    recorded: r.try_get::<i64, _>("recorded")?.max(0) as u64,
                    approved: r.try_get::<Option<i64>, _>("approved")?.unwrap_or(0).max(0) as u64,
                })
            })
            .collect()
    }
}

/// GET /api/v1/open-data/violations: JSON rows of [`HourCount`]; no plates, no ids.
pub async fn open_data_json(State(state): State<AppState>, Query(q): Query<CountQuery>) -> Response {
    match state.store.hourly_counts(q.all).await {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => storage_failure("open data", e),
    }
}

/// GET /api/v1/open-data/violations.csv
pub async fn open_data_csv(State(state): State<AppState>, Query(q): Query<CountQuery>) -> Response {
    let rows = match state.store.hourly_counts(q.all).await {
        Ok(rows) => rows,
        Err(e) => return storage_failure("open data", e),
    };
    let header = ["camera_id", "location", "hour", "kind", "recorded", "approved"];
    let rows = rows
        .into_iter()
        .map(|r| vec![r.camera_id, r.location, r.hour, r.kind, r.recorded.to_string(), r.approved.to_string()]);
    csv_response(&header, rows)
}

/// GET /stats: violations per hour of the day per intersection, as an SVG bar chart (no scripts).
pub async fn chart_page(State(state): State<AppState>, actor: Actor, lang: Lang) -> Response {
    if !actor.role.reviews() {
        return forbidden(lang, actor.viewer());
    }
    let rows = match state.store.hourly_counts(false).await {
        Ok(rows) => rows,
        Err(e) => return storage_failure("stats page", e),
    };
    // Per intersection: counts per hour of the day (0-23), all days together.
    let mut per_place: BTreeMap<String, [u64; 24]> = BTreeMap::new();
    for r in &rows {
        let hour: usize = r.hour.get(11..13).and_then(|h| h.parse().ok()).unwrap_or(0);
        per_place.entry(format!("{} · {}", r.camera_id, r.location)).or_insert([0; 24])[hour.min(23)] += r.recorded;
    }
    let mut body = format!(
        "<h1>{}</h1><p>{} <a href=\"/api/v1/open-data/violations\">JSON</a> · \
         <a href=\"/api/v1/open-data/violations.csv\">CSV</a></p>",
        lang.t("Vi phạm theo giờ và nút giao", "Violations per hour and intersection"),
        lang.t("Dữ liệu mở (không có biển số):", "Open data (no plates):"),
    );
    if per_place.is_empty() {
        body.push_str(&format!("<p id=\"no-data\">{}</p>", lang.t("Chưa có vi phạm.", "No violations yet.")));
    }
    for (place, hours) in &per_place {
        body.push_str(&format!("<h2>{}</h2>{}", esc(place), bar_chart(hours)));
    }
    page(lang, Some(actor.viewer()), lang.t("Thống kê", "Statistics"), &body)
}

/// 24 bars, one per hour, labelled with the count.
fn bar_chart(hours: &[u64; 24]) -> String {
    let max = hours.iter().copied().max().unwrap_or(0).max(1) as f64;
    let (w, h, bar) = (24 * 30 + 20, 160.0, 24.0);
    let mut svg = format!("<svg class=\"chart\" width=\"{w}\" height=\"{}\" role=\"img\">", h as u32 + 40);
    for (i, &n) in hours.iter().enumerate() {
        let height = (n as f64 / max) * h;
        let x = 10.0 + i as f64 * 30.0;
        svg.push_str(&format!(
            "<rect x=\"{x}\" y=\"{:.1}\" width=\"{bar}\" height=\"{height:.1}\" fill=\"#b33\"><title>{i:02}h: {n}</title></rect>\
             <text x=\"{:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{i:02}</text>",
            h + 10.0 - height,
            x + bar / 2.0,
            h as u32 + 25,
        ));
        if n > 0 {
            svg.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{n}</text>",
                x + bar / 2.0,
                h + 8.0 - height
            ));
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Plate accuracy of one camera in one light condition, from reviewed cases.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Accuracy {
    pub camera_id: String,
    /// "day" (06:00-18:00 Vietnam time) or "night".
    pub period: String,
    /// Approved cases whose plate a reviewer confirmed or corrected.
    pub reviewed: u64,
    /// Of those, the box's reading was the approved plate.
    pub correct: u64,
    pub accuracy: f64,
    pub target: f64,
    /// `None` while fewer than 30 cases were reviewed.
    pub meets_target: Option<bool>,
}

impl CentralStore {
    /// Every approved case is a labelled sample: the plate the officer approved is the truth, the box's
    /// reading is the prediction (no reading counts as wrong).
    pub async fn plate_accuracy(&self) -> Result<Vec<Accuracy>, StoreError> {
        let rows = sqlx::query(
            "SELECT camera_id, captured_at, plate_text, corrected_plate FROM evidence WHERE review_status = 'approved'",
        )
        .fetch_all(self.db())
        .await?;
        let mut tally: BTreeMap<(String, &'static str), (u64, u64)> = BTreeMap::new();
        for r in &rows {
            let captured = crate::store::parse_time(&r.try_get::<String, _>("captured_at")?)?;
            let hour = captured.with_timezone(&crate::store::vietnam()).hour();
            let period = if (6..18).contains(&hour) { "day" } else { "night" };
            let read: Option<String> = r.try_get("plate_text")?;
            let corrected: Option<String> = r.try_get("corrected_plate")?;
            let right = match (&read, &corrected) {
                (Some(read), Some(truth)) => te_plate::compact(read) == te_plate::compact(truth),
                (Some(_), None) => true,
                (None, _) => false,
            };
            let entry = tally.entry((r.try_get("camera_id")?, period)).or_insert((0, 0));
            entry.0 += 1;
            entry.1 += u64::from(right);
        }
        Ok(tally
            .into_iter()
            .map(|((camera_id, period), (reviewed, correct))| {
                let target = if period == "day" { DAY_TARGET } else { NIGHT_TARGET };
                let accuracy = correct as f64 / reviewed.max(1) as f64;
                Accuracy {
                    camera_id,
                    period: period.into(),
                    reviewed,
                    correct,
                    accuracy,
                    target,
                    meets_target: (reviewed >= MIN_SAMPLE).then_some(accuracy >= target),
                }
            })
            .collect())
    }
}

/// GET /api/v1/accuracy (reviewers and up).
pub async fn accuracy_json(State(state): State<AppState>, actor: Actor) -> Response {
    if !actor.role.reviews() {
        let message = format!("the {} role may not read the accuracy audit", actor.role.as_str());
        return ApiError::forbidden(message).into_response();
    }
    match state.store.plate_accuracy().await {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => storage_failure("accuracy", e),
    }
}

/// GET /accuracy: the self-audit table.
pub async fn accuracy_page(State(state): State<AppState>, actor: Actor, lang: Lang) -> Response {
    if !actor.role.reviews() {
        return forbidden(lang, actor.viewer());
    }
    let rows = match state.store.plate_accuracy().await {
        Ok(rows) => rows,
        Err(e) => return storage_failure("accuracy page", e),
    };
    let mut table = String::new();
    for a in &rows {
        let verdict = match a.meets_target {
            Some(true) => format!("<span class=\"ok\">✔ {}</span>", lang.t("đạt", "meets")),
            Some(false) => format!("<span class=\"alarm\">✘ {}</span>", lang.t("không đạt", "below")),
            None => format!("<small>{} ({MIN_SAMPLE})</small>", lang.t("chưa đủ mẫu", "too few cases")),
        };
        table.push_str(&format!(
            "<tr class=\"accuracy\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td><td>{:.0}%</td><td>{verdict}</td></tr>",
            esc(&a.camera_id),
            lang.t(if a.period == "day" { "ngày" } else { "đêm" }, &a.period),
            a.reviewed,
            a.correct,
            100.0 * a.accuracy,
            100.0 * a.target,
        ));
    }
    let body = format!(
        "<h1>{}</h1><p>{}</p><table><thead><tr><th>Camera</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>\
         <th>QCVN 05:2024</th><th></th></tr></thead><tbody>{table}</tbody></table><p><small>{} {}</small></p>",
        lang.t("Tự kiểm tra độ chính xác nhận dạng biển số", "Plate recognition self-audit"),
        lang.t(
            "Mỗi trường hợp đã duyệt là một mẫu: biển số được duyệt là đáp án, biển số thiết bị đọc là kết quả.",
            "Every approved case is a sample: the approved plate is the truth, the box's reading the prediction."
        ),
        lang.t("Thời gian", "Period"),
        lang.t("Đã xét", "Reviewed"),
        lang.t("Đọc đúng", "Read right"),
        lang.t("Độ chính xác", "Accuracy"),
        lang.t("Ngày: 06:00–18:00 giờ Việt Nam.", "Day: 06:00–18:00 Vietnam time."),
        Utc::now().format("%Y-%m-%d %H:%M UTC"),
    );
    page(lang, Some(actor.viewer()), lang.t("Độ chính xác", "Accuracy"), &body)
}
