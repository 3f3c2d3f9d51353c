//! `edge-agent eval` on scenes: the vn_riders layout (`images/` + `labels/` in YOLO form: class 1 = plate,
//! 2 = motorcyclist, 0 = helmet), where plate DETECTION is measured along the agent's own path; and a folder of
//! photos (vn_scenes), whose plates are found, read and drawn for checking by eye, and scored against the plates a
//! person boxed and read in them (`models/labels/<folder>.plate_texts.tsv`) where that file exists. Plates are read
//! as the pipeline reads them: in their vehicle's crop, and not at all where that crop cuts them off.
//!
//! ```text
//!  frame -> VehicleDetector (YOLOX + motorcyclists) -> each vehicle >= plates.min_vehicle_width -> crop (box + 10%,
//!  as the pipeline cuts it) -> PlateRecognizer::detect_plates (second look at small plates) -> frame pixels
//!  -> NMS across vehicles -> match labels (IoU 0.5)
//! ```
//!
//! Plates under 16 px wide are not scored (a detection of one is neither right nor wrong). Recall is reported
//! by layout (square: width/height < 2.6, long) and by width (< 24, 24-48, > 48 px); precision counts every
//! other detection as a false one. Each matched plate is also read, so the report says how many of the plates
//! found make a valid Vietnamese plate; where a person has read the plate's text (the plate texts file), it also
//! says whether the read is the right plate, since a valid read of a plate cut by a tight box can be another
//! vehicle's.

use anyhow::{bail, Context};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use te_infer::{PlateDetection, PlateRecognizer, RgbView, VehicleDetector};
use te_types::{BBox, CameraId, Frame};

/// Labelled plates narrower than this are not scored.
const MIN_SCORED_WIDTH: f32 = 16.0;
/// Width/height below which a labelled plate is square (two rows).
const SQUARE_BELOW: f32 = 2.6;
/// A detection is the labelled plate (or the not-scored plate) it overlaps at least this much.
const MATCH_IOU: f32 = 0.5;
/// The same plate found through two overlapping vehicle crops is one detection.
const CROSS_VEHICLE_NMS: f32 = 0.5;

/// One labelled frame; boxes normalised to the image (YOLO), turned into pixels once it is decoded.
#[derive(Debug, Clone)]
pub struct RiderFrame {
    pub name: String,
    pub image: PathBuf,
    /// (class, cx, cy, w, h), normalised.
    pub labels: Vec<(u32, [f32; 4])>,
    /// Plates the labels miss, from the corrections file, in pixels.
    pub added_plates: Vec<BBox>,
    /// Plates in view that are not scored (cut by the frame's edge, half hidden, too blurred to tell), from the
    /// corrections file, in pixels: a detection of one is neither right nor wrong.
    pub ignored_plates: Vec<BBox>,
}

/// Label corrections checked by eye: `frame<TAB>action<TAB>x1<TAB>y1<TAB>x2<TAB>y2<TAB>reason` (pixels).
/// `add_plate`: a plate the labels miss, scored like a labelled one. `ignore_plate`: a plate the labels leave
/// out on purpose because it cannot be scored fairly (cut by the frame's edge, half hidden behind another
/// vehicle or a pole): finding it is not a false detection, missing it is not a miss (COCO's "crowd" and
/// KITTI's "don't care" regions do the same). Returns (added, ignored).
pub fn apply_corrections(frames: &mut [RiderFrame], path: &Path) -> anyhow::Result<(usize, usize)> {
    let (mut added, mut ignored) = (0, 0);
    for (n, f) in super::tsv_rows(path, "frame")? {
        let parsed = (f.len() >= 7 && matches!(f[1].as_str(), "add_plate" | "ignore_plate") && !f[6].trim().is_empty())
            .then(|| pixel_box(&f[2..6]))
            .flatten();
        let Some(bbox) = parsed else {
            bail!(
                "{}:{n}: expected `frame<TAB>add_plate|ignore_plate<TAB>x1<TAB>y1<TAB>x2<TAB>y2<TAB>reason`",
                path.display()
            );
        };
        if let Some(frame) = frames.iter_mut().find(|fr| fr.name == f[0]) {
            if f[1] == "add_plate" {
                frame.added_plates.push(bbox);
                added += 1;
            } else {
                frame.ignored_plates.push(bbox);
                ignored += 1;
            }
        }
    }
    Ok((added, ignored))
}

/// `x1 y1 x2 y2` in pixels: finite, not negative, not empty.
fn pixel_box(fields: &[String]) -> Option<BBox> {
    let v: Vec<f32> = fields.iter().map(|f| f.trim().parse::<f32>().ok()).collect::<Option<_>>()?;
    let [x1, y1, x2, y2] = v[..] else { return None };
    (v.iter().all(|c| c.is_finite() && *c >= 0.0) && x2 > x1 && y2 > y1).then_some(BBox { x1, y1, x2, y2 })
}

/// What a person read on one labelled plate: its text, or `None` where the whole plate cannot be read (then
/// any valid read of it is a guess).
pub type PlateTexts = std::collections::HashMap<String, Vec<(BBox, Option<String>)>>;

/// A plate text belongs to the labelled plate it overlaps this much (the file copies the label's box).
const TEXT_MATCH_IOU: f32 = 0.7;

