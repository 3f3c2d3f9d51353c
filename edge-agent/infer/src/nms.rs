//! Greedy non-maximum suppression across classes, as YOLOX's reference `multiclass_nms` does by default.
//!
//! Class-agnostic on purpose: one vehicle seen as both "car" and "truck" must stay one vehicle. Callers drop
//! classes they do not care about (people, for instance) *before* NMS, so a rider's box never suppresses the
//! motorbike under it.

use te_types::{BBox, Detection};

/// Keeps the best-scoring detections, dropping any that overlap a better one by more than `iou_threshold`.
/// Output is sorted by score, best first.
pub fn non_max_suppression(detections: Vec<Detection>, iou_threshold: f32) -> Vec<Detection> {
    suppress(detections, iou_threshold, |d| (d.score, d.bbox))
}

/// The same greedy suppression for anything with a score and a box (plates, for instance).
pub fn suppress<T>(mut items: Vec<T>, iou_threshold: f32, key: impl Fn(&T) -> (f32, BBox)) -> Vec<T> {
    items.sort_by(|a, b| key(b).0.total_cmp(&key(a).0));
    let mut kept: Vec<T> = Vec::with_capacity(items.len());
    for candidate in items {
        let (_, bbox) = key(&candidate);
        if !kept.iter().any(|k| key(k).1.iou(&bbox) > iou_threshold) {
            kept.push(candidate);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use te_types::VehicleClass;

    fn det(class: VehicleClass, score: f32, x: f32) -> Detection {
        Detection { class, score, bbox: BBox { x1: x, y1: 0.0, x2: x + 10.0, y2: 10.0 } }
    }

    #[test]
    fn overlapping_boxes_collapse_to_the_best_whatever_their_class() {
        let out = non_max_suppression(vec![det(VehicleClass::Truck, 0.5, 1.0), det(VehicleClass::Car, 0.9, 0.0)], 0.45);
        assert_eq!(out, vec![det(VehicleClass::Car, 0.9, 0.0)]);
    }

    #[test]
    fn boxes_that_overlap_little_both_stay_best_first() {
        let out = non_max_suppression(vec![det(VehicleClass::Car, 0.5, 0.0), det(VehicleClass::Car, 0.9, 8.0)], 0.45);
        assert_eq!(out, vec![det(VehicleClass::Car, 0.9, 8.0), det(VehicleClass::Car, 0.5, 0.0)]);
    }
}
