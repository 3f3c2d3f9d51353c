//! `edge-agent eval`: measures plate recognition on a labelled dataset with the agent's own code.
//!
//! Two label layouts:
//! - `gt.tsv` + `images/` (like ../shared/data/vn_plates): `name<TAB>text[<TAB>...]`, name = image file stem,
//!   rows of the plate joined by `/`. Every image is one plate (a crop), read by `read_plate_picture`.
//! - openalpr benchmarks: `*.txt` files anywhere below the folder, each line `file x y w h PLATE`; images are
//!   scenes, read by `read_plates` (detector first); the read whose box best covers the labelled box counts.
//!
//! Label corrections (checked by eye; the shipped labels were machine-made) come from a TSV
//! `name<TAB>label<TAB>corrected<TAB>reason`; `corrected` = `-` takes an image out (illegible, not a plate).
//! "exact" compares characters only (separators removed, upper case); "char" is 1 - edit distance / length,
//! summed over the dataset. Time is recognition only (detector + reader + grammar), not JPEG decoding.

use anyhow::{bail, Context};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;
use te_infer::{PlateFormat, PlateRecognizer, RgbView};
use te_types::{BBox, PlateLayout};

/// One labelled plate.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub image: PathBuf,
    /// Characters only, upper case.
    pub label: String,
    /// Per-category lines of the report this sample counts in.
    pub categories: Vec<String>,
    /// Labelled plate box (scene datasets).
    pub plate_box: Option<BBox>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetKind {
    GtTsv,
    OpenAlpr,
}

/// Finds out how a dataset folder is laid out.
pub fn detect_kind(dir: &Path) -> anyhow::Result<DatasetKind> {
    if dir.join("gt.tsv").is_file() {
        return Ok(DatasetKind::GtTsv);
    }
    if !label_files(dir)?.is_empty() {
        return Ok(DatasetKind::OpenAlpr);
    }
    bail!("{} holds neither gt.tsv (+ images/) nor openalpr *.txt label files", dir.display())
}

fn label_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "txt") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The letters of a sample name without its numbering: `3xemay1028` -> `xemay`.
fn name_group(name: &str) -> String {
    let group = name.trim_start_matches(|c: char| c.is_ascii_digit()).trim_end_matches(|c: char| c.is_ascii_digit());
    if group.is_empty() {
        "other".into()
    } else {
        group.to_string()
    }
}

pub fn load_gt_tsv(dir: &Path) -> anyhow::Result<Vec<Sample>> {
    let path = dir.join("gt.tsv");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        if n == 0 && fields.first() == Some(&"name") {
            continue; // header
        }
        if line.trim().is_empty() {
            continue;
        }
        let [name, label, ..] = fields[..] else {
            bail!("{}:{}: expected `name<TAB>text`, got {line:?}", path.display(), n + 1);
        };
        let image = IMAGE_EXTENSIONS
            .iter()
            .map(|ext| dir.join("images").join(format!("{name}.{ext}")))
            .find(|p| p.is_file())
            .unwrap_or_else(|| dir.join("images").join(format!("{name}.jpg")));
        let layout = if label.contains('/') { PlateLayout::TwoLine } else { PlateLayout::OneLine };
        samples.push(Sample {
            name: name.to_string(),
            image,
            label: te_plate::compact(label),
            categories: vec![format!("layout {}", layout.as_str()), format!("group {}", name_group(name))],
            plate_box: None,
        });
    }
    Ok(samples)
}

pub fn load_openalpr(dir: &Path) -> anyhow::Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for path in label_files(dir)? {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let folder = path.parent().unwrap_or(dir);
        let group = folder.strip_prefix(dir).ok().map(|p| p.display().to_string()).filter(|g| !g.is_empty());
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let parsed = (fields.len() >= 6)
                .then(|| -> Option<(f32, f32, f32, f32)> {
                    Some((
                        fields[1].parse().ok()?,
                        fields[2].parse().ok()?,
                        fields[3].parse().ok()?,
                        fields[4].parse().ok()?,
                    ))
                })
                .flatten();
            let Some((x, y, w, h)) = parsed else {
                bail!("{}:{}: expected `file x y w h PLATE`, got {line:?}", path.display(), n + 1);
            };
            samples.push(Sample {
                name: fields[0].to_string(),
                image: folder.join(fields[0]),
                label: te_plate::compact(&fields[5..].concat()),
                categories: vec![format!("group {}", group.clone().unwrap_or_else(|| "all".into()))],
                plate_box: Some(BBox { x1: x, y1: y, x2: x + w, y2: y + h }),
            });
        }
    }
    Ok(samples)
}

