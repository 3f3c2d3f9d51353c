//! The command line: every subcommand and its options (clap). `main.rs` parses and dispatches; the work lives
//! in the library's modules.

use crate::config::{AgentConfig, Overrides, DEFAULT_TOML};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// traffic-edge edge agent: cameras -> vehicle detection -> tracking -> signed evidence -> central service.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// Benchmark: how many live 1080p cameras this box analyses at the rules' frame rate. Serves N cameras over
    /// RTSP on 127.0.0.1 from pre-encoded camera-like streams (te-rtsp-test-server, built beside this binary),
    /// runs the agent's stages on them, and raises N until a count fails; first checks the tuned detector
    /// against the 416x416 oracle on every frame of the clips. Last line: `cameras=<N> fps_per_camera=<min>
    /// drop_pct=<p> p95_latency_ms=<ms> cores_per_camera=<c> rss_mb=<mb> detection_agreement=<f>`.
    Bench {
        #[command(flatten)]
        config: ConfigArgs,
        /// Counts 1 and 4, 10 s each, one run, 40 frames per clip in the quality gate: about a minute.
        #[arg(long)]
        quick: bool,
        /// Camera counts to try, in order; the search stops after the first that does not hold.
        #[arg(long, value_delimiter = ',')]
        cameras: Option<Vec<usize>>,
        /// Measured seconds per run.
        #[arg(long)]
        seconds: Option<u64>,
        /// Runs per count (the table shows the median and the range).
        #[arg(long)]
        repeats: Option<usize>,
        /// Frames per second each camera must analyse.
        #[arg(long, default_value_t = 8)]
        fps: u32,
        /// Frames of each clip the quality gate compares (0: all; --quick: 40).
        #[arg(long)]
        gate_frames: Option<usize>,
        /// Then run the largest count that held this many minutes, reading memory each minute.
        #[arg(long, default_value_t = 0)]
        soak_minutes: u64,
        /// The RTSP test server binary (default: te-rtsp-test-server beside this binary).
        #[arg(long)]
        rtsp_server: Option<std::path::PathBuf>,
    },
    /// Measures plate recognition on a labelled dataset. Plate crops (gt.tsv): the last line is
    /// `exact=<fraction> char=<fraction> n=<count> ms_per_image=<ms> read_ms_per_plate=<ms>`. The vn_riders
    /// layout (images/ + labels/, YOLO): plate detection along the agent's path and the helmet classifier on the
    /// labelled motorcyclists (on the labelled boxes, then on the agent's own detected boxes), last line
    /// `plate_recall=<f> plate_precision=<f> plates=<n> ms_per_image=<ms> ... no_helmet_precision=<f>
    /// no_helmet_recall=<f> riders=<n> helmet_ms_per_rider=<ms> no_helmet_precision_detected=<f>
    /// no_helmet_recall_detected=<f> riders_detected=<n>`. A folder of photos (vn_scenes): every plate found and
    /// read, last line `images= vehicles= plates_found= plates_read= ms_per_image=`, then, where
    /// models/labels/<folder name>.plate_texts.tsv holds the plates read by eye, `legible_plates= legible_found=
    /// legible_read_right= legible_read_wrong= illegible_guesses=`.
    Eval(EvalArgs),
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Dataset folder: `gt.tsv` + `images/` (plate crops), `images/` + `labels/` in YOLO form (vn_riders:
    /// plate detection), or openalpr `*.txt` labels beside scene images.
    #[arg(long)]
    pub dataset: PathBuf,
    /// vn_riders layout: score only the frames of these clips (a file, one clip name per line; the recipe's
    /// validation clips are models/plate_detector/val_clips.txt).
    #[arg(long)]
    pub only_clips: Option<PathBuf>,
    /// Plate crops: score only these images (a file, one image name per line; the reader recipe's validation
    /// split is models/plate_reader/val_crops.txt).
    #[arg(long, conflicts_with = "only_clips")]
    pub only_crops: Option<PathBuf>,
    /// vn_riders layout: write the missed plates, the false detections and the detections of plates not scored
    /// (`ignore_plate` in the corrections file) to this TSV, for checking by eye.
    #[arg(long)]
    pub errors: Option<PathBuf>,
    /// vn_riders layout: write every scored plate with what the agent read and the text read by eye
    /// (models/labels/vn_riders.plate_texts.tsv) to this TSV, for checking by eye.
    #[arg(long)]
    pub plate_reads: Option<PathBuf>,
    /// vn_riders layout: write the upright picture the reader got of each plate found into this folder
    /// (`<frame>_<x1>_<y1>.png`, after the labelled box), for checking the plate's corners by eye.
    #[arg(long)]
    pub plate_pictures: Option<PathBuf>,
    /// vn_riders layout: write the motorcyclist boxes the agent would check for helmets (detected, rider gate
    /// passed) to this TSV (`frame x1 y1 x2 y2`), for the helmet recipe's `--detected`.
    #[arg(long)]
    pub checked_riders: Option<PathBuf>,
    /// A folder of unlabelled photos (like vn_scenes): write each photo with its vehicles, plates and reads
    /// drawn into this folder.
    #[arg(long)]
    pub draw: Option<PathBuf>,
    /// Plates to expect: `vn` (Vietnamese alphabet and grammar; labels that are no Vietnamese plate are not
    /// scored) or `latin` (A-Z, 0-9, no grammar). Default: `vn` for gt.tsv, `latin` for openalpr.
    #[arg(long, value_parser = ["vn", "latin"])]
    pub plate_format: Option<String>,
    /// Label corrections (plate crops: name, label, corrected, reason; vn_riders: frame, add_plate or
    /// ignore_plate, x1, y1, x2, y2, reason: a plate the labels miss, or a cut or hidden plate that is not scored).
    /// Default: models/labels/<dataset folder name>.corrections.tsv when it exists.
    #[arg(long, conflicts_with = "no_corrections")]
    pub corrections: Option<PathBuf>,
    /// Score against the labels exactly as shipped (and photos without the plate texts read by eye).
    #[arg(long)]
    pub no_corrections: bool,
    /// ONNX Runtime threads per model (the plate OCR target is per core: keep 1 to measure it).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// vn_riders layout: a motorcyclist whose p_bare reaches this is fined for riding without a helmet (default:
    /// the scenes' default `no_helmet_at`).
    #[arg(long, default_value_t = te_rules::scene::Thresholds::default().no_helmet_at)]
    pub helmet_threshold: f32,
    /// Plate detections scoring below this are dropped (objectness x layout probability; default: the agent's).
    #[arg(long, default_value_t = te_infer::PlateDetectorSettings::default().score_threshold)]
    pub plate_threshold: f32,
    /// Write every mismatch (name, label, read, raw) to this TSV, for checking by eye.
    #[arg(long)]
    pub mismatches: Option<PathBuf>,
    /// Blur every image with this Gaussian sigma (pixels) before reading: measures blurred plates.
    #[arg(long, value_parser = parse_blur)]
    pub blur: Option<f32>,
    /// Read without the second reader that the agent asks when a read could be more than one plate: measures
    /// what the second opinion brings.
    #[arg(long)]
    pub no_second_opinion: bool,
}

