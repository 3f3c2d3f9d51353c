//! Statistics: open data (counts per intersection, hour and violation type; never a plate or an id) with a
//! chart page, and the per-camera plate-accuracy self-audit that reviewers' corrections feed (QCVN 05:2024/BCA
//! draft: at least 93% by day, 80% at night).

use crate::accounts::Actor;
use crate::store::{CentralStore, StoreError};
use crate::web::{csv_response, forbidden, render, storage_failure, ApiError, AppState, Frame, Lang};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
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
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
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

#[derive(Debug, Deserialize, Default, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
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

/// Counts per camera, local hour and kind; no plates, no ids.
#[utoipa::path(get, path = "/api/v1/open-data/violations", tag = "open data", params(CountQuery),
    responses((status = 200, description = "Rows", body = Vec<HourCount>)))]
pub async fn open_data_json(State(state): State<AppState>, Query(q): Query<CountQuery>) -> Response {
    match state.store.hourly_counts(q.all).await {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => storage_failure("open data", e),
    }
}

/// The same counts as CSV (UTF-8 with a byte order mark, header row).
#[utoipa::path(get, path = "/api/v1/open-data/violations.csv", tag = "open data", params(CountQuery),
    responses((status = 200, description = "CSV", content_type = "text/csv", body = String)))]
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
    let charts: Vec<Chart> = per_place.into_iter().map(|(place, hours)| Chart { place, bars: bars(&hours) }).collect();
    let frame = Frame { lang, viewer: Some(actor.viewer()), title: lang.t("Thống kê", "Statistics") };
    render(StatusCode::OK, &StatsPage { frame, charts })
}

/// Bar area height and bar width, SVG pixels (`templates/stats.html` draws 24 bars 30 px apart in 740x200).
const CHART_HEIGHT: u32 = 160;
const BAR_WIDTH: u32 = 24;

#[derive(Template)]
#[template(path = "stats.html")]
struct StatsPage<'a> {
    frame: Frame<'a>,
    charts: Vec<Chart>,
}

/// One intersection's bar chart.
struct Chart {
    place: String,
    bars: Vec<Bar>,
}

/// One hour's bar, in SVG pixels.
struct Bar {
    hour: usize,
    count: u64,
    x: f64,
    y: f64,
    height: f64,
    centre: f64,
}

/// 24 bars, one per hour, scaled to the busiest hour.
fn bars(hours: &[u64; 24]) -> Vec<Bar> {
    let max = hours.iter().copied().max().unwrap_or(0).max(1) as f64;
    let h = f64::from(CHART_HEIGHT);
    hours
        .iter()
        .enumerate()
        .map(|(hour, &count)| {
            let height = (count as f64 / max) * h;
            let x = 10.0 + hour as f64 * 30.0;
            Bar { hour, count, x, y: h + 10.0 - height, height, centre: x + f64::from(BAR_WIDTH) / 2.0 }
        })
        .collect()
}

/// Plate accuracy of one camera in one light condition, from reviewed cases.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
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

/// Plate accuracy per camera, by day and by night, against the QCVN 05:2024 targets.
///
/// Every approved case is a sample: the plate the officer approved is the truth. Reviewers and up.
#[utoipa::path(get, path = "/api/v1/accuracy", tag = "review", security(("apiToken" = []), ("session" = [])),
    responses(
        (status = 200, description = "Rows", body = Vec<Accuracy>),
        (status = 403, description = "The role may not read it", body = central_protocol::ApiError),
    ))]
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
    let frame = Frame { lang, viewer: Some(actor.viewer()), title: lang.t("Độ chính xác", "Accuracy") };
    render(StatusCode::OK, &AccuracyPage { frame, rows: &rows, min_sample: MIN_SAMPLE, now: Utc::now() })
}

#[derive(Template)]
#[template(path = "accuracy.html")]
struct AccuracyPage<'a> {
    frame: Frame<'a>,
    rows: &'a [Accuracy],
    min_sample: u64,
    now: chrono::DateTime<Utc>,
}