/// Plate texts read by eye: `frame<TAB>x1<TAB>y1<TAB>x2<TAB>y2<TAB>text<TAB>note` (pixels; the text as printed,
/// e.g. `59-U1/729.79`, or `?` where no person can read the whole plate).
pub fn load_plate_texts(path: &Path) -> anyhow::Result<PlateTexts> {
    let mut texts = PlateTexts::new();
    for (n, f) in super::tsv_rows(path, "frame")? {
        let Some(bbox) = (f.len() >= 6).then(|| pixel_box(&f[1..5])).flatten() else {
            bail!("{}:{n}: expected `frame<TAB>x1<TAB>y1<TAB>x2<TAB>y2<TAB>text<TAB>note`", path.display());
        };
        let plate = match f[5].trim() {
            "?" => None,
            typed => match te_plate::parse_typed(typed) {
                Ok(plate) => Some(plate.compact()),
                Err(why) => {
                    bail!(
                        "{}:{n}: {typed:?} is no Vietnamese plate ({why}); write `?` if it cannot be read",
                        path.display()
                    )
                }
            },
        };
        texts.entry(f[0].clone()).or_default().push((bbox, plate));
    }
    Ok(texts)
}

/// True for a folder laid out like vn_riders.
pub fn is_riders_layout(dir: &Path) -> bool {
    dir.join("images").is_dir() && dir.join("labels").is_dir() && !dir.join("gt.tsv").exists()
}

/// Every labelled frame, or those of the clips listed in `only_clips` (one clip name per line, via the
/// dataset's `clips.tsv`: `frame<TAB>clip`).
pub fn load(dir: &Path, only_clips: Option<&Path>) -> anyhow::Result<Vec<RiderFrame>> {
    let wanted: Option<HashSet<String>> = match only_clips {
        None => None,
        Some(list) => {
            let clips = super::load_name_list(list)?;
            let table = dir.join("clips.tsv");
            let text = std::fs::read_to_string(&table).with_context(|| format!("reading {}", table.display()))?;
            Some(
                text.lines()
                    .filter_map(|l| l.split_once('\t'))
                    .filter(|(_, clip)| clips.contains(*clip))
                    .map(|(frame, _)| frame.to_string())
                    .collect(),
            )
        }
    };
    let mut frames = Vec::new();
    let labels_dir = dir.join("labels");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&labels_dir)
        .with_context(|| format!("reading {}", labels_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    entries.sort();
    for path in entries {
        let Some(name) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else { continue };
        if wanted.as_ref().is_some_and(|w| !w.contains(&name)) {
            continue;
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut labels = Vec::new();
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let parsed: Option<(u32, [f32; 4])> = (f.len() == 5)
                .then(|| {
                    Some((
                        f[0].parse().ok()?,
                        [f[1].parse().ok()?, f[2].parse().ok()?, f[3].parse().ok()?, f[4].parse().ok()?],
                    ))
                })
                .flatten();
            match parsed {
                Some((class, b)) if b.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)) => {
                    labels.push((class, b))
                }
                _ => bail!("{}:{}: expected `class cx cy w h` (normalised), got {line:?}", path.display(), n + 1),
            }
        }
        let image = crate::tools::eval::crops::IMAGE_EXTENSIONS
            .iter()
            .map(|ext| dir.join("images").join(format!("{name}.{ext}")))
            .find(|p| p.is_file())
            .unwrap_or_else(|| dir.join("images").join(format!("{name}.jpg")));
        frames.push(RiderFrame { name, image, labels, added_plates: Vec::new(), ignored_plates: Vec::new() });
    }
    if frames.is_empty() {
        bail!("{}: no labelled frames (check --only-clips)", dir.display());
    }
    Ok(frames)
}

#[derive(Debug, Default, Clone, Copy)]
struct Recall {
    found: usize,
    n: usize,
}

impl Recall {
    fn rate(&self) -> f64 {
        self.found as f64 / self.n.max(1) as f64
    }
}

/// The figures of one run.
#[derive(Debug, Default)]
pub struct DetectionReport {
    frames: usize,
    buckets: BTreeMap<&'static str, Recall>,
    scored: Recall,
    scored_24: Recall,
    /// Scored plates whose vehicle the vehicle detector found (the plate lies inside a searched crop): the
    /// plate detector's own share of the recall, apart from vehicles never found.
    in_vehicles: Recall,
    true_detections: usize,
    false_detections: usize,
    true_24: usize,
    false_24: usize,
    vehicles: usize,
    riders: Recall,
    plates_read: usize,
    /// Valid reads of scored plates whose text a person read: the same plate / another plate.
    read_right: usize,
    read_wrong: usize,
    /// Valid reads of plates a person cannot read (guesses), and of plates no one has read yet.
    read_guessed: usize,
    read_unchecked: usize,
    /// Scored plates whose whole text a person read.
    legible: usize,
    /// Every scored plate with what the agent read and what a person read, for checking by eye.
    pub plate_reads: Vec<PlateReadRow>,
    millis: Vec<f64>,
    plate_detector_seconds: f64,
    /// Vehicle crops searched for plates.
    crops: usize,
    /// (frame, label box) of every scored plate not found, for checking by eye.
    pub missed: Vec<(String, BBox)>,
    /// (frame, detection box, score) of every false detection.
    pub false_found: Vec<(String, BBox, f32)>,
    /// (frame, detection box, score, valid read) of every detection of a plate the corrections mark as not
    /// scored (cut or half hidden). A valid read of one is a guess: part of the plate is not in the picture.
    pub ignored_found: Vec<(String, BBox, f32, Option<String>)>,
    /// Per frame, the motorcyclists the agent would check for helmets: the motorcyclist boxes a YOLOX person
    /// rides (the pipeline's rider gate), for scoring the helmet model on the boxes it really gets.
    pub checked_riders: std::collections::HashMap<String, Vec<BBox>>,
}