/// What the crash test does besides killing the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CrashMode {
    /// SIGKILL while records are written.
    None,
    /// Also damage sled's files after each kill (bytes flipped, a file truncated or deleted, the folder gone).
    Damage,
    /// The writer also delivers each record, under a tiny quota: kills land in the middle of purges.
    Purge,
    /// After each kill, an index rebuild is started and killed too.
    Rebuild,
    /// The disk fills up: a small tmpfs of its own, a ballast file that leaves little room, the writer running
    /// into the store's reserve, and every third cycle into the true end of the disk with no reserve at all.
    Full,
}

pub fn parse_blur(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v > 0.0 && v <= 20.0 => Ok(v),
        _ => Err(format!("{s:?} is not a blur sigma in (0, 20]")),
    }
}

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
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
        mode: CrashMode,
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
pub enum CameraCommand {
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
pub enum ControllerCommand {
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
pub enum SceneCommand {
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
    /// Runs the detector, tracker and rules over a file camera and compares the violations with labels. The
    /// signal is the labels' script (controller scenes) or read from the decoded pictures (image scenes, then
    /// compared with the labelled phase frame by frame). Last line: `precision=<x> recall=<y> found=<n>
    /// expected=<m> phase_agreement=<f> phase_frames=<n> phase_wrong=<n>` (`n/a` for a scripted signal).
    Replay {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        camera: String,
        /// Labels (TOML): the signal phases (a script for controller scenes, what a person saw for image scenes)
        /// and the expected violations.
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
pub enum ConfigCommand {
    /// Prints the embedded default configuration (the demo box), a starting point for a real one.
    Default,
    /// Validates a configuration and prints it with every default and placeholder filled in.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Configuration file (TOML). Without it the embedded default (the demo box) is used.
    #[arg(long, short, env = "TE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The team's shared folder, holding data/ and models/.
    #[arg(long, env = "TE_SHARED_DIR")]
    pub shared_dir: Option<PathBuf>,
    /// Folder of replay footage (default: <shared>/data).
    #[arg(long, env = "TE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Folder of detector models (default: <shared>/models).
    #[arg(long, env = "TE_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,
    /// Folder of the evidence store.
    #[arg(long, env = "TE_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Base URL of the central service.
    #[arg(long, env = "TE_CENTRAL_URL")]
    pub central_url: Option<String>,
    /// File holding this box's device token (`central-sync device register` prints it).
    #[arg(long, env = "TE_DEVICE_TOKEN_FILE")]
    pub device_token_file: Option<PathBuf>,
}

impl ConfigArgs {
    pub fn load(&self) -> anyhow::Result<AgentConfig> {
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
