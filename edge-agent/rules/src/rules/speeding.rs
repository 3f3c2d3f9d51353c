//! Speeding: average speed between a section's entry and exit lines (crossing times interpolated between
//! frames) over the surveyed or calibrated distance. Above `limit + tolerance` is an offence; a section
//! without a certified calibration marks it "uncertified measurement" for the reviewer.

use super::interpolate;
use crate::{seconds, FrameContext, Sample, VehicleState};
use te_types::{TrackId, Violation, ViolationKind};

pub(crate) fn check(
    ctx: &FrameContext<'_>,
    track: TrackId,
    state: &mut VehicleState,
    prev: Sample,
    cur: Sample,
    out: &mut Vec<Violation>,
) {
    for (i, section) in ctx.scene.speed_sections.iter().enumerate() {
        if state.fired.contains(&(ViolationKind::Speeding, i)) {
            continue;
        }
        if let Some(t) = section.entry.crossed(prev.p, cur.p) {
            state.section_entry[i] = Some((interpolate(prev, cur, t), prev));
        }
        let Some((entered, before)) = state.section_entry[i] else { continue };
        let Some(t) = section.exit.crossed(prev.p, cur.p) else { continue };
        state.section_entry[i] = None;
        let took = seconds(entered, interpolate(prev, cur, t));
        if took <= 0.0 {
            continue;
        }
        let kmh = section.distance_m / took * 3.6;
        if kmh <= section.limit_kmh + section.tolerance_kmh {
            continue;
        }
        if let Some(mut v) = ctx.report(state, ViolationKind::Speeding, i, (track, &section.name), before, cur) {
            v.speed_kmh = Some(kmh);
            v.limit_kmh = Some(section.limit_kmh);
            v.certified = section.certified;
            v.summary = format!(
                "Tốc độ trung bình {kmh:.1} km/h trên đoạn {:?} (giới hạn {:.0} km/h; {:.1} m trong {took:.2} giây){}",
                section.name,
                section.limit_kmh,
                section.distance_m,
                if section.certified { "" } else { "; phép đo chưa được kiểm định" }
            );
            out.push(v);
        }
    }
}
