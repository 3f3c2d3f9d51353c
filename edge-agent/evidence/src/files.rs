//! The second copy of the evidence: plain files beside sled, written and synced before sled indexes a record,
//! so that damaged or lost sled files never take a recorded violation with them (sled 0.34 promises no
//! on-disk format and is no longer developed).
//!
//! Layout under the files folder (`<store folder>.files`):
//! - `records/<sequence, 20 digits>-<ULID>.json`: the sealed record as stored ([`StoredEvidence`], pending),
//!   written last, so its presence means its media are complete;
//! - `media/<ULID>/overview.jpg`, `clip.mp4`, `plate-<sha256>.jpg` ([`OVERVIEW_FILE`], [`CLIP_FILE`],
//!   [`plate_file`]): the media it names;
//! - `delivered/<ULID>.json` (the central service's receipt) and `rejected/<ULID>.json` (why): delivery state,
//!   written before sled's; a marker lost in a power cut only means one more upload, which the centre answers
//!   with its first receipt.
//!
//! Each file is written beside its name, synced, renamed, and its folder synced (the order a power cut
//! respects: the rename is only visible once the bytes are on disk, and the name once the folder is).

use crate::{Delivery, EvidenceError, StoredEvidence};
use std::io::Write;
use std::path::{Path, PathBuf};
use te_types::EvidenceId;

/// The file names of a record's media in its folder.
pub const OVERVIEW_FILE: &str = "overview.jpg";
pub const CLIP_FILE: &str = "clip.mp4";

pub fn plate_file(sha256: &str) -> String {
    format!("plate-{sha256}.jpg")
}

#[derive(Debug)]
pub struct EvidenceFiles {
    root: PathBuf,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> EvidenceError + '_ {
    move |source| EvidenceError::Io { path: path.display().to_string(), source }
}

/// Writes `bytes` to `path` durably: a file beside it, synced, renamed, the folder synced.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), EvidenceError> {
    let dir = path.parent().ok_or_else(|| EvidenceError::Inconsistent(format!("{} has no folder", path.display())))?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = path.with_extension("partial");
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io(path))?;
    sync_dir(dir)
}

/// The entries of `dir`; none when it does not exist (nothing written there yet, or purged).
fn entries_of(dir: &Path) -> Result<Vec<std::fs::DirEntry>, EvidenceError> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.collect::<Result<_, _>>().map_err(io(dir)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io(dir)(e)),
    }
}

