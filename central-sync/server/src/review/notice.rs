//! The violation notice ("thông báo vi phạm") for the vehicle's owner: one A4 page in Vietnamese per approved
//! offence, with the overview, the plate close-up, time, place, offence, measurement, device and seal, who
//! approved it, and where to verify the record. Drawn with krilla (text shaped by rustybuzz, the font embedded).

use super::{kind_name, owner_deadline, RESPONSE_DAYS};
use crate::store::QueueEntry;
use crate::web::{local_time, Lang};
use central_protocol::Seal;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect, Size, Transform};
use krilla::image::Image;
use krilla::metadata::Metadata;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::surface::Surface;
use krilla::text::{Font, TextDirection};
use krilla::Document;
use std::sync::OnceLock;

/// DejaVu covers Vietnamese; `scripts/setup` installs it (Debian `fonts-dejavu-core`).
const FONT_REGULAR: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const FONT_BOLD: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";

/// A4 in points.
const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 40.0;
/// DejaVu Sans' widest ordinary letters are about 0.62 em: lines are wrapped to fit at that width.
const EM_WIDTH: f32 = 0.62;

/// What the notice says, in Vietnamese, as the service has it for an approved case.
#[derive(Debug, Clone)]
pub struct NoticeFacts {
    pub evidence_id: String,
    pub plate: String,
    pub offence: String,
    /// The rule the box applied and what it measured (e.g. the time after the light turned red).
    pub rule: Option<String>,
    pub measurement: Option<String>,
    pub time: String,
    pub place: String,
    pub camera: String,
    pub device: String,
    pub vehicle: String,
    pub record_sha256: String,
    pub public_key: String,
    pub approved_by: String,
    pub approved_at: String,
    pub owner_deadline: String,
    pub response_days: i64,
    /// Where anyone with access can check the record.
    pub verify_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    /// The font is missing or unusable (`scripts/setup` installs it).
    #[error("{0}")]
    Font(String),
    #[error("the {what} picture is not a JPEG the notice can hold: {why}")]
    Picture { what: &'static str, why: String },
    #[error("the PDF could not be written: {0:?}")]
    Pdf(krilla::error::KrillaError),
}

struct Fonts {
    regular: Font,
    bold: Font,
}

fn load(path: &str) -> Result<Font, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("font {path}: {e} (Debian fonts-dejavu-core)"))?;
    Font::new(bytes.into(), 0).ok_or_else(|| format!("font {path} is not a usable TrueType font"))
}

/// The fonts, read once; a failure is kept and reported on each notice (the rest of the service works on).
fn fonts() -> Result<&'static Fonts, NoticeError> {
    static FONTS: OnceLock<Result<Fonts, String>> = OnceLock::new();
    FONTS
        .get_or_init(|| Ok(Fonts { regular: load(FONT_REGULAR)?, bold: load(FONT_BOLD)? }))
        .as_ref()
        .map_err(|e| NoticeError::Font(e.clone()))
}

/// Text drawn top to bottom on one page.
struct Pen<'a, 'b> {
    surface: &'a mut Surface<'b>,
    fonts: &'static Fonts,
    y: f32,
}

impl Pen<'_, '_> {
    fn text(&mut self, x: f32, size: f32, bold: bool, text: &str) {
        let font = if bold { self.fonts.bold.clone() } else { self.fonts.regular.clone() };
        self.surface.draw_text(Point::from_xy(x, self.y + size), font, size, text, false, TextDirection::Auto);
    }

    /// `text` wrapped into `width`, one line after another; returns the lines' height.
    fn paragraph(&mut self, x: f32, width: f32, size: f32, bold: bool, text: &str) -> f32 {
        let start = self.y;
        for line in wrap(text, width, size) {
            self.text(x, size, bold, &line);
            self.y += size * 1.3;
        }
        let height = self.y - start;
        self.y = start;
        height
    }

    /// A label and its value in two columns; moves down past the taller.
    fn row(&mut self, label: &str, value: &str, x: f32, width: f32) {
        self.row_sized(label, value, x, width, 10.0);
    }

    /// As `row`, the value at `size` points (hashes and keys small enough to stay on one line).
    fn row_sized(&mut self, label: &str, value: &str, x: f32, width: f32, size: f32) {
        let label_w = 120.0;
        let a = self.paragraph(x, label_w - 6.0, 10.0, true, label);
        let b = self.paragraph(x + label_w, width - label_w, size, false, value);
        self.y += a.max(b) + 3.0;
    }
}

