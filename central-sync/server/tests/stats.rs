//! Open data (counts, no plates) and the plate-accuracy self-audit fed by reviewers' corrections.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use central_server::{router, AppState, CentralStore, Decision};
use common::{case, officer};
use std::sync::Arc;
use tower::ServiceExt;

mod common;

#[tokio::test]
async fn corrections_become_an_accuracy_figure_and_open_data_carries_no_plate() {
    for t in common::stores().await {
        one_backend(&t.store, t.dir.path()).await;
        eprintln!("{}: ok", t.backend);
    }
}

async fn one_backend(store: &Arc<CentralStore>, _dir: &std::path::Path) {
    let store = store.clone();
    let app = router(AppState::new(store.clone()), 1 << 20);
    let (a, b, c) =
        (case(&store, Some("51F-123.45")).await, case(&store, Some("51F-123.46")).await, case(&store, None).await);
    store.decide(a, &officer(), Decision::Approve { plate: None }).await.expect("approve as read");
    store.decide(b, &officer(), Decision::CorrectPlate { plate: "51F-123.48".into() }).await.expect("correct");
    store.decide(b, &officer(), Decision::Approve { plate: None }).await.expect("approve corrected");
    store.decide(c, &officer(), Decision::Approve { plate: Some("30A-999.99".into()) }).await.expect("approve typed");
    let _pending = case(&store, Some("29A-111.22")).await;

    let audit = store.plate_accuracy().await.expect("accuracy");
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!((audit[0].reviewed, audit[0].correct), (3, 1), "only the first was read right");
    assert_eq!(audit[0].meets_target, None, "three cases are too few to judge");
    assert!(audit[0].target == 0.93 || audit[0].target == 0.80);

    let response = app.clone().oneshot(Request::get("/api/v1/open-data/violations").body(Body::empty()).expect("req"));
    let response = response.await.expect("resp");
    assert_eq!(response.status(), StatusCode::OK, "open data needs no login");
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    let text = String::from_utf8_lossy(&body);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text).expect("json");
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0]["recorded"].as_u64(), rows[0]["approved"].as_u64()), (Some(4), Some(3)));
    assert_eq!(rows[0]["kind"], "red_light");
    for plate in ["51F", "30A", "29A"] {
        assert!(!text.contains(plate), "no plate in open data: {text}");
    }
}
