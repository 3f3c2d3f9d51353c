//! The crash test's full-disk mode: a small tmpfs of its own, ballast files that leave little room, a
//! program that fills the disk to its end while the writer works, and the tallies of refusals and errors.

use anyhow::Context;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use te_evidence::{EvidenceStore, SledStore};

/// How full the disk is in one cycle of the full-disk mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FullRegime {
    /// Room for a few MiB above the reserve: the writer fills it, the alarm must rise before the first refusal.
    ReachReserve,
    /// Another program fills the disk to its end while the writer works: writes fail (ENOSPC) past the reserve.
    DiskEnd,
    /// Already inside the reserve when the writer starts: refused from the first record.
    InsideReserve,
}

pub(super) const CRASH_RESERVE_KB: u64 = 2048;

impl FullRegime {
    pub(super) fn of(cycle: u32) -> Self {
        match cycle % 3 {
            1 => Self::ReachReserve,
            2 => Self::DiskEnd,
            _ => Self::InsideReserve,
        }
    }
}

/// Fills the disk in 64 KiB steps from a thread of its own until it is full or stopped; the file goes with
/// the cycle's ballast.
pub(super) struct DiskFiller {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl DiskFiller {
    pub(super) fn start(dir: &Path) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let path = dir.join("ballast.filler");
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let Ok(mut file) = std::fs::File::create(&path) else { return };
            let chunk = vec![0xA5u8; 64 << 10];
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                if file.write_all(&chunk).is_err() {
                    break; // full
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        Self { stop, thread }
    }

    pub(super) fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// The full-disk mode's ballast and tallies.
#[derive(Debug, Default)]
pub(super) struct FullDisk {
    pub(super) refused: u64,
    pub(super) refused_before_alarm: u64,
    pub(super) write_errors: u64,
    /// Writers that could not open the store (no room at all).
    pub(super) start_failures: u64,
    /// This cycle's writer started above twice the reserve.
    pub(super) room_to_warn: bool,
    pub(super) reserve_cycles: u64,
    pub(super) reserve_reached: u64,
    pub(super) first_errors: Vec<String>,
}

pub(super) fn free_space(dir: &Path) -> anyhow::Result<u64> {
    let st = rustix::fs::statvfs(dir).with_context(|| format!("free space of {}", dir.display()))?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// The full-disk mode runs on a filesystem of its own: under 1 GiB, so that it can be filled.
pub(super) fn on_small_filesystem(dir: &Path) -> bool {
    rustix::fs::statvfs(dir).is_ok_and(|st| st.f_blocks.saturating_mul(st.f_frsize) < 1 << 30)
}

impl FullDisk {
    /// Writes a ballast file that leaves the cycle's regime of free space.
    pub(super) fn fill(&mut self, dir: &Path, regime: FullRegime, rng: &mut fastrand::Rng) -> anyhow::Result<()> {
        let ballast = dir.join("ballast");
        let _ = std::fs::remove_file(&ballast);
        let reserve = CRASH_RESERVE_KB << 10;
        // Above this the store cannot yet warn: twice the reserve plus one record (at most 100 KiB).
        let warns_below = 2 * reserve + (100 << 10);
        let leave = match regime {
            FullRegime::ReachReserve | FullRegime::DiskEnd => warns_below + rng.u64(0..1 << 20),
            FullRegime::InsideReserve => rng.u64(0..reserve),
        };
        let mut left = free_space(dir)?.saturating_sub(leave);
        let mut file = std::fs::File::create(&ballast).context("ballast")?;
        let chunk = vec![0x5Au8; 1 << 20];
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            match file.write(&chunk[..n]) {
                Ok(0) => break,
                Ok(written) => left -= written as u64,
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC: full is what we want
                Err(e) => return Err(e).context("writing the ballast"),
            }
        }
        // Whether the writer starts with room to warn before it must refuse.
        self.room_to_warn = free_space(dir)? > warns_below;
        Ok(())
    }

    /// Counts the writer's refusals and errors, then frees the ballast so that the store can be checked.
    pub(super) fn account(&mut self, dir: &Path, regime: FullRegime, lines: &[String]) -> anyhow::Result<()> {
        let refusals: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix("refused ")).collect();
        self.refused += refusals.len() as u64;
        if regime == FullRegime::ReachReserve && self.room_to_warn {
            self.reserve_cycles += 1;
            if let Some(first) = refusals.first() {
                self.reserve_reached += 1;
                // The store has to warn (disk nearly full) while records still fit, before it refuses one.
                if *first != "1" {
                    self.refused_before_alarm += 1;
                }
            }
        }
        for error in lines.iter().filter_map(|l| l.strip_prefix("error ")) {
            self.write_errors += 1;
            self.note_error(error);
        }
        std::fs::remove_file(dir.join("ballast")).context("removing the ballast")?;
        let _ = std::fs::remove_file(dir.join("ballast.filler"));
        // A damaged index moved aside is kept for people to look at; on this small disk it would crowd out
        // the next cycles.
        for entry in std::fs::read_dir(dir)?.flatten() {
            if entry.file_name().to_string_lossy().starts_with("evidence.damaged-") {
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        Ok(())
    }

    /// Keeps one example of each cause (the text after the last path).
    pub(super) fn note_error(&mut self, error: &str) {
        let cause = |e: &str| e.rsplit(": ").next().unwrap_or_default().to_string();
        if self.first_errors.len() < 4 && !self.first_errors.iter().any(|e| cause(e) == cause(error)) {
            self.first_errors.push(error.to_string());
        }
    }

    /// The centre takes everything, as after a reconnect: delivered images may go when space runs short.
    pub(super) fn deliver_all(&self, store: &SledStore) -> anyhow::Result<()> {
        for id in store.pending(usize::MAX)? {
            store.mark_delivered(&super::receipt(id))?;
        }
        Ok(())
    }
}

/// Runs the full-disk crash test again inside a mount namespace of its own, on a 96 MiB tmpfs (`unshare`
/// from util-linux; as root or where unprivileged user namespaces are allowed). The mount goes with the
/// namespace when the test ends, however it ends.
pub(super) fn crash_test_in_tmpfs(cycles: u32, seed: u64, max_kill_ms: u64) -> anyhow::Result<bool> {
    let mount_point = tempfile::tempdir()?;
    let exe = std::env::current_exe()?;
    let status = Command::new("unshare")
        .args(["--mount", "--map-root-user", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=96m te-crash-test "$1" && shift && exec "$@""#)
        .arg("sh")
        .arg(mount_point.path())
        .arg(&exe)
        .args(["evidence", "crash-test", "--mode", "full", "--dir"])
        .arg(mount_point.path())
        .args(["--cycles", &cycles.to_string(), "--seed", &seed.to_string()])
        .args(["--max-kill-ms", &max_kill_ms.to_string()])
        .status()
        .context(
            "the full-disk mode mounts a small tmpfs with `unshare` (util-linux); or pass --dir on a filesystem \
             under 1 GiB",
        )?;
    Ok(status.success())
}