/// Greedy word wrap by estimated width (no font metrics needed: DejaVu's letters are narrower than EM_WIDTH).
fn wrap(text: &str, width: f32, size: f32) -> Vec<String> {
    let max_chars = ((width / (size * EM_WIDTH)).floor() as usize).max(8);
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let mut word = word.to_string();
            // A word longer than a line (a hash, a URL) is cut.
            while word.chars().count() > max_chars {
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                let cut: String = word.chars().take(max_chars).collect();
                word = word.chars().skip(max_chars).collect();
                lines.push(cut);
            }
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > max_chars {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&word);
        }
        lines.push(line);
    }
    lines
}

/// Draws `jpeg` fitted into the box at (x, y, w, h), aspect kept, with a thin frame; returns the height used.
fn picture(
    surface: &mut Surface,
    what: &'static str,
    jpeg: &[u8],
    x: f32,
    y: f32,
    w: f32,
    h: f32,
) -> Result<f32, NoticeError> {
    let image = Image::from_jpeg(jpeg.to_vec().into(), true).map_err(|why| NoticeError::Picture { what, why })?;
    let (pw, ph) = image.size();
    if pw == 0 || ph == 0 {
        return Err(NoticeError::Picture { what, why: "empty".into() });
    }
    let scale = (w / pw as f32).min(h / ph as f32);
    let (dw, dh) = (pw as f32 * scale, ph as f32 * scale);
    let size = Size::from_wh(dw, dh).ok_or(NoticeError::Picture { what, why: "no size".into() })?;
    surface.push_transform(&Transform::from_translate(x, y));
    surface.draw_image(image, size);
    surface.pop();
    frame(surface, x, y, dw, dh);
    Ok(dh)
}

/// In place of a picture that cannot be embedded: a framed note saying so and where the record is; the notice
/// is still made (its facts stand), and the case page shows the picture as stored.
fn missing_picture(pen: &mut Pen, e: &NoticeError, url: &str, width: f32, height: f32) -> f32 {
    tracing::warn!(error = %e, "a picture is left out of a notice");
    frame(pen.surface, MARGIN, pen.y, width, height);
    let start = pen.y;
    pen.y += 6.0;
    pen.paragraph(MARGIN + 6.0, width - 12.0, 8.0, false, &format!("Không hiển thị được ảnh trong bản in. {url}"));
    pen.y = start;
    height
}

fn frame(surface: &mut Surface, x: f32, y: f32, w: f32, h: f32) {
    let Some(rect) = Rect::from_xywh(x, y, w, h) else { return };
    let mut path = PathBuilder::new();
    path.push_rect(rect);
    let Some(path) = path.finish() else { return };
    surface.set_fill(None);
    surface.set_stroke(Some(Stroke { paint: rgb::Color::new(90, 90, 90).into(), width: 0.6, ..Stroke::default() }));
    surface.draw_path(&path);
    surface.set_stroke(None);
    surface.set_fill(Some(Fill::default()));
}

