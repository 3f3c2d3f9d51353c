//! `edge-agent evidence crash-test`: a writer process is killed with SIGKILL at random moments, and every
//! record it acknowledged must be readable and verify afterwards; modes add damaged sled files, purges,
//! rebuilds and a full disk ([`full_disk`]).

mod full_disk;

use crate::tools::evidence::{open_at, synthetic_record};
use anyhow::{bail, Context};
use full_disk::{crash_test_in_tmpfs, on_small_filesystem, DiskFiller, FullDisk, FullRegime, CRASH_RESERVE_KB};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use te_evidence::{verify_store, Delivery, DeviceKey, EvidenceError, EvidenceStore, SledStore};
use te_types::EvidenceId;

pub use crate::cli::CrashMode;

/// The crash-test writer's settings beyond its seed.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriterOptions {
    /// Deliver each record at once under a 1 MiB quota.
    pub purge: bool,
    /// Go on after a refused or failed write (as the pipeline does), printing `refused <alarm up before: 0|1>`
    /// or `error <why>` instead of the id.
    pub keep_going: bool,
    /// The store's disk reserve, KiB (0: none).
    pub reserve_kb: u64,
}

/// The child of the crash test: writes records as fast as it can and prints each id once `put` returned
/// (that is, once the record is acknowledged), until it is killed. With `purge`, each record is delivered at
/// once under a 1 MiB quota, so images are being removed all the time.
pub fn crash_writer(dir: &Path, seed: u64, options: WriterOptions) -> anyhow::Result<()> {
    let WriterOptions { purge, keep_going, reserve_kb } = options;
    let store = open_at(dir)?.with_limits(te_evidence::StoreLimits {
        quota_bytes: purge.then_some(1 << 20),
        reserve_bytes: (reserve_kb > 0).then_some(reserve_kb << 10),
        ..Default::default()
    });
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    loop {
        let size = rng.usize(1024..96 * 1024);
        let (record, jpeg) = synthetic_record(&mut rng, size);
        let alarm_before = store.alarm().is_some();
        let outcome = store.put(&record, &jpeg);
        match &outcome {
            Ok(_) => writeln!(out, "{}", record.evidence_id)?,
            Err(EvidenceError::DiskReserve { .. }) if keep_going => {
                writeln!(out, "refused {}", u8::from(alarm_before))?;
            }
            Err(e) if keep_going => writeln!(out, "error {e}")?,
            Err(_) => {}
        }
        out.flush()?;
        if outcome.is_err() && keep_going {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        outcome?;
        if purge {
            store.mark_delivered(&receipt(record.evidence_id))?;
        }
    }
}

/// The central service's receipt for `id`, as the crash test's centre gives it.
fn receipt(id: EvidenceId) -> central_protocol::IngestReceipt {
    central_protocol::IngestReceipt {
        evidence_id: id,
        status: central_protocol::IngestStatus::Created,
        stored_at: chrono::Utc::now(),
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
    if mode == CrashMode::Full && !work_dir.is_some_and(on_small_filesystem) {
        return crash_test_in_tmpfs(cycles, seed, max_kill_ms);
    }
    let temp;
    let dir = match work_dir {
        Some(d) => d.to_path_buf(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let exe = std::env::current_exe()?;
    let mut full = FullDisk::default();
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
            CrashMode::Full => ", on a full disk (a ballast file leaves 0-8 MiB free, a reserve of 2 MiB; every third cycle another program fills the disk to its end)",
        }
    );
    for cycle in 1..=cycles {
        let writer_seed = (seed ^ u64::from(cycle)).to_string();
        let mut writer = vec!["crash-writer", "--seed", writer_seed.as_str()];
        if mode == CrashMode::Purge {
            writer.push("--purge");
        }
        let regime = FullRegime::of(cycle);
        let reserve_kb = CRASH_RESERVE_KB.to_string();
        if mode == CrashMode::Full {
            writer.extend(["--keep-going", "--reserve-kb", reserve_kb.as_str()]);
            full.fill(&dir, regime, &mut rng)?;
        }
        // Another program fills the disk to its very end while the writer works.
        let filler = (mode == CrashMode::Full && regime == FullRegime::DiskEnd).then(|| DiskFiller::start(&dir));
        let lines = match run_and_kill(&exe, &writer, &dir, &mut rng, max_kill_ms) {
            // A store cannot open on a disk with no room at all: the writer fails to start, loudly, and the
            // records stay in their files (checked below, once the ballast is gone).
            Err(e) if mode == CrashMode::Full => {
                full.start_failures += 1;
                full.note_error(format!("{e:#}").lines().next().unwrap_or_default());
                Vec::new()
            }
            other => other?,
        };
        if let Some(filler) = filler {
            filler.stop();
        }
        // Only complete lines count: an id is acknowledged once its whole line was written.
        let this_cycle: Vec<EvidenceId> = lines.iter().filter_map(|l| l.parse().ok()).collect();
        acknowledged.extend(&this_cycle);
        match mode {
            CrashMode::Damage => damage_index(&dir.join("evidence"), cycle, &mut rng)?,
            CrashMode::Rebuild => {
                run_and_kill(&exe, &["crash-rebuilder"], &dir, &mut rng, max_kill_ms)?;
            }
            CrashMode::Full => full.account(&dir, regime, &lines)?,
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
        // Every fifth cycle the centre takes everything (as after a reconnect), so that delivered images can
        // make room; in between, undelivered records pile up against the reserve.
        if mode == CrashMode::Full && cycle % 5 == 0 {
            full.deliver_all(&store)?;
        }
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
    let ok = lost.is_empty() && corrupt.is_empty() && chain_problems == 0 && full.refused_before_alarm == 0;
    if mode == CrashMode::Full {
        println!(
            "  full disk: {} refusal(s) at the reserve, {} write error(s) at the disk's end, {} writer(s) could not \
             open the store, {} of {} reserve cycles reached the reserve; one error of each cause: {:?}",
            full.refused,
            full.write_errors,
            full.start_failures,
            full.reserve_reached,
            full.reserve_cycles,
            full.first_errors
        );
    }
    println!(
        "acknowledged={} lost={} corrupt={} refused={} refused_before_alarm={} write_errors={}",
        acknowledged.len(),
        lost.len(),
        corrupt.len(),
        full.refused,
        full.refused_before_alarm,
        full.write_errors
    );
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
