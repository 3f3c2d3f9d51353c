//! Plate recognition: detector, perspective crop, reader and the plate grammar, put together.
//!
//! ```text
//!  picture -> PlateDetector -> (small plate: PlateDetector again on a crop around it) -> corners -> rectify
//!          -> PlateReader -> rows -> te_plate::parse -> PlateRead
//! ```
//!
//! The second look: a plate that is small in the detector's 256 px input (a motorcyclist's box is tall, so its
//! plate is often 20-40 px there) gets a loose box and loose corners. Looking again at a crop five plates wide
//! around it makes the plate large; on the vn_riders validation clips this turned 21 of 34 false detections
//! (boxes too loose to overlap their plate by half) into right ones. It costs one more detector run per small
//! plate, not per vehicle.
//!
//! Two entry points: [`PlateRecognizer::read_plates`] for vehicle crops, and
//! [`PlateRecognizer::read_plate_picture`] for pictures that are already one plate (crop datasets, the
//! evaluation command), read whole: the detector was trained on vehicle crops, where a plate is a small part.
//!
//! Never a guess: each uncertain character (probability below [`UNSURE_BELOW`]) is tried with its runner-up,
//! and when the alternatives give two different valid plates of comparable probability (the weaker at least
//! [`AMBIGUOUS_RATIO`] of the stronger: a Vietnamese `1` against a `7`, `U` against `0`), the read is
//! unreadable, as it is when its weakest character is below [`MIN_CHARACTER`] or too many are uncertain, or
//! when a character the reader half saw between the ones it read would make another valid plate
//! ([`HIDDEN_RATIO`]: 4- and 5-digit numbers are both valid, so a lost digit is another vehicle), or when a
//! slightly wider cut of the same detected plate reads another valid plate ([`CROSS_CHECK_GROWTH`]).
//!
//! The second opinion: a read uncertain between valid plates goes to a second reader model, trained apart,
//! which reads the same picture. Each plate the read could be is weighed by both readers' sequence probabilities
//! ([`crate::ctc`]); the best is the read only when it clears the same [`AMBIGUOUS_RATIO`], the second reader
//! alone gives it [`SECOND_OPINION_AT`] and its characters pass [`MIN_CHARACTER`]. A character half seen and
//! the wider cut's check are the shipped reader's alone (models/plate_reader_second/README.md says why).

use crate::crop::cut;
use crate::nms::suppress;
use crate::plate_detector::{PlateDetection, PlateDetector, PlateDetectorSettings, INPUT_SIZE};
use crate::plate_reader::{PlateFormat, PlateReader, PlateReaderSettings, RawRead};
use crate::rectify::{natural_size, rectify, RgbView};
use crate::{InferError, ModelDirs, Runtime};
use image::RgbImage;
use te_types::{PlateLayout, PlateRead};

