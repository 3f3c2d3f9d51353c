//! Start-up pieces every command shares: logging, the evidence store, ONNX Runtime, the repository's own
//! files, and the process's memory figure.

use crate::config::AgentConfig;
use crate::pipeline::{StageModels, StageSettings};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use te_evidence::SledStore;

pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,ort=warn".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The evidence store in `<state>/evidence`, sealing with the device key `<state>/device.key` (made on first use).
pub fn open_store(config: &AgentConfig) -> anyhow::Result<Arc<SledStore>> {
    let state = Path::new(&config.paths.state);
    let dir = state.join("evidence");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = te_evidence::DeviceKey::load_or_create(&state.join("device.key"))?;
    Ok(Arc::new(SledStore::open(&dir, key)?.with_limits(config.evidence.limits())))
}

pub fn load_onnx_runtime(config: &AgentConfig) -> anyhow::Result<te_infer::Runtime> {
    let configured = (!config.paths.runtime_library.is_empty()).then(|| PathBuf::from(&config.paths.runtime_library));
    let library = te_infer::resolve_runtime_library(configured.as_deref())?;
    Ok(te_infer::Runtime::load(&library)?.with_execution(config.inference.clone()))
}

/// A file of this repository, found from the working directory or from the binary's place in target/.
pub fn project_file(relative: &str) -> Option<PathBuf> {
    crate::config::project_path(relative).filter(|p| p.is_file())
}

/// Resident memory of this process, MiB (Linux /proc).
pub fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Loads the models `config` turns on for the analysis stage (each checked against the manifest's sha256).
pub fn load_models(config: &AgentConfig, ort: &te_infer::Runtime) -> anyhow::Result<StageModels> {
    let dirs = config.model_dirs();
    let data_bar_font =
        crate::pipeline::overview::DataBarFont::load(std::path::Path::new(&config.evidence.data_bar_font))?;
    let detector = te_infer::VehicleDetector::load(ort, &dirs, config.detector.settings())?;
    let plates = if config.plates.enabled {
        let settings = te_infer::RecognizerSettings {
            detector: te_infer::PlateDetectorSettings { threads: config.plates.threads, ..Default::default() },
            reader: te_infer::PlateReaderSettings { threads: config.plates.threads, ..Default::default() },
        };
        Some(te_infer::PlateRecognizer::load(ort, &dirs, settings)?)
    } else {
        None
    };
    let helmets = if config.helmets.enabled {
        Some(te_infer::HelmetClassifier::load(ort, &dirs, config.helmets.threads)?)
    } else {
        None
    };
    Ok(StageModels { detector, plates, helmets, data_bar_font })
}

/// What the analysis stage needs to know from `config` (scenes validated, the configuration's hash).
pub fn stage_settings(config: &AgentConfig) -> anyhow::Result<StageSettings> {
    Ok(StageSettings {
        device_id: config.device_id.clone(),
        clip_before: chrono::Duration::seconds(i64::from(config.evidence.clip_before_s)),
        config_version: config.version()?,
        detect_interval: u64::from(config.detector.interval),
        plate_reading: config.plates.clone(),
        helmet_checking: config.helmets.clone(),
        tracker_settings: config.tracker.clone(),
        locations: config.cameras.iter().map(|c| (c.id.clone(), c.location.clone())).collect(),
        scenes: config.validated_scenes()?,
        moments: config.evidence.moments.clone(),
    })
}
