//! Clips sent ahead of their records, in chunks, addressed by SHA-256 (see `central_protocol::CLIPS_PATH`).
//!
//! Each box uploads into a folder of its own, `partial/<owner>/<sha>.part` (`owner`: the device id, or `open`
//! for unregistered boxes under open enrolment), so one box can never truncate or append to another's copy,
//! and each box may hold at most [`PARTIAL_QUOTA_BYTES`] of partial clips. A partial copy grows by appends at
//! exactly its current length (offset 0 starts it afresh). When the box asks for the status, or a record
//! names the clip, the partial file is hashed (once per length: asking again costs nothing) and, if it
//! matches, becomes the shared `<sha>.mp4`, which later records of the same vehicle reuse. So a status of
//! "not complete" with as many bytes as the clip has tells the box that the copy is wrong and to start again
//! at offset 0.
//!
//! Work on one clip is serialised by a lock chosen by its name (one of [`LOCKS`]); file work runs on the
//! blocking pool, never on the threads that answer requests.
//!
//! Both are working copies: a record's clip is stored with its media when the record arrives. [`ClipStore::sweep`]
//! removes whole clips unused for [`WHOLE_CLIP_KEEP`] and partial ones untouched for [`PARTIAL_CLIP_KEEP`]
//! (a box that stopped half way). Removing one never loses evidence: the box keeps every clip until the record
//! that names it is acknowledged, and sends it again from offset 0 when the centre no longer has it.

use central_protocol::{check_clip, is_sha256_hex, ClipStatus};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio::sync::Mutex;

/// A whole clip is kept this long after its last use, for the other records of the same vehicle.
pub const WHOLE_CLIP_KEEP: Duration = Duration::from_secs(24 * 3600);
/// A partial clip is kept this long after its last chunk, for its box to resume.
pub const PARTIAL_CLIP_KEEP: Duration = Duration::from_secs(7 * 24 * 3600);
/// Partial clips one box may hold at once, bytes (a box sends a few clips at a time).
pub const PARTIAL_QUOTA_BYTES: u64 = 512 << 20;
/// Locks that clips are spread over by name.
const LOCKS: usize = 64;

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
    #[error("this box already holds {held} bytes of unfinished clips (at most {quota}): finish or restart them")]
    OverQuota { held: u64, quota: u64 },
    #[error("clip {sha} is not held whole: {reason}; send it (again) through the clips API")]
    Incomplete { sha: String, reason: String },
    #[error("clip file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Whose partial copy: a registered device, or an unregistered box under open enrolment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    Device(&'a str),
    Open,
}

impl Owner<'_> {
    fn folder(&self) -> Result<String, ClipError> {
        match self {
            // Device ids are checked at registration (letters, digits, - _ .); a dot-only one is refused here.
            Owner::Device(id) if super::valid_device_id(id) && !id.starts_with('.') => Ok(format!("device-{id}")),
            Owner::Device(id) => Err(ClipError::BadName(id.chars().take(80).collect())),
            Owner::Open => Ok("open".into()),
        }
    }
}

#[derive(Debug)]
pub struct ClipStore {
    dir: PathBuf,
    max_bytes: u64,
    /// Appends and completions of one clip one at a time (two uploads of one clip may race); clips are
    /// spread over the locks by name, so one large clip holds up no other.
    locks: Vec<Mutex<()>>,
    /// Partial copies already hashed at their present length: (length, hashes right).
    hashed: std::sync::Mutex<HashMap<PathBuf, (u64, bool)>>,
    /// Bytes of partial copies per owner folder.
    held: std::sync::Mutex<HashMap<String, u64>>,
}

/// Runs file work on the blocking pool.
async fn blocking<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> Result<T, ClipError> + Send + 'static,
) -> Result<T, ClipError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ClipError::Io { path: path.to_path_buf(), source: std::io::Error::other(e.to_string()) })?
}

impl ClipStore {
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, ClipError> {
        let partial = dir.join("partial");
        std::fs::create_dir_all(&partial).map_err(|source| ClipError::Io { path: partial.clone(), source })?;
        // What each owner holds now, from the files (the quota survives a restart).
        let mut held = HashMap::new();
        for owner in std::fs::read_dir(&partial).map_err(|source| ClipError::Io { path: partial.clone(), source })? {
            let Ok(owner) = owner else { continue };
            let Some(name) = owner.file_name().to_str().map(str::to_owned) else { continue };
            let Ok(files) = std::fs::read_dir(owner.path()) else { continue };
            let bytes =
                files.flatten().filter_map(|f| f.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum();
            held.insert(name, bytes);
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            max_bytes,
            locks: (0..LOCKS).map(|_| Mutex::new(())).collect(),
            hashed: Default::default(),
            held: std::sync::Mutex::new(held),
        })
    }

