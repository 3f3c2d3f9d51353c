//! The review workflow against a real SQLite database: login, roles, decisions, the audit chain, and that
//! nothing about a case is readable without logging in.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use central_server::store::QueueFilter;
use central_server::{router, Actor, AppState, CentralStore, Decision, ReviewError, Role};
use common::case;
use std::sync::Arc;
use te_types::EvidenceId;
use tower::ServiceExt;

mod common;

/// Where the tests' browser thinks the service is.
const HOST: &str = "127.0.0.1:8080";
const ORIGIN: &str = "http://127.0.0.1:8080";

/// The CSRF token of the session in `cookie` (`te_session=<secret>`), as the pages carry it.
fn token_of(cookie: &str) -> String {
    central_server::csrf::token(cookie.split_once('=').map(|(_, v)| v).unwrap_or_default())
}

/// A form POST from a logged-in browser on a page of `origin`.
fn form_post(path: &str, cookie: &str, origin: &str, body: String) -> Request<Body> {
    Request::post(path)
        .header(header::HOST, HOST)
        .header(header::ORIGIN, origin)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .expect("req")
}

/// Two officers on a fresh store; the router over it.
async fn setup(store: &Arc<CentralStore>) -> axum::Router {
    let cli = Actor { name: "cli".into(), role: Role::Admin };
    store.add_user("lan.reviewer", "mat-khau-dai-1", "reviewer", &cli).await.expect("user");
    store.add_user("minh.supervisor", "mat-khau-dai-2", "supervisor", &cli).await.expect("user");
    router(AppState::new(store.clone()), 1 << 20)
}

fn reviewer() -> Actor {
    Actor { name: "lan.reviewer".into(), role: Role::Reviewer }
}

fn supervisor() -> Actor {
    Actor { name: "minh.supervisor".into(), role: Role::Supervisor }
}

async fn status_of(store: &CentralStore, id: EvidenceId) -> (String, Option<String>) {
    let entry = store.get(id).await.expect("get").expect("found");
    (entry.review_status.as_str().to_string(), entry.plate().map(str::to_string))
}

#[tokio::test]
async fn approve_reject_correct_and_reopen_follow_the_rules_and_each_is_audited() {
    for t in common::stores().await {
        decisions(&t.store).await;
        eprintln!("{}: ok", t.backend);
    }
}

async fn decisions(store: &Arc<CentralStore>) {
    let _ = setup(store).await;
    let (a, b, c) = (case(store, Some("51F-123.45")).await, case(store, None).await, case(store, None).await);

    store.decide(a, &reviewer(), Decision::Approve { plate: None }).await.expect("approve");
    assert_eq!(status_of(store, a).await, ("approved".into(), Some("51F-123.45".into())));
    // Decided once: a second decision is refused, and only a supervisor reopens.
    assert!(matches!(
        store.decide(a, &reviewer(), Decision::Reject { reason: "x".into() }).await,
        Err(ReviewError::WrongState { .. })
    ));
    assert!(matches!(
        store.decide(a, &reviewer(), Decision::Reopen { reason: "sai".into() }).await,
        Err(ReviewError::Forbidden { .. })
    ));

    // No plate: approval waits for a correction; a correction must be a Vietnamese plate.
    assert!(matches!(store.decide(b, &reviewer(), Decision::Approve { plate: None }).await, Err(ReviewError::NoPlate)));
    assert!(matches!(
        store.decide(b, &reviewer(), Decision::CorrectPlate { plate: "HELLO".into() }).await,
        Err(ReviewError::BadPlate(_))
    ));
    store.decide(b, &reviewer(), Decision::CorrectPlate { plate: "30a99999".into() }).await.expect("correct");
    store.decide(b, &reviewer(), Decision::Approve { plate: None }).await.expect("approve");
    // A plain vehicle pass never goes to the fines system, plate or not; it can still be rejected.
    let pass = common::case_of(store, te_types::EventKind::VehicleDetected, Some("51F-123.45")).await;
    assert!(matches!(
        store.decide(pass, &reviewer(), Decision::Approve { plate: None }).await,
        Err(ReviewError::NotAnOffence)
    ));
    store.decide(pass, &reviewer(), Decision::Reject { reason: "Không có vi phạm".into() }).await.expect("reject");
    assert_eq!(status_of(store, b).await, ("approved".into(), Some("30A-999.99".into())));

    assert!(matches!(
        store.decide(c, &reviewer(), Decision::Reject { reason: "  ".into() }).await,
        Err(ReviewError::ReasonRequired)
    ));
    store.decide(c, &reviewer(), Decision::Reject { reason: "Không có vi phạm".into() }).await.expect("reject");
    store.decide(c, &supervisor(), Decision::Reopen { reason: "xem lại video".into() }).await.expect("reopen");
    assert_eq!(status_of(store, c).await.0, "pending");

    let trail = store.audit_entries(Some(b), 10).await.expect("audit");
    let actions: Vec<&str> = trail.iter().rev().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["correct_plate", "approve"]);
    assert_eq!(trail[1].detail["to"], "30A-999.99");
    assert_eq!(trail[1].actor, "lan.reviewer");
    let chain = store.verify_audit().await.expect("verify");
    assert_eq!(chain.broken_at, None);
    assert!(chain.entries >= 7, "two accounts and five decisions: {chain:?}");
}

