//! Perspective correction: cut a plate out of a picture by its four corners and make it a flat rectangle.
//!
//! The plate detector gives the corners of a plate seen at an angle; the reader wants an upright rectangle.
//! A homography maps each output pixel back into the picture (inverse mapping, bilinear sampling), so every
//! output pixel is written exactly once. Corners are ordered top-left, top-right, bottom-right, bottom-left.

use image::RgbImage;
use te_types::homography;

/// A packed RGB8 picture borrowed from a frame or an image file.
#[derive(Debug, Clone, Copy)]
pub struct RgbView<'a> {
    pub data: &'a [u8],
    pub width: u32,
    pub height: u32,
}

impl<'a> RgbView<'a> {
    /// `None` when `data` is not exactly `width * height * 3` bytes.
    pub fn new(data: &'a [u8], width: u32, height: u32) -> Option<Self> {
        (width > 0 && height > 0 && data.len() == width as usize * height as usize * 3).then_some(Self {
            data,
            width,
            height,
        })
    }

    pub fn of_image(image: &'a RgbImage) -> Self {
        Self { data: image.as_raw(), width: image.width(), height: image.height() }
    }

    fn sample(&self, x: f32, y: f32) -> [u8; 3] {
        let max_x = (self.width - 1) as f32;
        let max_y = (self.height - 1) as f32;
        let (x, y) = (x.clamp(0.0, max_x), y.clamp(0.0, max_y));
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(self.width as usize - 1), (y0 + 1).min(self.height as usize - 1));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let stride = self.width as usize * 3;
        let px = |xx: usize, yy: usize, c: usize| self.data[yy * stride + xx * 3 + c] as f32;
        std::array::from_fn(|c| {
            let top = px(x0, y0, c) * (1.0 - fx) + px(x1, y0, c) * fx;
            let bottom = px(x0, y1, c) * (1.0 - fx) + px(x1, y1, c) * fx;
            (top * (1.0 - fy) + bottom * fy).round() as u8
        })
    }
}

/// The size a rectified plate gets: the mean lengths of its opposite edges, so no detail is thrown away.
pub fn natural_size(corners: &[[f32; 2]; 4]) -> (u32, u32) {
    let d = |a: [f32; 2], b: [f32; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
    let w = (d(corners[0], corners[1]) + d(corners[3], corners[2])) / 2.0;
    let h = (d(corners[0], corners[3]) + d(corners[1], corners[2])) / 2.0;
    (w.round().max(1.0) as u32, h.round().max(1.0) as u32)
}

/// Cuts the quadrilateral `corners` out of `src` into an upright `width` x `height` picture.
/// Returns `None` when the corners are degenerate (three in a line, or all in one point).
pub fn rectify(src: RgbView<'_>, corners: &[[f32; 2]; 4], width: u32, height: u32) -> Option<RgbImage> {
    let (w, h) = (width as f32, height as f32);
    let dst = [[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]];
    let m = homography(&dst, corners)?;
    let mut out = RgbImage::new(width, height);
    for (x, y, pixel) in out.enumerate_pixels_mut() {
        // Pixel centres, as OpenCV's warpPerspective samples them.
        let (u, v) = (x as f32 + 0.5, y as f32 + 0.5);
        let z = m[6] * u + m[7] * v + m[8];
        let sx = (m[0] * u + m[1] * v + m[2]) / z - 0.5;
        let sy = (m[3] * u + m[4] * v + m[5]) / z - 0.5;
        pixel.0 = src.sample(sx, sy);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_axis_aligned_quad_is_a_plain_crop() {
        // A 20x10 picture whose red channel is x and green channel is y.
        let src = RgbImage::from_fn(20, 10, |x, y| image::Rgb([x as u8, y as u8, 0]));
        let view = RgbView::of_image(&src);
        let out = rectify(view, &[[5.0, 2.0], [15.0, 2.0], [15.0, 8.0], [5.0, 8.0]], 10, 6).expect("valid quad");
        assert_eq!(out.get_pixel(0, 0).0, [5, 2, 0]);
        assert_eq!(out.get_pixel(9, 5).0, [14, 7, 0]);
    }

    #[test]
    fn a_tilted_plate_comes_out_upright() {
        // Corners of a 40x20 rectangle rotated by 90 degrees: the output's top row walks down the picture.
        let src = RgbImage::from_fn(50, 50, |x, y| image::Rgb([x as u8, y as u8, 0]));
        let corners = [[30.0, 5.0], [30.0, 45.0], [10.0, 45.0], [10.0, 5.0]];
        assert_eq!(natural_size(&corners), (40, 20));
        let out = rectify(RgbView::of_image(&src), &corners, 40, 20).expect("valid quad");
        assert_eq!(out.get_pixel(0, 0).0, [29, 5, 0]);
        assert_eq!(out.get_pixel(39, 0).0, [29, 44, 0]);
    }

    #[test]
    fn degenerate_corners_are_refused() {
        let src = RgbImage::new(10, 10);
        assert!(rectify(RgbView::of_image(&src), &[[1.0, 1.0]; 4], 4, 4).is_none());
        assert!(RgbView::new(&[0; 5], 2, 2).is_none());
    }
}