/// Reads at most this many plates per picture (a vehicle crop rarely shows more than one).
const MAX_PLATES_PER_PICTURE: usize = 4;
/// Picture width/height below which a whole-picture plate is taken as a square two-row plate. Vietnamese
/// plates are 520x110 mm (4.7) on one row and 190x140 mm (1.4) or 330x165 mm (2.0) on two rows.
const TWO_ROW_ASPECT_BELOW: f32 = 2.6;
/// A plate narrower than this in the detector's input (pixels) is looked at again in a crop around it.
const SECOND_LOOK_BELOW: f32 = 64.0;
/// The second look's crop: the plate's box grown by these shares of its width and height on each side.
const SECOND_LOOK_MARGIN: (f32, f32) = (2.0, 3.0);
/// The second look's plate replaces the first only when they overlap at least this much (the same plate).
const SECOND_LOOK_SAME: f32 = 0.2;
/// Rectified rows are made at least this tall so that the reader does not resample twice from tiny crops.
const MIN_ROW_HEIGHT: f32 = 32.0;
/// The plate's quadrilateral is grown by these shares of its width (at each end) and height (above and below)
/// before it is cut out for reading. The reader learnt one-row plates from crops with much of the bumper above
/// and below (vn_plates), while the detector's corners of a one-row plate hug the characters: with 6% only, the
/// characters' tops were cut on phone frames (`30F-532.62` read `372`). Two-row plates read best cut at their
/// corners. Measured on the vn_riders validation frames (`edge-agent eval`): one-row 24-36% all read alike;
/// two-row 0% beat 3-9% and -3%.
const ONE_ROW_READ_MARGIN: (f32, f32) = (0.06, 0.30);
const TWO_ROW_READ_MARGIN: (f32, f32) = (0.06, 0.0);
/// A plate read is checked by reading it again from a cut grown by these further shares (along, across): when
/// the two cuts give two different valid plates, the read hangs on a few pixels of the detector's corners and
/// is unreadable. On the vn_riders validation frames (`edge-agent eval`) this turned 5 of 12 wrong reads
/// unreadable for 1 right read of 84 (the 66 unshared frames: 2 of 7 wrong, 1 of 40 right); 3% caught 3
/// wrong reads, 6% and 8% lost 2-4 right reads; a shifted cut and a narrower one caught fewer. The second
/// reader run is made only for a read that passed every other check.
const CROSS_CHECK_GROWTH: (f32, f32) = (0.05, 0.05);
/// Pixels from the crop's edge within which a plate counts as cut off.
const CUT_OFF_MARGIN: f32 = 2.0;
/// A character read with a lower probability is uncertain: its runner-up is tried against the grammar.
pub const UNSURE_BELOW: f32 = 0.9;
/// Two valid plates from the alternatives, the weaker with at least this share of the stronger's probability:
/// the reader cannot tell them apart, so the read is unreadable. 0.4 was tried: 5 more right reads on the
/// vn_plates crops with no more wrong ones, but on the vn_scenes street photos its only 2 new reads were both
/// wrong (`29-L1/070.2?` half hidden read `79-L1/0702`, `29-V7/376.94` read `29-V7/976.94`). Tried again with
/// the second cut ([`CROSS_CHECK_GROWTH`]): the vn_plates validation split rose 0.940 -> 0.944, but the half-hidden
/// plate was still read (`29-U1/0702`). A false ticket is worse than an unread plate.
pub const AMBIGUOUS_RATIO: f32 = 0.25;
/// The manifest's name of the second reader: an earlier reader of the project, trained apart from the shipped
/// one, so that it errs on other plates (models/plate_reader_second/README.md).
const SECOND_OPINION_MODEL: &str = "plate_reader_second";
/// The least probability the second reader alone must give the plate it settles on: it settles only what it
/// reads itself, never a plate that both readers find unlikely but one finds less unlikely.
pub const SECOND_OPINION_AT: f32 = 0.5;
/// A character half seen where the blank won its step (probability at least this share of the blank's) that
/// makes another valid plate when put back: the read is unreadable. Lower than [`AMBIGUOUS_RATIO`] because
/// the blank dominates CTC steps. On the vn_riders validation frames (the shipped detector, plate texts read
/// by eye) the first digit of a two-row plate's bottom row was lost in 7 of 15 wrong reads (`18-B2/320.82`
/// read `18-B2/2082`); this check made the 15 wrong reads 8 (10 at a share of 0.25) and cost no right read
/// there; on the vn_plates validation split it made 1 right read of 252 unreadable.
pub const HIDDEN_RATIO: f32 = 0.1;
/// How much less likely, before the picture is seen, a two-row plate with a two-letter series (`29-AA/123.45`,
/// under-50 cc) is than one with a letter and a digit (`29-B2/123.45`): the alternatives' probabilities are
/// weighed by it. Of the 1,066 two-row vn_plates labels, 17 have two letters (1.6%), all but one with A, B, D
/// or G second; the reader's commonest doubt on the vn_riders validation frames was a series digit against a
/// letter of the same shape (`18-B2` or `18-BZ`, `29-P2` or `29-PZ`, `15-D1` or `15-DZ`: in the plate typeface a 2
/// looks like a Z), which made five plates whose characters were read right unreadable (three read now; the
/// others have a second doubt). 0.1 is six times the share seen, so a clear two-letter read still stands.
pub const TWO_LETTER_SERIES_PRIOR: f32 = 0.1;
/// A plate whose weakest character is below this probability is unreadable.
pub const MIN_CHARACTER: f32 = 0.4;
/// More uncertain characters than this in one read: unreadable (the plate is blurred, dirty or cut off).
pub const MAX_UNSURE: usize = 3;

/// How the recognition stage is tuned.
#[derive(Debug, Clone, Default)]
pub struct RecognizerSettings {
    pub detector: PlateDetectorSettings,
    pub reader: PlateReaderSettings,
}

#[derive(Debug)]
pub struct PlateRecognizer {
    detector: PlateDetector,
    reader: PlateReader,
    /// The second opinion (Vietnamese plates only): weighs the plates an uncertain read could be.
    second: Option<PlateReader>,
    format: PlateFormat,
    /// Time spent inside the reader alone and its runs, for `edge-agent eval`'s per-plate figure.
    reader_clock: (std::time::Duration, u64),
}

impl PlateRecognizer {
    pub fn load(runtime: &Runtime, dirs: &ModelDirs, settings: RecognizerSettings) -> Result<Self, InferError> {
        let second = if settings.reader.second_opinion && settings.reader.format == PlateFormat::Vietnam {
            Some(PlateReader::load_model(runtime, dirs, &settings.reader, SECOND_OPINION_MODEL)?)
        } else {
            None
        };
        Ok(Self {
            format: settings.reader.format,
            detector: PlateDetector::load(runtime, dirs, settings.detector)?,
            reader: PlateReader::load(runtime, dirs, &settings.reader)?,
            second,
            reader_clock: Default::default(),
        })
    }