#[tokio::test]
async fn the_audit_log_refuses_changes_and_a_forced_change_breaks_the_chain() {
    let t = common::stores().await.into_iter().next().expect("sqlite");
    let (dir, store) = (t.dir, t.store);
    let _ = setup(&store).await;
    let a = case(&store, Some("51F-123.45")).await;
    store.decide(a, &reviewer(), Decision::Approve { plate: None }).await.expect("approve");
    drop(store);
    let db =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("central.db").display())).await.expect("db");
    let update = sqlx::query("UPDATE audit_log SET actor = 'someone-else' WHERE action = 'approve'").execute(&db).await;
    assert!(update.is_err_and(|e| e.to_string().contains("append-only")));
    assert!(sqlx::query("DELETE FROM audit_log").execute(&db).await.is_err());
    // Someone with the database file drops the guard: the chain shows where.
    sqlx::query("DROP TRIGGER audit_log_no_update").execute(&db).await.expect("drop trigger");
    sqlx::query("UPDATE audit_log SET actor = 'someone-else' WHERE action = 'approve'")
        .execute(&db)
        .await
        .expect("forced");
    db.close().await;
    let store = CentralStore::open(dir.path()).await.expect("reopen");
    let chain = store.verify_audit().await.expect("verify");
    let approve_seq = store.audit_entries(Some(a), 1).await.expect("entries")[0].seq;
    assert_eq!(chain.broken_at, Some(approve_seq));
}

async fn get(app: &axum::Router, path: &str, cookie: Option<&str>) -> (StatusCode, String, Option<String>) {
    let mut request = Request::get(path);
    if let Some(c) = cookie {
        request = request.header(header::COOKIE, c);
    }
    let response = app.clone().oneshot(request.body(Body::empty()).expect("req")).await.expect("resp");
    let status = response.status();
    let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, String::from_utf8_lossy(&body).into_owned(), location)
}

async fn login(app: &axum::Router, user: &str, password: &str) -> (StatusCode, Option<String>) {
    login_from(app, "127.0.0.1", user, password).await
}

/// A login as if from `ip` (what the server's connect info gives the handler).
async fn login_from(app: &axum::Router, ip: &str, user: &str, password: &str) -> (StatusCode, Option<String>) {
    let mut request = Request::post("/login")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, ORIGIN)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("username={user}&password={password}&next=%2F")))
        .expect("req");
    let peer: std::net::SocketAddr = format!("{ip}:50000").parse().expect("address");
    request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
    let response = app.clone().oneshot(request).await.expect("resp");
    let cookie = response.headers().get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).map(|c| {
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict"), "{c}");
        c.split(';').next().unwrap_or_default().to_string()
    });
    (response.status(), cookie)
}

#[tokio::test]
async fn nothing_about_a_case_is_shown_without_a_session_and_a_session_shows_the_queue() {
    for t in common::stores().await {
        pages(&t.store).await;
        eprintln!("{}: ok", t.backend);
    }
}

async fn pages(store: &Arc<CentralStore>) {
    let app = setup(store).await;
    let id = case(store, Some("51F-123.45")).await;
    let (status, _, location) = get(&app, "/", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some("/login?next=/"));
    for path in [format!("/api/v1/evidence/{id}/overview.jpg"), "/api/v1/evidence".into(), format!("/evidence/{id}")] {
        let (status, body, _) = get(&app, &path, None).await;
        assert!(matches!(status, StatusCode::UNAUTHORIZED | StatusCode::SEE_OTHER), "{path}: {status}");
        assert!(!body.contains("51F-123.45"), "{path}");
    }
    let (status, _, _) = get(&app, "/", Some("te_session=forged")).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "a forged session is no session");

    assert_eq!(login(&app, "lan.reviewer", "wrong-password").await, (StatusCode::UNAUTHORIZED, None));
    let (status, cookie) = login(&app, "lan.reviewer", "mat-khau-dai-1").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = cookie.expect("session cookie");
    let (status, page, _) = get(&app, "/", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("51F-123.45") && page.contains("lan.reviewer"), "{page}");
    let (status, page, _) = get(&app, &format!("/evidence/{id}"), Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("chữ ký Ed25519 đúng") && page.contains("id=\"approve\""), "{page}");
    // A reviewer does not read the audit log; English on request.
    assert_eq!(get(&app, "/audit", Some(&cookie)).await.0, StatusCode::FORBIDDEN);
    let (_, english, _) = get(&app, "/", Some(&format!("{cookie}; te_lang=en"))).await;
    assert!(english.contains("Review queue"));
    let failed = store.audit_entries(None, 10).await.expect("audit");
    assert!(failed.iter().any(|e| e.action == "login_failed" && e.actor == "lan.reviewer"));
}

