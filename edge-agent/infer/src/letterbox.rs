//! Letterboxing: scale a frame to fit a square model input without distorting it, pad the rest.
//!
//! The resize reproduces OpenCV's `INTER_LINEAR` (half-pixel centres, no anti-aliasing), because that is what
//! the models were trained and their reference code evaluated with; a smoother resampler shifts scores.

use te_types::{BBox, I420};

/// Where the scaled picture sits inside the model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadPlacement {
    /// Top-left corner, padding right and bottom (YOLOX).
    TopLeft,
    /// Centred, padding split on both sides (YOLOv5 family).
    Centre,
}

/// How a frame maps into the model input; use it to map boxes back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    /// Model input pixels per frame pixel.
    pub scale: f32,
    pub pad_x: f32,
    pub pad_y: f32,
    /// The scaled picture's size inside the input.
    pub scaled_width: u32,
    pub scaled_height: u32,
}

impl Letterbox {
    /// Plans a letterbox of a `width` x `height` frame into a `size` x `size` input.
    pub fn plan(width: u32, height: u32, size: u32, placement: PadPlacement) -> Self {
        Self::plan_rect(width, height, (size, size), placement)
    }

    /// Plans a letterbox of a `width` x `height` frame into an `input.0` x `input.1` (width x height) input.
    pub fn plan_rect(width: u32, height: u32, input: (u32, u32), placement: PadPlacement) -> Self {
        let (in_w, in_h) = input;
        let scale = (in_w as f32 / width as f32).min(in_h as f32 / height as f32);
        // Truncation, as the reference code does with int().
        let scaled_width = ((width as f32 * scale) as u32).clamp(1, in_w);
        let scaled_height = ((height as f32 * scale) as u32).clamp(1, in_h);
        let (pad_x, pad_y) = match placement {
            PadPlacement::TopLeft => (0.0, 0.0),
            PadPlacement::Centre => (((in_w - scaled_width) / 2) as f32, ((in_h - scaled_height) / 2) as f32),
        };
        Self { scale, pad_x, pad_y, scaled_width, scaled_height }
    }

    /// The smallest input `long_side` wide (or tall, for a portrait frame) whose other side is a multiple of
    /// `stride` and holds the whole scaled frame: a 1920x1080 frame at 416 gets 416x256 (234 rows of picture,
    /// 22 of padding) instead of 416x416. Returns (width, height).
    pub fn fit_input(width: u32, height: u32, long_side: u32, stride: u32) -> (u32, u32) {
        let stride = stride.max(1);
        let align = |v: u32| v.div_ceil(stride).max(1) * stride;
        let long_side = align(long_side);
        if width >= height {
            let short = ((height as f32 * long_side as f32 / width.max(1) as f32) as u32).max(1);
            (long_side, align(short).min(long_side))
        } else {
            let short = ((width as f32 * long_side as f32 / height.max(1) as f32) as u32).max(1);
            (align(short).min(long_side), long_side)
        }
    }

    /// Maps a box from model-input pixels back to frame pixels.
    pub fn to_frame(&self, b: BBox) -> BBox {
        BBox {
            x1: (b.x1 - self.pad_x) / self.scale,
            y1: (b.y1 - self.pad_y) / self.scale,
            x2: (b.x2 - self.pad_x) / self.scale,
            y2: (b.y2 - self.pad_y) / self.scale,
        }
    }

    /// Writes the letterboxed frame as a planar (CHW) f32 tensor of `size` x `size`.
    ///
    /// `rgb` is packed RGB8. `bgr` selects the channel order the model wants; each value becomes
    /// `pixel * value_scale`, and padding gets `pad_value * value_scale`.
    #[allow(clippy::too_many_arguments)]
    pub fn fill_chw(
        &self,
        rgb: &[u8],
        width: u32,
        height: u32,
        size: u32,
        bgr: bool,
        pad_value: u8,
        value_scale: f32,
        out: &mut Vec<f32>,
    ) {
        self.fill_chw_rect(rgb, width, height, (size, size), bgr, pad_value, value_scale, out)
    }

    /// [`Self::fill_chw`] into an `input.0` x `input.1` (width x height) tensor.
    #[allow(clippy::too_many_arguments)]
    pub fn fill_chw_rect(
        &self,
        rgb: &[u8],
        width: u32,
        height: u32,
        input: (u32, u32),
        bgr: bool,
        pad_value: u8,
        value_scale: f32,
        out: &mut Vec<f32>,
    ) {
        self.fill_padded(input, pad_value as f32 * value_scale, out, |canvas, sw, sh, out| {
            resize_into_chw(rgb, width as usize, height as usize, sw, sh, canvas, bgr, |v| v * value_scale, out)
        });
    }

