//! `edge-agent eval`: measures the models along the agent's own path on labelled datasets.
//! - `crops`: plate crops (`gt.tsv` + `images/`, or openalpr labels): the reader and the grammar.
//! - `scenes`: the vn_riders layout (plate detection on whole frames) and folders of unlabelled photos.
//! - `helmets`: the helmet classifier on the labelled motorcyclists of the vn_riders layout.

pub mod crops;
pub mod helmets;
pub mod scenes;

use crate::boot::{load_onnx_runtime, project_file};
use crate::cli::EvalArgs;
use crate::config::AgentConfig;
use crate::pipeline::overview;
use anyhow::Context;
use std::path::Path;

/// A list of names, one per line (blank lines and `#` comments skipped).
pub fn load_name_list(path: &Path) -> anyhow::Result<std::collections::HashSet<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect())
}

/// The data rows of a tab-separated labels file as (line number, fields): `#` comments, blank lines and the
/// header row (whose first field is `header`) skipped.
pub fn tsv_rows(path: &Path, header: &str) -> anyhow::Result<Vec<(usize, Vec<String>)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty() && l.split('\t').next() != Some(header))
        .map(|(n, l)| (n + 1, l.split('\t').map(String::from).collect()))
        .collect())
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let config = args.config.load()?;
    if !(0.0..=1.0).contains(&args.plate_threshold) {
        anyhow::bail!("--plate-threshold must be in [0, 1], got {}", args.plate_threshold);
    }
    if scenes::is_riders_layout(&args.dataset) || scenes::is_photo_folder(&args.dataset) {
        return run_detection_eval(&config, &args);
    }
    let kind = crops::detect_kind(&args.dataset)?;
    let mut samples = match kind {
        crops::DatasetKind::GtTsv => crops::load_gt_tsv(&args.dataset)?,
        crops::DatasetKind::OpenAlpr => crops::load_openalpr(&args.dataset)?,
    };
    if let Some(path) = &args.only_crops {
        let wanted = load_name_list(path)?;
        samples.retain(|s| wanted.contains(&s.name));
        println!(
            "only the {} crops of {} that the dataset holds ({} listed)",
            samples.len(),
            path.display(),
            wanted.len()
        );
    }
    let format = match (args.plate_format.as_deref(), kind) {
        (Some("vn"), _) | (None, crops::DatasetKind::GtTsv) => te_infer::PlateFormat::Vietnam,
        _ => te_infer::PlateFormat::Latin,
    };
    let corrections_file = if args.no_corrections {
        None
    } else if let Some(path) = args.corrections {
        Some(path)
    } else {
        let name = args.dataset.canonicalize()?.file_name().map(|n| n.to_string_lossy().into_owned());
        name.and_then(|n| project_file(&format!("models/labels/{n}.corrections.tsv")))
    };
    let corrections = match &corrections_file {
        Some(path) => crops::load_corrections(path)?,
        None => Default::default(),
    };
    println!(
        "dataset {} ({:?}, {} plates), plate format {:?}, corrections {}",
        args.dataset.display(),
        kind,
        samples.len(),
        format,
        corrections_file.as_ref().map_or("none".into(), |p| format!("{} ({} entries)", p.display(), corrections.len()))
    );
    let ort = load_onnx_runtime(&config)?;
    let settings = te_infer::RecognizerSettings {
        detector: te_infer::PlateDetectorSettings {
            threads: args.threads,
            score_threshold: args.plate_threshold,
            ..Default::default()
        },
        reader: te_infer::PlateReaderSettings {
            threads: args.threads,
            format,
            second_opinion: !args.no_second_opinion,
        },
    };
    let mut recognizer = te_infer::PlateRecognizer::load(&ort, &config.model_dirs(), settings)?;
    if let Some(sigma) = args.blur {
        println!("every image blurred with Gaussian sigma {sigma} px before reading");
    }
    let report = crops::evaluate(&mut recognizer, &samples, format, &corrections, args.blur)?;
    if let Some(path) = &args.mismatches {
        report.write_mismatches(path)?;
        eprintln!("{} mismatches written to {}", report.mismatches.len(), path.display());
    }
    let (reading, reads) = recognizer.reader_clock();
    report.print(samples.len(), reading.as_secs_f64() * 1000.0 / reads.max(1) as f64);
    Ok(())
}