/// One scored plate: whether the agent found it, what it read, and the text a person read.
#[derive(Debug, Clone)]
pub struct PlateReadRow {
    pub frame: String,
    pub bbox: BBox,
    pub found: bool,
    /// The plate read (as printed), `None` when unreadable or not found.
    pub read: Option<String>,
    /// The characters as the reader saw them, before the grammar.
    pub raw: String,
    /// Why the read is unreadable (the recogniser's reason); empty for a plate read or not found.
    pub why: String,
    /// The text a person read (compact), `Some(None)` for "cannot be read", `None` where nobody has looked.
    pub label: Option<Option<String>>,
    /// The upright plate picture the reader got, `None` for a plate not found.
    pub picture: Option<image::RgbImage>,
}

/// Recall buckets of the plates in frames with and without salt-and-pepper specks (`te_infer::speck_share`):
/// a third of the vn_riders frames carry them, and the detector finds far fewer plates there.
const SPECKLED: &str = "frames with specks";
const SPECKLESS: &str = "frames, no specks";

fn width_bucket(w: f32) -> &'static str {
    if w < 24.0 {
        "width 16-24 px"
    } else if w <= 48.0 {
        "width 24-48 px"
    } else {
        "width > 48 px"
    }
}

/// What the agent's detection path found in one frame.
pub struct Search {
    pub vehicles: Vec<te_types::Detection>,
    /// Plates, their box in frame pixels (corners still in their crop's pixels), and their crop's index.
    pub plates: Vec<(PlateDetection, usize)>,
    /// The vehicle crops searched, and where each lies in the frame.
    pub crops: Vec<image::RgbImage>,
    pub searched: Vec<BBox>,
    /// Time inside the plate detector, all crops together.
    pub plate_detector_seconds: f64,
}

/// The agent's path on one frame: vehicles, each wide enough searched in its crop, plates found through two
/// overlapping crops kept once.
pub fn search_frame(
    frame: &Frame,
    vehicles: &mut VehicleDetector,
    recognizer: &mut PlateRecognizer,
    min_vehicle_width: f32,
) -> anyhow::Result<Search> {
    let seen = vehicles.detect(frame)?;
    let mut found: Vec<(PlateDetection, usize)> = Vec::new();
    let mut crops = Vec::new();
    let mut searched: Vec<BBox> = Vec::new();
    let mut plate_detector_seconds = 0.0;
    for det in seen.iter().filter(|d| d.bbox.width() >= min_vehicle_width) {
        let Some((crop, origin)) = te_infer::vehicle_crop(frame, &det.bbox) else { continue };
        let started = Instant::now();
        let in_crop = recognizer.detect_plates(RgbView::of_image(&crop))?;
        plate_detector_seconds += started.elapsed().as_secs_f64();
        for mut plate in in_crop {
            plate.bbox = plate.bbox.shifted(origin.0, origin.1);
            found.push((plate, crops.len()));
        }
        let whole = BBox { x1: 0.0, y1: 0.0, x2: crop.width() as f32, y2: crop.height() as f32 };
        searched.push(whole.shifted(origin.0, origin.1));
        crops.push(crop);
    }
    let plates = te_infer::suppress(found, CROSS_VEHICLE_NMS, |(p, _)| (p.score, p.bbox));
    Ok(Search { vehicles: seen, plates, crops, searched, plate_detector_seconds })
}

/// Reads a plate that `search_frame` found as the pipeline does (`PlateRecognizer::read_plates`): in its
/// vehicle's crop (`crop`, lying at `crop_at` in the frame), and not at all where that crop cuts it off (`None`,
/// as for degenerate corners). Until 2026-12-07 the eval read such plates, which the pipeline never does.
pub fn read_found(
    recognizer: &mut PlateRecognizer,
    plate: &PlateDetection,
    crop: &image::RgbImage,
    crop_at: &BBox,
) -> anyhow::Result<Option<te_types::PlateRead>> {
    let in_crop = plate.bbox.shifted(-crop_at.x1, -crop_at.y1);
    if te_infer::is_cut_off(&in_crop, crop.width(), crop.height()) {
        return Ok(None);
    }
    Ok(recognizer.read_detection(RgbView::of_image(crop), plate)?)
}

fn load_frame(path: &Path, number: u64) -> anyhow::Result<Frame> {
    let picture = crate::tools::eval::crops::decode_image(path)
        .with_context(|| format!("reading {}", path.display()))?
        .into_rgb8();
    Ok(Frame {
        camera: CameraId::new("eval"),
        number,
        captured_at: chrono::Utc::now(),
        scene_cut: true,
        width: picture.width(),
        height: picture.height(),
        pixels: te_types::Pixels::Rgb(Arc::new(picture.into_raw())),
    })
}