/// Corrections by sample name: `Some(label)` replaces the label, `None` takes the sample out.
pub fn load_corrections(path: &Path) -> anyhow::Result<HashMap<String, Option<String>>> {
    let mut out = HashMap::new();
    for (n, fields) in super::tsv_rows(path, "name")? {
        let [name, _old, new, reason, ..] = &fields[..] else {
            bail!("{}:{n}: expected `name<TAB>label<TAB>corrected<TAB>reason`", path.display());
        };
        if reason.trim().is_empty() {
            bail!("{}:{n}: a correction needs its reason", path.display());
        }
        out.insert(name.to_string(), (new != "-").then(|| te_plate::compact(new)));
    }
    Ok(out)
}

/// The picture files a dataset's names are looked up as, in this order.
pub(crate) const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// An image file decoded by its content, not its extension: some dataset files are PNGs named .jpg.
pub(crate) fn decode_image(path: &Path) -> Result<image::DynamicImage, image::ImageError> {
    image::ImageReader::open(path).and_then(|r| r.with_guessed_format()).map_err(image::ImageError::from)?.decode()
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != b[j])).min(row[j] + 1).min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    n: usize,
    exact: usize,
    chars_right: usize,
    chars: usize,
}

impl Tally {
    fn add(&mut self, label: &str, read: &str) {
        let len = label.chars().count();
        self.n += 1;
        self.exact += usize::from(label == read);
        self.chars += len;
        self.chars_right += len.saturating_sub(edit_distance(label, read));
    }
    fn exact(&self) -> f64 {
        self.exact as f64 / self.n.max(1) as f64
    }
    fn char(&self) -> f64 {
        self.chars_right as f64 / self.chars.max(1) as f64
    }
}

/// What happened to one sample, for the error list.
#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    pub label: String,
    pub read: String,
    pub raw: String,
    /// Why the read is unreadable, when it is.
    pub why: String,
}

pub struct EvalReport {
    overall: Tally,
    categories: BTreeMap<String, Tally>,
    pub mismatches: Vec<Outcome>,
    millis: Vec<f64>,
    not_scored: Vec<(String, String)>,
    corrected: usize,
}

/// Runs recognition on every sample and scores it.
pub fn evaluate(
    recognizer: &mut PlateRecognizer,
    samples: &[Sample],
    format: PlateFormat,
    corrections: &HashMap<String, Option<String>>,
    blur: Option<f32>,
) -> anyhow::Result<EvalReport> {
    let mut report = EvalReport {
        overall: Tally::default(),
        categories: BTreeMap::new(),
        mismatches: Vec::new(),
        millis: Vec::new(),
        not_scored: Vec::new(),
        corrected: 0,
    };
    for sample in samples {
        let label = match corrections.get(&sample.name) {
            Some(Some(corrected)) => {
                report.corrected += 1;
                corrected.clone()
            }
            Some(None) => {
                report.not_scored.push((sample.name.clone(), "taken out by a correction".into()));
                continue;
            }
            None => sample.label.clone(),
        };
        let valid_vn = te_plate::parse(&[&label], None).is_ok_and(|p| p.compact() == label);
        if format == PlateFormat::Vietnam && !valid_vn {
            // A label that is no valid Vietnamese plate cannot be matched by a reader that only outputs valid
            // ones: foreign plates in the set, or label errors not yet corrected.
            report.not_scored.push((sample.name.clone(), format!("label {label:?} is not a Vietnamese plate")));
            continue;
        }
        let decoded = decode_image(&sample.image);
        let picture = match decoded {
            Ok(p) => match blur {
                Some(sigma) => image::imageops::blur(&p.to_rgb8(), sigma),
                None => p.to_rgb8(),
            },
            Err(e) => {
                eprintln!("warning: {}: cannot read image: {e}; counted as a miss", sample.image.display());
                report.score(sample, &label, "", "", "the image cannot be decoded");
                continue;
            }
        };
        let view = RgbView::of_image(&picture);
        let started = Instant::now();
        let read = match sample.plate_box {
            None => Some(recognizer.read_plate_picture(view)?),
            Some(gt) => recognizer
                .read_plates(view)?
                .into_iter()
                .max_by(|a, b| a.bbox().iou(&gt).total_cmp(&b.bbox().iou(&gt)))
                .filter(|r| r.bbox().iou(&gt) > 0.1),
        };
        report.millis.push(started.elapsed().as_secs_f64() * 1000.0);
        let (text, raw, why) = match &read {
            Some(r) => {
                (r.compact().unwrap_or_default(), r.raw.clone(), r.unreadable_reason.clone().unwrap_or_default())
            }
            None => (String::new(), "(no plate found)".into(), String::new()),
        };
        report.score(sample, &label, &text, &raw, &why);
    }
    Ok(report)
}

