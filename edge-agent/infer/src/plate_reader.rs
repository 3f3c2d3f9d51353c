//! Plate reader: turns an upright plate picture into rows of characters (PP-OCRv6 small text recogniser, CTC,
//! through ort).
//!
//! ```text
//!  plate (RGB) -> rows (1 or 2 bands) -> each row to height 48, side by side -> pad to 320 -> ort -> CTC
//! ```
//!
//! Input `x` [1,3,48,W] BGR, (v/255 - 0.5)/0.5; output [1,W/8,C] per-step class probabilities, class 0 the CTC
//! blank, class i the i-th line of the charset file. Decisions, each measured on the Vietnamese crops:
//! - The two rows of a square plate are read in one pass, side by side: one run instead of two, and as accurate.
//! - The input is padded to 320 wide, as PaddleOCR does: reading unpadded is faster but loses ~7 points of
//!   exact matches.
//! - Only the characters a Vietnamese plate can carry compete in the CTC decode (the other ~18,700 classes of
//!   the Chinese/Latin charset are ignored), which removes look-alike glyphs such as `О`, `Ⅰ` or `口`.

use crate::letterbox::{resize_into_chw, Canvas};
use crate::rectify::RgbView;
use crate::{InferError, ModelDirs, ModelManifest, Runtime};
use ort::session::Session;
use ort::value::Tensor;
use te_types::PlateLayout;

const MODEL_NAME: &str = "plate_reader";
const CHARSET_NAME: &str = "plate_reader_charset";
const HEIGHT: usize = 48;
const WIDTH: usize = 320;
/// Where the rows of a two-line plate are cut: the top row is the upper 55%, the bottom row the lower 55%.
/// The overlap keeps characters whole when the plate is not perfectly centred in its crop.
const TOP_ROW_END: f32 = 0.55;
const BOTTOM_ROW_START: f32 = 0.45;

/// Which plates the reader expects: it decides the characters allowed to win the CTC decode and whether the
/// Vietnamese grammar checks the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlateFormat {
    /// Vietnamese plates: the plate alphabet (no I, J, O, Q, W) and the grammar of `te_plate`.
    #[default]
    Vietnam,
    /// Any Latin plate (foreign test sets): A-Z and 0-9, no grammar.
    Latin,
}

impl PlateFormat {
    fn alphabet(self) -> &'static str {
        match self {
            Self::Vietnam => te_plate::PLATE_ALPHABET,
            Self::Latin => "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        }
    }
}

/// Tuning of the plate reader.
#[derive(Debug, Clone)]
pub struct PlateReaderSettings {
    /// ONNX Runtime intra-op threads.
    pub threads: usize,
    pub format: PlateFormat,
}

impl Default for PlateReaderSettings {
    fn default() -> Self {
        Self { threads: 1, format: PlateFormat::Vietnam }
    }
}

/// The characters read from one plate, before the grammar looks at them.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRead {
    /// One string per row, top first.
    pub rows: Vec<String>,
    /// Mean probability of the characters read; 0 when nothing was read.
    pub confidence: f32,
}

pub struct PlateReader {
    session: Session,
    /// (CTC class, character) for every class allowed to win.
    allowed: Vec<(usize, char)>,
    classes: usize,
    input: Vec<f32>,
}

impl std::fmt::Debug for PlateReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlateReader").field("classes", &self.classes).finish()
    }
}

impl PlateReader {
    pub fn load(runtime: &Runtime, dirs: &ModelDirs, settings: &PlateReaderSettings) -> Result<Self, InferError> {
        let charset_path = ModelManifest::embedded()?.verified_path(CHARSET_NAME, dirs)?;
        let charset = std::fs::read_to_string(&charset_path)
            .map_err(|source| InferError::Io { path: charset_path.clone(), source })?;
        let (allowed, classes) = plate_classes(&charset, settings.format.alphabet());
        let session = runtime.session(MODEL_NAME, dirs, settings.threads)?;
        Ok(Self { session, allowed, classes, input: Vec::new() })
    }