/// Runs the agent's detection path on every frame and scores the plates it finds.
pub fn evaluate(
    vehicles: &mut VehicleDetector,
    recognizer: &mut PlateRecognizer,
    frames: &[RiderFrame],
    texts: &PlateTexts,
    min_vehicle_width: f32,
) -> anyhow::Result<DetectionReport> {
    let mut report = DetectionReport::default();
    for (number, sample) in frames.iter().enumerate() {
        let frame = load_frame(&sample.image, number as u64)?;
        let (w, h) = (frame.width as f32, frame.height as f32);
        let to_px = |b: &[f32; 4]| BBox::from_center(b[0] * w, b[1] * h, b[2] * w, b[3] * h);
        let mut plates: Vec<BBox> = sample.labels.iter().filter(|(c, _)| *c == 1).map(|(_, b)| to_px(b)).collect();
        plates.extend(sample.added_plates.iter().copied());
        let riders: Vec<BBox> = sample.labels.iter().filter(|(c, _)| *c == 2).map(|(_, b)| to_px(b)).collect();
        let specks = match &frame.pixels {
            te_types::Pixels::Rgb(data) => RgbView::new(data, frame.width, frame.height).map(te_infer::speck_share),
            _ => None,
        };
        let noise_bucket = if specks.unwrap_or(0.0) >= te_infer::NOISY_SHARE { SPECKLED } else { SPECKLESS };
        let started = Instant::now();
        let Search { vehicles: seen, plates: found, crops, searched, plate_detector_seconds } =
            search_frame(&frame, vehicles, recognizer, min_vehicle_width)?;
        report.plate_detector_seconds += plate_detector_seconds;
        report.crops += crops.len();
        report.millis.push(started.elapsed().as_secs_f64() * 1000.0);
        report.frames += 1;
        report.vehicles += seen.len();
        let people = vehicles.people();
        let gated = seen
            .iter()
            .filter(|d| d.class == te_types::VehicleClass::Motorbike)
            .filter_map(|d| crate::pipeline::helmets::judged_box(&d.bbox, people));
        report.checked_riders.insert(sample.name.clone(), gated.collect());
        for rider in &riders {
            report.riders.n += 1;
            report.riders.found += usize::from(seen.iter().any(|d| d.bbox.iou(rider) >= 0.3));
        }
        let mut used = vec![false; plates.len()];
        let mut reads: Vec<Option<te_types::PlateRead>> = vec![None; plates.len()];
        let mut pictures: Vec<Option<image::RgbImage>> = vec![None; plates.len()];
        for (plate, crop_index) in &found {
            let best = (0..plates.len())
                .filter(|&i| !used[i])
                .max_by(|&a, &b| plate.bbox.iou(&plates[a]).total_cmp(&plate.bbox.iou(&plates[b])));
            match best.filter(|&i| plate.bbox.iou(&plates[i]) >= MATCH_IOU) {
                Some(i) => {
                    used[i] = true;
                    if plates[i].width() < MIN_SCORED_WIDTH {
                        continue;
                    }
                    report.true_detections += 1;
                    if plates[i].width() >= 24.0 {
                        report.true_24 += 1;
                    }
                    // Read it as the pipeline would, in its vehicle's crop (its corners are still in crop pixels).
                    let crop = &crops[*crop_index];
                    if let Some(read) = read_found(recognizer, plate, crop, &searched[*crop_index])? {
                        report.plates_read += usize::from(read.text.is_some());
                        reads[i] = Some(read);
                        pictures[i] = te_infer::plate_picture(RgbView::of_image(crop), plate);
                    }
                }
                None if plates.iter().any(|g| g.width() < MIN_SCORED_WIDTH && plate.bbox.iou(g) >= 0.3) => {}
                None if sample.ignored_plates.iter().any(|g| plate.bbox.iou(g) >= MATCH_IOU) => {
                    let crop = &crops[*crop_index];
                    let read = read_found(recognizer, plate, crop, &searched[*crop_index])?.and_then(|r| r.text);
                    report.ignored_found.push((sample.name.clone(), plate.bbox, plate.score, read));
                }
                None => {
                    report.false_detections += 1;
                    if plate.bbox.width() >= 24.0 {
                        report.false_24 += 1;
                    }
                    report.false_found.push((sample.name.clone(), plate.bbox, plate.score));
                }
            }
        }
        for (i, gt) in plates.iter().enumerate() {
            if gt.width() < MIN_SCORED_WIDTH {
                continue;
            }
            let layout = if gt.width() / gt.height().max(1.0) < SQUARE_BELOW { "layout square" } else { "layout long" };
            for bucket in [layout, width_bucket(gt.width()), noise_bucket] {
                let r = report.buckets.entry(bucket).or_default();
                r.n += 1;
                r.found += usize::from(used[i]);
            }
            if gt.width() >= 24.0 {
                let r = report
                    .buckets
                    .entry(if layout == "layout square" { "square >= 24 px" } else { "long >= 24 px" })
                    .or_default();
                r.n += 1;
                r.found += usize::from(used[i]);
                report.scored_24.n += 1;
                report.scored_24.found += usize::from(used[i]);
            }
            report.scored.n += 1;
            report.scored.found += usize::from(used[i]);
            if searched.iter().any(|c| c.x1 <= gt.x1 && c.y1 <= gt.y1 && c.x2 >= gt.x2 && c.y2 >= gt.y2) {
                report.in_vehicles.n += 1;
                report.in_vehicles.found += usize::from(used[i]);
            }
            if !used[i] {
                report.missed.push((sample.name.clone(), *gt));
            }
            let label = texts
                .get(&sample.name)
                .and_then(|t| {
                    t.iter()
                        .filter(|(b, _)| b.iou(gt) >= TEXT_MATCH_IOU)
                        .max_by(|a, b| a.0.iou(gt).total_cmp(&b.0.iou(gt)))
                })
                .map(|(_, text)| text.clone());
            report.legible += usize::from(matches!(label, Some(Some(_))));
            let read = reads[i].as_ref().and_then(|r| r.text.clone());
            if let Some(read) = &read {
                let read = te_plate::compact(read);
                match &label {
                    Some(Some(text)) if *text == read => report.read_right += 1,
                    Some(Some(_)) => report.read_wrong += 1,
                    Some(None) => report.read_guessed += 1,
                    None => report.read_unchecked += 1,
                }
            }
            report.plate_reads.push(PlateReadRow {
                frame: sample.name.clone(),
                bbox: *gt,
                found: used[i],
                read,
                raw: reads[i].as_ref().map_or(String::new(), |r| r.raw.clone()),
                why: reads[i].as_ref().and_then(|r| r.unreadable_reason.clone()).unwrap_or_default(),
                label,
                picture: pictures[i].take(),
            });
        }
    }
    Ok(report)
}

