//! Plate reader: turns an upright plate picture into rows of characters, with a probability for each
//! character and its runner-up (the project's own CRNN, `models/plate_reader`, CTC, through ort).
//!
//! ```text
//!  plate (RGB) -> rows (1 or 2 bands) -> each row to the input's height, side by side -> pad -> ort -> CTC
//! ```
//!
//! Input `x` [1,3,H,W] (H and W from the model: 32 x 160 for the shipped reader), BGR, (v/255 - 0.5)/0.5, zero
//! padded on the right; output `probs` [1,T,32]: per step
//! a softmax over the CTC blank (class 0) and the 31 characters of [`te_plate::PLATE_ALPHABET`], in order.
//! Decisions, each measured on the Vietnamese crops (models/plate_reader/README.md):
//! - The two rows of a square plate are read in one pass, side by side: one run instead of two. A character
//!   belongs to the top row when its CTC step lies left of the top band's right edge, so the row break is kept.
//! - The model knows only the plate alphabet (no I, J, O, Q, W), so no look-alike glyph can win.
//! - Every character keeps its probability and the best other character at the same place, so that the
//!   recogniser can weigh the alternatives of an uncertain character against the grammar instead of guessing.

use crate::ctc::StepProbs;
use crate::letterbox::{resize_into_chw, Canvas};
use crate::rectify::RgbView;
use crate::{InferError, ModelDirs, Runtime};
use ort::session::Session;
use ort::value::Tensor;
use te_types::PlateLayout;

const MODEL_NAME: &str = "plate_reader";
/// The input sizes a reader model may declare (a model outside them is refused at load).
const HEIGHTS: std::ops::RangeInclusive<i64> = 16..=128;
const WIDTHS: std::ops::RangeInclusive<i64> = 32..=640;
/// Where the rows of a two-line plate are cut: the top row is the upper 55%, the bottom row the lower 55%.
/// The overlap keeps characters whole when the plate is not perfectly centred in its crop.
const TOP_ROW_END: f32 = 0.55;
const BOTTOM_ROW_START: f32 = 0.45;
/// The model metadata key that says how many zero columns stand between a two-row plate's bands (the recipe's
/// `--row-gap`; absent: none). Part of the model's input, so the model carries it.
const ROW_GAP_KEY: &str = "row_gap";
/// The widest row gap a model may ask for (a quarter of the narrowest input).
const MAX_ROW_GAP: usize = 8;

/// Which plates the reader expects: whether the Vietnamese grammar checks the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlateFormat {
    /// Vietnamese plates: the grammar of `te_plate` decides what is a plate.
    #[default]
    Vietnam,
    /// Foreign test sets: the characters as read, no grammar. The model knows only the Vietnamese plate
    /// alphabet, so I, J, O, Q and W are never read.
    Latin,
}

/// Tuning of the plate reader.
#[derive(Debug, Clone)]
pub struct PlateReaderSettings {
    /// ONNX Runtime intra-op threads.
    pub threads: usize,
    pub format: PlateFormat,
    /// Whether a second reader model weighs the plates a read is uncertain between (Vietnamese plates only;
    /// `crate::recognizer`). Off only to measure what it brings.
    pub second_opinion: bool,
}

impl Default for PlateReaderSettings {
    fn default() -> Self {
        Self { threads: 1, format: PlateFormat::Vietnam, second_opinion: true }
    }
}

/// One character as read, with how sure the reader is of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReadChar {
    pub ch: char,
    /// The highest probability the character reached over its CTC steps.
    pub probability: f32,
    /// The best other character at that step and its probability (blank excluded).
    pub alternative: Option<(char, f32)>,
    /// 0 for the top (or only) row, 1 for the bottom row.
    pub row: usize,
}

/// The characters read from one plate, before the grammar looks at them.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRead {
    /// One string per row, top first.
    pub rows: Vec<String>,
    /// Mean probability of the characters read; 0 when nothing was read.
    pub confidence: f32,
    /// Every character in reading order (top row first).
    pub chars: Vec<ReadChar>,
    /// Characters the reader half saw between those read: where the blank won a step, the strongest other
    /// character of that stretch of blanks. A plate with one of them put back can be another valid plate (a
    /// lost first digit turns `18-B2/320.82` into the valid `18-B2/2082`), so the grammar must weigh them.
    pub hidden: Vec<HiddenChar>,
    /// The model's output itself, so that the probability of any candidate text can be weighed later
    /// ([`crate::ctc`]).
    pub probs: StepProbs,
}

/// A character that lost its CTC step to the blank: it would stand before `chars[index]` (at the end when
/// `index == chars.len()`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HiddenChar {
    pub index: usize,
    pub ch: char,
    pub probability: f32,
    /// The blank's probability at that step.
    pub blank: f32,
    pub row: usize,
}

