//! Wrong lane: a vehicle of a class the lane is not open to (not in `allowed_classes`, or banned at this
//! local time of day) stays in the lane for at least `lane_min_s`; crossing a lane to change lanes is not.

use crate::{seconds, FrameContext, Sample, VehicleState};
use te_types::{TrackId, Violation, ViolationKind};

pub(crate) fn check(
    ctx: &FrameContext<'_>,
    track: TrackId,
    state: &mut VehicleState,
    cur: Sample,
    out: &mut Vec<Violation>,
) {
    let scene = ctx.scene;
    for (i, lane) in scene.lanes.iter().enumerate() {
        if !lane.polygon.contains(cur.p) {
            state.lane_since[i] = None;
            continue;
        }
        let since = *state.lane_since[i].get_or_insert(cur);
        if state.fired.contains(&(ViolationKind::WrongLane, i)) {
            continue;
        }
        let class = state.class;
        let not_allowed = !lane.allowed_classes.is_empty() && !lane.allowed_classes.contains(&class);
        let banned_now = lane
            .bans
            .iter()
            .any(|(classes, window)| classes.contains(&class) && window.contains(cur.at, scene.utc_offset_hours));
        let in_lane_s = seconds(since.at, cur.at);
        if !(not_allowed || banned_now) || in_lane_s < scene.thresholds.lane_min_s {
            continue;
        }
        if let Some(mut v) = ctx.report(state, ViolationKind::WrongLane, i, (track, &lane.name), since, cur) {
            let why =
                if not_allowed { "không được đi vào làn" } else { "bị cấm vào giờ này trong làn" };
            v.summary = format!("{} {why} {:?}, trong làn {in_lane_s:.1} giây", class.vietnamese(), lane.name);
            out.push(v);
        }
    }
}
