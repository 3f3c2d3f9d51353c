//! Plate recognition: detector, perspective crop, reader and the plate grammar, put together.
//!
//! ```text
//!  picture -> PlateDetector -> corners -> rectify -> PlateReader -> rows -> te_plate::parse -> PlateRead
//! ```
//!
//! Two entry points: [`PlateRecognizer::read_plates`] for scenes (vehicle crops, frames), and
//! [`PlateRecognizer::read_plate_picture`] for pictures that are already one plate (crop datasets, the
//! evaluation command). The detector was trained on scenes and rarely fires on a picture the plate fills, so the
//! latter reads the whole picture unless the detector finds a plate covering a good part of it.

use crate::plate_detector::{PlateDetection, PlateDetector, PlateDetectorSettings};
use crate::plate_reader::{PlateFormat, PlateReader, PlateReaderSettings, RawRead};
use crate::rectify::{natural_size, rectify, RgbView};
use crate::{InferError, ModelDirs, Runtime};
use te_types::{PlateLayout, PlateRead};

/// Reads at most this many plates per picture (a vehicle crop rarely shows more than one).
const MAX_PLATES_PER_PICTURE: usize = 4;
/// Picture width/height below which a whole-picture plate is taken as a square two-row plate. Vietnamese
/// plates are 520x110 mm (4.7) on one row and 190x140 mm (1.4) or 330x165 mm (2.0) on two rows.
const TWO_ROW_ASPECT_BELOW: f32 = 2.6;
/// A detection must cover this share of a plate picture to be preferred over the whole picture.
const MIN_SHARE_OF_PLATE_PICTURE: f32 = 0.25;
/// Rectified rows are made at least this tall so that the reader does not resample twice from tiny crops.
const MIN_ROW_HEIGHT: f32 = 48.0;

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
    format: PlateFormat,
}

impl PlateRecognizer {
    pub fn load(runtime: &Runtime, dirs: &ModelDirs, settings: RecognizerSettings) -> Result<Self, InferError> {
        Ok(Self {
            format: settings.reader.format,
            detector: PlateDetector::load(runtime, dirs, settings.detector)?,
            reader: PlateReader::load(runtime, dirs, &settings.reader)?,
        })
    }

    /// Finds and reads the plates in a scene, best detection first.
    pub fn read_plates(&mut self, picture: RgbView<'_>) -> Result<Vec<PlateRead>, InferError> {
        let detections = self.detector.detect(picture)?;
        let mut reads = Vec::new();
        for detection in detections.into_iter().take(MAX_PLATES_PER_PICTURE) {
            if let Some(read) = self.read_detection(picture, &detection)? {
                reads.push(read);
            }
        }
        Ok(reads)
    }

    /// Reads a picture that is one plate: through the detector when it finds the plate, else as a whole.
    pub fn read_plate_picture(&mut self, picture: RgbView<'_>) -> Result<PlateRead, InferError> {
        let area = picture.width as f32 * picture.height as f32;
        let best = self.detector.detect(picture)?.into_iter().next();
        if let Some(detection) = best.filter(|d| d.bbox.area() >= MIN_SHARE_OF_PLATE_PICTURE * area) {
            if let Some(read) = self.read_detection(picture, &detection)? {
                return Ok(read);
            }
        }
        let (w, h) = (picture.width as f32, picture.height as f32);
        let layout = if w / h < TWO_ROW_ASPECT_BELOW { PlateLayout::TwoLine } else { PlateLayout::OneLine };
        let raw = self.reader.read(picture, layout)?;
        Ok(finish(self.format, raw, layout, [[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]], 1.0))
    }

    fn read_detection(
        &mut self,
        picture: RgbView<'_>,
        detection: &PlateDetection,
    ) -> Result<Option<PlateRead>, InferError> {
        let (w, h) = natural_size(&detection.corners);
        let rows = match detection.layout {
            PlateLayout::OneLine => 1.0,
            PlateLayout::TwoLine => 2.0,
        };
        let upscale = (MIN_ROW_HEIGHT * rows / h as f32).max(1.0);
        let (w, h) = ((w as f32 * upscale).round() as u32, (h as f32 * upscale).round() as u32);
        let Some(plate) = rectify(picture, &detection.corners, w, h) else {
            return Ok(None); // degenerate corners: nothing to read
        };
        let raw = self.reader.read(RgbView::of_image(&plate), detection.layout)?;
        Ok(Some(finish(self.format, raw, detection.layout, detection.corners, detection.score)))
    }
}

/// Applies the plate grammar to the rows read (Vietnamese plates), or takes them as read (other plates).
fn finish(format: PlateFormat, raw: RawRead, layout: PlateLayout, corners: [[f32; 2]; 4], score: f32) -> PlateRead {
    let row_refs: Vec<&str> = raw.rows.iter().map(String::as_str).collect();
    let (text, unreadable_reason) = match format {
        PlateFormat::Vietnam => match te_plate::parse(&row_refs, Some(layout)) {
            Ok(plate) => (Some(plate.display()), None),
            Err(why) => (None, Some(why.to_string())),
        },
        PlateFormat::Latin if row_refs.iter().all(|r| r.is_empty()) => (None, Some("no characters were read".into())),
        PlateFormat::Latin => (Some(row_refs.join("/")), None),
    };
    PlateRead {
        text,
        raw: raw.rows.join("/"),
        unreadable_reason,
        confidence: raw.confidence,
        layout,
        corners,
        detector_score: score,
    }
}
