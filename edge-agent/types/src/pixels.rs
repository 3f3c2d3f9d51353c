//! A frame's pixels: packed RGB8 (stills, tests) or the decoder's planar YUV 4:2:0 (video).
//!
//! Why I420 for video: a decoder gives I420, and converting a whole 1080p frame to RGB costs ~3 ms and 6 MB
//! while the agent only ever needs RGB for small parts of it (a vehicle for its plate, a rider's head, a signal
//! head), for a detector-sized picture of the whole, and, rarely, for a violation picture. Kept as I420 a frame
//! is half the memory, and each part is converted when it is asked for.

use std::borrow::Cow;
use std::sync::Arc;

/// How a frame holds its pixels.
#[derive(Clone)]
pub enum Pixels {
    /// Packed RGB8, row-major, no padding (`len == width * height * 3`).
    Rgb(Arc<Vec<u8>>),
    /// Planar YUV 4:2:0 as a decoder gives it.
    I420(Arc<I420>),
}

/// Which YUV -> RGB matrix the stream's colorimetry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YuvMatrix {
    /// ITU-R BT.601 (standard definition).
    Bt601,
    /// ITU-R BT.709 (HD; what a 1080p camera stream without colour information is taken to be).
    Bt709,
}

/// A planar YUV 4:2:0 picture with tightly packed rows: `y` is `width x height`, `u` and `v` are
/// `ceil(width / 2) x ceil(height / 2)`.
#[derive(Clone)]
pub struct I420 {
    pub width: u32,
    pub height: u32,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
    pub matrix: YuvMatrix,
    /// Full range (0-255) rather than the video range (Y 16-235, chroma 16-240) cameras normally send.
    pub full_range: bool,
}

impl I420 {
    /// Chroma plane size for a picture of `width x height`.
    pub fn chroma_size(width: u32, height: u32) -> (u32, u32) {
        (width.div_ceil(2), height.div_ceil(2))
    }

    /// `None` when the planes do not have the sizes `width` and `height` call for.
    pub fn new(
        width: u32,
        height: u32,
        y: Vec<u8>,
        u: Vec<u8>,
        v: Vec<u8>,
        matrix: YuvMatrix,
        full_range: bool,
    ) -> Option<Self> {
        let (cw, ch) = Self::chroma_size(width, height);
        let chroma = cw as usize * ch as usize;
        (width > 0
            && height > 0
            && y.len() == width as usize * height as usize
            && u.len() == chroma
            && v.len() == chroma)
            .then_some(Self { width, height, y, u, v, matrix, full_range })
    }

    /// Packed RGB8 of the rectangle `x1..x2, y1..y2` (clamped to the picture); each pixel takes the chroma of
    /// its 2x2 block, as GStreamer's own I420 -> RGB conversion does.
    pub fn rgb_region(&self, x1: u32, y1: u32, x2: u32, y2: u32) -> Vec<u8> {
        let (x2, y2) = (x2.min(self.width), y2.min(self.height));
        let (x1, y1) = (x1.min(x2), y1.min(y2));
        let cols: Vec<usize> = (x1 as usize..x2 as usize).collect();
        let rows: Vec<usize> = (y1 as usize..y2 as usize).collect();
        self.rgb_at(&cols, &rows)
    }

    /// Packed RGB8 of the pixels at `cols` x `rows` (a `rows.len()` x `cols.len()` picture; indices past the
    /// edge are clamped): what a resize reads, without converting the pixels between its taps.
    pub fn rgb_at(&self, cols: &[usize], rows: &[usize]) -> Vec<u8> {
        let convert = self.converter();
        let (w, h) = (self.width as usize, self.height as usize);
        let cw = Self::chroma_size(self.width, self.height).0 as usize;
        let mut out = Vec::with_capacity(cols.len() * rows.len() * 3);
        for &y in rows {
            let y = y.min(h - 1);
            let (luma, chroma) = (y * w, (y / 2) * cw);
            for &x in cols {
                let x = x.min(w - 1);
                out.extend_from_slice(&convert.rgb(self.y[luma + x], self.u[chroma + x / 2], self.v[chroma + x / 2]));
            }
        }
        out
    }

