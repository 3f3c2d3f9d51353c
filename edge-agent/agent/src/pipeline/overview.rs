//! The overview picture of an evidence record: the frame with the vehicle's box drawn on it and a data bar
//! (time, place, camera, device, event) added below it, as enforcement cameras print one, as JPEG.
//!
//! The bar is added under the frame rather than drawn over it, so no part of the scene is hidden. Its text is
//! the record's own facts; the seal covers the image, so the bar cannot be changed unseen either.

use ab_glyph::{point, Font, FontVec, PxScale, ScaleFont};
use image::codecs::jpeg::JpegEncoder;
use std::path::Path;
use te_types::{BBox, Frame};

const BOX_COLOUR: [u8; 3] = [255, 40, 40];
/// The rule's lines and zones (stop line, lane, zone, measuring lines): yellow, apart from the vehicle's red.
const RULE_COLOUR: [u8; 3] = [255, 215, 0];
const RULE_THICKNESS: u32 = 2;

const BOX_THICKNESS: u32 = 3;
const JPEG_QUALITY: u8 = 88;
const BAR_BACKGROUND: u8 = 0;
const TEXT_COLOUR: [f32; 3] = [255.0, 255.0, 255.0];

/// The font the data bar is written in (must cover Vietnamese; DejaVu does).
pub struct DataBarFont(pub(crate) FontVec);

impl std::fmt::Debug for DataBarFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataBarFont")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OverviewError {
    #[error(
        "data bar font {path}: {message} (install the Debian package fonts-dejavu-core, or set \
         evidence.data_bar_font to a TrueType font that covers Vietnamese)"
    )]
    Font { path: String, message: String },
    #[error("JPEG encoding: {0}")]
    Encode(#[from] image::ImageError),
}

impl DataBarFont {
    pub fn load(path: &Path) -> Result<Self, OverviewError> {
        let err = |message: String| OverviewError::Font { path: path.display().to_string(), message };
        let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let font = FontVec::try_from_vec(bytes).map_err(|e| err(e.to_string()))?;
        // A font without Vietnamese letters would print boxes where the place name should be.
        if font.glyph_id('đ').0 == 0 || font.glyph_id('ỗ').0 == 0 {
            return Err(err("has no Vietnamese letters".into()));
        }
        Ok(Self(font))
    }
}

/// Encodes `frame` with `bbox` outlined and the data bar `text` below it. The frame itself is not modified.
pub fn overview_jpeg(frame: &Frame, bbox: &BBox, text: &str, font: &DataBarFont) -> Result<Vec<u8>, OverviewError> {
    compose_jpeg(&[Panel::new(frame, Some(*bbox), String::new())], text, font)
}

/// One picture of a composed overview: a frame, the vehicle's box in it, the rule's lines, an enlarged inset
/// (the signal head), and a caption under it.
pub struct Panel<'a> {
    pub frame: &'a Frame,
    /// `None` for a close-up, which is all vehicle.
    pub bbox: Option<BBox>,
    /// Written under this panel (its moment and time); empty: no caption row.
    pub caption: String,
    /// Segments of the broken rule (stop line, lane or zone edges, measuring lines), in the frame's pixels.
    pub lines: Vec<[[f32; 2]; 2]>,
    /// An enlarged part of the same frame (the signal head) and its label, shown under the panel: nothing of
    /// the scene is covered.
    pub inset: Option<(Frame, String)>,
}

impl<'a> Panel<'a> {
    pub fn new(frame: &'a Frame, bbox: Option<BBox>, caption: String) -> Self {
        Self { frame, bbox, caption, lines: Vec::new(), inset: None }
    }
}