#[tokio::test]
async fn repeated_failed_logins_lock_the_account_name_out_from_that_address_for_a_while() {
    for t in common::stores().await {
        let app = setup(&t.store).await;
        // Four failures, then the right password: in, and the count starts again.
        for _ in 0..4 {
            assert_eq!(login(&app, "lan.reviewer", "wrong-password").await.0, StatusCode::UNAUTHORIZED);
        }
        assert_eq!(login(&app, "lan.reviewer", "mat-khau-dai-1").await.0, StatusCode::SEE_OTHER);
        for _ in 0..central_server::accounts::MAX_FAILED_LOGINS {
            assert_eq!(login(&app, "lan.reviewer", "wrong-password").await.0, StatusCode::UNAUTHORIZED);
        }
        // Five in a row: even the right password is refused (429, the password is not checked), and says why.
        let mut request = Request::post("/login")
            .header(header::HOST, HOST)
            .header(header::ORIGIN, ORIGIN)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("username=lan.reviewer&password=mat-khau-dai-1&next=%2F"))
            .expect("req");
        let peer: std::net::SocketAddr = "127.0.0.1:50001".parse().expect("address");
        request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        let response = app.clone().oneshot(request).await.expect("resp");
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(response.headers().get(header::SET_COOKIE).is_none());
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        assert!(String::from_utf8_lossy(&body).contains("15"), "the page says how long");
        // Another account is not affected; the refusals are in the audit log, and the chain holds.
        assert_eq!(login(&app, "minh.supervisor", "mat-khau-dai-2").await.0, StatusCode::SEE_OTHER);
        let entries = t.store.audit_entries(None, 50).await.expect("audit");
        assert!(entries.iter().any(|e| e.action == "login_throttled" && e.actor == "lan.reviewer"));
        assert!(t.store.verify_audit().await.expect("verify").broken_at.is_none());
        // The lockout is per address: the officer at their own desk still gets in (which restarts the counts).
        assert_eq!(login_from(&app, "10.20.0.7", "lan.reviewer", "mat-khau-dai-1").await.0, StatusCode::SEE_OTHER);
        // Guessing spread over many addresses meets a ceiling for the name as a whole.
        let name = Actor { name: "lan.reviewer".into(), role: Role::Reviewer };
        for n in 0..central_server::accounts::MAX_FAILED_LOGINS_PER_NAME {
            let from = serde_json::json!({ "from": format!("198.51.100.{n}") });
            t.store.audit(&name, "login_failed", None, from).await.expect("audit");
        }
        assert_eq!(
            login_from(&app, "10.20.0.7", "lan.reviewer", "mat-khau-dai-1").await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
        eprintln!("{}: ok", t.backend);
    }
}

#[tokio::test]
async fn on_postgresql_the_audit_log_refuses_update_delete_and_truncate() {
    for t in common::stores().await {
        let Some(url) = &t.url else { continue };
        let _ = setup(&t.store).await;
        let db = sqlx::PgPool::connect(url).await.expect("db");
        for sql in ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"] {
            let refused = sqlx::query(sql).execute(&db).await;
            assert!(refused.is_err_and(|e| e.to_string().contains("append-only")), "{sql}");
        }
        assert_eq!(t.store.verify_audit().await.expect("verify").entries, 2);
    }
}

#[tokio::test]
async fn an_admin_disables_enables_and_resets_accounts_and_sessions_end() {
    for t in common::stores().await {
        let app = setup(&t.store).await;
        let store = &t.store;
        let cli = Actor { name: "cli".into(), role: Role::Admin };
        store.add_user("an.admin", "mat-khau-dai-3", "admin", &cli).await.expect("admin");
        let admin = Actor { name: "an.admin".into(), role: Role::Admin };
        let (_, reviewer_cookie) = login(&app, "lan.reviewer", "mat-khau-dai-1").await;
        let reviewer_cookie = reviewer_cookie.expect("session");
        assert_eq!(get(&app, "/admin/users", Some(&reviewer_cookie)).await.0, StatusCode::FORBIDDEN);

        store.set_disabled("lan.reviewer", true, &admin).await.expect("disable");
        assert_eq!(get(&app, "/", Some(&reviewer_cookie)).await.0, StatusCode::SEE_OTHER, "the session ended");
        assert_eq!(login(&app, "lan.reviewer", "mat-khau-dai-1").await.0, StatusCode::UNAUTHORIZED);
        store.set_disabled("lan.reviewer", false, &admin).await.expect("enable");
        store.set_password("lan.reviewer", "mat-khau-moi-1234", &admin).await.expect("reset");
        assert_eq!(login(&app, "lan.reviewer", "mat-khau-dai-1").await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(login(&app, "lan.reviewer", "mat-khau-moi-1234").await.0, StatusCode::SEE_OTHER);

        let (_, admin_cookie) = login(&app, "an.admin", "mat-khau-dai-3").await;
        let admin_cookie = admin_cookie.expect("session");
        let (status, page, _) = get(&app, "/admin/users", Some(&admin_cookie)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("lan.reviewer") && page.contains("minh.supervisor"), "{page}");
        let body = format!("action=disable&username=an.admin&csrf={}", token_of(&admin_cookie));
        let response = app.clone().oneshot(form_post("/admin/users", &admin_cookie, ORIGIN, body)).await.expect("resp");
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "an admin cannot lock themself out");
        let actions: Vec<String> =
            store.audit_entries(None, 50).await.expect("audit").into_iter().map(|e| e.action).collect();
        for action in ["user_disabled", "user_enabled", "password_reset"] {
            assert!(actions.iter().any(|a| a == action), "{action} audited: {actions:?}");
        }
        eprintln!("{}: ok", t.backend);
    }
}

