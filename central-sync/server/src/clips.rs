//! Clips sent ahead of their records, in chunks, addressed by SHA-256 (see `central_protocol::CLIPS_PATH`).
//!
//! `partial/<sha>.part` grows by appends at exactly its current length (offset 0 starts it afresh). When the
//! box asks for the status, or a record names the clip, the partial file is hashed and, if it matches, becomes
//! `<sha>.mp4`, which later records of the same vehicle reuse. So a status of "not complete" with as many bytes
//! as the clip has tells the box that the copy is wrong and to start again at offset 0.
//!
//! Both are working copies: a record's clip is stored with its media when the record arrives. [`ClipStore::sweep`]
//! removes whole clips unused for [`WHOLE_CLIP_KEEP`] and partial ones untouched for [`PARTIAL_CLIP_KEEP`]
//! (a box that stopped half way). Removing one never loses evidence: the box keeps every clip until the record
//! that names it is acknowledged, and sends it again from offset 0 when the centre no longer has it.

use central_protocol::{check_clip, is_sha256_hex, ClipStatus};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio::sync::Mutex;

/// A whole clip is kept this long after its last use, for the other records of the same vehicle.
pub const WHOLE_CLIP_KEEP: Duration = Duration::from_secs(24 * 3600);
/// A partial clip is kept this long after its last chunk, for its box to resume.
pub const PARTIAL_CLIP_KEEP: Duration = Duration::from_secs(7 * 24 * 3600);

/// What a sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub whole: u64,
    pub partial: u64,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("{0:?} is not a SHA-256 (64 lowercase hex digits)")]
    BadName(String),
    #[error("chunk at offset {offset}, but {held} bytes are held")]
    WrongOffset { offset: u64, held: u64 },
    #[error("clip would exceed {max} bytes")]
    TooLarge { max: u64 },
    #[error("clip {sha} is not held whole: {reason}; send it (again) through the clips API")]
    Incomplete { sha: String, reason: String },
    #[error("clip file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

#[derive(Debug)]
pub struct ClipStore {
    dir: PathBuf,
    max_bytes: u64,
    /// Appends and completions one at a time: two uploads of one clip (two records of one vehicle) may race.
    lock: Mutex<()>,
}

impl ClipStore {
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, ClipError> {
        let partial = dir.join("partial");
        std::fs::create_dir_all(&partial).map_err(|source| ClipError::Io { path: partial, source })?;
        Ok(Self { dir: dir.to_path_buf(), max_bytes, lock: Mutex::new(()) })
    }

    fn paths(&self, sha: &str) -> Result<(PathBuf, PathBuf), ClipError> {
        // Only a checked hex digest ever becomes a file name: no separators, no dots, no tricks.
        if !is_sha256_hex(sha) {
            return Err(ClipError::BadName(sha.chars().take(80).collect()));
        }
        Ok((self.dir.join(format!("{sha}.mp4")), self.dir.join("partial").join(format!("{sha}.part"))))
    }

    /// How much is held; a partial copy that checks out is promoted to whole here.
    pub async fn status(&self, sha: &str) -> Result<ClipStatus, ClipError> {
        let (whole, partial) = self.paths(sha)?;
        let _guard = self.lock.lock().await;
        if !whole.is_file() && partial.is_file() {
            let bytes = std::fs::read(&partial).map_err(|source| ClipError::Io { path: partial.clone(), source })?;
            if check_clip(&bytes, sha).is_err() {
                return Ok(ClipStatus { received: bytes.len() as u64, complete: false });
            }
            std::fs::rename(&partial, &whole).map_err(|source| ClipError::Io { path: whole.clone(), source })?;
        }
        if whole.is_file() {
            return Ok(ClipStatus { received: len(&whole)?, complete: true });
        }
        Ok(ClipStatus { received: 0, complete: false })
    }

    /// Appends `chunk` at `offset`, which must be the length held so far, or 0 to start again. Synced before it
    /// answers.
    pub async fn append(&self, sha: &str, offset: u64, chunk: &[u8]) -> Result<ClipStatus, ClipError> {
        let (whole, partial) = self.paths(sha)?;
        let _guard = self.lock.lock().await;
        if whole.is_file() {
            return Ok(ClipStatus { received: len(&whole)?, complete: true });
        }
        let held = if partial.is_file() && offset > 0 { len(&partial)? } else { 0 };
        if offset != held {
            return Err(ClipError::WrongOffset { offset, held });
        }
        if held + chunk.len() as u64 > self.max_bytes {
            return Err(ClipError::TooLarge { max: self.max_bytes });
        }
        let io = |source| ClipError::Io { path: partial.clone(), source };
        let mut options = std::fs::OpenOptions::new();
        if offset == 0 {
            options.create(true).write(true).truncate(true);
        } else {
            options.append(true);
        }
        let mut file = options.open(&partial).map_err(io)?;
        file.write_all(chunk).map_err(io)?;
        file.sync_data().map_err(io)?;
        Ok(ClipStatus { received: held + chunk.len() as u64, complete: false })
    }