/// Removes the `.partial` files directly in `dir`; how many.
fn remove_partial_files(dir: &Path) -> Result<usize, EvidenceError> {
    let mut removed = 0;
    for entry in entries_of(dir)? {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "partial") {
            std::fs::remove_file(&path).map_err(io(&path))?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn sync_dir(dir: &Path) -> Result<(), EvidenceError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

impl EvidenceFiles {
    /// The files folder of the sled store at `store_dir`.
    pub fn beside(store_dir: &Path) -> Self {
        let mut name = store_dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".files");
        Self { root: store_dir.with_file_name(name) }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn record_path(&self, sequence: u64, id: EvidenceId) -> PathBuf {
        self.root.join("records").join(format!("{sequence:020}-{id}.json"))
    }

    pub fn media_dir(&self, id: EvidenceId) -> PathBuf {
        self.root.join("media").join(id.to_string())
    }

    /// Writes a sealed record's media, then the record: durable when this returns. A write that fails (a full
    /// disk) takes its half-written files with it, so that they neither hold space nor look like a record.
    pub fn write_record(&self, stored: &StoredEvidence, media: &[(String, &[u8])]) -> Result<(), EvidenceError> {
        let id = stored.record.evidence_id;
        let dir = self.media_dir(id);
        let written = (|| {
            for (name, bytes) in media {
                write_durably(&dir.join(name), bytes)?;
            }
            let json = serde_json::to_vec(stored)
                .map_err(|source| EvidenceError::Json { what: format!("record {id}"), source })?;
            write_durably(&self.record_path(stored.record.sequence, id), &json)?;
            if let Some(media_root) = dir.parent() {
                sync_dir(media_root)?;
            }
            Ok(())
        })();
        if written.is_err() {
            self.remove_record(stored);
        }
        written
    }

    /// Takes back the files of a record whose writing failed. Best effort.
    fn remove_record(&self, stored: &StoredEvidence) {
        let path = self.record_path(stored.record.sequence, stored.record.evidence_id);
        let _ = std::fs::remove_file(path.with_extension("partial"));
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_dir_all(self.media_dir(stored.record.evidence_id));
    }

    /// Records the delivery state (receipt or refusal) beside the record.
    pub fn write_delivery(&self, id: EvidenceId, delivery: &Delivery) -> Result<(), EvidenceError> {
        let json = serde_json::to_vec(delivery)
            .map_err(|source| EvidenceError::Json { what: "delivery state".into(), source })?;
        let folder = match delivery {
            Delivery::Delivered { .. } => "delivered",
            Delivery::Rejected { .. } => "rejected",
            Delivery::Pending => return Ok(()),
        };
        write_durably(&self.root.join(folder).join(format!("{id}.json")), &json)
    }

    /// The bytes a record's media files take (0 when there are none).
    pub fn media_bytes(&self, id: EvidenceId) -> Result<u64, EvidenceError> {
        let dir = self.media_dir(id);
        let mut total = 0;
        for entry in entries_of(&dir)? {
            total += entry.metadata().map_err(io(&dir))?.len();
        }
        Ok(total)
    }

    /// Removes a delivered record's media files (the record file stays).
    pub fn purge_media(&self, id: EvidenceId) -> Result<(), EvidenceError> {
        let dir = self.media_dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&dir)(e)),
        }
    }

    /// Record files by sequence: (sequence, id, path), ascending; names that are not ours are skipped.
    pub fn records(&self) -> Result<Vec<(u64, EvidenceId, PathBuf)>, EvidenceError> {
        let mut out = Vec::new();
        for entry in entries_of(&self.root.join("records"))? {
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) else { continue };
            let Some((seq, id)) = stem.split_once('-') else { continue };
            if let (Ok(seq), Ok(id)) = (seq.parse::<u64>(), id.parse::<EvidenceId>()) {
                out.push((seq, id, entry.path()));
            }
        }
        out.sort_by_key(|(seq, id, _)| (*seq, id.0 .0));
        Ok(out)
    }

    /// Removes what writes killed half-way leave: `.partial` files beside the record files, and in the media
    /// folders of records whose record file was never written (media are written first, the record last).
    /// Complete media files are kept even there. Run at open, when nothing is being written. Returns how
    /// many files went.
    pub fn remove_partials(&self) -> Result<usize, EvidenceError> {
        let records = self.records()?;
        let known: std::collections::HashSet<String> = records.iter().map(|(_, id, _)| id.to_string()).collect();
        let mut removed = remove_partial_files(&self.root.join("records"))?;
        for entry in entries_of(&self.root.join("media"))? {
            if known.contains(entry.file_name().to_string_lossy().as_ref()) {
                continue;
            }
            removed += remove_partial_files(&entry.path())?;
            let _ = std::fs::remove_dir(entry.path()); // only when nothing else is left in it
        }
        Ok(removed)
    }

    /// The record file of `id`, by looking (only after the index failed: it reads the folder).
    pub fn find_record(&self, id: EvidenceId) -> Result<Option<PathBuf>, EvidenceError> {
        Ok(self.records()?.into_iter().find(|(_, found, _)| *found == id).map(|(_, _, path)| path))
    }

    pub fn read_record(&self, path: &Path) -> Result<StoredEvidence, EvidenceError> {
        let bytes = std::fs::read(path).map_err(io(path))?;
        serde_json::from_slice(&bytes)
            .map_err(|source| EvidenceError::Json { what: path.display().to_string(), source })
    }

    /// A media file of record `id` (`None` when it is not there: purged, or never written).
    pub fn read_media(&self, id: EvidenceId, name: &str) -> Result<Option<Vec<u8>>, EvidenceError> {
        let path = self.media_dir(id).join(name);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// As [`read_media`](Self::read_media), only when the file hashes to `sha256`.
    pub fn read_media_checked(
        &self,
        id: EvidenceId,
        name: &str,
        sha256: &str,
    ) -> Result<Option<Vec<u8>>, EvidenceError> {
        Ok(self.read_media(id, name)?.filter(|b| central_protocol::sha256_hex(b) == sha256))
    }

    /// The delivery state the markers record for `id` (pending without one; a receipt wins over a refusal).
    pub fn delivery(&self, id: EvidenceId) -> Delivery {
        for folder in ["delivered", "rejected"] {
            let path = self.root.join(folder).join(format!("{id}.json"));
            if let Some(delivery) = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
                return delivery;
            }
        }
        Delivery::Pending
    }
}
