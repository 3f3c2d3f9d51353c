//! Scenario tests: scripted tracks through a scripted scene, one rule at a time: each fires when it must,
//! stays silent at its boundary, and reports once per vehicle.

use super::*;

const SCENE: &str = r#"
camera = "cam-test"
frame_size = [1000, 1000]

[signal]
source = "external"
stale_after_s = 5.0

[[stop_lines]]
name = "stop line"
line = [[0, 500], [1000, 500]]
direction = [0, -1]

[[lanes]]
name = "northbound"
polygon = [[0, 0], [500, 0], [500, 1000], [0, 1000]]
direction = [0, -1]
bans = [{ classes = ["truck"], from = "06:00", to = "21:00" }]

[[lanes]]
name = "bus lane"
polygon = [[500, 0], [1000, 0], [1000, 1000], [500, 1000]]
allowed_classes = ["bus"]

[[no_stopping]]
name = "junction box"
polygon = [[0, 0], [500, 0], [500, 200], [0, 200]]
max_dwell_s = 30

[[speed_sections]]
name = "section A"
entry = [[0, 800], [1000, 800]]
exit = [[0, 300], [1000, 300]]
direction = [0, -1]
distance_m = 50
limit_kmh = 50
"#;

/// 10 frames per second from 03:00 UTC (10:00 in Vietnam).
fn at(frame: u64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_767_236_400_000 + frame as i64 * 100).expect("valid")
}

fn config() -> SceneConfig {
    toml::from_str(SCENE).expect("scene parses")
}

fn judge_with(edit: impl FnOnce(&mut SceneConfig)) -> Judge {
    let mut c = config();
    edit(&mut c);
    Judge::new(c.validate().expect("valid scene"))
}

/// A vehicle whose ground point is at `path(frame)`, 40x40 px.
fn observe(class: VehicleClass, (x, y): (f32, f32)) -> Observation {
    Observation {
        track: TrackId(1),
        class,
        bbox: BBox { x1: x - 20.0, y1: y - 40.0, x2: x + 20.0, y2: y },
        p_bare: None,
    }
}

/// A motorbike standing at (250, 400) whose helmet check says `p_bare(frame)`.
fn helmet_checks(
    judge: &mut Judge,
    frames: std::ops::Range<u64>,
    p_bare: impl Fn(u64) -> Option<f32>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    for f in frames {
        let seen = Observation { p_bare: p_bare(f), ..observe(VehicleClass::Motorbike, (250.0, 400.0)) };
        out.extend(judge.judge(f, at(f), (1000, 1000), &[seen]));
    }
    out
}

#[test]
fn a_rider_seen_bare_headed_in_three_checks_is_one_no_helmet_violation_at_the_surest_sighting() {
    let p = |f: u64| Some([0.95, 0.2, 0.97, 0.99, 0.96, 0.98][f as usize % 6]);
    let v = helmet_checks(&mut judge_with(|_| {}), 0..30, p);
    assert_eq!(kinds(&v), [ViolationKind::NoHelmet]);
    let moments: Vec<u64> = v[0].moments.iter().map(|m| m.frame_number).collect();
    // Frame 0 opens the track (not judged); bare at 2 and 3 (0.99), helmeted at 1: the third bare check is 4.
    assert_eq!(moments, [2, 3]);
    assert!(v[0].summary.contains("p_bare cao nhất 0.99"), "{}", v[0].summary);
}

#[test]
fn unsure_checks_or_a_helmeted_majority_never_make_a_no_helmet_violation() {
    let unsure = helmet_checks(&mut judge_with(|_| {}), 0..50, |_| Some(0.8));
    assert!(unsure.is_empty(), "unsure all along: {unsure:?}");
    let mostly_helmeted = helmet_checks(&mut judge_with(|_| {}), 0..20, |f| Some(if f % 4 == 0 { 0.95 } else { 0.1 }));
    assert!(mostly_helmeted.is_empty(), "{mostly_helmeted:?}");
    let unchecked = helmet_checks(&mut judge_with(|_| {}), 0..50, |_| None);
    assert!(unchecked.is_empty());
    let hostile = helmet_checks(&mut judge_with(|_| {}), 0..50, |f| Some(if f % 2 == 0 { f32::NAN } else { 7.0 }));
    assert!(hostile.is_empty(), "not a probability: ignored");
    let switched_off = helmet_checks(&mut judge_with(|c| c.enable.no_helmet = false), 0..30, |_| Some(0.99));
    assert!(switched_off.is_empty());
}