    /// The whole clip named `sha`, checked; a partial copy that checks out is kept as whole from now on.
    pub async fn take(&self, sha: &str) -> Result<Vec<u8>, ClipError> {
        let (whole, partial) = self.paths(sha)?;
        let _guard = self.lock.lock().await;
        if whole.is_file() {
            // In use: the sweep counts a whole clip's age from its last use.
            if let Ok(file) = std::fs::File::options().append(true).open(&whole) {
                let _ = file.set_modified(SystemTime::now());
            }
            return std::fs::read(&whole).map_err(|source| ClipError::Io { path: whole.clone(), source });
        }
        let incomplete = |reason: String| ClipError::Incomplete { sha: sha.to_string(), reason };
        let bytes = match std::fs::read(&partial) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(incomplete("nothing received".into())),
            Err(source) => return Err(ClipError::Io { path: partial, source }),
        };
        // Short (more chunks to come) or wrong: the box asks the status and resends from there.
        check_clip(&bytes, sha).map_err(|e| incomplete(format!("{} bytes held, {e}", bytes.len())))?;
        std::fs::rename(&partial, &whole).map_err(|source| ClipError::Io { path: whole.clone(), source })?;
        Ok(bytes)
    }
}

impl ClipStore {
    /// Removes whole clips unused for `whole_keep` and partial ones untouched for `partial_keep`, as of `now`.
    pub async fn sweep(
        &self,
        now: SystemTime,
        whole_keep: Duration,
        partial_keep: Duration,
    ) -> Result<Swept, ClipError> {
        let _guard = self.lock.lock().await;
        let mut swept = Swept::default();
        for (dir, suffix, keep) in
            [(self.dir.clone(), ".mp4", whole_keep), (self.dir.join("partial"), ".part", partial_keep)]
        {
            let io = |source| ClipError::Io { path: dir.clone(), source };
            for entry in std::fs::read_dir(&dir).map_err(io)? {
                let entry = entry.map_err(io)?;
                let name = entry.file_name();
                // Only files this store named (a digest and its suffix) are ever removed.
                let Some(sha) = name.to_str().and_then(|n| n.strip_suffix(suffix)) else { continue };
                if !is_sha256_hex(sha) {
                    continue;
                }
                let meta = entry.metadata().map_err(io)?;
                let age = meta.modified().ok().and_then(|m| now.duration_since(m).ok()).unwrap_or_default();
                if meta.is_file() && age > keep {
                    std::fs::remove_file(entry.path())
                        .map_err(|source| ClipError::Io { path: entry.path(), source })?;
                    swept.bytes += meta.len();
                    if suffix == ".mp4" {
                        swept.whole += 1;
                    } else {
                        swept.partial += 1;
                    }
                }
            }
        }
        Ok(swept)
    }

    /// Sweeps with the default ages every hour, for as long as the service runs.
    pub async fn sweep_forever(self: std::sync::Arc<Self>) {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            match self.sweep(SystemTime::now(), WHOLE_CLIP_KEEP, PARTIAL_CLIP_KEEP).await {
                Ok(s) if s.whole + s.partial > 0 => {
                    tracing::info!(
                        whole = s.whole,
                        partial = s.partial,
                        bytes = s.bytes,
                        "working copies of clips removed"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "clip sweep failed"),
            }
        }
    }
}