    /// Finds the plates in a vehicle's crop, best first (no reading).
    pub fn detect_plates(&mut self, picture: RgbView<'_>) -> Result<Vec<PlateDetection>, InferError> {
        let found = self.detector.detect(picture)?;
        let input_scale = INPUT_SIZE as f32 / picture.width.max(picture.height).max(1) as f32;
        let mut plates = Vec::with_capacity(found.len());
        for plate in found {
            plates.push(if plate.bbox.width() * input_scale < SECOND_LOOK_BELOW {
                self.second_look(picture, plate)?
            } else {
                plate
            });
        }
        // Two first looks can settle on one plate: the detector's own NMS again.
        Ok(suppress(plates, self.detector.nms_iou(), |p| (p.score, p.bbox)))
    }

    /// The plate as the detector sees it in a crop around it, where it is large; the first look when the
    /// second finds nothing there. The score stays the first look's (the one the threshold was set on).
    fn second_look(&mut self, picture: RgbView<'_>, first: PlateDetection) -> Result<PlateDetection, InferError> {
        let Some((crop, (ox, oy))) = cut(picture, &first.bbox, SECOND_LOOK_MARGIN) else { return Ok(first) };
        let again = self.detector.detect(RgbView::of_image(&crop))?;
        let best = again
            .into_iter()
            .map(|p| PlateDetection {
                bbox: p.bbox.shifted(ox, oy),
                corners: p.corners.map(|[x, y]| [x + ox, y + oy]),
                ..p
            })
            .filter(|p| p.bbox.iou(&first.bbox) >= SECOND_LOOK_SAME)
            .max_by(|a, b| a.bbox.iou(&first.bbox).total_cmp(&b.bbox.iou(&first.bbox)));
        Ok(match best {
            Some(p) => PlateDetection { score: first.score, ..p },
            None => first,
        })
    }

    /// Time spent inside the reader and how many times it ran, since the recogniser was loaded. A plate read
    /// twice (its other layout tried, a valid read checked on a wider cut, or an uncertain read given to the
    /// second opinion) counts twice.
    pub fn reader_clock(&self) -> (std::time::Duration, u64) {
        self.reader_clock
    }

    fn timed_read(&mut self, plate: RgbView<'_>, layout: PlateLayout) -> Result<RawRead, InferError> {
        timed_read(&mut self.reader_clock, &mut self.reader, plate, layout)
    }

    /// The read of `plate` by the shipped reader, as a plate read: the grammar decides, and where the
    /// characters could be more than one plate, the second opinion may settle which (when `ask_second`).
    fn finish(
        &mut self,
        plate: RgbView<'_>,
        raw: RawRead,
        layout: PlateLayout,
        (corners, score): ([[f32; 2]; 4], f32),
        ask_second: bool,
    ) -> Result<PlateRead, InferError> {
        let decided = match self.format {
            PlateFormat::Vietnam => match decide(&raw, layout) {
                Ok(read) => Ok(read),
                Err(undecided) if ask_second => self.settle(plate, layout, &raw, undecided)?,
                Err(undecided) => Err(undecided),
            },
            PlateFormat::Latin if raw.rows.iter().all(|r| r.is_empty()) => {
                Err(Undecided::because("no characters were read".into()))
            }
            PlateFormat::Latin => Ok((raw.rows.join("/"), raw.confidence)),
        };
        let (text, unreadable_reason, confidence) = match decided {
            Ok((plate, confidence)) => (Some(plate), None, confidence),
            Err(undecided) => (None, Some(undecided.reason), raw.confidence),
        };
        let raw = raw.rows.join("/");
        Ok(PlateRead { text, raw, unreadable_reason, confidence, layout, corners, detector_score: score })
    }

    /// Weighs the plates an uncertain read could be by how likely each is to both readers: the product of
    /// their CTC sequence probabilities ([`crate::ctc`]) and the plate's prior. The best is the read when the
    /// next is below [`AMBIGUOUS_RATIO`] of it, the second reader alone gives it at least
    /// [`SECOND_OPINION_AT`], and its characters pass [`MIN_CHARACTER`]; otherwise the read stays unreadable
    /// for its first reason.
    fn settle(
        &mut self,
        plate: RgbView<'_>,
        layout: PlateLayout,
        raw: &RawRead,
        undecided: Undecided,
    ) -> Result<Result<(String, f32), Undecided>, InferError> {
        // Nothing to settle, or no candidate it could settle on (the character floor holds either way): no run.
        if undecided.candidates.len() < 2 || undecided.candidates.iter().all(|c| c.weakest < MIN_CHARACTER) {
            return Ok(Err(undecided));
        }
        let Some(second) = self.second.as_mut() else { return Ok(Err(undecided)) };
        let other = timed_read(&mut self.reader_clock, second, plate, layout)?;
        let mut weighed: Vec<(f64, f64, &Candidate)> = undecided
            .candidates
            .iter()
            .map(|c| {
                let text = te_plate::compact(&c.text);
                let first = self.reader.log_probability(raw, &text).unwrap_or(f64::NEG_INFINITY);
                let by_second = second.log_probability(&other, &text).unwrap_or(f64::NEG_INFINITY);
                (first + by_second + f64::from(c.prior).ln(), by_second, c)
            })
            .collect();
        weighed.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (best, by_second, chosen) = weighed[0];
        let settled = best.is_finite()
            && weighed[1].0 < best + f64::from(AMBIGUOUS_RATIO).ln()
            && by_second >= f64::from(SECOND_OPINION_AT).ln()
            && chosen.weakest >= MIN_CHARACTER;
        Ok(if settled {
            tracing::debug!(plate = %chosen.text, why = %undecided.reason, "the second opinion settled a read");
            Ok((chosen.text.clone(), chosen.mean))
        } else {
            Err(undecided)
        })
    }

