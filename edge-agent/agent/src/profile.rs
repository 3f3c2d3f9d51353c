//! Box profiles (`hw/profiles/*.toml`): per box type, the decoder, the ONNX Runtime execution provider and
//! threads, and the frame-rate budget per camera. A profile is a layer under the agent configuration: the
//! configuration's own values win. `profile = "auto"` picks one from what the box has.

use serde::Deserialize;
use std::path::Path;

/// The profiles, embedded so a box needs no files beside the binary to use them.
const PROFILES: [(&str, &str); 5] = [
    ("x86-cpu", include_str!("../../../hw/profiles/x86-cpu.toml")),
    ("nvidia-dgpu", include_str!("../../../hw/profiles/nvidia-dgpu.toml")),
    ("jetson", include_str!("../../../hw/profiles/jetson.toml")),
    ("intel-igpu", include_str!("../../../hw/profiles/intel-igpu.toml")),
    ("arm-npu", include_str!("../../../hw/profiles/arm-npu.toml")),
];

pub const AUTO: &str = "auto";

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("unknown box profile {name:?}; known: {known}")]
    Unknown { name: String, known: String },
    #[error("embedded profile {name} is invalid")]
    Invalid {
        name: String,
        #[source]
        source: toml::de::Error,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoxProfile {
    pub name: String,
    pub description: String,
    /// Keys filled into every camera that does not set them.
    #[serde(default)]
    pub camera: toml::Table,
    /// A partial agent configuration placed under the real one.
    #[serde(default)]
    pub config: toml::Table,
}

impl BoxProfile {
    pub fn names() -> impl Iterator<Item = &'static str> {
        PROFILES.iter().map(|(name, _)| *name)
    }

    /// The embedded profile called `name`; an unknown name's error lists the known ones.
    pub fn named(name: &str) -> Result<Self, ProfileError> {
        let (_, text) = PROFILES.iter().find(|(n, _)| *n == name).ok_or_else(|| ProfileError::Unknown {
            name: name.into(),
            known: format!("{AUTO}, {}", Self::names().collect::<Vec<_>>().join(", ")),
        })?;
        toml::from_str(text).map_err(|source| ProfileError::Invalid { name: name.into(), source })
    }

    /// Places this profile under a parsed configuration: tables merge key by key, the configuration wins.
    pub fn underlay(&self, mut config: toml::Table) -> toml::Table {
        if let Some(toml::Value::Array(cameras)) = config.get_mut("cameras") {
            for camera in cameras.iter_mut().filter_map(toml::Value::as_table_mut) {
                for (key, value) in &self.camera {
                    camera.entry(key.clone()).or_insert_with(|| value.clone());
                }
            }
        }
        let mut merged = self.config.clone();
        merge_over(&mut merged, config);
        merged
    }
}