/// Encodes the panels side by side at full resolution (moments of a violation: before, at, after), each with
/// its box and caption, and the data bar `text` across the bottom. The frames are not modified.
pub fn compose_jpeg(panels: &[Panel<'_>], text: &str, font: &DataBarFont) -> Result<Vec<u8>, OverviewError> {
    let w: u32 = panels.iter().map(|p| p.frame.width).sum();
    let h = panels.iter().map(|p| p.frame.height).max().unwrap_or(0);
    let bar = (h / 18).max(22);
    // Rows, top to bottom: the frames; the insets with their labels (when any); the captions; the data bar.
    let insets = panels.iter().filter_map(|p| p.inset.as_ref()).map(|(f, _)| f.height).max().map(|ih| ih + bar);
    let captions = panels.iter().any(|p| !p.caption.is_empty());
    let total = h + insets.unwrap_or(0) + bar * (1 + u32::from(captions));
    let mut rgb = vec![BAR_BACKGROUND; (w * total * 3) as usize];
    let mut left = 0;
    for p in panels {
        let (pw, ph) = (p.frame.width, p.frame.height);
        let mut pixels = p.frame.rgb().into_owned();
        for &[a, b] in &p.lines {
            draw_segment(&mut pixels, (pw, ph), a, b, RULE_COLOUR, RULE_THICKNESS);
        }
        if let Some(bbox) = &p.bbox {
            draw_box(&mut pixels, pw, ph, bbox);
        }
        paste(&mut rgb, w, (left, 0), &pixels, pw);
        if let Some((inset, label)) = &p.inset {
            // Centred in the panel's column; one too wide for it is left out rather than cut.
            if inset.width <= pw {
                paste(&mut rgb, w, (left + (pw - inset.width) / 2, h), &inset.rgb(), inset.width);
                draw_text(&mut rgb, (w, total), (left, left + pw), (h + inset.height, bar), label, &font.0);
            }
        }
        if captions {
            let top = h + insets.unwrap_or(0);
            draw_text(&mut rgb, (w, total), (left, left + pw), (top, bar), &p.caption, &font.0);
        }
        left += pw;
    }
    let top = h + insets.unwrap_or(0) + if captions { bar } else { 0 };
    draw_text(&mut rgb, (w, total), (0, w), (top, bar), text, &font.0);
    let mut out = Vec::with_capacity(rgb.len() / 8);
    JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY).encode(&rgb, w, total, image::ExtendedColorType::Rgb8)?;
    Ok(out)
}

/// Copies the packed RGB8 picture `pixels` (`pw` wide) into `rgb` (`width` wide) at `(left, top)`.
fn paste(rgb: &mut [u8], width: u32, (left, top): (u32, u32), pixels: &[u8], pw: u32) {
    for (y, row) in pixels.chunks_exact((pw * 3) as usize).enumerate() {
        let at = (((top + y as u32) * width + left) * 3) as usize;
        if let Some(dst) = rgb.get_mut(at..at + row.len()) {
            dst.copy_from_slice(row);
        }
    }
}

/// The part `region` (x1, y1, x2, y2, whole pixels inside the frame) of `frame`, enlarged (bicubic) to
/// `height` pixels high with its aspect kept, as a frame of its own: a close-up panel (a rider's head). `None`
/// for an empty region or one outside the frame.
pub fn close_up(frame: &Frame, (x1, y1, x2, y2): (u32, u32, u32, u32), height: u32) -> Option<Frame> {
    if x2 <= x1 || y2 <= y1 || x2 > frame.width || y2 > frame.height || height == 0 {
        return None;
    }
    let part = image::RgbImage::from_raw(x2 - x1, y2 - y1, frame.rgb_region(x1, y1, x2, y2))?;
    let width = ((x2 - x1) as f32 * height as f32 / (y2 - y1) as f32).round().clamp(1.0, 4.0 * height as f32) as u32;
    let big = image::imageops::resize(&part, width, height, image::imageops::FilterType::CatmullRom);
    Some(Frame { width, height, pixels: te_types::Pixels::Rgb(std::sync::Arc::new(big.into_raw())), ..frame.clone() })
}

/// Width of `text` at `size` pixels.
fn text_width(font: &FontVec, size: f32, text: &str) -> f32 {
    let scaled = font.as_scaled(PxScale::from(size));
    let mut previous = None;
    text.chars()
        .map(|c| {
            let id = scaled.glyph_id(c);
            let kern = previous.map_or(0.0, |p| scaled.kern(p, id));
            previous = Some(id);
            kern + scaled.h_advance(id)
        })
        .sum()
}

