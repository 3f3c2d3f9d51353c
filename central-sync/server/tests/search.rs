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
                let mut ids: Vec<_> =
                    store.queue(&filter, 100).await.expect("queue").iter().map(|e| e.record.evidence_id).collect();
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