/// The notice as a PDF. `overview` and `plate` are the sealed JPEGs the box sent.
pub fn render(facts: &NoticeFacts, overview: &[u8], plate: Option<&[u8]>) -> Result<Vec<u8>, NoticeError> {
    let fonts = fonts()?;
    let mut document = Document::new();
    document.set_metadata(
        Metadata::new()
            .title(format!("Thông báo vi phạm {}", facts.evidence_id))
            .language("vi".into())
            .creator("traffic-edge central-sync".into()),
    );
    let settings =
        PageSettings::from_wh(PAGE_W, PAGE_H).ok_or(NoticeError::Picture { what: "page", why: "size".into() })?;
    let mut page = document.start_page_with(settings);
    let mut surface = page.surface();
    let width = PAGE_W - 2.0 * MARGIN;
    let mut pen = Pen { surface: &mut surface, fonts, y: MARGIN };

    pen.text(MARGIN, 9.0, false, "CỘNG HOÀ XÃ HỘI CHỦ NGHĨA VIỆT NAM — Độc lập - Tự do - Hạnh phúc");
    pen.y += 18.0;
    pen.text(MARGIN, 15.0, true, "THÔNG BÁO VI PHẠM HÀNH CHÍNH");
    pen.y += 20.0;
    pen.text(
        MARGIN,
        10.0,
        false,
        "về trật tự, an toàn giao thông đường bộ, phát hiện qua hệ thống giám sát (phạt nguội)",
    );
    pen.y += 15.0;
    pen.text(MARGIN, 9.0, false, &format!("Số hồ sơ: {}", facts.evidence_id));
    pen.y += 16.0;

    let used = match picture(pen.surface, "overview", overview, MARGIN, pen.y, width, 300.0) {
        Ok(used) => used,
        Err(e) => missing_picture(&mut pen, &e, &facts.verify_url, width, 60.0),
    };
    pen.y += used + 10.0;

    let top = pen.y;
    let mut facts_x = MARGIN;
    if let Some(plate) = plate {
        match picture(pen.surface, "plate", plate, MARGIN, top, 120.0, 90.0) {
            Ok(used) => {
                pen.y = top + used + 2.0;
                pen.text(MARGIN, 8.0, false, "Ảnh biển số (bản gốc từ thiết bị)");
            }
            Err(e) => {
                missing_picture(&mut pen, &e, "", 120.0, 90.0);
            }
        }
        pen.y = top;
        facts_x = MARGIN + 132.0;
    }
    let facts_w = PAGE_W - MARGIN - facts_x;
    pen.row("Biển số", &facts.plate, facts_x, facts_w);
    pen.row("Hành vi vi phạm", &facts.offence, facts_x, facts_w);
    if let Some(rule) = &facts.rule {
        pen.row("Quy tắc áp dụng", rule, facts_x, facts_w);
    }
    if let Some(measured) = &facts.measurement {
        pen.row("Kết quả đo", measured, facts_x, facts_w);
    }
    pen.row("Thời gian", &facts.time, facts_x, facts_w);
    pen.row("Địa điểm", &format!("{} (camera {})", facts.place, facts.camera), facts_x, facts_w);
    pen.row("Phương tiện", &facts.vehicle, facts_x, facts_w);
    pen.y = pen.y.max(top + 110.0);
    pen.row("Thiết bị ghi hình", &facts.device, MARGIN, width);
    pen.row_sized("Niêm phong (SHA-256)", &facts.record_sha256, MARGIN, width, 8.0);
    pen.row_sized("Khoá thiết bị (Ed25519)", &facts.public_key, MARGIN, width, 8.0);
    pen.row("Người duyệt", &format!("{}, lúc {}", facts.approved_by, facts.approved_at), MARGIN, width);
    pen.row("Kiểm tra bản ghi", &facts.verify_url, MARGIN, width);
    pen.y += 8.0;
    let request = format!(
        "Đề nghị chủ phương tiện (hoặc người điều khiển phương tiện) liên hệ cơ quan Công an nơi phát hiện vi phạm để \
         giải quyết. Cơ quan xử lý xác minh, thông báo chủ xe trước ngày {}; chủ xe không liên hệ sau {} ngày kể \
         từ ngày nhận thông báo thì được giải quyết qua Cổng dịch vụ công (Thông tư 73/2024/TT-BCA). Hình ảnh và dữ \
         liệu trên được thiết bị ký số khi ghi nhận và không thể sửa đổi mà không bị phát hiện.",
        facts.owner_deadline, facts.response_days
    );
    pen.paragraph(MARGIN, width, 9.5, false, &request);
    surface.finish();
    page.finish();
    document.finish().map_err(NoticeError::Pdf)
}

/// What the notice of an approved case says; `base` is the service's public address.
pub fn facts(entry: &QueueEntry, seal: &Seal, base: &str) -> NoticeFacts {
    let r = &entry.record;
    let id = r.evidence_id.to_string();
    NoticeFacts {
        plate: entry.plate().unwrap_or("—").to_string(),
        offence: kind_name(Lang::Vi, r.kind).to_string(),
        rule: r.violation.as_ref().map(|v| v.rule.clone()).filter(|s| !s.trim().is_empty()),
        measurement: r.violation.as_ref().map(|v| super::view::measurement(Lang::Vi, v)).filter(|s| !s.is_empty()),
        time: format!("{} (giờ Việt Nam)", local_time(r.captured_at)),
        place: r.location.clone(),
        camera: r.camera_id.to_string(),
        device: r.device_id.to_string(),
        vehicle: r.vehicle_class.vietnamese().to_string(),
        record_sha256: seal.record_sha256.clone(),
        public_key: seal.public_key.clone(),
        approved_by: entry.decided_by.clone().unwrap_or_else(|| "—".into()),
        approved_at: entry.decided_at.map(local_time).unwrap_or_else(|| "—".into()),
        owner_deadline: local_time(owner_deadline(r.captured_at)).get(..10).unwrap_or_default().to_string(),
        response_days: RESPONSE_DAYS,
        verify_url: format!("{base}/evidence/{id}"),
        evidence_id: id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_words_and_lines_are_wrapped_to_the_width() {
        let lines = wrap(&format!("Niêm phong {}", "a".repeat(100)), 200.0, 10.0);
        let max = (200.0 / (10.0 * EM_WIDTH)) as usize;
        assert!(lines.iter().all(|l| l.chars().count() <= max), "{lines:?}");
        assert_eq!(lines.concat().replace(' ', "").len(), "Niêmphong".len() + 100);
        assert_eq!(wrap("", 200.0, 10.0), vec![String::new()]);
    }
}
