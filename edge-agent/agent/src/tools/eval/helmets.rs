//! `edge-agent eval` on the vn_riders layout, helmets: the helmet classifier on every labelled motorcyclist
//! box (class 2), scored as a no-helmet ticket would be.
//!
//! A box is bare-headed when no helmet box (class 0) is centred in its upper third, after the eye-checked
//! corrections of `models/labels/vn_riders.helmets.tsv` (`frame<TAB>rider<TAB>helmet|bare|exclude<TAB>reason`, rider =
//! the box's index among the frame's class-2 lines). Boxes narrower than 48 px, whose top touches the frame's top
//! (head cut off) or marked `exclude` (no head to judge) are not scored: the recipe leaves out the same ones.
//! A box the model scores below the threshold is "not fined", whether it is sure of a helmet or unsure.
//!
//! The same riders are also scored on the boxes the agent itself would judge: the detected motorcyclist that
//! overlaps the labelled box most (IoU >= 0.5) among those the pipeline's rider gate lets through. A labelled
//! rider with no such box is not fined. This is the figure a junction sees; the labelled-box figure is the
//! model's own.

use crate::tools::eval::scenes::RiderFrame;
use anyhow::{bail, Context};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;
use te_infer::{HelmetClassifier, RgbView};
use te_types::BBox;

const HELMET: u32 = 0;
const MOTORCYCLIST: u32 = 2;
/// Boxes narrower than this are not scored (the agent reads no vehicle narrower either).
const MIN_WIDTH: f32 = 48.0;

/// What the corrections file says of one motorcyclist box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelmetFix {
    /// A helmet is worn; the labels miss it.
    Helmet,
    /// No head to judge: not scored.
    Exclude,
    /// Bare-headed: the label's helmet box is on something that is no helmet (a cap).
    Bare,
}

/// Reads the helmet corrections: (frame, rider index) -> fix.
pub fn load_fixes(path: &Path) -> anyhow::Result<HashMap<(String, usize), HelmetFix>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut fixes = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() || line.starts_with("frame\t") {
            continue;
        }
        let f: Vec<&str> = line.splitn(4, '\t').collect();
        let fix = match f.get(2) {
            Some(&"helmet") => Some(HelmetFix::Helmet),
            Some(&"exclude") => Some(HelmetFix::Exclude),
            Some(&"bare") => Some(HelmetFix::Bare),
            _ => None,
        };
        match (f.first(), f.get(1).and_then(|r| r.parse::<usize>().ok()), fix, f.get(3)) {
            (Some(frame), Some(rider), Some(fix), Some(reason)) if !reason.trim().is_empty() => {
                fixes.insert((frame.to_string(), rider), fix);
            }
            _ => bail!("{}:{}: expected `frame<TAB>rider<TAB>helmet|bare|exclude<TAB>reason`", path.display(), n + 1),
        }
    }
    Ok(fixes)
}

/// The scored motorcyclist boxes of one frame: (box in pixels, bare-headed).
fn scored_riders(
    frame: &RiderFrame,
    width: f32,
    height: f32,
    fixes: &HashMap<(String, usize), HelmetFix>,
) -> Vec<(BBox, bool)> {
    let to_px = |b: &[f32; 4]| BBox::from_center(b[0] * width, b[1] * height, b[2] * width, b[3] * height);
    let helmets: Vec<BBox> = frame.labels.iter().filter(|(c, _)| *c == HELMET).map(|(_, b)| to_px(b)).collect();
    frame
        .labels
        .iter()
        .filter(|(c, _)| *c == MOTORCYCLIST)
        .enumerate()
        .filter_map(|(i, (_, b))| {
            let rider = to_px(b);
            let fix = fixes.get(&(frame.name.clone(), i)).copied();
            if fix == Some(HelmetFix::Exclude) || rider.width() < MIN_WIDTH || rider.y1 < 4.0 {
                return None;
            }
            let top_third = rider.y1 + rider.height() / 3.0;
            let helmeted = helmets.iter().any(|h| {
                let (cx, cy) = h.center();
                (rider.x1..=rider.x2).contains(&cx) && (rider.y1 - 10.0..=top_third).contains(&cy)
            });
            Some((rider, fix == Some(HelmetFix::Bare) || (!helmeted && fix != Some(HelmetFix::Helmet))))
        })
        .collect()
}

