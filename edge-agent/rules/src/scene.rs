//! A camera's scene: the lines, lanes and zones drawn on its picture, the signal it watches, and which rules
//! apply. Written by people (TOML), so everything is validated and every error names the camera and the field.
//!
//! Coordinates are pixels of a picture `frame_size` wide and high (a snapshot of the camera); the judge
//! scales them to whatever size frames are analysed at, so changing the camera's `width` does not move them.

use crate::geometry::{length, DirectedLine, Point, Polygon};
use chrono::{DateTime, NaiveTime, Timelike, Utc};
use serde::{Deserialize, Serialize};
use te_types::{apply_homography, homography, VehicleClass, ViolationKind};

/// What a scene file holds, as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SceneConfig {
    /// The camera this scene belongs to (its `id` in `[[cameras]]`).
    pub camera: String,
    /// Width and height of the picture the coordinates were drawn on.
    pub frame_size: [u32; 2],
    /// Hours from UTC of the camera's local time, for lane and zone time windows (Vietnam: 7).
    #[serde(default = "default_utc_offset")]
    pub utc_offset_hours: i32,
    /// Also record every vehicle pass (no offence) as evidence, e.g. for a plate-reading checkpoint.
    #[serde(default)]
    pub record_passes: bool,
    /// Rules switched on for this camera; all by default.
    #[serde(default)]
    pub enable: Enable,
    #[serde(default)]
    pub thresholds: Thresholds,
    #[serde(default)]
    pub signal: crate::signal::SignalSettings,
    #[serde(default)]
    pub stop_lines: Vec<StopLineConfig>,
    #[serde(default)]
    pub lanes: Vec<LaneConfig>,
    #[serde(default)]
    pub no_stopping: Vec<NoStoppingConfig>,
    #[serde(default)]
    pub speed_sections: Vec<SpeedSectionConfig>,
}

fn default_utc_offset() -> i32 {
    7
}

/// Per-camera switches, one per rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Enable {
    pub red_light: bool,
    pub stop_line: bool,
    pub wrong_way: bool,
    pub wrong_lane: bool,
    pub illegal_stopping: bool,
    pub speeding: bool,
    /// Needs the helmet classifier (`[helmets] enabled` in the agent's configuration).
    pub no_helmet: bool,
}

impl Default for Enable {
    fn default() -> Self {
        Self {
            red_light: true,
            stop_line: true,
            wrong_way: true,
            wrong_lane: true,
            illegal_stopping: true,
            speeding: true,
            no_helmet: true,
        }
    }
}

impl Enable {
    pub fn allows(&self, kind: ViolationKind) -> bool {
        match kind {
            ViolationKind::RedLight => self.red_light,
            ViolationKind::StopLine => self.stop_line,
            ViolationKind::WrongWay => self.wrong_way,
            ViolationKind::WrongLane => self.wrong_lane,
            ViolationKind::IllegalStopping => self.illegal_stopping,
            ViolationKind::Speeding => self.speeding,
            ViolationKind::NoHelmet => self.no_helmet,
        }
    }
}

/// How the rules decide "still", "moving the wrong way" and "in the lane"; in scene pixels and seconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// A vehicle whose ground point stays within this radius is standing still (boxes jitter a few pixels).
    pub still_radius_px: f32,
    /// Wrong way: the movement over this many seconds is what counts, not one jittery frame.
    pub wrong_way_window_s: f32,
    /// Wrong way: at least this much movement against the lane in that window.
    pub wrong_way_min_travel_px: f32,
    /// Wrong lane: seconds in a lane before it counts (changing lanes across one is not an offence).
    pub lane_min_s: f32,
    /// Stop line: how far past the line a vehicle that crossed on red must go to have run the light; one
    /// that stops before that depth has encroached on the stop line instead.
    pub stop_line_depth_px: f32,
    /// Stop line: seconds standing still past the line (on red) that make an encroachment.
    pub stop_line_dwell_s: f32,
    /// No helmet: a motorcyclist's head region scoring at least this probability of a bare head is a
    /// bare-headed sighting. Set for precision, since a false ticket is the worst outcome: on the validation
    /// clips no helmeted rider scores 0.9 or more (the highest is 0.899), so 0.95 leaves a margin. See the helmet
    /// model card.
    pub no_helmet_at: f32,
    /// No helmet: bare-headed sightings a track needs, and more of them than sure helmeted ones (p_bare < 0.5).
    pub no_helmet_min_frames: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            still_radius_px: 8.0,
            wrong_way_window_s: 1.0,
            wrong_way_min_travel_px: 40.0,
            lane_min_s: 1.0,
            stop_line_depth_px: 60.0,
            stop_line_dwell_s: 1.0,
            no_helmet_at: 0.95,
            no_helmet_min_frames: 3,
        }
    }
}

