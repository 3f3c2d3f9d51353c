//! `central-sync fuzz`: generated hostile input through the service in-process, counting panics and internal
//! errors (a 5xx answer). Two kinds, alternating:
//! - the ingest router: sealed uploads (the seal is valid, so field checks are what stands in the way) whose
//!   fields take hostile values: huge, negative and non-finite numbers, far dates, control characters,
//!   long texts, odd ids, broken hashes, many votes; and heartbeats likewise;
//! - the protocol decoder: byte-level mutations of a valid upload and heartbeat (flips, cuts, insertions),
//!   decoded and checked as the ingest handler does.
//!
//! A refusal (4xx, or a decode error) is the expected outcome of bad input and is counted as `refused`.

use crate::app::router;
use crate::store::{CentralStore, StoreError};
use crate::web::AppState;
use axum::body::Body;
use axum::http::Request;
use central_protocol::{EvidenceRecord, EvidenceUpload, Heartbeat, SigningKey};
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

/// What a run saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct FuzzCounts {
    pub inputs: u64,
    pub panics: u64,
    pub errors: u64,
    pub refused: u64,
    pub accepted: u64,
}

const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F'];

/// A hostile JSON value for a field.
fn hostile(rng: &mut fastrand::Rng) -> Value {
    match rng.u8(0..24) {
        0 => json!(1e39),
        1 => json!(-1e39),
        2 => json!(-1),
        3 => json!(u64::MAX),
        4 => json!(i64::MIN),
        5 => json!(1u64 << 40),
        6 => json!(0),
        7 => json!("+262142-12-31T23:59:59Z"),
        8 => json!("-262143-01-01T00:00:00Z"),
        9 => json!("1970-01-01T00:00:00Z"),
        10 => json!("2999-01-01T00:00:00Z"),
        11 => json!("box\nINFO evidence received"),
        12 => json!("<script>alert(1)</script>"),
        13 => json!("=HYPERLINK(\"http://x\")"),
        14 => json!("x".repeat(rng.usize(200..5000))),
        15 => json!("../../etc/passwd"),
        16 => json!(""),
        17 => json!(null),
        18 => json!([]),
        19 => json!({}),
        20 => json!("\u{202e}\u{0000}\u{ffff}"),
        21 => json!("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdef".repeat(2)),
        22 => json!(rng.f64() * 2.0 - 0.5),
        _ => json!(rng.u64(..)),
    }
}

/// Sets `path` (dot-separated, numeric parts index arrays) in `v` to `value`, creating objects on the way.
fn set(v: &mut Value, path: &str, value: Value) {
    let mut cur = v;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let next = match part.parse::<usize>() {
            Ok(n) => match cur.as_array_mut() {
                Some(a) if n < a.len() => &mut a[n],
                _ => return,
            },
            Err(_) => {
                if !cur.is_object() {
                    *cur = json!({});
                }
                let Some(obj) = cur.as_object_mut() else { return };
                obj.entry(part.to_string()).or_insert(Value::Null)
            }
        };
        if last {
            *next = value;
            return;
        }
        cur = next;
    }
}

const RECORD_FIELDS: &[&str] = &[
    "device_id",
    "camera_id",
    "location",
    "captured_at",
    "recorded_at",
    "frame_number",
    "track_id",
    "detection_score",
    "bbox.x1",
    "bbox.y2",
    "overview_sha256",
    "clip_sha256",
    "config_version",
    "sequence",
    "previous_record_sha256",
    "violation.rule",
    "violation.at",
    "violation.red_for_s",
    "violation.speed_kmh",
    "violation.summary",
    "violation.moments.0.captured_at",
    "violation.moments.0.frame_number",
    "clock.offset_ms",
    "clock.uncertainty_ms",
    "clock.source",
    "clock.measured_at",
    "plate.text",
    "plate.share",
    "plate.votes.0.text",
    "plate.votes.0.raw",
    "plate.votes.0.confidence",
    "plate.votes.0.weight",
    "plate.votes.0.crop_sha256",
];

/// A valid record as JSON, with a violation, clock and plate to mutate.
fn base_record(device: &str) -> Value {
    let mut record = serde_json::to_value(EvidenceRecord::synthetic(device, "cam-1", JPEG)).unwrap_or(Value::Null);
    let now = chrono::Utc::now().to_rfc3339();
    record["kind"] = json!("red_light");
    record["violation"] = json!({
        "kind": "red_light", "track": 1, "rule": "stop line", "at": now,
        "moments": [{ "role": "at", "frame_number": 1, "captured_at": now }],
        "signal": "red", "red_for_s": 2.0, "certified": true, "summary": "crossed on red"
    });
    record["clock"] =
        json!({ "offset_ms": 5, "uncertainty_ms": 2, "source": "ntp:x", "measured_at": now, "trusted": true });
    record["plate"] = json!({ "text": "51F-123.45", "share": 1.0, "votes": [
        { "frame_number": 1, "text": "51F-123.45", "raw": "51F12345", "confidence": 0.99, "weight": 0.5 }
    ]});
    record
}

/// One sealed upload with 1-3 hostile fields, as JSON text (or the mutated JSON itself when it no longer
/// decodes into a record, which the router must refuse).
fn hostile_upload(rng: &mut fastrand::Rng, key: &SigningKey) -> String {
    let mut record = base_record("fuzz-box");
    for _ in 0..rng.usize(1..=3) {
        let field = RECORD_FIELDS[rng.usize(..RECORD_FIELDS.len())];
        set(&mut record, field, hostile(rng));
    }
    if rng.u8(..10) == 0 {
        // Many votes.
        let vote = record["plate"]["votes"][0].clone();
        record["plate"]["votes"] = Value::Array(vec![vote; rng.usize(60..200)]);
    }
    match serde_json::from_value::<EvidenceRecord>(record.clone()) {
        Ok(mut record) => {
            record.evidence_id = te_types::EvidenceId::new();
            let seal = central_protocol::seal(&record, key);
            serde_json::to_string(&EvidenceUpload::new(record, seal, JPEG)).unwrap_or_default()
        }
        Err(_) => json!({ "record": record, "seal": {}, "overview_jpeg_base64": "/9j/4AAQSkZJRg==" }).to_string(),
    }
}