impl DetectionReport {
    /// Prints the report; the LAST line holds `plate_recall= plate_precision= plates= ms_per_image=` and more
    /// `key=value` fields, read by key, then `more_fields` (other reports' fields on the same frames).
    pub fn print(&self, more_fields: &str) {
        let precision = |t: usize, f: usize| t as f64 / (t + f).max(1) as f64;
        println!(
            "frames {}, vehicles found {}, labelled riders found by the vehicle detector {}/{} ({:.3})",
            self.frames,
            self.vehicles,
            self.riders.found,
            self.riders.n,
            self.riders.rate()
        );
        println!("{:<20} {:>6} {:>6} {:>8}", "plates", "n", "found", "recall");
        for (name, r) in &self.buckets {
            println!("{:<20} {:>6} {:>6} {:>8.4}", name, r.n, r.found, r.rate());
        }
        println!(
            "detections: {} right, {} false (precision {:.4}); plates >= 24 px: {} right, {} false (precision {:.4})",
            self.true_detections,
            self.false_detections,
            precision(self.true_detections, self.false_detections),
            self.true_24,
            self.false_24,
            precision(self.true_24, self.false_24)
        );
        println!(
            "detections of plates not scored (cut by the frame's edge or half hidden, in the corrections file): \
             {}, {} of them read as a valid plate (a guess)",
            self.ignored_found.len(),
            self.ignored_read()
        );
        println!(
            "plates inside a vehicle the vehicle detector found: {}/{}, found by the plate detector {} ({:.4})",
            self.in_vehicles.n,
            self.scored.n,
            self.in_vehicles.found,
            self.in_vehicles.rate()
        );
        println!("plates found that read as a valid Vietnamese plate: {}/{}", self.plates_read, self.true_detections);
        println!(
            "valid reads against the plate texts read by eye: {} right, {} another plate, {} of plates nobody can \
             read, {} not yet checked; {} scored plates are legible, {:.4} of them read right",
            self.read_right,
            self.read_wrong,
            self.read_guessed,
            self.read_unchecked,
            self.legible,
            self.read_right as f64 / self.legible.max(1) as f64
        );
        let mean = self.millis.iter().sum::<f64>() / self.millis.len().max(1) as f64;
        let square = self.buckets.get("square >= 24 px").copied().unwrap_or_default();
        let speckless = self.buckets.get(SPECKLESS).copied().unwrap_or_default();
        println!(
            "plate_recall={:.4} plate_precision={:.4} plates={} ms_per_image={:.1} plate_recall_24={:.4} \
             plate_precision_24={:.4} plates_24={} square_recall_24={:.4} rider_vehicle_recall={:.4} \
             plate_recall_in_vehicles={:.4} plates_read={} plate_ms_per_vehicle={:.2} plates_read_right={} \
             plates_read_wrong={} plates_read_unchecked={} legible_plates={} legible_read_rate={:.4} plate_recall_speckless={:.4} \
             plates_speckless={} plates_not_scored_found={} plates_not_scored_read={} {more_fields}",
            self.scored.rate(),
            precision(self.true_detections, self.false_detections),
            self.scored.n,
            mean,
            self.scored_24.rate(),
            precision(self.true_24, self.false_24),
            self.scored_24.n,
            square.rate(),
            self.riders.rate(),
            self.in_vehicles.rate(),
            self.plates_read,
            self.plate_detector_seconds * 1000.0 / self.crops.max(1) as f64,
            self.read_right,
            self.read_wrong + self.read_guessed,
            self.read_unchecked,
            self.legible,
            self.read_right as f64 / self.legible.max(1) as f64,
            speckless.rate(),
            speckless.n,
            self.ignored_found.len(),
            self.ignored_read(),
        );
    }

    /// Detections of plates not scored that read as a valid plate (guesses).
    fn ignored_read(&self) -> usize {
        self.ignored_found.iter().filter(|(.., read)| read.is_some()).count()
    }

    /// Writes the missed plates, the false detections and the detections of plates not scored as TSV, for
    /// checking by eye.
    pub fn write_errors(&self, path: &Path) -> anyhow::Result<()> {
        let mut out = String::from("frame\tkind\tx1\ty1\tx2\ty2\tscore\tread\n");
        for (name, b) in &self.missed {
            out.push_str(&format!("{name}\tmissed\t{:.0}\t{:.0}\t{:.0}\t{:.0}\t\t\n", b.x1, b.y1, b.x2, b.y2));
        }
        for (name, b, s) in &self.false_found {
            out.push_str(&format!("{name}\tfalse\t{:.0}\t{:.0}\t{:.0}\t{:.0}\t{s:.3}\t\n", b.x1, b.y1, b.x2, b.y2));
        }
        for (name, b, s, read) in &self.ignored_found {
            let read = read.as_deref().unwrap_or("");
            out.push_str(&format!(
                "{name}\tnot_scored\t{:.0}\t{:.0}\t{:.0}\t{:.0}\t{s:.3}\t{read}\n",
                b.x1, b.y1, b.x2, b.y2
            ));
        }
        std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
    }

