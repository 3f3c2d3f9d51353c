//! `edge-agent bench`: the edge pipeline on a fixed 1080p real-footage video, side by side with a Python
//! reference pipeline (onnxruntime + OpenCV, same model, same video, same frames).
//!
//! ```text
//!  car-detection.mp4 -> re-encoded 1920x1080 H.264 (fixed input)
//!  Rust:   camera stage (GStreamer decode, RGB) -> YOLOX (ort) -> tracker -> plate reading   (the agent's code)
//!  Python: cv2.VideoCapture -> YOLOX (onnxruntime) letterbox/decode/NMS                     (models/reference)
//! ```
//!
//! The ratio compares like with like: decode + vehicle detection on every frame, on both sides. The full
//! pipeline (tracking and plate reading added) is reported beside it. Last line, a contract other tools
//! read: `fps=<x> ref_fps=<y> ratio=<x/y> infer_share=<fraction> rss_mb=<n>`.

use crate::config::AgentConfig;
use anyhow::{bail, Context};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use te_camera::{CameraSettings, WhenFull};
use te_infer::{PlateRecognizer, RgbView, VehicleDetector};
use te_track::{Tracker, TrackerSettings};
use te_types::{CameraId, Frame};

/// Time spent per stage over a run.
#[derive(Debug, Default, Clone, Copy)]
struct Stages {
    frames: u64,
    wall: Duration,
    waiting_for_frames: Duration,
    detect: Duration,
    track: Duration,
    plates: Duration,
}