/// A stop line in front of a signal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopLineConfig {
    pub name: String,
    /// The painted line, two points.
    pub line: [Point; 2],
    /// Direction of travel that crosses it into the junction, e.g. `[0, -1]` = up the picture.
    pub direction: Point,
}

/// A lane: where it is, which way it goes, who may use it and when.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneConfig {
    pub name: String,
    pub polygon: Vec<Point>,
    /// Direction of travel; driving against it is wrong-way. Absent: two-way, not judged.
    #[serde(default)]
    pub direction: Option<Point>,
    /// Classes allowed in the lane; empty: all.
    #[serde(default)]
    pub allowed_classes: Vec<VehicleClass>,
    /// Classes banned during time windows (e.g. trucks 06:00–21:00).
    #[serde(default)]
    pub bans: Vec<LaneBan>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneBan {
    pub classes: Vec<VehicleClass>,
    #[serde(flatten)]
    pub window: TimeWindow,
}

/// A daily window of local time, `from` inclusive to `to` exclusive; wraps midnight when `from > to`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    /// "HH:MM"
    pub from: String,
    /// "HH:MM"
    pub to: String,
}

/// A zone where vehicles may not stand longer than `max_dwell_s`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoStoppingConfig {
    pub name: String,
    pub polygon: Vec<Point>,
    /// Seconds standing still in the zone that make an offence.
    pub max_dwell_s: f32,
    /// Classes it applies to; empty: all.
    #[serde(default)]
    pub classes: Vec<VehicleClass>,
    /// When it applies; empty: always.
    #[serde(default)]
    pub windows: Vec<TimeWindow>,
}

/// Average-speed section: the time between crossing `entry` and `exit` over a known distance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeedSectionConfig {
    pub name: String,
    pub entry: [Point; 2],
    pub exit: [Point; 2],
    /// Direction of travel through the section.
    pub direction: Point,
    /// Road distance between the lines, metres, as surveyed. Absent: computed through `ground`.
    #[serde(default)]
    pub distance_m: Option<f32>,
    /// Image-to-road calibration: four picture points and where they are on the road, in metres.
    #[serde(default)]
    pub ground: Option<GroundCalibration>,
    pub limit_kmh: f32,
    /// Measured speeds up to `limit + tolerance` are not offences.
    #[serde(default)]
    pub tolerance_kmh: f32,
    /// Whether this camera's speed measurement is certified (Vietnamese metrology approval). Without it,
    /// records say "uncertified measurement" and a reviewer decides.
    #[serde(default)]
    pub certified: bool,
    /// The certificate, required when `certified` is true.
    #[serde(default)]
    pub certificate: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroundCalibration {
    pub image: [Point; 4],
    pub road_m: [Point; 4],
}

/// What is wrong with a scene: the camera, the field, and why.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("scene of camera {camera}: {field}: {message}")]
pub struct SceneError {
    pub camera: String,
    pub field: String,
    pub message: String,
}

/// A scene checked and ready for the judge.
#[derive(Debug, Clone)]
pub struct Scene {
    pub camera: String,
    pub frame_size: [u32; 2],
    pub utc_offset_hours: i32,
    pub record_passes: bool,
    pub enable: Enable,
    pub thresholds: Thresholds,
    pub signal: crate::signal::SignalSettings,
    pub stop_lines: Vec<(String, DirectedLine)>,
    pub lanes: Vec<Lane>,
    pub no_stopping: Vec<NoStoppingZone>,
    pub speed_sections: Vec<SpeedSection>,
}

