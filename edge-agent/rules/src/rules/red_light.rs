//! Red light and stop line: a vehicle that crosses a stop line while the signal is red either runs the light
//! (goes on deeper than `stop_line_depth_px`) or stops past the line (stands still there for
//! `stop_line_dwell_s`): the same crossing decides which, so one crossing is one offence at most.
//!
//! The line is crossed by the vehicle's front in its direction of travel (`Sample::front`), not by its box's
//! bottom centre, which for a vehicle driving away from the camera is its rear.
//!
//! Yellow counts only when the scene says so; an unknown phase never counts; a crossing within
//! `red_grace_s` of red beginning is not judged.

use super::interpolate;
use crate::{seconds, FrameContext, PendingCrossing, Sample, VehicleState};
use te_types::{SignalPhase, TrackId, Violation, ViolationKind};

pub(crate) fn check(
    ctx: &FrameContext<'_>,
    track: TrackId,
    state: &mut VehicleState,
    prev: Sample,
    cur: Sample,
    out: &mut Vec<Violation>,
) {
    let signal = &ctx.scene.signal;
    let t = &ctx.scene.thresholds;
    for (i, (name, line)) in ctx.scene.stop_lines.iter().enumerate() {
        if state.fired.contains(&(ViolationKind::RedLight, i)) || state.fired.contains(&(ViolationKind::StopLine, i)) {
            continue;
        }
        if state.pending[i].is_none() {
            let Some(fraction) = line.crossed(prev.front, cur.front) else { continue };
            let crossing_at = interpolate(prev, cur, fraction);
            let counts =
                ctx.phase == SignalPhase::Red || (ctx.phase == SignalPhase::Yellow && signal.yellow_counts_as_red);
            let red_for_s = ctx.phase_since.map(|since| seconds(since, crossing_at));
            // The light changed after the crossing (between the two frames): not a crossing on red.
            if !counts || red_for_s.is_some_and(|r| r < signal.red_grace_s.max(0.0)) {
                continue;
            }
            state.pending[i] = Some(PendingCrossing { before: prev, at: cur, phase: ctx.phase, red_for_s });
        }
        let Some(pending) = state.pending[i] else { continue };
        let beyond = line.beyond(cur.front);
        let stood_s = seconds(state.still_since.at, cur.at);
        let (kind, at, summary) = if beyond > t.stop_line_depth_px {
            let when = match pending.red_for_s {
                Some(r) => format!("{r:.1} giây sau khi đèn chuyển {}", pending.phase.vietnamese()),
                None => format!("khi đèn đang {} (không thấy lúc đèn chuyển)", pending.phase.vietnamese()),
            };
            (ViolationKind::RedLight, pending.at, format!("Vượt vạch {name:?} {when}"))
        } else if beyond < 0.0 {
            state.pending[i] = None; // backed out behind the line
            continue;
        } else if stood_s >= t.stop_line_dwell_s && ctx.phase == pending.phase {
            let summary = format!(
                "Dừng quá vạch {name:?} {beyond:.0} px trong {stood_s:.1} giây khi đèn {}",
                pending.phase.vietnamese()
            );
            (ViolationKind::StopLine, cur, summary)
        } else {
            continue;
        };
        state.pending[i] = None;
        if let Some(mut v) = ctx.report(state, kind, i, (track, name), pending.before, at) {
            // One crossing, one offence: the other outcome of the same crossing is settled too.
            state.fired.insert((ViolationKind::RedLight, i));
            state.fired.insert((ViolationKind::StopLine, i));
            v.signal = Some(pending.phase);
            v.red_for_s = pending.red_for_s;
            v.summary = summary;
            out.push(v);
        }
    }
}