#[test]
fn a_car_is_never_judged_for_helmets() {
    let mut judge = judge_with(|_| {});
    let v: Vec<Violation> = (0..30)
        .flat_map(|f| {
            let seen = Observation { p_bare: Some(0.99), ..observe(VehicleClass::Car, (250.0, 400.0)) };
            judge.judge(f, at(f), (1000, 1000), &[seen])
        })
        .collect();
    assert!(v.is_empty());
}

/// Drives one vehicle through `frames`, with the controller reporting `signal(frame)` (None: silent).
fn drive(
    judge: &mut Judge,
    class: VehicleClass,
    frames: std::ops::Range<u64>,
    path: impl Fn(u64) -> (f32, f32),
    signal: impl Fn(u64) -> Option<SignalPhase>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    for f in frames {
        if let Some(phase) = signal(f) {
            judge.controller_phase(at(f), phase);
        }
        out.extend(judge.judge(f, at(f), (1000, 1000), &[observe(class, path(f))]));
    }
    out
}

fn kinds(v: &[Violation]) -> Vec<ViolationKind> {
    v.iter().map(|v| v.kind).collect()
}

fn red(_: u64) -> Option<SignalPhase> {
    Some(SignalPhase::Red)
}

/// Up the left lane at 10 px per frame from y=700 (crosses the stop line at frame 20).
fn northbound(f: u64) -> (f32, f32) {
    (250.0, 700.0 - f as f32 * 10.0)
}

#[test]
fn crossing_on_red_and_driving_on_is_one_red_light_violation_with_before_and_at_moments() {
    let mut judge = judge_with(|_| {});
    // Green in frame 0, red from frame 1: the change is seen, so how long it had been red is known.
    let green_then_red = |f: u64| Some(if f == 0 { SignalPhase::Green } else { SignalPhase::Red });
    let v = drive(&mut judge, VehicleClass::Car, 0..40, northbound, green_then_red);
    assert_eq!(kinds(&v), [ViolationKind::RedLight]);
    let v = &v[0];
    assert_eq!(v.rule, "stop line");
    assert_eq!(v.signal, Some(SignalPhase::Red));
    // Its front (8 px above the 40 px box's bottom while it drives away) reaches the line at frame 19.2.
    assert!(v.red_for_s.is_some_and(|r| (r - 1.82).abs() < 0.01), "red since frame 1, crossing at 19.2: {v:?}");
    assert_eq!(
        v.moments.iter().map(|m| (m.role, m.frame_number)).collect::<Vec<_>>(),
        [(MomentRole::Before, 19), (MomentRole::At, 20)]
    );
}

#[test]
fn crossing_on_green_or_with_an_unknown_signal_is_no_offence() {
    let green = drive(&mut judge_with(|_| {}), VehicleClass::Car, 0..40, northbound, |_| Some(SignalPhase::Green));
    assert!(green.is_empty());
    let silent = drive(&mut judge_with(|_| {}), VehicleClass::Car, 0..40, northbound, |_| None);
    assert!(silent.is_empty(), "no controller input: unknown phase");
    // The controller went quiet 6 s before the crossing (stale after 5 s): unknown, not red.
    let stale = drive(
        &mut judge_with(|_| {}),
        VehicleClass::Car,
        0..80,
        |f| (250.0, 1100.0 - f as f32 * 10.0),
        |f| (f == 0).then_some(SignalPhase::Red),
    );
    assert!(stale.is_empty(), "{stale:?}");
}

