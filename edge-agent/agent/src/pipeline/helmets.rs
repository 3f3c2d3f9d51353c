//! Helmet checks on tracked motorcyclists, for the `no_helmet` rule: which vehicles of this frame are due a
//! check, and the helmet classifier's p_bare for each.
//!
//! A check costs one small model run (~1 ms on one core) per motorcyclist; spreading them over
//! `frames_between_checks` frames keeps a busy junction's cost bounded while each track still gets several
//! checks for the rule's vote. Only cameras whose scene has the rule switched on pay for it.
//!
//! A head is judged only where YOLOX also sees a person riding in the motorcyclist's box: the motorcyclist
//! model alone takes a car seen from above for a motorcyclist (the demo's car park), and the helmet model, never
//! shown a car roof, then calls its "head" bare. Two models must agree that there is a rider before a head is
//! judged; a rider YOLOX misses is not checked (a missed ticket, never a false one). The head judged is at the
//! top of the highest rider, not of the motorcyclist box, which often reaches above the rider into poles and
//! trees (`te_infer::head_box`; the helmet model card has the figures).

use std::collections::HashMap;
use te_infer::HelmetClassifier;
use te_types::{BBox, Frame, TrackId, VehicleClass};

/// When and how riders' heads are checked.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HelmetChecking {
    /// Check helmets at all (needs the helmet model; cameras' scenes switch the rule with `no_helmet`).
    pub enabled: bool,
    /// Motorcyclists narrower than this (pixels) are not checked: their heads are too small to judge.
    pub min_vehicle_width: f32,
    /// A track is checked once every this many frames.
    pub frames_between_checks: u64,
    /// ONNX Runtime threads for the helmet model.
    pub threads: usize,
}

impl Default for HelmetChecking {
    fn default() -> Self {
        Self { enabled: true, min_vehicle_width: 48.0, frames_between_checks: 3, threads: 1 }
    }
}

/// The box whose head region is judged for the motorcyclist `bike`: none when no one of `people` rides in it
/// (the rider gate), else `bike` with its top at the highest rider's head (`te_infer::head_box`).
pub(crate) fn judged_box(bike: &BBox, people: &[BBox]) -> Option<BBox> {
    let riders: Vec<BBox> = people.iter().filter(|p| te_infer::rides(p, bike)).copied().collect();
    (!riders.is_empty()).then(|| te_infer::head_box(bike, &riders))
}

/// One helmet check: p_bare, and the box whose head region was judged (the evidence enlarges the same region).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadCheck {
    pub p_bare: f32,
    pub judged: BBox,
}

/// p_bare of each motorcyclist of `seen` due a check in this frame, among those a person (`people`, YOLOX's)
/// rides. A failed run is logged and gives no score (the rule then has one check fewer, never a wrong one).
pub fn check(
    classifier: &mut HelmetClassifier,
    settings: &HelmetChecking,
    frame: &Frame,
    seen: &[(TrackId, BBox, VehicleClass)],
    people: &[BBox],
) -> HashMap<TrackId, HeadCheck> {
    let mut scores = HashMap::new();
    let every = settings.frames_between_checks.max(1);
    for &(track, bbox, class) in seen {
        let due = frame.number.wrapping_add(track.0).is_multiple_of(every);
        if !due || class != VehicleClass::Motorbike || bbox.width() < settings.min_vehicle_width {
            continue;
        }
        let Some(judged) = judged_box(&bbox, people) else { continue };
        match classifier.p_bare(frame, &judged) {
            Ok(Some(p)) => {
                tracing::debug!(camera = %frame.camera, frame = frame.number, track = track.0, p_bare = p, "helmet check");
                scores.insert(track, HeadCheck { p_bare: p, judged });
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(camera = %frame.camera, frame = frame.number, error = %e, "helmet check failed"),
        }
    }
    scores
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_sitting_in_the_box_is_a_rider_and_one_beside_it_or_below_is_not() {
        let bike = BBox { x1: 100.0, y1: 100.0, x2: 200.0, y2: 300.0 };
        let rider = BBox { x1: 110.0, y1: 95.0, x2: 190.0, y2: 230.0 };
        let beside = BBox { x1: 210.0, y1: 100.0, x2: 260.0, y2: 250.0 };
        let walking_past_below = BBox { x1: 120.0, y1: 230.0, x2: 180.0, y2: 400.0 };
        assert!(judged_box(&bike, &[rider]).is_some());
        assert!(judged_box(&bike, &[beside, walking_past_below]).is_none());
        assert!(judged_box(&bike, &[]).is_none());
    }
}