    /// The lock of clip `sha` (a checked digest).
    fn lock(&self, sha: &str) -> &Mutex<()> {
        let n = usize::from_str_radix(&sha[..2], 16).unwrap_or(0) % LOCKS;
        &self.locks[n]
    }

    /// (whole clip, this owner's partial copy, the owner's folder name).
    fn paths(&self, sha: &str, owner: Owner<'_>) -> Result<(PathBuf, PathBuf, String), ClipError> {
        // Only a checked hex digest ever becomes a file name: no separators, no dots, no tricks.
        if !is_sha256_hex(sha) {
            return Err(ClipError::BadName(sha.chars().take(80).collect()));
        }
        let folder = owner.folder()?;
        let partial = self.dir.join("partial").join(&folder).join(format!("{sha}.part"));
        Ok((self.dir.join(format!("{sha}.mp4")), partial, folder))
    }

    fn add_held(&self, folder: &str, delta: i64) {
        if let Ok(mut held) = self.held.lock() {
            let n = held.entry(folder.to_owned()).or_default();
            *n = n.saturating_add_signed(delta);
        }
    }

    fn held_by(&self, folder: &str) -> u64 {
        self.held.lock().ok().and_then(|h| h.get(folder).copied()).unwrap_or(0)
    }

    /// Hashes the partial copy unless it was hashed at this length already; promotes it to whole when it
    /// checks out. Returns (length, complete). Call with the clip's lock held.
    async fn check_partial(
        &self,
        sha: &str,
        whole: &Path,
        partial: &Path,
        folder: &str,
    ) -> Result<(u64, bool), ClipError> {
        let length = {
            let p = partial.to_path_buf();
            blocking(partial, move || Ok(std::fs::metadata(&p).map(|m| m.len()).ok())).await?
        };
        let Some(length) = length else { return Ok((0, false)) };
        let known = self.hashed.lock().ok().and_then(|h| h.get(partial).copied());
        if let Some((len, false)) = known {
            if len == length {
                return Ok((length, false));
            }
        }
        let (p, w, sha_owned) = (partial.to_path_buf(), whole.to_path_buf(), sha.to_owned());
        let ok = blocking(partial, move || {
            let bytes = std::fs::read(&p).map_err(|source| ClipError::Io { path: p.clone(), source })?;
            if check_clip(&bytes, &sha_owned).is_err() {
                return Ok(false);
            }
            std::fs::rename(&p, &w).map_err(|source| ClipError::Io { path: w.clone(), source })?;
            Ok(true)
        })
        .await?;
        if let Ok(mut hashed) = self.hashed.lock() {
            if ok {
                hashed.remove(partial);
            } else {
                hashed.insert(partial.to_path_buf(), (length, false));
            }
        }
        if ok {
            self.add_held(folder, -(length as i64));
        }
        Ok((length, ok))
    }

    /// How much `owner` holds of clip `sha` (all of it when the clip is whole); a partial copy that checks
    /// out is promoted to whole here.
    pub async fn status(&self, sha: &str, owner: Owner<'_>) -> Result<ClipStatus, ClipError> {
        let (whole, partial, folder) = self.paths(sha, owner)?;
        let _guard = self.lock(sha).lock().await;
        if let Some(len) = self.whole_len(&whole).await? {
            return Ok(ClipStatus { received: len, complete: true });
        }
        let (received, complete) = self.check_partial(sha, &whole, &partial, &folder).await?;
        Ok(ClipStatus { received, complete })
    }

    async fn whole_len(&self, whole: &Path) -> Result<Option<u64>, ClipError> {
        let w = whole.to_path_buf();
        blocking(whole, move || Ok(w.is_file().then(|| std::fs::metadata(&w).map(|m| m.len()).unwrap_or(0)))).await
    }

