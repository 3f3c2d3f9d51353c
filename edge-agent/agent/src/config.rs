//! The agent's configuration: serde structs with defaults, parsed in two steps (raw TOML, then validated),
//! with errors that name the field (and the camera) that is wrong.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use te_camera::CameraSettings;
use te_track::TrackerSettings;
use te_types::{CameraId, DeviceId};
use te_uplink::UplinkSettings;

/// The configuration the demo box runs with; `edge-agent config default` prints it.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// This box's id, unique in the province; in every evidence record.
    pub device_id: DeviceId,
    /// The box profile (`hw/profiles`): decoder, execution provider, threads, frame-rate budget. `auto`
    /// picks one from the hardware; after parsing this holds the profile in effect.
    #[serde(default = "default_profile")]
    pub profile: String,
    /// Which ONNX Runtime execution provider runs the models (normally from the profile).
    #[serde(default)]
    pub inference: te_infer::ExecutionSettings,
    /// Frames waiting for analysis, per analysis worker (all its cameras together).
    #[serde(default = "default_frame_queue")]
    pub frame_queue: usize,
    /// Analysis threads, each with its own models; cameras are dealt to them in turn. 0: one per core.
    #[serde(default)]
    pub analysis_workers: usize,
    #[serde(default)]
    pub paths: Paths,
    #[serde(default)]
    pub detector: DetectorConfig,
    #[serde(default)]
    pub tracker: TrackerSettings,
    #[serde(default)]
    pub plates: crate::pipeline::PlateReading,
    #[serde(default)]
    pub helmets: crate::pipeline::helmets::HelmetChecking,
    #[serde(default)]
    pub evidence: EvidenceConfig,
    /// Address for `/metrics` (Prometheus) and `/healthz` (JSON); empty: off.
    #[serde(default)]
    pub metrics_listen: String,
    /// Where junction controllers report signal phases (a listener of its own, with tokens).
    #[serde(default)]
    pub controller: crate::signal_input::ControllerInput,
    #[serde(default)]
    pub uplink: UplinkSettings,
    /// How the box checks its clock (records carry the result; violations with a bad clock are flagged).
    #[serde(default)]
    pub time: te_uplink::clock::ClockSettings,
    pub cameras: Vec<CameraSettings>,
    /// Each camera's scene: lines, lanes, zones, signal and rules. A camera without one records every vehicle
    /// pass and judges nothing.
    #[serde(default)]
    pub scenes: Vec<te_rules::SceneConfig>,
}

/// How much evidence the box keeps, and for how long after the central service has it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvidenceConfig {
    /// Disk quota for records and images, MiB. Over it, images of delivered records are removed oldest
    /// first; undelivered evidence is never removed (an alarm is raised instead). 0 = no quota.
    pub quota_mb: u64,
    /// Days an image is kept after the central service acknowledged it. 0 = keep forever.
    pub retention_days: u32,
    /// Free disk space, MiB, kept in reserve on the evidence disk: under twice this the alarm rises and
    /// delivered images are removed; a new record that would eat into it is refused cleanly (counted, alarm)
    /// instead of meeting a full disk mid-write. 0 = no reserve.
    pub reserve_mb: u64,
    /// TrueType font (covering Vietnamese) for the data bar under every overview image.
    pub data_bar_font: String,
    /// Seconds of video before a vehicle was confirmed that its clip includes (from the camera's ring buffer,
    /// whose length is the camera's `ring.seconds`).
    pub clip_before_s: u32,
    /// The pictures of a violation (before / at / after, side by side in its overview).
    pub moments: crate::pipeline::moments::MomentSettings,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        Self {
            quota_mb: 20_000,
            retention_days: 30,
            reserve_mb: 256,
            data_bar_font: "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf".into(),
            clip_before_s: 3,
            moments: crate::pipeline::moments::MomentSettings::default(),
        }
    }
}

impl EvidenceConfig {
    pub fn limits(&self) -> te_evidence::StoreLimits {
        te_evidence::StoreLimits {
            quota_bytes: (self.quota_mb > 0).then(|| self.quota_mb * 1024 * 1024),
            retention: (self.retention_days > 0).then(|| chrono::Duration::days(i64::from(self.retention_days))),
            reserve_bytes: (self.reserve_mb > 0).then(|| self.reserve_mb.saturating_mul(1024 * 1024)),
        }
    }
}

