//! The overview picture of an evidence record: the frame with the vehicle's box drawn on it, as JPEG.

use image::codecs::jpeg::JpegEncoder;
use te_types::{BBox, Frame};

const BOX_COLOUR: [u8; 3] = [255, 40, 40];
const BOX_THICKNESS: u32 = 3;
const JPEG_QUALITY: u8 = 88;

/// Encodes `frame` with `bbox` outlined. The frame itself is not modified (other stages may hold it).
pub fn overview_jpeg(frame: &Frame, bbox: &BBox) -> Result<Vec<u8>, image::ImageError> {
    let mut rgb = frame.data.as_ref().clone();
    draw_box(&mut rgb, frame.width, frame.height, bbox);
    let mut out = Vec::with_capacity(rgb.len() / 8);
    JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY).encode(
        &rgb,
        frame.width,
        frame.height,
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

fn draw_box(rgb: &mut [u8], width: u32, height: u32, bbox: &BBox) {
    if width == 0 || height == 0 {
        return;
    }
    let b = bbox.clamp_to(width - 1, height - 1);
    let (x1, y1, x2, y2) = (b.x1 as u32, b.y1 as u32, b.x2 as u32, b.y2 as u32);
    let mut put = |x: u32, y: u32| {
        let i = (y as usize * width as usize + x as usize) * 3;
        if let Some(px) = rgb.get_mut(i..i + 3) {
            px.copy_from_slice(&BOX_COLOUR);
        }
    };
    for t in 0..BOX_THICKNESS {
        for x in x1..=x2 {
            put(x, (y1 + t).min(y2));
            put(x, y2.saturating_sub(t).max(y1));
        }
        for y in y1..=y2 {
            put((x1 + t).min(x2), y);
            put(x2.saturating_sub(t).max(x1), y);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use te_types::CameraId;

    #[test]
    fn the_overview_is_a_jpeg_of_the_frame_size_with_the_box_drawn() {
        let frame = Frame {
            camera: CameraId::new("c"),
            number: 0,
            captured_at: chrono::Utc::now(),
            scene_cut: false,
            width: 64,
            height: 48,
            data: Arc::new(vec![0; 64 * 48 * 3]),
        };
        let jpeg = overview_jpeg(&frame, &BBox { x1: 10.0, y1: 10.0, x2: 40.0, y2: 30.0 }).expect("encode");
        let decoded = image::load_from_memory(&jpeg).expect("decode").into_rgb8();
        assert_eq!(decoded.dimensions(), (64, 48));
        assert!(decoded.get_pixel(10, 20)[0] > 180, "left edge is red");
        assert!(decoded.get_pixel(25, 20)[0] < 40, "inside stays dark");
        assert!(frame.data.iter().all(|&v| v == 0), "the frame is untouched");
    }
}