/// The plate texts read by eye in `models/labels/<name>.plate_texts.tsv`, unless `--no-corrections` or the team
/// has read none for that dataset.
fn plate_texts_by_eye(name: &str, no_corrections: bool) -> anyhow::Result<Option<scenes::PlateTexts>> {
    let Some(path) = project_file(&format!("models/labels/{name}.plate_texts.tsv")).filter(|_| !no_corrections) else {
        return Ok(None);
    };
    let texts = scenes::load_plate_texts(&path)?;
    println!("plate texts read by eye {}: {} plates", path.display(), texts.values().map(Vec::len).sum::<usize>());
    Ok(Some(texts))
}

fn run_detection_eval(config: &AgentConfig, args: &EvalArgs) -> anyhow::Result<()> {
    let photos_only = !scenes::is_riders_layout(&args.dataset);
    let mut frames = if photos_only { Vec::new() } else { scenes::load(&args.dataset, args.only_clips.as_deref())? };
    if !photos_only && !args.no_corrections {
        let default = || {
            let name = args.dataset.canonicalize().ok()?.file_name()?.to_string_lossy().into_owned();
            project_file(&format!("models/labels/{name}.corrections.tsv"))
        };
        if let Some(path) = args.corrections.clone().or_else(default) {
            let (added, ignored) = scenes::apply_corrections(&mut frames, &path)?;
            println!("label corrections {}: {added} plates added, {ignored} not scored", path.display());
        }
    }
    println!(
        "dataset {} ({}{}), vehicles >= {} px wide searched for plates",
        args.dataset.display(),
        if photos_only {
            "unlabelled photos".to_string()
        } else {
            format!("vn_riders layout, {} frames", frames.len())
        },
        args.only_clips.as_ref().map_or(String::new(), |p| format!(" of the clips in {}", p.display())),
        config.plates.min_vehicle_width
    );
    let ort = load_onnx_runtime(config)?;
    let vehicle_settings = config.detector.settings().with_threads(args.threads);
    let mut vehicles = te_infer::VehicleDetector::load(&ort, &config.model_dirs(), vehicle_settings)?;
    let settings = te_infer::RecognizerSettings {
        detector: te_infer::PlateDetectorSettings {
            threads: args.threads,
            score_threshold: args.plate_threshold,
            ..Default::default()
        },
        reader: te_infer::PlateReaderSettings {
            threads: args.threads,
            format: te_infer::PlateFormat::Vietnam,
            second_opinion: !args.no_second_opinion,
        },
    };
    let mut recognizer = te_infer::PlateRecognizer::load(&ort, &config.model_dirs(), settings)?;
    if photos_only {
        let font = match &args.draw {
            Some(_) => Some(overview::DataBarFont::load(Path::new(&config.evidence.data_bar_font))?),
            None => None,
        };
        let draw = args.draw.as_deref().zip(font.as_ref());
        let width = config.plates.min_vehicle_width;
        // The plates a person boxed and read in these photos, where the team has done so (vn_scenes).
        let folder = args.dataset.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let texts = plate_texts_by_eye(&folder, args.no_corrections)?;
        return scenes::read_photos(&args.dataset, &mut vehicles, &mut recognizer, width, draw, texts.as_ref());
    }
    let texts = plate_texts_by_eye("vn_riders", args.no_corrections)?.unwrap_or_default();
    let report = scenes::evaluate(&mut vehicles, &mut recognizer, &frames, &texts, config.plates.min_vehicle_width)?;
    if let Some(path) = &args.plate_reads {
        report.write_plate_reads(path)?;
        eprintln!("every scored plate and its read written to {}", path.display());
    }
    if let Some(dir) = &args.plate_pictures {
        let written = report.write_plate_pictures(dir)?;
        eprintln!("{written} plate pictures (as the reader got them) written to {}", dir.display());
    }
    if let Some(path) = &args.checked_riders {
        report.write_checked_riders(path)?;
        eprintln!("checked motorcyclist boxes written to {}", path.display());
    }
    if let Some(path) = &args.errors {
        report.write_errors(path)?;
        eprintln!("missed plates, false detections and detections of plates not scored written to {}", path.display());
    }
    if !(0.0..=1.0).contains(&args.helmet_threshold) {
        anyhow::bail!("--helmet-threshold must be in [0, 1], got {}", args.helmet_threshold);
    }
    let fixes = match project_file("models/labels/vn_riders.helmets.tsv").filter(|_| !args.no_corrections) {
        Some(path) => helmets::load_fixes(&path)?,
        None => Default::default(),
    };
    let mut helmets = te_infer::HelmetClassifier::load(&ort, &config.model_dirs(), args.threads)?;
    let helmet_report =
        helmets::evaluate(&mut helmets, &frames, &fixes, args.helmet_threshold, &report.checked_riders)?;
    helmet_report.print();
    report.print(&helmet_report.fields());
    Ok(())
}
