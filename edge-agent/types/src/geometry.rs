//! Axis-aligned boxes in pixel coordinates.

use serde::{Deserialize, Serialize};

/// A box by its corners: `x1 <= x2`, `y1 <= y2`, in pixels of the frame it was found in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub fn from_center(cx: f32, cy: f32, w: f32, h: f32) -> Self {
        Self { x1: cx - w / 2.0, y1: cy - h / 2.0, x2: cx + w / 2.0, y2: cy + h / 2.0 }
    }

    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    /// Where the vehicle meets the road (bottom centre): the point that zones and lines are judged by.
    pub fn ground_point(&self) -> (f32, f32) {
        ((self.x1 + self.x2) / 2.0, self.y2)
    }

    /// The same box moved by `(dx, dy)`.
    pub fn shifted(&self, dx: f32, dy: f32) -> Self {
        Self { x1: self.x1 + dx, y1: self.y1 + dy, x2: self.x2 + dx, y2: self.y2 + dy }
    }

    pub fn center(&self) -> (f32, f32) {
        ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)
    }

    /// Area the two boxes share; 0 for disjoint ones.
    pub fn intersection_area(&self, other: &BBox) -> f32 {
        let ix = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let iy = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        ix * iy
    }

    /// Intersection over union; 0 for disjoint or degenerate boxes.
    pub fn iou(&self, other: &BBox) -> f32 {
        let inter = self.intersection_area(other);
        let union = self.area() + other.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }

    /// The same box clipped to a `width` x `height` frame.
    pub fn clamp_to(&self, width: u32, height: u32) -> Self {
        let (w, h) = (width as f32, height as f32);
        Self {
            x1: self.x1.clamp(0.0, w),
            y1: self.y1.clamp(0.0, h),
            x2: self.x2.clamp(0.0, w),
            y2: self.y2.clamp(0.0, h),
        }
    }
}

/// The 3x3 homography (row-major, m[8] = 1) that maps each `from` point onto the matching `to` point.
pub fn homography(from: &[[f32; 2]; 4], to: &[[f32; 2]; 4]) -> Option<[f32; 9]> {
    // Eight equations in eight unknowns, solved by Gaussian elimination with partial pivoting in f64.
    let mut a = [[0f64; 9]; 8];
    for i in 0..4 {
        let (x, y) = (from[i][0] as f64, from[i][1] as f64);
        let (u, v) = (to[i][0] as f64, to[i][1] as f64);
        a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
        a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
    }
    for col in 0..8 {
        let pivot = (col..8).max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))?;
        if a[pivot][col].abs() < 1e-9 {
            return None;
        }
        a.swap(col, pivot);
        let pivot_row = a[col];
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / pivot_row[col];
                for (v, p) in row.iter_mut().zip(pivot_row.iter()).skip(col) {
                    *v -= f * p;
                }
            }
        }
    }
    let mut m = [1f32; 9];
    for (i, row) in a.iter().enumerate() {
        m[i] = (row[8] / row[i]) as f32;
    }
    Some(m)
}

/// `point` mapped through the homography `m`; `None` where it maps to infinity (behind the horizon).
pub fn apply_homography(m: &[f32; 9], point: [f32; 2]) -> Option<[f32; 2]> {
    let (x, y) = (point[0], point[1]);
    let z = m[6] * x + m[7] * y + m[8];
    if z.abs() < 1e-9 {
        return None;
    }
    Some([(m[0] * x + m[1] * y + m[2]) / z, (m[3] * x + m[4] * y + m[5]) / z])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_identical_boxes_is_one_and_of_disjoint_boxes_is_zero() {
        let a = BBox { x1: 0.0, y1: 0.0, x2: 10.0, y2: 10.0 };
        let b = BBox { x1: 20.0, y1: 20.0, x2: 30.0, y2: 30.0 };
        assert!((a.iou(&a) - 1.0).abs() < 1e-6);
        assert_eq!(a.iou(&b), 0.0);
    }

    #[test]
    fn iou_of_half_overlapping_boxes_is_one_third() {
        let a = BBox { x1: 0.0, y1: 0.0, x2: 10.0, y2: 10.0 };
        let b = BBox { x1: 5.0, y1: 0.0, x2: 15.0, y2: 10.0 };
        assert!((a.iou(&b) - 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn clamping_keeps_a_box_inside_the_frame() {
        let a = BBox { x1: -5.0, y1: -1.0, x2: 700.0, y2: 50.0 };
        assert_eq!(a.clamp_to(640, 480), BBox { x1: 0.0, y1: 0.0, x2: 640.0, y2: 50.0 });
    }
}