/// An address to listen on: empty (off) or `host:port` with a port above 0.
fn check_listen(field: &str, listen: &str, example: &str) -> Result<(), ConfigError> {
    let listen = listen.trim();
    if listen.is_empty() {
        return Ok(());
    }
    let port = listen.rsplit_once(':').filter(|(host, _)| !host.is_empty()).map(|(_, port)| port.parse::<u16>());
    if !matches!(port, Some(Ok(p)) if p > 0) {
        return Err(bad(field, format!("must be host:port (e.g. {example}), got {listen:?}")));
    }
    Ok(())
}

fn default_profile() -> String {
    crate::profile::AUTO.into()
}

fn default_frame_queue() -> usize {
    8
}

/// Where things are on disk. `{shared}`, `{data}`, `{models}` expand in later fields and camera sources.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Paths {
    pub shared: String,
    pub data: String,
    pub models: String,
    pub wheel_models: String,
    /// The project's own trained models (plate detector, plate reader): the repository's `models/` folder by
    /// default; a packaged box installs them under /usr/share/traffic-edge/models.
    pub project_models: String,
    pub state: String,
    pub runtime_library: String,
}

impl Default for Paths {
    fn default() -> Self {
        Self {
            shared: "../shared".into(),
            data: "{shared}/data".into(),
            models: "{shared}/models".into(),
            wheel_models: ".local/models".into(),
            project_models: "models".into(),
            state: ".local/edge".into(),
            runtime_library: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    pub score_threshold: f32,
    pub nms_iou: f32,
    /// ONNX Runtime intra-op threads for each detector.
    pub threads: usize,
    /// Run the project's motorcyclist detector beside YOLOX (its boxes replace the COCO motorbikes under them).
    pub motorcyclists: bool,
    /// Motorcyclists scoring below this are discarded.
    pub motorcyclist_threshold: f32,
    /// YOLOX's input: "fit" (416 wide, as tall as the frame needs: 416x256 for 16:9) or "square" (416x416).
    pub input: te_infer::DetectorInput,
    /// Cameras whose view needs another input than `input` (`edge-agent bench`'s quality gate says which):
    /// `input_for = { carpark-1 = "square" }`.
    pub input_for: std::collections::BTreeMap<String, te_infer::DetectorInput>,
    /// Frames from one detection to the next on each camera (1: every frame); the tracks coast on their
    /// motion in between. `edge-agent bench` measures what it costs in agreement with every-frame detection.
    pub interval: u32,
}

impl DetectorConfig {
    pub fn settings(&self) -> te_infer::VehicleDetectorSettings {
        te_infer::VehicleDetectorSettings {
            score_threshold: self.score_threshold,
            nms_iou: self.nms_iou,
            threads: self.threads,
            motorcyclists: self.motorcyclists.then(|| te_infer::RiderDetectorSettings {
                score_threshold: self.motorcyclist_threshold,
                threads: self.threads,
                ..Default::default()
            }),
            input: self.input,
            input_for: self.input_for.clone(),
        }
    }
}

impl Default for DetectorConfig {
    fn default() -> Self {
        let d = te_infer::VehicleDetectorSettings::default();
        Self {
            score_threshold: d.score_threshold,
            nms_iou: d.nms_iou,
            threads: d.threads,
            motorcyclists: true,
            motorcyclist_threshold: te_infer::RiderDetectorSettings::default().score_threshold,
            input: d.input,
            input_for: d.input_for,
            interval: 1,
        }
    }
}

/// A configuration that does not make sense; `field` is a path like `cameras[1].source`.
#[derive(Debug, thiserror::Error)]
#[error("config: {field}: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError { field: field.into(), message: message.into() }
}

/// Command-line and environment overrides, applied before expansion.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub shared: Option<PathBuf>,
    pub data: Option<PathBuf>,
    pub models: Option<PathBuf>,
    pub state: Option<PathBuf>,
    pub central_url: Option<String>,
    pub token_file: Option<PathBuf>,
}