/// A character below this probability at a blank step is noise, not a half-seen character.
pub const HIDDEN_AT: f32 = 0.05;

pub struct PlateReader {
    /// The manifest's name of the model, for errors.
    name: &'static str,
    session: Session,
    alphabet: Vec<char>,
    height: usize,
    width: usize,
    /// Zero columns between the two bands of a two-row plate (from the model's metadata).
    row_gap: usize,
}

impl std::fmt::Debug for PlateReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlateReader").field("classes", &(self.alphabet.len() + 1)).finish()
    }
}

impl PlateReader {
    pub fn load(runtime: &Runtime, dirs: &ModelDirs, settings: &PlateReaderSettings) -> Result<Self, InferError> {
        Self::load_model(runtime, dirs, settings, MODEL_NAME)
    }

    /// A reader model of the manifest other than the shipped reader (the second opinion), with the same input
    /// and output.
    pub fn load_model(
        runtime: &Runtime,
        dirs: &ModelDirs,
        settings: &PlateReaderSettings,
        name: &'static str,
    ) -> Result<Self, InferError> {
        let session = runtime.session(name, dirs, settings.threads)?;
        let (height, width) = input_size(&session, name)?;
        // Metadata that cannot be read is an error, not "no gap": a gap model read without its gap misreads.
        let declared =
            session.metadata().map_err(|source| InferError::Session { name: name.into(), source })?.custom(ROW_GAP_KEY);
        let row_gap = checked_row_gap(declared.as_deref(), name)?;
        Ok(Self { name, session, alphabet: te_plate::PLATE_ALPHABET.chars().collect(), height, width, row_gap })
    }

    /// Reads an upright plate picture (a rectified crop, or a crop dataset's image).
    pub fn read(&mut self, plate: RgbView<'_>, layout: PlateLayout) -> Result<RawRead, InferError> {
        let (w, h) = (plate.width as usize, plate.height as usize);
        let bands: Vec<(usize, usize)> = match layout {
            PlateLayout::OneLine => vec![(0, h)],
            PlateLayout::TwoLine if h < 2 => vec![(0, h)],
            PlateLayout::TwoLine => {
                let top_end = ((h as f32 * TOP_ROW_END).round() as usize).clamp(1, h);
                let bottom_start = ((h as f32 * BOTTOM_ROW_START).round() as usize).min(h - 1);
                vec![(0, top_end), (bottom_start, h)]
            }
        };
        let (height, width) = (self.height, self.width);
        let gap = if bands.len() == 2 { self.row_gap } else { 0 };
        // Each row at the input's height, keeping its aspect; squeezed together if wider than the input (less
        // the gap between the rows).
        let natural: Vec<usize> =
            bands.iter().map(|&(y0, y1)| ((height * w) as f32 / (y1 - y0) as f32).ceil() as usize).collect();
        let total: usize = natural.iter().sum();
        let room = width - gap;
        let squeeze = if total > room { room as f32 / total as f32 } else { 1.0 };
        let widths: Vec<usize> = natural.iter().map(|n| ((*n as f32 * squeeze) as usize).max(1)).collect();

        // A fresh tensor each run: ort takes ownership of it (60 KiB at 32 x 160, nothing next to the run itself).
        let mut input = vec![0.0f32; 3 * height * width];
        let mut x = 0;
        let stride = w * 3;
        for (&(y0, y1), &row_width) in bands.iter().zip(&widths) {
            let canvas = Canvas { width, height, x, y: 0 };
            let band = &plate.data[y0 * stride..y1 * stride];
            resize_into_chw(band, w, y1 - y0, row_width, height, &canvas, true, |v| v / 127.5 - 1.0, &mut input);
            x += row_width + gap;
        }
        let name = self.name;
        let session_err = |source: ort::Error| InferError::Session { name: name.into(), source };
        let tensor = Tensor::from_array(([1i64, 3, height as i64, width as i64], input)).map_err(session_err)?;
        let outputs = self.session.run(ort::inputs!["x" => tensor]).map_err(session_err)?;
        let (shape, probs) = outputs[0].try_extract_tensor::<f32>().map_err(session_err)?;
        let dims: Vec<i64> = shape.iter().copied().collect();
        let classes = self.alphabet.len() + 1;
        if dims.len() != 3 || dims[2] as usize != classes || probs.len() != (dims[1] * dims[2]) as usize {
            return Err(InferError::Output {
                name: name.into(),
                message: format!("expected [1, T, {classes}], got {dims:?}"),
            });
        }
        let steps = dims[1] as usize;
        // Characters whose CTC step lies left of the middle of the gap (the first row's right edge when there
        // is none) belong to the top row.
        let row_boundary_step = (widths[0] as f32 + gap as f32 / 2.0) * steps as f32 / width as f32;
        let mut read = ctc_decode(probs, steps, &self.alphabet, bands.len(), row_boundary_step);
        read.probs = StepProbs { values: probs.to_vec(), classes };
        Ok(read)
    }