#[tokio::test]
async fn a_stored_row_with_an_infinite_score_or_a_far_future_time_crashes_no_page() {
    let t = common::stores().await.into_iter().next().expect("sqlite");
    let (dir, store) = (t.dir, t.store);
    let _ = setup(&store).await;
    let sane = case(&store, Some("51F-123.45")).await;
    let (infinite, far) = (case(&store, None).await, case(&store, None).await);
    drop(store);
    // Rows as an older service stored them, before ingest checked every field.
    let db =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("central.db").display())).await.expect("db");
    for (id, field, value) in [
        (infinite, "detection_score", serde_json::Value::Null),
        (far, "captured_at", serde_json::json!("+262142-12-31T23:59:59Z")),
    ] {
        let json: String = sqlx::query_scalar("SELECT record_json FROM evidence WHERE evidence_id = $1")
            .bind(id.to_string())
            .fetch_one(&db)
            .await
            .expect("row");
        let mut record: serde_json::Value = serde_json::from_str(&json).expect("json");
        record[field] = value;
        sqlx::query("UPDATE evidence SET record_json = $1 WHERE evidence_id = $2")
            .bind(record.to_string())
            .bind(id.to_string())
            .execute(&db)
            .await
            .expect("update");
    }
    sqlx::query("UPDATE evidence SET captured_at = '+262142-12-31T23:59:59Z' WHERE evidence_id = $1")
        .bind(far.to_string())
        .execute(&db)
        .await
        .expect("update");
    db.close().await;
    let store = Arc::new(CentralStore::open(dir.path()).await.expect("reopen"));
    let app = router(AppState::new(store.clone()), 1 << 20);
    let (_, cookie) = login(&app, "minh.supervisor", "mat-khau-dai-2").await;
    let cookie = cookie.expect("session");
    let (status, page, _) = get(&app, "/", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK, "the queue still opens");
    assert!(page.contains(&sane.to_string()), "and lists the readable case");
    for path in ["/api/v1/evidence", "/audit", "/stats", "/api/v1/open-data/violations", "/devices"] {
        let (status, _, _) = get(&app, path, Some(&cookie)).await;
        assert!(status.is_success(), "{path}: {status}");
    }
    // The far date is shown as it is; the unreadable record is an error page, not a crash.
    assert_eq!(get(&app, &format!("/evidence/{far}"), Some(&cookie)).await.0, StatusCode::OK);
    let (status, _, _) = get(&app, &format!("/evidence/{infinite}"), Some(&cookie)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn a_page_on_another_port_of_the_same_host_cannot_approve_a_case_or_create_an_account() {
    let t = common::stores().await.into_iter().next().expect("sqlite");
    let store = t.store.clone();
    let cli = Actor { name: "cli".into(), role: Role::Admin };
    store.add_user("an.admin", "mat-khau-dai-3", "admin", &cli).await.expect("admin");
    let app = setup(&store).await;
    let id = case(&store, None).await;
    let (_, cookie) = login(&app, "an.admin", "mat-khau-dai-3").await;
    let cookie = cookie.expect("session");
    let token = token_of(&cookie);
    let approve = format!("action=approve&plate=51F-999.99&csrf={token}");
    let add_user = format!("action=add&username=ke.gian&password=mat-khau-dai-9&role=admin&csrf={token}");
    let decide = format!("/evidence/{id}/decide");
    // Another port is another origin, whatever the cookie's SameSite says: refused even with the token.
    for (path, body) in [(decide.as_str(), &approve), ("/admin/users", &add_user)] {
        let response = app.clone().oneshot(form_post(path, &cookie, "http://127.0.0.1:9999", body.clone())).await;
        assert_eq!(response.expect("resp").status(), StatusCode::FORBIDDEN, "{path}");
    }
    // The service's own origin without the token (a forged form cannot know it): refused.
    let no_token = "action=approve&plate=51F-999.99".to_string();
    let response = app.clone().oneshot(form_post(&decide, &cookie, ORIGIN, no_token)).await.expect("resp");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(status_of(&store, id).await.0, "pending", "nothing was decided");
    assert!(store.users().await.expect("users").iter().all(|u| u.username != "ke.gian"), "no account was made");
    // The page's own form carries the token, and the decision goes through.
    let (_, page, _) = get(&app, &decide.replace("/decide", ""), Some(&cookie)).await;
    assert!(page.contains(&format!("name=\"csrf\" value=\"{token}\"")), "the case page's forms carry the token");
    let response = app.clone().oneshot(form_post(&decide, &cookie, ORIGIN, approve)).await.expect("resp");
    assert!(response.status().is_redirection(), "{}", response.status());
    assert_eq!(status_of(&store, id).await, ("approved".into(), Some("51F-999.99".into())));
    // Login itself checks the origin.
    let mut request = Request::post("/login")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, "http://127.0.0.1:9999")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("username=an.admin&password=mat-khau-dai-3&next=%2F"))
        .expect("req");
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo("127.0.0.1:50002".parse::<std::net::SocketAddr>().expect("addr")));
    assert_eq!(app.clone().oneshot(request).await.expect("resp").status(), StatusCode::FORBIDDEN);
    // Every answer carries the security headers.
    let response = app.oneshot(Request::get("/login").body(Body::empty()).expect("req")).await.expect("resp");
    let csp = response.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(response.headers().get("x-content-type-options").map(|v| v.as_bytes()), Some(&b"nosniff"[..]));
}

