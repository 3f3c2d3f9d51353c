//! Security of the device side against a real SQLite store, enrolment closed: only registered boxes with their
//! token upload; every refusal stores nothing.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use central_protocol::{EvidenceRecord, EvidenceUpload, SigningKey};
use central_server::devices::RegisterError;
use central_server::{router, AppState, CentralStore};
use std::sync::Arc;
use tower::ServiceExt;

mod common;

const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F'];

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn upload(device: &str, signer: &SigningKey) -> EvidenceUpload {
    let record = EvidenceRecord::synthetic(device, "cam-1", JPEG);
    let seal = central_protocol::seal(&record, signer);
    EvidenceUpload::new(record, seal, JPEG)
}

/// box-1 registered on `store`; the router (enrolment open or closed) and box-1's token.
async fn setup(store: &Arc<CentralStore>, open: bool) -> (axum::Router, String) {
    let public = hex::encode(key(1).verifying_key().to_bytes());
    let token = store.register_device("box-1", &public).await.expect("register");
    let state = AppState { open_enrolment: open, ..AppState::new(store.clone()) };
    (router(state, 64 * 1024), token)
}

async fn post(app: &axum::Router, path: &str, token: Option<&str>, body: String) -> (StatusCode, String) {
    let mut request = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let response = app.clone().oneshot(request.body(Body::from(body)).expect("req")).await.expect("resp");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn total(store: &CentralStore) -> u64 {
    store.stats().await.expect("stats").evidence_total
}

fn json(u: &EvidenceUpload) -> String {
    serde_json::to_string(u).expect("json")
}

#[tokio::test]
async fn uploads_without_a_valid_token_or_for_another_device_are_refused_and_nothing_is_stored() {
    for t in common::stores().await {
        uploads_without_a_valid_token_or_for_another_device_are_refused_and_nothing_is_stored_on(&t.store).await;
        eprintln!("{}: ok", t.backend);
    }
}

async fn uploads_without_a_valid_token_or_for_another_device_are_refused_and_nothing_is_stored_on(
    store: &Arc<CentralStore>,
) {
    let store = store.clone();
    let (app, token) = setup(&store, false).await;
    let path = "/api/v1/evidence";
    let good = upload("box-1", &key(1));

    let (status, body) = post(&app, path, None, json(&good)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no token: {body}");
    assert!(body.contains("device register"), "{body}");
    assert_eq!(post(&app, path, Some("0badc0de"), json(&good)).await.0, StatusCode::UNAUTHORIZED, "unknown token");
    // box-1's token carrying a record that claims to be box-2's.
    let (status, body) = post(&app, path, Some(&token), json(&upload("box-2", &key(1)))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // The right token, but sealed by a key that is not the one registered.
    assert_eq!(post(&app, path, Some(&token), json(&upload("box-1", &key(2)))).await.0, StatusCode::FORBIDDEN);
    // Altered after sealing: the signature no longer covers it.
    let mut altered = upload("box-1", &key(1));
    altered.record.location = "somewhere else".into();
    assert_eq!(post(&app, path, Some(&token), json(&altered)).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    // Too large a body.
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(100 * 1024));
    assert_eq!(post(&app, path, Some(&token), big).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    // Heartbeats are held to the same rule.
    let beat = serde_json::json!({"device_id": "box-9", "sent_at": chrono::Utc::now(), "agent_version": "x",
        "pending": 0, "delivered": 0, "rejected": 0, "disk_used_bytes": 0, "disk_free_bytes": 0, "clock": null,
        "cameras": [], "alarm": null});
    assert_eq!(post(&app, "/api/v1/heartbeat", Some(&token), beat.to_string()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(post(&app, "/api/v1/heartbeat", None, beat.to_string()).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(total(&store).await, 0, "nothing of a refused upload is stored");
    assert!(store.devices().await.expect("devices").is_empty());

    // The registered box with its token: stored once; the same upload replayed changes nothing.
    assert_eq!(post(&app, path, Some(&token), json(&good)).await.0, StatusCode::CREATED);
    assert_eq!(post(&app, path, Some(&token), json(&good)).await.0, StatusCode::OK);
    // A replay of the id with other content is a conflict.
    let mut other = upload("box-1", &key(1));
    other.record.evidence_id = good.record.evidence_id;
    let other = EvidenceUpload::new(other.record.clone(), central_protocol::seal(&other.record, &key(1)), JPEG);
    assert_eq!(post(&app, path, Some(&token), json(&other)).await.0, StatusCode::CONFLICT);
    assert_eq!(total(&store).await, 1);
}

#[tokio::test]
async fn open_enrolment_still_holds_a_registered_device_to_its_token() {
    for t in common::stores().await {
        open_enrolment_still_holds_a_registered_device_to_its_token_on(&t.store).await;
        eprintln!("{}: ok", t.backend);
    }
}

async fn open_enrolment_still_holds_a_registered_device_to_its_token_on(store: &Arc<CentralStore>) {
    let store = store.clone();
    let (app, token) = setup(&store, true).await;
    let (status, body) = post(&app, "/api/v1/evidence", None, json(&upload("box-1", &key(1)))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // An unregistered box is taken on first use (its key pinned).
    assert_eq!(post(&app, "/api/v1/evidence", None, json(&upload("box-new", &key(3)))).await.0, StatusCode::CREATED);
    assert_eq!(
        post(&app, "/api/v1/evidence", Some(&token), json(&upload("box-1", &key(1)))).await.0,
        StatusCode::CREATED
    );
    assert_eq!(total(&store).await, 2);
}

#[tokio::test]
async fn registration_checks_the_key_and_refuses_a_second_registration() {
    for t in common::stores().await {
        registration_checks_the_key_and_refuses_a_second_registration_on(&t.store).await;
        eprintln!("{}: ok", t.backend);
    }
}

async fn registration_checks_the_key_and_refuses_a_second_registration_on(store: &Arc<CentralStore>) {
    let store = store.clone();
    let _ = setup(&store, false).await;
    assert!(matches!(store.register_device("box-2", "abc").await, Err(RegisterError::BadKey)));
    assert!(matches!(store.register_device("../box", &"00".repeat(32)).await, Err(RegisterError::BadDeviceId)));
    let public = hex::encode(key(1).verifying_key().to_bytes());
    assert!(matches!(store.register_device("box-1", &public).await, Err(RegisterError::Exists(_))));
    // A box already pinned (open enrolment) by another key cannot be registered with a different one.
    let pinned = upload("box-3", &key(4));
    let jpeg = pinned.verified_overview(chrono::Utc::now()).expect("jpeg");
    store.ingest(&pinned.record, &pinned.seal, &jpeg, None, &[]).await.expect("ingest");
    assert!(matches!(store.register_device("box-3", &public).await, Err(RegisterError::OtherKeyPinned { .. })));
}

#[tokio::test]
async fn a_name_squatted_under_open_enrolment_goes_to_the_key_the_admin_registers() {
    let t = common::stores().await.into_iter().next().expect("sqlite");
    let store = t.store.clone();
    let (app, _) = setup(&store, true).await;
    // Someone on the network uploads first as box-7, pinning their key.
    let squatter = upload("box-7", &key(9));
    assert_eq!(post(&app, "/api/v1/evidence", None, json(&squatter)).await.0, StatusCode::CREATED);
    // The admin registers the real box-7 and its key, saying the pin is to go.
    let real = hex::encode(key(7).verifying_key().to_bytes());
    assert!(matches!(store.register_device("box-7", &real).await, Err(RegisterError::OtherKeyPinned { .. })));
    let token = store.register_device_with("box-7", &real, true).await.expect("register over the pin");
    let (status, body) = post(&app, "/api/v1/evidence", Some(&token), json(&upload("box-7", &key(7)))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(post(&app, "/api/v1/evidence", None, json(&upload("box-7", &key(9)))).await.0, StatusCode::UNAUTHORIZED);
    let audit = store.audit_entries(None, 20).await.expect("audit");
    assert!(audit.iter().any(|e| e.action == "device_key_replaced"), "the replacement is audited");
    let check = store.seal_check(squatter.record.evidence_id).await.expect("check").expect("found");
    assert!(!check.signature_ok, "the squatter's record is flagged: {}", check.detail);
}

/// Pins the CI failure "database is locked": SQLite transactions that read and then write failed at once when
/// another connection committed between their read and their write. Now each waits for the write lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registrations_at_the_same_time_wait_for_the_write_lock_instead_of_failing_as_locked() {
    for t in common::stores().await {
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..24u8 {
            let store = t.store.clone();
            tasks.spawn(async move {
                let public = hex::encode(key(n + 10).verifying_key().to_bytes());
                store.register_device(&format!("box-{n}"), &public).await.map(|_| ())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("task").expect("each registration waits its turn");
        }
        eprintln!("{}: ok", t.backend);
    }
}