    /// Appends `chunk` at `offset`, which must be the length held so far, or 0 to start again. Synced before it
    /// answers.
    pub async fn append(
        &self,
        sha: &str,
        owner: Owner<'_>,
        offset: u64,
        chunk: &[u8],
    ) -> Result<ClipStatus, ClipError> {
        let (whole, partial, folder) = self.paths(sha, owner)?;
        let _guard = self.lock(sha).lock().await;
        if let Some(len) = self.whole_len(&whole).await? {
            return Ok(ClipStatus { received: len, complete: true });
        }
        let current = {
            let p = partial.clone();
            blocking(&partial, move || Ok(std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0))).await?
        };
        let held = if offset > 0 { current } else { 0 };
        if offset != held {
            return Err(ClipError::WrongOffset { offset, held });
        }
        if held + chunk.len() as u64 > self.max_bytes {
            return Err(ClipError::TooLarge { max: self.max_bytes });
        }
        // This owner's other partial copies, plus this one as it will be.
        let others = self.held_by(&folder).saturating_sub(current);
        if others + held + chunk.len() as u64 > PARTIAL_QUOTA_BYTES {
            return Err(ClipError::OverQuota { held: others + current, quota: PARTIAL_QUOTA_BYTES });
        }
        let (p, bytes) = (partial.clone(), chunk.to_vec());
        blocking(&partial, move || {
            let io = |source| ClipError::Io { path: p.clone(), source };
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            let mut options = std::fs::OpenOptions::new();
            if offset == 0 {
                options.create(true).write(true).truncate(true);
            } else {
                options.append(true);
            }
            let mut file = options.open(&p).map_err(io)?;
            file.write_all(&bytes).map_err(io)?;
            file.sync_data().map_err(io)
        })
        .await?;
        let now = held + chunk.len() as u64;
        self.add_held(&folder, now as i64 - current as i64);
        // New bytes: whatever was known about the copy's hash no longer holds.
        if let Ok(mut hashed) = self.hashed.lock() {
            hashed.remove(&partial);
        }
        Ok(ClipStatus { received: now, complete: false })
    }

    /// The whole clip named `sha`, checked; `owner`'s partial copy that checks out is kept as whole from now on.
    pub async fn take(&self, sha: &str, owner: Owner<'_>) -> Result<Vec<u8>, ClipError> {
        let (whole, partial, folder) = self.paths(sha, owner)?;
        let _guard = self.lock(sha).lock().await;
        let w = whole.clone();
        let held = blocking(&whole, move || {
            if !w.is_file() {
                return Ok(None);
            }
            // In use: the sweep counts a whole clip's age from its last use.
            if let Ok(file) = std::fs::File::options().append(true).open(&w) {
                let _ = file.set_modified(SystemTime::now());
            }
            std::fs::read(&w).map(Some).map_err(|source| ClipError::Io { path: w.clone(), source })
        })
        .await?;
        if let Some(bytes) = held {
            return Ok(bytes);
        }
        let incomplete = |reason: String| ClipError::Incomplete { sha: sha.to_string(), reason };
        match self.check_partial(sha, &whole, &partial, &folder).await? {
            (0, false) => Err(incomplete("nothing received".into())),
            // Short (more chunks to come) or wrong: the box asks the status and resends from there.
            (n, false) => Err(incomplete(format!("{n} bytes held, and they do not hash to the name"))),
            (_, true) => {
                let w = whole.clone();
                blocking(&whole, move || std::fs::read(&w).map_err(|source| ClipError::Io { path: w.clone(), source }))
                    .await
            }
        }
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
        // Every clip's lock, in order: nothing is appended while its file may be removed.
        let mut guards = Vec::with_capacity(LOCKS);
        for lock in &self.locks {
            guards.push(lock.lock().await);
        }
        let dir = self.dir.clone();
        let (swept, freed) = blocking(&self.dir, move || sweep_files(&dir, now, whole_keep, partial_keep)).await?;
        for (folder, bytes) in freed {
            self.add_held(&folder, -(bytes as i64));
        }
        if let Ok(mut hashed) = self.hashed.lock() {
            hashed.retain(|path, _| path.is_file());
        }
        drop(guards);
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

/// The sweep's file work: whole clips in `dir`, partial ones in each owner's folder under `dir/partial`.
/// Returns what went, and the partial bytes freed per owner folder.
fn sweep_files(
    dir: &Path,
    now: SystemTime,
    whole_keep: Duration,
    partial_keep: Duration,
) -> Result<(Swept, Vec<(String, u64)>), ClipError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ClipError::Io { path, source }
    };
    let mut swept = Swept::default();
    let mut freed = Vec::new();
    let mut folders = vec![(dir.to_path_buf(), ".mp4", whole_keep, None)];
    let partial = dir.join("partial");
    for owner in std::fs::read_dir(&partial).map_err(io(&partial))? {
        let owner = owner.map_err(io(&partial))?;
        if owner.file_type().map_err(io(&partial))?.is_dir() {
            let name = owner.file_name().to_string_lossy().into_owned();
            folders.push((owner.path(), ".part", partial_keep, Some(name)));
        }
    }
    for (folder, suffix, keep, owner) in folders {
        let mut bytes_freed = 0;
        for entry in std::fs::read_dir(&folder).map_err(io(&folder))? {
            let entry = entry.map_err(io(&folder))?;
            let name = entry.file_name();
            // Only files this store named (a digest and its suffix) are ever removed.
            let Some(sha) = name.to_str().and_then(|n| n.strip_suffix(suffix)) else { continue };
            if !is_sha256_hex(sha) {
                continue;
            }
            let meta = entry.metadata().map_err(io(&folder))?;
            let age = meta.modified().ok().and_then(|m| now.duration_since(m).ok()).unwrap_or_default();
            if meta.is_file() && age > keep {
                std::fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
                swept.bytes += meta.len();
                bytes_freed += meta.len();
                if owner.is_none() {
                    swept.whole += 1;
                } else {
                    swept.partial += 1;
                }
            }
        }
        if let Some(owner) = owner {
            freed.push((owner, bytes_freed));
        }
    }
    Ok((swept, freed))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOX: Owner<'static> = Owner::Device("box-1");

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
        assert_eq!(store.append(&sha, BOX, 0, &clip[..4000]).await.expect("chunk").received, 4000);
        // The answer was lost; the box's next chunk is at a stale offset and is told where to go on.
        let stale = store.append(&sha, BOX, 3000, &clip[3000..5000]).await;
        assert!(matches!(stale, Err(ClipError::WrongOffset { held: 4000, .. })), "{stale:?}");
        assert!(matches!(store.take(&sha, BOX).await, Err(ClipError::Incomplete { .. })), "short is not whole");
        assert_eq!(store.status(&sha, BOX).await.expect("status").received, 4000, "a short clip is kept to resume");
        store.append(&sha, BOX, 4000, &clip[4000..]).await.expect("rest");
        assert_eq!(store.take(&sha, BOX).await.expect("whole"), clip);
        assert!(store.status(&sha, BOX).await.expect("status").complete);
        assert_eq!(store.take(&sha, BOX).await.expect("again"), clip, "a second record of the vehicle reuses it");
    }

    #[tokio::test]
    async fn a_full_length_copy_that_hashes_wrong_is_reported_incomplete_and_restarts_at_offset_zero() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ClipStore::open(dir.path(), 1 << 20).expect("open");
        let clip = mp4(1000);
        let sha = central_protocol::sha256_hex(&clip);
        let mut bad = clip.clone();
        bad[500] ^= 1;
        store.append(&sha, BOX, 0, &bad).await.expect("chunk");
        let status = store.status(&sha, BOX).await.expect("status");
        assert_eq!((status.received, status.complete), (clip.len() as u64, false));
        store.append(&sha, BOX, 0, &clip).await.expect("restart");
        assert!(store.status(&sha, BOX).await.expect("status").complete);
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
        store.append(&old_sha, BOX, 0, &old).await.expect("old");
        store.append(&fresh_sha, BOX, 0, &fresh).await.expect("fresh");
        store.take(&old_sha, BOX).await.expect("whole");
        store.take(&fresh_sha, BOX).await.expect("whole");
        store.append(&half_sha, BOX, 0, &half[..100]).await.expect("half");
        std::fs::write(dir.path().join("notes.txt"), "not ours").expect("other file");
        let day = Duration::from_secs(24 * 3600);
        let later = SystemTime::now() + day / 2;
        // Half a day on: nothing is old enough.
        assert_eq!(store.sweep(later, day, 7 * day).await.expect("sweep"), Swept::default());
        // Used again since: kept; two days on, the unused whole clip goes, the partial one waits for its box.
        store.take(&fresh_sha, BOX).await.expect("reuse");
        let old_path = dir.path().join(format!("{old_sha}.mp4"));
        std::fs::File::options()
            .append(true)
            .open(&old_path)
            .and_then(|f| f.set_modified(SystemTime::now() - 2 * day))
            .expect("age the old clip");
        let swept = store.sweep(SystemTime::now(), day, 7 * day).await.expect("sweep");
        assert_eq!((swept.whole, swept.partial, swept.bytes), (1, 0, old.len() as u64));
        assert!(store.status(&fresh_sha, BOX).await.expect("status").complete);
        assert_eq!(store.status(&half_sha, BOX).await.expect("status").received, 100);
        // A week and more without a chunk: the partial copy goes too; other files are never touched.
        let swept = store.sweep(SystemTime::now() + 8 * day, day, 7 * day).await.expect("sweep");
        assert_eq!((swept.whole, swept.partial), (1, 1));
        assert!(dir.path().join("notes.txt").is_file());
        // The box asks, learns nothing is held, and sends from offset 0.
        assert_eq!(store.status(&old_sha, BOX).await.expect("status"), ClipStatus { received: 0, complete: false });
        store.append(&old_sha, BOX, 0, &old).await.expect("again");
        assert_eq!(store.take(&old_sha, BOX).await.expect("whole again"), old);
    }

    #[tokio::test]
    async fn bad_names_and_oversized_clips_are_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ClipStore::open(dir.path(), 100).expect("open");
        for name in ["../../etc/passwd", "ABC", &"g".repeat(64), &format!("{}/x", "a".repeat(62))] {
            assert!(matches!(store.append(name, BOX, 0, b"x").await, Err(ClipError::BadName(_))), "{name}");
        }
        let sha = "a".repeat(64);
        assert!(matches!(store.append(&sha, BOX, 0, &[0u8; 101]).await, Err(ClipError::TooLarge { .. })));
        assert_eq!(store.status(&sha, BOX).await.expect("status").received, 0);
        assert_eq!(std::fs::read_dir(dir.path().join("partial")).expect("dir").count(), 0);
    }

    #[tokio::test]
    async fn one_box_cannot_truncate_or_finish_another_boxs_partial_clip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ClipStore::open(dir.path(), 1 << 20).expect("open");
        let clip = mp4(10_000);
        let sha = central_protocol::sha256_hex(&clip);
        let other = Owner::Device("box-2");
        store.append(&sha, BOX, 0, &clip[..6000]).await.expect("half");
        // Another box names the same clip and starts at 0: its own copy, not box-1's.
        store.append(&sha, other, 0, b"junk").await.expect("other's start");
        assert_eq!(store.status(&sha, BOX).await.expect("status").received, 6000, "box-1's copy is untouched");
        assert_eq!(store.status(&sha, other).await.expect("status").received, 4);
        store.append(&sha, BOX, 6000, &clip[6000..]).await.expect("rest");
        assert_eq!(store.take(&sha, BOX).await.expect("whole"), clip);
        // Whole clips are content-checked, so every box may use them.
        assert!(store.status(&sha, other).await.expect("status").complete);
        assert!(matches!(store.append(&sha, Owner::Device("../x"), 0, b"x").await, Err(ClipError::BadName(_))));
    }

    #[tokio::test]
    async fn a_box_over_its_quota_of_partial_clips_is_refused_and_others_are_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ClipStore::open(dir.path(), PARTIAL_QUOTA_BYTES).expect("open");
        let chunk = vec![7u8; 1 << 20];
        let mut refused = None;
        for i in 0..=(PARTIAL_QUOTA_BYTES >> 20) {
            let sha = central_protocol::sha256_hex(format!("clip {i}").as_bytes());
            if let Err(e) = store.append(&sha, BOX, 0, &chunk).await {
                refused = Some((i, e));
                break;
            }
        }
        let (i, e) = refused.expect("the quota stops the box");
        assert_eq!(i, PARTIAL_QUOTA_BYTES >> 20, "exactly the quota fits");
        assert!(matches!(e, ClipError::OverQuota { .. }), "{e}");
        let sha = central_protocol::sha256_hex(b"another box");
        store.append(&sha, Owner::Device("box-2"), 0, &chunk).await.expect("another box is not affected");
        // The quota survives a restart.
        let reopened = ClipStore::open(dir.path(), PARTIAL_QUOTA_BYTES).expect("reopen");
        let sha = central_protocol::sha256_hex(b"after restart");
        assert!(matches!(reopened.append(&sha, BOX, 0, &chunk).await, Err(ClipError::OverQuota { .. })));
    }
}
