//! `edge-agent evidence ...`: inspect, verify, export, rebuild, send, and benchmark the evidence store (the
//! crash test is `evidence_crash`).

use anyhow::{bail, Context};
use central_protocol::EvidenceRecord;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use te_evidence::{verify_store, Delivery, DeviceKey, EvidenceError, EvidenceStore, SledStore};
use te_types::{DeviceId, EvidenceId, TrackId};

pub fn list(store: &SledStore) -> anyhow::Result<()> {
    println!(
        "{:<26}  {:>5}  {:<12}  {:<16}  {:<10}  {:<14}  {:<25}  delivery",
        "evidence id", "seq", "camera", "event", "vehicle", "plate", "captured (UTC)"
    );
    for id in store.list()? {
        let s = store.get(id)?;
        let delivery = match s.delivery {
            Delivery::Pending => "pending".to_string(),
            Delivery::Delivered { receipt } => format!("delivered {}", receipt.stored_at.format("%FT%TZ")),
            Delivery::Rejected { reason, .. } => format!("REJECTED: {reason}"),
        };
        let plate = match &s.record.plate {
            None => "-",
            Some(p) => p.text.as_deref().unwrap_or("unreadable"),
        };
        println!(
            "{:<26}  {:>5}  {:<12}  {:<16}  {:<10}  {:<14}  {:<25}  {delivery}",
            id.to_string(),
            s.record.sequence,
            s.record.camera_id.as_str(),
            s.record.kind.as_str(),
            s.record.vehicle_class.as_str(),
            plate,
            s.record.captured_at.format("%F %T%.3f").to_string()
        );
    }
    let c = store.counts()?;
    println!("total={} pending={} delivered={} rejected={}", c.total, c.pending, c.delivered, c.rejected);
    Ok(())
}

pub fn parse_id(raw: &str) -> anyhow::Result<EvidenceId> {
    raw.parse().map_err(|_| anyhow::anyhow!("{raw:?} is not an evidence id (ULID)"))
}

/// Checks every seal, media hash and the chain; fails (exit 1) on any problem.
pub fn verify(store: &SledStore) -> anyhow::Result<()> {
    let started = Instant::now();
    let report = verify_store(store, &store.public_key())?;
    for problem in &report.problems {
        println!("PROBLEM {problem}");
    }
    println!(
        "device key {}  records {}  intact {}  chain length {}  ({:.1} s)",
        store.device_key().public_hex(),
        report.records,
        report.intact,
        report.chain_length,
        started.elapsed().as_secs_f64()
    );
    if !report.is_clean() {
        bail!("{} problem(s) in the evidence store", report.problems.len());
    }
    println!("all seals, images and chain links verify");
    Ok(())
}

/// Writes one record as a self-contained package for court or audit: the exact sealed bytes, the seal, the
/// image, the device's public key and how to check them with standard tools.
pub fn export(store: &SledStore, id: EvidenceId, to: &Path) -> anyhow::Result<PathBuf> {
    let (stored, media) = store.with_media(id)?;
    central_protocol::verify(&stored.record, &stored.seal, Some(&store.public_key()))
        .with_context(|| format!("{id} does not verify; not exporting it as evidence"))?;
    let dir = to.join(id.to_string());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, bytes: &[u8]| -> anyhow::Result<()> {
        std::fs::write(dir.join(name), bytes).with_context(|| format!("writing {}", dir.join(name).display()))
    };
    write("record.json", &stored.record.canonical_bytes())?;
    write("seal.json", serde_json::to_string_pretty(&stored.seal)?.as_bytes())?;
    write("overview.jpg", &media.overview_jpeg)?;
    if let Some(clip) = &media.clip_mp4 {
        write("clip.mp4", clip)?;
    }
    for (sha, crop) in stored.record.plate_crop_hashes().into_iter().zip(&media.plate_crops) {
        write(&format!("plate-{sha}.jpg"), crop)?;
    }
    write("delivery.json", serde_json::to_string_pretty(&stored.delivery)?.as_bytes())?;
    write("device_public_key.hex", store.device_key().public_hex().as_bytes())?;
    let readme = format!(
        "Evidence {id}, exported by edge-agent {version} on {now}.\n\n\
         record.json   the record exactly as sealed (canonical JSON); it names the image by SHA-256:\n\
         \x20             overview_sha256 = {overview}\n\
         overview.jpg  the overview image:   sha256sum overview.jpg   must print that value\n\
         clip.mp4      the video clip, when the record names one (clip_sha256)\n\
         plate-<sha256>.jpg  the plate as each voting frame showed it (crop_sha256 of the plate votes);\n\
         \x20             each file's sha256sum is its name\n\
         seal.json     record_sha256 = sha256 of record.json ({record}),\n\
         \x20             signature = Ed25519 signature (hex) over the 32 bytes of record_sha256,\n\
         \x20             public_key = the device's key (also in device_public_key.hex)\n\
         Chain: this is record #{seq} of device {device}; previous_record_sha256 in record.json is the\n\
         record_sha256 of record #{prev}.\n",
        version = env!("CARGO_PKG_VERSION"),
        now = chrono::Utc::now().format("%F %T UTC"),
        overview = stored.record.overview_sha256,
        record = stored.seal.record_sha256,
        seq = stored.record.sequence,
        prev = stored.record.sequence.saturating_sub(1),
        device = stored.record.device_id,
    );
    write("README.txt", readme.as_bytes())?;
    Ok(dir)
}