/// A valid heartbeat as JSON.
fn heartbeat() -> Value {
    json!({
        "device_id": "fuzz-box", "sent_at": chrono::Utc::now().to_rfc3339(), "agent_version": "0.1.0",
        "pending": 1, "delivered": 2, "rejected": 0, "disk_used_bytes": 10, "disk_free_bytes": 10,
        "cameras": [{ "camera_id": "cam-1", "state": "streaming", "frames_in": 1, "frames_dropped": 0, "reconnects": 0 }]
    })
}

fn hostile_heartbeat(rng: &mut fastrand::Rng) -> String {
    let mut beat = heartbeat();
    let fields =
        ["device_id", "sent_at", "agent_version", "pending", "alarm", "cameras.0.camera_id", "cameras.0.state"];
    for _ in 0..rng.usize(1..=2) {
        set(&mut beat, fields[rng.usize(..fields.len())], hostile(rng));
    }
    beat.to_string()
}

/// Byte-level mutations of `text`.
fn mutate_bytes(rng: &mut fastrand::Rng, text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..rng.usize(1..=8) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.usize(..bytes.len());
        match rng.u8(..5) {
            0 => bytes[at] ^= 1 << rng.u8(..8),
            1 => bytes.truncate(at),
            2 => {
                const SPICE: &[u8] = b"{}[]\",:\\0e-9";
                bytes.insert(at, SPICE[rng.usize(..SPICE.len())]);
            }
            3 => {
                bytes.remove(at);
            }
            _ => bytes[at] = rng.u8(..),
        }
    }
    bytes
}

/// What the ingest handler does with an upload and a heartbeat body, without the store: decode and check.
fn decode(bytes: &[u8]) -> bool {
    let now = chrono::Utc::now();
    let upload = serde_json::from_slice::<EvidenceUpload>(bytes).ok().is_some_and(|u| {
        u.verified_overview(now).is_ok() && u.verified_clip().is_ok() && u.verified_plate_crops().is_ok()
    });
    let beat = serde_json::from_slice::<Heartbeat>(bytes).ok().is_some_and(|h| h.check_fields(now).is_ok());
    upload || beat
}

/// Runs `inputs` generated inputs (seeded) against a fresh store in `dir`.
pub async fn run(dir: &std::path::Path, inputs: u64, seed: u64) -> Result<FuzzCounts, StoreError> {
    let store = Arc::new(CentralStore::open(dir).await?);
    let app = router(AppState { open_enrolment: true, ..AppState::new(store) }, 16 << 20);
    let key = SigningKey::from_bytes(&[42u8; 32]);
    let valid_upload = {
        let record = EvidenceRecord::synthetic("fuzz-box", "cam-1", JPEG);
        let seal = central_protocol::seal(&record, &key);
        serde_json::to_string(&EvidenceUpload::new(record, seal, JPEG)).unwrap_or_default()
    };
    let valid_beat = heartbeat().to_string();
    let first_panic: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let previous_hook = std::panic::take_hook();
    {
        let first_panic = first_panic.clone();
        std::panic::set_hook(Box::new(move |info| {
            // The first is shown at once (it may be the run's own); the rest are only counted.
            if let Ok(mut first) = first_panic.lock() {
                if first.is_none() {
                    eprintln!("panic: {info}");
                    *first = Some(info.to_string());
                }
            }
        }));
    }
    let mut counts = FuzzCounts::default();
    let mut rng = fastrand::Rng::with_seed(seed);
    for i in 0..inputs {
        counts.inputs += 1;
        let mut case_rng = fastrand::Rng::with_seed(rng.u64(..));
        if i % 2 == 1 {
            let text = if case_rng.bool() { &valid_upload } else { &valid_beat };
            let bytes = mutate_bytes(&mut case_rng, text);
            match std::panic::catch_unwind(|| decode(&bytes)) {
                Ok(true) => counts.accepted += 1,
                Ok(false) => counts.refused += 1,
                Err(_) => counts.panics += 1,
            }
            continue;
        }
        let (path, body) = if case_rng.u8(..4) == 0 {
            (central_protocol::HEARTBEAT_PATH, hostile_heartbeat(&mut case_rng))
        } else {
            (central_protocol::EVIDENCE_PATH, hostile_upload(&mut case_rng, &key))
        };
        let request = Request::post(path).header("content-type", "application/json").body(Body::from(body));
        let Ok(request) = request else { continue };
        let app = app.clone();
        match tokio::spawn(async move { app.oneshot(request).await }).await {
            Ok(Ok(response)) if response.status().is_server_error() => counts.errors += 1,
            Ok(Ok(response)) if response.status().is_success() => counts.accepted += 1,
            Ok(Ok(_)) => counts.refused += 1,
            Ok(Err(never)) => match never {},
            Err(e) if e.is_panic() => counts.panics += 1,
            Err(_) => counts.errors += 1,
        }
    }
    std::panic::set_hook(previous_hook);
    Ok(counts)
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_short_fuzz_run_finds_no_panic_and_no_internal_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let counts = super::run(dir.path(), 400, 7).await.expect("run");
        assert_eq!((counts.panics, counts.errors), (0, 0), "{counts:?}");
        assert!(counts.refused > 150, "hostile input is refused: {counts:?}");
    }
}