impl AgentConfig {
    /// Parses TOML text; `origin` names the file in errors.
    /// The box profile goes under it: the text's own values win.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        // As written first, so that errors point at the line and unknown keys are named.
        let as_written: Self = toml::from_str(text).map_err(|e| bad(origin, e.to_string()))?;
        let table: toml::Table = toml::from_str(text).map_err(|e| bad(origin, e.to_string()))?;
        let profile =
            crate::profile::resolve(&as_written.profile).map_err(|e| bad("profile", te_types::error_chain(&e)))?;
        let mut merged = profile.underlay(table);
        merged.insert("profile".into(), toml::Value::String(profile.name.clone()));
        Self::deserialize(toml::Value::Table(merged))
            .map_err(|e| bad(format!("{origin} with profile {}", profile.name), e.to_string()))
    }

    /// Applies overrides, expands placeholders and validates.
    pub fn finish(mut self, o: &Overrides) -> Result<Self, ConfigError> {
        let path = |p: &PathBuf| p.display().to_string();
        if let Some(p) = &o.shared {
            self.paths.shared = path(p);
        }
        if let Some(p) = &o.data {
            self.paths.data = path(p);
        }
        if let Some(p) = &o.models {
            self.paths.models = path(p);
        }
        if let Some(p) = &o.state {
            self.paths.state = path(p);
        }
        if let Some(url) = &o.central_url {
            self.uplink.central_url = url.clone();
        }
        if let Some(p) = &o.token_file {
            self.uplink.token_file = path(p);
        }
        let shared = self.paths.shared.clone();
        let expand = |s: &str, data: &str, models: &str| {
            s.replace("{shared}", &shared).replace("{data}", data).replace("{models}", models)
        };
        self.paths.data = expand(&self.paths.data, "{data}", "{models}");
        self.paths.models = expand(&self.paths.models, "{data}", "{models}");
        let (data, models) = (self.paths.data.clone(), self.paths.models.clone());
        for field in [
            &mut self.paths.wheel_models,
            &mut self.paths.project_models,
            &mut self.paths.state,
            &mut self.paths.runtime_library,
        ] {
            *field = expand(field, &data, &models);
        }
        for camera in &mut self.cameras {
            camera.source = expand(&camera.source, &data, &models);
        }
        self.validate()?;
        Ok(self)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.device_id.as_str().trim().is_empty() {
            return Err(bad("device_id", "must not be empty"));
        }
        // What the central service takes (ids, place names): a box configured outside it would record
        // evidence that is refused on delivery.
        central_protocol::check_id("device_id", self.device_id.as_str()).map_err(|e| bad(e.field, e.why))?;
        if self.frame_queue == 0 {
            return Err(bad("frame_queue", "must be at least 1"));
        }
        if self.paths.state.trim().is_empty() {
            return Err(bad("paths.state", "must name a folder"));
        }
        check_listen("metrics_listen", &self.metrics_listen, "127.0.0.1:9898")?;
        let c = &self.controller;
        check_listen("controller.listen", &c.listen, "0.0.0.0:9899")?;
        crate::signal_input::AllowList::parse(&c.allow).map_err(|e| bad("controller.allow", e.to_string()))?;
        if !c.listen.trim().is_empty() && c.tokens_file.trim().is_empty() {
            return Err(bad(
                "controller.tokens_file",
                "is required with controller.listen: controllers must authenticate",
            ));
        }
        let d = &self.detector;
        if !(0.0..1.0).contains(&d.score_threshold) {
            return Err(bad("detector.score_threshold", format!("must be in [0, 1), got {}", d.score_threshold)));
        }
        if !(0.0..=1.0).contains(&d.nms_iou) {
            return Err(bad("detector.nms_iou", format!("must be in [0, 1], got {}", d.nms_iou)));
        }
        if !(1..=4).contains(&d.interval) {
            return Err(bad("detector.interval", format!("must be 1 to 4 frames, got {}", d.interval)));
        }
        if d.threads == 0 {
            return Err(bad("detector.threads", "must be at least 1"));
        }
        if let Some(unknown) = d.input_for.keys().find(|id| !self.cameras.iter().any(|c| c.id.as_str() == id.as_str()))
        {
            return Err(bad(format!("detector.input_for.{unknown}"), "names no configured camera"));
        }
        if !(0.0..1.0).contains(&d.motorcyclist_threshold) {
            return Err(bad(
                "detector.motorcyclist_threshold",
                format!("must be in [0, 1), got {}", d.motorcyclist_threshold),
            ));
        }
        self.tracker.validate().map_err(|e| bad(format!("tracker.{}", e.field), e.why))?;
        let h = &self.helmets;
        if h.threads == 0 {
            return Err(bad("helmets.threads", "must be at least 1"));
        }
        if h.frames_between_checks == 0 || h.frames_between_checks > 1000 {
            return Err(bad("helmets.frames_between_checks", "must be 1..=1000"));
        }
        if !(h.min_vehicle_width.is_finite() && h.min_vehicle_width >= 0.0) {
            return Err(bad("helmets.min_vehicle_width", format!("must be >= 0, got {}", h.min_vehicle_width)));
        }
        let p = &self.plates;
        if p.threads == 0 {
            return Err(bad("plates.threads", "must be at least 1"));
        }
        if p.enabled && p.max_reads_per_vehicle == 0 {
            return Err(bad("plates.max_reads_per_vehicle", "must be at least 1 (or set plates.enabled = false)"));
        }
        // Each read's plate picture travels with the record; the central service takes at most this many.
        if p.max_reads_per_vehicle > central_protocol::MAX_PLATE_CROPS {
            return Err(bad(
                "plates.max_reads_per_vehicle",
                format!("must be at most {} (plate pictures per record)", central_protocol::MAX_PLATE_CROPS),
            ));
        }
        if p.min_vehicle_width.is_nan() || p.min_vehicle_width < 0.0 {
            return Err(bad("plates.min_vehicle_width", format!("must be >= 0, got {}", p.min_vehicle_width)));
        }
        self.uplink.validate().map_err(|e| bad(format!("uplink.{}", e.field), e.why))?;
        self.time.validate().map_err(|e| bad(format!("time.{}", e.field), e.why))?;
        self.evidence.moments.validate().map_err(|e| bad(format!("evidence.moments.{}", e.field), e.why))?;
        if self.cameras.is_empty() {
            return Err(bad("cameras", "at least one camera is needed"));
        }
        let mut seen = HashSet::new();
        for (i, camera) in self.cameras.iter().enumerate() {
            let field = |name: &str| format!("cameras[{i}] ({}).{name}", camera.id);
            if camera.id.as_str().trim().is_empty() {
                return Err(bad(format!("cameras[{i}].id"), "must not be empty"));
            }
            if !seen.insert(camera.id.clone()) {
                return Err(bad(field("id"), "is used by another camera"));
            }
            central_protocol::check_id("id", camera.id.as_str()).map_err(|e| bad(field("id"), e.why))?;
            central_protocol::check_text("location", &camera.location, central_protocol::MAX_LOCATION_CHARS)
                .map_err(|e| bad(field("location"), e.why))?;
            if camera.source.trim().is_empty() {
                return Err(bad(field("source"), "must not be empty"));
            }
        }
        let mut scened = HashSet::new();
        for (i, scene) in self.scenes.iter().enumerate() {
            let field = |name: &str| format!("scenes[{i}] ({}).{name}", scene.camera);
            if !self.cameras.iter().any(|c| c.id.as_str() == scene.camera) {
                return Err(bad(field("camera"), "is not the id of a camera in [[cameras]]"));
            }
            if !scened.insert(scene.camera.clone()) {
                return Err(bad(field("camera"), "already has a scene"));
            }
            scene.validate().map_err(|e| bad(format!("scenes[{i}] ({}).{}", e.camera, e.field), e.message))?;
        }
        Ok(())
    }

    /// The controllers' tokens (`controller.tokens_file`), checked against the configured cameras; `None`
    /// when there is no controller input.
    pub fn controller_tokens(&self) -> Result<Option<crate::signal_input::ControllerTokens>, ConfigError> {
        if self.controller.listen.trim().is_empty() {
            return Ok(None);
        }
        let known = self.cameras.iter().map(|c| c.id.clone()).collect();
        crate::signal_input::ControllerTokens::load(self.controller.tokens_file.trim(), &known)
            .map(Some)
            .map_err(|e| bad("controller.tokens_file", e.to_string()))
    }

    /// What `config check` verifies beyond the text: every camera's source (a well-formed RTSP URL, or a video
    /// file or folder that exists), the model folders and the device token file. Errors name the field.
    pub fn check_on_disk(&self) -> Result<(), ConfigError> {
        for (i, camera) in self.cameras.iter().enumerate() {
            camera.check_source().map_err(|e| bad(format!("cameras[{i}] ({}).source", camera.id), e.to_string()))?;
        }
        let dirs = self.model_dirs();
        for (field, dir) in [("paths.models", &dirs.model_dir), ("paths.project_models", &dirs.project_dir)] {
            if !dir.is_dir() {
                return Err(bad(field, format!("{} is not a folder", dir.display())));
            }
        }
        let token = self.uplink.token_file.trim();
        if !token.is_empty() && !Path::new(token).is_file() {
            return Err(bad("uplink.token_file", format!("{token} does not exist")));
        }
        self.controller_tokens()?;
        Ok(())
    }

    /// The scenes by camera, validated (`finish` has checked them; this builds the judge's form).
    pub fn validated_scenes(&self) -> Result<std::collections::HashMap<CameraId, te_rules::Scene>, ConfigError> {
        self.scenes
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let scene =
                    s.validate().map_err(|e| bad(format!("scenes[{i}] ({}).{}", e.camera, e.field), e.message))?;
                Ok((CameraId::new(&s.camera), scene))
            })
            .collect()
    }

    /// SHA-256 (first 16 hex characters) of the effective configuration, every default filled in.
    pub fn version(&self) -> Result<String, toml::ser::Error> {
        let text = toml::to_string(self)?;
        Ok(central_protocol::sha256_hex(text.as_bytes())[..16].to_string())
    }

    pub fn model_dirs(&self) -> te_infer::ModelDirs {
        te_infer::ModelDirs {
            model_dir: self.paths.models.clone().into(),
            wheel_dir: project_relative(&self.paths.wheel_models),
            project_dir: project_relative(&self.paths.project_models),
        }
    }
}

