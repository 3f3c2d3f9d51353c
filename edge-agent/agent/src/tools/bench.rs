//! `edge-agent bench`: how many live cameras this box serves at the rules' frame rate.
//!
//! ```text
//!  junction clips + car park -> camera-like 1080p25 H.264 (main, 4 Mbit/s; made once, kept in $TMPDIR/te-bench)
//!  quality gate: every frame of each clip through the tuned detector and the 416x416 oracle -> agreement per
//!     camera view; a view below 0.97 with the fitted input gets the square one (`[detector] input_for`)
//!  te-rtsp-test-server --preencoded (a process of its own: sends the files as encoded, looping, in real time)
//!     -> N cameras over RTSP on 127.0.0.1 -> the agent's own stages (decode, detect, track, plates, rules,
//!        evidence into a temporary store) for `seconds` after a warm-up; N climbs until a count fails
//! ```
//!
//! A count "holds" when every camera analyses at least 95% of `fps` (window edges, the rate limiter's rounding) and
//! the cameras drop at most 1% of their frames. Each count runs `repeats` times; the table shows the median and
//! the range. Last line, read by other tools: `cameras=<N> fps_per_camera=<min> drop_pct=<p>
//! p95_latency_ms=<ms> cores_per_camera=<c> rss_mb=<mb> detection_agreement=<f>` (N the largest count that
//! held, its median run's figures; 0 and the smallest count's figures when none held).

use crate::config::AgentConfig;
use crate::pipeline::workers::{queues, worker_count, AnalysisWorkers};
use crate::pipeline::StageLinks;
use crate::telemetry::counters::AnalysisCounters;
use crate::telemetry::latency::Stage;
use anyhow::{bail, Context};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use te_camera::{CameraSettings, Transport, WhenFull};
use te_evidence::EvidenceStore;
use te_infer::{DetectorInput, VehicleDetector};
use te_types::{CameraId, Detection, Frame};

/// A count holds when its slowest camera analyses at least this share of the frame-rate budget (a window's
/// edges cost up to a frame either side: 0.2 frames/s in 10 s; the rate limiter rounds as well).
const HOLD_FPS_SHARE: f64 = 0.95;
/// ... and its cameras drop at most this share of their frames.
const HOLD_DROP_PCT: f64 = 1.0;
/// The tuned detector is used for the live runs only where it agrees this well with the oracle.
const GATE_AGREEMENT: f64 = 0.97;
/// Camera-like stream: 1080p25 H.264 main profile at this bitrate.
const STREAM_KBPS: u32 = 4000;

/// What `edge-agent bench` was asked to do.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Camera counts to try, in order (stops after the first that does not hold).
    pub cameras: Vec<usize>,
    /// Measured seconds per run (after the warm-up).
    pub seconds: u64,
    pub warmup: u64,
    pub repeats: usize,
    /// Frames per second each camera should analyse.
    pub fps: u32,
    /// Frames per clip in the quality gate (0: all).
    pub gate_frames: usize,
    /// After the search, run the count that held for this many minutes and report memory over time.
    pub soak_minutes: u64,
    /// The RTSP test server binary (default: beside this binary).
    pub rtsp_server: Option<PathBuf>,
}

impl BenchOptions {
    pub fn quick() -> Self {
        Self {
            cameras: vec![1, 4],
            seconds: 10,
            warmup: 3,
            repeats: 1,
            fps: 8,
            gate_frames: 40,
            soak_minutes: 0,
            rtsp_server: None,
        }
    }

    pub fn full() -> Self {
        Self {
            cameras: vec![2, 4, 6, 8, 10, 12, 14],
            seconds: 30,
            warmup: 5,
            repeats: 3,
            gate_frames: 0,
            ..Self::quick()
        }
    }
}

