//! Salt-and-pepper (impulse) noise: single pixels far brighter or darker than all their neighbours.
//!
//! A third of the vn_riders frames carry it (white and black specks over the whole frame, 0.5-4% of the
//! pixels), and the plate detector finds far fewer of their plates (validation clips: 0.79 of the plates in
//! such frames, 0.92 in the others). `edge-agent eval` reports the two apart, so that the figures say how much
//! of the gap is this noise (the plate detector's card has what was tried against it).

use crate::rectify::RgbView;

/// A pixel whose luma is at least this far from the median of its 3x3 neighbourhood is a speck.
const SPECK_JUMP: i32 = 80;
/// A picture is noisy when at least this share of its pixels are specks. On vn_riders the frames with
/// salt-and-pepper noise measure 0.005-0.04; 389 of the other 436 measure under 0.002 (sharp edges, JPEG ringing).
pub const NOISY_SHARE: f32 = 0.005;
/// The share is measured on every `SAMPLE_STEP`-th pixel of every `SAMPLE_STEP`-th row: 57,000 pixels of a
/// 1280x720 frame, 1/16 of the cost of the whole picture.
const SAMPLE_STEP: usize = 4;

/// The share of sampled pixels that are specks (0 for pictures under 3x3).
pub fn speck_share(picture: RgbView<'_>) -> f32 {
    let (w, h) = (picture.width as usize, picture.height as usize);
    if w < 3 || h < 3 {
        return 0.0;
    }
    let luma = |x: usize, y: usize| {
        let p = &picture.data[(y * w + x) * 3..][..3];
        (77 * p[0] as i32 + 150 * p[1] as i32 + 29 * p[2] as i32) >> 8
    };
    let (mut specks, mut sampled) = (0usize, 0usize);
    for y in (1..h - 1).step_by(SAMPLE_STEP) {
        for x in (1..w - 1).step_by(SAMPLE_STEP) {
            let mut around = [0u8; 9];
            for (i, v) in around.iter_mut().enumerate() {
                *v = luma(x + i % 3 - 1, y + i / 3 - 1) as u8;
            }
            if (luma(x, y) - median9(around) as i32).abs() >= SPECK_JUMP {
                specks += 1;
            }
            sampled += 1;
        }
    }
    specks as f32 / sampled.max(1) as f32
}

/// Paeth's 19 exchanges that leave the median of nine values in the middle.
#[rustfmt::skip]
const PAETH_NETWORK: [(usize, usize); 19] = [
    (1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 3), (5, 8), (4, 7),
    (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2),
];

/// The median of nine values.
fn median9(mut p: [u8; 9]) -> u8 {
    let mut s = |a: usize, b: usize| {
        if p[a] > p[b] {
            p.swap(a, b);
        }
    };
    for (a, b) in PAETH_NETWORK {
        s(a, b);
    }
    p[4]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(w: u32, h: u32, f: impl Fn(u32, u32) -> u8) -> image::RgbImage {
        image::RgbImage::from_fn(w, h, |x, y| {
            let v = f(x, y);
            image::Rgb([v, v, v])
        })
    }

    #[test]
    fn the_median_of_nine_is_the_middle_value_in_any_order() {
        let mut values = [9u8, 3, 7, 1, 5, 8, 2, 6, 4];
        for turn in 0..9 {
            values.rotate_left(1);
            assert_eq!(median9(values), 5, "turn {turn}");
        }
        assert_eq!(median9([0, 0, 0, 0, 255, 255, 255, 255, 255]), 255);
        assert_eq!(median9([7; 9]), 7);
    }

    #[test]
    fn the_median_of_nine_agrees_with_sorting_on_many_arrays() {
        let mut seed = 0x2545_f491_u32;
        for _ in 0..2000 {
            let mut values = [0u8; 9];
            for v in values.iter_mut() {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *v = (seed >> 24) as u8 % 16; // few distinct values: ties too
            }
            let mut sorted = values;
            sorted.sort_unstable();
            assert_eq!(median9(values), sorted[4], "{values:?}");
        }
    }

    #[test]
    fn specks_on_a_clean_picture_make_it_noisy_and_a_sharp_edge_does_not() {
        let clean = picture(64, 48, |x, _| if x < 32 { 40 } else { 200 });
        assert_eq!(speck_share(RgbView::of_image(&clean)), 0.0);

        // One white or black speck in every 7x7 block, wherever the sampling grid falls.
        let noisy = picture(64, 48, |x, y| match (x % 7, y % 7) {
            (3, 3) => 255,
            (5, 1) => 0,
            _ => 120,
        });
        let share = speck_share(RgbView::of_image(&noisy));
        assert!(share >= NOISY_SHARE, "{share}");
    }

    #[test]
    fn a_picture_smaller_than_the_median_window_is_never_noisy() {
        let tiny = picture(2, 2, |x, _| if x == 0 { 0 } else { 255 });
        assert_eq!(speck_share(RgbView::of_image(&tiny)), 0.0);
    }
}
