//! What the model tests share: where the repository, the shared folder and ONNX Runtime are, the model
//! folders, and a frame from an image file.
#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::sync::Arc;
use te_infer::{ModelDirs, Runtime};
use te_types::{CameraId, Frame};

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn shared_dir() -> PathBuf {
    std::env::var_os("TE_SHARED_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("../shared"))
}

pub fn runtime() -> Runtime {
    let local = workspace_root().join(".local/onnxruntime/libonnxruntime.so");
    let configured = std::env::var_os("ORT_DYLIB_PATH").is_none().then_some(local);
    let library = te_infer::resolve_runtime_library(configured.as_deref()).expect("ONNX Runtime (run scripts/setup)");
    Runtime::load(&library).expect("load ONNX Runtime")
}

pub fn model_dirs() -> ModelDirs {
    ModelDirs {
        model_dir: shared_dir().join("models"),
        wheel_dir: workspace_root().join(".local/models"),
        project_dir: workspace_root().join("models"),
    }
}

pub fn frame_from(path: &Path) -> Frame {
    let image = image::open(path).expect("decode test image").into_rgb8();
    Frame {
        camera: CameraId::new("reference"),
        number: 0,
        captured_at: chrono::Utc::now(),
        scene_cut: true,
        width: image.width(),
        height: image.height(),
        data: Arc::new(image.into_raw()),
    }
}
