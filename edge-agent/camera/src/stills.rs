//! A still-image camera: every image in a directory becomes one frame, in name order.
//!
//! Used for demo scenes and for re-analysing photos. A file that cannot be decoded is logged, counted and
//! skipped; it does not end the camera.

use crate::{CameraError, CameraSettings, Delivery, Flow};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use te_types::Frame;

const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "JPG"];

pub(crate) fn run(settings: &CameraSettings, dir: &Path, delivery: Delivery) -> Result<(), CameraError> {
    let io_err = |e: std::io::Error| CameraError::Io {
        camera: settings.id.clone(),
        path: dir.display().to_string(),
        message: e.to_string(),
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(io_err)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| IMAGE_EXTENSIONS.contains(&e)))
        .collect();
    files.sort();
    tracing::info!(camera = %settings.id, images = files.len(), "still-image camera started");
    for (number, path) in files.iter().enumerate() {
        let image = match image::open(path) {
            Ok(image) => image.into_rgb8(),
            Err(e) => {
                tracing::warn!(camera = %settings.id, path = %path.display(), error = %e, "skipping undecodable image");
                delivery.stats.inputs_skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        let frame = Frame {
            camera: settings.id.clone(),
            number: number as u64,
            captured_at: chrono::Utc::now(),
            scene_cut: true,
            width: image.width(),
            height: image.height(),
            pixels: te_types::Pixels::Rgb(Arc::new(image.into_raw())),
        };
        if delivery.deliver(frame) == Flow::Stop {
            break;
        }
    }
    Ok(())
}
