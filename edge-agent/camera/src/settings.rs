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

/// How RTSP media travel from the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// Let rtspsrc try UDP, then fall back to TCP.
    #[default]
    Auto,
    /// RTP interleaved in the RTSP TCP connection: survives NAT and lossy links, a little more latency.
    Tcp,
    /// RTP over UDP: lowest latency on a clean LAN.
    Udp,
}

/// When a live camera goes away: wait, then try again, doubling the wait up to a cap, with jitter so that many
/// cameras behind one failed switch do not all retry at the same instant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconnectSettings {
    /// First wait after a failure, milliseconds.
    pub initial_ms: u64,
    /// Longest wait, milliseconds.
    pub max_ms: u64,
    /// A stream that delivers no frame for this long counts as gone (a cut cable sends no error), seconds.
    pub stall_timeout_s: u64,
}

impl Default for ReconnectSettings {
    fn default() -> Self {
        Self { initial_ms: 500, max_ms: 30_000, stall_timeout_s: 10 }
    }
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
    /// RTSP transport (ignored for files).
    #[serde(default)]
    pub transport: Transport,
    /// Width of the frames handed to analysis, pixels; the picture is scaled (keeping its aspect) before colour
    /// conversion, which is the expensive step. 0 keeps the camera's size.
    #[serde(default)]
    pub width: u32,
    /// RTSP jitter buffer, milliseconds.
    #[serde(default = "default_latency_ms")]
    pub latency_ms: u32,
    /// Reconnection of live sources (files end at their end instead).
    #[serde(default)]
    pub reconnect: ReconnectSettings,
    /// GStreamer decoder to prefer (the box profile's: `nvh264dec`, `nvv4l2decoder`, `vah264dec`,
    /// `v4l2h264dec`, `avdec_h264`...); empty lets GStreamer pick by rank. A named decoder that is not
    /// installed is a configuration error. The preference is process-wide (decoder ranks are global), so use
    /// one decoder per box, as the box profile does.
    #[serde(default)]
    pub decoder: String,
    /// Frames per second analysed from a live camera (the box profile's budget); frames above it are decoded
    /// but dropped before scaling and conversion. The clip keeps every frame. Files and still folders are
    /// analysed whole, so replays stay deterministic. 0: every frame.
    #[serde(default)]
    pub max_fps: u32,
    /// Pre-event ring buffer of encoded video, for clips that start before the event.
    #[serde(default)]
    pub ring: crate::ring::RingSettings,
}

fn default_latency_ms() -> u32 {
    200
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
    /// A camera with every optional setting at its default.
    pub fn new(id: CameraId, source: impl Into<String>) -> Self {
        Self {
            id,
            source: source.into(),
            when_full: WhenFull::default(),
            location: String::new(),
            transport: Transport::default(),
            width: 0,
            latency_ms: default_latency_ms(),
            reconnect: ReconnectSettings::default(),
            decoder: String::new(),
            max_fps: 0,
            ring: crate::ring::RingSettings::default(),
        }
    }

    /// A live source (RTSP) reconnects; a file or a folder ends.
    pub fn is_live(&self) -> bool {
        matches!(self.source_kind(), SourceKind::Uri(u) if u.starts_with("rtsp://") || u.starts_with("rtsps://"))
    }

    /// The URI with any password replaced, for logs and health output.
    pub fn redacted_source(&self) -> String {
        redact(self.source.trim())
    }

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
                    let rest = uri.split_once("://").map_or("", |(_, r)| r);
                    let authority = rest.split('/').next().unwrap_or("");
                    let host = authority.rsplit('@').next().unwrap_or("");
                    let host_ok = !host.is_empty() && !host.starts_with(':') && !host.contains(' ');
                    let port_ok = host.rsplit_once(':').is_none_or(|(_, p)| p.parse::<u16>().is_ok_and(|p| p > 0));
                    if !host_ok || !port_ok {
                        return Err(CameraError::Pipeline {
                            camera: self.id.clone(),
                            message: format!(
                                "malformed RTSP URL {:?}: expected rtsp://[user:pass@]host[:port]/path",
                                redact(&uri)
                            ),
                        });
                    }
                    if self.reconnect.initial_ms == 0 || self.reconnect.max_ms < self.reconnect.initial_ms {
                        return Err(CameraError::Pipeline {
                            camera: self.id.clone(),
                            message: "reconnect.initial_ms must be > 0 and reconnect.max_ms >= initial_ms".into(),
                        });
                    }
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

/// Replaces the password in `scheme://user:password@host/...` with `***`.
pub(crate) fn redact(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else { return uri.to_string() };
    let (authority, path) = rest.split_once('/').map_or((rest, None), |(a, p)| (a, Some(p)));
    let Some((userinfo, host)) = authority.rsplit_once('@') else { return uri.to_string() };
    let user = userinfo.split(':').next().unwrap_or("");
    let path = path.map(|p| format!("/{p}")).unwrap_or_default();
    format!("{scheme}://{user}:***@{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(source: &str) -> CameraSettings {
        CameraSettings::new(CameraId::new("c1"), source)
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
        assert!(settings("rtsp://admin:pw@10.0.0.5/Streaming/101").check_source().is_ok());
        for bad in ["rtsp://", "rtsp://:554/x", "rtsp://host:99999/x", "rtsp://host:abc/x", "rtsp://ho st/x"] {
            assert!(matches!(settings(bad).check_source(), Err(CameraError::Pipeline { .. })), "{bad}");
        }
    }

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(redact("rtsp://admin:s3cret@10.0.0.5:554/ch1"), "rtsp://admin:***@10.0.0.5:554/ch1");
        assert_eq!(redact("rtsp://10.0.0.5/ch1"), "rtsp://10.0.0.5/ch1");
        assert!(settings("rtsp://u:p@h/x").is_live() && !settings("/tmp/x.mp4").is_live());
    }
}
