//! Finding a case by its plate: the queue page and `GET /api/v1/evidence?plate=` take part of a plate written any
//! way, on both databases.

use central_server::{Decision, QueueFilter};
use common::{case, officer};

mod common;

#[tokio::test]
async fn a_case_is_found_by_part_of_its_plate_written_any_way_and_by_its_corrected_plate() {
    for t in common::stores().await {
        let store = &t.store;
        let a = case(store, Some("51F-123.45")).await;
        let b = case(store, Some("59-U1/729.79")).await;
        let c = case(store, None).await;
        let found = |plate: &str| {
            let filter = QueueFilter { plate: plate.into(), ..Default::default() };
            async move {
                let mut ids: Vec<_> = store
                    .queue(&filter, central_server::store::QueueOrder::Newest, 100, 0)
                    .await
                    .expect("queue")
                    .iter()
                    .map(|e| e.record.evidence_id)
                    .collect();
                ids.sort();
                ids
            }
        };
        for (query, want) in [("51f12345", vec![a]), ("123.45", vec![a]), ("u1 729", vec![b]), ("51F-", vec![a])] {
            assert_eq!(found(query).await, want, "{}: {query:?}", t.backend);
        }
        let mut all = vec![a, b, c];
        all.sort();
        assert_eq!(found("").await, all, "{}: no plate, no filter", t.backend);
        assert_eq!(found("%_").await, all, "{}: wildcards are no plate characters", t.backend);
        assert!(found("30A").await.is_empty(), "{}", t.backend);
        store.decide(b, &officer(), Decision::CorrectPlate { plate: "30A-999.99".into() }).await.expect("correct");
        assert_eq!(found("30a999").await, vec![b], "{}: the corrected plate is the one searched", t.backend);
        assert!(found("729.79").await.is_empty(), "{}: the box's reading no longer matches", t.backend);
    }
}

/// #24: the queue showed the newest 300 cases and nothing else, so past 300 the cases nearest their owner
/// deadline disappeared. Now: oldest first by default (nearest deadline), pages of `per_page`, the true count,
/// links to the neighbouring pages that keep the filters; `order=newest` switches.
#[tokio::test]
async fn the_queue_pages_through_every_case_oldest_deadline_first_with_the_true_count() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;
    for t in common::stores().await {
        let store = t.store.clone();
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(case(&store, Some(&format!("51F-123.4{i}"))).await);
        }
        let app = central_server::router(central_server::AppState::new(store.clone()), 1 << 20);
        let token = store.create_token("tests", "reviewer").await.expect("token");
        let page = |path: String| {
            let app = app.clone();
            let token = token.clone();
            async move {
                let request = Request::get(path).header("authorization", format!("Bearer {token}")).body(Body::empty());
                let response = app.oneshot(request.expect("req")).await.expect("resp");
                let html = axum::body::to_bytes(response.into_body(), 1 << 22).await.expect("body");
                String::from_utf8_lossy(&html).into_owned()
            }
        };
        let shown = |html: &str| -> Vec<String> {
            html.split("data-id=\"").skip(1).filter_map(|s| s.split('"').next()).map(str::to_string).collect()
        };
        let first = page("/?status=pending&per_page=2".into()).await;
        assert_eq!(shown(&first), [ids[0].to_string(), ids[1].to_string()], "{}: oldest first", t.backend);
        assert!(first.contains("<span id=\"matching\">5</span>") && first.contains("1/3"), "{}: {first}", t.backend);
        assert!(!first.contains("id=\"previous-page\""));
        let next = first.split("id=\"next-page\" href=\"").nth(1).and_then(|s| s.split('"').next()).expect("next link");
        // As a browser reads the attribute: the template escaped the ampersands.
        let next = next.replace("&#38;", "&").replace("&amp;", "&");
        assert!(next.contains("status=pending") && next.contains("page=2"), "{next}");
        let second = page(next).await;
        assert_eq!(shown(&second), [ids[2].to_string(), ids[3].to_string()], "{}", t.backend);
        let last = page("/?status=pending&per_page=2&page=3".into()).await;
        assert_eq!(shown(&last), [ids[4].to_string()], "{}: the last page holds the rest", t.backend);
        assert!(last.contains("5–5 / <span id=\"matching\">5</span>"), "{}: {last}", t.backend);
        let newest = page("/?status=pending&per_page=2&order=newest".into()).await;
        assert_eq!(shown(&newest), [ids[4].to_string(), ids[3].to_string()], "{}: switched", t.backend);
    }
}