    /// [`Self::fill_chw_rect`] from a frame's I420 planes: the same tensor as from the frame converted to RGB,
    /// converting only the pixels the resize reads.
    #[allow(clippy::too_many_arguments)]
    pub fn fill_chw_rect_i420(
        &self,
        planes: &I420,
        input: (u32, u32),
        bgr: bool,
        pad_value: u8,
        value_scale: f32,
        out: &mut Vec<f32>,
    ) {
        self.fill_padded(input, pad_value as f32 * value_scale, out, |canvas, sw, sh, out| {
            resize_i420_into_chw(planes, sw, sh, canvas, bgr, |v| v * value_scale, out)
        });
    }

    /// `out` as an `input` tensor of padding, with `resize(canvas, scaled width, scaled height, out)` drawing
    /// the picture onto it.
    fn fill_padded(
        &self,
        input: (u32, u32),
        pad: f32,
        out: &mut Vec<f32>,
        resize: impl FnOnce(&Canvas, usize, usize, &mut [f32]),
    ) {
        let (in_w, in_h) = (input.0 as usize, input.1 as usize);
        out.clear();
        out.resize(in_w * in_h * 3, pad);
        let canvas = Canvas { width: in_w, height: in_h, x: self.pad_x as usize, y: self.pad_y as usize };
        resize(&canvas, self.scaled_width as usize, self.scaled_height as usize, out);
    }
}

/// Where a resized picture goes in a planar (CHW) tensor: the tensor's plane size and the picture's top-left.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Canvas {
    pub width: usize,
    pub height: usize,
    pub x: usize,
    pub y: usize,
}

/// Resizes packed RGB8 (`src_w` x `src_h`) to `dst_w` x `dst_h` with OpenCV's INTER_LINEAR rules and writes it
/// into `out` (3 planes of `canvas.width` x `canvas.height`) at the canvas offset, each value through `map`.
/// Values are rounded to u8 before `map`, as OpenCV's u8 resize does, so tensors match the reference's.
#[allow(clippy::too_many_arguments)]
pub(crate) fn resize_into_chw(
    src: &[u8],
    src_w: usize,
    src_h: usize,
    dst_w: usize,
    dst_h: usize,
    canvas: &Canvas,
    bgr: bool,
    map: impl Fn(f32) -> f32,
    out: &mut [f32],
) {
    let xs = axis_taps(src_w, dst_w);
    let ys = axis_taps(src_h, dst_h);
    resize_with_taps(src, src_w * 3, &xs, &ys, canvas, bgr, map, out);
}

/// [`resize_into_chw`] from I420 planes: only the pixels at the taps are converted (a 1080p frame to 416x234
/// reads about a fifth of its pixels), then the same interpolation runs on them, so the result is exactly that
/// of converting the whole frame first.
pub(crate) fn resize_i420_into_chw(
    planes: &I420,
    dst_w: usize,
    dst_h: usize,
    canvas: &Canvas,
    bgr: bool,
    map: impl Fn(f32) -> f32,
    out: &mut [f32],
) {
    let mut xs = axis_taps(planes.width as usize, dst_w);
    let mut ys = axis_taps(planes.height as usize, dst_h);
    let (cols, rows) = (compact(&mut xs), compact(&mut ys));
    let gathered = planes.rgb_at(&cols, &rows);
    resize_with_taps(&gathered, cols.len() * 3, &xs, &ys, canvas, bgr, map, out);
}

/// The source indices `taps` read, sorted, with the taps renumbered to positions in that list.
fn compact(taps: &mut [(usize, usize, f32)]) -> Vec<usize> {
    let mut used: Vec<usize> = taps.iter().flat_map(|t| [t.0, t.1]).collect();
    used.sort_unstable();
    used.dedup();
    let position = |i: usize| used.binary_search(&i).unwrap_or(0);
    for tap in taps.iter_mut() {
        *tap = (position(tap.0), position(tap.1), tap.2);
    }
    used
}

