//! Area-averaging downscale, as OpenCV's `INTER_AREA` does it: each output pixel is the mean of the source
//! pixels under its footprint, partial pixels weighted by how much of them it covers.
//!
//! The motorcyclist detector was trained on frames shrunk this way (a 1080p frame to 512x288 is 3.75x); a
//! bilinear shrink by that much skips most pixels and aliases, which shifts the model's scores.

/// For each output coordinate: (first source index, weights of the source pixels from there), weights summing to 1.
fn axis_weights(src: usize, dst: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let start = d as f64 * scale;
            let end = (start + scale).min(src as f64);
            let first = start.floor() as usize;
            let mut weights = Vec::new();
            let mut i = first;
            while (i as f64) < end && i < src {
                let covered = (end.min(i as f64 + 1.0) - start.max(i as f64)).max(0.0);
                weights.push((covered / (end - start)) as f32);
                i += 1;
            }
            (first, weights)
        })
        .collect()
}

/// Shrinks packed RGB8 (`src_w` x `src_h`) to `dst_w` x `dst_h` (each no larger than the source's) into three
/// planes of `out` (CHW, `dst_w * dst_h` each), each value rounded to u8 as OpenCV's u8 resize does, then
/// through `map`. `bgr` puts blue in the first plane.
#[allow(clippy::too_many_arguments)]
pub(crate) fn shrink_into_chw(
    src: &[u8],
    src_w: usize,
    src_h: usize,
    dst_w: usize,
    dst_h: usize,
    bgr: bool,
    map: impl Fn(f32) -> f32,
    out: &mut [f32],
) {
    let xs = axis_weights(src_w, dst_w);
    let ys = axis_weights(src_h, dst_h);
    let plane = dst_w * dst_h;
    // Horizontal pass per source row into a row buffer, then vertical accumulation: one pass over the source.
    let mut rows: Vec<f32> = vec![0.0; dst_w * 3];
    let mut acc: Vec<f32> = vec![0.0; dst_w * 3];
    for (oy, (y0, wy)) in ys.iter().enumerate() {
        acc.iter_mut().for_each(|v| *v = 0.0);
        for (k, w_row) in wy.iter().enumerate() {
            let row = &src[(y0 + k) * src_w * 3..(y0 + k + 1) * src_w * 3];
            for (ox, (x0, wx)) in xs.iter().enumerate() {
                let mut px = [0f32; 3];
                for (j, w) in wx.iter().enumerate() {
                    let p = &row[(x0 + j) * 3..(x0 + j) * 3 + 3];
                    px[0] += p[0] as f32 * w;
                    px[1] += p[1] as f32 * w;
                    px[2] += p[2] as f32 * w;
                }
                rows[ox * 3..ox * 3 + 3].copy_from_slice(&px);
            }
            for (a, r) in acc.iter_mut().zip(&rows) {
                *a += r * w_row;
            }
        }
        for ox in 0..dst_w {
            for c in 0..3 {
                let v = acc[ox * 3 + c].round().clamp(0.0, 255.0);
                let p = if bgr { 2 - c } else { c };
                out[p * plane + oy * dst_w + ox] = map(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_cover_each_footprint_and_sum_to_one() {
        for (src, dst) in [(1920, 512), (1280, 512), (1080, 288), (720, 288), (7, 3), (5, 5)] {
            let w = axis_weights(src, dst);
            assert_eq!(w.len(), dst);
            for (first, weights) in &w {
                assert!((weights.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{src}->{dst}");
                assert!(first + weights.len() <= src);
            }
        }
    }

    #[test]
    fn a_two_to_one_shrink_averages_each_two_by_two_block() {
        // 4x2 picture, left half 0, right half 200 in every channel -> 2x1: 0 and 200; a split pair -> 100.
        let src: Vec<u8> = [0u8, 0, 200, 200, 0, 0, 200, 200].iter().flat_map(|&v| [v, v, v]).collect();
        let mut out = vec![0f32; 6];
        shrink_into_chw(&src, 4, 2, 2, 1, false, |v| v, &mut out);
        assert_eq!(&out[..2], &[0.0, 200.0]);
        let src: Vec<u8> = [0u8, 200, 0, 200].iter().flat_map(|&v| [v, v, v]).collect();
        shrink_into_chw(&src, 2, 2, 1, 1, false, |v| v, &mut out[..3]);
        assert_eq!(out[0], 100.0);
    }
}
