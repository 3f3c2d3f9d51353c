//! The SQL backends every API test runs against: SQLite in a temporary folder, and PostgreSQL in a schema of
//! its own when `TE_TEST_POSTGRES_URL` names a server (`scripts/test` starts one on 127.0.0.1 and sets it).

#![allow(dead_code)]

use central_server::CentralStore;
use std::sync::Arc;

pub struct TestStore {
    pub backend: &'static str,
    /// Media and clips (and the SQLite file) live here.
    pub dir: tempfile::TempDir,
    pub store: Arc<CentralStore>,
    /// The PostgreSQL URL with this test's schema, for tests that go behind the store's back.
    pub url: Option<String>,
}

/// One fresh, migrated store per backend.
pub async fn stores() -> Vec<TestStore> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(CentralStore::open(dir.path()).await.expect("SQLite store"));
    let mut all = vec![TestStore { backend: "sqlite", dir, store, url: None }];
    match std::env::var("TE_TEST_POSTGRES_URL") {
        Ok(base) => {
            let schema = format!("te_{}", te_types::EvidenceId::new().to_string().to_lowercase());
            let admin = sqlx::PgPool::connect(&base).await.expect("PostgreSQL at TE_TEST_POSTGRES_URL");
            sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&admin).await.expect("create schema");
            admin.close().await;
            let join = if base.contains('?') { '&' } else { '?' };
            let url = format!("{base}{join}options=-c%20search_path%3D{schema}");
            let dir = tempfile::tempdir().expect("tempdir");
            let store = CentralStore::open_with(Some(&url), dir.path()).await.expect("PostgreSQL store");
            all.push(TestStore { backend: "postgres", dir, store: Arc::new(store), url: Some(url) });
        }
        Err(_) => eprintln!("TE_TEST_POSTGRES_URL is not set: PostgreSQL skipped (scripts/test sets it)"),
    }
    all
}

pub const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F'];

/// Stores one sealed red-light record from box-1 (nga-tu-1) with the box's plate reading `plate`.
pub async fn case(store: &CentralStore, plate: Option<&str>) -> te_types::EvidenceId {
    case_of(store, te_types::EventKind::RedLight, plate).await
}

/// As [`case`], of `kind`.
pub async fn case_of(store: &CentralStore, kind: te_types::EventKind, plate: Option<&str>) -> te_types::EvidenceId {
    case_with(store, kind, plate, JPEG).await
}

/// As [`case_of`], with `overview` as its overview picture.
pub async fn case_with(
    store: &CentralStore,
    kind: te_types::EventKind,
    plate: Option<&str>,
    overview: &[u8],
) -> te_types::EvidenceId {
    let record = central_protocol::EvidenceRecord {
        kind,
        plate: plate.map(|p| te_types::PlateConsensus { text: Some(p.into()), share: 1.0, votes: vec![] }),
        ..central_protocol::EvidenceRecord::synthetic("box-1", "nga-tu-1", overview)
    };
    let seal = central_protocol::seal(&record, &central_protocol::SigningKey::from_bytes(&[5u8; 32]));
    let upload = central_protocol::EvidenceUpload::new(record, seal, overview);
    let jpeg = upload.verified_overview(chrono::Utc::now()).expect("overview");
    store.ingest(&upload.record, &upload.seal, &jpeg, None, &[]).await.expect("ingest");
    upload.record.evidence_id
}

/// A reviewer, as the decisions see them.
pub fn officer() -> central_server::Actor {
    central_server::Actor { name: "lan.reviewer".into(), role: central_server::Role::Reviewer }
}

/// A heartbeat of `device` with small figures, its store's `alarm`, its `clock` check and its interval.
pub fn heartbeat(
    device: &str,
    alarm: Option<&str>,
    clock: Option<central_protocol::ClockCheck>,
    interval_s: Option<u32>,
) -> central_protocol::Heartbeat {
    central_protocol::Heartbeat {
        device_id: te_types::DeviceId::new(device),
        sent_at: chrono::Utc::now(),
        agent_version: "0.1.0".into(),
        pending: 3,
        delivered: 10,
        rejected: 0,
        disk_used_bytes: 1 << 30,
        disk_free_bytes: 1 << 20,
        clock,
        cameras: Vec::new(),
        alarm: alarm.map(str::to_string),
        interval_s,
    }
}
