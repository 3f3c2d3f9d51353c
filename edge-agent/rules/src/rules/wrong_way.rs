//! Wrong way: in a lane with a direction, the vehicle's movement over `wrong_way_window_s` is at least
//! `wrong_way_min_travel_px` long and points more than 120° away from the lane's direction.

use crate::geometry::{dot, length, sub};
use crate::{seconds, FrameContext, Sample, VehicleState};
use te_types::{TrackId, Violation, ViolationKind};

/// cos(120°): movement within 60° of straight against the lane.
const AGAINST: f32 = -0.5;

pub(crate) fn check(
    ctx: &FrameContext<'_>,
    track: TrackId,
    state: &mut VehicleState,
    cur: Sample,
    out: &mut Vec<Violation>,
) {
    let t = &ctx.scene.thresholds;
    for (i, lane) in ctx.scene.lanes.iter().enumerate() {
        let Some(direction) = lane.direction else { continue };
        if state.fired.contains(&(ViolationKind::WrongWay, i)) || !lane.polygon.contains(cur.p) {
            continue;
        }
        let Some(old) = state.recent.iter().rev().find(|s| seconds(s.at, cur.at) >= t.wrong_way_window_s).copied()
        else {
            continue;
        };
        let moved = sub(cur.p, old.p);
        let travel = length(moved);
        if travel < t.wrong_way_min_travel_px || dot(moved, direction) / travel > AGAINST {
            continue;
        }
        if let Some(mut v) = ctx.report(state, ViolationKind::WrongWay, i, (track, &lane.name), old, cur) {
            v.summary =
                format!("Đi ngược chiều {:?} {travel:.0} px trong {:.1} giây", lane.name, seconds(old.at, cur.at));
            out.push(v);
        }
    }
}