/// One source clip of the benchmark, and the scene of the default configuration's camera that watches it.
struct Clip {
    name: &'static str,
    /// The camera-like 1080p file.
    path: PathBuf,
    /// The default configuration's camera whose scene (lines, signal heads) fits this footage.
    scene_camera: &'static str,
}

/// The figures of one run of N cameras.
#[derive(Debug, Clone, Default)]
struct RunFigures {
    fps_min: f64,
    fps_median: f64,
    drop_pct: f64,
    p95_latency_ms: f64,
    /// Process CPU per camera, cores.
    cores_per_camera: f64,
    /// Of which: camera stage (GStreamer: receive, decode, scale, convert), detection, plates, the rest.
    decode: f64,
    detect: f64,
    plates: f64,
    rest: f64,
    rss_mb: f64,
    /// The RTSP server's CPU (not the box's cost; it shares the machine).
    server_cores: f64,
    violations: u64,
    records: u64,
}

impl RunFigures {
    fn holds(&self, fps: u32) -> bool {
        self.fps_min >= fps as f64 * HOLD_FPS_SHARE && self.drop_pct <= HOLD_DROP_PCT
    }
}

pub fn run(config: &AgentConfig, ort: &te_infer::Runtime, options: &BenchOptions) -> anyhow::Result<()> {
    let clips = prepare_clips(config)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "box: {cores} cores; profile {}; {} analysis worker(s) ({} per core setting), detector threads {}",
        config.profile,
        worker_count(config),
        if config.analysis_workers == 0 { "one" } else { "fixed" },
        config.detector.threads
    );

    // Quality gate: the configured detector, camera by camera, against the every-frame square oracle. An
    // interval that falls short on any clip is dropped for every frame; a camera whose view falls short with the
    // fitted input gets the square one (the oracle's own input) through `input_for`.
    let dirs = config.model_dirs();
    // The oracle: YOLOX on its published square input, with everything else as configured.
    let mut oracle = VehicleDetector::load(
        ort,
        &dirs,
        te_infer::VehicleDetectorSettings {
            input: DetectorInput::Square,
            input_for: Default::default(),
            ..config.detector.settings()
        },
    )?;
    let mut tuned_config = config.clone();
    let configured = config.detector.interval.max(1);
    let mut agreement = 1.0f64;
    for interval in if configured > 1 { vec![configured, 1] } else { vec![1] } {
        tuned_config.detector.interval = interval;
        let settings = config.detector.settings();
        let on_square = |clip: &Clip| settings.input_of(clip.scene_camera) == DetectorInput::Square;
        if interval == 1 && clips.iter().all(on_square) {
            break; // the oracle itself on every camera
        }
        println!(
            "quality gate: detector input {:?}{}, detection every {interval} frame(s), against the 416x416 oracle on \
             every frame, {} frames/s of each clip, IoU >= 0.5",
            config.detector.input,
            describe_input_for(&config.detector.input_for),
            options.fps
        );
        let mut tuned = VehicleDetector::load(ort, &dirs, tuned_config.detector.settings())?;
        let mut per_clip = Vec::new();
        for clip in &clips {
            let g = gate(&tuned_config, &mut oracle, &mut tuned, clip, options.fps, options.gate_frames)?;
            println!(
                "  {:<16} frames {:>4}  oracle {:>5}  tuned {:>5}  recall {:.3}  precision {:.3}  agreement {:.3}  ({:?})",
                clip.name,
                g.frames,
                g.oracle,
                g.tuned,
                g.recall(),
                g.precision(),
                g.agreement(),
                settings.input_of(clip.scene_camera)
            );
            per_clip.push((clip, g.agreement()));
        }
        let worst = per_clip.iter().map(|(_, a)| *a).fold(1.0f64, f64::min);
        if worst >= GATE_AGREEMENT {
            agreement = worst;
            break;
        }
        if interval > 1 {
            println!("quality gate: agreement {worst:.3} < {GATE_AGREEMENT}: detection on every frame instead");
            continue;
        }
        agreement = 1.0;
        for (clip, a) in per_clip {
            if a >= GATE_AGREEMENT {
                agreement = agreement.min(a);
            } else {
                println!(
                    "quality gate: {} agreement {a:.3} < {GATE_AGREEMENT}: the square input on camera {}",
                    clip.name, clip.scene_camera
                );
                tuned_config.detector.input_for.insert(clip.scene_camera.to_string(), DetectorInput::Square);
            }
        }
    }
    let (input, interval) = (tuned_config.detector.input, tuned_config.detector.interval);
    let input_for = describe_input_for(&tuned_config.detector.input_for);
    let config = &tuned_config;
    let mounts = options.cameras.iter().copied().max().unwrap_or(1).max(1);
    let mut server = RtspServer::start(options.rtsp_server.as_deref(), &clips, mounts)?;
    println!(
        "live: {} cameras max from {} (pre-encoded 1080p25 H.264 main {} kbit/s, sent as encoded over RTSP/TCP on \
         127.0.0.1); {} fps per camera; {} s measured after {} s warm-up, {} run(s) per count",
        mounts,
        server.binary.display(),
        STREAM_KBPS,
        options.fps,
        options.seconds,
        options.warmup,
        options.repeats
    );
    if config.detector.threads > 1 || config.plates.threads > 1 {
        println!(
            "  (models on more than one thread: ONNX Runtime's helper threads are not the workers' and count under \
             decode below)"
        );
    }
    println!(
        "  N  fps/camera min (median)   drops %   p95 latency ms   cores/camera = decode + detect + plates + rest   RSS MB"
    );
    let mut results: Vec<(usize, RunFigures)> = Vec::new();
    for &n in &options.cameras {
        let mut runs = Vec::new();
        for _ in 0..options.repeats.max(1) {
            runs.push(run_live(config, ort, &mut server, n, &clips, options)?);
        }
        let median = median_run(&runs);
        let range = |f: fn(&RunFigures) -> f64| {
            let values: Vec<f64> = runs.iter().map(f).collect();
            let (lo, hi) = values.iter().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
            if runs.len() > 1 {
                format!(" [{lo:.1}-{hi:.1}]")
            } else {
                String::new()
            }
        };
        println!(
            "{n:>3}  {:>5.2} ({:>5.2}){}   {:>6.2}{}   {:>7.0}{}   {:.3} = {:.3} + {:.3} + {:.3} + {:.3}   {:>5.0}   (server {:.2} cores; {} violations, {} records)",
            median.fps_min,
            median.fps_median,
            range(|r| r.fps_min),
            median.drop_pct,
            range(|r| r.drop_pct),
            median.p95_latency_ms,
            range(|r| r.p95_latency_ms),
            median.cores_per_camera,
            median.decode,
            median.detect,
            median.plates,
            median.rest,
            median.rss_mb,
            median.server_cores,
            median.violations,
            median.records,
        );
        let held = median.holds(options.fps);
        results.push((n, median));
        if !held {
            break;
        }
    }
    let best = results.iter().rev().find(|(_, r)| r.holds(options.fps)).cloned();
    if options.soak_minutes > 0 {
        if let Some((n, _)) = &best {
            soak(config, ort, &mut server, *n, &clips, options)?;
        }
    }
    server.stop();
    let (cameras, figures) = match best {
        Some(found) => found,
        None => (0, results.first().map(|(_, r)| r.clone()).unwrap_or_default()),
    };
    println!(
        "(a count holds at >= {:.1} frames/s on every camera and <= {HOLD_DROP_PCT}% drops; detector input \
         {input:?}{input_for}, detection every {interval} frame(s))",
        options.fps as f64 * HOLD_FPS_SHARE
    );
    println!(
        "cameras={cameras} fps_per_camera={:.2} drop_pct={:.2} p95_latency_ms={:.0} cores_per_camera={:.3} rss_mb={:.0} \
         detection_agreement={agreement:.3}",
        figures.fps_min, figures.drop_pct, figures.p95_latency_ms, figures.cores_per_camera, figures.rss_mb
    );
    Ok(())
}