/// Writes `text` in the bar (rows `top..top+bar`, columns `left..right` of a `width` x `height` picture),
/// left-aligned, shrunk to fit down to a legible minimum; below that, text that does not fit is cut at the edge.
pub(crate) fn draw_text(
    rgb: &mut [u8],
    (width, height): (u32, u32),
    (left, right): (u32, u32),
    (top, bar): (u32, u32),
    text: &str,
    font: &FontVec,
) {
    let nominal = bar as f32 * 0.62;
    let room = (right - left) as f32 - nominal * 0.8;
    let natural = text_width(font, nominal, text);
    let size = if natural > room { (nominal * room / natural).max(9.0) } else { nominal };
    let scaled = font.as_scaled(PxScale::from(size));
    let baseline = top as f32 + (bar as f32 + scaled.ascent() + scaled.descent()) / 2.0;
    let mut caret = left as f32 + size * 0.4;
    let mut previous = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = previous {
            caret += scaled.kern(p, id);
        }
        previous = Some(id);
        let glyph = id.with_scale_and_position(size, point(caret, baseline));
        caret += scaled.h_advance(id);
        let Some(outlined) = font.outline_glyph(glyph) else { continue };
        let bounds = outlined.px_bounds();
        outlined.draw(|gx, gy, coverage| {
            let x = bounds.min.x as i64 + i64::from(gx);
            let y = bounds.min.y as i64 + i64::from(gy);
            if x < i64::from(left) || y < i64::from(top) || x >= i64::from(right.min(width)) || y >= i64::from(height) {
                return;
            }
            let i = (y as usize * width as usize + x as usize) * 3;
            for (c, colour) in TEXT_COLOUR.iter().enumerate() {
                let v = &mut rgb[i + c];
                *v = (f32::from(*v) * (1.0 - coverage) + colour * coverage).round() as u8;
            }
        });
    }
}

/// A straight segment from `a` to `b` (pixels, clipped to the picture), `thickness` pixels wide.
pub(crate) fn draw_segment(
    rgb: &mut [u8],
    (width, height): (u32, u32),
    a: [f32; 2],
    b: [f32; 2],
    colour: [u8; 3],
    thickness: u32,
) {
    if !(a.iter().chain(&b).all(|v| v.is_finite())) {
        return;
    }
    let steps = (a[0] - b[0]).abs().max((a[1] - b[1]).abs()).ceil().clamp(1.0, 20_000.0) as u32;
    let half = thickness as i64 / 2;
    for i in 0..=steps {
        let t = i as f32 / steps as f32;
        let (x, y) = ((a[0] + (b[0] - a[0]) * t) as i64, (a[1] + (b[1] - a[1]) * t) as i64);
        for dy in -half..=(thickness as i64 - 1 - half) {
            for dx in -half..=(thickness as i64 - 1 - half) {
                let (px, py) = (x + dx, y + dy);
                if px >= 0 && py >= 0 && px < i64::from(width) && py < i64::from(height) {
                    let i = (py as usize * width as usize + px as usize) * 3;
                    rgb[i..i + 3].copy_from_slice(&colour);
                }
            }
        }
    }
}

fn draw_box(rgb: &mut [u8], width: u32, height: u32, bbox: &BBox) {
    draw_rect(rgb, (width, height), bbox, BOX_COLOUR, BOX_THICKNESS);
}

/// Draws the outline of `bbox` (clamped to the picture), `thickness` pixels wide, inwards.
pub(crate) fn draw_rect(rgb: &mut [u8], (width, height): (u32, u32), bbox: &BBox, colour: [u8; 3], thickness: u32) {
    if width == 0 || height == 0 {
        return;
    }
    let b = bbox.clamp_to(width - 1, height - 1);
    let (x1, y1, x2, y2) = (b.x1 as u32, b.y1 as u32, b.x2 as u32, b.y2 as u32);
    let mut put = |x: u32, y: u32| {
        let i = (y as usize * width as usize + x as usize) * 3;
        if let Some(px) = rgb.get_mut(i..i + 3) {
            px.copy_from_slice(&colour);
        }
    };
    for t in 0..thickness {
        for x in x1..=x2 {
            put(x, (y1 + t).min(y2));
            put(x, y2.saturating_sub(t).max(y1));
        }
        for y in y1..=y2 {
            put((x1 + t).min(x2), y);
            put(x2.saturating_sub(t).max(x1), y);
        }
    }
}