    /// Finds and reads the plates in a vehicle's crop, best detection first.
    pub fn read_plates(&mut self, picture: RgbView<'_>) -> Result<Vec<PlateRead>, InferError> {
        let detections = self.detect_plates(picture)?;
        let mut reads = Vec::new();
        let whole = |d: &PlateDetection| !is_cut_off(&d.bbox, picture.width, picture.height);
        for detection in detections.into_iter().filter(whole).take(MAX_PLATES_PER_PICTURE) {
            if let Some(read) = self.read_detection(picture, &detection)? {
                reads.push(read);
            }
        }
        Ok(reads)
    }

    /// Reads a picture that is one plate, as a whole; its shape decides one or two rows. A picture's shape is
    /// only a guess at the plate's (a crop can hold a long plate and what lies under it), so an unreadable
    /// read is tried once with the other layout and kept only if that read passes every check.
    pub fn read_plate_picture(&mut self, picture: RgbView<'_>) -> Result<PlateRead, InferError> {
        let (w, h) = (picture.width as f32, picture.height as f32);
        let corners = [[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]];
        let layout = if w / h < TWO_ROW_ASPECT_BELOW { PlateLayout::TwoLine } else { PlateLayout::OneLine };
        let raw = self.timed_read(picture, layout)?;
        let first = self.finish(picture, raw, layout, (corners, 1.0), true)?;
        if first.text.is_some() || self.format != PlateFormat::Vietnam {
            return Ok(first);
        }
        let other = match layout {
            PlateLayout::OneLine => PlateLayout::TwoLine,
            PlateLayout::TwoLine => PlateLayout::OneLine,
        };
        let raw = self.timed_read(picture, other)?;
        let second = self.finish(picture, raw, other, (corners, 1.0), true)?;
        Ok(if second.text.is_some() { second } else { first })
    }

    /// Reads one detected plate of `picture` (cut out by its corners and made upright first).
    pub fn read_detection(
        &mut self,
        picture: RgbView<'_>,
        detection: &PlateDetection,
    ) -> Result<Option<PlateRead>, InferError> {
        let Some(plate) = plate_picture(picture, detection) else {
            return Ok(None); // degenerate corners: nothing to read
        };
        let plate = RgbView::of_image(&plate);
        let raw = self.timed_read(plate, detection.layout)?;
        let read = self.finish(plate, raw, detection.layout, (detection.corners, detection.score), true)?;
        if read.text.is_none() || self.format != PlateFormat::Vietnam {
            return Ok(Some(read));
        }
        let Some(wider) = cut_plate(picture, detection, CROSS_CHECK_GROWTH) else { return Ok(Some(read)) };
        let wider = RgbView::of_image(&wider);
        let raw = self.timed_read(wider, detection.layout)?;
        // The check is the shipped reader's alone: a plate it reads otherwise on a wider cut, by itself.
        let again = self.finish(wider, raw, detection.layout, (detection.corners, detection.score), false)?;
        Ok(Some(cross_checked(read, again.text.as_deref())))
    }
}

/// `reader`'s read of `plate`, its time and run added to `clock`.
fn timed_read(
    clock: &mut (std::time::Duration, u64),
    reader: &mut PlateReader,
    plate: RgbView<'_>,
    layout: PlateLayout,
) -> Result<RawRead, InferError> {
    let started = std::time::Instant::now();
    let raw = reader.read(plate, layout);
    clock.0 += started.elapsed();
    clock.1 += 1;
    raw
}

/// `read` unless `again`, the same plate read from a wider cut, is another valid plate: then the read depends
/// on where the cut falls and is unreadable.
fn cross_checked(mut read: PlateRead, again: Option<&str>) -> PlateRead {
    if let (Some(text), Some(other)) = (read.text.as_deref(), again) {
        if text != other {
            read.unreadable_reason = Some(format!("a wider cut reads another plate: {text} or {other}"));
            read.text = None;
        }
    }
    read
}

/// The upright picture of a detected plate that the reader gets: cut out by its corners with a margin, and
/// enlarged so that each row is at least `MIN_ROW_HEIGHT` high. `None` when the corners are degenerate.
pub fn plate_picture(picture: RgbView<'_>, detection: &PlateDetection) -> Option<RgbImage> {
    cut_plate(picture, detection, (0.0, 0.0))
}