    /// Writes [`Self::plate_reads`] as TSV: `frame x1 y1 x2 y2 found read raw label why` (label: the text read
    /// by eye, `?` for cannot be read, empty where nobody has looked; why: the reason a read is unreadable).
    pub fn write_plate_reads(&self, path: &Path) -> anyhow::Result<()> {
        let mut out = String::from("frame\tx1\ty1\tx2\ty2\tfound\tread\traw\tlabel\twhy\n");
        for r in &self.plate_reads {
            let label = match &r.label {
                Some(Some(text)) => text.as_str(),
                Some(None) => "?",
                None => "",
            };
            out.push_str(&format!(
                "{}\t{:.1}\t{:.1}\t{:.1}\t{:.1}\t{}\t{}\t{}\t{label}\t{}\n",
                r.frame,
                r.bbox.x1,
                r.bbox.y1,
                r.bbox.x2,
                r.bbox.y2,
                u8::from(r.found),
                r.read.as_deref().unwrap_or("-"),
                r.raw.replace(['\t', '\n'], " "),
                r.why.replace(['\t', '\n'], " "),
            ));
        }
        std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
    }

    /// Writes the upright picture the reader got of each plate found into `dir`, named
    /// `<frame>_<x1>_<y1>.png` after the plate's labelled box (the rows of [`Self::write_plate_reads`]).
    pub fn write_plate_pictures(&self, dir: &Path) -> anyhow::Result<usize> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut written = 0;
        for r in &self.plate_reads {
            let Some(picture) = &r.picture else { continue };
            let path = dir.join(format!("{}_{:.0}_{:.0}.png", r.frame, r.bbox.x1, r.bbox.y1));
            picture.save(&path).with_context(|| format!("writing {}", path.display()))?;
            written += 1;
        }
        Ok(written)
    }

    /// Writes [`Self::checked_riders`] as `frame x1 y1 x2 y2` (tab-separated, frame pixels), frames in order.
    pub fn write_checked_riders(&self, path: &Path) -> anyhow::Result<()> {
        let mut out = String::from(
            "# The motorcyclist boxes the agent judges for helmets on each frame (detected, rider gate passed, top \
             moved to the highest rider: te_infer::head_box), frame pixels.\n# Written by `edge-agent eval \
             --checked-riders`; it depends on the vehicle and motorcyclist detectors: write it again when they \
             change. Read by models/helmet_classifier/train.py --detected.\nframe\tx1\ty1\tx2\ty2\n",
        );
        let mut frames: Vec<_> = self.checked_riders.iter().collect();
        frames.sort_by(|a, b| a.0.cmp(b.0));
        for (name, boxes) in frames {
            for b in boxes {
                out.push_str(&format!("{name}\t{:.1}\t{:.1}\t{:.1}\t{:.1}\n", b.x1, b.y1, b.x2, b.y2));
            }
        }
        std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
    }
}

/// Picture files the eval reads: JPEG and PNG, by name (their content decides how they are decoded).
fn is_image(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| crate::tools::eval::crops::IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// True for a folder of photos with no labels (like vn_scenes).
pub fn is_photo_folder(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    let names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.iter().any(|p| is_image(p)) && !names.iter().any(|p| p.extension().is_some_and(|e| e == "txt" || e == "tsv"))
}

/// How the plates a person boxed and read in photos (the plate texts file) fared along the agent's path.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PhotoScore {
    /// Plates a person can read whole.
    pub legible: usize,
    /// Of those, found (a detection overlapping at IoU >= 0.5).
    pub found: usize,
    /// Of those, read as the person read them.
    pub read_right: usize,
    /// Of those, read as another valid plate: the worst outcome.
    pub read_wrong: usize,
    /// Plates no person can read whole that the agent gave a valid read all the same.
    pub guesses: usize,
    /// The legible plates not found, and those read wrong: `text` or `text read as other`.
    pub misses: Vec<String>,
}

impl PhotoScore {
    /// Scores one photo: `labelled` (box, compact text or `None` for illegible), `found` (box, compact valid
    /// read or `None`). A detection counts for the labelled plate it overlaps most.
    pub fn of(labelled: &[(BBox, Option<String>)], found: &[(BBox, Option<String>)]) -> Self {
        let mut score = Self::default();
        for (gt, text) in labelled {
            let best = found
                .iter()
                .map(|(b, read)| (b.iou(gt), read))
                .filter(|(iou, _)| *iou >= MATCH_IOU)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, read)| read.as_ref().map(|r| te_plate::compact(r)));
            match (text, best) {
                (Some(text), None) => score.misses.push(format!("{text} not found")),
                (Some(text), Some(read)) => {
                    score.found += 1;
                    match read {
                        Some(read) if read == *text => score.read_right += 1,
                        Some(read) => {
                            score.read_wrong += 1;
                            score.misses.push(format!("{text} read as {read}"));
                        }
                        None => {}
                    }
                }
                (None, Some(Some(_))) => score.guesses += 1,
                (None, _) => {}
            }
            score.legible += usize::from(text.is_some());
        }
        score
    }

    fn add(&mut self, other: Self) {
        self.legible += other.legible;
        self.found += other.found;
        self.read_right += other.read_right;
        self.read_wrong += other.read_wrong;
        self.guesses += other.guesses;
        self.misses.extend(other.misses);
    }
}

