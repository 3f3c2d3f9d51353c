//! The API's OpenAPI 3.1 document, generated: each API handler's `#[utoipa::path]` gives its operation, the
//! wire types (`central-protocol`, `te-types` with their `openapi` feature) and this service's answers give the
//! schemas, and the router's API routes are made from the same `routes!` lists (`app::api_routes`), so a route,
//! a field or an enum value cannot change without the document following. What no handler says is added here:
//! the title, the three ways to authenticate, and the webhook this service calls.
//!
//! `central-sync/server/openapi.json` is this document as committed for readers of the repository (the fines
//! system's developers); a test keeps it equal to the generated one. `app` joins the routes and serves it.

use utoipa::openapi::path::{OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HttpMethod, OpenApi, PathsBuilder, Ref, Required, ResponseBuilder};
use utoipa::Modify;

/// The document's frame; `app::api_routes` adds every operation.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "traffic-edge central service",
        version = "1",
        description = "Evidence ingest from edge boxes, review, export to the fines system, open data. Errors are \
                       JSON {\"error\": \"...\"}. Times are RFC 3339 UTC.",
    ),
    tags(
        (name = "boxes", description = "What edge boxes send: sealed records, clips ahead of them, heartbeats."),
        (name = "review", description = "Records and their review, for officers (session) and systems (token)."),
        (name = "export", description = "Approved cases for the fines system (role export)."),
        (name = "open data", description = "Counts and totals without plates or ids; no login."),
        (name = "service", description = "Liveness and this document."),
    ),
    modifiers(&Frame)
)]
pub struct ApiDoc;

/// The security schemes and the webhook.
struct Frame;

impl Modify for Frame {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            let mut scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
            scheme.description = Some(description.to_string());
            SecurityScheme::Http(scheme)
        };
        components
            .add_security_scheme("deviceToken", bearer("A box's upload token from `central-sync device register`."));
        components.add_security_scheme(
            "apiToken",
            bearer("A system's token from `central-sync token create` (role export for the fines system)."),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::accounts::SESSION_COOKIE,
                "An officer's session after POST /login.",
            ))),
        );
        doc.webhooks = Some(webhooks());
    }
}

/// What `serve --webhook-url` POSTs to the fines system: approved cases, and withdrawals of reopened ones.
fn webhooks() -> utoipa::openapi::path::Paths {
    let header = |name: &str, pattern: &str, description: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::True)
            .schema(Some(ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern))))
            .description(Some(description))
            .build()
    };
    let event = |schema: &str, event: &str, summary: &str, description: &str| {
        let body = ContentBuilder::new().schema(Some(Ref::from_schema_name(schema))).build();
        let operation = OperationBuilder::new()
            .summary(Some(summary))
            .description(Some(description))
            .parameter(header(
                crate::export::SIGNATURE_HEADER,
                "^sha256=[0-9a-f]{64}$",
                "`sha256=<hex HMAC-SHA256 of the body with the shared secret>`",
            ))
            .parameter(header(crate::export::EVENT_HEADER, &format!("^{}$", event.replace('.', "\\.")), event))
            .request_body(Some(
                RequestBodyBuilder::new().content("application/json", body).required(Some(Required::True)).build(),
            ))
            .response("2XX", ResponseBuilder::new().description("Taken").build())
            .build();
        PathItem::new(HttpMethod::Post, operation)
    };
    PathsBuilder::new()
        .path(
            "caseApproved",
            event(
                "ExportCase",
                crate::export::APPROVED,
                "One approved case, sent to the fines system as it is approved",
                "Answer 2xx to take it; anything else is retried with backoff. The same case may arrive more than \
                 once (after a timeout): deduplicate by evidence_id.",
            ),
        )
        .path(
            "caseWithdrawn",
            event(
                "Withdrawal",
                crate::export::WITHDRAWN,
                "An approved case an officer reopened: drop it",
                "Sent after the approval it takes back, and only when that approval was sent. A new approval of \
                 the case comes again as caseApproved. Retried like approvals.",
            ),
        )
        .build()
}

/// Liveness: answers `ok` while the service runs.
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, description = "ok", content_type = "text/plain", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}
