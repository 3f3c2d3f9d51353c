//! The application: what the operator configures for the service, and the router that joins every
//! feature's routes under one CSRF guard and body limit.

use crate::accounts::csrf;
use crate::web::AppState;
use crate::{accounts, devices, evidence, export, review, stats};
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The API's OpenAPI 3 document, served at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// What the operator configures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to listen on. Loopback by default: exposing the service is a deliberate act.
    pub listen: String,
    /// Folder for the SQLite database and the media files.
    pub data_dir: PathBuf,
    /// Largest accepted upload body, bytes.
    pub max_upload_bytes: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self { listen: "127.0.0.1:8787".into(), data_dir: PathBuf::from(".local/central"), max_upload_bytes: 16 << 20 }
    }
}

/// The HTTP API and pages.
pub fn router(state: AppState, max_upload_bytes: usize) -> Router {
    Router::new()
        .route("/", get(review::pages::queue))
        .route("/login", get(accounts::pages::login_page).post(accounts::pages::login))
        .route("/logout", post(accounts::pages::logout))
        .route("/lang/{code}", get(accounts::pages::set_lang))
        .route("/evidence/{id}", get(review::pages::case))
        .route("/evidence/{id}/decide", post(review::pages::decide))
        .route("/audit", get(review::pages::audit))
        .route("/admin/users", get(accounts::admin::users_page).post(accounts::admin::change))
        .route("/stats", get(stats::chart_page))
        .route("/accuracy", get(stats::accuracy_page))
        .route("/api/v1/accuracy", get(stats::accuracy_json))
        .route("/api/v1/open-data/violations", get(stats::open_data_json))
        .route("/api/v1/open-data/violations.csv", get(stats::open_data_csv))
        .route("/api/v1/export/cases", get(export::cases_json))
        .route("/api/v1/export/cases.csv", get(export::cases_csv))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/api/v1/openapi.json",
            get(|| async { ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route(central_protocol::EVIDENCE_PATH, post(evidence::upload).get(evidence::list))
        .route("/api/v1/evidence/{id}", get(evidence::show))
        .route("/api/v1/evidence/{id}/overview.jpg", get(evidence::overview))
        .route("/api/v1/evidence/{id}/clip.mp4", get(evidence::clip))
        .route("/api/v1/evidence/{id}/plates/{sha256}", get(evidence::plate_crop))
        .route("/api/v1/stats", get(evidence::stats))
        .route("/api/v1/clips/{sha}", put(evidence::clip_chunk).get(evidence::clip_status))
        .route(central_protocol::HEARTBEAT_PATH, post(devices::api::heartbeat))
        .route("/api/v1/devices", get(devices::api::devices))
        .route("/devices", get(devices::page::devices_page))
        .layer(DefaultBodyLimit::max(max_upload_bytes))
        .layer(axum::middleware::from_fn_with_state(csrf::Guard { tls: state.secure_cookies }, csrf::layer))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    /// Every API route of the router is in the OpenAPI document.
    #[test]
    fn the_openapi_document_names_every_api_route() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).expect("valid JSON");
        let paths = doc["paths"].as_object().expect("paths");
        let source = include_str!("app.rs");
        let routes = source
            .lines()
            .filter_map(|l| l.trim().strip_prefix(".route(\"/api/"))
            .map(|rest| format!("/api/{}", rest.split('"').next().unwrap_or_default()));
        for route in routes {
            assert!(paths.contains_key(&route), "{route} is not in openapi.json");
        }
        for route in [central_protocol::EVIDENCE_PATH, central_protocol::HEARTBEAT_PATH] {
            assert!(paths.contains_key(route), "{route}");
        }
    }
}
