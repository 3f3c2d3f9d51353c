//! A video camera: `urisourcebin` opens files and RTSP alike, frames reach Rust as I420 through appsink.
//!
//! ```text
//!  urisourcebin (rtspsrc: transport, latency) -> parsebin -> H.264/H.265 -> tee
//!      tee -> queue -> decodebin -> [videorate: max_fps, live only] -> videoscale -> [width] -> videoconvert -> I420 -> appsink (frames)
//!      tee -> leaky queue -> appsink (encoded pictures) -> pre-event ring buffer
//! ```
//!
//! The appsink callback runs on GStreamer's streaming thread. With [`crate::WhenFull::Block`] it blocks that
//! thread when the channel is full, which back-pressures the source (file replay analyses every frame); with
//! `DropNewest` it never blocks, so a live stream cannot stall or queue without bound.
//!
//! A live source is watched: an error, an end of stream, or no frame for `stall_timeout_s` ends the attempt,
//! and the camera tries again after a capped, jittered, exponentially growing wait. Each attempt builds a
//! fresh pipeline (state is per attempt; the frame counter and statistics live across attempts). Time: a file
//! frame is stamped with the start of the replay plus its position in the file; a live frame with its arrival
//! time at the box (the NTP time that some cameras send in RTCP is not used yet).
//!
//! Frames stay I420 (what H.264/H.265 decoders give: `videoconvert` passes it through): converting every 1080p
//! frame to RGB cost ~3 ms and doubled its memory, while the agent converts only the parts it looks at
//! (`te_types::pixels`).

use crate::ring::{EncodedChunk, RingBuffer};
use crate::{CameraError, CameraSettings, CameraState, Delivery, Flow, Transport};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use te_types::{Frame, Pixels, YuvMatrix, I420};

/// How often the bus loop wakes up to look at the stop flag and the stall clock.
const POLL: Duration = Duration::from_millis(100);
/// An attempt that streamed at least this long resets the backoff to its initial wait.
const HEALTHY_AFTER: Duration = Duration::from_secs(5);

/// How one attempt ended.
enum Ended {
    /// End of stream: the end of a file, or a live server that closed the stream.
    Eos,
    /// The stop flag was raised.
    Stopped,
}

/// Why an attempt failed, and whether only a configuration change can fix it.
struct Failure {
    error: CameraError,
    needs_config: bool,
}

pub(crate) fn run(
    settings: &CameraSettings,
    uri: &str,
    delivery: Delivery,
    stop: Arc<AtomicBool>,
    ring: Arc<Mutex<RingBuffer>>,
) -> Result<(), CameraError> {
    let camera = settings.id.clone();
    gst::init().map_err(|e| CameraError::Init { camera: camera.clone(), message: e.to_string() })?;
    prefer_decoder(settings)?;
    let delivery = Arc::new(delivery);
    let numbers = Arc::new(AtomicU64::new(0));
    let live = settings.is_live();
    let mut backoff = Backoff::new(settings.reconnect.initial_ms, settings.reconnect.max_ms);
    let mut attempt = 0u64;
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        if attempt > 0 {
            delivery.stats.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        attempt += 1;
        delivery.stats.set_state(&camera, CameraState::Connecting);
        let started = Instant::now();
        let outcome = run_once(settings, uri, &delivery, &numbers, &stop, &ring);
        let wait = match outcome {
            Ok(Ended::Stopped) => return Ok(()),
            Ok(Ended::Eos) if !live => return Ok(()),
            Err(failure) if !live => return Err(failure.error),
            Ok(Ended::Eos) => {
                tracing::warn!(camera = %camera, "live stream ended; reconnecting");
                delivery.stats.set_error(Some("the server ended the stream".into()));
                delivery.stats.set_state(&camera, CameraState::BackingOff);
                backoff.next(started.elapsed() >= HEALTHY_AFTER)
            }
            Err(Failure { error, needs_config }) => {
                let state = if needs_config { CameraState::FailedConfig } else { CameraState::BackingOff };
                delivery.stats.set_error(Some(error.to_string()));
                delivery.stats.set_state(&camera, state);
                let wait = if needs_config { backoff.max() } else { backoff.next(started.elapsed() >= HEALTHY_AFTER) };
                tracing::warn!(camera = %camera, error = %error, retry_in_ms = wait.as_millis() as u64,
                    "camera attempt failed");
                wait
            }
        };
        // Sleep in small steps so that a stop request is honoured promptly.
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            std::thread::sleep(POLL.min(until.saturating_duration_since(Instant::now())));
        }
    }
}