/// `over`'s keys replace `base`'s, except that two tables merge.
fn merge_over(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_over(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// The profile a configuration asks for: by name, or `auto` (chosen from this box's hardware; a chosen
/// profile whose decoder GStreamer lacks keeps its provider and lets decodebin pick the decoder).
pub fn resolve(wanted: &str) -> Result<BoxProfile, ProfileError> {
    if wanted != AUTO {
        return BoxProfile::named(wanted);
    }
    let (name, why) = Facts::of_this_box().choose();
    let mut profile = BoxProfile::named(name)?;
    let decoder = profile.camera.get("decoder").and_then(toml::Value::as_str).unwrap_or_default().to_string();
    if !decoder.is_empty() {
        let installed = te_camera::probe(&[decoder.as_str()]).is_ok_and(|p| p.elements.iter().all(|(_, ok)| *ok));
        if !installed {
            tracing::warn!(profile = name, decoder, "the profile's decoder is not installed; decodebin picks one");
            profile.camera.insert("decoder".into(), toml::Value::String(String::new()));
        }
    }
    tracing::info!(profile = name, why, "box profile chosen");
    Ok(profile)
}

/// What the box has, as far as choosing a profile goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub arch: String,
    /// An NVIDIA Jetson (L4T release file or device-tree model).
    pub jetson: bool,
    /// The NVIDIA driver is loaded (a dGPU).
    pub nvidia_driver: bool,
    /// A DRM render node from Intel (vendor 0x8086).
    pub intel_render_node: bool,
}

impl Facts {
    pub fn of_this_box() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let intel_render_node = std::fs::read_dir("/sys/class/drm")
            .map(|entries| {
                entries.flatten().any(|e| {
                    e.file_name().to_string_lossy().starts_with("renderD")
                        && read(&format!("{}/device/vendor", e.path().display())).trim() == "0x8086"
                })
            })
            .unwrap_or(false);
        Self {
            arch: std::env::consts::ARCH.to_string(),
            jetson: Path::new("/etc/nv_tegra_release").exists() || read("/proc/device-tree/model").contains("Jetson"),
            nvidia_driver: Path::new("/proc/driver/nvidia/version").exists(),
            intel_render_node,
        }
    }

    /// The profile for a box with these facts, and why.
    pub fn choose(&self) -> (&'static str, &'static str) {
        if self.jetson {
            ("jetson", "NVIDIA Jetson (L4T)")
        } else if self.nvidia_driver {
            ("nvidia-dgpu", "NVIDIA driver loaded")
        } else if self.arch == "aarch64" || self.arch == "arm" {
            ("arm-npu", "ARM CPU")
        } else if self.intel_render_node {
            ("intel-igpu", "Intel render node")
        } else {
            ("x86-cpu", "no accelerator found")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_profile_parses_and_names_itself() {
        for name in BoxProfile::names() {
            let profile = BoxProfile::named(name).expect("parses");
            assert_eq!(profile.name, name);
            let provider = profile.config["inference"]["provider"].as_str().expect("provider");
            assert!(te_infer::Provider::ALL.iter().any(|p| p.as_str() == provider), "{name}: {provider}");
        }
    }

    #[test]
    fn an_unknown_profile_lists_the_known_ones() {
        let err = BoxProfile::named("gpu").expect_err("unknown").to_string();
        assert!(err.contains("x86-cpu") && err.contains("jetson") && err.contains("auto"), "{err}");
    }

    #[test]
    fn the_configuration_wins_over_the_profile_key_by_key() {
        let profile = BoxProfile::named("nvidia-dgpu").expect("parses");
        let config: toml::Table = toml::from_str(
            "[detector]\nscore_threshold = 0.4\n[inference]\nfallback_to_cpu = false\n\
             [[cameras]]\nid = \"a\"\nsource = \"x\"\n[[cameras]]\nid = \"b\"\nsource = \"y\"\ndecoder = \"avdec_h264\"\n",
        )
        .expect("toml");
        let merged = profile.underlay(config);
        assert_eq!(merged["detector"]["threads"].as_integer(), Some(1), "from the profile");
        assert_eq!(merged["detector"]["score_threshold"].as_float(), Some(0.4), "from the configuration");
        assert_eq!(merged["inference"]["provider"].as_str(), Some("cuda"));
        assert_eq!(merged["inference"]["fallback_to_cpu"].as_bool(), Some(false));
        let cameras = merged["cameras"].as_array().expect("cameras");
        assert_eq!(cameras[0]["decoder"].as_str(), Some("nvh264dec"));
        assert_eq!(cameras[1]["decoder"].as_str(), Some("avdec_h264"));
        assert_eq!(cameras[1]["max_fps"].as_integer(), Some(25));
    }

    #[test]
    fn detection_prefers_the_most_specific_accelerator() {
        let x86 = Facts { arch: "x86_64".into(), ..Default::default() };
        assert_eq!(x86.choose().0, "x86-cpu");
        assert_eq!(Facts { intel_render_node: true, ..x86.clone() }.choose().0, "intel-igpu");
        assert_eq!(Facts { nvidia_driver: true, intel_render_node: true, ..x86.clone() }.choose().0, "nvidia-dgpu");
        let arm = Facts { arch: "aarch64".into(), ..Default::default() };
        assert_eq!(arm.choose().0, "arm-npu");
        assert_eq!(Facts { jetson: true, nvidia_driver: true, ..arm }.choose().0, "jetson");
    }
}