/// The helmet figures of one run.
#[derive(Debug, Default)]
pub struct HelmetReport {
    pub threshold: f32,
    riders: usize,
    bare: usize,
    fined_right: usize,
    fined_wrong: usize,
    seconds: f64,
    /// On the agent's own boxes: labelled riders with a matching checked box, fined rightly, fined wrongly.
    detected: usize,
    detected_right: usize,
    detected_wrong: usize,
    /// (frame, box, p_bare, bare-headed by the labels) of every wrong ticket and every bare-headed rider missed.
    pub mistakes: Vec<(String, BBox, f32, bool)>,
    /// The same on the agent's own boxes (the box is the detected one); wrong tickets only.
    pub detected_wrong_tickets: Vec<(String, BBox, f32)>,
}

impl HelmetReport {
    pub fn precision(&self) -> f64 {
        self.fined_right as f64 / (self.fined_right + self.fined_wrong).max(1) as f64
    }

    pub fn recall(&self) -> f64 {
        self.fined_right as f64 / self.bare.max(1) as f64
    }

    fn precision_detected(&self) -> f64 {
        self.detected_right as f64 / (self.detected_right + self.detected_wrong).max(1) as f64
    }

    fn recall_detected(&self) -> f64 {
        self.detected_right as f64 / self.bare.max(1) as f64
    }

    pub fn print(&self) {
        println!(
            "helmets: {} motorcyclists scored ({} bare-headed by the labels); at p_bare >= {:.2}: {} fined rightly, \
             {} wrongly (precision {:.4}, recall {:.4}); {:.2} ms per rider",
            self.riders,
            self.bare,
            self.threshold,
            self.fined_right,
            self.fined_wrong,
            self.precision(),
            self.recall(),
            self.ms_per_rider()
        );
        println!(
            "helmets on the agent's own boxes: {} of the {} riders have a checked motorcyclist box (IoU >= 0.5, \
             rider gate passed); {} fined rightly, {} wrongly (precision {:.4}, recall {:.4})",
            self.detected,
            self.riders,
            self.detected_right,
            self.detected_wrong,
            self.precision_detected(),
            self.recall_detected()
        );
        for (frame, b, p, bare) in &self.mistakes {
            let what = if *bare { "bare-headed, not fined" } else { "FINED WRONGLY" };
            println!("  {what}: {frame} [{:.0} {:.0} {:.0} {:.0}] p_bare {p:.3}", b.x1, b.y1, b.x2, b.y2);
        }
        for (frame, b, p) in &self.detected_wrong_tickets {
            println!(
                "  FINED WRONGLY on the agent's box: {frame} [{:.0} {:.0} {:.0} {:.0}] p_bare {p:.3}",
                b.x1, b.y1, b.x2, b.y2
            );
        }
    }

    /// The `key=value` fields this report adds to the eval's last line.
    pub fn fields(&self) -> String {
        format!(
            "no_helmet_precision={:.4} no_helmet_recall={:.4} riders={} helmet_ms_per_rider={:.2} \
             no_helmet_precision_detected={:.4} no_helmet_recall_detected={:.4} riders_detected={}",
            self.precision(),
            self.recall(),
            self.riders,
            self.ms_per_rider(),
            self.precision_detected(),
            self.recall_detected(),
            self.detected
        )
    }

    fn ms_per_rider(&self) -> f64 {
        self.seconds * 1000.0 / self.riders.max(1) as f64
    }
}