/// A record with a random image, for the crash test and the benchmark.
pub(crate) fn synthetic_record(rng: &mut fastrand::Rng, media_bytes: usize) -> (EvidenceRecord, Vec<u8>) {
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0];
    jpeg.extend((0..media_bytes).map(|_| rng.u8(..)));
    let record = EvidenceRecord {
        device_id: DeviceId::new("crash-test"),
        frame_number: rng.u64(..1_000_000),
        track_id: TrackId(rng.u64(1..10_000)),
        sequence: 0,
        ..EvidenceRecord::synthetic("crash-test", "cam", &jpeg)
    };
    (record, jpeg)
}

pub(crate) fn open_at(dir: &Path) -> anyhow::Result<SledStore> {
    let key = DeviceKey::load_or_create(&dir.join("device.key"))?;
    Ok(SledStore::open(&dir.join("evidence"), key)?)
}

/// `edge-agent evidence send`: the uplink alone, draining the queue.
pub async fn send(
    config: &crate::config::AgentConfig,
    store: std::sync::Arc<SledStore>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let uplink = te_uplink::Uplink::new(config.uplink.clone(), store.clone())?;
    let (_shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let (_drain_tx, drain_rx) = tokio::sync::watch::channel(true);
    if tokio::time::timeout(timeout, uplink.run(shutdown_rx, drain_rx)).await.is_err() {
        eprintln!("timeout: the central service did not take everything in {} s", timeout.as_secs());
    }
    let counts = store.counts()?;
    println!("delivered={} pending={} rejected={}", counts.delivered, counts.pending, counts.rejected);
    Ok(())
}

/// The outage soak's recorder: `records` synthetic records whose capture times span the last `days`, written
/// as the pipeline writes them (quota, reserve and alarms in force). Last line:
/// `produced=<n> stored=<n> refused=<n> errors=<n> alarm=<0|1>`.
pub fn soak_fill(
    config: &crate::config::AgentConfig,
    store: &SledStore,
    records: u64,
    days: f64,
    media_kb: usize,
) -> anyhow::Result<()> {
    let mut rng = fastrand::Rng::with_seed(11);
    let span = chrono::Duration::milliseconds((days * 86_400_000.0) as i64);
    let start = chrono::Utc::now() - span;
    let camera = config.cameras.first().map_or("cam".to_string(), |c| c.id.to_string());
    let (mut stored, mut refused, mut errors, mut alarm_seen) = (0u64, 0u64, 0u64, false);
    for i in 0..records {
        let (mut record, jpeg) = synthetic_record(&mut rng, media_kb * 1024);
        let at = start + span * i32::try_from(i).unwrap_or(i32::MAX) / i32::try_from(records.max(1)).unwrap_or(1);
        record.device_id = config.device_id.clone();
        record.camera_id = te_types::CameraId::new(&camera);
        record.captured_at = at;
        record.recorded_at = at;
        match store.put(&record, &jpeg) {
            Ok(_) => stored += 1,
            Err(EvidenceError::DiskReserve { .. }) => refused += 1,
            Err(e) => {
                errors += 1;
                eprintln!("record {i}: {e}");
            }
        }
        alarm_seen |= store.alarm().is_some();
        if (i + 1) % 1000 == 0 {
            println!(
                "  {} simulated: {stored} stored, {refused} refused, alarm: {:?}",
                at.format("%Y-%m-%d %H:%M"),
                store.alarm()
            );
        }
    }
    println!("produced={records} stored={stored} refused={refused} errors={errors} alarm={}", u8::from(alarm_seen));
    Ok(())
}

/// `edge-agent evidence rebuild`: the index from the evidence files.
pub fn rebuild(config: &crate::config::AgentConfig) -> anyhow::Result<()> {
    let state = Path::new(&config.paths.state);
    let key = DeviceKey::load_or_create(&state.join("device.key"))?;
    let started = Instant::now();
    let (store, report) = SledStore::rebuild(&state.join("evidence"), key)?;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(aside) = &report.moved_aside {
        println!("the old index was moved to {} (delete it once you are satisfied)", aside.display());
    }
    for damaged in &report.damaged {
        println!("DAMAGED (not indexed): {damaged}");
    }
    let verified = verify_store(&store, &store.public_key())?;
    println!(
        "indexed {} record(s) from {}; verify: {}",
        report.records,
        store.files_dir().display(),
        if verified.is_clean() { "clean".to_string() } else { format!("{} problem(s)", verified.problems.len()) }
    );
    println!("records={} damaged={} seconds={seconds:.2}", report.records, report.damaged.len());
    Ok(())
}

/// Writes `records` records with `media_kb` KiB images each into a fresh store and prints throughput.
pub fn bench(records: u32, media_kb: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = open_at(dir.path())?;
    let mut rng = fastrand::Rng::with_seed(7);
    let prepared: Vec<_> = (0..records).map(|_| synthetic_record(&mut rng, media_kb * 1024)).collect();
    let bytes: usize = prepared.iter().map(|(r, j)| j.len() + r.canonical_bytes().len()).sum();
    let started = Instant::now();
    for (record, jpeg) in &prepared {
        store.put(record, jpeg)?;
    }
    let secs = started.elapsed().as_secs_f64();
    let verify_started = Instant::now();
    let report = verify_store(&store, &store.public_key())?;
    let verify_secs = verify_started.elapsed().as_secs_f64();
    drop(store);
    let open_started = Instant::now();
    let store = open_at(dir.path())?;
    let open_secs = open_started.elapsed().as_secs_f64();
    drop(store);
    let rebuild_started = Instant::now();
    let key = DeviceKey::load_or_create(&dir.path().join("device.key"))?;
    let (_, rebuilt) = SledStore::rebuild(&dir.path().join("evidence"), key)?;
    let rebuild_secs = rebuild_started.elapsed().as_secs_f64();
    println!("store: {records} records with {media_kb} KiB images, each sealed (Ed25519) and flushed before the next");
    println!("verify: {} records in {verify_secs:.2} s, clean: {}", report.records, report.is_clean());
    println!(
        "reopen: {open_secs:.2} s; rebuild of the index from the evidence files: {} records in {rebuild_secs:.2} s",
        rebuilt.records
    );
    println!(
        "records_per_s={:.1} mb_per_s={:.2} ms_per_record={:.2} open_s={open_secs:.2} rebuild_s={rebuild_secs:.2}",
        f64::from(records) / secs,
        bytes as f64 / secs / 1e6,
        secs * 1000.0 / f64::from(records)
    );
    Ok(())
}

/// `evidence show`: one record, its seal and its delivery state as JSON.
pub fn show(store: &SledStore, raw_id: &str) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(&store.get(parse_id(raw_id)?)?)?);
    Ok(())
}

/// `evidence export`: the records named (every record when none is) as packages under `to`.
pub fn export_all(store: &SledStore, raw_ids: &[String], to: &Path) -> anyhow::Result<()> {
    let ids = if raw_ids.is_empty() {
        store.list()?
    } else {
        raw_ids.iter().map(|raw| parse_id(raw)).collect::<anyhow::Result<_>>()?
    };
    for id in ids {
        println!("{}", export(store, id, to)?.display());
    }
    Ok(())
}