impl EvalReport {
    fn score(&mut self, sample: &Sample, label: &str, read: &str, raw: &str, why: &str) {
        self.overall.add(label, read);
        for category in &sample.categories {
            self.categories.entry(category.clone()).or_default().add(label, read);
        }
        if label != read {
            self.mismatches.push(Outcome {
                name: sample.name.clone(),
                label: label.to_string(),
                read: read.to_string(),
                raw: raw.to_string(),
                why: why.to_string(),
            });
        }
    }

    fn percentile(&self, p: f64) -> f64 {
        let mut v = self.millis.clone();
        v.sort_by(f64::total_cmp);
        v.get(((v.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0)
    }

    /// Prints the report; the LAST line is the contract
    /// `exact=<f> char=<f> n=<count> ms_per_image=<ms> read_ms_per_plate=<ms>` (the reader alone, per run).
    pub fn print(&self, samples: usize, read_ms_per_plate: f64) {
        println!(
            "images {samples}, scored {}, labels corrected {}, not scored {}",
            self.overall.n,
            self.corrected,
            self.not_scored.len()
        );
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, why) in &self.not_scored {
            let kind = if why.starts_with("label") { "label is not a Vietnamese plate" } else { why.as_str() };
            *reasons.entry(kind).or_default() += 1;
        }
        for (why, n) in reasons {
            println!("  not scored: {n:>5}  {why}");
        }
        println!("{:<28} {:>6} {:>8} {:>8}", "category", "n", "exact", "char");
        for (name, t) in &self.categories {
            println!("{:<28} {:>6} {:>8.4} {:>8.4}", name, t.n, t.exact(), t.char());
        }
        let mean = self.millis.iter().sum::<f64>() / self.millis.len().max(1) as f64;
        println!(
            "time per image: mean {mean:.1} ms, p50 {:.1} ms, p95 {:.1} ms",
            self.percentile(0.5),
            self.percentile(0.95)
        );
        println!(
            "exact={:.4} char={:.4} n={} ms_per_image={:.1} read_ms_per_plate={:.2}",
            self.overall.exact(),
            self.overall.char(),
            self.overall.n,
            mean,
            read_ms_per_plate
        );
    }

    /// Writes every mismatch as TSV (name, label, read, raw rows, why unreadable) for checking by eye.
    pub fn write_mismatches(&self, path: &Path) -> anyhow::Result<()> {
        let mut out = String::from("name\tlabel\tread\traw\twhy\n");
        for m in &self.mismatches {
            out.push_str(&format!("{}\t{}\t{}\t{}\t{}\n", m.name, m.label, m.read, m.raw, m.why));
        }
        std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("59U172979", "59U172979"), 0);
        assert_eq!(edit_distance("59U172979", "59U772979"), 1);
        assert_eq!(edit_distance("ABC", ""), 3);
        assert_eq!(edit_distance("ABC", "ABXC"), 1);
    }

    #[test]
    fn char_accuracy_never_goes_below_zero_for_a_long_wrong_read() {
        let mut t = Tally::default();
        t.add("AB", "XXXXXX");
        assert_eq!((t.exact(), t.char()), (0.0, 0.0));
    }

    #[test]
    fn names_group_by_their_letters() {
        assert_eq!(name_group("3xemay1028"), "xemay");
        assert_eq!(name_group("iwt236"), "iwt");
        assert_eq!(name_group("1234"), "other");
    }

    #[test]
    fn gt_tsv_and_openalpr_labels_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("gt.tsv"), "name\ttext\n1xemay5\t59-U1/729.79\n").expect("write");
        let s = load_gt_tsv(dir.path()).expect("loads");
        assert_eq!(s[0].label, "59U172979");
        assert_eq!(s[0].categories, vec!["layout two_line".to_string(), "group xemay".to_string()]);
        let alpr = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(alpr.path().join("br")).expect("mkdir");
        std::fs::write(alpr.path().join("br/a.txt"), "a.jpg 10 20 30 40 ABC1234\n").expect("write");
        assert_eq!(detect_kind(alpr.path()).expect("kind"), DatasetKind::OpenAlpr);
        let s = load_openalpr(alpr.path()).expect("loads");
        assert_eq!(s[0].plate_box, Some(BBox { x1: 10.0, y1: 20.0, x2: 40.0, y2: 60.0 }));
        assert_eq!(s[0].categories, vec!["group br".to_string()]);
        std::fs::write(alpr.path().join("br/b.txt"), "b.jpg 10 x 30 40 ABC\n").expect("write");
        assert!(load_openalpr(alpr.path()).is_err());
    }
}