/// [`plate_picture`] with its margins grown by `(along, across)` more.
fn cut_plate(
    picture: RgbView<'_>,
    detection: &PlateDetection,
    (more_along, more_across): (f32, f32),
) -> Option<RgbImage> {
    // Corners that sit tight on the plate (or a little inside it) would cut characters: see the margins.
    let ((along, across), rows) = match detection.layout {
        PlateLayout::OneLine => (ONE_ROW_READ_MARGIN, 1.0),
        PlateLayout::TwoLine => (TWO_ROW_READ_MARGIN, 2.0),
    };
    let quad = grown(&detection.corners, along + more_along, across + more_across);
    let (w, h) = natural_size(&quad);
    let upscale = (MIN_ROW_HEIGHT * rows / h as f32).max(1.0);
    let (w, h) = ((w as f32 * upscale).round() as u32, (h as f32 * upscale).round() as u32);
    rectify(picture, &quad, w, h)
}

/// The quadrilateral `corners` (top-left, top-right, bottom-right, bottom-left) grown along its own edges: by
/// `along` of its width at each end of a row, and by `across` of its height above and below (a negative share
/// shrinks it). Measured along the plate's edges, not the picture's axes, so a tilted plate grows as a plate.
fn grown(corners: &[[f32; 2]; 4], along: f32, across: f32) -> [[f32; 2]; 4] {
    let [tl, tr, br, bl] = *corners;
    let step = |p: [f32; 2], from: [f32; 2], to: [f32; 2], k: f32| {
        [p[0] + (to[0] - from[0]) * k, p[1] + (to[1] - from[1]) * k]
    };
    [
        step(step(tl, tl, tr, -along), tl, bl, -across),
        step(step(tr, tl, tr, along), tr, br, -across),
        step(step(br, bl, br, along), tr, br, across),
        step(step(bl, bl, br, -along), tl, bl, across),
    ]
}

/// A plate box (in its crop's pixels) that reaches the edge of the vehicle's crop (`width` x `height`) is cut
/// off (by the frame's edge, by another object, or by a vehicle box that cuts through it): reading what is left
/// of it would be a guess, so `read_plates` does not read it, and the eval must not either.
pub fn is_cut_off(b: &te_types::BBox, width: u32, height: u32) -> bool {
    b.x1 < CUT_OFF_MARGIN
        || b.y1 < CUT_OFF_MARGIN
        || b.x2 > width as f32 - CUT_OFF_MARGIN
        || b.y2 > height as f32 - CUT_OFF_MARGIN
}

/// A valid plate an uncertain read could be.
#[derive(Debug, Clone)]
struct Candidate {
    /// As displayed (`29-T1/648.05`).
    text: String,
    /// The product of its characters' probabilities and its prior.
    probability: f32,
    /// Its prior alone ([`prior`]).
    prior: f32,
    /// The lowest and the mean probability of its characters.
    weakest: f32,
    mean: f32,
}

/// Why a read is not (yet) a plate. `candidates`: the plates it could be, best first, when that is the reason
/// (what a second opinion may settle); empty otherwise.
#[derive(Debug)]
struct Undecided {
    reason: String,
    candidates: Vec<Candidate>,
}

impl Undecided {
    fn because(reason: String) -> Self {
        Self { reason, candidates: Vec::new() }
    }
}

/// The plate the characters make, weighing each uncertain character's runner-up against the grammar; with the
/// mean probability of the characters chosen. `Err` says why the read is unreadable.
fn decide(raw: &RawRead, layout: PlateLayout) -> Result<(String, f32), Undecided> {
    let unsure: Vec<usize> = (0..raw.chars.len())
        .filter(|&i| raw.chars[i].probability < UNSURE_BELOW && raw.chars[i].alternative.is_some())
        .collect();
    if unsure.len() > MAX_UNSURE {
        return Err(Undecided::because(format!("{} characters are uncertain (at most {MAX_UNSURE})", unsure.len())));
    }
    let rows = raw.rows.len().max(1);
    // Every mix of best and runner-up over the uncertain characters: its probability and the plate it makes.
    let mut plates: Vec<Candidate> = Vec::new();
    let mut first_error = None;
    for mask in 0u32..(1 << unsure.len()) {
        let mut text_rows = vec![String::new(); rows];
        let (mut probability, mut weakest, mut sum) = (1.0f32, 1.0f32, 0.0f32);
        for (i, c) in raw.chars.iter().enumerate() {
            let swapped = unsure.iter().position(|&u| u == i).is_some_and(|k| mask & (1 << k) != 0);
            let (ch, p) = match (swapped, c.alternative) {
                (true, Some(alt)) => alt,
                _ => (c.ch, c.probability),
            };
            text_rows[c.row.min(rows - 1)].push(ch);
            probability *= p;
            weakest = weakest.min(p);
            sum += p;
        }
        match plate_of(&text_rows, layout) {
            Ok(plate) => {
                let prior = prior(&plate);
                let candidate = Candidate {
                    text: plate.display(),
                    probability: probability * prior,
                    prior,
                    weakest,
                    mean: sum / raw.chars.len().max(1) as f32,
                };
                match plates.iter_mut().find(|p| p.text == candidate.text) {
                    Some(known) if known.probability < candidate.probability => *known = candidate,
                    Some(_) => {}
                    None => plates.push(candidate),
                }
            }
            Err(why) if mask == 0 => first_error = Some(why.to_string()),
            Err(_) => {}
        }
    }
    plates.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    let Some(best) = plates.first().cloned() else {
        return Err(Undecided::because(first_error.unwrap_or_else(|| "the characters fit no plate".into())));
    };
    if let Some(other) = plates.get(1).filter(|o| o.probability >= AMBIGUOUS_RATIO * best.probability) {
        let reason = format!("uncertain between {} and {}", best.text, other.text);
        return Err(Undecided { reason, candidates: plates });
    }
    // A character half seen is one the second reader cannot see either (cut or hidden): not for it to settle.
    if let Some(other) = with_hidden_char(raw, layout, &best.text) {
        return Err(Undecided::because(format!("a character may be missing: {} or {other}", best.text)));
    }
    if best.weakest < MIN_CHARACTER {
        return Err(Undecided::because(format!("a character is uncertain (probability {:.2})", best.weakest)));
    }
    Ok((best.text, best.mean))
}

