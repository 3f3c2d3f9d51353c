//! Greedy non-maximum suppression across classes, as YOLOX's reference `multiclass_nms` does by default.
//!
//! Class-agnostic on purpose: one vehicle seen as both "car" and "truck" must stay one vehicle. Callers drop
//! classes they do not care about (people, for instance) *before* NMS, so a rider's box never suppresses the
//! motorbike under it.

use te_types::Detection;

/// Keeps the best-scoring detections, dropping any that overlap a better one by more than `iou_threshold`.
/// Output is sorted by score, best first.
pub fn non_max_suppression(mut detections: Vec<Detection>, iou_threshold: f32) -> Vec<Detection> {
    detections.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::with_capacity(detections.len());
    for candidate in detections {
        if !kept.iter().any(|k| k.bbox.iou(&candidate.bbox) > iou_threshold) {
            kept.push(candidate);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use te_types::{BBox, VehicleClass};

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
