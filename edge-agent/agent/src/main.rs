//! `edge-agent`: the binary on the box beside the intersection. Glue only: CLI, config, wiring, summary.

mod bench;
mod config;
mod doctor;
mod eval;
mod eval_helmets;
mod eval_scenes;
mod evidence_cli;
mod evidence_crash;
mod fuzz;
mod health;
mod heartbeat;
mod helmets;
mod latency;
mod moments;
mod overview;
mod pipeline;
mod profile;
mod scene_cli;
mod signal_input;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use config::{AgentConfig, Overrides, DEFAULT_TOML};
use pipeline::{AnalysisReport, AnalysisStage};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use te_evidence::{EvidenceStore, SledStore};
use te_uplink::Uplink;

/// traffic-edge edge agent: cameras -> vehicle detection -> tracking -> signed evidence -> central service.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the pipeline on the configured cameras.
    Run {
        #[command(flatten)]
        config: ConfigArgs,
        /// Exit once every camera has ended (file replay) and all evidence is delivered or the drain
        /// timeout passes; then print the summary. Without it the agent runs until Ctrl-C / SIGTERM, which
        /// stops the cameras, writes the records in flight and drains the same way.
        #[arg(long)]
        exit_when_done: bool,
        /// Longest wait for the central service when draining at exit, seconds (keep it under systemd's
        /// TimeoutStopSec). Undelivered evidence stays in the store and is sent on the next start.
        #[arg(long, default_value_t = 60)]
        drain_timeout: u64,
        /// Log as JSON lines.
        #[arg(long)]
        log_json: bool,
    },
    /// Inspects the evidence store.
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// Prints or checks configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Checks this box: GStreamer and decoders, ONNX Runtime, models and hashes, disk, key, font, cameras,
    /// central service and clock. Prints a table; exits 1 on a blocking problem.
    Doctor {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Camera stage tools.
    #[command(subcommand)]
    Camera(CameraCommand),
    /// Fuzzing: generated hostile input through the configuration parser and the plate grammar. Last line:
    /// `inputs=<n> panics=<n> errors=<n> refused=<n>` (errors: broken invariants). Exits 1 on either.
    Fuzz {
        #[arg(long, default_value_t = 1_000_000)]
        inputs: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Signal controller input tools.
    #[command(subcommand)]
    Controller(ControllerCommand),
    /// Scene tools: check zones and lines on a snapshot; measure the rules on a labelled replay.
    #[command(subcommand)]
    Scene(SceneCommand),
    /// Benchmark: the edge pipeline on a fixed 1080p video beside a Python reference (onnxruntime + OpenCV).
    /// Last line: `fps=<x> ref_fps=<y> ratio=<x/y> infer_share=<fraction> rss_mb=<n>`.
    Bench {
        #[command(flatten)]
        config: ConfigArgs,
        /// 60 frames per run instead of 377: under a minute on 2 cores.
        #[arg(long)]
        quick: bool,
    },
    /// Measures plate recognition on a labelled dataset. Plate crops (gt.tsv): the last line is
    /// `exact=<fraction> char=<fraction> n=<count> ms_per_image=<ms> read_ms_per_plate=<ms>`. The vn_riders
    /// layout (images/ + labels/, YOLO): plate detection along the agent's path and the helmet classifier on the
    /// labelled motorcyclists, last line `plate_recall=<f> plate_precision=<f> plates=<n> ms_per_image=<ms> ...
    /// no_helmet_precision=<f> no_helmet_recall=<f> riders=<n> helmet_ms_per_rider=<ms>`.
    Eval(EvalArgs),
}

#[derive(Debug, Args)]
struct EvalArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Dataset folder: `gt.tsv` + `images/` (plate crops), `images/` + `labels/` in YOLO form (vn_riders:
    /// plate detection), or openalpr `*.txt` labels beside scene images.
    #[arg(long)]
    dataset: PathBuf,
    /// vn_riders layout: score only the frames of these clips (a file, one clip name per line; the recipe's
    /// validation clips are models/plate_detector/val_clips.txt).
    #[arg(long)]
    only_clips: Option<PathBuf>,
    /// Plate crops: score only these images (a file, one image name per line; the reader recipe's validation
    /// split is models/plate_reader/val_crops.txt).
    #[arg(long, conflicts_with = "only_clips")]
    only_crops: Option<PathBuf>,
    /// vn_riders layout: write the missed plates and false detections to this TSV, for checking by eye.
    #[arg(long)]
    errors: Option<PathBuf>,
    /// A folder of unlabelled photos (like vn_scenes): write each photo with its vehicles, plates and reads
    /// drawn into this folder.
    #[arg(long)]
    draw: Option<PathBuf>,
    /// Plates to expect: `vn` (Vietnamese alphabet and grammar; labels that are no Vietnamese plate are not
    /// scored) or `latin` (A-Z, 0-9, no grammar). Default: `vn` for gt.tsv, `latin` for openalpr.
    #[arg(long, value_parser = ["vn", "latin"])]
    plate_format: Option<String>,
    /// Label corrections (plate crops: name, label, corrected, reason; vn_riders: frame, add_plate, x1, y1, x2,
    /// y2, reason). Default: models/labels/<dataset folder name>.corrections.tsv when it exists.
    #[arg(long, conflicts_with = "no_corrections")]
    corrections: Option<PathBuf>,
    /// Score against the labels exactly as shipped.
    #[arg(long)]
    no_corrections: bool,
    /// ONNX Runtime threads per model (the plate OCR target is per core: keep 1 to measure it).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// vn_riders layout: a motorcyclist whose p_bare reaches this is fined for riding without a helmet (default:
    /// the scenes' default `no_helmet_at`).
    #[arg(long, default_value_t = te_rules::scene::Thresholds::default().no_helmet_at)]
    helmet_threshold: f32,
    /// Write every mismatch (name, label, read, raw) to this TSV, for checking by eye.
    #[arg(long)]
    mismatches: Option<PathBuf>,
    /// Blur every image with this Gaussian sigma (pixels) before reading: measures blurred plates.
    #[arg(long, value_parser = parse_blur)]
    blur: Option<f32>,
}

fn parse_blur(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v > 0.0 && v <= 20.0 => Ok(v),
        _ => Err(format!("{s:?} is not a blur sigma in (0, 20]")),
    }
}