/// Fills `bbox` (clamped to the picture) with `colour`.
pub(crate) fn fill_rect(rgb: &mut [u8], (width, height): (u32, u32), bbox: &BBox, colour: [u8; 3]) {
    if width == 0 || height == 0 {
        return;
    }
    let b = bbox.clamp_to(width - 1, height - 1);
    for y in b.y1 as u32..=b.y2 as u32 {
        for x in b.x1 as u32..=b.x2 as u32 {
            let i = (y as usize * width as usize + x as usize) * 3;
            if let Some(px) = rgb.get_mut(i..i + 3) {
                px.copy_from_slice(&colour);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use te_types::CameraId;

    const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

    #[test]
    fn the_overview_is_the_frame_with_the_box_and_a_data_bar_below() {
        let frame = Frame {
            camera: CameraId::new("c"),
            number: 0,
            captured_at: chrono::Utc::now(),
            scene_cut: false,
            width: 400,
            height: 300,
            pixels: te_types::Pixels::Rgb(Arc::new(vec![0; 400 * 300 * 3])),
        };
        let font = DataBarFont::load(Path::new(FONT)).expect("DejaVu (scripts/setup installs fonts-dejavu-core)");
        let bbox = BBox { x1: 10.0, y1: 10.0, x2: 40.0, y2: 30.0 };
        let jpeg = overview_jpeg(&frame, &bbox, "2026-11-24 08:00:00 UTC · Ngã tư Lê Lợi", &font).expect("encode");
        let decoded = image::load_from_memory(&jpeg).expect("decode").into_rgb8();
        assert_eq!(decoded.dimensions(), (400, 300 + 22));
        assert!(decoded.get_pixel(10, 20)[0] > 180, "left edge is red");
        assert!(decoded.get_pixel(25, 20)[0] < 40, "inside stays dark");
        let bright_in_bar = (300..322)
            .flat_map(|y| (0..400).map(move |x| (x, y)))
            .filter(|&(x, y)| decoded.get_pixel(x, y)[1] > 128)
            .count();
        assert!(bright_in_bar > 200, "the bar carries text ({bright_in_bar} bright pixels)");
        assert!(frame.rgb().iter().all(|&v| v == 0), "the frame is untouched");
    }

    #[test]
    fn violation_moments_are_composed_side_by_side_with_captions_and_a_data_bar() {
        let frame = |v: u8| Frame {
            camera: CameraId::new("c"),
            number: 0,
            captured_at: chrono::Utc::now(),
            scene_cut: false,
            width: 200,
            height: 100,
            pixels: te_types::Pixels::Rgb(Arc::new(vec![v; 200 * 100 * 3])),
        };
        let (a, b, c) = (frame(10), frame(60), frame(110));
        let font = DataBarFont::load(Path::new(FONT)).expect("font");
        let bbox = BBox { x1: 50.0, y1: 20.0, x2: 90.0, y2: 60.0 };
        let panels: Vec<Panel<'_>> =
            [&a, &b, &c].into_iter().map(|f| Panel::new(f, Some(bbox), "Vi phạm · at".into())).collect();
        let jpeg = compose_jpeg(&panels, "Vượt đèn đỏ (red_light)", &font).expect("encode");
        let decoded = image::load_from_memory(&jpeg).expect("decode").into_rgb8();
        assert_eq!(decoded.dimensions(), (600, 100 + 2 * 22));
        for (i, v) in [10u8, 60, 110].into_iter().enumerate() {
            let px = decoded.get_pixel(i as u32 * 200 + 10, 90)[1];
            assert!(px.abs_diff(v) < 8, "panel {i} holds its own frame ({px} vs {v})");
        }
    }

    #[test]
    fn a_close_up_is_the_region_enlarged_to_the_height_asked_with_its_aspect_kept() {
        let mut data = vec![0u8; 200 * 100 * 3];
        for y in 20..40 {
            for x in 50..90 {
                data[(y * 200 + x) * 3] = 250;
            }
        }
        let frame = Frame {
            camera: CameraId::new("c"),
            number: 7,
            captured_at: chrono::Utc::now(),
            scene_cut: false,
            width: 200,
            height: 100,
            pixels: te_types::Pixels::Rgb(Arc::new(data)),
        };
        let up = close_up(&frame, (50, 20, 90, 40), 60).expect("close-up");
        assert_eq!((up.width, up.height, up.number), (120, 60, 7));
        assert!(up.rgb().chunks_exact(3).all(|p| p[0] > 200), "all of it is the red region");
        assert!(close_up(&frame, (150, 20, 250, 40), 60).is_none(), "outside the frame");
        assert!(close_up(&frame, (50, 20, 50, 40), 60).is_none(), "empty");
    }

    #[test]
    fn a_missing_font_or_one_without_vietnamese_is_refused_with_the_package_named() {
        let err = DataBarFont::load(Path::new("/nonexistent.ttf")).expect_err("missing");
        assert!(err.to_string().contains("fonts-dejavu-core"));
        let mono = Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf");
        let err = DataBarFont::load(mono).expect_err("DejaVu Sans Mono lacks Vietnamese letters");
        assert!(err.to_string().contains("Vietnamese"), "{err}");
    }
}
