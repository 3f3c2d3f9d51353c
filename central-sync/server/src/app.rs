//! The application: what the operator configures for the service, and the router that joins every
//! feature's routes under one CSRF guard and body limit.

use crate::accounts::csrf;
use crate::web::AppState;
use crate::{accounts, devices, evidence, export, openapi, review, stats};
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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

/// The HTTP API: each route and its part of the OpenAPI document come from one handler's `#[utoipa::path]`.
/// Handlers of one path share a `routes!` list.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(evidence::upload, evidence::list))
        .routes(routes!(evidence::show))
        .routes(routes!(evidence::overview))
        .routes(routes!(evidence::thumbnail))
        .routes(routes!(evidence::notice))
        .routes(routes!(evidence::clip))
        .routes(routes!(evidence::plate_crop))
        .routes(routes!(evidence::stats))
        .routes(routes!(evidence::clip_chunk, evidence::clip_status))
        .routes(routes!(devices::api::heartbeat))
        .routes(routes!(devices::api::devices))
        .routes(routes!(export::cases_json))
        .routes(routes!(export::cases_csv))
        .routes(routes!(export::withdrawn_json))
        .routes(routes!(stats::open_data_json))
        .routes(routes!(stats::open_data_csv))
        .routes(routes!(stats::accuracy_json))
        .routes(routes!(document))
        .routes(routes!(openapi::healthz))
}

/// The document as served at `/api/v1/openapi.json` and committed as `openapi.json`.
pub fn json() -> &'static str {
    static DOCUMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        api_routes().into_openapi().to_pretty_json().unwrap_or_else(|e| {
            // Only a type whose Serialize fails could cause this; none of utoipa's do.
            format!("{{\"error\": \"the OpenAPI document could not be written: {e}\"}}")
        })
    });
    &DOCUMENT
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "service",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json")))]
pub async fn document() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], json())
}

/// The HTTP API and pages.
pub fn router(state: AppState, max_upload_bytes: usize) -> Router {
    let (api, _document) = api_routes().split_for_parts();
    Router::new()
        .route("/", get(review::pages::queue))
        .route("/login", get(accounts::pages::login_page).post(accounts::pages::login))
        .route("/logout", post(accounts::pages::logout))
        .route("/lang/{code}", get(accounts::pages::set_lang))
        .route("/evidence/{id}", get(review::pages::case))
        .route("/evidence/{id}/decide", post(review::pages::decide))
        .route("/bulk/reject", post(review::bulk::bulk_reject))
        .route("/audit", get(review::pages::audit))
        .route("/admin/users", get(accounts::admin::users_page).post(accounts::admin::change))
        .route("/stats", get(stats::chart_page))
        .route("/accuracy", get(stats::accuracy_page))
        .route("/devices", get(devices::page::devices_page))
        .route("/static/{name}", get(review::pages::static_file))
        .merge(api)
        .layer(DefaultBodyLimit::max(max_upload_bytes))
        .layer(axum::middleware::from_fn_with_state(csrf::Guard { tls: state.secure_cookies }, csrf::layer))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    /// `openapi.json` in the repository is what the service serves: regenerate it with
    /// `cargo run -p central-server -- openapi > central-sync/server/openapi.json` after changing an API.
    #[test]
    fn the_committed_openapi_json_is_the_document_generated_from_the_handlers() {
        let committed = include_str!("../openapi.json");
        assert!(
            committed.trim_end() == super::json(),
            "central-sync/server/openapi.json is stale: run `cargo run -p central-server -- openapi > \
             central-sync/server/openapi.json`"
        );
    }

    /// Every API route goes through `api_routes` (and so into the document): none is added by hand.
    #[test]
    fn no_api_route_bypasses_the_openapi_document() {
        let source = include_str!("app.rs");
        let by_hand = source.lines().filter(|l| l.trim_start().starts_with(".route(\"/api")).count();
        assert_eq!(by_hand, 0, "an /api route is added with .route(): give its handler #[utoipa::path] and routes!");
        let doc: serde_json::Value = serde_json::from_str(super::json()).expect("valid JSON");
        let paths = doc["paths"].as_object().expect("paths");
        for route in [central_protocol::EVIDENCE_PATH, central_protocol::HEARTBEAT_PATH, "/api/v1/clips/{sha}"] {
            assert!(paths.contains_key(route), "{route}");
        }
    }

    /// The schemas come from the types: every event kind the boxes may send is in the record's schema (the
    /// hand-written document had missed `no_helmet`).
    #[test]
    fn the_record_schema_lists_every_event_kind_the_types_know() {
        let doc: serde_json::Value = serde_json::from_str(super::json()).expect("valid JSON");
        let kinds = &doc["components"]["schemas"]["EventKind"]["enum"];
        let kinds: Vec<&str> = kinds.as_array().expect("enum").iter().filter_map(|k| k.as_str()).collect();
        assert!(kinds.contains(&"vehicle_detected"));
        for kind in te_types::ViolationKind::ALL {
            assert!(kinds.contains(&kind.as_str()), "{} missing", kind.as_str());
        }
    }
}