/// The interpolation of [`resize_into_chw`] over precomputed taps into rows of `stride` bytes.
///
/// Separable: each source row the output needs is blended along x once into a row of f32 (kept while the
/// next output rows still read it: an upscaled plate crop reads each source row for two or more output rows),
/// then two such rows are blended along y into the three planes' rows. The arithmetic is the same expression
/// per value as blending all four taps at once (`top * (1 - wy) + bottom * wy` with `top` and `bottom` blended
/// along x first), so the tensor is bit for bit the same; `perf` had the old per-value loop at 11% of the
/// vn_riders eval.
#[allow(clippy::too_many_arguments)]
fn resize_with_taps(
    src: &[u8],
    stride: usize,
    xs: &[(usize, usize, f32)],
    ys: &[(usize, usize, f32)],
    canvas: &Canvas,
    bgr: bool,
    map: impl Fn(f32) -> f32,
    out: &mut [f32],
) {
    let plane = canvas.width * canvas.height;
    let dst_w = xs.len();
    // Each output column's two source offsets (bytes) and weights, (1 - w) computed once as the loop did.
    let cols: Vec<(usize, usize, f32, f32)> = xs.iter().map(|&(x0, x1, w)| (x0 * 3, x1 * 3, 1.0 - w, w)).collect();
    // Blended rows are planar (all of channel 0, then 1, then 2) so that the blend along y runs over
    // contiguous values (vectorised).
    let blend_row = |y: usize, into: &mut [f32]| {
        let row = &src[y * stride..y * stride + stride];
        let (c0, rest) = into.split_at_mut(dst_w);
        let (c1, c2) = rest.split_at_mut(dst_w);
        for (i, &(a, b, wa, wb)) in cols.iter().enumerate() {
            let (pa, pb) = (&row[a..a + 3], &row[b..b + 3]);
            c0[i] = pa[0] as f32 * wa + pb[0] as f32 * wb;
            c1[i] = pa[1] as f32 * wa + pb[1] as f32 * wb;
            c2[i] = pa[2] as f32 * wa + pb[2] as f32 * wb;
        }
    };
    // Two cached rows blended along x, and the source row each holds.
    let (mut row_a, mut row_b) = (vec![0.0f32; dst_w * 3], vec![0.0f32; dst_w * 3]);
    let (mut held_a, mut held_b) = (usize::MAX, usize::MAX);
    let (p0, rest) = out.split_at_mut(plane);
    let (p1, p2) = rest.split_at_mut(plane);
    let (first, third) = if bgr { (p2, p0) } else { (p0, p2) };
    for (oy, &(y0, y1, wy)) in ys.iter().enumerate() {
        // Make row_a hold y0 and row_b hold y1, reusing what the previous output row blended.
        if held_a != y0 {
            if held_b == y0 {
                std::mem::swap(&mut row_a, &mut row_b);
                std::mem::swap(&mut held_a, &mut held_b);
            } else {
                blend_row(y0, &mut row_a);
                held_a = y0;
            }
        }
        if held_b != y1 {
            if y1 == y0 {
                row_b.copy_from_slice(&row_a);
            } else {
                blend_row(y1, &mut row_b);
            }
            held_b = y1;
        }
        let start = (oy + canvas.y) * canvas.width + canvas.x;
        let (o0, o1, o2) =
            (&mut first[start..start + dst_w], &mut p1[start..start + dst_w], &mut third[start..start + dst_w]);
        let wt = 1.0 - wy;
        for (c, o) in [o0, o1, o2].into_iter().enumerate() {
            let (top, bottom) = (&row_a[c * dst_w..(c + 1) * dst_w], &row_b[c * dst_w..(c + 1) * dst_w]);
            for ((o, &t), &b) in o.iter_mut().zip(top).zip(bottom) {
                *o = map(round_non_negative(t * wt + b * wy).min(255.0));
            }
        }
    }
}

/// `v.round()` for `v >= 0` (a blend of pixel values with weights in 0..=1), without the call into libm's
/// `roundf` that `f32::round` costs on x86-64 without SSE4.1 (`perf`: about as much time as the rest of the
/// letterbox's loop). The truncation is one instruction and `v - t` is exact, so halfway cases round up as
/// `round` does.
#[inline]
pub(crate) fn round_non_negative(v: f32) -> f32 {
    // Through i32, not u32: the same value for 0 <= v < 2^31 (pixel blends are at most 255), and SSE2 has the
    // i32 conversion as one vector instruction, so the loops that call this vectorise.
    let t = v as i32 as f32;
    if v - t >= 0.5 {
        t + 1.0
    } else {
        t
    }
}

