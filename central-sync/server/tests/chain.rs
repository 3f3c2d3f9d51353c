//! Each device's hash chain as received: links verified, gaps (records never received) and broken links found,
//! on both SQL backends.

use central_protocol::{EvidenceRecord, EvidenceUpload};
use central_server::chain::Link;
use central_server::CentralStore;

mod common;

async fn store_record(store: &CentralStore, sequence: u64, previous: &str) -> (te_types::EvidenceId, String) {
    let record = EvidenceRecord {
        sequence,
        previous_record_sha256: previous.to_string(),
        ..EvidenceRecord::synthetic("box-1", "nga-tu-1", common::JPEG)
    };
    let seal = central_protocol::seal(&record, &central_protocol::SigningKey::from_bytes(&[5u8; 32]));
    let upload = EvidenceUpload::new(record, seal, common::JPEG);
    // Straight into the store: these records model what may already be stored, not what ingest now takes.
    store.ingest(&upload.record, &upload.seal, common::JPEG, None, &[]).await.expect("ingest");
    (upload.record.evidence_id, upload.seal.record_sha256)
}

#[tokio::test]
async fn links_gaps_and_breaks_in_a_devices_chain_are_found() {
    for t in common::stores().await {
        let store = &t.store;
        let (first, h1) = store_record(store, 1, "").await;
        let (second, _) = store_record(store, 2, &h1).await;
        let (third, _) = store_record(store, 3, "not-the-hash-of-record-2").await;
        let (fifth, _) = store_record(store, 5, "whatever").await;
        assert_eq!(store.link(first).await.expect("link"), Link::First);
        assert_eq!(store.link(second).await.expect("link"), Link::Verified);
        assert_eq!(store.link(third).await.expect("link"), Link::Broken);
        assert_eq!(store.link(fifth).await.expect("link"), Link::PredecessorMissing);
        let chains = store.chains().await.expect("chains");
        assert_eq!(chains.len(), 1, "{}", t.backend);
        let c = &chains[0];
        assert_eq!((c.records, c.highest), (4, 5));
        assert_eq!(c.missing, vec![(4, 4)], "record 4 never arrived");
        assert_eq!(c.broken, vec![3]);
        eprintln!("{}: ok", t.backend);
    }
}

#[tokio::test]
async fn a_sequence_of_2_pow_40_costs_chain_verify_one_gap_entry_not_terabytes() {
    let t = common::stores().await.into_iter().next().expect("sqlite");
    let (_, h1) = store_record(&t.store, 1, "").await;
    store_record(&t.store, 1 << 40, &h1).await;
    let chains = t.store.chains().await.expect("chains");
    assert_eq!(chains[0].missing, vec![(2, (1 << 40) - 1)]);
    assert_eq!(chains[0].missing_count(), (1 << 40) - 2);
}
