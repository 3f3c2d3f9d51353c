//! Which ONNX Runtime execution provider runs the models: chosen by the box profile (`hw/profiles`), checked
//! against what the loaded library was built with, and registered on every session.
//!
//! The library from the `onnxruntime` PyPI wheel has the CPU provider only; a GPU or NPU box installs the
//! vendor's build (`onnxruntime-gpu`, OpenVINO's, JetPack's) and points `runtime_library` at it.

use ort::ep::{self, ArbitrarilyConfigurableExecutionProvider, ExecutionProvider as _};
use ort::session::builder::SessionBuilder;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An execution provider this project knows how to configure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// ONNX Runtime's own CPU kernels; always there.
    #[default]
    Cpu,
    /// NVIDIA CUDA (dGPU boxes, Jetson).
    Cuda,
    /// NVIDIA TensorRT (engines cached under `cache_dir`), with CUDA for what TensorRT does not take.
    Tensorrt,
    /// Intel OpenVINO (iGPU, NPU or CPU, by `device_type`).
    Openvino,
    /// Qualcomm QNN (Hexagon NPU on ARM boxes).
    Qnn,
    /// XNNPACK (ARM NEON kernels), for ARM boxes without a usable NPU.
    Xnnpack,
}

impl Provider {
    pub const ALL: [Provider; 6] =
        [Provider::Cpu, Provider::Cuda, Provider::Tensorrt, Provider::Openvino, Provider::Qnn, Provider::Xnnpack];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
            Provider::Tensorrt => "tensorrt",
            Provider::Openvino => "openvino",
            Provider::Qnn => "qnn",
            Provider::Xnnpack => "xnnpack",
        }
    }

    /// Whether the loaded ONNX Runtime library was built with this provider (needs [`crate::Runtime::load`]
    /// first). Built-in is not the same as usable: a CUDA build on a box without a GPU fails at registration.
    pub fn is_built_in(self) -> bool {
        let available = match self {
            Provider::Cpu => return true,
            Provider::Cuda => ep::CUDA::is_available(),
            Provider::Tensorrt => ep::TensorRT::is_available(),
            Provider::Openvino => ep::OpenVINO::is_available(),
            Provider::Qnn => ep::QNN::is_available(),
            Provider::Xnnpack => ep::XNNPACK::is_available(),
        };
        available.unwrap_or(false)
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How sessions run: the provider and its options. One per process (the box profile's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutionSettings {
    pub provider: Provider,
    /// GPU index (cuda, tensorrt).
    pub device_id: i32,
    /// OpenVINO device: "GPU", "NPU", "CPU" (openvino).
    pub device_type: String,
    /// Half precision where the provider supports it (tensorrt, openvino "GPU").
    pub fp16: bool,
    /// Where TensorRT / OpenVINO keep compiled engines, so a restart does not rebuild them (minutes on a
    /// Jetson). Empty: none.
    pub cache_dir: String,
    /// When the provider cannot be registered: true runs on the CPU provider (logged as a warning), false
    /// refuses to start, so a box that should use its GPU never runs slowly unnoticed.
    pub fallback_to_cpu: bool,
    /// Further provider options, passed as given (e.g. QNN's `backend_path = "libQnnHtp.so"`).
    pub options: BTreeMap<String, String>,
}

impl Default for ExecutionSettings {
    fn default() -> Self {
        Self {
            provider: Provider::Cpu,
            device_id: 0,
            device_type: "GPU".into(),
            fp16: false,
            cache_dir: String::new(),
            fallback_to_cpu: true,
            options: BTreeMap::new(),
        }
    }
}

impl ExecutionSettings {
    fn extra<E: ArbitrarilyConfigurableExecutionProvider>(&self, provider: E) -> E {
        self.options.iter().fold(provider, |p, (key, value)| p.with_arbitrary_config(key, value))
    }

    /// Registers the provider on a session under construction. `Ok(provider)` names the provider the
    /// session will use (the CPU when the chosen one failed and falling back is allowed).
    pub(crate) fn apply(&self, builder: &mut SessionBuilder) -> Result<Provider, ort::Error> {
        let cuda = || self.extra(ep::CUDA::default().with_device_id(self.device_id));
        let outcome = match self.provider {
            Provider::Cpu => return Ok(Provider::Cpu),
            Provider::Cuda => cuda().register(builder),
            Provider::Tensorrt => {
                let mut trt = ep::TensorRT::default().with_device_id(self.device_id).with_fp16(self.fp16);
                if !self.cache_dir.is_empty() {
                    trt = trt.with_engine_cache(true).with_engine_cache_path(&self.cache_dir);
                }
                // TensorRT hands layers it cannot run to CUDA; register both, TensorRT first.
                self.extra(trt).register(builder).and_then(|()| cuda().register(builder))
            }
            Provider::Openvino => {
                let mut ov = ep::OpenVINO::default().with_device_type(&self.device_type);
                if self.fp16 {
                    ov = ov.with_precision("FP16");
                }
                if !self.cache_dir.is_empty() {
                    ov = ov.with_cache_dir(&self.cache_dir);
                }
                self.extra(ov).register(builder)
            }
            Provider::Qnn => self.extra(ep::QNN::default()).register(builder),
            Provider::Xnnpack => self.extra(ep::XNNPACK::default()).register(builder),
        };
        match outcome {
            Ok(()) => Ok(self.provider),
            Err(e) if self.fallback_to_cpu => {
                tracing::warn!(provider = %self.provider, error = %e,
                    "execution provider unavailable; running on the CPU provider (fallback_to_cpu)");
                Ok(Provider::Cpu)
            }
            Err(e) => Err(e),
        }
    }
}
