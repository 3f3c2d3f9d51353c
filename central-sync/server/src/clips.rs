//! Clips sent ahead of their records, in chunks, addressed by SHA-256 (see `central_protocol::CLIPS_PATH`).
//!
//! `partial/<sha>.part` grows by appends at exactly its current length (offset 0 starts it afresh). When the
//! box asks for the status, or a record names the clip, the partial file is hashed and, if it matches, becomes
//! `<sha>.mp4`, which later records of the same vehicle reuse. So a status of "not complete" with as many bytes
//! as the clip has tells the box that the copy is wrong and to start again at offset 0.

use central_protocol::{check_clip, is_sha256_hex, ClipStatus};
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::sync::Mutex;

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
