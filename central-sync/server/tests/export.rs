//! Approved cases to the fines system: the JSON and CSV export (roles, `since`, owners, verifiable seals), and
//! the webhook that keeps retrying until the receiver takes each case.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use central_protocol::EvidenceRecord;
use central_server::export::{deliver, sign, Webhook};
use central_server::owners::{FileOwnerRegistry, OwnerRegistry};
use central_server::{router, AppState, CentralStore, Decision};
use common::{case, officer};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

mod common;

fn owners(dir: &std::path::Path) -> Arc<dyn OwnerRegistry> {
    let path = dir.join("owners.csv");
    std::fs::write(&path, "plate,name,address,id_number\n51F12345,Nguyễn Văn A,\"12 Lê Lợi, Q1\",079123456789\n")
        .expect("owners");
    Arc::new(FileOwnerRegistry::load(&path).expect("registry"))
}

async fn get(app: &axum::Router, path: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut request = Request::get(path);
    if let Some(t) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let response = app.clone().oneshot(request.body(Body::empty()).expect("req")).await.expect("resp");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn approved_cases_are_exported_as_json_and_csv_with_owner_and_a_verifiable_seal() {
    for t in common::stores().await {
        one_backend(&t.store, t.dir.path()).await;
        eprintln!("{}: ok", t.backend);
    }
}

async fn one_backend(store: &Arc<CentralStore>, dir: &std::path::Path) {
    let store = store.clone();
    let public_url = "https://phatnguoi.example.vn".to_string();
    let app = router(AppState { owners: Some(owners(dir)), public_url, ..AppState::new(store.clone()) }, 1 << 20);
    let fines = store.create_token("fines-system", "export").await.expect("token");
    let reviewer = store.create_token("a-reviewer", "reviewer").await.expect("token");
    let (a, b, c) =
        (case(&store, Some("51F-123.45")).await, case(&store, None).await, case(&store, Some("29A-111.22")).await);
    store.decide(a, &officer(), Decision::Approve { plate: None }).await.expect("approve");
    store.decide(b, &officer(), Decision::Approve { plate: Some("30a99999".into()) }).await.expect("approve");
    store.decide(c, &officer(), Decision::Reject { reason: "Không có vi phạm".into() }).await.expect("reject");

    assert_eq!(get(&app, "/api/v1/export/cases", None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&app, "/api/v1/export/cases", Some(&reviewer)).await.0, StatusCode::FORBIDDEN);
    let (status, body) = get(&app, "/api/v1/export/cases", Some(&fines)).await;
    assert_eq!(status, StatusCode::OK);
    let cases: Vec<serde_json::Value> = serde_json::from_str(&body).expect("json");
    assert_eq!(cases.len(), 2, "approved only: {body}");
    assert_eq!(cases[0]["evidence_id"], a.to_string());
    assert_eq!(cases[0]["plate"], "51F-123.45");
    assert_eq!(cases[0]["owner"]["name"], "Nguyễn Văn A");
    // Links the fines system can follow as they are: absolute, under the service's public address.
    let overview = cases[0]["overview_url"].as_str().expect("overview_url");
    assert_eq!(overview, format!("https://phatnguoi.example.vn/api/v1/evidence/{a}/overview.jpg"));
    assert_eq!(cases[0]["approved_by"], "lan.reviewer");
    assert_eq!(cases[1]["plate"], "30A-999.99");
    assert_eq!(cases[1]["plate_read_by_box"], serde_json::Value::Null);
    assert_eq!(cases[1]["owner"], serde_json::Value::Null, "not in the registry");
    // The receiver can check the record against its seal.
    let record: EvidenceRecord = serde_json::from_value(cases[0]["record"].clone()).expect("record");
    let seal: central_protocol::Seal = serde_json::from_value(cases[0]["seal"].clone()).expect("seal");
    central_protocol::verify(&record, &seal, None).expect("the exported record verifies");

    let since = cases[0]["approved_at"].as_str().expect("approved_at").replace('+', "%2B");
    let (_, later) = get(&app, &format!("/api/v1/export/cases?since={since}"), Some(&fines)).await;
    let later: Vec<serde_json::Value> = serde_json::from_str(&later).expect("json");
    assert_eq!(later.len(), 1, "only what was approved after the cursor");
    assert_eq!(later[0]["evidence_id"], b.to_string());

    let (status, csv) = get(&app, "/api/v1/export/cases.csv", Some(&fines)).await;
    assert_eq!(status, StatusCode::OK);
    // Excel reads the Vietnamese text as UTF-8 only with the byte order mark.
    let csv = csv.strip_prefix('\u{feff}').expect("a CSV export starts with the UTF-8 byte order mark");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("evidence_id,violation,violation_vi,plate"));
    assert!(lines[1].contains("51F-123.45") && lines[1].contains("\"12 Lê Lợi, Q1\""), "{}", lines[1]);
    assert!(lines[0].ends_with(",record_sha256,overview_url,clip_url,plate_crop_urls,notice_url"), "{}", lines[0]);
    // The owner's notice, at the address the export gives, with the fines system's own token; a rejected case
    // has none to give. (This record's overview is not a decodable picture: the notice says so and is made.)
    let notice = cases[0]["notice_url"].as_str().expect("notice_url");
    assert_eq!(notice, format!("https://phatnguoi.example.vn/api/v1/evidence/{a}/notice.pdf"));
    let (status, pdf) = get(&app, &format!("/api/v1/evidence/{a}/notice.pdf"), Some(&fines)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(pdf.starts_with("%PDF-"));
    assert_eq!(get(&app, &format!("/api/v1/evidence/{c}/notice.pdf"), Some(&fines)).await.0, StatusCode::FORBIDDEN);
    assert!(
        lines[1].contains(&format!(",https://phatnguoi.example.vn/api/v1/evidence/{a}/overview.jpg,")),
        "{}",
        lines[1]
    );
    // The Vietnamese name follows the record's kind (it said "Phương tiện đi qua" for this red light).
    assert!(lines[1].contains(",red_light,Vượt đèn đỏ,"), "{}", lines[1]);

    // Least privilege, route by route: the export token reads approved cases and their pictures, nothing else.
    let pending = case(&store, Some("51F-555.55")).await;
    for (path, allowed) in [
        (format!("/api/v1/evidence/{a}"), true),
        (format!("/api/v1/evidence/{a}/overview.jpg"), true),
        ("/api/v1/evidence".to_string(), false),
        (format!("/api/v1/evidence/{pending}"), false),
        (format!("/api/v1/evidence/{pending}/overview.jpg"), false),
        (format!("/api/v1/evidence/{c}"), false),
        ("/api/v1/devices".to_string(), false),
        ("/api/v1/accuracy".to_string(), false),
        ("/".to_string(), false),
        (format!("/evidence/{a}"), false),
        ("/devices".to_string(), false),
        ("/stats".to_string(), false),
        ("/accuracy".to_string(), false),
        ("/audit".to_string(), false),
        ("/admin/users".to_string(), false),
    ] {
        let status = get(&app, &path, Some(&fines)).await.0;
        if allowed {
            assert_eq!(status, StatusCode::OK, "export token on {path}");
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN, "export token on {path}");
        }
    }

    // Reopening an approved case withdraws it: out of the cases, into the withdrawals feed.
    let supervisor = central_server::Actor { name: "minh.supervisor".into(), role: central_server::Role::Supervisor };
    store.decide(a, &supervisor, Decision::Reopen { reason: "Biển số sai".into() }).await.expect("reopen");
    let (_, body) = get(&app, "/api/v1/export/cases", Some(&fines)).await;
    let cases: Vec<serde_json::Value> = serde_json::from_str(&body).expect("json");
    assert_eq!(cases.len(), 1, "{body}");
    let (status, body) = get(&app, "/api/v1/export/withdrawn", Some(&fines)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let feed: Vec<serde_json::Value> = serde_json::from_str(&body).expect("json");
    assert_eq!((feed.len(), feed[0]["evidence_id"].as_str()), (1, Some(a.to_string().as_str())), "{body}");
    assert_eq!(get(&app, "/api/v1/export/withdrawn", Some(&reviewer)).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_webhook_retries_until_the_fines_system_takes_each_case_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(CentralStore::open(dir.path()).await.expect("store"));
    // A receiver that fails its first two calls, then accepts; it keeps what it accepted.
    let accepted: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let receiver = axum::Router::new().route(
        "/cases",
        axum::routing::post({
            let (accepted, calls) = (accepted.clone(), calls.clone());
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| async move {
                if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let signature = headers.get("x-traffic-edge-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
                assert_eq!(signature, sign(b"shared-secret-0123456789", &body), "signed with the shared secret");
                let case: serde_json::Value = serde_json::from_slice(&body).expect("json");
                let id = case["evidence_id"].as_str().unwrap_or_default().to_string();
                accepted.lock().expect("lock").push((id, signature.to_string()));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/cases", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    let hook = Webhook { url, secret: b"shared-secret-0123456789".to_vec(), public_url: String::new() };

    let (a, b) = (case(&store, Some("51F-123.45")).await, case(&store, Some("29A-111.22")).await);
    store.decide(a, &officer(), Decision::Approve { plate: None }).await.expect("approve");
    store.decide(b, &officer(), Decision::Approve { plate: None }).await.expect("approve");
    // Approved, then reopened before it went out: withdrawn, never sent.
    let c = case(&store, Some("30A-999.99")).await;
    store.decide(c, &officer(), Decision::Approve { plate: None }).await.expect("approve");
    let supervisor = central_server::Actor { name: "minh.supervisor".into(), role: central_server::Role::Supervisor };
    store.decide(c, &supervisor, Decision::Reopen { reason: "xem lại".into() }).await.expect("reopen");
    tokio::spawn(deliver(store.clone(), Some(owners(dir.path())), hook));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while accepted.lock().expect("lock").len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "both cases delivered within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing more arrives: each case once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut ids: Vec<String> = accepted.lock().expect("lock").iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    let mut expected = vec![a.to_string(), b.to_string()];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(calls.load(std::sync::atomic::Ordering::SeqCst) >= 4, "two refusals, then two deliveries");
}

/// A reopened case the fines system already took is withdrawn from it: a signed `case.withdrawn` event after
/// the approval, and an entry in the withdrawals feed; approving it again sends it again as a case.
#[tokio::test]
async fn a_case_reopened_after_the_fines_system_took_it_is_withdrawn_by_a_signed_event_and_in_the_feed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(CentralStore::open(dir.path()).await.expect("store"));
    let received: Arc<Mutex<Vec<(String, serde_json::Value)>>> = Arc::default();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let received = received.clone();
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| async move {
                let signature = headers.get("x-traffic-edge-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
                assert_eq!(signature, sign(b"shared-secret-0123456789", &body), "every event is signed");
                let event = headers.get("x-traffic-edge-event").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                received.lock().expect("lock").push((event, serde_json::from_slice(&body).expect("json")));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    tokio::spawn(deliver(
        store.clone(),
        None,
        Webhook { url, secret: b"shared-secret-0123456789".to_vec(), public_url: String::new() },
    ));
    let wait_for = |n: usize| {
        let received = received.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while received.lock().expect("lock").len() < n {
                assert!(tokio::time::Instant::now() < deadline, "{n} events within 20 s");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    let a = case(&store, Some("51F-123.45")).await;
    store.decide(a, &officer(), Decision::Approve { plate: None }).await.expect("approve");
    wait_for(1).await;
    let supervisor = central_server::Actor { name: "minh.supervisor".into(), role: central_server::Role::Supervisor };
    store.decide(a, &supervisor, Decision::Reopen { reason: "Biển số sai".into() }).await.expect("reopen");
    wait_for(2).await;
    {
        let events = received.lock().expect("lock");
        assert_eq!(events[0].0, "case.approved");
        assert_eq!(events[0].1["evidence_id"], a.to_string());
        assert_eq!(events[1].0, "case.withdrawn");
        let w = &events[1].1;
        assert_eq!(
            (w["event"].as_str(), w["evidence_id"].as_str()),
            (Some("case.withdrawn"), Some(a.to_string().as_str()))
        );
        assert_eq!((w["withdrawn_by"].as_str(), w["reason"].as_str()), (Some("minh.supervisor"), Some("Biển số sai")));
    }

    let app = router(AppState::new(store.clone()), 1 << 20);
    let fines = store.create_token("fines-system", "export").await.expect("token");
    let (status, body) = get(&app, "/api/v1/export/withdrawn", Some(&fines)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let feed: Vec<serde_json::Value> = serde_json::from_str(&body).expect("json");
    assert_eq!(feed.len(), 1, "{body}");
    assert_eq!(feed[0]["evidence_id"], a.to_string());
    let after = feed[0]["seq"].as_i64().expect("seq");
    let (_, rest) = get(&app, &format!("/api/v1/export/withdrawn?after={after}"), Some(&fines)).await;
    assert_eq!(rest, "[]", "the cursor moves past what was read");
    let (_, cases) = get(&app, "/api/v1/export/cases", Some(&fines)).await;
    assert_eq!(cases, "[]", "a withdrawn case is no longer an approved case");

    store.decide(a, &officer(), Decision::Approve { plate: None }).await.expect("approve again");
    wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let events = received.lock().expect("lock");
    let kinds: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(kinds, ["case.approved", "case.withdrawn", "case.approved"], "each event once, in order");
}

/// Paging the export by `since` + `after_id` neither skips nor repeats cases approved at the same instant.
#[tokio::test]
async fn paging_the_export_never_skips_or_repeats_cases_approved_at_the_same_instant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(CentralStore::open(dir.path()).await.expect("store"));
    let mut ids = Vec::new();
    for plate in ["51F-111.11", "51F-222.22", "51F-333.33"] {
        let id = case(&store, Some(plate)).await;
        store.decide(id, &officer(), Decision::Approve { plate: None }).await.expect("approve");
        ids.push(id.to_string());
    }
    // The three decisions at one instant, as a busy review desk can make them (written as the service writes
    // times).
    let db =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("central.db").display())).await.expect("db");
    let instant = chrono::DateTime::parse_from_rfc3339("2026-12-03T08:00:00.5Z").expect("time").to_utc().to_rfc3339();
    sqlx::query("UPDATE evidence SET decided_at = $1").bind(instant).execute(&db).await.expect("same time");
    let app = router(AppState::new(store.clone()), 1 << 20);
    let fines = store.create_token("fines-system", "export").await.expect("token");
    let mut seen: Vec<String> = Vec::new();
    let mut cursor = String::new();
    for _ in 0..5 {
        let (status, body) = get(&app, &format!("/api/v1/export/cases?limit=2{cursor}"), Some(&fines)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page: Vec<serde_json::Value> = serde_json::from_str(&body).expect("json");
        let Some(last) = page.last() else { break };
        seen.extend(page.iter().filter_map(|c| c["evidence_id"].as_str().map(str::to_string)));
        let since = last["approved_at"].as_str().expect("approved_at").replace('+', "%2B");
        cursor = format!("&since={since}&after_id={}", last["evidence_id"].as_str().expect("id"));
    }
    ids.sort();
    seen.sort();
    assert_eq!(seen, ids, "every case exactly once over the pages");
}