/// A relative path that does not exist from the working directory is looked up from the repository the binary
/// was built in (target/<profile>/edge-agent), so `scripts/setup`'s `.local/...` is found from anywhere.
fn project_relative(path: &str) -> PathBuf {
    project_path(path).unwrap_or_else(|| PathBuf::from(path))
}

/// A path of this repository that exists: as given (from the working directory, or absolute), else under the
/// repository the binary was built in (`<repo>/target/<profile>/edge-agent`). The one place that guesses the
/// repository's root.
pub fn project_path(path: &str) -> Option<PathBuf> {
    let as_given = PathBuf::from(path);
    if as_given.is_absolute() || as_given.exists() {
        return as_given.exists().then_some(as_given);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join(path)))
        .filter(|p| p.exists())
}

/// `edge-agent config check`: the configuration with every default filled in, after its on-disk checks.
pub fn print_checked(config: &AgentConfig) -> anyhow::Result<()> {
    config.check_on_disk()?;
    print!("{}", toml::to_string_pretty(config)?);
    eprintln!("config OK: {} camera(s)", config.cameras.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_config() -> AgentConfig {
        AgentConfig::parse(DEFAULT_TOML, "default.toml").expect("default parses")
    }

    #[test]
    fn the_embedded_default_is_valid_and_expands_to_the_shared_folder() {
        let config = default_config().finish(&Overrides::default()).expect("valid");
        assert_eq!(config.paths.models, "../shared/models");
        assert_eq!(config.cameras[0].source, "../shared/data/video/car-detection.mp4");
    }

    #[test]
    fn overrides_move_data_and_models_independently() {
        let o = Overrides { shared: Some("/s".into()), models: Some("/m".into()), ..Default::default() };
        let config = default_config().finish(&o).expect("valid");
        assert_eq!(config.paths.models, "/m");
        assert_eq!(config.cameras[1].source, "/s/data/vn_scenes");
    }

    #[test]
    fn a_duplicate_camera_id_is_named_with_its_index() {
        let mut config = default_config();
        config.cameras[1].id = config.cameras[0].id.clone();
        let err = config.finish(&Overrides::default()).expect_err("invalid");
        assert_eq!(err.field, "cameras[1] (carpark-1).id");
    }

    #[test]
    fn an_unknown_field_is_refused_with_its_name() {
        let err =
            AgentConfig::parse("device_id = \"x\"\ncameras = []\nfram_queue = 3\n", "box.toml").expect_err("invalid");
        assert!(err.to_string().contains("fram_queue"), "{err}");
    }

    #[test]
    fn a_named_profile_fills_what_the_configuration_leaves_out() {
        let text = "device_id = \"x\"\nprofile = \"jetson\"\n[detector]\nthreads = 4\n\
                    [[cameras]]\nid = \"a\"\nsource = \"rtsp://10.0.0.9/s\"\n";
        let config = AgentConfig::parse(text, "box.toml").expect("valid");
        assert_eq!(config.profile, "jetson");
        assert_eq!(config.inference.provider, te_infer::Provider::Tensorrt);
        assert!(config.inference.fp16);
        assert_eq!(config.detector.threads, 4, "the configuration's own value");
        assert_eq!(config.cameras[0].decoder, "nvv4l2decoder");
        assert_eq!(config.cameras[0].max_fps, 10);
        let err = AgentConfig::parse("device_id = \"x\"\nprofile = \"gpu\"\ncameras = []\n", "box.toml")
            .expect_err("unknown profile");
        assert_eq!(err.field, "profile");
    }

    #[test]
    fn out_of_range_values_name_their_field() {
        let mut config = default_config();
        config.detector.score_threshold = 1.5;
        assert_eq!(config.finish(&Overrides::default()).expect_err("invalid").field, "detector.score_threshold");
        let mut config = default_config();
        config.detector.interval = 0;
        assert_eq!(config.finish(&Overrides::default()).expect_err("invalid").field, "detector.interval");
        let mut config = default_config();
        config.detector.input_for.insert("no-such-camera".into(), te_infer::DetectorInput::Square);
        assert_eq!(
            config.finish(&Overrides::default()).expect_err("invalid").field,
            "detector.input_for.no-such-camera"
        );
        let mut config = default_config();
        config.plates.max_reads_per_vehicle = central_protocol::MAX_PLATE_CROPS + 1;
        assert_eq!(config.finish(&Overrides::default()).expect_err("invalid").field, "plates.max_reads_per_vehicle");
    }

    #[test]
    fn a_metrics_address_that_is_not_host_and_port_is_refused() {
        for listen in ["localhost-9898", ":9898", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:99999"] {
            let mut config = default_config();
            config.metrics_listen = listen.into();
            assert_eq!(config.finish(&Overrides::default()).expect_err(listen).field, "metrics_listen");
        }
        let mut config = default_config();
        config.metrics_listen = "localhost:9898".into();
        assert!(config.finish(&Overrides::default()).is_ok());
    }

    #[test]
    fn a_controller_listener_without_tokens_or_with_a_bad_allow_entry_is_refused() {
        let mut config = default_config();
        config.controller.listen = "0.0.0.0:9899".into();
        assert_eq!(
            config.clone().finish(&Overrides::default()).expect_err("no tokens").field,
            "controller.tokens_file"
        );
        config.controller.tokens_file = "/etc/traffic-edge/controllers".into();
        config.controller.allow = vec!["10.0.0.0/8".into(), "junction".into()];
        assert_eq!(config.clone().finish(&Overrides::default()).expect_err("allow").field, "controller.allow");
        config.controller.allow.pop();
        assert!(config.finish(&Overrides::default()).is_ok());
    }

    #[test]
    fn config_check_refuses_a_malformed_camera_url_a_missing_video_and_a_missing_token_file() {
        // Everything else on disk exists (tests run from the crate's folder, so nothing relative is used).
        let checked = |edit: &dyn Fn(&mut AgentConfig)| {
            let mut config = default_config();
            config.cameras.truncate(1);
            let kept = config.cameras[0].id.clone();
            config.scenes.retain(|s| s.camera == kept.as_str());
            config.cameras[0].source = "rtsp://127.0.0.1:8554/cam".into();
            config.paths.models = std::env::temp_dir().display().to_string();
            config.paths.project_models = std::env::temp_dir().display().to_string();
            edit(&mut config);
            config.finish(&Overrides::default()).expect("valid text").check_on_disk()
        };
        for source in ["rtsp//x", "htp://cam", "rtsp://", "/nonexistent/video.mp4"] {
            let err = checked(&|c| c.cameras[0].source = source.into()).expect_err(source);
            assert!(err.field.starts_with("cameras[0]") && err.field.ends_with(".source"), "{source}: {err}");
        }
        assert!(checked(&|_| {}).is_ok());
        let err = checked(&|c| c.uplink.token_file = "/nonexistent/device.token".into()).expect_err("token");
        assert_eq!(err.field, "uplink.token_file");
        let err = checked(&|c| c.paths.models = "/nonexistent/models".into()).expect_err("models");
        assert_eq!(err.field, "paths.models");
    }
}
