//! `central-sync bench`: sustained evidence uploads over loopback HTTP against a fresh store, as boxes send
//! them (registered devices with tokens, sealed records, an overview image each). Prints uploads/s and latency
//! percentiles; the last line is `uploads=<n> uploads_per_s=<x> p50_ms=<x> p99_ms=<x> errors=<n>`.

use crate::app::router;
use crate::store::CentralStore;
use crate::web::AppState;
use central_protocol::{EvidenceRecord, EvidenceUpload, SigningKey};
use std::sync::Arc;
use std::time::{Duration, Instant};
use te_types::TrackId;

#[derive(Debug, Clone)]
pub struct BenchSettings {
    pub uploads: usize,
    /// Uploads in flight at once (boxes sending together).
    pub concurrency: usize,
    /// Boxes the uploads come from.
    pub devices: usize,
    /// Size of each overview image, KiB.
    pub image_kb: usize,
}

#[derive(Debug, Clone)]
pub struct BenchReport {
    pub uploads: usize,
    pub errors: usize,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn sealed(device: &str, key: &SigningKey, sequence: u64, jpeg: &[u8]) -> EvidenceUpload {
    let record = EvidenceRecord {
        frame_number: sequence,
        track_id: TrackId(sequence),
        sequence,
        ..EvidenceRecord::synthetic(device, "cam-1", jpeg)
    };
    let seal = central_protocol::seal(&record, key);
    EvidenceUpload::new(record, seal, jpeg)
}

/// Runs the benchmark against a service on 127.0.0.1 backed by a store in `data_dir`.
pub async fn run(
    settings: &BenchSettings,
    database_url: Option<&str>,
    data_dir: &std::path::Path,
) -> anyhow::Result<BenchReport> {
    let store = Arc::new(CentralStore::open_with(database_url, data_dir).await?);
    let mut devices = Vec::new();
    for i in 0..settings.devices.max(1) {
        let key = SigningKey::from_bytes(&[(i % 250) as u8 + 1; 32]);
        let name = format!("bench-box-{i:03}");
        let token = store.register_device(&name, &hex::encode(key.verifying_key().to_bytes())).await?;
        devices.push((name, key, token));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}{}", listener.local_addr()?, central_protocol::EVIDENCE_PATH);
    let app = router(AppState::new(store), 64 << 20);
    tokio::spawn(async move { axum::serve(listener, app).await });

    // A JPEG-sized body: the JPEG marker, then noise (the server checks the marker and hashes, not pixels).
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0];
    jpeg.extend((0..settings.image_kb * 1024).map(|i| (i * 31 % 251) as u8));
    // Sealing is the boxes' work, done before the clock starts.
    let bodies: Vec<(String, String)> = (0..settings.uploads)
        .map(|n| {
            let (name, key, token) = &devices[n % devices.len()];
            let body = serde_json::to_string(&sealed(name, key, n as u64 + 1, &jpeg)).unwrap_or_default();
            (token.clone(), body)
        })
        .collect();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let queue = Arc::new(tokio::sync::Mutex::new(bodies.into_iter()));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..settings.concurrency.max(1) {
        let (client, url, queue) = (client.clone(), url.clone(), queue.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            loop {
                let next = queue.lock().await.next();
                let Some((token, body)) = next else { break };
                let sent = Instant::now();
                let answer = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await;
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                match answer {
                    Ok(r) if r.status() == reqwest::StatusCode::CREATED => {}
                    Ok(r) => {
                        errors += 1;
                        let status = r.status();
                        let body = r.text().await.unwrap_or_default();
                        eprintln!("upload refused: {status} {body}");
                    }
                    Err(e) => {
                        errors += 1;
                        eprintln!("upload failed: {e}");
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (l, e) = worker.await?;
        latencies.extend(l);
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        latencies.get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0.0)
    };
    Ok(BenchReport {
        uploads: latencies.len(),
        errors,
        seconds,
        p50_ms: pick(0.50),
        p99_ms: pick(0.99),
        max_ms: latencies.last().copied().unwrap_or(0.0),
    })
}
