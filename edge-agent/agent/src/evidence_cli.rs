//! `edge-agent evidence ...`: inspect, verify, export, and prove the evidence store (crash test, benchmark).

use anyhow::{bail, Context};
use central_protocol::EvidenceRecord;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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

fn open_at(dir: &Path) -> anyhow::Result<SledStore> {
    let key = DeviceKey::load_or_create(&dir.join("device.key"))?;
    Ok(SledStore::open(&dir.join("evidence"), key)?)
}

/// What the crash test does besides killing the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CrashMode {
    /// SIGKILL while records are written.
    None,
    /// Also damage sled's files after each kill (bytes flipped, a file truncated or deleted, the folder gone).
    Damage,
    /// The writer also delivers each record, under a tiny quota: kills land in the middle of purges.
    Purge,
    /// After each kill, an index rebuild is started and killed too.
    Rebuild,
}

/// The child of the crash test: writes records as fast as it can and prints each id once `put` returned
/// (that is, once the record is acknowledged), until it is killed. With `purge`, each record is delivered at
/// once under a 1 MiB quota, so images are being removed all the time.
pub fn crash_writer(dir: &Path, seed: u64, purge: bool) -> anyhow::Result<()> {
    let mut store = open_at(dir)?;
    if purge {
        store = store.with_limits(te_evidence::StoreLimits { quota_bytes: Some(1 << 20), ..Default::default() });
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    loop {
        let size = rng.usize(1024..96 * 1024);
        let (record, jpeg) = synthetic_record(&mut rng, size);
        store.put(&record, &jpeg)?;
        writeln!(out, "{}", record.evidence_id)?;
        out.flush()?;
        if purge {
            let receipt = central_protocol::IngestReceipt {
                evidence_id: record.evidence_id,
                status: central_protocol::IngestStatus::Created,
                stored_at: chrono::Utc::now(),
            };
            store.mark_delivered(&receipt)?;
        }
    }
}

/// The child of the crash test's rebuild mode: rebuilds the index from the files, until done or killed.
pub fn crash_rebuilder(dir: &Path) -> anyhow::Result<()> {
    let key = DeviceKey::load_or_create(&dir.join("device.key"))?;
    println!("ready");
    std::io::stdout().flush()?;
    SledStore::rebuild(&dir.join("evidence"), key)?;
    Ok(())
}

/// Starts `edge-agent evidence <args>`, waits for its "ready" line, lets it run 1..`max_ms` ms, kills it;
/// returns the complete lines it printed after "ready".
fn run_and_kill(
    exe: &Path,
    args: &[&str],
    dir: &Path,
    rng: &mut fastrand::Rng,
    max_ms: u64,
) -> anyhow::Result<Vec<String>> {
    let mut child = Command::new(exe)
        .arg("evidence")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the child")?;
    let stdout = child.stdout.take().context("child stdout")?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Wait until the child has the store open, then let it work for a random while.
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(line) if line == "ready" => {}
        other => {
            let _ = child.kill();
            let output = child.wait_with_output()?;
            bail!("{args:?} did not start ({other:?}): {}", String::from_utf8_lossy(&output.stderr));
        }
    }
    std::thread::sleep(Duration::from_millis(rng.u64(1..=max_ms)));
    child.kill().context("SIGKILL")?; // std's kill() is SIGKILL on Unix (or the child already ended)
    child.wait()?;
    let _ = reader.join();
    Ok(rx.try_iter().collect())
}

