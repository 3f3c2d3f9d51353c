//! Cutting boxes out of a frame: the vehicle crop the plate detector searches (the vehicle's box grown by
//! [`VEHICLE_MARGIN`] on each side, as the plate detector was trained), and margins around any box.
//! One piece of code for the pipeline, `edge-agent eval` and the tests, so all of them search the same pixels.

use crate::rectify::RgbView;
use te_types::{BBox, Frame};

/// A picture that parts can be cut from as packed RGB8: an RGB picture, or a frame, whose I420 pixels are
/// converted only where a part is cut.
pub trait RgbSource {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Packed RGB8 of `x1..x2, y1..y2`, clamped to the picture.
    fn rgb_region(&self, x1: u32, y1: u32, x2: u32, y2: u32) -> Vec<u8>;
}

impl RgbSource for RgbView<'_> {
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn rgb_region(&self, x1: u32, y1: u32, x2: u32, y2: u32) -> Vec<u8> {
        te_types::pixels::rgb_region(self.data, self.width, x1, y1, x2, y2)
    }
}

impl RgbSource for &Frame {
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn rgb_region(&self, x1: u32, y1: u32, x2: u32, y2: u32) -> Vec<u8> {
        Frame::rgb_region(self, x1, y1, x2, y2)
    }
}

/// The vehicle's box is grown by this fraction of its size on each side: plates sit at the edge of the box.
pub const VEHICLE_MARGIN: f32 = 0.1;

/// The vehicle's crop, with its top-left in frame pixels. `None` for a box outside the frame.
pub fn vehicle_crop(picture: impl RgbSource, vehicle: &BBox) -> Option<(image::RgbImage, (f32, f32))> {
    cut(picture, vehicle, (VEHICLE_MARGIN, VEHICLE_MARGIN))
}

/// `bbox` grown by the fractions `(fx, fy)` of its size on each side, cut out of the frame (whole pixels, the
/// margin stops at the frame's edge); with the crop's top-left in frame pixels. `None` for a box outside the
/// frame or a degenerate one.
pub fn cut(picture: impl RgbSource, bbox: &BBox, (fx, fy): (f32, f32)) -> Option<(image::RgbImage, (f32, f32))> {
    if ![bbox.x1, bbox.y1, bbox.x2, bbox.y2, fx, fy].iter().all(|v| v.is_finite()) {
        return None;
    }
    let (width, height) = picture.size();
    let (mx, my) = (bbox.width() * fx, bbox.height() * fy);
    let x1 = (bbox.x1 - mx).max(0.0) as u32;
    let y1 = (bbox.y1 - my).max(0.0) as u32;
    let x2 = ((bbox.x2 + mx).min(width as f32) as u32).min(width);
    let y2 = ((bbox.y2 + my).min(height as f32) as u32).min(height);
    if x2 <= x1 + 1 || y2 <= y1 + 1 {
        return None;
    }
    let data = picture.rgb_region(x1, y1, x2, y2);
    image::RgbImage::from_raw(x2 - x1, y2 - y1, data).map(|img| (img, (x1 as f32, y1 as f32)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vehicle_crop_grows_the_box_and_stops_at_the_frame_edge() {
        let data = vec![0u8; 200 * 100 * 3];
        let picture = RgbView::new(&data, 200, 100).expect("view");
        let (crop, origin) = vehicle_crop(picture, &BBox { x1: 50.0, y1: 20.0, x2: 150.0, y2: 70.0 }).expect("crop");
        assert_eq!((crop.width(), crop.height(), origin), (120, 60, (40.0, 15.0)));
        let (edge, origin) = vehicle_crop(picture, &BBox { x1: 0.0, y1: 0.0, x2: 100.0, y2: 100.0 }).expect("crop");
        assert_eq!((edge.width(), edge.height(), origin), (110, 100, (0.0, 0.0)));
        assert!(vehicle_crop(picture, &BBox { x1: 300.0, y1: 0.0, x2: 400.0, y2: 50.0 }).is_none());
        assert!(vehicle_crop(picture, &BBox { x1: f32::NAN, y1: 0.0, x2: 10.0, y2: 10.0 }).is_none());
    }
}