/// The weight of a plate's kind before the picture is seen (see [`TWO_LETTER_SERIES_PRIOR`]).
fn prior(plate: &te_plate::Plate) -> f32 {
    let two_letters = plate.series.len() == 2 && plate.series.chars().all(|c| c.is_ascii_uppercase());
    if plate.layout == PlateLayout::TwoLine && two_letters {
        TWO_LETTER_SERIES_PRIOR
    } else {
        1.0
    }
}

/// Another valid plate made by putting back a character the reader half saw (its probability at least
/// [`HIDDEN_RATIO`] of the blank's at that step): the read cannot tell whether the plate has it.
fn with_hidden_char(raw: &RawRead, layout: PlateLayout, best: &str) -> Option<String> {
    let rows = raw.rows.len().max(1);
    let best = te_plate::compact(best);
    raw.hidden.iter().filter(|h| h.probability >= HIDDEN_RATIO * h.blank).find_map(|h| {
        let mut text_rows = vec![String::new(); rows];
        for (i, c) in raw.chars.iter().enumerate() {
            if i == h.index {
                text_rows[h.row.min(rows - 1)].push(h.ch);
            }
            text_rows[c.row.min(rows - 1)].push(c.ch);
        }
        if h.index >= raw.chars.len() {
            text_rows[h.row.min(rows - 1)].push(h.ch);
        }
        let plate = plate_of(&text_rows, layout).ok()?;
        (plate.compact() != best).then(|| plate.display())
    })
}

/// The plate the rows make as read, or, for two rows, with the break moved ([`resplit`]).
fn plate_of(text_rows: &[String], layout: PlateLayout) -> Result<te_plate::Plate, te_plate::Unreadable> {
    let row_refs: Vec<&str> = text_rows.iter().map(String::as_str).collect();
    te_plate::parse(&row_refs, Some(layout)).or_else(|why| {
        if text_rows.len() > 1 {
            resplit(text_rows).ok_or(why)
        } else {
            Err(why)
        }
    })
}