#[tokio::test]
async fn a_flood_of_failed_logins_adds_a_handful_of_audit_rows_and_the_audit_view_checks_only_new_entries() {
    let t = common::stores().await.into_iter().next().expect("sqlite");
    let store = t.store.clone();
    let _ = setup(&store).await;
    let before = store.verify_audit().await.expect("verify").entries;
    let attacker: std::net::IpAddr = "198.51.100.7".parse().expect("ip");
    let mut refused = 0;
    for i in 0..400 {
        // One name guessed, then names sprayed: both are paced per address.
        let name = if i < 200 { "lan.reviewer".to_string() } else { format!("user{i}") };
        match store.login(&name, "wrong-password", Some(attacker)).await {
            Ok(None) => {}
            Err(central_server::accounts::AccountError::Throttled { .. }) => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    let after = store.verify_audit_since_last().await.expect("verify");
    assert!(refused >= 360, "{refused} of 400 refused");
    let added = after.entries - before;
    assert!(added <= 40, "400 failed logins added {added} audit rows");
    let actions: Vec<String> =
        store.audit_entries(None, 100).await.expect("audit").into_iter().map(|e| e.action).collect();
    assert_eq!(actions.iter().filter(|a| *a == "login_rate_limited").count(), 1, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| *a == "login_throttled").count(), 1, "{actions:?}");
    assert_eq!(after.broken_at, None);
    // The officer at another address still logs in.
    let desk: std::net::IpAddr = "10.20.0.9".parse().expect("ip");
    assert!(store.login("minh.supervisor", "mat-khau-dai-2", Some(desk)).await.expect("login").is_some());
    assert_eq!(store.verify_audit_since_last().await.expect("verify").entries, after.entries + 1);
}

#[tokio::test]
async fn a_login_under_an_unknown_name_costs_a_password_hash_like_a_known_one() {
    let t = common::stores().await.into_iter().next().expect("sqlite");
    let store = t.store.clone();
    let _ = setup(&store).await;
    let time = |name: &'static str, n: u8| {
        let store = store.clone();
        async move {
            let from: std::net::IpAddr = format!("10.9.0.{n}").parse().expect("ip");
            let started = std::time::Instant::now();
            let _ = store.login(name, "wrong-password", Some(from)).await;
            started.elapsed()
        }
    };
    let _ = time("warm-up", 1).await; // the unknown-name hash is made once
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for n in 0..3 {
        known.push(time("lan.reviewer", 10 + n).await);
        unknown.push(time("khong.ton.tai", 20 + n).await);
    }
    known.sort();
    unknown.sort();
    // Both run one Argon2 verification; without it the unknown name answered ~20x faster.
    assert!(unknown[1] * 3 >= known[1], "unknown {unknown:?} vs known {known:?}");
}

/// Two officers down the same queue: an open case shows who has it, "next" passes it by, a decision moves on to
/// the next pending case (oldest first) and frees its claim; the last decision leads back to the queue.
#[tokio::test]
async fn an_open_case_is_claimed_next_passes_it_by_and_each_decision_opens_the_next_pending_case() {
    for t in common::stores().await {
        claims(&t.store).await;
        eprintln!("{}: ok", t.backend);
    }
}

async fn claims(store: &Arc<CentralStore>) {
    let app = setup(store).await;
    let a = case(store, Some("51F-123.45")).await;
    let b = case(store, Some("51F-123.46")).await;
    let c = case(store, Some("51F-123.47")).await;
    // The store: a claim is renewed by its officer and shown to anyone else.
    assert_eq!(store.claim(a, "lan.reviewer").await.expect("claim"), None);
    assert_eq!(store.claim(a, "lan.reviewer").await.expect("renew"), None);
    let held = store.claim(a, "minh.supervisor").await.expect("claim").expect("lan's claim");
    assert_eq!(held.officer, "lan.reviewer");
    // From c, minh's "next" wraps round past lan's open case a to b; lan's own claim does not hide a from her.
    let for_minh = store.neighbours(c, "minh.supervisor", &QueueFilter::default()).await.expect("neighbours");
    assert_eq!((for_minh.previous, for_minh.next), (Some(b), Some(b)));
    let for_lan = store.neighbours(c, "lan.reviewer", &QueueFilter::default()).await.expect("neighbours");
    assert_eq!((for_lan.previous, for_lan.next), (Some(b), Some(a)));
    // Within the queue's filters: from a, searching for part of c's plate, next is c (b passed over).
    let searched = QueueFilter { plate: "123.47".into(), status: "approved".into(), ..QueueFilter::default() };
    let within = store.neighbours(a, "lan.reviewer", &searched).await.expect("neighbours");
    assert_eq!((within.previous, within.next), (None, Some(c)), "the status filter aside: always pending");

    // The pages: minh sees that lan has a open.
    let (_, lan) = login(&app, "lan.reviewer", "mat-khau-dai-1").await;
    let (_, minh) = login(&app, "minh.supervisor", "mat-khau-dai-2").await;
    let (lan, minh) = (lan.expect("session"), minh.expect("session"));
    let (_, page, _) = get(&app, &format!("/evidence/{a}"), Some(&lan)).await;
    assert!(!page.contains("id=\"claimed\"") && page.contains(&format!("id=\"next-case\" href=\"/evidence/{b}\"")));
    let (_, page, _) = get(&app, &format!("/evidence/{a}"), Some(&minh)).await;
    assert!(page.contains("id=\"claimed\"") && page.contains("<b>lan.reviewer</b>"), "{page}");
    let (_, page, _) = get(&app, &format!("/evidence/{a}?q=plate%3D123.47"), Some(&lan)).await;
    assert!(page.contains(&format!("id=\"next-case\" href=\"/evidence/{c}?q=plate%3D123.47\"")), "{page}");
    assert!(page.contains("name=\"q\" value=\"plate=123.47\""), "the decision forms carry the queue's filters");

    // Each decision opens the next pending case, and says what was done to which case.
    let token = token_of(&lan);
    for (id, next) in
        [(a, format!("/evidence/{b}?done=approve&decided={a}")), (b, format!("/evidence/{c}?done=approve&decided={b}"))]
    {
        let body = format!("action=approve&csrf={token}");
        let response = app.clone().oneshot(form_post(&format!("/evidence/{id}/decide"), &lan, ORIGIN, body)).await;
        let response = response.expect("resp");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()), Some(next.as_str()));
    }
    let (_, page, _) = get(&app, &format!("/evidence/{c}?done=approve&decided={b}"), Some(&lan)).await;
    assert!(page.contains("Đã duyệt") && page.contains(&format!("id=\"decided-case\" href=\"/evidence/{b}\"")));
    // A decision frees the case: minh may claim a now.
    assert_eq!(store.claim(a, "minh.supervisor").await.expect("claim"), None);
    // Correcting a plate stays on the case; the last decision leads to the (empty) queue.
    let body = format!("action=plate&plate=51F-123.48&csrf={token}");
    let response = app.clone().oneshot(form_post(&format!("/evidence/{c}/decide"), &lan, ORIGIN, body)).await;
    let location =
        response.expect("resp").headers().get(header::LOCATION).map(|v| v.to_str().unwrap_or("").to_string());
    assert_eq!(location, Some(format!("/evidence/{c}?done=plate")));
    let body = format!("action=reject&reason=Kh%C3%B4ng+c%C3%B3+vi+ph%E1%BA%A1m&csrf={token}");
    let response = app.clone().oneshot(form_post(&format!("/evidence/{c}/decide"), &lan, ORIGIN, body)).await;
    let location =
        response.expect("resp").headers().get(header::LOCATION).map(|v| v.to_str().unwrap_or("").to_string());
    assert_eq!(location.as_deref(), Some("/"));
    // A hostile `decided` is not linked.
    let (status, page, _) =
        get(&app, &format!("/evidence/{c}?done=%3Cb%3E&decided=javascript:alert(1)"), Some(&lan)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("decided-case") && !page.contains("<b>&"), "{page}");
}

