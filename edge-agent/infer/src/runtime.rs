//! Finding and loading the ONNX Runtime shared library (ort's `load-dynamic`), once per process.

use crate::{ExecutionSettings, InferError, ModelDirs, ModelManifest, Provider};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Environment variable that names the library, as ort itself understands it.
pub const RUNTIME_ENV_VAR: &str = "ORT_DYLIB_PATH";

/// Where `scripts/setup` puts the library, relative to the repository root (the working directory of the demo).
const PROJECT_LOCAL_DEFAULT: &str = ".local/onnxruntime/libonnxruntime.so";

/// Picks the library: the configured path, else `$ORT_DYLIB_PATH`, else the project-local default.
/// The first candidate that names an existing file wins; the error lists all that were tried.
pub fn resolve_runtime_library(configured: Option<&Path>) -> Result<PathBuf, InferError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(path) = configured {
        candidates.push(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os(RUNTIME_ENV_VAR) {
        candidates.push(PathBuf::from(path));
    }
    candidates.push(PathBuf::from(PROJECT_LOCAL_DEFAULT));
    if let Ok(exe) = std::env::current_exe() {
        // target/{debug,release}/edge-agent -> repository root
        if let Some(root) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            candidates.push(root.join(PROJECT_LOCAL_DEFAULT));
        }
    }
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let tried = candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    Err(InferError::RuntimeMissing { tried, env: RUNTIME_ENV_VAR })
}

/// The library this process loaded and its environment (ONNX Runtime allows one environment per process).
static LOADED: Mutex<Option<(PathBuf, Arc<ort::environment::Environment>)>> = Mutex::new(None);

/// A loaded ONNX Runtime environment; cheap to clone, shared by every model of the process.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) env: Arc<ort::environment::Environment>,
    /// The library file that was loaded, for `doctor` and logs.
    pub library: PathBuf,
    /// The execution provider every session gets (the box profile's).
    pub execution: ExecutionSettings,
    /// (model, provider) of every session built, for metrics: a fallback to the CPU must be visible.
    in_use: Arc<Mutex<Vec<(String, Provider)>>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("library", &self.library).field("execution", &self.execution).finish()
    }
}

impl Runtime {
    /// Loads the library. ONNX Runtime allows one environment per process, so a second call with the same
    /// library (the same file, however it is named) reuses the first one's; a call naming another library is
    /// an error that says which one is loaded.
    pub fn load(library: &Path) -> Result<Self, InferError> {
        let load_err = |message: String| InferError::RuntimeLoad { path: library.to_path_buf(), message };
        // Held while loading, so that two threads loading at once build one environment.
        let mut loaded = LOADED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let same_file = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        };
        let env = match loaded.as_ref() {
            Some((first, env)) if same_file(first, library) => env.clone(),
            Some((first, _)) => {
                return Err(load_err(format!(
                    "this process has already loaded ONNX Runtime from {} (one per process)",
                    first.display()
                )))
            }
            None => {
                let env = ort::init_from(library)
                    .map_err(|e| load_err(e.to_string()))?
                    .with_name("traffic-edge")
                    .build()
                    .map_err(|e| load_err(e.to_string()))?;
                tracing::info!(library = %library.display(), "ONNX Runtime loaded");
                let env = Arc::new(env);
                *loaded = Some((library.to_path_buf(), env.clone()));
                env
            }
        };
        Ok(Self {
            env,
            library: library.to_path_buf(),
            execution: ExecutionSettings::default(),
            in_use: Arc::default(),
        })
    }

    /// Sessions built from now on use this provider.
    pub fn with_execution(mut self, execution: ExecutionSettings) -> Self {
        self.execution = execution;
        self
    }

    /// The provider each model loaded so far runs on.
    pub fn providers_in_use(&self) -> Vec<(String, Provider)> {
        self.in_use.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The providers the loaded library was built with, for `doctor`.
    pub fn built_in_providers(&self) -> Vec<Provider> {
        Provider::ALL.into_iter().filter(|p| p.is_built_in()).collect()
    }
}

impl Runtime {
    /// Builds a session on the configured provider for manifest model `name` after checking the file's sha256
    /// against the pin.
    pub(crate) fn session(&self, name: &str, dirs: &ModelDirs, threads: usize) -> Result<Session, InferError> {
        let path = ModelManifest::embedded()?.verified_path(name, dirs)?;
        let session_err = |source: ort::Error| InferError::Session { name: name.into(), source };
        let mut builder = Session::builder(&self.env)
            .map_err(session_err)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| session_err(e.into()))?
            .with_intra_threads(threads.max(1))
            .map_err(|e| session_err(e.into()))?;
        let provider = self.execution.apply(&mut builder).map_err(|source| InferError::Provider {
            name: name.into(),
            provider: self.execution.provider,
            source,
        })?;
        let session = builder.commit_from_file(&path).map_err(session_err)?;
        tracing::info!(model = name, path = %path.display(), threads, %provider, "model loaded");
        if let Ok(mut in_use) = self.in_use.lock() {
            in_use.push((name.to_string(), provider));
        }
        Ok(session)
    }
}