    /// The natural log of the probability that `read` (this reader's output) is `text` (compact: the rows'
    /// characters in reading order); `None` when the text cannot be aligned to its steps.
    pub fn log_probability(&self, read: &RawRead, text: &str) -> Option<f64> {
        read.probs.log_probability(text, &self.alphabet)
    }
}

/// The reader's fixed input size, from the model's declared `x` [1, 3, H, W].
fn input_size(session: &Session, name: &str) -> Result<(usize, usize), InferError> {
    let dims: Option<Vec<i64>> = session.inputs().first().and_then(|i| i.dtype().tensor_shape()).map(|s| s.to_vec());
    checked_input_size(dims.as_deref(), name)
}

/// The row gap a model declares in its metadata: none when absent; a value that is no whole number of
/// columns up to [`MAX_ROW_GAP`] is refused.
fn checked_row_gap(declared: Option<&str>, name: &str) -> Result<usize, InferError> {
    match declared.map(|v| v.trim().parse::<usize>()) {
        None => Ok(0),
        Some(Ok(gap)) if gap <= MAX_ROW_GAP => Ok(gap),
        Some(_) => Err(InferError::Output {
            name: name.into(),
            message: format!("metadata {ROW_GAP_KEY:?} must be 0..={MAX_ROW_GAP} columns, the model says {declared:?}"),
        }),
    }
}

/// The declared input dims as (height, width), if they are [1, 3, H, W] within the sizes a reader may have
/// (a dynamic dimension is declared as -1 and refused).
fn checked_input_size(dims: Option<&[i64]>, name: &str) -> Result<(usize, usize), InferError> {
    match dims {
        Some(&[1, 3, h, w]) if HEIGHTS.contains(&h) && WIDTHS.contains(&w) => Ok((h as usize, w as usize)),
        other => Err(InferError::Output {
            name: name.into(),
            message: format!(
                "input must be [1, 3, H, W] with H in {HEIGHTS:?} and W in {WIDTHS:?}, the model declares {other:?}"
            ),
        }),
    }
}