    /// The conversion this picture's colorimetry calls for.
    pub fn converter(&self) -> YuvToRgb {
        YuvToRgb::new(self.matrix, self.full_range)
    }
}

/// YUV -> RGB for one matrix and range: 14-bit fixed point for whole samples, f32 for means of samples.
#[derive(Debug, Clone, Copy)]
pub struct YuvToRgb {
    y_offset: i32,
    y_gain: i32,
    r_v: i32,
    g_u: i32,
    g_v: i32,
    b_u: i32,
}

const SHIFT: i32 = 14;

impl YuvToRgb {
    pub fn new(matrix: YuvMatrix, full_range: bool) -> Self {
        let (r_v, g_u, g_v, b_u) = match matrix {
            YuvMatrix::Bt601 => (1.402, 0.344136, 0.714136, 1.772),
            YuvMatrix::Bt709 => (1.5748, 0.187324, 0.468124, 1.8556),
        };
        let (y_offset, y_scale, c_scale) = if full_range { (0, 1.0, 1.0) } else { (16, 255.0 / 219.0, 255.0 / 224.0) };
        let q = |v: f64| (v * f64::from(1 << SHIFT)).round() as i32;
        Self {
            y_offset,
            y_gain: q(y_scale),
            r_v: q(r_v * c_scale),
            g_u: q(g_u * c_scale),
            g_v: q(g_v * c_scale),
            b_u: q(b_u * c_scale),
        }
    }

    /// One pixel, rounded and clipped to 0..=255.
    #[inline]
    pub fn rgb(&self, y: u8, u: u8, v: u8) -> [u8; 3] {
        let y = (y as i32 - self.y_offset) * self.y_gain + (1 << (SHIFT - 1));
        let (u, v) = (u as i32 - 128, v as i32 - 128);
        let clamp = |value: i32| (value >> SHIFT).clamp(0, 255) as u8;
        [clamp(y + self.r_v * v), clamp(y - self.g_u * u - self.g_v * v), clamp(y + self.b_u * u)]
    }

    /// One pixel from fractional samples (means over an area), neither rounded nor clipped.
    #[inline]
    pub fn rgb_f32(&self, y: f32, u: f32, v: f32) -> [f32; 3] {
        let unit = 1.0 / (1 << SHIFT) as f32;
        let y = (y - self.y_offset as f32) * self.y_gain as f32 * unit;
        let (u, v) = ((u - 128.0) * unit, (v - 128.0) * unit);
        [y + self.r_v as f32 * v, y - self.g_u as f32 * u - self.g_v as f32 * v, y + self.b_u as f32 * u]
    }
}

/// Packed RGB8 of the rectangle `x1..x2, y1..y2` (clamped) of a packed RGB8 picture `width` pixels wide.
pub fn rgb_region(rgb: &[u8], width: u32, x1: u32, y1: u32, x2: u32, y2: u32) -> Vec<u8> {
    let height = if width == 0 { 0 } else { (rgb.len() / (width as usize * 3)) as u32 };
    let (x2, y2) = (x2.min(width), y2.min(height));
    let (x1, y1) = (x1.min(x2), y1.min(y2));
    let stride = width as usize * 3;
    let mut out = Vec::with_capacity((x2 - x1) as usize * (y2 - y1) as usize * 3);
    for y in y1 as usize..y2 as usize {
        out.extend_from_slice(&rgb[y * stride + x1 as usize * 3..y * stride + x2 as usize * 3]);
    }
    out
}