/// Refusals read in the page's language: Vietnamese by default, English on request.
#[tokio::test]
async fn a_refused_decision_is_explained_in_the_officers_language() {
    let t = common::stores().await.into_iter().next().expect("sqlite");
    let app = setup(&t.store).await;
    let id = case(&t.store, None).await;
    let (_, cookie) = login(&app, "lan.reviewer", "mat-khau-dai-1").await;
    let cookie = cookie.expect("session");
    let body = format!("action=approve&csrf={}", token_of(&cookie));
    for (lang, want) in [("vi", "hãy sửa biển số trước"), ("en", "correct the plate first")] {
        let cookies = format!("{cookie}; te_lang={lang}");
        let response =
            app.clone().oneshot(form_post(&format!("/evidence/{id}/decide"), &cookies, ORIGIN, body.clone()));
        let response = response.await.expect("resp");
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let page = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        assert!(String::from_utf8_lossy(&page).contains(want), "{lang}");
    }
}

/// The case page's script is served under its content hash, cached for good, and the page points at it.
#[tokio::test]
async fn the_case_page_script_is_served_under_its_hash_and_unknown_static_names_are_not_found() {
    let t = common::stores().await.into_iter().next().expect("sqlite");
    let app = setup(&t.store).await;
    let id = case(&t.store, Some("51F-123.45")).await;
    let (_, cookie) = login(&app, "lan.reviewer", "mat-khau-dai-1").await;
    let (_, page, _) = get(&app, &format!("/evidence/{id}"), Some(&cookie.expect("session"))).await;
    let src = page.split("<script src=\"").nth(1).and_then(|s| s.split('"').next()).expect("a script");
    let response = app.clone().oneshot(Request::get(src).body(Body::empty()).expect("req")).await.expect("resp");
    assert_eq!(response.status(), StatusCode::OK);
    let cache = response.headers().get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(cache.contains("immutable"), "{cache}");
    for other in ["/static/review.js", "/static/..%2Fapp.rs", "/static/review-000000000000.js"] {
        assert_eq!(get(&app, other, None).await.0, StatusCode::NOT_FOUND, "{other}");
    }
}

/// Bulk reject from the queue: each picked pending case is rejected with the one reason and its own audit
/// entry; a case decided meanwhile is left as it is and counted; hostile forms are refused and change nothing.
#[tokio::test]
async fn bulk_reject_rejects_each_picked_pending_case_once_and_leaves_decided_ones_as_they_are() {
    for t in common::stores().await {
        bulk(&t.store).await;
        eprintln!("{}: ok", t.backend);
    }
}

