//! A video camera: `uridecodebin` opens files and RTSP alike, frames reach Rust as packed RGB through appsink.
//!
//! The appsink callback runs on GStreamer's streaming thread. With [`crate::WhenFull::Block`] it blocks that
//! thread when the channel is full, which back-pressures the source (file replay analyses every frame); with
//! `DropNewest` it never blocks, so a live stream cannot stall or queue without bound.

use crate::{CameraError, CameraSettings, Delivery, Flow};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use te_types::Frame;

/// How often the bus loop wakes up to look at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(100);

pub(crate) fn run(
    settings: &CameraSettings,
    uri: &str,
    delivery: Delivery,
    stop: Arc<AtomicBool>,
) -> Result<(), CameraError> {
    let camera = settings.id.clone();
    let pipeline_err = |message: String| CameraError::Pipeline { camera: camera.clone(), message };
    gst::init().map_err(|e| CameraError::Init { camera: camera.clone(), message: e.to_string() })?;

    // Scale before converting: colour conversion is the expensive step, so do it on fewer pixels.
    let uri_escaped = uri.replace('"', "%22");
    let description = format!(
        "uridecodebin uri=\"{uri_escaped}\" name=src ! queue max-size-buffers=4 ! videoscale ! videoconvert ! \
         video/x-raw,format=RGB,pixel-aspect-ratio=1/1 ! appsink name=sink sync=false max-buffers=2"
    );
    let pipeline = gst::parse::launch(&description)
        .map_err(|e| pipeline_err(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| pipeline_err("launch description did not produce a pipeline".into()))?;
    let appsink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| pipeline_err("appsink missing from pipeline".into()))?;

    let started_at = chrono::Utc::now();
    let next_number = AtomicU64::new(0);
    let sink_camera = camera.clone();
    appsink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let frame = to_frame(&sample, &sink_camera, started_at, &next_number).ok_or_else(|| {
                    tracing::error!(camera = %sink_camera, "sample without usable RGB caps or buffer");
                    gst::FlowError::Error
                })?;
                match delivery.deliver(frame) {
                    Flow::Continue => Ok(gst::FlowSuccess::Ok),
                    Flow::Stop => Err(gst::FlowError::Flushing),
                }
            })
            .build(),
    );

    pipeline.set_state(gst::State::Playing).map_err(|e| pipeline_err(format!("cannot start: {e}")))?;
    tracing::info!(camera = %camera, %uri, "video camera started");
    let result = watch_bus(&pipeline, settings, &stop);
    // Null state releases decoders and sockets; do it whatever the outcome.
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// Runs until end of stream, an error, or the stop flag.
fn watch_bus(pipeline: &gst::Pipeline, settings: &CameraSettings, stop: &AtomicBool) -> Result<(), CameraError> {
    let camera = settings.id.clone();
    let bus = pipeline
        .bus()
        .ok_or_else(|| CameraError::Pipeline { camera: camera.clone(), message: "pipeline has no bus".into() })?;
    loop {
        if stop.load(Ordering::SeqCst) {
            tracing::info!(camera = %camera, "camera stopped on request");
            return Ok(());
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(STOP_POLL.as_millis() as u64)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => {
                tracing::info!(camera = %camera, "end of stream");
                return Ok(());
            }
            gst::MessageView::Error(err) => {
                // A flushing error after a stop request is our own doing, not a stream fault.
                if stop.load(Ordering::SeqCst) {
                    return Ok(());
                }
                let message = match err.debug() {
                    Some(debug) => format!("{} ({})", err.error(), debug),
                    None => err.error().to_string(),
                };
                return Err(CameraError::Stream { camera, message });
            }
            _ => {}
        }
    }
}

/// Copies one RGB sample into a packed [`Frame`]; `None` if the sample is not the RGB we asked for.
fn to_frame(
    sample: &gst::Sample,
    camera: &te_types::CameraId,
    started_at: chrono::DateTime<chrono::Utc>,
    next_number: &AtomicU64,
) -> Option<Frame> {
    let info = gst_video::VideoInfo::from_caps(sample.caps()?).ok()?;
    let buffer = sample.buffer()?;
    let pts = buffer.pts();
    let video = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).ok()?;
    let (width, height) = (info.width(), info.height());
    let row_bytes = width as usize * 3;
    let stride = usize::try_from(*video.plane_stride().first()?).ok()?;
    let plane = video.plane_data(0).ok()?;
    // GStreamer pads rows to 4 bytes; the rest of the agent wants tightly packed rows.
    let mut data = Vec::with_capacity(row_bytes * height as usize);
    for row in 0..height as usize {
        data.extend_from_slice(plane.get(row * stride..row * stride + row_bytes)?);
    }
    let offset = pts.map(|t| chrono::Duration::nanoseconds(t.nseconds() as i64)).unwrap_or_default();
    Some(Frame {
        camera: camera.clone(),
        number: next_number.fetch_add(1, Ordering::Relaxed),
        captured_at: started_at + offset,
        scene_cut: false,
        width,
        height,
        data: Arc::new(data),
    })
}
