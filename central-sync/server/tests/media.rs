//! Media in an S3-compatible object store: a real S3 API (moto's server, from PyPI, installed by
//! `scripts/setup`) on 127.0.0.1. Evidence goes in and comes back whole; an object changed behind the service's
//! back shows as not matching on the case's seal check.

use central_protocol::EvidenceUpload;
use central_server::media::{MediaStore, S3Settings};
use central_server::CentralStore;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

struct S3Server(Child);

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_s3() -> (S3Server, S3Settings) {
    let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.local/venv/bin/moto_server");
    assert!(bin.is_file(), "{} is missing: run scripts/setup", bin.display());
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let child = Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let server = S3Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not listen within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let settings = S3Settings {
        endpoint: format!("http://127.0.0.1:{port}"),
        bucket: "evidence-media".into(),
        region: "us-east-1".into(),
        access_key: "test-key".into(),
        secret_key: "test-secret".into(),
    };
    (server, settings)
}

#[tokio::test]
async fn media_kept_in_an_s3_bucket_come_back_whole_and_a_changed_object_is_caught() {
    let (_server, s3) = start_s3();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = CentralStore::open_with_s3(None, dir.path(), &s3).await.expect("store with S3 media");
    let clip = b"\0\0\0\x18ftypisom-a-clip-in-s3".to_vec();
    let record = central_protocol::EvidenceRecord {
        clip_sha256: Some(central_protocol::sha256_hex(&clip)),
        ..central_protocol::EvidenceRecord::synthetic("box-1", "nga-tu-1", common::JPEG)
    };
    let seal = central_protocol::seal(&record, &central_protocol::SigningKey::from_bytes(&[5u8; 32]));
    let upload = EvidenceUpload::new(record, seal, common::JPEG).with_clip(Some(&clip));
    let jpeg = upload.verified_overview(chrono::Utc::now()).expect("overview");
    let id = upload.record.evidence_id;
    store.ingest(&upload.record, &upload.seal, &jpeg, Some(&clip), &[]).await.expect("ingest");

    assert_eq!(store.overview(id).await.expect("get"), Some(common::JPEG.to_vec()));
    assert_eq!(store.clip(id).await.expect("get"), Some(clip.clone()));
    assert!(!dir.path().join("media").exists(), "no local media folder, nothing written to one");
    let check = store.seal_check(id).await.expect("check").expect("found");
    assert!(check.signature_ok && check.overview_ok && check.clip_ok == Some(true), "{check:?}");

    // Someone with the bucket's keys replaces the picture: the case says so.
    let direct = MediaStore::s3(&s3).expect("client");
    direct.put(&format!("{id}/overview.jpg"), b"\xFF\xD8\xFF\xE0 another picture").await.expect("overwrite");
    let check = store.seal_check(id).await.expect("check").expect("found");
    assert!(check.signature_ok && !check.overview_ok, "{check:?}");
    assert_eq!(direct.get(&format!("{id}/missing.jpg")).await.expect("get"), None);
}
