//! No helmet: a motorcyclist whose head region the helmet classifier scores bare-headed (p_bare >=
//! `no_helmet_at`) in at least `no_helmet_min_frames` checks of its track, and in more checks than it was
//! scored surely helmeted (p_bare < 0.5). Scores in between are "unsure" and count for nothing. One record per
//! motorbike; its "at" moment is the most bare-headed sighting, "before" the first one.
//!
//! A vote, like the plate vote: one frame's head can be hidden by a passenger, blurred or turned away, and a
//! false ticket is the worst outcome this rule can have.

use crate::{FrameContext, Sample, VehicleState};
use te_types::{TrackId, VehicleClass, Violation, ViolationKind};

/// Below this p_bare a check says "helmet".
const SURELY_HELMETED_BELOW: f32 = 0.5;

/// The helmet checks of one vehicle.
#[derive(Debug, Clone, Default)]
pub(crate) struct Votes {
    bare: u32,
    helmeted: u32,
    first_bare: Option<Sample>,
    /// The most bare-headed sighting and its p_bare.
    best_bare: Option<(f32, Sample)>,
}

pub(crate) fn check(
    ctx: &FrameContext<'_>,
    track: TrackId,
    state: &mut VehicleState,
    cur: Sample,
    p_bare: Option<f32>,
    out: &mut Vec<Violation>,
) {
    let Some(p) = p_bare.filter(|p| p.is_finite() && (0.0..=1.0).contains(p)) else { return };
    if state.class != VehicleClass::Motorbike {
        return;
    }
    let t = &ctx.scene.thresholds;
    let votes = &mut state.helmet;
    if p >= t.no_helmet_at {
        votes.bare += 1;
        votes.first_bare.get_or_insert(cur);
        if votes.best_bare.is_none_or(|(best, _)| p > best) {
            votes.best_bare = Some((p, cur));
        }
    } else if p < SURELY_HELMETED_BELOW {
        votes.helmeted += 1;
    }
    if votes.bare < t.no_helmet_min_frames || votes.bare <= votes.helmeted {
        return;
    }
    let (Some(first), Some((best, at))) = (votes.first_bare, votes.best_bare) else { return };
    let (bare, helmeted) = (votes.bare, votes.helmeted);
    if let Some(mut v) = ctx.report(state, ViolationKind::NoHelmet, 0, (track, "no_helmet"), first, at) {
        v.summary = format!(
            "Không đội mũ bảo hiểm ở {bare} lần kiểm tra (p_bare cao nhất {best:.2}), có mũ ở {helmeted} lần; \
             ngưỡng {:.2}",
            t.no_helmet_at
        );
        out.push(v);
    }
}