/// For each output coordinate: the two source taps and the weight of the second (OpenCV INTER_LINEAR rules).
fn axis_taps(src: usize, dst: usize) -> Vec<(usize, usize, f32)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let f = (d as f64 + 0.5) * scale - 0.5;
            let mut i = f.floor();
            let mut w = f - i;
            if i < 0.0 {
                i = 0.0;
                w = 0.0;
            }
            let i = i as usize;
            if i >= src - 1 {
                (src - 1, src - 1, 0.0)
            } else {
                (i, i + 1, w as f32)
            }
        })
        .collect()
}

/// A made-up I420 picture with smooth and sharp detail in every plane, and the same picture converted to RGB.
#[cfg(test)]
pub(crate) fn test_i420(width: u32, height: u32) -> (I420, Vec<u8>) {
    let (cw, ch) = I420::chroma_size(width, height);
    let plane = |w: u32, h: u32, f: &dyn Fn(u32, u32) -> u32| -> Vec<u8> {
        (0..h).flat_map(|y| (0..w).map(move |x| (x, y))).map(|(x, y)| (f(x, y) % 256) as u8).collect()
    };
    let y = plane(width, height, &|x, y| 16 + (x * 7 + y * 3) % 200 + if (x / 5 + y / 3) % 2 == 0 { 0 } else { 19 });
    let u = plane(cw, ch, &|x, y| 70 + (x * 5 + y * 11) % 120);
    let v = plane(cw, ch, &|x, y| 60 + (x * 13 + y * 2) % 140);
    let planes = I420::new(width, height, y, u, v, te_types::YuvMatrix::Bt709, false).expect("planes");
    let rgb = planes.rgb_region(0, 0, width, height);
    (planes, rgb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_without_libm_agrees_with_round_on_every_blend_of_pixel_values() {
        for v in [0.0f32, 0.5, 1.5, 2.5, 254.5, 255.0, 0.49999997, 127.49999, 127.50001, 1e-7] {
            assert_eq!(round_non_negative(v), v.round(), "{v}");
        }
        // Every f32 from 0 to 256 in steps of 1/1024, and the neighbours of each halfway point.
        for i in 0..=256 * 1024 {
            let v = i as f32 / 1024.0;
            assert_eq!(round_non_negative(v), v.round(), "{v}");
        }
        for k in 0..256 {
            let half = k as f32 + 0.5;
            for v in [half, f32::from_bits(half.to_bits() - 1), f32::from_bits(half.to_bits() + 1)] {
                assert_eq!(round_non_negative(v), v.round(), "{v}");
            }
        }
    }

    type Taps = [(usize, usize, f32)];

    /// The per-value loop this module used until 2026-12-07: the oracle the separable resize must equal.
    fn resize_per_value(
        (src, stride): (&[u8], usize),
        (xs, ys): (&Taps, &Taps),
        canvas: &Canvas,
        bgr: bool,
        out: &mut [f32],
    ) {
        let plane = canvas.width * canvas.height;
        let channel_plane = |c: usize| if bgr { 2 - c } else { c };
        for (oy, &(y0, y1, wy)) in ys.iter().enumerate() {
            let row0 = &src[y0 * stride..y0 * stride + stride];
            let row1 = &src[y1 * stride..y1 * stride + stride];
            let out_row = (oy + canvas.y) * canvas.width + canvas.x;
            for (ox, &(x0, x1, wx)) in xs.iter().enumerate() {
                for c in 0..3 {
                    let top = row0[x0 * 3 + c] as f32 * (1.0 - wx) + row0[x1 * 3 + c] as f32 * wx;
                    let bottom = row1[x0 * 3 + c] as f32 * (1.0 - wx) + row1[x1 * 3 + c] as f32 * wx;
                    let v = round_non_negative(top * (1.0 - wy) + bottom * wy).min(255.0);
                    out[channel_plane(c) * plane + out_row + ox] = v / 255.0;
                }
            }
        }
    }

    #[test]
    fn the_separable_resize_is_bit_for_bit_the_per_value_one() {
        // Up and down in each axis, odd sizes, both channel orders, an offset canvas.
        let cases = [
            (37usize, 23usize, 256usize, 161usize),
            (640, 360, 256, 144),
            (100, 300, 85, 256),
            (5, 3, 256, 200),
            (256, 256, 256, 256),
            (1, 1, 7, 7),
        ];
        for (n, &(sw, sh, dw, dh)) in cases.iter().enumerate() {
            let src: Vec<u8> = (0..sw * sh * 3).map(|i| ((i * 2654435761usize) >> 7) as u8).collect();
            let canvas = Canvas { width: dw + 3, height: dh + 2, x: 3, y: 1 };
            for bgr in [false, true] {
                let (xs, ys) = (axis_taps(sw, dw), axis_taps(sh, dh));
                let mut fast = vec![-1.0f32; canvas.width * canvas.height * 3];
                let mut slow = fast.clone();
                resize_with_taps(&src, sw * 3, &xs, &ys, &canvas, bgr, |v| v / 255.0, &mut fast);
                resize_per_value((&src, sw * 3), (&xs, &ys), &canvas, bgr, &mut slow);
                let same = fast.iter().zip(&slow).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "case {n} ({sw}x{sh} -> {dw}x{dh}, bgr {bgr}) differs");
            }
        }
    }

    #[test]
    fn a_letterbox_from_i420_planes_is_exactly_the_one_from_the_converted_frame() {
        for (w, h, input) in [(1920u32, 1080u32, (416u32, 256u32)), (641, 359, (416, 416)), (200, 120, (416, 256))] {
            let (planes, rgb) = test_i420(w, h);
            let lb = Letterbox::plan_rect(w, h, input, PadPlacement::TopLeft);
            let (mut from_rgb, mut from_planes) = (Vec::new(), Vec::new());
            lb.fill_chw_rect(&rgb, w, h, input, true, 114, 1.0, &mut from_rgb);
            lb.fill_chw_rect_i420(&planes, input, true, 114, 1.0, &mut from_planes);
            assert_eq!(from_rgb, from_planes, "{w}x{h} -> {input:?}");
        }
    }

    #[test]
    fn a_wide_frame_fills_the_width_and_is_padded_below() {
        let lb = Letterbox::plan(768, 432, 416, PadPlacement::TopLeft);
        assert_eq!((lb.scaled_width, lb.scaled_height), (416, 234));
        let lb = Letterbox::plan(768, 432, 320, PadPlacement::Centre);
        assert_eq!((lb.scaled_width, lb.scaled_height, lb.pad_y), (320, 180, 70.0));
    }

    #[test]
    fn a_16_9_frame_gets_a_stride_aligned_input_just_tall_enough() {
        assert_eq!(Letterbox::fit_input(1920, 1080, 416, 32), (416, 256));
        assert_eq!(Letterbox::fit_input(640, 352, 416, 32), (416, 256));
        assert_eq!(Letterbox::fit_input(1280, 960, 416, 32), (416, 320));
        assert_eq!(Letterbox::fit_input(1080, 1920, 416, 32), (256, 416));
        assert_eq!(Letterbox::fit_input(500, 500, 416, 32), (416, 416));
        // A degenerate strip still gets one stride of input.
        assert_eq!(Letterbox::fit_input(4000, 1, 416, 32), (416, 32));
        let lb = Letterbox::plan_rect(1920, 1080, (416, 256), PadPlacement::TopLeft);
        assert_eq!((lb.scaled_width, lb.scaled_height), (416, 234));
    }

    #[test]
    fn boxes_map_back_to_frame_pixels() {
        let lb = Letterbox::plan(800, 400, 400, PadPlacement::Centre);
        let b = lb.to_frame(BBox { x1: 0.0, y1: 100.0, x2: 200.0, y2: 300.0 });
        assert_eq!(b, BBox { x1: 0.0, y1: 0.0, x2: 400.0, y2: 400.0 });
    }

    #[test]
    fn a_uniform_frame_stays_uniform_and_padding_gets_the_pad_value() {
        let (w, h) = (64u32, 32u32);
        let rgb: Vec<u8> = std::iter::repeat_n([10u8, 20, 30], (w * h) as usize).flatten().collect();
        let lb = Letterbox::plan(w, h, 16, PadPlacement::TopLeft);
        let mut out = Vec::new();
        lb.fill_chw(&rgb, w, h, 16, true, 114, 1.0, &mut out);
        // BGR planes: blue first.
        assert_eq!(out[0], 30.0);
        assert_eq!(out[256], 20.0);
        assert_eq!(out[512], 10.0);
        // Row 15 is below the 8-row picture: padding.
        assert_eq!(out[15 * 16], 114.0);
    }
}