async fn bulk(store: &Arc<CentralStore>) {
    let app = setup(store).await;
    let (a, b, c) = (case(store, None).await, case(store, None).await, case(store, Some("51F-123.45")).await);
    store.decide(c, &supervisor(), Decision::Approve { plate: None }).await.expect("approve");
    let (_, cookie) = login(&app, "lan.reviewer", "mat-khau-dai-1").await;
    let cookie = cookie.expect("session");
    let token = token_of(&cookie);
    let (_, queue, _) = get(&app, "/?status=", Some(&cookie)).await;
    assert_eq!(queue.matches("form=\"bulk-form\"").count(), 2, "a box to pick each pending case, none for c");

    for hostile in
        [format!("id=..%2F..%2Fetc&reason=x&csrf={token}"), format!("id={a}&csrf={token}"), format!("csrf={token}")]
    {
        let response = app.clone().oneshot(form_post("/bulk/reject", &cookie, ORIGIN, hostile.clone())).await;
        assert_eq!(response.expect("resp").status(), StatusCode::UNPROCESSABLE_ENTITY, "{hostile}");
    }
    assert_eq!(status_of(store, a).await.0, "pending", "a refused form decides nothing");

    let body = format!("id={a}&id={b}&id={c}&id={a}&reason=Kh%C3%B4ng+c%C3%B3+vi+ph%E1%BA%A1m&note=&csrf={token}");
    let response = app.clone().oneshot(form_post("/bulk/reject", &cookie, ORIGIN, body)).await.expect("resp");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    assert_eq!(location.as_deref(), Some("/?status=pending&rejected=2&skipped=1"), "no filters: the pending queue");
    for id in [a, b] {
        assert_eq!(status_of(store, id).await.0, "rejected");
        let entries = store.audit_entries(Some(id), 10).await.expect("audit");
        assert_eq!(entries.iter().filter(|e| e.action == "reject").count(), 1, "one audit entry per case");
        assert_eq!(entries[0].detail["reason"], "Không có vi phạm");
    }
    assert_eq!(status_of(store, c).await.0, "approved", "a decided case is left as it is");
    let (_, page, _) = get(&app, &location.expect("location"), Some(&cookie)).await;
    assert!(page.contains("Đã loại bỏ 2 hồ sơ") && page.contains("1 hồ sơ đã được quyết định"), "{page}");
    // Counts that are not numbers are ignored, not an error.
    let (status, page, _) = get(&app, "/?status=pending&rejected=%3Cb%3E", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("id=\"notice\""));
}

/// The queue shows a thumbnail made once from the overview: 320 pixels wide, a fraction of the overview's bytes,
/// kept for the next request and cached by the browser; an overview that does not decode is sent whole.
#[tokio::test]
async fn the_queue_thumbnail_is_made_once_from_the_overview_and_is_a_fraction_of_its_size() {
    let t = common::stores().await.into_iter().next().expect("sqlite");
    let app = setup(&t.store).await;
    let picture = image::RgbImage::from_fn(1280, 720, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x + y) % 239) as u8])
    });
    let mut overview = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut overview, 90).encode_image(&picture).expect("jpeg");
    let id = common::case_with(&t.store, te_types::EventKind::RedLight, None, &overview).await;
    let broken = case(&t.store, None).await;
    let (_, cookie) = login(&app, "lan.reviewer", "mat-khau-dai-1").await;
    let cookie = cookie.expect("session");
    let (_, queue, _) = get(&app, "/", Some(&cookie)).await;
    assert!(queue.contains(&format!("/api/v1/evidence/{id}/thumb.jpg")) && !queue.contains("overview.jpg"));

    let fetch = |id: EvidenceId| {
        let (app, cookie) = (app.clone(), cookie.clone());
        async move {
            let request = Request::get(format!("/api/v1/evidence/{id}/thumb.jpg")).header(header::COOKIE, cookie);
            let response = app.oneshot(request.body(Body::empty()).expect("req")).await.expect("resp");
            let cache = response.headers().get(header::CACHE_CONTROL).map(|v| v.to_str().unwrap_or("").to_string());
            (response.status(), cache, axum::body::to_bytes(response.into_body(), 1 << 24).await.expect("body"))
        }
    };
    let (status, cache, thumb) = fetch(id).await;
    assert_eq!(status, StatusCode::OK);
    assert!(cache.unwrap_or_default().contains("private"), "people and plates are not for shared caches");
    let decoded = image::load_from_memory(&thumb).expect("a JPEG");
    assert_eq!((decoded.width(), decoded.height()), (320, 180));
    assert!(thumb.len() * 8 < overview.len(), "{} bytes of {}", thumb.len(), overview.len());
    assert_eq!(fetch(id).await.2, thumb, "kept, not made again differently");
    let (status, _, whole) = fetch(broken).await;
    assert_eq!((status, &whole[..]), (StatusCode::OK, common::JPEG));
    // Without a session: nothing.
    let response =
        app.clone().oneshot(Request::get(format!("/api/v1/evidence/{id}/thumb.jpg")).body(Body::empty()).expect("req"));
    assert!(matches!(response.await.expect("resp").status(), StatusCode::UNAUTHORIZED | StatusCode::SEE_OTHER));
}