/// Greedy CTC decode: best class per step, repeats merged, blanks dropped; each character keeps its best
/// probability over its steps and the runner-up character at that step.
fn ctc_decode(probs: &[f32], steps: usize, alphabet: &[char], rows: usize, row_boundary_step: f32) -> RawRead {
    let classes = alphabet.len() + 1;
    let mut chars: Vec<ReadChar> = Vec::new();
    let mut hidden: Vec<HiddenChar> = Vec::new();
    let step_of = |t: usize| &probs[t * classes..(t + 1) * classes];
    // The first class with the highest probability among `candidates`.
    let first_best = |step: &[f32], candidates: &mut dyn Iterator<Item = usize>| {
        candidates.fold(None, |best: Option<usize>, c| match best {
            Some(b) if !step[c].total_cmp(&step[b]).is_gt() => Some(b),
            _ => Some(c),
        })
    };
    // Each step's best class, once: the decode reads its neighbours' too.
    let best: Vec<usize> = (0..steps).map(|t| first_best(step_of(t), &mut (0..classes)).unwrap_or(0)).collect();
    let mut previous = 0usize;
    for t in 0..steps {
        let step = step_of(t);
        let class = best[t];
        let runner_up = first_best(step, &mut (1..classes).filter(|&c| c != class));
        let alternative = runner_up.map(|c| (alphabet[c - 1], step[c]));
        let row = if rows == 2 && (t as f32 + 0.5) >= row_boundary_step { 1 } else { 0 };
        if class != 0 && class == previous {
            // The same character over several steps: keep its best moment.
            if let Some(last) = chars.last_mut().filter(|c| step[class] > c.probability) {
                last.probability = step[class];
                last.alternative = alternative;
            }
        } else if class != 0 {
            chars.push(ReadChar { ch: alphabet[class - 1], probability: step[class], alternative, row });
        } else if let Some(c) = runner_up.filter(|&c| step[c] >= HIDDEN_AT) {
            // The tail of a neighbouring character of the same class is that character, not another one.
            let beside = (t > 0 && best[t - 1] == c) || (t + 1 < steps && best[t + 1] == c);
            let candidate =
                HiddenChar { index: chars.len(), ch: alphabet[c - 1], probability: step[c], blank: step[0], row };
            if !beside {
                match hidden.last_mut() {
                    // The same stretch of blanks (no character read since): keep its strongest.
                    Some(h) if h.index == chars.len() => {
                        if candidate.probability / candidate.blank > h.probability / h.blank {
                            *h = candidate;
                        }
                    }
                    _ => hidden.push(candidate),
                }
            }
        }
        previous = class;
    }
    let mut out = vec![String::new(); rows.max(1)];
    for c in &chars {
        out[c.row].push(c.ch);
    }
    let confidence =
        if chars.is_empty() { 0.0 } else { chars.iter().map(|c| c.probability).sum::<f32>() / chars.len() as f32 };
    RawRead { rows: out, confidence, chars, hidden, probs: StepProbs::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_model_declaring_a_dynamic_or_outlandish_input_is_refused_at_load() {
        assert_eq!(checked_input_size(Some(&[1, 3, 32, 160]), MODEL_NAME).expect("crnn"), (32, 160));
        assert_eq!(checked_input_size(Some(&[1, 3, 48, 160]), MODEL_NAME).expect("48 high"), (48, 160));
        for bad in [
            &[1, 3, -1, 160][..],
            &[1, 3, 32, -1],
            &[1, 3, 4096, 160],
            &[1, 1, 32, 160],
            &[2, 3, 32, 160],
            &[3, 32, 160],
        ] {
            assert!(checked_input_size(Some(bad), MODEL_NAME).is_err(), "{bad:?} accepted");
        }
        assert!(checked_input_size(None, MODEL_NAME).is_err());
    }

    #[test]
    fn a_reader_model_declaring_no_row_gap_gets_none_and_an_outlandish_one_is_refused_at_load() {
        assert_eq!(checked_row_gap(None, MODEL_NAME).expect("absent"), 0);
        assert_eq!(checked_row_gap(Some("8"), MODEL_NAME).expect("eight"), 8);
        for bad in ["9", "-1", "4.5", "", "eight", "99999999999999999999"] {
            assert!(checked_row_gap(Some(bad), MODEL_NAME).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_character_that_lost_its_step_to_the_blank_is_kept_as_hidden_but_a_neighbours_tail_is_not() {
        // Classes: 0 blank, 1 '5', 2 '3'. Steps: 5 _ _ 5 | _ 5: the second blank step holds a '3' at 0.3
        // (a half-seen character); the blank after the first '5' holds that '5's tail at 0.4.
        let alphabet = ['5', '3'];
        let probs = [
            0.05, 0.9, 0.05, // 5
            0.55, 0.4, 0.05, // blank, the 5's tail
            0.65, 0.05, 0.3, // blank, a half-seen 3
            0.05, 0.9, 0.05, // 5
            0.9, 0.05, 0.05, // blank
            0.05, 0.9, 0.05, // 5
        ];
        let read = ctc_decode(&probs, 6, &alphabet, 2, 4.0);
        assert_eq!(read.rows, vec!["55".to_string(), "5".to_string()]);
        assert_eq!(read.hidden.len(), 1, "{:?}", read.hidden);
        let h = read.hidden[0];
        assert_eq!((h.index, h.ch, h.row), (1, '3', 0));
        assert!((h.probability - 0.3).abs() < 1e-6 && (h.blank - 0.65).abs() < 1e-6);
    }

    #[test]
    fn ctc_merges_repeats_drops_blanks_and_splits_rows_at_the_boundary() {
        // Classes: 0 blank, 1 '5', 2 'A'. Steps: 5 5 _ 5 A | A _ 5
        let alphabet = ['5', 'A'];
        let seq = [1, 1, 0, 1, 2, 2, 0, 1];
        let probs: Vec<f32> =
            seq.iter().flat_map(|&best| (0..3).map(move |c| if c == best { 0.9 } else { 0.05 })).collect();
        let read = ctc_decode(&probs, seq.len(), &alphabet, 2, 5.0);
        assert_eq!(read.rows, vec!["55A".to_string(), "5".to_string()]);
        assert!((read.confidence - 0.9).abs() < 1e-6);
        assert_eq!(read.chars.len(), 4);
    }

    #[test]
    fn each_character_keeps_its_best_probability_and_its_runner_up() {
        // Classes: 0 blank, 1 '1', 2 '7'. A '1' over two steps (0.6 then 0.8), '7' the runner-up.
        let alphabet = ['1', '7'];
        let probs = [0.1, 0.6, 0.3, 0.05, 0.8, 0.15, 0.9, 0.05, 0.05];
        let read = ctc_decode(&probs, 3, &alphabet, 1, 0.0);
        assert_eq!(read.rows, vec!["1".to_string()]);
        let c = read.chars[0];
        assert!((c.probability - 0.8).abs() < 1e-6);
        let (alt, p) = c.alternative.expect("runner-up");
        assert_eq!(alt, '7');
        assert!((p - 0.15).abs() < 1e-6);
    }
}
