//! Pre-event ring buffer: the last seconds of a camera's *encoded* video, so that the evidence stage can cut
//! a clip that starts before the moment it cares about, without re-encoding.
//!
//! Bounded twice: by seconds and by bytes; the oldest group of pictures goes first. The buffer always starts
//! at a keyframe (a clip must be decodable from its first byte), so eviction drops whole groups of pictures.
//! Clips are written as MP4 (`mp4mux`), copying the camera's H.264/H.265 access units as they came.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

/// One access unit (a picture) as the camera sent it.
#[derive(Debug, Clone)]
pub struct EncodedChunk {
    /// When the picture was taken (same clock as the decoded frames' `captured_at`).
    pub captured_at: chrono::DateTime<chrono::Utc>,
    pub pts: Option<gst::ClockTime>,
    pub dts: Option<gst::ClockTime>,
    pub duration: Option<gst::ClockTime>,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

/// Limits of one camera's ring buffer.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RingSettings {
    /// Seconds of video kept.
    pub seconds: u32,
    /// Bytes kept at most (a high-bitrate camera hits this before the seconds).
    pub max_bytes: usize,
}

impl Default for RingSettings {
    fn default() -> Self {
        Self { seconds: 10, max_bytes: 16 * 1024 * 1024 }
    }
}

/// A cut of the ring buffer: the caps of the stream and its pictures, starting at a keyframe.
#[derive(Debug, Clone)]
pub struct Clip {
    pub caps: String,
    pub chunks: Vec<EncodedChunk>,
}

impl Clip {
    pub fn start(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.chunks.first().map(|c| c.captured_at)
    }

    pub fn end(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.chunks.last().map(|c| c.captured_at)
    }
}

#[derive(Debug, Default)]
pub struct RingBuffer {
    settings: RingSettings,
    caps: Option<String>,
    chunks: VecDeque<EncodedChunk>,
    bytes: usize,
}

impl RingBuffer {
    pub fn new(settings: RingSettings) -> Self {
        Self { settings, ..Default::default() }
    }

    /// Adds a picture; a change of stream (new caps, e.g. after a reconnect) starts the buffer afresh.
    pub fn push(&mut self, caps: &str, chunk: EncodedChunk) {
        if self.caps.as_deref() != Some(caps) {
            self.chunks.clear();
            self.bytes = 0;
            self.caps = Some(caps.to_string());
        }
        if self.chunks.is_empty() && !chunk.keyframe {
            return; // a clip must start with a keyframe
        }
        self.bytes += chunk.data.len();
        self.chunks.push_back(chunk);
        let max_age = chrono::Duration::seconds(i64::from(self.settings.seconds));
        while self.over_limits(max_age) {
            self.drop_oldest_group();
        }
    }

    fn over_limits(&self, max_age: chrono::Duration) -> bool {
        let (Some(first), Some(last)) = (self.chunks.front(), self.chunks.back()) else { return false };
        // Keep at least the newest group of pictures, whatever its size.
        let groups = self.chunks.iter().filter(|c| c.keyframe).count();
        groups > 1 && (last.captured_at - first.captured_at > max_age || self.bytes > self.settings.max_bytes)
    }