/// The run whose slowest camera is the median one.
fn median_run(runs: &[RunFigures]) -> RunFigures {
    let mut sorted = runs.to_vec();
    sorted.sort_by(|a, b| a.fps_min.total_cmp(&b.fps_min));
    sorted[sorted.len() / 2].clone()
}

/// Makes (once) the camera-like 1080p versions of the junction clips and the car park.
fn prepare_clips(config: &AgentConfig) -> anyhow::Result<Vec<Clip>> {
    let data = Path::new(&config.paths.data);
    // Made once per machine (a minute of encoding on 2 cores), outside the repository.
    let dir = &std::env::temp_dir().join("te-bench");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let sources = [
        ("us-junction-a", "intersections/us-junction-a.mp4", "junction-a"),
        ("us-junction-b", "intersections/us-junction-b.mp4", "junction-b"),
        ("us-junction-c", "intersections/us-junction-c.mp4", "junction-c"),
        ("car-park", "video/car-detection.mp4", "carpark-1"),
    ];
    let mut clips = Vec::new();
    for (name, source, scene_camera) in sources {
        let source = data.join(source);
        if !source.is_file() {
            bail!("benchmark footage {} not found (paths.data / --data-dir)", source.display());
        }
        let path = dir.join(format!("{name}-1080p25-{STREAM_KBPS}k.mp4"));
        if !path.is_file() {
            let started = Instant::now();
            let partial = path.with_extension("part.mp4");
            te_camera::bench::camera_like_clip(&source, &partial, 1920, 1080, STREAM_KBPS)?;
            std::fs::rename(&partial, &path)?;
            println!("input: {} -> {} ({:.1} s)", source.display(), path.display(), started.elapsed().as_secs_f64());
        }
        clips.push(Clip { name, path, scene_camera });
    }
    Ok(clips)
}