/// Finds and reads the plates of every photo in `dir` along the agent's path and, with `draw`, writes each
/// photo annotated (vehicles thin, plates thick: green read, orange unreadable, with the text or the reason)
/// for checking by eye. With `texts` (the plates a person boxed and read in these photos) it also scores them.
/// The last line is `images= vehicles= plates_found= plates_read= ms_per_image=`, then, with `texts`,
/// `legible_plates= legible_found= legible_read_right= legible_read_wrong= illegible_guesses=`.
pub fn read_photos(
    dir: &Path,
    vehicles: &mut VehicleDetector,
    recognizer: &mut PlateRecognizer,
    min_vehicle_width: f32,
    draw: Option<(&Path, &crate::pipeline::overview::DataBarFont)>,
    texts: Option<&PlateTexts>,
) -> anyhow::Result<()> {
    let mut photos: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_image(p))
        .collect();
    photos.sort();
    if let Some((out, _)) = draw {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    }
    let (mut n_vehicles, mut found, mut read_ok, mut millis) = (0, 0, 0, 0.0);
    let mut scored = PhotoScore::default();
    for (number, path) in photos.iter().enumerate() {
        let frame = load_frame(path, number as u64)?;
        let started = Instant::now();
        let search = search_frame(&frame, vehicles, recognizer, min_vehicle_width)?;
        let mut reads = Vec::new();
        for (plate, crop) in &search.plates {
            reads.push(read_found(recognizer, plate, &search.crops[*crop], &search.searched[*crop])?);
        }
        millis += started.elapsed().as_secs_f64() * 1000.0;
        n_vehicles += search.vehicles.len();
        found += search.plates.len();
        read_ok += reads.iter().flatten().filter(|r| r.text.is_some()).count();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let shown: Vec<String> = search
            .plates
            .iter()
            .zip(&reads)
            .map(|((p, _), r)| match r {
                Some(r) => match &r.text {
                    Some(t) => format!("{t} ({:.2}, {:.0} px)", r.confidence, p.bbox.width()),
                    None => format!(
                        "unreadable [{}] ({:.0} px; {})",
                        r.raw,
                        p.bbox.width(),
                        r.unreadable_reason.as_deref().unwrap_or("no reason given")
                    ),
                },
                None => {
                    format!("not read: cut off by its vehicle's crop or degenerate corners ({:.0} px)", p.bbox.width())
                }
            })
            .collect();
        println!("{name}: vehicles {}, plates {}: {}", search.vehicles.len(), search.plates.len(), shown.join(", "));
        if let Some(labelled) = texts.map(|t| t.get(&name).map_or(&[][..], Vec::as_slice)) {
            let detected: Vec<(BBox, Option<String>)> = search
                .plates
                .iter()
                .zip(&reads)
                .map(|((p, _), r)| (p.bbox, r.as_ref().and_then(|r| r.text.clone())))
                .collect();
            let score = PhotoScore::of(labelled, &detected);
            if !score.misses.is_empty() {
                println!("{name}: legible plates missed or read wrong: {}", score.misses.join(", "));
            }
            scored.add(score);
        }
        if let Some((out, font)) = draw {
            let mut rgb = frame.rgb().into_owned();
            let size = (frame.width, frame.height);
            for v in &search.vehicles {
                crate::pipeline::overview::draw_rect(&mut rgb, size, &v.bbox, [80, 160, 255], 2);
            }
            for ((p, _), r) in search.plates.iter().zip(&reads) {
                let text = r.as_ref().and_then(|r| r.text.clone());
                let colour = if text.is_some() { [40, 220, 40] } else { [255, 150, 0] };
                crate::pipeline::overview::draw_rect(&mut rgb, size, &p.bbox, colour, 3);
                let label = text.unwrap_or_else(|| format!("? {}", r.as_ref().map_or("", |r| r.raw.as_str())));
                let bar = 22.0;
                let top = (p.bbox.y1 - bar - 2.0).max(0.0);
                let right = (p.bbox.x1 + 12.0 * label.chars().count() as f32 + 16.0).min(frame.width as f32 - 1.0);
                let bg = BBox { x1: p.bbox.x1.max(0.0), y1: top, x2: right, y2: top + bar };
                crate::pipeline::overview::fill_rect(&mut rgb, size, &bg, [20, 20, 20]);
                crate::pipeline::overview::draw_text(
                    &mut rgb,
                    size,
                    (bg.x1 as u32, bg.x2 as u32),
                    (bg.y1 as u32, bar as u32),
                    &label,
                    &font.0,
                );
            }
            let target = out.join(Path::new(&name).with_extension("jpg"));
            image::RgbImage::from_raw(frame.width, frame.height, rgb)
                .context("annotated picture")?
                .save(&target)
                .with_context(|| format!("writing {}", target.display()))?;
        }
    }
    let by_eye = match texts {
        Some(_) => format!(
            " legible_plates={} legible_found={} legible_read_right={} legible_read_wrong={} illegible_guesses={}",
            scored.legible, scored.found, scored.read_right, scored.read_wrong, scored.guesses
        ),
        None => String::new(),
    };
    println!(
        "images={} vehicles={n_vehicles} plates_found={found} plates_read={read_ok} ms_per_image={:.1}{by_eye}",
        photos.len(),
        millis / photos.len().max(1) as f64
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn riders_labels_load_and_a_clip_list_selects_frames() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("images")).expect("mkdir");
        std::fs::create_dir(dir.path().join("labels")).expect("mkdir");
        std::fs::write(dir.path().join("labels/a-1.txt"), "1 0.5 0.5 0.1 0.05\n2 0.5 0.4 0.3 0.6\n").expect("write");
        std::fs::write(dir.path().join("labels/b-1.txt"), "1 0.2 0.2 0.1 0.05\n").expect("write");
        std::fs::write(dir.path().join("clips.tsv"), "frame\tclip\na-1\ta\nb-1\tb\n").expect("write");
        std::fs::write(dir.path().join("val.txt"), "# validation\nb\n").expect("write");
        assert!(is_riders_layout(dir.path()));
        assert_eq!(load(dir.path(), None).expect("loads").len(), 2);
        let only = load(dir.path(), Some(&dir.path().join("val.txt"))).expect("loads");
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].name, "b-1");
        let mut frames = load(dir.path(), None).expect("loads");
        std::fs::write(
            dir.path().join("fix.tsv"),
            "frame\taction\tx1\ty1\tx2\ty2\treason\nb-1\tadd_plate\t1\t2\t30\t20\tseen\n\
             b-1\tignore_plate\t40\t2\t60\t20\tcut by the frame\n",
        )
        .expect("write");
        assert_eq!(apply_corrections(&mut frames, &dir.path().join("fix.tsv")).expect("applies"), (1, 1));
        assert_eq!(frames[1].added_plates, vec![BBox { x1: 1.0, y1: 2.0, x2: 30.0, y2: 20.0 }]);
        assert_eq!(frames[1].ignored_plates, vec![BBox { x1: 40.0, y1: 2.0, x2: 60.0, y2: 20.0 }]);
        std::fs::write(dir.path().join("fix.tsv"), "b-1\tdrop_plate\t1\t2\t30\t20\tno such action\n").expect("write");
        assert!(apply_corrections(&mut frames, &dir.path().join("fix.tsv")).is_err(), "an unknown action is refused");
        std::fs::write(dir.path().join("fix.tsv"), "b-1\tadd_plate\t1\t2\t30\t20\t\n").expect("write");
        assert!(apply_corrections(&mut frames, &dir.path().join("fix.tsv")).is_err(), "a correction needs its reason");
        std::fs::write(dir.path().join("labels/c-1.txt"), "1 0.2 NaN 0.1 0.05\n").expect("write");
        assert!(load(dir.path(), None).is_err(), "a NaN coordinate is refused");
    }

    #[test]
    fn plate_texts_load_as_compact_plates_or_illegible_and_a_bad_row_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("texts.tsv");
        std::fs::write(
            &path,
            "# read by eye\nframe\tx1\ty1\tx2\ty2\ttext\tnote\na-1\t1\t2\t30\t20\t18-B2/320.82\tread\na-1\t40\t2\t60\t20\t?\tblurred\n",
        )
        .expect("write");
        let texts = load_plate_texts(&path).expect("loads");
        assert_eq!(texts["a-1"].len(), 2);
        assert_eq!(texts["a-1"][0].1.as_deref(), Some("18B232082"));
        assert_eq!(texts["a-1"][1].1, None);
        for bad in ["a-1\t1\t2\t30\t20\t18-B2/320.8X\tx\n", "a-1\t1\t2\tNaN\t20\t?\tx\n", "a-1\t1\t2\t30\n"] {
            std::fs::write(&path, bad).expect("write");
            assert!(load_plate_texts(&path).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_photo_scores_legible_plates_found_read_right_and_wrong_and_guesses_on_illegible_ones() {
        let b = |x: f32| BBox { x1: x, y1: 10.0, x2: x + 40.0, y2: 40.0 };
        let labelled = vec![
            (b(0.0), Some("59G163188".to_string())),
            (b(100.0), Some("59U116124".to_string())),
            (b(200.0), Some("30A33918".to_string())),
            (b(300.0), None),
            (b(400.0), Some("29B125662".to_string())),
        ];
        let found = vec![
            (b(2.0), Some("59-G1/631.88".to_string())),
            (b(101.0), Some("59-U1/161.21".to_string())),
            (b(301.0), Some("29-L1/0702".to_string())),
            (b(400.0), None),
            (b(500.0), Some("51A-999.99".to_string())),
        ];
        let score = PhotoScore::of(&labelled, &found);
        assert_eq!((score.legible, score.found, score.read_right, score.read_wrong, score.guesses), (4, 3, 1, 1, 1));
        assert_eq!(score.misses, vec!["59U116124 read as 59U116121", "30A33918 not found"]);
        assert_eq!(PhotoScore::of(&labelled, &[]).found, 0, "nothing found, nothing matched");
    }

    #[test]
    fn the_street_photos_plate_texts_file_loads_with_every_legible_plate_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/labels/vn_scenes.plate_texts.tsv");
        let texts = load_plate_texts(&path).expect("every row parses and every text is a Vietnamese plate");
        let rows: Vec<&(BBox, Option<String>)> = texts.values().flatten().collect();
        assert_eq!((rows.len(), rows.iter().filter(|(_, t)| t.is_some()).count()), (29, 21));
        assert_eq!(texts["1.jpg"].iter().filter_map(|(_, t)| t.as_deref()).next(), Some("59G163188"));
    }

    #[test]
    fn plates_fall_into_width_buckets() {
        assert_eq!(width_bucket(20.0), "width 16-24 px");
        assert_eq!(width_bucket(24.0), "width 24-48 px");
        assert_eq!(width_bucket(60.0), "width > 48 px");
    }
}