/// Makes the configured decoder win decodebin's choice by ranking it above every other decoder.
fn prefer_decoder(settings: &CameraSettings) -> Result<(), CameraError> {
    let name = settings.decoder.trim();
    if name.is_empty() {
        return Ok(());
    }
    let feature = gst::Registry::get().lookup_feature(name).ok_or_else(|| CameraError::Pipeline {
        camera: settings.id.clone(),
        message: format!(
            "decoder {name:?} is not installed on this box (gst-inspect-1.0 {name}); fix `decoder` for this camera \
             or the box profile"
        ),
    })?;
    feature.set_rank(gst::Rank::PRIMARY + 100);
    tracing::info!(camera = %settings.id, decoder = name, "decoder preferred");
    Ok(())
}

/// Reconnect waits: the shared schedule (`te_types::backoff`), started over after a healthy stream.
struct Backoff {
    schedule: te_types::backoff::Backoff,
    rng: fastrand::Rng,
}

impl Backoff {
    fn new(initial_ms: u64, max_ms: u64) -> Self {
        let schedule =
            te_types::backoff::Backoff::new(Duration::from_millis(initial_ms), Duration::from_millis(max_ms));
        Self { schedule, rng: fastrand::Rng::new() }
    }

    /// The wait before the next attempt; `healthy` (the last attempt streamed a while) starts over.
    fn next(&mut self, healthy: bool) -> Duration {
        if healthy {
            self.schedule.reset();
        }
        self.schedule.next(self.rng.f64())
    }

    fn max(&mut self) -> Duration {
        self.schedule.max()
    }
}