#[test]
fn red_that_began_after_the_crossing_or_within_the_grace_time_is_no_offence() {
    // Red from frame 21; the vehicle crossed at frame 20.
    let late = drive(&mut judge_with(|_| {}), VehicleClass::Car, 0..40, northbound, |f| {
        Some(if f < 21 { SignalPhase::Green } else { SignalPhase::Red })
    });
    assert!(late.is_empty(), "{late:?}");
    let grace = |s: &mut SceneConfig| s.signal.red_grace_s = 1.5;
    // Red from frame 6: crossing 1.4 s into red, inside the grace.
    let inside = drive(&mut judge_with(grace), VehicleClass::Car, 0..40, northbound, |f| {
        Some(if f < 6 { SignalPhase::Green } else { SignalPhase::Red })
    });
    assert!(inside.is_empty(), "{inside:?}");
    // Red from frame 4: 1.6 s into red.
    let after = drive(&mut judge_with(grace), VehicleClass::Car, 0..40, northbound, |f| {
        Some(if f < 4 { SignalPhase::Green } else { SignalPhase::Red })
    });
    assert_eq!(kinds(&after), [ViolationKind::RedLight]);
}

#[test]
fn yellow_counts_only_when_the_scene_says_so() {
    let yellow = |_| Some(SignalPhase::Yellow);
    assert!(drive(&mut judge_with(|_| {}), VehicleClass::Car, 0..40, northbound, yellow).is_empty());
    let strict =
        drive(&mut judge_with(|s| s.signal.yellow_counts_as_red = true), VehicleClass::Car, 0..40, northbound, yellow);
    assert_eq!(kinds(&strict), [ViolationKind::RedLight]);
}

#[test]
fn stopping_just_past_the_line_on_red_is_a_stop_line_violation_and_not_a_red_light() {
    // Crosses at frame 20, stops 20 px past the line (less than the 60 px depth) and waits there.
    let path = |f: u64| (250.0, (700.0 - f as f32 * 10.0).max(480.0));
    let v = drive(&mut judge_with(|_| {}), VehicleClass::Car, 0..120, path, red);
    assert_eq!(kinds(&v), [ViolationKind::StopLine]);
    // Then the light turns green and it drives on: still only the one offence.
    let mut judge = judge_with(|_| {});
    let mut v = drive(&mut judge, VehicleClass::Car, 0..60, path, red);
    v.extend(drive(
        &mut judge,
        VehicleClass::Car,
        60..120,
        |f| (250.0, 480.0 - (f - 60) as f32 * 10.0),
        |_| Some(SignalPhase::Green),
    ));
    assert_eq!(kinds(&v), [ViolationKind::StopLine]);
}

#[test]
fn a_vehicle_lost_after_crossing_on_red_before_its_outcome_is_seen_is_not_reported() {
    let mut judge = judge_with(|_| {});
    let v = drive(&mut judge, VehicleClass::Car, 0..22, northbound, red);
    judge.vehicle_gone(TrackId(1));
    assert!(v.is_empty());
}

#[test]
fn driving_against_the_lane_is_wrong_way_once_and_jitter_is_not() {
    // Down the northbound lane, 10 px per frame from near the top (stays out of the no-stopping zone's dwell).
    let v =
        drive(&mut judge_with(|_| {}), VehicleClass::Motorbike, 0..60, |f| (250.0, 250.0 + f as f32 * 10.0), |_| None);
    assert_eq!(kinds(&v), [ViolationKind::WrongWay]);
    assert_eq!(v[0].moments[0].frame_number + 10, v[0].moments[1].frame_number, "the 1 s window");
    // Standing with a box that jitters ±15 px: no movement that counts.
    let jitter = drive(
        &mut judge_with(|_| {}),
        VehicleClass::Car,
        0..60,
        |f| (250.0, 600.0 + if f % 2 == 0 { 15.0 } else { -15.0 }),
        |_| None,
    );
    assert!(jitter.is_empty(), "{jitter:?}");
}