/// " (Square on carpark-1, ...)" for the cameras whose detector input is not the default one.
fn describe_input_for(input_for: &std::collections::BTreeMap<String, DetectorInput>) -> String {
    if input_for.is_empty() {
        return String::new();
    }
    let each: Vec<String> = input_for.iter().map(|(camera, input)| format!("{input:?} on {camera}")).collect();
    format!(" ({})", each.join(", "))
}

/// Detections of the tuned detector against the oracle's on the same frames.
#[derive(Debug, Default)]
struct Gate {
    frames: usize,
    oracle: usize,
    tuned: usize,
    matched: usize,
}

impl Gate {
    /// Share of the oracle's detections the tuned detector also made (1 when the oracle made none).
    fn recall(&self) -> f64 {
        if self.oracle == 0 {
            return 1.0;
        }
        self.matched as f64 / self.oracle as f64
    }
    /// Share of the tuned detector's detections the oracle also made (1 when it made none).
    fn precision(&self) -> f64 {
        if self.tuned == 0 {
            return 1.0;
        }
        self.matched as f64 / self.tuned as f64
    }
    /// Both ways: the smaller of recall and precision against the oracle.
    fn agreement(&self) -> f64 {
        self.recall().min(self.precision())
    }
}

/// The tuned detector (input, interval) against the every-frame square oracle, on the frames a live camera
/// analyses (`fps` a second out of the clip's 25). On frames the interval skips, the tuned side's detections
/// are the tracks coasting on their motion, as the pipeline sees them.
fn gate(
    config: &AgentConfig,
    oracle: &mut VehicleDetector,
    tuned: &mut VehicleDetector,
    clip: &Clip,
    fps: u32,
    max_frames: usize,
) -> anyhow::Result<Gate> {
    let interval = u64::from(config.detector.interval.max(1));
    let mut tracker = te_track::Tracker::new(config.tracker.clone());
    let (tx, rx) = std::sync::mpsc::sync_channel::<Frame>(2);
    let settings = CameraSettings {
        when_full: WhenFull::Block,
        // The clip's own camera id, so that the detector applies that camera's input.
        ..CameraSettings::new(CameraId::new(clip.scene_camera), clip.path.display().to_string())
    };
    let camera = te_camera::spawn(settings, tx)?;
    let period = chrono::Duration::microseconds(1_000_000 / i64::from(fps.max(1)));
    let mut next: Option<chrono::DateTime<chrono::Utc>> = None;
    let mut g = Gate::default();
    for frame in rx.iter() {
        // The live camera's frame-rate budget: the first frame at or after each tick.
        if next.is_some_and(|t| frame.captured_at < t) {
            continue;
        }
        next = Some(next.map_or(frame.captured_at, |t| t) + period);
        let number = g.frames as u64;
        // The oracle looks at the full picture converted to RGB, as a still would give it; the tuned detector at
        // what the live pipeline gives it (the camera's I420 planes, converted only where its input reads them).
        let full =
            Frame { pixels: te_types::Pixels::Rgb(std::sync::Arc::new(frame.rgb().into_owned())), ..frame.clone() };
        let want = oracle.detect(&full)?;
        let got = if number.is_multiple_of(interval) {
            let found = tuned.detect(&frame)?;
            tracker.update(number, frame.captured_at, &found);
            found
        } else {
            tracker.coast(number, frame.captured_at);
            tracker
                .tracks()
                .iter()
                .filter(|t| t.last_frame == number)
                .map(|t| Detection { class: t.class(), score: t.best_score, bbox: t.bbox })
                .collect()
        };
        g.frames += 1;
        g.oracle += want.len();
        g.tuned += got.len();
        g.matched += matches(&want, &got, 0.5);
        if max_frames > 0 && g.frames >= max_frames {
            break;
        }
    }
    camera.stop();
    drop(rx);
    let _ = camera.join();
    Ok(g)
}