/// Kills a writer process with SIGKILL at random moments, `cycles` times, and checks after each kill that
/// every acknowledged record is there and intact, and that the store as a whole verifies.
/// The last line printed is `acknowledged=<n> lost=<n> corrupt=<n>`.
pub fn crash_test(
    cycles: u32,
    work_dir: Option<&Path>,
    seed: u64,
    max_kill_ms: u64,
    mode: CrashMode,
) -> anyhow::Result<bool> {
    let temp;
    let dir = match work_dir {
        Some(d) => d.to_path_buf(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let exe = std::env::current_exe()?;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut acknowledged: Vec<EvidenceId> = Vec::new();
    let mut lost = std::collections::BTreeSet::new();
    let mut corrupt = std::collections::BTreeSet::new();
    let mut chain_problems = 0usize;
    println!(
        "crash test: {cycles} cycles in {}, SIGKILL after 1..{max_kill_ms} ms of writing{}",
        dir.display(),
        match mode {
            CrashMode::None => "",
            CrashMode::Damage => ", then sled's files damaged (flipped, truncated or deleted in turn)",
            CrashMode::Purge => ", each record delivered under a 1 MiB quota (kills land in purges)",
            CrashMode::Rebuild => ", then an index rebuild started and killed",
        }
    );
    for cycle in 1..=cycles {
        let writer_seed = (seed ^ u64::from(cycle)).to_string();
        let mut writer = vec!["crash-writer", "--seed", writer_seed.as_str()];
        if mode == CrashMode::Purge {
            writer.push("--purge");
        }
        let lines = run_and_kill(&exe, &writer, &dir, &mut rng, max_kill_ms)?;
        // Only complete lines count: an id is acknowledged once its whole line was written.
        let this_cycle: Vec<EvidenceId> = lines.iter().filter_map(|l| l.parse().ok()).collect();
        acknowledged.extend(&this_cycle);
        match mode {
            CrashMode::Damage => damage_index(&dir.join("evidence"), cycle, &mut rng)?,
            CrashMode::Rebuild => {
                run_and_kill(&exe, &["crash-rebuilder"], &dir, &mut rng, max_kill_ms)?;
            }
            CrashMode::None | CrashMode::Purge => {}
        }

        let store = open_at(&dir).context("reopening the store after the kill")?;
        for id in &acknowledged {
            match store.get(*id) {
                Err(EvidenceError::NotFound(_)) => {
                    lost.insert(*id);
                }
                Err(_) => {
                    corrupt.insert(*id);
                }
                Ok(stored) => {
                    let sealed = central_protocol::verify(&stored.record, &stored.seal, Some(&store.public_key()));
                    // An image may be gone only after delivery (the purge mode delivers every record).
                    let image = match store.overview(*id) {
                        Err(EvidenceError::MediaPurged(_)) => matches!(stored.delivery, Delivery::Delivered { .. }),
                        other => other.is_ok(),
                    };
                    if sealed.is_err() || !image {
                        corrupt.insert(*id);
                    }
                }
            }
        }
        let report = verify_store(&store, &store.public_key())?;
        chain_problems += report.problems.len();
        for problem in report.problems.iter().take(5) {
            println!("  cycle {cycle}: PROBLEM {problem}");
        }
        corrupt.extend(report.damaged.iter().copied());
        if cycle % 10 == 0 || cycle == cycles {
            println!(
                "  cycle {cycle:>4}: {} acknowledged this cycle, {} records in store, chain length {}, {} problem(s) so far",
                this_cycle.len(),
                report.records,
                report.chain_length,
                chain_problems
            );
        }
    }
    let ok = lost.is_empty() && corrupt.is_empty() && chain_problems == 0;
    println!("acknowledged={} lost={} corrupt={}", acknowledged.len(), lost.len(), corrupt.len());
    Ok(ok)
}

/// Damages sled's files the way disks and people do, in turn by cycle: bytes flipped in one file, one file
/// truncated, one file deleted, the whole folder deleted.
fn damage_index(sled_dir: &Path, cycle: u32, rng: &mut fastrand::Rng) -> anyhow::Result<()> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![sled_dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    if files.is_empty() {
        return Ok(());
    }
    let victim = &files[rng.usize(..files.len())];
    match cycle % 4 {
        0 => {
            let mut bytes = std::fs::read(victim)?;
            for _ in 0..16.min(bytes.len()) {
                let at = rng.usize(..bytes.len());
                bytes[at] ^= 1 << rng.u8(..8);
            }
            std::fs::write(victim, bytes)?;
        }
        1 => {
            let len = std::fs::metadata(victim)?.len();
            std::fs::OpenOptions::new().write(true).open(victim)?.set_len(len / 2)?;
        }
        2 => std::fs::remove_file(victim)?,
        _ => std::fs::remove_dir_all(sled_dir)?,
    }
    Ok(())
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