#[test]
fn a_car_staying_in_the_bus_lane_is_wrong_lane_but_crossing_it_or_being_a_bus_is_not() {
    let stay = drive(&mut judge_with(|_| {}), VehicleClass::Car, 0..30, |f| (750.0, 700.0 - f as f32), |_| None);
    assert_eq!(kinds(&stay), [ViolationKind::WrongLane]);
    assert!(stay[0].summary.contains("bus lane"));
    // Through the lane sideways in 0.9 s (less than lane_min_s).
    let cross =
        drive(&mut judge_with(|_| {}), VehicleClass::Car, 0..15, |f| (450.0 + f as f32 * 60.0, 700.0), |_| None);
    assert!(kinds(&cross).iter().all(|k| *k != ViolationKind::WrongLane), "{cross:?}");
    let bus = drive(&mut judge_with(|_| {}), VehicleClass::Bus, 0..30, |f| (750.0, 700.0 - f as f32), |_| None);
    assert!(bus.is_empty());
}

#[test]
fn a_truck_ban_applies_in_its_hours_of_local_time_only() {
    let day = drive(&mut judge_with(|_| {}), VehicleClass::Truck, 0..30, |f| (250.0, 700.0 - f as f32), |_| None);
    assert_eq!(kinds(&day), [ViolationKind::WrongLane], "10:00 local");
    let night = drive(
        &mut judge_with(|s| s.utc_offset_hours = -5),
        VehicleClass::Truck,
        0..30,
        |f| (250.0, 700.0 - f as f32),
        |_| None,
    );
    assert!(night.is_empty(), "22:00 local: {night:?}");
}

#[test]
fn standing_in_a_no_stopping_zone_past_its_limit_is_one_offence() {
    let v = drive(&mut judge_with(|_| {}), VehicleClass::Car, 0..400, |f| (250.0, 100.0 + (f % 3) as f32), |_| None);
    assert_eq!(kinds(&v), [ViolationKind::IllegalStopping]);
    assert!(v[0].dwell_s.is_some_and(|d| (30.0..30.2).contains(&d)));
    let short = drive(&mut judge_with(|_| {}), VehicleClass::Car, 0..299, |_| (250.0, 100.0), |_| None);
    assert!(short.is_empty(), "29.8 s");
    let outside = drive(&mut judge_with(|_| {}), VehicleClass::Car, 0..400, |_| (250.0, 400.0), |_| None);
    assert!(outside.is_empty());
}

#[test]
fn speed_over_the_section_is_judged_against_the_limit_and_marked_uncertified() {
    // 500 px = 50 m. 15 px per frame at 10 fps = 15 m/s = 54 km/h.
    let fast = drive(&mut judge_with(|_| {}), VehicleClass::Car, 0..70, |f| (250.0, 900.0 - f as f32 * 15.0), |_| None);
    assert_eq!(kinds(&fast), [ViolationKind::Speeding]);
    let v = &fast[0];
    assert!(v.speed_kmh.is_some_and(|s| (s - 54.0).abs() < 0.1), "{v:?}");
    assert!(!v.certified && v.summary.contains("chưa được kiểm định"));
    // 13 px per frame = 46.8 km/h.
    let slow = drive(&mut judge_with(|_| {}), VehicleClass::Car, 0..80, |f| (250.0, 900.0 - f as f32 * 13.0), |_| None);
    assert!(slow.iter().all(|v| v.kind != ViolationKind::Speeding));
    // 54 km/h with a 5 km/h tolerance: within it.
    let tolerated = drive(
        &mut judge_with(|s| s.speed_sections[0].tolerance_kmh = 5.0),
        VehicleClass::Car,
        0..70,
        |f| (250.0, 900.0 - f as f32 * 15.0),
        |_| None,
    );
    assert!(tolerated.iter().all(|v| v.kind != ViolationKind::Speeding));
}

