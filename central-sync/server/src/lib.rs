//! The central service: takes evidence in from edge boxes, keeps it, shows the review queue.
//!
//! ```text
//!  edge box --PUT  /api/v1/clips/<sha>-> clip chunks (resumable) ---------> clips/partial, then clips/<sha>.mp4
//!  edge box --POST /api/v1/evidence--> device token, ingest (verify, idempotent by id) --> SQL row + media file
//!  edge box --POST /api/v1/heartbeat-> latest state per device -----------> SQL row, devices page
//!  officer  --GET /, /evidence/<id>--> review queue, one case (HTML; login, session cookie)
//!  officer  --POST decide------------> approve / reject / correct plate / reopen --> SQL + audit log (chained)
//!  fines system <--GET /api/v1/export/cases[.csv], webhook (outbox, retries, HMAC)-- approved cases
//! ```
//!
//! Invariants: a record is stored once per evidence id, whatever the number of uploads; the answer to a
//! repeated upload is the same receipt; an upload whose media does not match its hash is refused and nothing
//! of it is stored. Embedded default: SQLite and a local media folder, so the demo needs no server.

mod admin;
pub mod auth;
pub mod chain;
mod clips;
pub mod csrf;
pub mod devices;
pub mod export;
pub mod fuzz;
mod html;
mod ingest;
pub mod media;
mod pages;
pub mod review;
pub mod serve;
pub mod stats;
mod store;

pub use auth::{AccountError, Actor, Role};
pub use clips::{ClipError, ClipStore};
pub use review::{ChainCheck, Decision, ReviewError};
pub use store::{CentralStore, DeviceStatus, QueueEntry, QueueFilter, SealCheck, StoreError, MAX_CLIP_BYTES};

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

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

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<CentralStore>,
    /// Session cookies carry `Secure` (the service is served over HTTPS).
    pub secure_cookies: bool,
    /// Unregistered boxes may upload without a token (their key is pinned on first use): demo and tests only.
    pub open_enrolment: bool,
    /// Who owns a plate, for exported cases; `None`: cases go out without the owner.
    pub owners: Option<Arc<dyn export::OwnerRegistry>>,
}

impl AppState {
    /// Closed enrolment: only registered devices upload.
    pub fn new(store: Arc<CentralStore>) -> Self {
        Self { store, secure_cookies: false, open_enrolment: false, owners: None }
    }
}

/// The HTTP API and pages.
pub fn router(state: AppState, max_upload_bytes: usize) -> Router {
    Router::new()
        .route("/", get(pages::queue))
        .route("/login", get(pages::login_page).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/lang/{code}", get(pages::set_lang))
        .route("/evidence/{id}", get(pages::case))
        .route("/evidence/{id}/decide", post(pages::decide))
        .route("/audit", get(pages::audit))
        .route("/admin/users", get(admin::users_page).post(admin::change))
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
        .route(central_protocol::EVIDENCE_PATH, post(ingest::upload).get(ingest::list))
        .route("/api/v1/evidence/{id}", get(ingest::show))
        .route("/api/v1/evidence/{id}/overview.jpg", get(ingest::overview))
        .route("/api/v1/evidence/{id}/clip.mp4", get(ingest::clip))
        .route("/api/v1/evidence/{id}/plates/{sha256}", get(ingest::plate_crop))
        .route("/api/v1/stats", get(ingest::stats))
        .route("/api/v1/clips/{sha}", put(ingest::clip_chunk).get(ingest::clip_status))
        .route(central_protocol::HEARTBEAT_PATH, post(ingest::heartbeat))
        .route("/api/v1/devices", get(ingest::devices))
        .route("/devices", get(html::devices_page))
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
        let source = include_str!("lib.rs");
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