    /// Drops the first keyframe and everything up to the next one.
    fn drop_oldest_group(&mut self) {
        if let Some(first) = self.chunks.pop_front() {
            self.bytes -= first.data.len();
        }
        while self.chunks.front().is_some_and(|c| !c.keyframe) {
            if let Some(c) = self.chunks.pop_front() {
                self.bytes -= c.data.len();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The span held.
    pub fn span(&self) -> Duration {
        match (self.chunks.front(), self.chunks.back()) {
            (Some(a), Some(b)) => (b.captured_at - a.captured_at).to_std().unwrap_or_default(),
            _ => Duration::ZERO,
        }
    }

    /// Pictures from the last keyframe at or before `since` up to the newest; `None` when empty.
    pub fn clip_since(&self, since: chrono::DateTime<chrono::Utc>) -> Option<Clip> {
        let caps = self.caps.clone()?;
        let start = self
            .chunks
            .iter()
            .rposition(|c| c.keyframe && c.captured_at <= since)
            .or_else(|| self.chunks.iter().position(|c| c.keyframe))?;
        Some(Clip { caps, chunks: self.chunks.iter().skip(start).cloned().collect() })
    }
}

/// Why a clip could not be written as MP4.
#[derive(Debug, thiserror::Error)]
pub enum ClipWriteError {
    #[error("GStreamer could not be initialised")]
    Init(#[source] gst::glib::Error),
    #[error("the MP4 writer pipeline could not be built")]
    Pipeline(#[source] gst::glib::Error),
    #[error("the MP4 writer pipeline is incomplete: {0}")]
    Incomplete(&'static str),
    #[error("the clip's caps {0:?} do not parse")]
    Caps(String),
    #[error("the MP4 writer could not start")]
    Start(#[source] gst::StateChangeError),
    #[error("the MP4 writer refused a picture: {0:?}")]
    Push(gst::FlowError),
    #[error("the MP4 writer failed")]
    Stream(#[source] gst::glib::Error),
    #[error("the MP4 writer did not finish in 30 s")]
    Timeout,
}

/// Writes `clip` as an MP4 file at `path`, copying the encoded pictures (no re-encoding).
pub fn write_mp4(clip: &Clip, path: &Path) -> Result<(), ClipWriteError> {
    gst::init().map_err(ClipWriteError::Init)?;
    // The parser fills in what a live source leaves out (decode times, caps details) for the muxer.
    let parser = if clip.caps.starts_with("video/x-h265") { "h265parse" } else { "h264parse" };
    let description = format!(
        "appsrc name=src format=time ! {parser} ! mp4mux ! filesink location=\"{}\"",
        path.display().to_string().replace('"', "")
    );
    let pipeline = gst::parse::launch(&description)
        .map_err(ClipWriteError::Pipeline)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| ClipWriteError::Incomplete("not a pipeline"))?;
    let src = pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or(ClipWriteError::Incomplete("appsrc missing"))?;
    let caps: gst::Caps = clip.caps.parse().map_err(|_| ClipWriteError::Caps(clip.caps.clone()))?;
    src.set_caps(Some(&caps));
    pipeline.set_state(gst::State::Playing).map_err(ClipWriteError::Start)?;
    // Time starts at the clip's first decode time.
    let origin = clip.chunks.first().and_then(|c| c.dts.or(c.pts)).unwrap_or(gst::ClockTime::ZERO);
    for chunk in &clip.chunks {
        let mut buffer = gst::Buffer::from_mut_slice(chunk.data.clone());
        {
            let b = buffer.get_mut().ok_or(ClipWriteError::Incomplete("buffer not writable"))?;
            b.set_pts(chunk.pts.map(|t| t.saturating_sub(origin)));
            b.set_dts(chunk.dts.map(|t| t.saturating_sub(origin)));
            b.set_duration(chunk.duration);
            if !chunk.keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        src.push_buffer(buffer).map_err(ClipWriteError::Push)?;
    }
    src.end_of_stream().map_err(ClipWriteError::Push)?;
    let bus = pipeline.bus().ok_or(ClipWriteError::Incomplete("no bus"))?;
    let result = match bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(30), &[gst::MessageType::Eos, gst::MessageType::Error])
    {
        Some(msg) => match msg.view() {
            gst::MessageView::Error(e) => Err(ClipWriteError::Stream(e.error())),
            _ => Ok(()),
        },
        None => Err(ClipWriteError::Timeout),
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(ms: i64, keyframe: bool, size: usize) -> EncodedChunk {
        let t0 = chrono::DateTime::<chrono::Utc>::from_timestamp(1_700_000_000, 0).expect("time");
        EncodedChunk {
            captured_at: t0 + chrono::Duration::milliseconds(ms),
            pts: Some(gst::ClockTime::from_mseconds(ms as u64)),
            dts: Some(gst::ClockTime::from_mseconds(ms as u64)),
            duration: Some(gst::ClockTime::from_mseconds(40)),
            keyframe,
            data: vec![0; size],
        }
    }

    #[test]
    fn the_buffer_keeps_whole_groups_within_its_seconds_and_starts_at_a_keyframe() {
        let mut ring = RingBuffer::new(RingSettings { seconds: 2, max_bytes: usize::MAX });
        ring.push("video/x-h264", chunk(0, false, 10)); // no keyframe yet: not kept
        assert!(ring.is_empty());
        for i in 0..100 {
            ring.push("video/x-h264", chunk(i * 40, i % 25 == 0, 10)); // a keyframe every second
        }
        assert!(ring.span() <= Duration::from_secs(2), "{:?}", ring.span());
        let clip = ring.clip_since(chrono::DateTime::<chrono::Utc>::MIN_UTC).expect("clip");
        assert!(clip.chunks[0].keyframe);
        assert_eq!(ring.bytes(), ring.len() * 10);
    }

    #[test]
    fn the_byte_limit_evicts_old_groups_but_keeps_the_newest() {
        let mut ring = RingBuffer::new(RingSettings { seconds: 60, max_bytes: 1000 });
        for i in 0..50 {
            ring.push("c", chunk(i * 40, i % 10 == 0, 100));
        }
        assert!(ring.bytes() <= 1000, "{}", ring.bytes());
        assert!(!ring.is_empty());
        // One huge group stays whole: the newest pictures are never thrown away.
        let mut ring = RingBuffer::new(RingSettings { seconds: 60, max_bytes: 10 });
        ring.push("c", chunk(0, true, 100));
        ring.push("c", chunk(40, false, 100));
        assert_eq!(ring.len(), 2);
    }

    #[test]
    fn a_clip_starts_at_the_last_keyframe_before_the_moment_asked_for() {
        let mut ring = RingBuffer::new(RingSettings { seconds: 60, max_bytes: usize::MAX });
        for i in 0..100 {
            ring.push("c", chunk(i * 40, i % 25 == 0, 10));
        }
        let t0 = chrono::DateTime::<chrono::Utc>::from_timestamp(1_700_000_000, 0).expect("time");
        let clip = ring.clip_since(t0 + chrono::Duration::milliseconds(2500)).expect("clip");
        assert_eq!(clip.start(), Some(t0 + chrono::Duration::milliseconds(2000)));
        assert_eq!(clip.chunks.len(), 50);
        // New caps (a reconnect to another stream) start afresh.
        ring.push("other", chunk(5000, true, 10));
        assert_eq!(ring.len(), 1);
    }
}
