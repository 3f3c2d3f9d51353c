//! What the user configures for one camera (as opposed to the state that exists only while it runs).

use crate::CameraError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use te_types::CameraId;

/// What a camera does when the analysis stage is behind and the frame channel is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Wait for room: right for file replay, where every frame should be analysed and nothing is live.
    Block,
    /// Drop the new frame and count it: right for live cameras, which must never stall or buffer without bound.
    #[default]
    DropNewest,
}

/// One camera as configured.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraSettings {
    /// Unique name on this box; appears in every record and log line of this camera.
    pub id: CameraId,
    /// `rtsp://...`, `file://...`, a path to a video file, or a path to a directory of still images
    /// (JPEG/PNG, one frame each, in name order).
    pub source: String,
    /// What to do when analysis falls behind.
    #[serde(default)]
    pub when_full: WhenFull,
    /// Human-readable place, written into evidence (e.g. "Nguyễn Trãi x Lê Lợi, hướng Bắc").
    #[serde(default)]
    pub location: String,
}

/// The source, resolved from [`CameraSettings::source`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// Something GStreamer's `uridecodebin` opens.
    Uri(String),
    /// A directory of still images.
    Stills(PathBuf),
}

impl CameraSettings {
    pub fn source_kind(&self) -> SourceKind {
        let s = self.source.trim();
        if s.contains("://") {
            return SourceKind::Uri(s.to_string());
        }
        let path = Path::new(s);
        if path.is_dir() {
            return SourceKind::Stills(path.to_path_buf());
        }
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        SourceKind::Uri(format!("file://{}", absolute.display()))
    }

    /// Checks what can be checked before starting: local files must exist, URIs must have a known scheme.
    pub fn check_source(&self) -> Result<(), CameraError> {
        let not_found = || CameraError::SourceNotFound { camera: self.id.clone(), source_path: self.source.clone() };
        match self.source_kind() {
            SourceKind::Stills(_) => Ok(()),
            SourceKind::Uri(uri) => {
                if let Some(path) = uri.strip_prefix("file://") {
                    if !Path::new(path).is_file() {
                        return Err(not_found());
                    }
                    Ok(())
                } else if uri.starts_with("rtsp://") || uri.starts_with("rtsps://") {
                    Ok(())
                } else {
                    Err(CameraError::Pipeline {
                        camera: self.id.clone(),
                        message: format!(
                            "unsupported source {uri:?}: use rtsp://, file://, a video file or a directory of images"
                        ),
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(source: &str) -> CameraSettings {
        CameraSettings {
            id: CameraId::new("c1"),
            source: source.into(),
            when_full: WhenFull::Block,
            location: String::new(),
        }
    }

    #[test]
    fn a_directory_is_a_stills_camera_and_a_file_becomes_a_file_uri() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(settings(dir.path().to_str().expect("utf8")).source_kind(), SourceKind::Stills(dir.path().into()));
        let file = dir.path().join("a.mp4");
        std::fs::write(&file, b"x").expect("write");
        assert_eq!(
            settings(file.to_str().expect("utf8")).source_kind(),
            SourceKind::Uri(format!("file://{}", file.display()))
        );
    }

    #[test]
    fn a_missing_file_and_an_unknown_scheme_are_refused_before_starting() {
        assert!(matches!(settings("/nope/x.mp4").check_source(), Err(CameraError::SourceNotFound { .. })));
        assert!(matches!(settings("http://x/y").check_source(), Err(CameraError::Pipeline { .. })));
        assert!(settings("rtsp://127.0.0.1:8554/x").check_source().is_ok());
    }
}
