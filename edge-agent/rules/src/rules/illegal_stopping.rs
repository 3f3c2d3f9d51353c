//! Illegal stopping: a vehicle stands still (within `still_radius_px`) inside a no-stopping zone for longer
//! than the zone's `max_dwell_s`, for the classes and hours the zone applies to.

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
    let still = state.still_since;
    for (i, zone) in scene.no_stopping.iter().enumerate() {
        if state.fired.contains(&(ViolationKind::IllegalStopping, i))
            || (!zone.classes.is_empty() && !zone.classes.contains(&state.class))
            || (!zone.windows.is_empty() && !zone.windows.iter().any(|w| w.contains(cur.at, scene.utc_offset_hours)))
            || !zone.polygon.contains(cur.p)
            || !zone.polygon.contains(still.p)
        {
            continue;
        }
        let dwell = seconds(still.at, cur.at);
        if dwell < zone.max_dwell_s {
            continue;
        }
        if let Some(mut v) = ctx.report(state, ViolationKind::IllegalStopping, i, (track, &zone.name), still, cur) {
            v.dwell_s = Some(dwell);
            v.summary = format!("Dừng {dwell:.0} giây trong {:?} (giới hạn {:.0} giây)", zone.name, zone.max_dwell_s);
            out.push(v);
        }
    }
}