#[derive(Debug, Clone)]
pub struct Lane {
    pub name: String,
    pub polygon: Polygon,
    /// Unit vector.
    pub direction: Option<Point>,
    pub allowed_classes: Vec<VehicleClass>,
    pub bans: Vec<(Vec<VehicleClass>, DailyWindow)>,
}

#[derive(Debug, Clone)]
pub struct NoStoppingZone {
    pub name: String,
    pub polygon: Polygon,
    pub max_dwell_s: f32,
    pub classes: Vec<VehicleClass>,
    pub windows: Vec<DailyWindow>,
}

#[derive(Debug, Clone)]
pub struct SpeedSection {
    pub name: String,
    pub entry: DirectedLine,
    pub exit: DirectedLine,
    pub distance_m: f32,
    pub limit_kmh: f32,
    pub tolerance_kmh: f32,
    pub certified: bool,
}

/// A parsed daily time window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DailyWindow {
    from: NaiveTime,
    to: NaiveTime,
}

impl DailyWindow {
    /// Whether `at` falls in the window, in local time `utc_offset_hours` from UTC.
    pub fn contains(&self, at: DateTime<Utc>, utc_offset_hours: i32) -> bool {
        let local = (at + chrono::Duration::hours(i64::from(utc_offset_hours))).time();
        let local = NaiveTime::from_hms_opt(local.hour(), local.minute(), local.second()).unwrap_or(local);
        if self.from <= self.to {
            self.from <= local && local < self.to
        } else {
            local >= self.from || local < self.to
        }
    }
}

