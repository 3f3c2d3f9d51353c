//! The ingest API against real SQL backends (SQLite, and PostgreSQL when `scripts/test` provides one) and a
//! media folder: idempotency and refusals.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use central_protocol::{sha256_hex, EvidenceRecord, EvidenceUpload, IngestReceipt, IngestStatus};
use central_server::{router, AppState, CentralStore};
use std::sync::Arc;
use te_types::{CameraId, DeviceId};
use tower::ServiceExt;

mod common;

const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F'];

fn app_on(store: &Arc<CentralStore>) -> axum::Router {
    // Open enrolment: these tests are about ingest itself; device tokens are tested in tests/devices.rs.
    router(AppState { open_enrolment: true, ..AppState::new(store.clone()) }, 64 * 1024)
}

fn upload(jpeg: &[u8]) -> EvidenceUpload {
    let record = EvidenceRecord::synthetic("box-7", "cam-2", jpeg);
    let seal = central_protocol::seal(&record, &device_key());
    EvidenceUpload::new(record, seal, jpeg)
}

fn device_key() -> central_protocol::SigningKey {
    central_protocol::SigningKey::from_bytes(&[3u8; 32])
}

async fn post(app: &axum::Router, body: String) -> (StatusCode, serde_json::Value) {
    let request = Request::post("/api/v1/evidence")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("response");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

async fn total(store: &CentralStore) -> u64 {
    store.stats().await.expect("stats").evidence_total
}

#[tokio::test]
async fn an_upload_is_stored_once_and_a_repeat_gets_the_first_receipt() {
    for t in common::stores().await {
        let (app, store) = (app_on(&t.store), t.store.clone());
        let u = upload(JPEG);
        let body = serde_json::to_string(&u).expect("json");
        let (status, first) = post(&app, body.clone()).await;
        assert_eq!(status, StatusCode::CREATED);
        let first: IngestReceipt = serde_json::from_value(first).expect("receipt");
        assert_eq!((first.evidence_id, first.status), (u.record.evidence_id, IngestStatus::Created));
        let (status, again) = post(&app, body).await;
        assert_eq!(status, StatusCode::OK);
        let again: IngestReceipt = serde_json::from_value(again).expect("receipt");
        assert_eq!(again.status, IngestStatus::AlreadyStored);
        assert_eq!(again.stored_at, first.stored_at);
        assert_eq!(total(&store).await, 1);
        assert_eq!(store.overview(u.record.evidence_id).await.expect("read"), Some(JPEG.to_vec()));
        eprintln!("{}: ok", t.backend);
    }
}

#[tokio::test]
async fn an_image_that_does_not_match_its_hash_is_refused_and_nothing_is_stored() {
    for t in common::stores().await {
        let (app, store) = (app_on(&t.store), t.store.clone());
        let mut u = upload(JPEG);
        u.record.overview_sha256 = sha256_hex(b"something else");
        let (status, body) = post(&app, serde_json::to_string(&u).expect("json")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body["error"].as_str().expect("error text").contains("hashes to"));
        assert_eq!(total(&store).await, 0);
        assert_eq!(store.overview(u.record.evidence_id).await.expect("read"), None);
        eprintln!("{}: ok", t.backend);
    }
}

#[tokio::test]
async fn the_same_id_with_different_content_is_a_conflict_and_the_first_stays() {
    for t in common::stores().await {
        let (app, store) = (app_on(&t.store), t.store.clone());
        let u = upload(JPEG);
        assert_eq!(post(&app, serde_json::to_string(&u).expect("json")).await.0, StatusCode::CREATED);
        let other_jpeg = [JPEG, b"x"].concat();
        let mut forged = upload(&other_jpeg);
        forged.record.evidence_id = u.record.evidence_id;
        forged.seal = central_protocol::seal(&forged.record, &device_key());
        assert_eq!(post(&app, serde_json::to_string(&forged).expect("json")).await.0, StatusCode::CONFLICT);
        assert_eq!(store.overview(u.record.evidence_id).await.expect("read"), Some(JPEG.to_vec()));
        eprintln!("{}: ok", t.backend);
    }
}

#[tokio::test]
async fn a_record_altered_after_sealing_or_sealed_by_another_key_is_refused_and_nothing_is_stored() {
    for t in common::stores().await {
        let (app, store) = (app_on(&t.store), t.store.clone());
        let mut altered = upload(JPEG);
        altered.record.location = "somewhere else".into();
        let (status, body) = post(&app, serde_json::to_string(&altered).expect("json")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body["error"].as_str().expect("error").contains("altered"), "{body}");
        assert_eq!(total(&store).await, 0);

        // The device's key is pinned by its first record; a record sealed by another key is forbidden.
        assert_eq!(post(&app, serde_json::to_string(&upload(JPEG)).expect("json")).await.0, StatusCode::CREATED);
        let mut impostor = upload(JPEG);
        impostor.seal = central_protocol::seal(&impostor.record, &central_protocol::SigningKey::from_bytes(&[4u8; 32]));
        assert_eq!(post(&app, serde_json::to_string(&impostor).expect("json")).await.0, StatusCode::FORBIDDEN);
        assert_eq!(total(&store).await, 1);
        eprintln!("{}: ok", t.backend);
    }
}

#[tokio::test]
async fn malformed_oversized_and_wrong_version_uploads_get_clear_client_errors() {
    for t in common::stores().await {
        let (app, store) = (app_on(&t.store), t.store.clone());
        assert_eq!(post(&app, "{not json".into()).await.0, StatusCode::BAD_REQUEST);
        let big = upload(&[JPEG, &vec![0u8; 100 * 1024]].concat());
        assert_eq!(post(&app, serde_json::to_string(&big).expect("json")).await.0, StatusCode::PAYLOAD_TOO_LARGE);
        let mut old = upload(JPEG);
        old.record.protocol_version = 0;
        let (status, body) = post(&app, serde_json::to_string(&old).expect("json")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body["error"].as_str().expect("error").contains("protocol_version"));
        assert_eq!(total(&store).await, 0);
        eprintln!("{}: ok", t.backend);
    }
}

#[tokio::test]
async fn a_path_that_is_not_an_evidence_id_is_refused() {
    for t in common::stores().await {
        let (app, store) = (app_on(&t.store), t.store.clone());
        let token = store.create_token("tests", "supervisor").await.expect("token");
        for path in ["/api/v1/evidence/..%2F..%2Fetc%2Fpasswd/overview.jpg", "/api/v1/evidence/nope"] {
            let request = Request::get(path).header("authorization", format!("Bearer {token}")).body(Body::empty());
            let response = app.clone().oneshot(request.expect("req")).await.expect("resp");
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        }
        eprintln!("{}: ok", t.backend);
    }
}

#[tokio::test]
async fn a_clip_is_stored_and_served_only_when_it_matches_the_sealed_record() {
    for t in common::stores().await {
        let (app, store) = (app_on(&t.store), t.store.clone());
        let clip = b"\0\0\0\x18ftypisom-a-real-clip".to_vec();
        let mut u = upload(JPEG);
        u.record.clip_sha256 = Some(sha256_hex(&clip));
        u.seal = central_protocol::seal(&u.record, &device_key());
        // Named but neither inline nor sent ahead: "not yet" (the box sends it and retries); different from what the
        // record names: refused. Nothing stored either way.
        assert_eq!(post(&app, serde_json::to_string(&u).expect("json")).await.0, StatusCode::FAILED_DEPENDENCY);
        let other = u.clone().with_clip(Some(b"\0\0\0\x18ftypisom-another-clip"));
        assert_eq!(post(&app, serde_json::to_string(&other).expect("json")).await.0, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(total(&store).await, 0);
        let good = u.with_clip(Some(&clip));
        assert_eq!(post(&app, serde_json::to_string(&good).expect("json")).await.0, StatusCode::CREATED);
        assert_eq!(store.clip(good.record.evidence_id).await.expect("read"), Some(clip));
        eprintln!("{}: ok", t.backend);
    }
}

async fn send(app: &axum::Router, request: Request<Body>) -> (StatusCode, serde_json::Value) {
    let response = app.clone().oneshot(request).await.expect("response");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

fn put_chunk(sha: &str, offset: usize, bytes: &[u8]) -> Request<Body> {
    Request::put(format!("/api/v1/clips/{sha}?offset={offset}")).body(Body::from(bytes.to_vec())).expect("request")
}

#[tokio::test]
async fn a_clip_sent_ahead_in_chunks_resumes_after_a_cut_and_serves_every_record_that_names_it() {
    for t in common::stores().await {
        let (app, store) = (app_on(&t.store), t.store.clone());
        let mut clip = b"\0\0\0\x18ftypisom".to_vec();
        clip.extend((0..40_000u32).map(|i| (i % 253) as u8));
        let sha = sha256_hex(&clip);
        let status_of = || Request::get(format!("/api/v1/clips/{sha}")).body(Body::empty()).expect("request");
        assert_eq!(send(&app, status_of()).await.1["received"], 0);
        assert_eq!(send(&app, put_chunk(&sha, 0, &clip[..16_000])).await.1["received"], 16_000);
        // The link dropped; the box asks where to go on, and a stale offset is answered with the held length.
        assert_eq!(send(&app, status_of()).await.1["received"], 16_000);
        let (status, body) = send(&app, put_chunk(&sha, 8_000, &clip[8_000..24_000])).await;
        assert_eq!((status, body["received"].as_u64()), (StatusCode::CONFLICT, Some(16_000)));
        send(&app, put_chunk(&sha, 16_000, &clip[16_000..32_000])).await;
        send(&app, put_chunk(&sha, 32_000, &clip[32_000..])).await;
        let (_, held) = send(&app, status_of()).await;
        assert_eq!(held["complete"], true, "{held}");

        // Two records of one vehicle name the clip; it came once and both have it.
        for _ in 0..2 {
            let mut u = upload(JPEG);
            u.record.clip_sha256 = Some(sha.clone());
            u.seal = central_protocol::seal(&u.record, &device_key());
            assert_eq!(post(&app, serde_json::to_string(&u).expect("json")).await.0, StatusCode::CREATED);
            assert_eq!(store.clip(u.record.evidence_id).await.expect("read").as_deref(), Some(&clip[..]));
        }
        // Stored once, under its hash, not once per record.
        let clips: Vec<_> = walk(&t.dir.path().join("media")).into_iter().filter(|p| p.ends_with(".mp4")).collect();
        assert_eq!(clips, [format!("clips/{sha}.mp4")], "{}", t.backend);
        eprintln!("{}: ok", t.backend);
    }
}

#[tokio::test]
async fn clip_names_that_are_not_a_digest_are_refused_and_nothing_is_written() {
    for t in common::stores().await {
        let app = app_on(&t.store);
        for name in ["..%2F..%2Fetc%2Fpasswd", "ABCDEF", "evidence.mp4"] {
            let (status, _) = send(&app, put_chunk(name, 0, b"\0\0\0\x18ftyp")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{name}");
        }
        let partial = std::fs::read_dir(t.dir.path().join("clips/partial")).expect("dir").count();
        assert_eq!(partial, 0);
        eprintln!("{}: ok", t.backend);
    }
}

#[tokio::test]
async fn a_heartbeat_is_kept_as_the_devices_latest_state() {
    for t in common::stores().await {
        let (app, store) = (app_on(&t.store), t.store.clone());
        let beat = |pending: u64| central_protocol::Heartbeat {
            device_id: DeviceId::new("box-7"),
            sent_at: chrono::Utc::now(),
            agent_version: "0.1.0".into(),
            pending,
            delivered: 10,
            rejected: 0,
            disk_used_bytes: 1 << 20,
            disk_free_bytes: 1 << 30,
            clock: None,
            cameras: vec![central_protocol::CameraState {
                camera_id: CameraId::new("cam-2"),
                state: "streaming".into(),
                frames_in: 100,
                frames_dropped: 0,
                reconnects: 1,
            }],
            alarm: None,
            interval_s: Some(30),
        };
        for pending in [5, 3] {
            let request = Request::post("/api/v1/heartbeat")
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_string(&beat(pending)).expect("json")))
                .expect("request");
            assert_eq!(send(&app, request).await.0, StatusCode::NO_CONTENT);
        }
        let devices = store.devices().await.expect("devices");
        assert_eq!(devices.len(), 1);
        assert_eq!(devices[0].heartbeat.pending, 3);
        let token = store.create_token("tests", "reviewer").await.expect("token");
        let request = Request::get("/devices").header("authorization", format!("Bearer {token}")).body(Body::empty());
        let page = app.clone().oneshot(request.expect("req")).await.expect("resp");
        let html = axum::body::to_bytes(page.into_body(), 1 << 20).await.expect("body");
        let html = String::from_utf8_lossy(&html);
        assert!(html.contains("box-7") && html.contains("cam-2: đang truyền"), "{html}");
        assert!(!html.contains("MẤT LIÊN LẠC"), "a box that just reported is online");

        // Silent for 1,106 s with a 30 s heartbeat: offline, its cameras' states no longer vouched for.
        let backdate = "UPDATE device_heartbeats SET received_at = $1";
        let then = (chrono::Utc::now() - chrono::Duration::seconds(1106)).to_rfc3339();
        match &t.url {
            Some(url) => {
                let db = sqlx::PgPool::connect(url).await.expect("db");
                sqlx::query(backdate).bind(&then).execute(&db).await.expect("backdate");
            }
            None => {
                let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", t.dir.path().join("central.db").display()))
                    .await
                    .expect("db");
                sqlx::query(backdate).bind(&then).execute(&db).await.expect("backdate");
            }
        }
        let devices = store.devices().await.expect("devices");
        assert!(devices[0].offline && devices[0].silent_s >= 1106, "{:?}", devices[0]);
        let request = Request::get("/devices").header("authorization", format!("Bearer {token}")).body(Body::empty());
        let page = app.clone().oneshot(request.expect("req")).await.expect("resp");
        let html = axum::body::to_bytes(page.into_body(), 1 << 20).await.expect("body");
        let html = String::from_utf8_lossy(&html);
        assert!(html.contains("MẤT LIÊN LẠC") && html.contains("id=\"offline-count\""), "{html}");
        assert!(html.contains("cam-2: không rõ (lần cuối: streaming)"), "{html}");
        eprintln!("{}: ok", t.backend);
    }
}

/// An upload whose plate votes name `named` pictures, carrying `sent`.
fn upload_with_plate_pictures(named: &[&[u8]], sent: &[&[u8]]) -> EvidenceUpload {
    let mut record = EvidenceRecord::synthetic("box-7", "cam-2", JPEG);
    let votes = named
        .iter()
        .enumerate()
        .map(|(i, crop)| te_types::PlateVote {
            frame_number: 10 + i as u64,
            text: Some("30A-123.45".into()),
            raw: "30A12345".into(),
            confidence: 0.9,
            weight: 0.8,
            crop_sha256: Some(sha256_hex(crop)),
        })
        .collect();
    record.plate = Some(te_types::PlateConsensus { text: Some("30A-123.45".into()), share: 1.0, votes });
    let seal = central_protocol::seal(&record, &device_key());
    let sent: Vec<Vec<u8>> = sent.iter().map(|c| c.to_vec()).collect();
    EvidenceUpload::new(record, seal, JPEG).with_plate_crops(&sent)
}

#[tokio::test]
async fn plate_pictures_are_stored_only_when_they_are_exactly_the_ones_the_record_names() {
    for t in common::stores().await {
        plate_pictures_on(&t.store, t.dir.path()).await;
        eprintln!("{}: ok", t.backend);
    }
}

async fn plate_pictures_on(store: &Arc<CentralStore>, dir: &std::path::Path) {
    let app = app_on(store);
    let (a, b): (&[u8], &[u8]) = (&[0xFF, 0xD8, 0xFF, 0xE0, 1], &[0xFF, 0xD8, 0xFF, 0xE0, 2]);
    let json = |u: &EvidenceUpload| serde_json::to_string(u).expect("json");
    // One missing, one the record does not name, one that is no JPEG: refused, nothing stored.
    for (sent, why) in [
        (vec![a], "was not sent"),
        (vec![a, b, &[0xFF, 0xD8, 0xFF, 0xE0, 3][..]], "does not name"),
        (vec![a, b"GIF89a"], "not a JPEG"),
    ] {
        let (status, body) = post(&app, json(&upload_with_plate_pictures(&[a, b], &sent))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body["error"].as_str().is_some_and(|e| e.contains(why)), "{body}");
    }
    assert_eq!(total(store).await, 0);
    let good = upload_with_plate_pictures(&[a, b], &[b, a]);
    let id = good.record.evidence_id;
    assert_eq!(post(&app, json(&good)).await.0, StatusCode::CREATED);
    assert_eq!(store.plate_crop(id, &sha256_hex(a)).await.expect("read"), Some(a.to_vec()));
    assert_eq!(store.plate_crop(id, "../../central.db").await.expect("read"), None, "only a digest names one");
    // Served to officers (and the fines system), as JPEG; never without a login.
    let reviewer = store.create_token("a-reviewer", "reviewer").await.expect("token");
    let path = format!("/api/v1/evidence/{id}/plates/{}", sha256_hex(b));
    let get = |token: Option<String>| {
        let mut request = Request::get(&path);
        if let Some(t) = token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        app.clone().oneshot(request.body(Body::empty()).expect("request"))
    };
    assert_eq!(get(None).await.expect("response").status(), StatusCode::UNAUTHORIZED);
    let response = get(Some(reviewer)).await.expect("response");
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    assert_eq!(axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body").as_ref(), b);
    // The seal check re-hashes every picture: one replaced behind the service's back is found.
    assert_eq!(store.seal_check(id).await.expect("check").expect("found").plate_crops_ok, Some(true));
    let file = dir.join("media").join(id.to_string()).join(format!("plate-{}.jpg", sha256_hex(a)));
    std::fs::write(&file, [0xFF, 0xD8, 0xFF, 0xE0, 9]).expect("replace");
    assert_eq!(store.seal_check(id).await.expect("check").expect("found").plate_crops_ok, Some(false));
}

#[tokio::test]
async fn hostile_field_values_are_refused_at_ingest_and_nothing_is_stored() {
    let t = common::stores().await.into_iter().next().expect("sqlite");
    let (app, store) = (app_on(&t.store), t.store.clone());
    let far: chrono::DateTime<chrono::Utc> = "+262142-12-31T23:59:59Z".parse().expect("far time");
    type Edit = Box<dyn Fn(&mut EvidenceRecord)>;
    let hostile: Vec<(&str, Edit)> = vec![
        ("detection_score", Box::new(|r| r.detection_score = 1e39_f64 as f32)),
        ("captured_at", Box::new(move |r| r.captured_at = far)),
        ("sequence", Box::new(|r| r.sequence = 1 << 40)),
        ("location", Box::new(|r| r.location = "x".repeat(4 << 20))),
        ("device_id", Box::new(|r| r.device_id = DeviceId::new("box-7\nINFO forged"))),
    ];
    for (field, edit) in hostile {
        let mut record = EvidenceRecord::synthetic("box-7", "cam-2", JPEG);
        edit(&mut record);
        let seal = central_protocol::seal(&record, &device_key());
        let (status, body) =
            post(&app, serde_json::to_string(&EvidenceUpload::new(record, seal, JPEG)).expect("json")).await;
        assert!(status.is_client_error(), "{field}: {status}");
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            assert!(body["error"].as_str().is_some_and(|e| e.contains(field)), "{field}: {body}");
        }
    }
    assert_eq!(total(&store).await, 0);
}

/// Every file under `dir`, as paths relative to it.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out
}

/// The document the service serves passes the OpenAPI 3.1 schema checks (`openapi-spec-validator`, installed
/// by `scripts/setup`), and names every operation a box uses.
#[tokio::test]
async fn the_served_openapi_document_is_valid_openapi_3_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(CentralStore::open(dir.path()).await.expect("SQLite store"));
    let response = app_on(&store)
        .oneshot(Request::get("/api/v1/openapi.json").body(Body::empty()).expect("request"))
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22).await.expect("body");
    let doc: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/evidence"]["post"]["requestBody"].is_object());
    assert!(doc["paths"]["/api/v1/clips/{sha}"]["put"].is_object());
    assert!(doc["webhooks"]["caseApproved"]["post"].is_object());
    assert!(doc["webhooks"]["caseWithdrawn"]["post"].is_object());

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &bytes).expect("write");
    let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.local/venv/bin/openapi-spec-validator");
    assert!(bin.is_file(), "{} is missing: run scripts/setup", bin.display());
    let out = std::process::Command::new(&bin).arg(&file).output().expect("run openapi-spec-validator");
    assert!(
        out.status.success(),
        "the served document is not valid OpenAPI:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