    /// Reads an upright plate picture (a rectified crop, or a crop dataset's image).
    pub fn read(&mut self, plate: RgbView<'_>, layout: PlateLayout) -> Result<RawRead, InferError> {
        let (w, h) = (plate.width as usize, plate.height as usize);
        let bands: Vec<(usize, usize)> = match layout {
            PlateLayout::OneLine => vec![(0, h)],
            PlateLayout::TwoLine => {
                let top_end = ((h as f32 * TOP_ROW_END).round() as usize).clamp(1, h);
                let bottom_start = ((h as f32 * BOTTOM_ROW_START).round() as usize).min(h - 1);
                vec![(0, top_end), (bottom_start, h)]
            }
        };
        // Each row at height 48, keeping its aspect; squeezed together if the rows are wider than the input.
        let natural: Vec<usize> =
            bands.iter().map(|&(y0, y1)| ((HEIGHT * w) as f32 / (y1 - y0) as f32).ceil() as usize).collect();
        let total: usize = natural.iter().sum();
        let squeeze = if total > WIDTH { WIDTH as f32 / total as f32 } else { 1.0 };
        let widths: Vec<usize> = natural.iter().map(|n| ((*n as f32 * squeeze) as usize).max(1)).collect();

        let mut input = std::mem::take(&mut self.input);
        input.clear();
        input.resize(3 * HEIGHT * WIDTH, 0.0);
        let mut x = 0;
        let stride = w * 3;
        for (&(y0, y1), &row_width) in bands.iter().zip(&widths) {
            let canvas = Canvas { width: WIDTH, height: HEIGHT, x, y: 0 };
            let band = &plate.data[y0 * stride..y1 * stride];
            resize_into_chw(band, w, y1 - y0, row_width, HEIGHT, &canvas, true, |v| v / 127.5 - 1.0, &mut input);
            x += row_width;
        }
        let session_err = |message: String| InferError::Session { name: MODEL_NAME.into(), message };
        let tensor = Tensor::from_array(([1i64, 3, HEIGHT as i64, WIDTH as i64], input))
            .map_err(|e| session_err(e.to_string()))?;
        let outputs = self.session.run(ort::inputs!["x" => tensor]).map_err(|e| session_err(e.to_string()))?;
        let (shape, probs) = outputs[0].try_extract_tensor::<f32>().map_err(|e| session_err(e.to_string()))?;
        let dims: Vec<i64> = shape.iter().copied().collect();
        if dims.len() != 3 || dims[2] as usize != self.classes || probs.len() != (dims[1] * dims[2]) as usize {
            return Err(InferError::Output {
                name: MODEL_NAME.into(),
                message: format!("expected [1, T, {}], got {dims:?}", self.classes),
            });
        }
        let steps = dims[1] as usize;
        // Characters whose CTC step lies left of the first row's right edge belong to the top row.
        let row_boundary_step = widths[0] as f32 * steps as f32 / WIDTH as f32;
        Ok(ctc_decode(probs, steps, self.classes, &self.allowed, bands.len(), row_boundary_step))
    }
}

/// From the charset file: the CTC classes of the plate alphabet, and the number of classes the model outputs
/// (blank + one per line + the trailing space class).
fn plate_classes(charset: &str, alphabet: &str) -> (Vec<(usize, char)>, usize) {
    let lines: Vec<&str> = charset.lines().collect();
    let mut allowed = vec![(0usize, '\0')];
    for (i, line) in lines.iter().enumerate() {
        let mut chars = line.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            if alphabet.contains(c) {
                allowed.push((i + 1, c));
            }
        }
    }
    (allowed, lines.len() + 2)
}

/// Greedy CTC decode over the allowed classes: best class per step, repeats merged, blanks dropped.
fn ctc_decode(
    probs: &[f32],
    steps: usize,
    classes: usize,
    allowed: &[(usize, char)],
    rows: usize,
    row_boundary_step: f32,
) -> RawRead {
    let mut out = vec![String::new(); rows.max(1)];
    let mut confidences = Vec::new();
    let mut previous = 0usize;
    for t in 0..steps {
        let step = &probs[t * classes..(t + 1) * classes];
        let (class, c, p) = allowed
            .iter()
            .map(|&(class, c)| (class, c, step[class]))
            .max_by(|a, b| a.2.total_cmp(&b.2))
            .unwrap_or((0, '\0', 0.0));
        if class != 0 && class != previous {
            let row = if rows == 2 && (t as f32 + 0.5) >= row_boundary_step { 1 } else { 0 };
            out[row].push(c);
            confidences.push(p);
        }
        previous = class;
    }
    let confidence =
        if confidences.is_empty() { 0.0 } else { confidences.iter().sum::<f32>() / confidences.len() as f32 };
    RawRead { rows: out, confidence }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plate_characters_are_allowed_classes() {
        let (allowed, classes) = plate_classes("0\nO\nA\n口\nI\nab\n", te_plate::PLATE_ALPHABET);
        assert_eq!(classes, 8);
        assert_eq!(allowed, vec![(0, '\0'), (1, '0'), (3, 'A')]);
    }

    #[test]
    fn ctc_merges_repeats_drops_blanks_and_splits_rows_at_the_boundary() {
        // Classes: 0 blank, 1 '5', 2 'A'. Steps: 5 5 _ 5 A | A _ 5
        let allowed = [(0, '\0'), (1, '5'), (2, 'A')];
        let seq = [1, 1, 0, 1, 2, 2, 0, 1];
        let probs: Vec<f32> =
            seq.iter().flat_map(|&best| (0..3).map(move |c| if c == best { 0.9 } else { 0.05 })).collect();
        let read = ctc_decode(&probs, seq.len(), 3, &allowed, 2, 5.0);
        assert_eq!(read.rows, vec!["55A".to_string(), "5".to_string()]);
        assert!((read.confidence - 0.9).abs() < 1e-6);
    }
}