impl SceneConfig {
    /// Checks every field and builds the judge's form of the scene.
    pub fn validate(&self) -> Result<Scene, SceneError> {
        let err = |field: String, message: String| SceneError { camera: self.camera.clone(), field, message };
        if self.camera.trim().is_empty() {
            return Err(err("camera".into(), "must name a camera".into()));
        }
        let [w, h] = self.frame_size;
        if w == 0 || h == 0 || w > 16_384 || h > 16_384 {
            return Err(err("frame_size".into(), format!("must be two sizes in 1..=16384, got [{w}, {h}]")));
        }
        if !(-12..=14).contains(&self.utc_offset_hours) {
            return Err(err("utc_offset_hours".into(), format!("must be in -12..=14, got {}", self.utc_offset_hours)));
        }
        self.validate_thresholds().map_err(|(f, m)| err(format!("thresholds.{f}"), m))?;
        self.signal.validate().map_err(|(f, m)| err(format!("signal.{f}"), m))?;
        let inside = |field: &str, p: Point| -> Result<(), SceneError> {
            let ok = p[0].is_finite()
                && p[1].is_finite()
                && (0.0..=w as f32).contains(&p[0])
                && (0.0..=h as f32).contains(&p[1]);
            if ok {
                Ok(())
            } else {
                Err(err(field.into(), format!("point [{}, {}] is outside the {w}x{h} picture", p[0], p[1])))
            }
        };
        for (i, [x1, y1, x2, y2]) in self.signal.heads.iter().copied().enumerate() {
            let field = format!("signal.heads[{i}]");
            inside(&field, [x1, y1])?;
            inside(&field, [x2, y2])?;
            if x2 - x1 < 2.0 || y2 - y1 < 2.0 {
                return Err(err(field, "must be [x1, y1, x2, y2] with x2 > x1 and y2 > y1".into()));
            }
        }
        let mut names = std::collections::HashSet::new();
        let mut unique = |field: String, name: &str| -> Result<(), SceneError> {
            if name.trim().is_empty() {
                return Err(err(field, "must not be empty".into()));
            }
            if !names.insert(name.to_owned()) {
                return Err(err(field, format!("{name:?} is used twice; names identify rules in evidence")));
            }
            Ok(())
        };
        let line = |field: String, pts: [Point; 2], direction: Point| -> Result<DirectedLine, SceneError> {
            inside(&field, pts[0])?;
            inside(&field, pts[1])?;
            let ab = crate::geometry::sub(pts[1], pts[0]);
            if length(ab) < 2.0 {
                return Err(err(field, "the two points must be apart".into()));
            }
            if length(direction) == 0.0 || !direction[0].is_finite() || !direction[1].is_finite() {
                return Err(err(format!("{field}.direction"), "must be a non-zero vector".into()));
            }
            // A direction along the line could never cross it.
            let sin = crate::geometry::cross(ab, direction).abs() / (length(ab) * length(direction));
            if sin < 0.26 {
                return Err(err(format!("{field}.direction"), "runs along the line; it must cross it".into()));
            }
            Ok(DirectedLine::new(pts[0], pts[1], direction))
        };
        let polygon = |field: String, pts: &[Point]| -> Result<Polygon, SceneError> {
            if pts.len() < 3 {
                return Err(err(field, format!("needs at least 3 points, got {}", pts.len())));
            }
            for p in pts {
                inside(&field, *p)?;
            }
            let poly = Polygon(pts.to_vec());
            if poly.doubled_area().abs() < 4.0 {
                return Err(err(field, "has no area".into()));
            }
            Ok(poly)
        };
        let window = |field: String, w: &TimeWindow| -> Result<DailyWindow, SceneError> {
            let parse = |f: &str, v: &str| {
                NaiveTime::parse_from_str(v, "%H:%M")
                    .map_err(|_| err(format!("{field}.{f}"), format!("{v:?} is not a time of day \"HH:MM\"")))
            };
            Ok(DailyWindow { from: parse("from", &w.from)?, to: parse("to", &w.to)? })
        };

        let mut stop_lines = Vec::new();
        for (i, s) in self.stop_lines.iter().enumerate() {
            unique(format!("stop_lines[{i}].name"), &s.name)?;
            stop_lines.push((s.name.clone(), line(format!("stop_lines[{i}].line"), s.line, s.direction)?));
        }
        let mut lanes = Vec::new();
        for (i, l) in self.lanes.iter().enumerate() {
            unique(format!("lanes[{i}].name"), &l.name)?;
            let direction = match l.direction {
                Some(d) if length(d) > 0.0 && d[0].is_finite() && d[1].is_finite() => {
                    Some([d[0] / length(d), d[1] / length(d)])
                }
                Some(_) => return Err(err(format!("lanes[{i}].direction"), "must be a non-zero vector".into())),
                None => None,
            };
            let mut bans = Vec::new();
            for (j, b) in l.bans.iter().enumerate() {
                if b.classes.is_empty() {
                    return Err(err(format!("lanes[{i}].bans[{j}].classes"), "must name at least one class".into()));
                }
                bans.push((b.classes.clone(), window(format!("lanes[{i}].bans[{j}]"), &b.window)?));
            }
            lanes.push(Lane {
                name: l.name.clone(),
                polygon: polygon(format!("lanes[{i}].polygon"), &l.polygon)?,
                direction,
                allowed_classes: l.allowed_classes.clone(),
                bans,
            });
        }
        let mut no_stopping = Vec::new();
        for (i, z) in self.no_stopping.iter().enumerate() {
            unique(format!("no_stopping[{i}].name"), &z.name)?;
            if !(z.max_dwell_s.is_finite() && z.max_dwell_s > 0.0) {
                return Err(err(
                    format!("no_stopping[{i}].max_dwell_s"),
                    format!("must be > 0, got {}", z.max_dwell_s),
                ));
            }
            let windows = z
                .windows
                .iter()
                .enumerate()
                .map(|(j, w)| window(format!("no_stopping[{i}].windows[{j}]"), w))
                .collect::<Result<_, _>>()?;
            no_stopping.push(NoStoppingZone {
                name: z.name.clone(),
                polygon: polygon(format!("no_stopping[{i}].polygon"), &z.polygon)?,
                max_dwell_s: z.max_dwell_s,
                classes: z.classes.clone(),
                windows,
            });
        }
        let mut speed_sections = Vec::new();
        for (i, s) in self.speed_sections.iter().enumerate() {
            let f = |name: &str| format!("speed_sections[{i}].{name}");
            unique(f("name"), &s.name)?;
            let entry = line(f("entry"), s.entry, s.direction)?;
            let exit = line(f("exit"), s.exit, s.direction)?;
            if !(s.limit_kmh.is_finite() && s.limit_kmh > 0.0 && s.limit_kmh <= 200.0) {
                return Err(err(f("limit_kmh"), format!("must be in (0, 200], got {}", s.limit_kmh)));
            }
            if !(s.tolerance_kmh.is_finite() && s.tolerance_kmh >= 0.0) {
                return Err(err(f("tolerance_kmh"), format!("must be >= 0, got {}", s.tolerance_kmh)));
            }
            if s.certified && s.certificate.trim().is_empty() {
                return Err(err(f("certificate"), "a certified section must name its certificate".into()));
            }
            let distance_m = match (s.distance_m, &s.ground) {
                (Some(d), _) => d,
                (None, Some(g)) => ground_distance(g, s.entry, s.exit).ok_or_else(|| {
                    err(f("ground"), "the four points do not give a usable image-to-road mapping".into())
                })?,
                (None, None) => return Err(err(f("distance_m"), "give distance_m or a ground calibration".into())),
            };
            if !(distance_m.is_finite() && distance_m >= 1.0) {
                return Err(err(f("distance_m"), format!("must be at least 1 m, got {distance_m}")));
            }
            speed_sections.push(SpeedSection {
                name: s.name.clone(),
                entry,
                exit,
                distance_m,
                limit_kmh: s.limit_kmh,
                tolerance_kmh: s.tolerance_kmh,
                certified: s.certified,
            });
        }
        Ok(Scene {
            camera: self.camera.clone(),
            frame_size: self.frame_size,
            utc_offset_hours: self.utc_offset_hours,
            record_passes: self.record_passes,
            enable: self.enable.clone(),
            thresholds: self.thresholds.clone(),
            signal: self.signal.clone(),
            stop_lines,
            lanes,
            no_stopping,
            speed_sections,
        })
    }