/// Scores the classifier on every scored motorcyclist box of `frames`, and on the agent's own box for each
/// (`checked`: frame name -> the motorcyclist boxes the pipeline would check).
pub fn evaluate(
    classifier: &mut HelmetClassifier,
    frames: &[RiderFrame],
    fixes: &HashMap<(String, usize), HelmetFix>,
    threshold: f32,
    checked: &HashMap<String, Vec<BBox>>,
) -> anyhow::Result<HelmetReport> {
    let mut report = HelmetReport { threshold, ..Default::default() };
    for frame in frames {
        let picture = crate::tools::eval::crops::decode_image(&frame.image)
            .with_context(|| format!("reading {}", frame.image.display()))?
            .into_rgb8();
        let view = RgbView::of_image(&picture);
        for (rider, bare) in scored_riders(frame, picture.width() as f32, picture.height() as f32, fixes) {
            let started = Instant::now();
            let Some(p) = classifier.p_bare(view, &rider)? else { continue };
            report.seconds += started.elapsed().as_secs_f64();
            report.riders += 1;
            report.bare += usize::from(bare);
            let fined = p >= threshold;
            report.fined_right += usize::from(fined && bare);
            report.fined_wrong += usize::from(fined && !bare);
            if fined != bare {
                report.mistakes.push((frame.name.clone(), rider, p, bare));
            }
            let own = checked.get(&frame.name).into_iter().flatten().filter(|b| b.iou(&rider) >= 0.5);
            let Some(own) = own.max_by(|a, b| a.iou(&rider).total_cmp(&b.iou(&rider))) else { continue };
            let Some(p) = classifier.p_bare(view, own)? else { continue };
            report.detected += 1;
            let fined = p >= threshold;
            report.detected_right += usize::from(fined && bare);
            report.detected_wrong += usize::from(fined && !bare);
            if fined && !bare {
                report.detected_wrong_tickets.push((frame.name.clone(), *own, p));
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn frame(labels: Vec<(u32, [f32; 4])>) -> RiderFrame {
        RiderFrame {
            name: "f".into(),
            image: PathBuf::new(),
            labels,
            added_plates: Vec::new(),
            ignored_plates: Vec::new(),
        }
    }

    #[test]
    fn a_rider_with_a_helmet_in_the_top_third_is_helmeted_and_one_without_is_bare_headed() {
        // Two riders 100 px wide on a 1000x1000 frame; a helmet on the first one's head.
        let f = frame(vec![
            (MOTORCYCLIST, [0.15, 0.3, 0.1, 0.3]),
            (HELMET, [0.15, 0.17, 0.04, 0.04]),
            (MOTORCYCLIST, [0.5, 0.3, 0.1, 0.3]),
        ]);
        let riders = scored_riders(&f, 1000.0, 1000.0, &HashMap::new());
        assert_eq!(riders.iter().map(|r| r.1).collect::<Vec<_>>(), vec![false, true]);
    }

    #[test]
    fn corrections_add_missed_helmets_and_leave_out_heads_that_cannot_be_judged() {
        let f = frame(vec![(MOTORCYCLIST, [0.15, 0.3, 0.1, 0.3]), (MOTORCYCLIST, [0.5, 0.3, 0.1, 0.3])]);
        let fixes =
            HashMap::from([(("f".to_string(), 0), HelmetFix::Helmet), (("f".to_string(), 1), HelmetFix::Exclude)]);
        let riders = scored_riders(&f, 1000.0, 1000.0, &fixes);
        assert_eq!(riders.len(), 1);
        assert!(!riders[0].1);
    }

    #[test]
    fn a_small_rider_or_one_whose_head_is_above_the_frame_is_not_scored() {
        let f = frame(vec![(MOTORCYCLIST, [0.15, 0.3, 0.02, 0.3]), (MOTORCYCLIST, [0.5, 0.15, 0.1, 0.3])]);
        assert!(scored_riders(&f, 1000.0, 1000.0, &HashMap::new()).is_empty());
    }

    #[test]
    fn a_corrections_line_without_a_reason_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("h.tsv");
        std::fs::write(&path, "frame\trider\taction\treason\nf\t0\thelmet\t\n").expect("write");
        assert!(load_fixes(&path).is_err());
        std::fs::write(&path, "f\t0\thelmet\twhite helmet, box missing\n").expect("write");
        assert_eq!(load_fixes(&path).expect("parses").len(), 1);
    }
}