#[test]
fn scene_coordinates_are_scaled_to_the_analysed_frame_size() {
    let mut judge = judge_with(|_| {});
    let mut v = Vec::new();
    for f in 0..40 {
        judge.controller_phase(at(f), SignalPhase::Red);
        let (x, y) = northbound(f);
        v.extend(judge.judge(f, at(f), (500, 500), &[observe(VehicleClass::Car, (x / 2.0, y / 2.0))]));
    }
    assert_eq!(kinds(&v), [ViolationKind::RedLight]);
}

#[test]
fn a_speed_section_can_be_measured_through_a_ground_calibration() {
    let mut c = config();
    c.speed_sections[0].distance_m = None;
    // 10 px per metre, straight down: the lines 500 px apart are 50 m apart.
    c.speed_sections[0].ground = Some(scene::GroundCalibration {
        image: [[0.0, 0.0], [1000.0, 0.0], [1000.0, 1000.0], [0.0, 1000.0]],
        road_m: [[0.0, 0.0], [100.0, 0.0], [100.0, 100.0], [0.0, 100.0]],
    });
    let scene = c.validate().expect("valid");
    assert!((scene.speed_sections[0].distance_m - 50.0).abs() < 0.01);
}

#[test]
fn scene_errors_name_the_camera_and_the_field() {
    type Edit = Box<dyn Fn(&mut SceneConfig)>;
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|s| s.lanes[1].polygon[0] = [1200.0, 0.0]), "lanes[1].polygon"),
        (Box::new(|s| s.stop_lines[0].direction = [1.0, 0.0]), "stop_lines[0].line.direction"),
        (Box::new(|s| s.lanes[0].bans[0].window.to = "25:00".into()), "lanes[0].bans[0].to"),
        (Box::new(|s| s.no_stopping[0].name = "bus lane".into()), "no_stopping[0].name"),
        (Box::new(|s| s.speed_sections[0].certified = true), "speed_sections[0].certificate"),
        (Box::new(|s| s.signal.source = SignalSource::Image), "signal.heads"),
        (Box::new(|s| s.thresholds.lane_min_s = 0.0), "thresholds.lane_min_s"),
    ];
    for (edit, field) in cases {
        let mut c = config();
        edit(&mut c);
        let e = c.validate().expect_err(field);
        assert_eq!((e.camera.as_str(), e.field.as_str()), ("cam-test", field), "{e}");
    }
    let unknown = toml::from_str::<SceneConfig>(&format!("{SCENE}\nspeed_limit = 3")).expect_err("unknown field");
    assert!(unknown.to_string().contains("speed_limit"));
}

#[test]
fn switched_off_rules_stay_silent() {
    let v = drive(&mut judge_with(|s| s.enable.red_light = false), VehicleClass::Car, 0..40, northbound, red);
    assert!(v.is_empty());
}

#[test]
fn signal_heads_in_the_picture_give_the_phase_after_smoothing() {
    let mut judge = judge_with(|s| {
        s.signal.source = SignalSource::Image;
        s.signal.heads = vec![[900.0, 0.0, 1000.0, 100.0]];
    });
    let rgb = head_picture([250, 30, 20]);
    for f in 0..3 {
        judge.read_signal(at(f), 100, 100, region_of(&rgb));
    }
    assert_eq!(judge.signal_phase(at(2)), SignalPhase::Red);
    // An external report is ignored for a camera that reads its signal from the picture.
    judge.controller_phase(at(3), SignalPhase::Green);
    assert_eq!(judge.signal_phase(at(3)), SignalPhase::Red);
}

/// Rectangles of a 100x100 packed RGB8 picture, as `Judge::read_signal` asks for them.
fn region_of(rgb: &[u8]) -> impl Fn(u32, u32, u32, u32) -> Vec<u8> + '_ {
    move |x1, y1, x2, y2| te_types::pixels::rgb_region(rgb, 100, x1, y1, x2, y2)
}