fn run_once(
    settings: &CameraSettings,
    uri: &str,
    delivery: &Arc<Delivery>,
    numbers: &Arc<AtomicU64>,
    stop: &AtomicBool,
    ring: &Arc<Mutex<RingBuffer>>,
) -> Result<Ended, Failure> {
    let camera = settings.id.clone();
    let fail = |message: String| Failure {
        error: CameraError::Pipeline { camera: camera.clone(), message },
        needs_config: false,
    };

    let scale = if settings.width > 0 {
        // Height follows from the aspect ratio; even sizes keep the I420 planes whole.
        format!("videoscale ! video/x-raw,width={},pixel-aspect-ratio=1/1 ! ", settings.width + settings.width % 2)
    } else {
        "videoscale ! ".to_string()
    };
    // The frame-rate budget drops whole decoded frames before the expensive scale and colour conversion.
    let budget = if settings.is_live() && settings.max_fps > 0 {
        format!("videorate drop-only=true max-rate={} ! ", settings.max_fps)
    } else {
        String::new()
    };
    let uri_escaped = uri.replace('"', "%22");
    // The parsed (still encoded) stream is split: one branch is decoded for analysis, the other feeds the
    // pre-event ring buffer as it came from the camera. Only H.264/H.265 are accepted (enforcement cameras).
    let description = format!(
        "urisourcebin uri=\"{uri_escaped}\" name=src ! parsebin ! capsfilter caps=\"video/x-h264;video/x-h265\" ! \
         tee name=t \
         t. ! queue max-size-buffers=4 ! decodebin ! {budget}{scale}videoconvert ! \
         video/x-raw,format=I420,pixel-aspect-ratio=1/1 ! appsink name=sink sync=false max-buffers=2 \
         t. ! queue max-size-buffers=16 leaky=downstream ! appsink name=encoded sync=false max-buffers=16 drop=true"
    );
    let pipeline = gst::parse::launch(&description)
        .map_err(|e| fail(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| fail("launch description did not produce a pipeline".into()))?;
    let appsink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| fail("appsink missing from pipeline".into()))?;
    if let Some(src) = pipeline.by_name("src") {
        configure_rtsp(&src, settings);
    }
    if let Some(encoded) = pipeline.by_name("encoded").and_then(|e| e.downcast::<gst_app::AppSink>().ok()) {
        feed_ring(&encoded, ring.clone(), settings.is_live());
    }

    let live = settings.is_live();
    let started_at = chrono::Utc::now();
    let last_frame_ms = Arc::new(AtomicU64::new(0));
    let clock = Instant::now();
    let sink_camera = camera.clone();
    let sink_delivery = delivery.clone();
    let sink_numbers = numbers.clone();
    let sink_last = last_frame_ms.clone();
    appsink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let stamp = if live { Stamp::Arrival } else { Stamp::FilePosition(started_at) };
                let frame = to_frame(&sample, &sink_camera, stamp, &sink_numbers).ok_or_else(|| {
                    tracing::error!(camera = %sink_camera, "sample without usable I420 caps or buffer");
                    gst::FlowError::Error
                })?;
                sink_last.store(clock.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
                match sink_delivery.deliver(frame) {
                    Flow::Continue => Ok(gst::FlowSuccess::Ok),
                    Flow::Stop => Err(gst::FlowError::Flushing),
                }
            })
            .build(),
    );

    if let Err(e) = pipeline.set_state(gst::State::Playing) {
        let _ = pipeline.set_state(gst::State::Null);
        return Err(fail(format!("cannot start: {e}")));
    }
    tracing::info!(camera = %camera, source = %settings.redacted_source(), "video camera connecting");
    let result = watch_bus(&pipeline, settings, stop, &last_frame_ms, clock, delivery);
    // Null state releases decoders and sockets; do it whatever the outcome.
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// Copies every encoded picture into the ring buffer (the appsink drops, never blocks, if the ring falls behind).
fn feed_ring(encoded: &gst_app::AppSink, ring: Arc<Mutex<RingBuffer>>, live: bool) {
    let started_at = chrono::Utc::now();
    encoded.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let (Some(buffer), Some(caps)) = (sample.buffer(), sample.caps()) else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let Ok(map) = buffer.map_readable() else { return Ok(gst::FlowSuccess::Ok) };
                let captured_at = if live {
                    chrono::Utc::now()
                } else {
                    started_at
                        + buffer.pts().map(|t| chrono::Duration::nanoseconds(t.nseconds() as i64)).unwrap_or_default()
                };
                let chunk = EncodedChunk {
                    captured_at,
                    pts: buffer.pts(),
                    dts: buffer.dts(),
                    duration: buffer.duration(),
                    keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
                    data: map.as_slice().to_vec(),
                };
                if let Ok(mut ring) = ring.lock() {
                    ring.push(&caps.to_string(), chunk);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}

/// Transport, latency and timeouts of the RTSP source inside urisourcebin, once it exists.
fn configure_rtsp(uridecodebin: &gst::Element, settings: &CameraSettings) {
    let transport = settings.transport;
    let latency = settings.latency_ms;
    uridecodebin.connect("source-setup", false, move |args| {
        let source = args.get(1).and_then(|v| v.get::<gst::Element>().ok())?;
        if source.find_property("protocols").is_some() {
            match transport {
                Transport::Tcp => source.set_property_from_str("protocols", "tcp"),
                Transport::Udp => source.set_property_from_str("protocols", "udp"),
                Transport::Auto => {}
            }
            source.set_property("latency", latency);
            // Give up on a silent TCP connection rather than hang; our stall clock covers the rest.
            source.set_property("tcp-timeout", 5_000_000u64);
        }
        None
    });
}

/// Runs until end of stream, an error, a stall, or the stop flag.
fn watch_bus(
    pipeline: &gst::Pipeline,
    settings: &CameraSettings,
    stop: &AtomicBool,
    last_frame_ms: &AtomicU64,
    clock: Instant,
    delivery: &Delivery,
) -> Result<Ended, Failure> {
    let camera = settings.id.clone();
    let stream_failure = |message: String, needs_config: bool| Failure {
        error: CameraError::Stream { camera: camera.clone(), message },
        needs_config,
    };
    let bus = pipeline.bus().ok_or_else(|| stream_failure("pipeline has no bus".into(), false))?;
    let stall = Duration::from_secs(settings.reconnect.stall_timeout_s.max(1));
    let mut streaming = false;
    let mut next_progress = Instant::now();
    let mut last_logged_tenth = 0;
    loop {
        // Replay progress: a line every 10% and a figure in the stats, so long re-analyses show how far they are.
        if !settings.is_live() && streaming && Instant::now() >= next_progress {
            next_progress = Instant::now() + Duration::from_secs(2);
            let position = pipeline.query_position::<gst::ClockTime>();
            let duration = pipeline.query_duration::<gst::ClockTime>();
            if let (Some(p), Some(d)) = (position, duration.filter(|d| d.nseconds() > 0)) {
                let permille = (p.nseconds() as u128 * 1000 / d.nseconds() as u128).min(1000) as u64;
                delivery.stats.replay_permille.store(permille, Ordering::Relaxed);
                if permille / 100 > last_logged_tenth {
                    last_logged_tenth = permille / 100;
                    tracing::info!(camera = %camera, percent = permille / 10, position = %p, duration = %d, "replay progress");
                }
            }
        }
        if stop.load(Ordering::SeqCst) {
            tracing::info!(camera = %camera, "camera stopped on request");
            return Ok(Ended::Stopped);
        }
        let last = last_frame_ms.load(Ordering::Relaxed);
        if last > 0 && !streaming {
            streaming = true;
            delivery.stats.set_error(None);
            delivery.stats.set_state(&camera, CameraState::Streaming);
        }
        // Silence: before the first frame (cannot connect or negotiate) or after it (cable cut, camera hung).
        let silent_for = clock.elapsed().saturating_sub(Duration::from_millis(last.saturating_sub(1)));
        if settings.is_live() && silent_for > stall {
            let what = if streaming { "no frame" } else { "no first frame" };
            return Err(stream_failure(format!("{what} for {} s", stall.as_secs()), false));
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(POLL.as_millis() as u64)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => {
                tracing::info!(camera = %camera, "end of stream");
                return Ok(Ended::Eos);
            }
            gst::MessageView::Error(err) => {
                // A flushing error after a stop request is our own doing, not a stream fault.
                if stop.load(Ordering::SeqCst) {
                    return Ok(Ended::Stopped);
                }
                let message = match err.debug() {
                    Some(debug) => format!("{} ({})", err.error(), debug),
                    None => err.error().to_string(),
                };
                return Err(stream_failure(redact_all(&message), needs_config(&err.error())));
            }
            _ => {}
        }
    }
}

/// Errors that retrying cannot fix: the camera refuses our credentials, has no such stream, or sends
/// something we cannot decode.
fn needs_config(error: &gst::glib::Error) -> bool {
    if let Some(e) = error.kind::<gst::ResourceError>() {
        return matches!(e, gst::ResourceError::NotAuthorized | gst::ResourceError::NotFound);
    }
    if let Some(e) = error.kind::<gst::StreamError>() {
        return matches!(e, gst::StreamError::CodecNotFound | gst::StreamError::WrongType | gst::StreamError::Format);
    }
    false
}

/// GStreamer's debug strings can quote the URL, password included.
fn redact_all(message: &str) -> String {
    message
        .split(' ')
        .map(|word| if word.contains("://") { crate::settings::redact(word) } else { word.to_string() })
        .collect::<Vec<_>>()
        .join(" ")
}

/// How a frame's capture time is decided.
#[derive(Clone, Copy)]
enum Stamp {
    /// Live: the moment the frame reached the box.
    Arrival,
    /// Replay: the start of the replay plus the frame's position in the file.
    FilePosition(chrono::DateTime<chrono::Utc>),
}

/// Copies one I420 sample into a [`Frame`] with tightly packed planes; `None` if the sample is not the I420 we
/// asked for.
fn to_frame(sample: &gst::Sample, camera: &te_types::CameraId, stamp: Stamp, numbers: &AtomicU64) -> Option<Frame> {
    let info = gst_video::VideoInfo::from_caps(sample.caps()?).ok()?;
    if info.format() != gst_video::VideoFormat::I420 {
        return None;
    }
    let buffer = sample.buffer()?;
    let pts = buffer.pts();
    let video = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).ok()?;
    let (width, height) = (info.width(), info.height());
    let (chroma_w, chroma_h) = I420::chroma_size(width, height);
    // GStreamer may pad rows; the rest of the agent wants tightly packed planes.
    let plane = |index: u32, row_bytes: u32, rows: u32| -> Option<Vec<u8>> {
        let stride = usize::try_from(*video.plane_stride().get(index as usize)?).ok()?;
        let data = video.plane_data(index).ok()?;
        let mut packed = Vec::with_capacity(row_bytes as usize * rows as usize);
        for row in 0..rows as usize {
            packed.extend_from_slice(data.get(row * stride..row * stride + row_bytes as usize)?);
        }
        Some(packed)
    };
    let (y, u, v) = (plane(0, width, height)?, plane(1, chroma_w, chroma_h)?, plane(2, chroma_w, chroma_h)?);
    let colorimetry = info.colorimetry();
    let matrix = match colorimetry.matrix() {
        gst_video::VideoColorMatrix::Bt601
        | gst_video::VideoColorMatrix::Smpte240m
        | gst_video::VideoColorMatrix::Fcc => YuvMatrix::Bt601,
        gst_video::VideoColorMatrix::Unknown if height < 720 => YuvMatrix::Bt601,
        _ => YuvMatrix::Bt709,
    };
    let full_range = colorimetry.range() == gst_video::VideoColorRange::Range0_255;
    let planes = I420::new(width, height, y, u, v, matrix, full_range)?;
    let captured_at = match stamp {
        Stamp::Arrival => chrono::Utc::now(),
        Stamp::FilePosition(start) => {
            start + pts.map(|t| chrono::Duration::nanoseconds(t.nseconds() as i64)).unwrap_or_default()
        }
    };
    Some(Frame {
        camera: camera.clone(),
        number: numbers.fetch_add(1, Ordering::Relaxed),
        captured_at,
        scene_cut: false,
        width,
        height,
        pixels: Pixels::I420(Arc::new(planes)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter_and_starts_over_after_a_healthy_stream() {
        let mut b = Backoff::new(100, 800);
        let waits: Vec<u64> = (0..6).map(|_| b.next(false).as_millis() as u64).collect();
        for (wait, base) in waits.iter().zip([100u64, 200, 400, 800, 800, 800]) {
            assert!((base / 2..=base).contains(wait), "{waits:?}");
        }
        let after_healthy = b.next(true).as_millis() as u64;
        assert!((50..=100).contains(&after_healthy));
    }

    #[test]
    fn urls_in_error_messages_lose_their_password() {
        assert_eq!(
            redact_all("Could not open rtsp://admin:pw@10.0.0.1/x (401)"),
            "Could not open rtsp://admin:***@10.0.0.1/x (401)"
        );
    }
}
