//! Device health alerts against real stores and a real webhook receiver on 127.0.0.1: a store alarm and an
//! untrusted clock open incidents, a sound heartbeat closes them, silence opens "offline"; each opening and
//! closing is announced once, signed.

use central_server::devices::alerts::{watch, CLOSED, OPENED};
use central_server::export::{sign, Webhook};
use central_server::CentralStore;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

const SECRET: &[u8] = b"alert-secret-0123456789";

fn beat(alarm: Option<&str>, trusted_clock: bool) -> central_protocol::Heartbeat {
    let clock = central_protocol::ClockCheck {
        offset_ms: if trusted_clock { 12 } else { 4200 },
        uncertainty_ms: 15,
        source: "ntp:127.0.0.1:123".into(),
        measured_at: chrono::Utc::now(),
        trusted: trusted_clock,
    };
    // One second: silence of three seconds is "offline", so the test need not wait long.
    common::heartbeat("box-7", alarm, Some(clock), Some(1))
}

/// (event, kind) of each announcement the receiver took, in order.
type Taken = Arc<Mutex<Vec<(String, String)>>>;

async fn receiver() -> (String, Taken) {
    let taken: Taken = Arc::default();
    let app = axum::Router::new().route(
        "/alerts",
        axum::routing::post({
            let taken = taken.clone();
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| async move {
                let signature = headers.get("x-traffic-edge-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
                assert_eq!(signature, sign(SECRET, &body), "signed with the shared secret");
                let event = headers.get("x-traffic-edge-event").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
                assert_eq!(json["event"], event.as_str());
                assert_eq!(json["device_id"], "box-7");
                taken.lock().expect("lock").push((event, json["kind"].as_str().unwrap_or("").to_string()));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/alerts", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, taken)
}

async fn wait_for(taken: &Taken, n: usize, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while taken.lock().expect("lock").len() < n {
        assert!(tokio::time::Instant::now() < deadline, "{what}: {:?}", taken.lock().expect("lock"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_device_incident_is_announced_once_when_it_opens_and_once_when_it_closes() {
    for t in common::stores().await {
        incidents(&t.store).await;
        eprintln!("{}: ok", t.backend);
    }
}

async fn incidents(store: &Arc<CentralStore>) {
    let (url, taken) = receiver().await;
    store.heartbeat(&beat(Some("store quota reached: oldest delivered records pruned"), false)).await.expect("beat");
    let hook = Webhook { url, secret: SECRET.to_vec(), public_url: String::new() };
    let watcher = tokio::spawn(watch(store.clone(), Some(hook), Duration::from_millis(200)));

    wait_for(&taken, 2, "the store alarm and the clock open").await;
    let mut opened = taken.lock().expect("lock").clone();
    opened.sort();
    assert_eq!(opened, [(OPENED.into(), "clock_untrusted".into()), (OPENED.into(), "store_alarm".into())]);

    // The box is sound again: both close, once each.
    store.heartbeat(&beat(None, true)).await.expect("beat");
    wait_for(&taken, 4, "both close").await;
    assert!(taken.lock().expect("lock")[2..].iter().all(|(event, _)| event == CLOSED));

    // Then silence: three missed heartbeats make it offline.
    wait_for(&taken, 5, "offline opens").await;
    assert_eq!(taken.lock().expect("lock")[4], (OPENED.into(), "offline".into()));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(taken.lock().expect("lock").len(), 5, "each incident once: {:?}", taken.lock().expect("lock"));
    watcher.abort();

    let (open, closed) = store.incidents(10).await.expect("incidents");
    assert_eq!(open.iter().map(|i| i.kind.as_str()).collect::<Vec<_>>(), ["offline"]);
    assert_eq!(closed.len(), 2);
    assert!(open[0].detail.starts_with("no heartbeat for"), "{}", open[0].detail);
}