    fn validate_thresholds(&self) -> Result<(), (&'static str, String)> {
        let t = &self.thresholds;
        let positive = [
            ("still_radius_px", t.still_radius_px),
            ("wrong_way_window_s", t.wrong_way_window_s),
            ("wrong_way_min_travel_px", t.wrong_way_min_travel_px),
            ("lane_min_s", t.lane_min_s),
            ("stop_line_depth_px", t.stop_line_depth_px),
            ("stop_line_dwell_s", t.stop_line_dwell_s),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err((name, format!("must be > 0, got {v}")));
            }
        }
        if !(t.no_helmet_at > 0.5 && t.no_helmet_at <= 1.0) {
            return Err(("no_helmet_at", format!("must be in (0.5, 1], got {}", t.no_helmet_at)));
        }
        if t.no_helmet_min_frames == 0 || t.no_helmet_min_frames > 1000 {
            return Err(("no_helmet_min_frames", format!("must be 1..=1000, got {}", t.no_helmet_min_frames)));
        }
        Ok(())
    }
}

/// Road distance between the midpoints of the two lines, through the ground calibration.
fn ground_distance(g: &GroundCalibration, entry: [Point; 2], exit: [Point; 2]) -> Option<f32> {
    let m = homography(&g.image, &g.road_m)?;
    let mid = |l: [Point; 2]| [(l[0][0] + l[1][0]) / 2.0, (l[0][1] + l[1][1]) / 2.0];
    let a = apply_homography(&m, mid(entry))?;
    let b = apply_homography(&m, mid(exit))?;
    let d = crate::geometry::distance(a, b);
    d.is_finite().then_some(d)
}
