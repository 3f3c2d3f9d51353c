//! Decode benchmark support: make an H.264 4:2:0 test clip (a test pattern, a re-encoded video, or a still
//! picture held for some seconds), and measure how fast N cameras decode it.
//!
//! Used by `edge-agent camera bench`; figures, not a test. Each camera replays the clip as fast as it can
//! (policy `block`, a consumer that takes every frame), through the same pipeline a live camera uses.

use crate::{CameraError, CameraSettings, WhenFull};
use gstreamer as gst;
use gstreamer::prelude::*;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;
use te_types::CameraId;

/// Encodes `seconds` of a moving test pattern at `width`x`height`, 25 fps, H.264 4:2:0, into an MP4 file.
pub fn make_clip(path: &Path, width: u32, height: u32, seconds: u32) -> Result<(), CameraError> {
    let description = format!(
        "videotestsrc num-buffers={} pattern=ball ! video/x-raw,format=I420,width={width},height={height},\
         framerate=25/1 ! x264enc speed-preset=ultrafast key-int-max=25 ! video/x-h264,profile=main ! \
         h264parse ! mp4mux ! filesink location=\"{}\"",
        seconds * 25,
        path.display()
    );
    run_to_end(&description)
}

/// Re-encodes the video file `source` at `width`x`height` (H.264 main 4:2:0, its own frame rate) into an MP4:
/// a fixed real-footage benchmark input at a camera's resolution.
pub fn transcode_clip(source: &Path, path: &Path, width: u32, height: u32) -> Result<(), CameraError> {
    let description = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale ! \
         video/x-raw,format=I420,width={width},height={height},pixel-aspect-ratio=1/1 ! \
         x264enc speed-preset=ultrafast key-int-max=25 ! video/x-h264,profile=main ! h264parse ! mp4mux ! \
         filesink location=\"{}\"",
        source.display(),
        path.display()
    );
    run_to_end(&description)
}

/// Re-encodes `source` as a camera would send it: `width`x`height` at 25 fps, H.264 main profile 4:2:0 with
/// CABAC and no B-frames, `kbps` kilobits a second, a keyframe every 2 s. The input of `edge-agent bench`,
/// served over RTSP as encoded (nothing is re-encoded during a measurement).
pub fn camera_like_clip(source: &Path, path: &Path, width: u32, height: u32, kbps: u32) -> Result<(), CameraError> {
    let description = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale ! videorate ! \
         video/x-raw,format=I420,width={width},height={height},pixel-aspect-ratio=1/1,framerate=25/1 ! \
         x264enc speed-preset=veryfast bitrate={kbps} bframes=0 key-int-max=50 ! \
         video/x-h264,profile=main ! h264parse ! mp4mux ! filesink location=\"{}\"",
        source.display(),
        path.display()
    );
    run_to_end(&description)
}

/// Encodes the still picture `image` (JPEG) as `seconds` of 10 fps H.264 video in an MP4 file: a real frame
/// that a camera sees unchanged, so that a tracker follows what is in it over many frames (replay tests).
pub fn still_clip(image: &Path, path: &Path, seconds: u32) -> Result<(), CameraError> {
    let description = format!(
        "filesrc location=\"{}\" ! jpegdec ! videoconvert ! imagefreeze num-buffers={} ! \
         video/x-raw,framerate=10/1 ! videoconvert ! video/x-raw,format=I420 ! \
         x264enc speed-preset=ultrafast key-int-max=10 ! h264parse ! mp4mux ! filesink location=\"{}\"",
        image.display(),
        seconds * 10,
        path.display()
    );
    run_to_end(&description)
}

fn run_to_end(description: &str) -> Result<(), CameraError> {
    let camera = CameraId::new("bench");
    let err = |message: String| CameraError::Pipeline { camera: camera.clone(), message };
    gst::init().map_err(|e| err(e.to_string()))?;
    let pipeline = gst::parse::launch(description).map_err(|e| err(e.to_string()))?;
    pipeline.set_state(gst::State::Playing).map_err(|e| err(e.to_string()))?;
    let bus = pipeline.bus().ok_or_else(|| err("no bus".into()))?;
    let result = match bus.timed_pop_filtered(gst::ClockTime::NONE, &[gst::MessageType::Eos, gst::MessageType::Error]) {
        Some(msg) => match msg.view() {
            gst::MessageView::Error(e) => Err(err(e.error().to_string())),
            _ => Ok(()),
        },
        None => Err(err("pipeline ended without a message".into())),
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub struct DecodeFigures {
    pub cameras: usize,
    pub frames: u64,
    pub seconds: f64,
    /// Process CPU time (user + system) during the run, seconds.
    pub cpu_seconds: f64,
}

impl DecodeFigures {
    pub fn fps_per_camera(&self) -> f64 {
        self.frames as f64 / self.seconds / self.cameras as f64
    }

    /// Share of one core each stream used during the run.
    pub fn cpu_per_camera(&self) -> f64 {
        self.cpu_seconds / self.seconds / self.cameras as f64
    }

    /// Share of one core a live stream at `fps` would need (CPU time per frame x fps).
    pub fn core_share_at(&self, fps: f64) -> f64 {
        self.cpu_seconds / self.frames.max(1) as f64 * fps
    }

    /// How many such live streams the machine's cores could decode at `fps`.
    pub fn streams_at(&self, fps: f64, cores: usize) -> f64 {
        cores as f64 / self.core_share_at(fps)
    }
}

/// Process CPU time so far, seconds (Linux /proc).
pub fn process_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat").ok().and_then(|stat| parse_stat(&stat)).map_or(0.0, |(_, cpu)| cpu)
}

/// A `/proc/<pid>/stat` (or `/proc/<pid>/task/<tid>/stat`) line: the command name and its CPU seconds (user +
/// system); `None` if the line is not one.
pub fn parse_stat(stat: &str) -> Option<(String, f64)> {
    // The name sits in parentheses and may hold spaces; the fields after the last ')' are fixed.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let name = stat.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the ')'. 100 ticks per second.
    Some((name, (ticks(11) + ticks(12)) / 100.0))
}

/// Decodes `clip` with `cameras` cameras at once (frames `width` wide; 0 = native), RGB out, every frame taken.
pub fn decode_throughput(clip: &Path, cameras: usize, width: u32) -> Result<DecodeFigures, CameraError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(cameras * 4);
    let cpu_start = process_cpu_seconds();
    let started = Instant::now();
    let mut handles = Vec::new();
    for i in 0..cameras {
        let settings = CameraSettings {
            when_full: WhenFull::Block,
            width,
            ..CameraSettings::new(CameraId::new(format!("bench-{i}")), clip.display().to_string())
        };
        handles.push(crate::spawn(settings, tx.clone())?);
    }
    drop(tx);
    let mut frames = 0u64;
    for _frame in rx {
        frames += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = process_cpu_seconds() - cpu_start;
    for handle in handles {
        let stats = handle.stats.clone();
        handle.join()?;
        debug_assert!(stats.frames_dropped.load(Ordering::Relaxed) == 0);
    }
    Ok(DecodeFigures { cameras, frames, seconds, cpu_seconds })
}

#[cfg(test)]
mod tests {
    use super::parse_stat;

    #[test]
    fn a_stat_line_gives_its_name_with_spaces_and_its_user_plus_system_seconds() {
        let line = "4242 (queue8:src a) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(parse_stat(line), Some(("queue8:src a".to_string(), 3.0)));
        assert_eq!(parse_stat("no parentheses"), None);
    }
}