impl Stages {
    fn fps(&self) -> f64 {
        self.frames as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    fn ms(&self, d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0 / self.frames.max(1) as f64
    }
}

/// Runs `cameras` replay cameras on `video` into one analysis loop, for at most `max_frames` frames in all.
fn run_pipeline(
    video: &Path,
    cameras: usize,
    max_frames: u64,
    detector: &mut VehicleDetector,
    mut plates: Option<&mut PlateRecognizer>,
) -> anyhow::Result<Stages> {
    let (tx, rx) = std::sync::mpsc::sync_channel(4 * cameras);
    let handles: Vec<_> = (0..cameras)
        .map(|i| {
            let settings = CameraSettings {
                when_full: WhenFull::Block,
                ..CameraSettings::new(CameraId::new(format!("bench-{i}")), video.display().to_string())
            };
            te_camera::spawn(settings, tx.clone())
        })
        .collect::<Result<_, _>>()?;
    drop(tx);
    let mut trackers: std::collections::HashMap<CameraId, Tracker> = Default::default();
    let mut stages = Stages::default();
    let started = Instant::now();
    loop {
        let waited = Instant::now();
        let Ok(frame): Result<Frame, _> = rx.recv() else { break };
        stages.waiting_for_frames += waited.elapsed();
        let t = Instant::now();
        let detections = detector.detect(&frame)?;
        stages.detect += t.elapsed();
        let t = Instant::now();
        let tracker = trackers.entry(frame.camera.clone()).or_insert_with(|| Tracker::new(TrackerSettings::default()));
        tracker.update(frame.number, frame.captured_at, &detections);
        stages.track += t.elapsed();
        if let Some(recognizer) = plates.as_deref_mut() {
            // As the agent does: vehicles at least 80 px wide, every third frame.
            let t = Instant::now();
            if frame.number % 3 == 0 {
                if let Some(view) = RgbView::new(&frame.data, frame.width, frame.height) {
                    let min_width = crate::pipeline::PlateReading::default().min_vehicle_width;
                    for d in detections.iter().filter(|d| d.bbox.width() >= min_width).take(4) {
                        if let Some((crop, origin)) = te_infer::vehicle_crop(view, &d.bbox) {
                            // As the agent does: each read keeps the plate's picture.
                            if let Some(read) = recognizer.read_plates(RgbView::of_image(&crop))?.first() {
                                let plate = read.bbox().shifted(origin.0, origin.1);
                                crate::pipeline::plate_picture_jpeg(view, &plate);
                            }
                        }
                    }
                }
            }
            stages.plates += t.elapsed();
        }
        stages.frames += 1;
        if stages.frames >= max_frames {
            break;
        }
    }
    stages.wall = started.elapsed();
    for h in &handles {
        h.stop();
    }
    drop(rx);
    for h in handles {
        let _ = h.join();
    }
    Ok(stages)
}

/// Decode alone: how fast the camera stage delivers RGB frames with nothing downstream.
fn decode_only(video: &Path, max_frames: u64) -> anyhow::Result<Stages> {
    let (tx, rx) = std::sync::mpsc::sync_channel(4);
    let settings = CameraSettings {
        when_full: WhenFull::Block,
        ..CameraSettings::new(CameraId::new("decode"), video.display().to_string())
    };
    let camera = te_camera::spawn(settings, tx)?;
    let started = Instant::now();
    let mut stages = Stages::default();
    while stages.frames < max_frames && rx.recv().is_ok() {
        stages.frames += 1;
    }
    stages.wall = started.elapsed();
    camera.stop();
    drop(rx);
    let _ = camera.join();
    Ok(stages)
}

fn python_reference(config: &AgentConfig, video: &Path, max_frames: u64) -> anyhow::Result<(f64, String)> {
    let python = crate::boot::project_file(".local/venv/bin/python")
        .context("the reference needs .local/venv (run scripts/setup)")?;
    let script = crate::boot::project_file("models/reference/pipeline_reference.py")
        .context("models/reference/pipeline_reference.py not found (run from the repository)")?;
    let model = Path::new(&config.paths.models).join("vehicle/yolox_nano_coco_416.onnx");
    let out = Command::new(python)
        .arg(script)
        .arg(&model)
        .arg(video)
        .arg(max_frames.to_string())
        .arg(config.detector.threads.to_string())
        .output()
        .context("running the Python reference")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("Python reference failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let last = text.lines().last().unwrap_or_default();
    let fps = last
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("ref_fps="))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no ref_fps= in the reference's last line {last:?}"))?;
    Ok((fps, text))
}

pub fn run(config: &AgentConfig, ort: &te_infer::Runtime, quick: bool) -> anyhow::Result<()> {
    let frames = if quick { 60 } else { 377 };
    let source = Path::new(&config.paths.data).join("video/car-detection.mp4");
    if !source.is_file() {
        bail!("benchmark footage {} not found (paths.data / --data-dir)", source.display());
    }
    let dir = tempfile::tempdir()?;
    let video = dir.path().join("bench_1080p.mp4");
    let made = Instant::now();
    te_camera::bench::transcode_clip(&source, &video, 1920, 1080)?;
    println!(
        "input: {} re-encoded to 1920x1080 H.264 4:2:0 ({:.1} s); {frames} frames per run{}",
        source.display(),
        made.elapsed().as_secs_f64(),
        if quick { " (--quick)" } else { "" }
    );
    let dirs = config.model_dirs();
    // Like with like for the ratio: YOLOX alone on both sides; the full pipeline adds the motorcyclist detector.
    let mut coco_only = VehicleDetector::load(
        ort,
        &dirs,
        te_infer::VehicleDetectorSettings { motorcyclists: None, ..config.detector.settings() },
    )?;
    let recognizer_settings = te_infer::RecognizerSettings {
        detector: te_infer::PlateDetectorSettings { threads: config.plates.threads, ..Default::default() },
        reader: te_infer::PlateReaderSettings { threads: config.plates.threads, ..Default::default() },
    };
    let mut plates = PlateRecognizer::load(ort, &dirs, recognizer_settings)?;

    let decode = decode_only(&video, frames)?;
    let core = run_pipeline(&video, 1, frames, &mut coco_only, None)?;
    drop(coco_only);
    let mut detector = VehicleDetector::load(ort, &dirs, config.detector.settings())?;
    let full = run_pipeline(&video, 1, frames, &mut detector, Some(&mut plates))?;
    let rss_after_full = crate::boot::rss_mb();
    println!("stage (1 camera, 1080p)            ms/frame");
    println!(
        "  decode to RGB (camera stage)    {:>8.1}   ({:.1} frames/s alone)",
        decode.ms(decode.wall),
        decode.fps()
    );
    println!("  vehicle detection (YOLOX+riders){:>8.1}", full.ms(full.detect));
    println!("  tracking                        {:>8.2}", full.ms(full.track));
    println!("  plate reading (every 3rd frame) {:>8.1}", full.ms(full.plates));
    println!("  waiting for frames              {:>8.1}", full.ms(full.waiting_for_frames));
    println!("end to end: decode+detect {:.1} frames/s; full pipeline {:.1} frames/s", core.fps(), full.fps());
    for cameras in [1usize, 2, 4] {
        let run = run_pipeline(&video, cameras, frames, &mut detector, Some(&mut plates))?;
        println!(
            "  {cameras} camera(s): {:.1} frames/s per camera ({:.1} in all)",
            run.fps() / cameras as f64,
            run.fps()
        );
    }
    let (ref_fps, ref_text) = python_reference(config, &video, frames)?;
    for line in ref_text.lines().filter(|l| !l.starts_with("ref_fps=")) {
        println!("{line}");
    }
    let fps = core.fps();
    let infer_share = core.detect.as_secs_f64() / core.wall.as_secs_f64().max(1e-9);
    println!(
        "(fps and ratio: decode + vehicle detection on every frame, both sides; {} ORT threads)",
        config.detector.threads
    );
    println!(
        "fps={fps:.2} ref_fps={ref_fps:.2} ratio={:.2} infer_share={infer_share:.3} rss_mb={:.0}",
        fps / ref_fps.max(1e-9),
        rss_after_full
    );
    Ok(())
}
