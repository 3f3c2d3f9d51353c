//! Camera stage: turns a configured source into a stream of [`Frame`]s on a bounded channel: video frames stay
//! I420 as decoded (later stages convert only the pixels they use), stills are RGB.
//!
//! ```text
//!  video   urisourcebin(file://, rtsp://) -> parsebin -> tee -+-> decodebin -> [videorate] -> videoscale -> I420 -> appsink -+
//!                                                             +-> leaky queue -> appsink -> ring (encoded, for clips)        |
//!  stills  directory of JPEG/PNG -> image decode ---------------------------------------------------------------------------+--> SyncSender<Frame>
//! ```
//! (`video.rs` has the exact pipeline.)
//!
//! Invariants: this is the only crate that links GStreamer; every frame leaves through the caller's bounded
//! channel, and the camera's [`WhenFull`] policy decides what happens when that channel is full (block the
//! source, or drop the frame and count it). A camera never panics on bad input: a file or folder ends with a
//! [`CameraError`] that names the camera; a live (RTSP) camera reconnects with capped exponential backoff and
//! jitter for as long as the agent runs, moving through [`CameraState`]s that logs and health output show.
//! Frame numbers keep increasing across reconnects.

pub mod bench;
pub mod ring;
mod settings;
mod stills;
mod video;

pub use settings::{CameraSettings, ReconnectSettings, SourceKind, Transport, WhenFull};

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use te_types::{CameraId, Frame};

/// Why a camera stopped delivering frames.
#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    #[error("camera {camera}: source {source_path} does not exist")]
    SourceNotFound { camera: CameraId, source_path: String },
    #[error("camera {camera}: cannot build the GStreamer pipeline: {message}")]
    Pipeline { camera: CameraId, message: String },
    #[error("camera {camera}: stream error: {message}")]
    Stream { camera: CameraId, message: String },
    #[error("camera {camera}: GStreamer could not be initialised: {message}")]
    Init { camera: CameraId, message: String },
    #[error("camera {camera}: cannot read {path}: {message}")]
    Io { camera: CameraId, path: String, message: String },
}

/// Where a camera is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CameraState {
    /// Opening the source, waiting for the first frame.
    Connecting = 0,
    /// Frames are arriving.
    Streaming = 1,
    /// The source failed; waiting before the next attempt.
    BackingOff = 2,
    /// The source refuses us for a reason only a configuration change fixes (wrong password, no such stream,
    /// unknown codec); retried at the longest backoff so a fix on the camera side is picked up.
    FailedConfig = 3,
    /// Ended: end of file, stop requested, or a file that cannot be read.
    Ended = 4,
}

impl CameraState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Streaming => "streaming",
            Self::BackingOff => "backing_off",
            Self::FailedConfig => "failed_config",
            Self::Ended => "ended",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Connecting,
            1 => Self::Streaming,
            2 => Self::BackingOff,
            3 => Self::FailedConfig,
            _ => Self::Ended,
        }
    }
}

/// Counters a camera keeps while running; read them at any time.
#[derive(Debug, Default)]
pub struct CameraStats {
    state: AtomicU8,
    /// Connection attempts after the first (live sources).
    pub reconnects: AtomicU64,
    /// The last error, for health output (passwords redacted).
    pub last_error: std::sync::Mutex<Option<String>>,
    /// File replay: how far through the file, in thousandths (0 for live sources).
    pub replay_permille: AtomicU64,
    /// Frames handed to the channel.
    pub frames_delivered: AtomicU64,
    /// Frames discarded because the channel was full (policy `drop_newest`).
    pub frames_dropped: AtomicU64,
    /// Inputs that could not be decoded and were skipped (stills only; a broken video stream ends the camera).
    pub inputs_skipped: AtomicU64,
}

impl CameraStats {
    pub fn state(&self) -> CameraState {
        CameraState::from_u8(self.state.load(Ordering::Relaxed))
    }

    pub(crate) fn set_state(&self, camera: &CameraId, state: CameraState) {
        let old = CameraState::from_u8(self.state.swap(state as u8, Ordering::Relaxed));
        if old != state {
            tracing::info!(camera = %camera, from = old.as_str(), to = state.as_str(), "camera state");
        }
    }

    pub(crate) fn set_error(&self, error: Option<String>) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = error;
        }
    }
}