/// Greedy one-to-one matches of the same class at IoU >= `min_iou`, best overlap first.
fn matches(want: &[Detection], got: &[Detection], min_iou: f32) -> usize {
    let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
    for (i, w) in want.iter().enumerate() {
        for (j, g) in got.iter().enumerate() {
            let iou = w.bbox.iou(&g.bbox);
            if w.class == g.class && iou >= min_iou {
                pairs.push((iou, i, j));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut used_w, mut used_g) = (vec![false; want.len()], vec![false; got.len()]);
    let mut n = 0;
    for (_, i, j) in pairs {
        if !used_w[i] && !used_g[j] {
            used_w[i] = true;
            used_g[j] = true;
            n += 1;
        }
    }
    n
}

/// The RTSP test server, a child process serving `/cam0`.. from the pre-encoded clips.
struct RtspServer {
    child: Child,
    port: u16,
    binary: PathBuf,
}

impl RtspServer {
    fn start(binary: Option<&Path>, clips: &[Clip], mounts: usize) -> anyhow::Result<Self> {
        let binary = match binary {
            Some(b) => b.to_path_buf(),
            None => std::env::current_exe()?
                .parent()
                .map(|dir| dir.join("te-rtsp-test-server"))
                .context("no folder beside this binary")?,
        };
        if !binary.is_file() {
            bail!(
                "the RTSP test server {} is not built: cargo build --release -p te-system-tests --bin \
                 te-rtsp-test-server (or pass --rtsp-server PATH)",
                binary.display()
            );
        }
        let files = clips.iter().map(|c| c.path.display().to_string()).collect::<Vec<_>>().join(",");
        let mut child = Command::new(&binary)
            .args(["--port", "0", "--preencoded", &files, "--mounts", &mounts.to_string(), "--fps", "25"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let port = line.trim().strip_prefix("ready ").and_then(|p| p.parse().ok());
        match port {
            Some(port) => Ok(Self { child, port, binary }),
            None => {
                let _ = child.kill();
                bail!("the RTSP test server did not say `ready <port>` (said {line:?})")
            }
        }
    }

    fn cpu_seconds(&self) -> f64 {
        thread_cpu(&format!("/proc/{}/task", self.child.id())).values().map(|(_, s)| s).sum()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// CPU seconds (user + system) of every thread under `/proc/<pid>/task`, by thread id, with its name.
fn thread_cpu(task_dir: &str) -> HashMap<u32, (String, f64)> {
    let mut out = HashMap::new();
    let Ok(entries) = std::fs::read_dir(task_dir) else { return out };
    for entry in entries.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        if let Some(parsed) = te_camera::bench::parse_stat(&stat) {
            out.insert(tid, parsed);
        }
    }
    out
}

/// What is read at the start and the end of a measured window.
struct Sample {
    at: Instant,
    frames: HashMap<CameraId, u64>,
    delivered: u64,
    dropped: u64,
    threads: HashMap<u32, (String, f64)>,
    server_cpu: f64,
    stage_seconds: HashMap<&'static str, f64>,
}

fn sample(counters: &AnalysisCounters, cameras: &[te_camera::CameraHandle], server: &RtspServer) -> Sample {
    let report = counters.snapshot();
    let stage_seconds = [Stage::Detect, Stage::Plates, Stage::Frame]
        .into_iter()
        .map(|s| (s.as_str(), counters.stages.get(s).snapshot().2))
        .collect();
    Sample {
        at: Instant::now(),
        frames: report.frames_per_camera.into_iter().collect(),
        delivered: cameras.iter().map(|c| c.stats.frames_delivered.load(Ordering::Relaxed)).sum(),
        dropped: cameras.iter().map(|c| c.stats.frames_dropped.load(Ordering::Relaxed)).sum(),
        threads: thread_cpu("/proc/self/task"),
        server_cpu: server.cpu_seconds(),
        stage_seconds,
    }
}

/// The agent's stages on `n` live cameras: figures of one measured window.
fn run_live(
    config: &AgentConfig,
    ort: &te_infer::Runtime,
    server: &mut RtspServer,
    n: usize,
    clips: &[Clip],
    options: &BenchOptions,
) -> anyhow::Result<RunFigures> {
    let live = LiveRun::start(config, ort, server.port, n, clips, options.fps)?;
    live.wait_streaming()?;
    std::thread::sleep(Duration::from_secs(options.warmup));
    let start = sample(&live.counters, &live.cameras, server);
    live.counters.keep_decision_times();
    std::thread::sleep(Duration::from_secs(options.seconds));
    let mut latencies = live.counters.take_decision_times();
    let end = sample(&live.counters, &live.cameras, server);
    let rss_mb = crate::boot::rss_mb();
    let camera_ids: Vec<CameraId> = live.config.cameras.iter().map(|c| c.id.clone()).collect();
    let (report, records) = live.finish()?;
    let secs = end.at.duration_since(start.at).as_secs_f64().max(1e-9);

    let mut fps: Vec<f64> = camera_ids
        .iter()
        .map(|id| {
            let before = start.frames.get(id).copied().unwrap_or(0);
            let after = end.frames.get(id).copied().unwrap_or(0);
            after.saturating_sub(before) as f64 / secs
        })
        .collect();
    fps.sort_by(f64::total_cmp);
    let delivered = end.delivered.saturating_sub(start.delivered);
    let dropped = end.dropped.saturating_sub(start.dropped);
    latencies.sort_by(f32::total_cmp);
    let p95 = latencies.get(((latencies.len() as f64 * 0.95) as usize).min(latencies.len().saturating_sub(1)));

    // CPU per thread over the window: the analysis workers' threads, and the rest (GStreamer's receive,
    // depayload, decode, scale and convert threads; the few others are idle).
    let (mut analysis_cpu, mut other_cpu) = (0.0, 0.0);
    for (tid, (name, cpu)) in &end.threads {
        let before = start.threads.get(tid).map_or(0.0, |(_, c)| *c);
        if name.starts_with("te-analysis") {
            analysis_cpu += cpu - before;
        } else {
            other_cpu += cpu - before;
        }
    }
    let stage = |name: &str| {
        end.stage_seconds.get(name).copied().unwrap_or(0.0) - start.stage_seconds.get(name).copied().unwrap_or(0.0)
    };
    let frame_wall = stage("frame").max(1e-9);
    // The workers' CPU split in the proportion of their wall time per step.
    let detect = analysis_cpu * (stage("detect") / frame_wall).min(1.0);
    let plates = analysis_cpu * (stage("plates") / frame_wall).min(1.0);
    let per_camera = |cpu: f64| cpu / secs / n as f64;
    Ok(RunFigures {
        fps_min: fps.first().copied().unwrap_or(0.0),
        fps_median: fps.get(fps.len() / 2).copied().unwrap_or(0.0),
        drop_pct: 100.0 * dropped as f64 / (delivered + dropped).max(1) as f64,
        p95_latency_ms: p95.copied().unwrap_or(0.0) as f64,
        cores_per_camera: per_camera(analysis_cpu + other_cpu),
        decode: per_camera(other_cpu),
        detect: per_camera(detect),
        plates: per_camera(plates),
        rest: per_camera((analysis_cpu - detect - plates).max(0.0)),
        rss_mb,
        server_cores: (end.server_cpu - start.server_cpu) / secs,
        violations: report.violations.values().sum(),
        records,
    })
}

/// The configuration of a live run: `n` RTSP cameras on the test server, each with the scene of the default
/// camera that watches its clip, the evidence store in `state`.
fn live_config(
    config: &AgentConfig,
    port: u16,
    n: usize,
    clips: &[Clip],
    fps: u32,
    state: &Path,
) -> anyhow::Result<AgentConfig> {
    let mut live = config.clone();
    live.paths.state = state.display().to_string();
    live.metrics_listen.clear();
    live.controller.listen.clear();
    live.detector.input_for.clear();
    let mut cameras = Vec::new();
    let mut scenes = Vec::new();
    for i in 0..n {
        let clip = &clips[i % clips.len()];
        let template = config.cameras.iter().find(|c| c.id.as_str() == clip.scene_camera).with_context(|| {
            format!("the configuration has no camera {:?} (its scene fits {})", clip.scene_camera, clip.name)
        })?;
        let id = CameraId::new(format!("bench-{i}"));
        cameras.push(CameraSettings {
            id: id.clone(),
            source: format!("rtsp://127.0.0.1:{port}/cam{i}"),
            when_full: WhenFull::DropNewest,
            transport: Transport::Tcp,
            max_fps: fps,
            location: format!("bench {i} ({})", clip.name),
            ..template.clone()
        });
        if let Some(input) = config.detector.input_for.get(clip.scene_camera) {
            live.detector.input_for.insert(id.to_string(), *input);
        }
        if let Some(scene) = config.scenes.iter().find(|s| s.camera == clip.scene_camera) {
            scenes.push(te_rules::SceneConfig { camera: id.to_string(), ..scene.clone() });
        }
    }
    live.cameras = cameras;
    live.scenes = scenes;
    Ok(live)
}

/// `n` cameras for `minutes`, memory read each minute: a leak shows as growth after the first minutes.
fn soak(
    config: &AgentConfig,
    ort: &te_infer::Runtime,
    server: &mut RtspServer,
    n: usize,
    clips: &[Clip],
    options: &BenchOptions,
) -> anyhow::Result<()> {
    println!("soak: {n} cameras for {} minutes, RSS each minute", options.soak_minutes);
    let live = LiveRun::start(config, ort, server.port, n, clips, options.fps)?;
    live.wait_streaming()?;
    let mut rss = Vec::new();
    for m in 1..=options.soak_minutes {
        std::thread::sleep(Duration::from_secs(60));
        let mb = crate::boot::rss_mb();
        let frames = live.counters.snapshot().frames;
        let dropped: u64 = live.cameras.iter().map(|c| c.stats.frames_dropped.load(Ordering::Relaxed)).sum();
        println!("  minute {m:>3}: RSS {mb:.0} MB, {frames} frames analysed, {dropped} dropped");
        rss.push(mb);
    }
    live.finish()?;
    // From the end of the first minutes (caches, ring buffers and the store fill first).
    let settled_at = rss.len().min(5);
    let settled = rss.get(settled_at.saturating_sub(1)).copied().unwrap_or(0.0);
    let last = rss.last().copied().unwrap_or(0.0);
    println!(
        "soak: RSS {settled:.0} MB after {settled_at} min, {last:.0} MB at the end: {:+.1}%",
        100.0 * (last - settled) / settled.max(1e-9)
    );
    Ok(())
}

/// The agent's stages running on `n` live cameras: models, cameras on their workers' queues, the workers, and
/// an evidence store in a temporary folder.
struct LiveRun {
    config: AgentConfig,
    cameras: Vec<te_camera::CameraHandle>,
    analysis: AnalysisWorkers,
    counters: Arc<AnalysisCounters>,
    store: Arc<te_evidence::SledStore>,
    _state: tempfile::TempDir,
}

impl LiveRun {
    fn start(
        config: &AgentConfig,
        ort: &te_infer::Runtime,
        port: u16,
        n: usize,
        clips: &[Clip],
        fps: u32,
    ) -> anyhow::Result<Self> {
        let state = tempfile::tempdir()?;
        let config = live_config(config, port, n, clips, fps, state.path())?;
        let store = crate::boot::open_store(&config)?;
        let counters = Arc::new(AnalysisCounters::default());
        let workers = worker_count(&config).min(n);
        let models =
            (0..workers).map(|_| crate::boot::load_models(&config, ort)).collect::<anyhow::Result<Vec<_>>>()?;
        let (senders, receivers) = queues(workers, config.frame_queue);
        let mut cameras = Vec::new();
        for (i, settings) in config.cameras.iter().enumerate() {
            cameras.push(te_camera::spawn(settings.clone(), senders[i % senders.len()].clone())?);
        }
        drop(senders);
        let links = StageLinks {
            counters: counters.clone(),
            rings: cameras.iter().map(|c| (c.id.clone(), c.ring.clone())).collect(),
            controller_phases: Arc::default(),
            clock: te_uplink::clock::ClockWatch::new(&config.time),
            store: store.clone(),
            new_evidence: Arc::default(),
        };
        let analysis = AnalysisWorkers::start(&config, models, receivers, links)?;
        Ok(Self { config, cameras, analysis, counters, store, _state: state })
    }

    /// Waits (at most 20 s) until every camera has delivered a frame.
    fn wait_streaming(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let silent = || -> Vec<String> {
            self.cameras
                .iter()
                .filter(|c| c.stats.frames_delivered.load(Ordering::Relaxed) == 0)
                .map(|c| c.id.to_string())
                .collect()
        };
        while !silent().is_empty() {
            if Instant::now() > deadline {
                bail!("cameras {} gave no frame in 20 s", silent().join(", "));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Stops the cameras, lets the workers write what they hold; the run's report and the records stored.
    fn finish(self) -> anyhow::Result<(crate::telemetry::counters::AnalysisReport, u64)> {
        for camera in &self.cameras {
            camera.stop();
        }
        for camera in self.cameras {
            let _ = camera.join();
        }
        let report = self.analysis.join();
        Ok((report, self.store.counts()?.total))
    }
}