impl Pixels {
    /// The whole picture as packed RGB8 (converted for I420: a violation picture, not every frame).
    pub fn rgb(&self) -> Cow<'_, [u8]> {
        match self {
            Self::Rgb(data) => Cow::Borrowed(data.as_slice()),
            Self::I420(planes) => Cow::Owned(planes.rgb_region(0, 0, planes.width, planes.height)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planes(width: u32, height: u32, full_range: bool, pixel: impl Fn(u32, u32) -> (u8, u8, u8)) -> I420 {
        let (cw, ch) = I420::chroma_size(width, height);
        let y = (0..height).flat_map(|r| (0..width).map(move |c| (r, c))).map(|(r, c)| pixel(c, r).0).collect();
        let chroma = |pick: fn((u8, u8, u8)) -> u8| {
            (0..ch).flat_map(|r| (0..cw).map(move |c| (r, c))).map(|(r, c)| pick(pixel(2 * c, 2 * r))).collect()
        };
        I420::new(width, height, y, chroma(|p| p.1), chroma(|p| p.2), YuvMatrix::Bt709, full_range).expect("planes")
    }

    #[test]
    fn video_range_grey_and_primaries_convert_to_the_rgb_the_matrix_gives() {
        // Black, white and mid grey in the video range.
        for (luma, want) in [(16u8, 0u8), (235, 255), (126, 128)] {
            let grey = planes(4, 2, false, |_, _| (luma, 128, 128));
            assert!(grey.rgb_region(0, 0, 4, 2).iter().all(|&v| v.abs_diff(want) <= 1), "luma {luma}");
        }
        // BT.709 video-range red (Y 63, U 102, V 240) is (255, 0, 0) within a step.
        let red = planes(2, 2, false, |_, _| (63, 102, 240)).rgb_region(0, 0, 1, 1);
        assert!(red[0] >= 253 && red[1] <= 2 && red[2] <= 2, "{red:?}");
    }

    #[test]
    fn a_region_is_the_same_pixels_as_the_whole_picture_converted() {
        let picture = planes(9, 7, true, |x, y| ((x * 25 + y * 3) as u8, (100 + x * 10) as u8, (90 + y * 15) as u8));
        let whole = picture.rgb_region(0, 0, 9, 7);
        assert_eq!(picture.rgb_region(3, 2, 8, 6), rgb_region(&whole, 9, 3, 2, 8, 6));
        // Clamped to the picture, never out of bounds.
        assert_eq!(picture.rgb_region(5, 5, 50, 50), rgb_region(&whole, 9, 5, 5, 9, 7));
        assert!(picture.rgb_region(20, 20, 30, 30).is_empty());
    }

    #[test]
    fn pixels_gathered_at_columns_and_rows_are_those_of_the_whole_picture() {
        let picture =
            planes(8, 6, false, |x, y| ((40 + x * 20 + y * 7) as u8, (110 + x * 4) as u8, (140 - y * 3) as u8));
        let whole = picture.rgb_region(0, 0, 8, 6);
        let (cols, rows) = ([0usize, 3, 4, 7, 9], [1usize, 2, 5]);
        let gathered = picture.rgb_at(&cols, &rows);
        for (i, &y) in rows.iter().enumerate() {
            for (j, &x) in cols.iter().enumerate() {
                let x = x.min(7);
                let at = (i * cols.len() + j) * 3;
                assert_eq!(gathered[at..at + 3], whole[(y * 8 + x) * 3..(y * 8 + x) * 3 + 3], "({x}, {y})");
            }
        }
        // The float path of a single sample is the fixed-point one before rounding.
        let convert = picture.converter();
        for (y, u, v) in [(16u8, 128u8, 128u8), (120, 90, 200), (235, 240, 16)] {
            let exact = convert.rgb_f32(f32::from(y), f32::from(u), f32::from(v));
            for (a, b) in convert.rgb(y, u, v).iter().zip(exact) {
                assert!((f32::from(*a) - b.round().clamp(0.0, 255.0)).abs() <= 1.0, "{y} {u} {v}: {a} {b}");
            }
        }
    }

    #[test]
    fn planes_of_the_wrong_size_are_refused() {
        assert!(I420::new(4, 4, vec![0; 16], vec![0; 4], vec![0; 3], YuvMatrix::Bt709, false).is_none());
        assert!(I420::new(0, 4, vec![], vec![], vec![], YuvMatrix::Bt709, false).is_none());
        // Odd sizes round the chroma planes up.
        assert!(I420::new(3, 3, vec![0; 9], vec![0; 4], vec![0; 4], YuvMatrix::Bt601, false).is_some());
    }
}