/// The row of a character next to the break is a guess from its CTC step; the characters themselves are not.
/// When the rows as split fit no plate, the characters in order may, with the break moved to where a plate's
/// top row ends (3, 4 or 5 characters); `None` when no place fits or two places give different plates.
/// The break may move, the kind of series may not: a top row read with a digit after its letter (`29T16`) is
/// a motorbike's and must stay one (`29-T1/6480`, never the car's `29T/164.80`), so a lost character cannot
/// turn `29-V5/2108` into a car's `29V/5208`.
fn resplit(text_rows: &[String]) -> Option<te_plate::Plate> {
    let motorbike = |series: &str| series.chars().any(|c| c.is_ascii_digit());
    let top_is_motorbike = text_rows[0].chars().nth(3).is_some_and(|c| c.is_ascii_digit());
    let joined = text_rows.concat();
    let mut found: Option<te_plate::Plate> = None;
    for k in 3..=5.min(joined.len().saturating_sub(1)) {
        let (top, bottom) = joined.split_at(k);
        let Ok(plate) = te_plate::parse(&[top, bottom], Some(PlateLayout::TwoLine)) else { continue };
        if motorbike(&plate.series) != top_is_motorbike {
            continue;
        }
        match &found {
            Some(known) if known.compact() != plate.compact() => return None,
            Some(_) => {}
            None => found = Some(plate),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReadChar;

    fn raw(rows: &[&str], probabilities: &[(f32, Option<(char, f32)>)]) -> RawRead {
        let mut chars = Vec::new();
        let mut k = 0;
        for (row, text) in rows.iter().enumerate() {
            for ch in text.chars() {
                let (probability, alternative) = probabilities.get(k).copied().unwrap_or((0.99, None));
                chars.push(ReadChar { ch, probability, alternative, row });
                k += 1;
            }
        }
        let rows = rows.iter().map(|r| r.to_string()).collect();
        RawRead { rows, confidence: 0.9, chars, hidden: Vec::new(), probs: Default::default() }
    }

    #[test]
    fn a_plate_quad_grows_along_its_own_edges() {
        let q = grown(&[[10.0, 10.0], [110.0, 10.0], [110.0, 60.0], [10.0, 60.0]], 0.05, 0.2);
        assert_eq!(q, [[5.0, 0.0], [115.0, 0.0], [115.0, 70.0], [5.0, 70.0]]);
    }

    #[test]
    fn a_one_row_plate_is_cut_with_room_above_and_below_its_tight_corners() {
        // Pins the cut characters of `30F-532.62` (read `372`): a one-row plate's corners hug its characters.
        let src = RgbImage::new(200, 100);
        let detection = |layout, corners| PlateDetection {
            score: 0.9,
            bbox: te_types::BBox { x1: 40.0, y1: 40.0, x2: 140.0, y2: 60.0 },
            corners,
            layout,
        };
        let one_row = [[40.0, 40.0], [140.0, 40.0], [140.0, 60.0], [40.0, 60.0]];
        let picture = plate_picture(RgbView::of_image(&src), &detection(PlateLayout::OneLine, one_row));
        // 100 x 20 grows to 112 x 32 (6% at each end, 30% above and below): no upscaling needed.
        assert_eq!(picture.map(|p| p.dimensions()), Some((112, 32)));
        let two_rows = [[40.0, 20.0], [90.0, 20.0], [90.0, 60.0], [40.0, 60.0]];
        let picture = plate_picture(RgbView::of_image(&src), &detection(PlateLayout::TwoLine, two_rows));
        // 50 x 40 grows to 56 x 40 (two-row plates are cut at their corners), enlarged to 32 px a row.
        assert_eq!(picture.map(|p| p.dimensions()), Some((90, 64)));
    }

    #[test]
    fn a_read_that_a_wider_cut_reads_as_another_plate_is_unreadable() {
        // Pins `29-Z1/784.31` read `29-Z1/8431` from the detector's cut and `29-Z1/284.31` from one 5% wider.
        let read = |text: Option<&str>| PlateRead {
            text: text.map(str::to_string),
            raw: "29Z1/8431".into(),
            unreadable_reason: None,
            confidence: 0.9,
            layout: PlateLayout::TwoLine,
            corners: [[0.0; 2]; 4],
            detector_score: 0.9,
        };
        let checked = cross_checked(read(Some("29-Z1/8431")), Some("29-Z1/284.31"));
        assert_eq!(checked.text, None);
        assert!(checked.unreadable_reason.as_deref().is_some_and(|why| why.contains("29-Z1/284.31")));
        // The same plate again, or nothing valid from the wider cut: the read stands.
        assert_eq!(cross_checked(read(Some("29-Z1/8431")), Some("29-Z1/8431")), read(Some("29-Z1/8431")));
        assert_eq!(cross_checked(read(Some("29-Z1/8431")), None), read(Some("29-Z1/8431")));
        assert_eq!(cross_checked(read(None), Some("29-Z1/8431")), read(None));
    }

    #[test]
    fn a_plate_at_the_edge_of_the_crop_is_cut_off() {
        let b = |x1, y1, x2, y2| te_types::BBox { x1, y1, x2, y2 };
        assert!(!is_cut_off(&b(10.0, 10.0, 50.0, 40.0), 100, 100));
        assert!(is_cut_off(&b(0.5, 10.0, 50.0, 40.0), 100, 100));
        assert!(is_cut_off(&b(10.0, 10.0, 50.0, 99.0), 100, 100));
    }

    #[test]
    fn a_lost_first_digit_of_the_bottom_row_that_leaves_another_valid_plate_is_unreadable() {
        // 18-B2/320.82 read 18-B2/2082 (valid: 4 digits) with the 3 half seen where the blank won its step.
        let mut read = raw(&["18B2", "2082"], &[]);
        let hidden = |probability, blank| crate::HiddenChar { index: 4, ch: '3', probability, blank, row: 1 };
        read.hidden = vec![hidden(0.3, 0.7)];
        let why = decide(&read, PlateLayout::TwoLine).expect_err("two plates");
        assert!(why.reason.contains("18-B2/320.82"), "{why:?}");
        // A character cut or hidden is hidden from the second reader too: nothing for it to settle.
        assert!(why.candidates.is_empty(), "{why:?}");
        // Too faint to be a character: the read stands.
        read.hidden = vec![hidden(0.05, 0.95)];
        assert_eq!(decide(&read, PlateLayout::TwoLine).expect("plate").0, "18-B2/2082");
        // A half-seen character that makes no plate changes nothing.
        let mut read = raw(&["18B2", "32082"], &[]);
        read.hidden = vec![crate::HiddenChar { index: 4, ch: '1', probability: 0.4, blank: 0.6, row: 1 }];
        assert_eq!(decide(&read, PlateLayout::TwoLine).expect("plate").0, "18-B2/320.82");
    }

    #[test]
    fn a_sure_read_is_the_plate() {
        let read = raw(&["59U1", "72979"], &[]);
        assert_eq!(decide(&read, PlateLayout::TwoLine).expect("plate").0, "59-U1/729.79");
    }

    #[test]
    fn a_character_put_in_the_wrong_row_at_the_break_still_makes_its_plate() {
        // 85-F1 over 149.27, the bottom row's first 1 read into the top row: the characters are all right.
        let read = raw(&["85F11", "4927"], &[]);
        assert_eq!(decide(&read, PlateLayout::TwoLine).expect("plate").0, "85-F1/149.27");
    }

    #[test]
    fn a_top_row_read_one_character_long_keeps_its_motorbike_plate_not_the_car_plate_of_the_same_characters() {
        // 29-T1/6480 with the bottom row's 6 read into the top row: 29T16480 is also the car plate 29T-164.80,
        // but a top row with a digit after its letter is a motorbike's.
        let read = raw(&["29T16", "480"], &[]);
        assert_eq!(decide(&read, PlateLayout::TwoLine).expect("plate").0, "29-T1/6480");
    }

    #[test]
    fn a_lost_character_does_not_turn_a_motorbike_plate_into_a_car_plate_at_the_break() {
        // 29-V5/2108 with the bottom row's 1 lost: 29V5 over 208 could only be the car plate 29V/5208.
        let read = raw(&["29V5", "208"], &[]);
        assert!(decide(&read, PlateLayout::TwoLine).is_err());
    }

    #[test]
    fn a_one_read_as_a_seven_with_a_close_runner_up_is_unreadable_not_a_guess() {
        // 54-H1/532.6 read as 54H7..., '1' close behind: both are valid plates.
        let mut p = vec![(0.99, None); 9];
        p[3] = (0.55, Some(('1', 0.43)));
        let read = raw(&["54H7", "53260"], &p);
        let why = decide(&read, PlateLayout::TwoLine).expect_err("ambiguous");
        assert!(why.reason.contains("uncertain between"), "{why:?}");
        // Both plates go to the second opinion, the stronger first.
        let texts: Vec<&str> = why.candidates.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["54-H7/532.60", "54-H1/532.60"]);
        assert!((why.candidates[1].weakest - 0.43).abs() < 1e-6, "{why:?}");
    }

    #[test]
    fn a_weak_runner_up_does_not_block_a_clear_read() {
        let mut p = vec![(0.99, None); 9];
        p[4] = (0.85, Some(('1', 0.1)));
        assert_eq!(decide(&raw(&["54H7", "53260"], &p), PlateLayout::TwoLine).expect("plate").0, "54-H7/532.60");
    }

    #[test]
    fn the_grammar_picks_the_alternative_that_makes_a_plate() {
        // A K where the province's first digit must be (no confusable rule makes K a digit): its runner-up 5
        // makes the plate, the K makes none.
        let mut p = vec![(0.99, None); 9];
        p[0] = (0.5, Some(('5', 0.45)));
        let read = raw(&["K9U1", "72979"], &p);
        assert_eq!(decide(&read, PlateLayout::TwoLine).expect("plate").0, "59-U1/729.79");
    }

    #[test]
    fn a_series_digit_read_with_a_letter_of_its_shape_close_behind_is_the_digit_not_unreadable() {
        // 18-B2/320.82, the 2 at 0.55 with Z at 0.4 behind it: 18-BZ is a valid under-50 cc series, but a rare one.
        let mut p = vec![(0.99, None); 9];
        p[3] = (0.55, Some(('Z', 0.4)));
        assert_eq!(decide(&raw(&["18B2", "32082"], &p), PlateLayout::TwoLine).expect("plate").0, "18-B2/320.82");
        // Read Z first and 2 close behind: still the common series.
        p[3] = (0.55, Some(('2', 0.4)));
        assert_eq!(decide(&raw(&["18BZ", "32082"], &p), PlateLayout::TwoLine).expect("plate").0, "18-B2/320.82");
        // A sure two-letter series stands.
        p[3] = (0.97, Some(('2', 0.02)));
        assert_eq!(decide(&raw(&["29AA", "12345"], &p), PlateLayout::TwoLine).expect("plate").0, "29-AA/123.45");
    }

    #[test]
    fn too_many_uncertain_characters_make_a_read_unreadable() {
        let p = vec![(0.5, Some(('8', 0.4))); 9];
        assert!(decide(&raw(&["59U1", "72979"], &p), PlateLayout::TwoLine).is_err());
    }
}