fn len(path: &Path) -> Result<u64, ClipError> {
    std::fs::metadata(path).map(|m| m.len()).map_err(|source| ClipError::Io { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4(n: usize) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 24, b'f', b't', b'y', b'p'];
        v.extend((0..n).map(|i| (i % 251) as u8));
        v
    }

    #[tokio::test]
    async fn a_clip_sent_in_chunks_resumes_at_the_held_offset_and_becomes_whole_once_it_checks_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ClipStore::open(dir.path(), 1 << 20).expect("open");
        let clip = mp4(10_000);
        let sha = central_protocol::sha256_hex(&clip);
        assert_eq!(store.append(&sha, 0, &clip[..4000]).await.expect("chunk").received, 4000);
        // The answer was lost; the box's next chunk is at a stale offset and is told where to go on.
        let stale = store.append(&sha, 3000, &clip[3000..5000]).await;
        assert!(matches!(stale, Err(ClipError::WrongOffset { held: 4000, .. })), "{stale:?}");
        assert!(matches!(store.take(&sha).await, Err(ClipError::Incomplete { .. })), "short is not whole");
        assert_eq!(store.status(&sha).await.expect("status").received, 4000, "a short clip is kept to resume");
        store.append(&sha, 4000, &clip[4000..]).await.expect("rest");
        assert_eq!(store.take(&sha).await.expect("whole"), clip);
        assert!(store.status(&sha).await.expect("status").complete);
        assert_eq!(store.take(&sha).await.expect("again"), clip, "a second record of the vehicle reuses it");
    }

    #[tokio::test]
    async fn a_full_length_copy_that_hashes_wrong_is_reported_incomplete_and_restarts_at_offset_zero() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ClipStore::open(dir.path(), 1 << 20).expect("open");
        let clip = mp4(1000);
        let sha = central_protocol::sha256_hex(&clip);
        let mut bad = clip.clone();
        bad[500] ^= 1;
        store.append(&sha, 0, &bad).await.expect("chunk");
        let status = store.status(&sha).await.expect("status");
        assert_eq!((status.received, status.complete), (clip.len() as u64, false));
        store.append(&sha, 0, &clip).await.expect("restart");
        assert!(store.status(&sha).await.expect("status").complete);
    }

    #[tokio::test]
    async fn the_sweep_removes_only_old_working_copies_and_a_removed_clip_is_simply_sent_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ClipStore::open(dir.path(), 1 << 20).expect("open");
        let (old, fresh, half) = (mp4(100), mp4(200), mp4(300));
        let (old_sha, fresh_sha, half_sha) = (
            central_protocol::sha256_hex(&old),
            central_protocol::sha256_hex(&fresh),
            central_protocol::sha256_hex(&half),
        );
        store.append(&old_sha, 0, &old).await.expect("old");
        store.append(&fresh_sha, 0, &fresh).await.expect("fresh");
        store.take(&old_sha).await.expect("whole");
        store.take(&fresh_sha).await.expect("whole");
        store.append(&half_sha, 0, &half[..100]).await.expect("half");
        std::fs::write(dir.path().join("notes.txt"), "not ours").expect("other file");
        let day = Duration::from_secs(24 * 3600);
        let later = SystemTime::now() + day / 2;
        // Half a day on: nothing is old enough.
        assert_eq!(store.sweep(later, day, 7 * day).await.expect("sweep"), Swept::default());
        // Used again since: kept; two days on, the unused whole clip goes, the partial one waits for its box.
        store.take(&fresh_sha).await.expect("reuse");
        let old_path = dir.path().join(format!("{old_sha}.mp4"));
        std::fs::File::options()
            .append(true)
            .open(&old_path)
            .and_then(|f| f.set_modified(SystemTime::now() - 2 * day))
            .expect("age the old clip");
        let swept = store.sweep(SystemTime::now(), day, 7 * day).await.expect("sweep");
        assert_eq!((swept.whole, swept.partial, swept.bytes), (1, 0, old.len() as u64));
        assert!(store.status(&fresh_sha).await.expect("status").complete);
        assert_eq!(store.status(&half_sha).await.expect("status").received, 100);
        // A week and more without a chunk: the partial copy goes too; other files are never touched.
        let swept = store.sweep(SystemTime::now() + 8 * day, day, 7 * day).await.expect("sweep");
        assert_eq!((swept.whole, swept.partial), (1, 1));
        assert!(dir.path().join("notes.txt").is_file());
        // The box asks, learns nothing is held, and sends from offset 0.
        assert_eq!(store.status(&old_sha).await.expect("status"), ClipStatus { received: 0, complete: false });
        store.append(&old_sha, 0, &old).await.expect("again");
        assert_eq!(store.take(&old_sha).await.expect("whole again"), old);
    }

    #[tokio::test]
    async fn bad_names_and_oversized_clips_are_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ClipStore::open(dir.path(), 100).expect("open");
        for name in ["../../etc/passwd", "ABC", &"g".repeat(64), &format!("{}/x", "a".repeat(62))] {
            assert!(matches!(store.append(name, 0, b"x").await, Err(ClipError::BadName(_))), "{name}");
        }
        let sha = "a".repeat(64);
        assert!(matches!(store.append(&sha, 0, &[0u8; 101]).await, Err(ClipError::TooLarge { .. })));
        assert_eq!(store.status(&sha).await.expect("status").received, 0);
        assert_eq!(std::fs::read_dir(dir.path().join("partial")).expect("dir").count(), 0);
    }
}