/// The violation notice of an approved offence: an A4 PDF in Vietnamese with the real overview and plate
/// picture, whose text (read back by poppler's pdftotext) holds the plate, offence, seal, approver and the
/// address to verify it; rendered to PNG (pdftoppm) for a look. A pending case has none.
#[tokio::test]
async fn an_approved_offence_has_a_printable_vietnamese_notice_with_its_pictures_and_seal() {
    let t = common::stores().await.into_iter().next().expect("sqlite");
    let app = setup(&t.store).await;
    let shared = std::env::var_os("TE_SHARED_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let photo = std::fs::read(shared.join("data/vn_scenes/1.jpg")).expect("a real street photograph");
    let plate_picture = std::fs::read(shared.join("data/vn_plates/images/10xemay1217.jpg")).expect("a plate picture");
    let vote = te_types::PlateVote {
        frame_number: 40,
        text: Some("59-L2/149.99".into()),
        raw: "59L214999".into(),
        confidence: 0.97,
        weight: 0.9,
        crop_sha256: Some(central_protocol::sha256_hex(&plate_picture)),
    };
    let violation = te_types::Violation {
        kind: te_types::ViolationKind::RedLight,
        track: te_types::TrackId(7),
        rule: "Vạch dừng hướng Bắc".into(),
        at: chrono::Utc::now(),
        moments: Vec::new(),
        signal: None,
        red_for_s: Some(17.5),
        speed_kmh: None,
        limit_kmh: None,
        dwell_s: None,
        certified: true,
        summary: "crossed \"Vạch dừng hướng Bắc\" 17.5 s after the light turned red".into(),
    };
    let record = central_protocol::EvidenceRecord {
        kind: te_types::EventKind::RedLight,
        plate: Some(te_types::PlateConsensus { text: Some("59-L2/149.99".into()), share: 1.0, votes: vec![vote] }),
        violation: Some(violation),
        ..central_protocol::EvidenceRecord::synthetic("box-1", "nga-tu-1", &photo)
    };
    let seal = central_protocol::seal(&record, &central_protocol::SigningKey::from_bytes(&[5u8; 32]));
    let upload = central_protocol::EvidenceUpload::new(record, seal, &photo).with_plate_crops(&[plate_picture]);
    let overview = upload.verified_overview(chrono::Utc::now()).expect("overview");
    let crops = upload.verified_plate_crops().expect("crops");
    t.store.ingest(&upload.record, &upload.seal, &overview, None, &crops).await.expect("ingest");
    let id = upload.record.evidence_id;

    let (_, cookie) = login(&app, "lan.reviewer", "mat-khau-dai-1").await;
    let cookie = cookie.expect("session");
    let fetch = |id: EvidenceId| {
        let (app, cookie) = (app.clone(), cookie.clone());
        async move {
            let request = Request::get(format!("/api/v1/evidence/{id}/notice.pdf")).header(header::COOKIE, cookie);
            let response = app.oneshot(request.body(Body::empty()).expect("req")).await.expect("resp");
            let kind = response.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("").to_string());
            (response.status(), kind, axum::body::to_bytes(response.into_body(), 1 << 26).await.expect("body"))
        }
    };
    assert_eq!(fetch(id).await.0, StatusCode::CONFLICT, "a pending case has no notice");
    assert_eq!(fetch(EvidenceId::new()).await.0, StatusCode::NOT_FOUND);
    t.store.decide(id, &reviewer(), Decision::Approve { plate: None }).await.expect("approve");
    let (_, page, _) = get(&app, &format!("/evidence/{id}"), Some(&cookie)).await;
    assert!(page.contains(&format!("id=\"notice-pdf\" href=\"/api/v1/evidence/{id}/notice.pdf\"")));

    let (status, kind, pdf) = fetch(id).await;
    assert_eq!((status, kind.as_deref()), (StatusCode::OK, Some("application/pdf")));
    assert!(pdf.starts_with(b"%PDF-"));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notice.pdf");
    std::fs::write(&path, &pdf).expect("write");
    let text = std::process::Command::new("pdftotext")
        .args(["-layout", path.to_str().expect("path"), "-"])
        .output()
        .expect("pdftotext (Debian poppler-utils; scripts/setup installs it)");
    let text = String::from_utf8_lossy(&text.stdout);
    let record_sha = &upload.seal.record_sha256;
    let wanted = ["THÔNG BÁO VI PHẠM", "59-L2/149.99", "Vượt đèn đỏ", "Vạch dừng hướng Bắc", "đèn đỏ đã bật 17.5 giây"];
    for want in wanted.iter().copied().chain(["lan.reviewer", "Thông tư 73/2024/TT-BCA", &id.to_string()]) {
        assert!(text.contains(want), "{want:?} missing from the notice:\n{text}");
    }
    assert!(text.replace(['\n', ' '], "").contains(record_sha.as_str()), "the seal's hash, whole");
    assert!(!text.contains("after the light turned red"), "the box's English summary stays out of the notice");
    // One A4 page, drawn to PNG for a look (kept beside the UI screenshots).
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots");
    std::fs::create_dir_all(&out).expect("screenshot folder");
    let drawn = std::process::Command::new("pdftoppm")
        .args(["-png", "-r", "80", "-singlefile", path.to_str().expect("path")])
        .arg(out.join("notice"))
        .status()
        .expect("pdftoppm");
    assert!(drawn.success());
    let png = image::open(out.join("notice.png")).expect("a PNG");
    assert_eq!((png.width(), png.height()), (662, 936), "one A4 page (595 x 842 pt) at 80 dpi");
}

/// The devices page lists the open incidents in Vietnamese, with the box's own alarm text escaped.
#[tokio::test]
async fn the_devices_page_lists_open_incidents_and_escapes_the_boxs_alarm_text() {
    let t = common::stores().await.into_iter().next().expect("sqlite");
    let app = setup(&t.store).await;
    let beat = common::heartbeat("box-9", Some("<script>alert(1)</script> quota"), None, Some(30));
    t.store.heartbeat(&beat).await.expect("beat");
    assert_eq!(t.store.review_device_health().await.expect("review"), (1, 0));
    assert_eq!(t.store.review_device_health().await.expect("again"), (0, 0), "once per incident");
    let (_, cookie) = login(&app, "lan.reviewer", "mat-khau-dai-1").await;
    let (status, page, _) = get(&app, "/devices", Some(&cookie.expect("session"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("class=\"incident open\"") && page.contains("Cảnh báo bộ lưu trữ"), "{page}");
    assert!(!page.contains("<script>alert(1)</script>") && page.contains("&#60;script&#62;"), "escaped: {page}");
}