#[derive(Debug, Subcommand)]
enum EvidenceCommand {
    /// Lists every record, oldest first, with its chain number and delivery state.
    List {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Prints one record, its seal and its delivery state as JSON.
    Show {
        #[command(flatten)]
        config: ConfigArgs,
        /// The evidence id (ULID).
        id: String,
    },
    /// Checks every seal, every image hash and the hash chain; exits 1 on any problem.
    Verify {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Writes records as self-contained packages (sealed record, seal, image, public key, how to check).
    Export {
        #[command(flatten)]
        config: ConfigArgs,
        /// Evidence ids (ULID) to export; none means every record.
        ids: Vec<String>,
        /// Folder to write into; one sub-folder per record.
        #[arg(long)]
        to: PathBuf,
    },
    /// Moves the store's index (sled) aside and rebuilds it from the evidence files, checking every seal
    /// and the chain. Last line: `records=<n> damaged=<n> seconds=<s>`.
    Rebuild {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Delivers what is queued on the box to the central service, without cameras, until nothing is pending or
    /// the timeout passes. Last line: `delivered=<n> pending=<n> rejected=<n>`.
    Send {
        #[command(flatten)]
        config: ConfigArgs,
        /// Longest time to keep trying, seconds.
        #[arg(long, default_value_t = 600)]
        timeout_s: u64,
    },
    /// The outage soak's recorder (internal): synthetic records over simulated days into the configured store.
    #[command(hide = true)]
    SoakFill {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        records: u64,
        /// Simulated days the records' capture times span, ending now.
        #[arg(long, default_value_t = 3.0)]
        days: f64,
        #[arg(long, default_value_t = 30)]
        media_kb: usize,
    },
    /// Prints this device's public key (hex), for registration with the central service.
    Key {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Crash harness: a writer process is killed with SIGKILL at random points, N times; every acknowledged
    /// record must survive intact. Last line: `acknowledged=<n> lost=<n> corrupt=<n>`.
    CrashTest {
        /// Kill-and-check cycles.
        #[arg(long, default_value_t = 50)]
        cycles: u32,
        /// Store folder (default: a fresh temporary folder).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Seed for the kill times and record sizes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Longest time the writer runs before it is killed, milliseconds.
        #[arg(long, default_value_t = 300)]
        max_kill_ms: u64,
        /// What else happens: `none`; `damage` (after each kill, bytes of sled's files flipped, a file truncated
        /// or deleted, in turn: the store must rebuild its index from the evidence files); `purge` (every
        /// record delivered at once under a 1 MiB quota, so kills land in purges); `rebuild` (after each kill
        /// a rebuild of the index is started and killed too); `full` (a disk that fills up: a 96 MiB tmpfs in
        /// a mount namespace of its own, or --dir on a filesystem under 1 GiB; a ballast file leaves a few
        /// MiB above the store's 2 MiB reserve, inside it, or with no reserve under 1 MiB before the disk's
        /// end; every acknowledged record must survive and the alarm rise before the first refusal).
        #[arg(long, value_enum, default_value = "none")]
        mode: evidence_crash::CrashMode,
    },
    /// The crash test's writer process (internal).
    #[command(hide = true)]
    CrashWriter {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        purge: bool,
        #[arg(long)]
        keep_going: bool,
        #[arg(long, default_value_t = 0)]
        reserve_kb: u64,
    },
    /// The crash test's rebuild process (internal).
    #[command(hide = true)]
    CrashRebuilder {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Benchmark: records/s and MB/s written (each record sealed and flushed), then the store's reopen and a
    /// full rebuild of its index from the evidence files timed, in a temporary store.
    Bench {
        #[arg(long, default_value_t = 500)]
        records: u32,
        /// Image size per record, KiB.
        #[arg(long, default_value_t = 150)]
        media_kb: usize,
    },
}

#[derive(Debug, Subcommand)]
enum CameraCommand {
    /// Opens one camera and reports every 5 s: state, frames/s, drops, reconnects, memory (no analysis).
    Watch {
        /// rtsp://..., a video file, or a folder of images.
        #[arg(long)]
        source: String,
        /// Stop after this many seconds (0: until Ctrl-C).
        #[arg(long, default_value_t = 0)]
        seconds: u64,
        /// RTSP transport: auto, tcp or udp.
        #[arg(long, default_value = "auto", value_parser = ["auto", "tcp", "udp"])]
        transport: String,
    },
    /// Decode benchmark: frames/s and CPU per stream for 1, 2, 4 cameras at 1080p and 720p (H.264 4:2:0
    /// test clips made on the spot), through the camera stage's own pipeline, RGB out.
    Bench {
        /// Length of the test clips, seconds of 25 fps video.
        #[arg(long, default_value_t = 8)]
        seconds: u32,
        /// Camera counts to measure.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
        cameras: Vec<usize>,
    },
}

#[derive(Debug, Subcommand)]
enum ControllerCommand {
    /// Makes a token for one junction controller: the line for `controller.tokens_file` goes to stdout
    /// (append it: `>> /etc/traffic-edge/controllers`), the token itself to stderr, shown only this once.
    Token {
        /// The controller's name, for logs (no spaces).
        name: String,
        /// The cameras whose signal phase it may report.
        #[arg(long, value_delimiter = ',', required = true)]
        cameras: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum SceneCommand {
    /// Validates every scene and draws each onto a snapshot of its camera (PNG): stop lines red, lanes
    /// yellow with their direction, no-stopping zones magenta, speed sections blue, signal heads white.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
        /// Only this camera's scene.
        #[arg(long)]
        camera: Option<String>,
        /// Draw on this picture instead of a frame from the camera.
        #[arg(long)]
        snapshot: Option<PathBuf>,
        /// Folder for scene-<camera>.png.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Runs the detector, tracker and rules over a file camera with a scripted signal and compares the
    /// violations with labels. Last line: `precision=<x> recall=<y> found=<n> expected=<m>`.
    Replay {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        camera: String,
        /// Labels (TOML): the scripted signal phases and the expected violations.
        #[arg(long)]
        labels: PathBuf,
        /// Judge these recorded detections (JSON from --dump-detections) instead of running the detector.
        #[arg(long)]
        detections: Option<PathBuf>,
        /// Write the detector's output per frame (JSON) here.
        #[arg(long)]
        dump_detections: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Prints the embedded default configuration (the demo box), a starting point for a real one.
    Default,
    /// Validates a configuration and prints it with every default and placeholder filled in.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// Configuration file (TOML). Without it the embedded default (the demo box) is used.
    #[arg(long, short, env = "TE_CONFIG")]
    config: Option<PathBuf>,
    /// The team's shared folder, holding data/ and models/.
    #[arg(long, env = "TE_SHARED_DIR")]
    shared_dir: Option<PathBuf>,
    /// Folder of replay footage (default: <shared>/data).
    #[arg(long, env = "TE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Folder of detector models (default: <shared>/models).
    #[arg(long, env = "TE_MODEL_DIR")]
    model_dir: Option<PathBuf>,
    /// Folder of the evidence store.
    #[arg(long, env = "TE_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Base URL of the central service.
    #[arg(long, env = "TE_CENTRAL_URL")]
    central_url: Option<String>,
    /// File holding this box's device token (`central-sync device register` prints it).
    #[arg(long, env = "TE_DEVICE_TOKEN_FILE")]
    device_token_file: Option<PathBuf>,
}

impl ConfigArgs {
    fn load(&self) -> anyhow::Result<AgentConfig> {
        let (text, origin) = match &self.config {
            Some(path) => (
                std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
                path.display().to_string(),
            ),
            None => (DEFAULT_TOML.to_string(), "embedded default".to_string()),
        };
        let overrides = Overrides {
            shared: self.shared_dir.clone(),
            data: self.data_dir.clone(),
            models: self.model_dir.clone(),
            state: self.state_dir.clone(),
            central_url: self.central_url.clone(),
            token_file: self.device_token_file.clone(),
        };
        Ok(AgentConfig::parse(&text, &origin)?.finish(&overrides)?)
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,ort=warn".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The evidence store in `<state>/evidence`, sealing with the device key `<state>/device.key` (made on first use).
fn open_store(config: &AgentConfig) -> anyhow::Result<Arc<SledStore>> {
    let state = Path::new(&config.paths.state);
    let dir = state.join("evidence");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = te_evidence::DeviceKey::load_or_create(&state.join("device.key"))?;
    Ok(Arc::new(SledStore::open(&dir, key)?.with_limits(config.evidence.limits())))
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run { config, exit_when_done, drain_timeout, log_json } => {
            init_logging(log_json);
            let config = config.load()?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(run(config, exit_when_done, Duration::from_secs(drain_timeout)))
        }
        Command::Evidence(EvidenceCommand::List { config }) => evidence_cli::list(&*open_store(&config.load()?)?),
        Command::Evidence(EvidenceCommand::Show { config, id }) => {
            let store = open_store(&config.load()?)?;
            println!("{}", serde_json::to_string_pretty(&store.get(evidence_cli::parse_id(&id)?)?)?);
            Ok(())
        }
        Command::Evidence(EvidenceCommand::Verify { config }) => evidence_cli::verify(&*open_store(&config.load()?)?),
        Command::Evidence(EvidenceCommand::Export { config, ids, to }) => {
            let store = open_store(&config.load()?)?;
            let ids = if ids.is_empty() {
                store.list()?
            } else {
                ids.iter().map(|raw| evidence_cli::parse_id(raw)).collect::<anyhow::Result<_>>()?
            };
            for id in ids {
                println!("{}", evidence_cli::export(&store, id, &to)?.display());
            }
            Ok(())
        }
        Command::Evidence(EvidenceCommand::Rebuild { config }) => evidence_cli::rebuild(&config.load()?),
        Command::Evidence(EvidenceCommand::Send { config, timeout_s }) => {
            init_logging(false);
            let config = config.load()?;
            let store = open_store(&config)?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(evidence_cli::send(&config, store, Duration::from_secs(timeout_s)))
        }
        Command::Evidence(EvidenceCommand::SoakFill { config, records, days, media_kb }) => {
            let config = config.load()?;
            evidence_cli::soak_fill(&config, &*open_store(&config)?, records, days, media_kb)
        }
        Command::Evidence(EvidenceCommand::Key { config }) => {
            let store = open_store(&config.load()?)?;
            println!("{}", store.device_key().public_hex());
            Ok(())
        }
        Command::Evidence(EvidenceCommand::CrashTest { cycles, dir, seed, max_kill_ms, mode }) => {
            if !evidence_crash::crash_test(cycles, dir.as_deref(), seed, max_kill_ms.max(1), mode)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Evidence(EvidenceCommand::CrashWriter { dir, seed, purge, keep_going, reserve_kb }) => {
            evidence_crash::crash_writer(&dir, seed, evidence_crash::WriterOptions { purge, keep_going, reserve_kb })
        }
        Command::Evidence(EvidenceCommand::CrashRebuilder { dir }) => evidence_crash::crash_rebuilder(&dir),
        Command::Evidence(EvidenceCommand::Bench { records, media_kb }) => {
            evidence_cli::bench(records.max(1), media_kb)
        }
        Command::Camera(CameraCommand::Bench { seconds, cameras }) => camera_bench(seconds.max(1), &cameras),
        Command::Fuzz { inputs, seed } => {
            let started = Instant::now();
            let c = fuzz::run(inputs, seed);
            println!("agent fuzz: config parser and plate grammar, {:.1} s", started.elapsed().as_secs_f32());
            println!("inputs={} panics={} errors={} refused={}", c.inputs, c.panics, c.errors, c.refused);
            if c.panics + c.errors > 0 {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Controller(ControllerCommand::Token { name, cameras }) => {
            if name.is_empty() || name.contains(char::is_whitespace) || name.contains('#') {
                bail!("the controller name must be one word without '#', got {name:?}");
            }
            if cameras.iter().any(|c| c.is_empty() || c.contains(char::is_whitespace) || c.contains('#')) {
                bail!("camera ids are single words without '#'");
            }
            let (token, line) = signal_input::new_token(&name, &cameras)?;
            eprintln!("controller token (give it to {name}; it is not stored anywhere): {token}");
            println!("{line}");
            Ok(())
        }
        Command::Scene(SceneCommand::Check { config, camera, snapshot, out }) => {
            scene_cli::check(&config.load()?, camera.as_deref(), snapshot.as_deref(), &out)
        }
        Command::Scene(SceneCommand::Replay { config, camera, labels, detections, dump_detections }) => {
            scene_cli::replay(&config.load()?, &camera, &labels, detections.as_deref(), dump_detections.as_ref())
        }
        Command::Doctor { config } => {
            if !doctor::run(&config.load()?)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Bench { config, quick } => {
            let config = config.load()?;
            let ort = load_onnx_runtime(&config)?;
            bench::run(&config, &ort, quick)
        }
        Command::Camera(CameraCommand::Watch { source, seconds, transport }) => {
            init_logging(false);
            camera_watch(&source, seconds, &transport)
        }
        Command::Eval(args) => {
            init_logging(false);
            run_eval(args)
        }
        Command::Config(ConfigCommand::Default) => {
            print!("{DEFAULT_TOML}");
            Ok(())
        }
        Command::Config(ConfigCommand::Check { config }) => {
            let config = config.load()?;
            config.check_on_disk()?;
            print!("{}", toml::to_string_pretty(&config)?);
            eprintln!("config OK: {} camera(s)", config.cameras.len());
            Ok(())
        }
    }
}

/// Resident memory of this process, MiB (Linux /proc).
pub(crate) fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map_or(0.0, |kib| kib / 1024.0)
}

fn camera_watch(source: &str, seconds: u64, transport: &str) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    let transport = match transport {
        "tcp" => te_camera::Transport::Tcp,
        "udp" => te_camera::Transport::Udp,
        _ => te_camera::Transport::Auto,
    };
    let settings = te_camera::CameraSettings {
        transport,
        ..te_camera::CameraSettings::new(te_types::CameraId::new("watch"), source)
    };
    let (tx, rx) = std::sync::mpsc::sync_channel(4);
    let camera = te_camera::spawn(settings, tx)?;
    let stats = camera.stats.clone();
    let drain = std::thread::spawn(move || rx.into_iter().count());
    let started = Instant::now();
    let mut last = (0u64, Instant::now());
    println!("rss_mb at start {:.1}", rss_mb());
    while !camera.is_finished() && (seconds == 0 || started.elapsed() < Duration::from_secs(seconds)) {
        std::thread::sleep(Duration::from_secs(5).min(Duration::from_secs(seconds.max(5))));
        let frames = stats.frames_delivered.load(Relaxed);
        let fps = (frames - last.0) as f64 / last.1.elapsed().as_secs_f64();
        last = (frames, Instant::now());
        println!(
            "t={:>6.0}s state={:<13} frames={frames:>7} fps={fps:>5.1} dropped={} reconnects={} rss_mb={:.1}",
            started.elapsed().as_secs_f64(),
            stats.state().as_str(),
            stats.frames_dropped.load(Relaxed),
            stats.reconnects.load(Relaxed),
            rss_mb()
        );
    }
    camera.stop();
    let result = camera.join();
    let _ = drain.join();
    println!(
        "frames={} reconnects={} rss_mb={:.1}",
        stats.frames_delivered.load(Relaxed),
        stats.reconnects.load(Relaxed),
        rss_mb()
    );
    Ok(result?)
}

fn camera_bench(seconds: u32, cameras: &[usize]) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{:<6} {:>7} {:>7} {:>11} {:>11} {:>13} {:>14}",
        "clip", "cameras", "out", "fps/camera", "CPU/camera", "core@25fps", "streams@25fps"
    );
    for (name, w, h) in [("1080p", 1920, 1080), ("720p", 1280, 720)] {
        let clip = dir.path().join(format!("{name}.mp4"));
        te_camera::bench::make_clip(&clip, w, h, seconds)?;
        for &n in cameras {
            for out_width in [0u32, 640] {
                let f = te_camera::bench::decode_throughput(&clip, n.max(1), out_width)?;
                let out = if out_width == 0 { "native".to_string() } else { format!("{out_width}w") };
                println!(
                    "{:<6} {:>7} {:>7} {:>11.1} {:>10.0}% {:>12.1}% {:>14.1}",
                    name,
                    f.cameras,
                    out,
                    f.fps_per_camera(),
                    100.0 * f.cpu_per_camera(),
                    100.0 * f.core_share_at(25.0),
                    f.streams_at(25.0, cores)
                );
            }
        }
    }
    println!(
        "(H.264 main 4:2:0, decoded as fast as possible to RGB on {cores} core(s); core@25fps = CPU a live 25 fps \
         stream needs; streams@25fps = how many this machine could decode, before any analysis)"
    );
    Ok(())
}

fn load_onnx_runtime(config: &AgentConfig) -> anyhow::Result<te_infer::Runtime> {
    let configured = (!config.paths.runtime_library.is_empty()).then(|| PathBuf::from(&config.paths.runtime_library));
    let library = te_infer::resolve_runtime_library(configured.as_deref())?;
    Ok(te_infer::Runtime::load(&library)?.with_execution(config.inference.clone()))
}

/// A file of this repository, found from the working directory or from the binary's place in target/.
fn project_file(relative: &str) -> Option<PathBuf> {
    let mut candidates = vec![PathBuf::from(relative)];
    if let Ok(exe) = std::env::current_exe() {
        if let Some(root) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            candidates.push(root.join(relative));
        }
    }
    candidates.into_iter().find(|p| p.is_file())
}

fn run_eval(args: EvalArgs) -> anyhow::Result<()> {
    let config = args.config.load()?;
    if eval_scenes::is_riders_layout(&args.dataset) || eval_scenes::is_photo_folder(&args.dataset) {
        return run_detection_eval(&config, &args);
    }
    let kind = eval::detect_kind(&args.dataset)?;
    let mut samples = match kind {
        eval::DatasetKind::GtTsv => eval::load_gt_tsv(&args.dataset)?,
        eval::DatasetKind::OpenAlpr => eval::load_openalpr(&args.dataset)?,
    };
    if let Some(path) = &args.only_crops {
        let wanted = eval::load_name_list(path)?;
        samples.retain(|s| wanted.contains(&s.name));
        println!("only the {} crops of {} that the dataset holds ({} listed)", samples.len(), path.display(), wanted.len());
    }
    let format = match (args.plate_format.as_deref(), kind) {
        (Some("vn"), _) | (None, eval::DatasetKind::GtTsv) => te_infer::PlateFormat::Vietnam,
        _ => te_infer::PlateFormat::Latin,
    };
    let corrections_file = if args.no_corrections {
        None
    } else if let Some(path) = args.corrections {
        Some(path)
    } else {
        let name = args.dataset.canonicalize()?.file_name().map(|n| n.to_string_lossy().into_owned());
        name.and_then(|n| project_file(&format!("models/labels/{n}.corrections.tsv")))
    };
    let corrections = match &corrections_file {
        Some(path) => eval::load_corrections(path)?,
        None => Default::default(),
    };
    println!(
        "dataset {} ({:?}, {} plates), plate format {:?}, corrections {}",
        args.dataset.display(),
        kind,
        samples.len(),
        format,
        corrections_file.as_ref().map_or("none".into(), |p| format!("{} ({} entries)", p.display(), corrections.len()))
    );
    let ort = load_onnx_runtime(&config)?;
    let settings = te_infer::RecognizerSettings {
        detector: te_infer::PlateDetectorSettings { threads: args.threads, ..Default::default() },
        reader: te_infer::PlateReaderSettings { threads: args.threads, format },
    };
    let mut recognizer = te_infer::PlateRecognizer::load(&ort, &config.model_dirs(), settings)?;
    if let Some(sigma) = args.blur {
        println!("every image blurred with Gaussian sigma {sigma} px before reading");
    }
    let report = eval::evaluate(&mut recognizer, &samples, format, &corrections, args.blur)?;
    if let Some(path) = &args.mismatches {
        report.write_mismatches(path)?;
        eprintln!("{} mismatches written to {}", report.mismatches.len(), path.display());
    }
    let (reading, reads) = recognizer.reader_clock();
    report.print(samples.len(), reading.as_secs_f64() * 1000.0 / reads.max(1) as f64);
    Ok(())
}

fn run_detection_eval(config: &AgentConfig, args: &EvalArgs) -> anyhow::Result<()> {
    let photos_only = !eval_scenes::is_riders_layout(&args.dataset);
    let mut frames =
        if photos_only { Vec::new() } else { eval_scenes::load(&args.dataset, args.only_clips.as_deref())? };
    if !photos_only && !args.no_corrections {
        let default = || {
            let name = args.dataset.canonicalize().ok()?.file_name()?.to_string_lossy().into_owned();
            project_file(&format!("models/labels/{name}.corrections.tsv"))
        };
        if let Some(path) = args.corrections.clone().or_else(default) {
            let added = eval_scenes::apply_corrections(&mut frames, &path)?;
            println!("label corrections {}: {added} plates added", path.display());
        }
    }
    println!(
        "dataset {} ({}{}), vehicles >= {} px wide searched for plates",
        args.dataset.display(),
        if photos_only {
            "unlabelled photos".to_string()
        } else {
            format!("vn_riders layout, {} frames", frames.len())
        },
        args.only_clips.as_ref().map_or(String::new(), |p| format!(" of the clips in {}", p.display())),
        config.plates.min_vehicle_width
    );
    let ort = load_onnx_runtime(config)?;
    let vehicle_settings = config.detector.settings().with_threads(args.threads);
    let mut vehicles = te_infer::VehicleDetector::load(&ort, &config.model_dirs(), vehicle_settings)?;
    let settings = te_infer::RecognizerSettings {
        detector: te_infer::PlateDetectorSettings { threads: args.threads, ..Default::default() },
        reader: te_infer::PlateReaderSettings { threads: args.threads, format: te_infer::PlateFormat::Vietnam },
    };
    let mut recognizer = te_infer::PlateRecognizer::load(&ort, &config.model_dirs(), settings)?;
    if photos_only {
        let font = match &args.draw {
            Some(_) => Some(overview::DataBarFont::load(Path::new(&config.evidence.data_bar_font))?),
            None => None,
        };
        let draw = args.draw.as_deref().zip(font.as_ref());
        let width = config.plates.min_vehicle_width;
        return eval_scenes::read_photos(&args.dataset, &mut vehicles, &mut recognizer, width, draw);
    }
    let report = eval_scenes::evaluate(&mut vehicles, &mut recognizer, &frames, config.plates.min_vehicle_width)?;
    if let Some(path) = &args.errors {
        report.write_errors(path)?;
        eprintln!("missed plates and false detections written to {}", path.display());
    }
    if !(0.0..=1.0).contains(&args.helmet_threshold) {
        anyhow::bail!("--helmet-threshold must be in [0, 1], got {}", args.helmet_threshold);
    }
    let fixes = match project_file("models/labels/vn_riders.helmets.tsv").filter(|_| !args.no_corrections) {
        Some(path) => eval_helmets::load_fixes(&path)?,
        None => Default::default(),
    };
    let mut helmets = te_infer::HelmetClassifier::load(&ort, &config.model_dirs(), args.threads)?;
    let helmet_report = eval_helmets::evaluate(&mut helmets, &frames, &fixes, args.helmet_threshold)?;
    helmet_report.print();
    report.print(&helmet_report.fields());
    Ok(())
}

async fn run(config: AgentConfig, exit_when_done: bool, drain_timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let ort = load_onnx_runtime(&config)?;
    let data_bar_font = overview::DataBarFont::load(Path::new(&config.evidence.data_bar_font))?;
    let detector_settings = config.detector.settings();
    let detector = te_infer::VehicleDetector::load(&ort, &config.model_dirs(), detector_settings)?;
    let plates = if config.plates.enabled {
        let settings = te_infer::RecognizerSettings {
            detector: te_infer::PlateDetectorSettings { threads: config.plates.threads, ..Default::default() },
            reader: te_infer::PlateReaderSettings { threads: config.plates.threads, ..Default::default() },
        };
        Some(te_infer::PlateRecognizer::load(&ort, &config.model_dirs(), settings)?)
    } else {
        None
    };
    let helmets = if config.helmets.enabled {
        Some(te_infer::HelmetClassifier::load(&ort, &config.model_dirs(), config.helmets.threads)?)
    } else {
        None
    };
    let store = open_store(&config)?;
    let uplink = Arc::new(Uplink::new(config.uplink.clone(), store.clone())?);
    let clock = te_uplink::clock::ClockWatch::new(&config.time);
    // The first records should already carry a clock check: one try (bounded by `time.timeout_ms`) before the
    // analysis starts, then the periodic task.
    if let Err(e) =
        te_uplink::clock::check_once(&config.time, uplink.client(), &config.uplink.central_url, &clock).await
    {
        tracing::warn!(error = %e, "clock not checked at start; records are flagged until it is");
    }
    // Housekeeping: images of delivered evidence past retention are removed, now and every ten minutes.
    tokio::spawn({
        let store = store.clone();
        async move {
            let mut every = tokio::time::interval(Duration::from_secs(600));
            loop {
                every.tick().await;
                let store = store.clone();
                match tokio::task::spawn_blocking(move || store.purge_expired(chrono::Utc::now())).await {
                    Ok(Err(e)) => tracing::error!(error = %e, "evidence retention housekeeping failed"),
                    Err(e) => tracing::error!(error = %e, "evidence retention housekeeping panicked"),
                    Ok(Ok(_)) => {}
                }
            }
        }
    });

    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let shutdown_rx_for_tasks = shutdown_rx.clone();
    let (drain_tx, drain_rx) = tokio::sync::watch::channel(false);
    let uplink_task = tokio::spawn({
        let uplink = uplink.clone();
        async move { uplink.run(shutdown_rx, drain_rx).await }
    });

    let (frames_tx, frames_rx) = std::sync::mpsc::sync_channel(config.frame_queue);
    let mut cameras = Vec::new();
    for settings in &config.cameras {
        match te_camera::spawn(settings.clone(), frames_tx.clone()) {
            Ok(handle) => cameras.push(handle),
            // One bad camera must not take the others down.
            Err(e) => tracing::error!(error = %e, "camera not started"),
        }
    }
    drop(frames_tx);
    if cameras.is_empty() {
        bail!("no camera could be started; see the errors above");
    }
    let stops: Vec<_> = cameras.iter().map(|c| c.stopper()).collect();
    // One SIGTERM (or Ctrl-C) stops the cameras; the analysis then writes the records in flight and the
    // uplink drains for at most `drain_timeout` (systemd's TimeoutStopSec is longer).
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stop requested: stopping cameras, writing open records, draining the uplink");
        // A stop always ends: should a stage hang (a stalled disk), the process leaves on its own before
        // systemd's SIGKILL, saying why. What was acknowledged is already on disk.
        let limit = drain_timeout + STOP_GRACE;
        std::thread::spawn(move || {
            std::thread::sleep(limit);
            tracing::error!(seconds = limit.as_secs(), "stop did not finish in time; exiting without it");
            std::process::exit(1);
        });
        let _ = stop_tx.send(true);
        for stop in &stops {
            stop();
        }
    });

    let rings = cameras.iter().map(|c| (c.id.clone(), c.ring.clone())).collect();
    let live = Arc::new(health::LiveCounters::default());
    let controller_phases = Arc::new(signal_input::ControllerPhases::default());
    tokio::spawn(te_uplink::clock::run(
        config.time.clone(),
        uplink.client().clone(),
        config.uplink.central_url.clone(),
        clock.clone(),
        shutdown_rx_for_tasks.clone(),
    ));
    let sources = health::Sources {
        cameras: cameras.iter().map(|c| (c.id.clone(), c.stats.clone())).collect(),
        store: store.clone(),
        uplink: uplink.stats.clone(),
        analysis: live.clone(),
        controller_phases: controller_phases.clone(),
        clock: clock.clone(),
        providers: ort.providers_in_use(),
    };
    if !config.metrics_listen.trim().is_empty() {
        tokio::spawn(health::serve(config.metrics_listen.clone(), sources.clone()));
    }
    if let Some(tokens) = config.controller_tokens()? {
        let allow = signal_input::AllowList::parse(&config.controller.allow)?;
        let router = signal_input::router(controller_phases.clone(), tokens, allow);
        tokio::spawn(signal_input::serve(config.controller.listen.clone(), router));
    }
    if config.uplink.heartbeat_s > 0 {
        tokio::spawn(heartbeat::run(
            uplink.clone(),
            config.device_id.clone(),
            sources,
            PathBuf::from(&config.paths.state),
            Duration::from_secs(config.uplink.heartbeat_s),
            shutdown_rx_for_tasks,
        ));
    }
    let stage = AnalysisStage {
        live,
        rings,
        clip_before: chrono::Duration::seconds(i64::from(config.evidence.clip_before_s)),
        config_version: config.version()?,
        data_bar_font,
        device_id: config.device_id.clone(),
        detector,
        plates,
        plate_reading: config.plates.clone(),
        helmets,
        helmet_checking: config.helmets.clone(),
        tracker_settings: config.tracker.clone(),
        locations: config.cameras.iter().map(|c| (c.id.clone(), c.location.clone())).collect(),
        scenes: config.validated_scenes()?,
        controller_phases,
        clock,
        moments: config.evidence.moments.clone(),
        store: store.clone(),
        new_evidence: uplink.new_evidence.clone(),
    };
    let analysis = tokio::task::spawn_blocking(move || stage.run(frames_rx));
    let camera_stats: Vec<_> = cameras.iter().map(|c| (c.id.clone(), c.stats.clone())).collect();
    let camera_results =
        tokio::task::spawn_blocking(move || cameras.into_iter().map(|c| (c.id.clone(), c.join())).collect::<Vec<_>>())
            .await?;
    for (id, result) in &camera_results {
        if let Err(e) = result {
            tracing::error!(camera = %id, error = %e, "camera ended with an error");
        }
    }
    let report = analysis.await?;
    let analysed_at = started.elapsed();

    if !exit_when_done && !*stop_rx.borrow() {
        tracing::info!("all cameras ended; the uplink keeps delivering until SIGTERM or Ctrl-C");
        let _ = stop_rx.wait_for(|stop| *stop).await;
    }
    let _ = drain_tx.send(true);
    uplink.new_evidence.notify_one();
    if tokio::time::timeout(drain_timeout, uplink_task).await.is_err() {
        tracing::warn!("central service did not take everything in time; the rest stays queued on the box");
    }
    let _ = shutdown_tx.send(true);

    let counts = store.counts()?;
    let central = uplink.central_stats().await;
    let summary = Summary {
        counts,
        central,
        store_alarm: store.alarm(),
        refused: store.refused(),
        elapsed: analysed_at,
        uplink: uplink.stats.clone(),
    };
    print_summary(&config, &report, &camera_stats, &summary);
    if counts.pending > 0 && exit_when_done {
        bail!("{} evidence record(s) are still pending on the box", counts.pending);
    }
    Ok(())
}

/// Time after a stop's drain for cameras and analysis to finish before the process exits regardless.
const STOP_GRACE: Duration = Duration::from_secs(20);

async fn wait_for_signal() {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// What the run ends with, besides the analysis report.
struct Summary {
    counts: te_evidence::StoreCounts,
    central: Result<central_protocol::CentralStats, te_uplink::UplinkError>,
    uplink: Arc<te_uplink::UplinkStats>,
    store_alarm: Option<String>,
    /// Records refused at the disk reserve.
    refused: u64,
    elapsed: Duration,
}

fn print_summary(
    config: &AgentConfig,
    report: &AnalysisReport,
    cameras: &[(te_types::CameraId, Arc<te_camera::CameraStats>)],
    summary: &Summary,
) {
    let Summary { counts, central, store_alarm, refused: summary_refused, elapsed, uplink } = summary;
    use std::sync::atomic::Ordering::Relaxed;
    let dropped: u64 = cameras.iter().map(|(_, s)| s.frames_dropped.load(Relaxed)).sum();
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!();
    println!("traffic-edge summary ({})", config.device_id);
    for (id, stats) in cameras {
        println!(
            "  camera {:<14} frames analysed {:>5}   dropped {:>3}   skipped inputs {}   reconnects {}",
            id.as_str(),
            report.frames_per_camera.get(id).copied().unwrap_or(0),
            stats.frames_dropped.load(Relaxed),
            stats.inputs_skipped.load(Relaxed),
            stats.reconnects.load(Relaxed)
        );
        if let Some(error) = stats.last_error.lock().ok().and_then(|e| e.clone()) {
            println!("         {:<14} last error: {error}", "");
        }
    }
    println!(
        "  frames           {:>6}  ({:.1} frames/s, {:.0}% of the time inside the detector; {} dropped)",
        report.frames,
        report.frames as f64 / secs,
        100.0 * report.inference_seconds / secs,
        dropped
    );
    println!("  detections       {:>6}", report.detections);
    println!("  vehicles         {:>6}  (tracked, one per pass)", report.vehicles);
    if config.plates.enabled {
        println!(
            "  plates read      {:>6}  (vehicles with a valid plate; {} reads, {:.1} s reading)",
            report.plates_read, report.plate_reads, report.plate_seconds
        );
    } else {
        println!("  plates read      {:>6}  (plate reading is off: plates.enabled = false)", 0);
    }
    let by_kind: Vec<String> = report.violations.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "  violations       {:>6}  ({})",
        report.violations.values().sum::<u64>(),
        if by_kind.is_empty() {
            "none judged; cameras with a [[scenes]] entry are judged".into()
        } else {
            by_kind.join(", ")
        }
    );
    println!(
        "  evidence         {:>6}  written, {} synced, {} pending, {} rejected",
        report.evidence_written, counts.delivered, counts.pending, counts.rejected
    );
    println!(
        "  uplink           {:>6}  KiB sent, {} KiB of clips resumed, {} failed attempt(s), {} heartbeat(s)",
        uplink.bytes_sent.load(Relaxed) / 1024,
        uplink.clip_bytes_resumed.load(Relaxed) / 1024,
        uplink.failures.load(Relaxed),
        uplink.heartbeats.load(Relaxed)
    );
    if let Some(alarm) = store_alarm {
        println!("  ALARM            {alarm}");
    }
    if *summary_refused > 0 {
        println!("  ALARM            {summary_refused} record(s) refused: the evidence disk reached its reserve");
    }
    match central {
        Ok(stats) => println!(
            "  central          {:>6}  records held at {} ({} device(s), {} camera(s))",
            stats.evidence_total, config.uplink.central_url, stats.devices, stats.cameras
        ),
        Err(e) => println!("  central          unreachable: {e}"),
    }
}