/// A running camera. Dropping the handle does not stop it; call [`CameraHandle::stop`] or wait for the end.
pub struct CameraHandle {
    pub id: CameraId,
    pub stats: Arc<CameraStats>,
    /// The last seconds of encoded video (video sources; stays empty for stills).
    pub ring: Arc<std::sync::Mutex<ring::RingBuffer>>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<(), CameraError>>,
}

impl CameraHandle {
    /// Asks the camera to stop soon; frames already in the channel stay there.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// A function that stops this camera, for signal handlers that cannot own the handle.
    pub fn stopper(&self) -> impl Fn() + Send + Sync + 'static {
        let stop = self.stop.clone();
        move || stop.store(true, Ordering::SeqCst)
    }

    /// Waits for the camera to end (end of file, stop, or error).
    pub fn join(self) -> Result<(), CameraError> {
        match self.thread.join() {
            Ok(result) => result,
            Err(_) => Err(CameraError::Stream { camera: self.id, message: "camera thread panicked".into() }),
        }
    }

    /// A clip of the encoded video from the last keyframe at or before `since` to now.
    pub fn clip_since(&self, since: chrono::DateTime<chrono::Utc>) -> Option<ring::Clip> {
        self.ring.lock().ok()?.clip_since(since)
    }

    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

/// Starts a camera on its own thread; frames go to `frames` until the source ends or [`CameraHandle::stop`].
pub fn spawn(settings: CameraSettings, frames: SyncSender<Frame>) -> Result<CameraHandle, CameraError> {
    settings.check_source()?;
    let stats = Arc::new(CameraStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let id = settings.id.clone();
    let delivery = Delivery { frames, when_full: settings.when_full, stats: stats.clone(), stop: stop.clone() };
    let thread_stop = stop.clone();
    let ring = Arc::new(std::sync::Mutex::new(ring::RingBuffer::new(settings.ring)));
    let thread_ring = ring.clone();
    let thread = std::thread::Builder::new()
        .name(format!("camera-{}", settings.id))
        .spawn(move || {
            let stats = delivery.stats.clone();
            let result = match settings.source_kind() {
                SourceKind::Stills(dir) => {
                    stats.set_state(&settings.id, CameraState::Streaming);
                    stills::run(&settings, &dir, delivery)
                }
                SourceKind::Uri(uri) => video::run(&settings, &uri, delivery, thread_stop, thread_ring),
            };
            if let Err(e) = &result {
                stats.set_error(Some(e.to_string()));
            }
            stats.set_state(&settings.id, CameraState::Ended);
            result
        })
        .map_err(|e| CameraError::Pipeline { camera: id.clone(), message: e.to_string() })?;
    Ok(CameraHandle { id, stats, ring, stop, thread })
}

/// Hands frames to the channel according to the camera's [`WhenFull`] policy.
struct Delivery {
    frames: SyncSender<Frame>,
    when_full: WhenFull,
    stats: Arc<CameraStats>,
    stop: Arc<AtomicBool>,
}

/// What the source should do after a delivery attempt.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    /// The receiver is gone or a stop was requested: end the camera.
    Stop,
}

impl Delivery {
    fn deliver(&self, frame: Frame) -> Flow {
        if self.stop.load(Ordering::SeqCst) {
            return Flow::Stop;
        }
        let sent = match self.when_full {
            WhenFull::Block => self.frames.send(frame).is_ok(),
            WhenFull::DropNewest => match self.frames.try_send(frame) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    self.stats.frames_dropped.fetch_add(1, Ordering::Relaxed);
                    return Flow::Continue;
                }
                Err(TrySendError::Disconnected(_)) => false,
            },
        };
        if sent {
            self.stats.frames_delivered.fetch_add(1, Ordering::Relaxed);
            Flow::Continue
        } else {
            Flow::Stop
        }
    }
}

/// What this box's GStreamer offers, for `edge-agent doctor`.
#[derive(Debug, Clone)]
pub struct GstProbe {
    pub version: String,
    /// (element, installed) for each element asked about.
    pub elements: Vec<(String, bool)>,
}

/// GStreamer's version and which of `elements` are installed.
pub fn probe(elements: &[&str]) -> Result<GstProbe, CameraError> {
    use gstreamer as gst;
    gst::init().map_err(|e| CameraError::Init { camera: CameraId::new("doctor"), message: e.to_string() })?;
    let registry = gst::Registry::get();
    Ok(GstProbe {
        version: gst::version_string().to_string(),
        elements: elements.iter().map(|e| (e.to_string(), registry.lookup_feature(e).is_some())).collect(),
    })
}