/// A 100x100 picture (scene scaled 1:10) with a lit lamp of `colour` in the top-right head region.
fn head_picture(colour: [u8; 3]) -> Vec<u8> {
    let mut rgb = vec![30u8; 100 * 100 * 3];
    for y in 2..8 {
        for x in 92..98 {
            let i = (y * 100 + x) * 3;
            rgb[i..i + 3].copy_from_slice(&colour);
        }
    }
    rgb
}

#[test]
fn a_controller_red_that_the_signal_head_in_the_picture_shows_green_is_not_trusted_and_is_counted() {
    let mut judge = judge_with(|s| s.signal.heads = vec![[900.0, 0.0, 1000.0, 100.0]]);
    let green = head_picture([40, 255, 170]);
    let mut out = Vec::new();
    for f in 0..40 {
        judge.controller_phase(at(f), SignalPhase::Red);
        judge.read_signal(at(f), 100, 100, region_of(&green));
        out.extend(judge.judge(f, at(f), (1000, 1000), &[observe(VehicleClass::Car, northbound(f))]));
    }
    assert!(out.is_empty(), "a forged red must not make a case: {out:?}");
    assert_eq!(judge.signal_phase(at(39)), SignalPhase::Unknown);
    assert_eq!(judge.take_disagreements(), 1, "one lasting disagreement, counted once");
    assert_eq!(judge.take_disagreements(), 0);

    // Controller and picture agree: the controller's phase stands and the offence is judged.
    let mut judge = judge_with(|s| s.signal.heads = vec![[900.0, 0.0, 1000.0, 100.0]]);
    let red_lamp = head_picture([250, 30, 20]);
    let mut out = Vec::new();
    for f in 0..40 {
        judge.controller_phase(at(f), SignalPhase::Red);
        judge.read_signal(at(f), 100, 100, region_of(&red_lamp));
        out.extend(judge.judge(f, at(f), (1000, 1000), &[observe(VehicleClass::Car, northbound(f))]));
    }
    assert_eq!(kinds(&out), [ViolationKind::RedLight]);
    assert_eq!(judge.take_disagreements(), 0);
}

#[test]
fn heads_of_one_approach_give_their_common_colour_when_at_least_half_can_be_read() {
    use crate::combine_heads;
    use SignalPhase::{Green, Red, Unknown};
    assert_eq!(combine_heads(&[Red, Red, Unknown]), Red, "a hidden head abstains");
    assert_eq!(combine_heads(&[Red, Unknown]), Red);
    assert_eq!(combine_heads(&[Red, Unknown, Unknown]), Unknown, "too few heads read");
    assert_eq!(combine_heads(&[Red, Green, Red]), Unknown, "two colours: never guess");
    assert_eq!(combine_heads(&[]), Unknown);
}

/// The line is crossed by the vehicle's front, not its box's bottom centre (its rear, driving away): a 100 px
/// tall box going up has its front 20 px above its bottom edge and is over the line two frames earlier.
#[test]
fn a_vehicle_driving_away_crosses_the_stop_line_with_its_front_not_its_rear() {
    let mut judge = judge_with(|_| {});
    let green_then_red = |f: u64| Some(if f == 0 { SignalPhase::Green } else { SignalPhase::Red });
    let mut out = Vec::new();
    for f in 0..40 {
        if let Some(phase) = green_then_red(f) {
            judge.controller_phase(at(f), phase);
        }
        let (x, y) = northbound(f);
        let tall = Observation {
            bbox: BBox { x1: x - 30.0, y1: y - 100.0, x2: x + 30.0, y2: y },
            ..observe(VehicleClass::Car, (x, y))
        };
        out.extend(judge.judge(f, at(f), (1000, 1000), &[tall]));
    }
    assert_eq!(kinds(&out), [ViolationKind::RedLight]);
    let moments: Vec<(MomentRole, u64)> = out[0].moments.iter().map(|m| (m.role, m.frame_number)).collect();
    // The box's bottom reaches the line at frame 20; the front at frame 18.
    assert_eq!(moments, [(MomentRole::Before, 17), (MomentRole::At, 18)]);
}
