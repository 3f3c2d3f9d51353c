//! What a violation's picture shows beyond the frames themselves, so that it proves the offence on its own
//! (Decree 135/2021, Art. 17): the broken rule's line or zone drawn on every moment, the signal head enlarged
//! under each moment with the phase it showed then, and the plate as the best read saw it.
//!
//! Scene geometry is in the scene's `frame_size` pixels and is scaled to each frame here. Nothing is drawn
//! over the scene but the rule's thin lines and the vehicle's box; insets go in a row of their own.

use crate::pipeline::overview::close_up;
use sha2::{Digest, Sha256};
use te_rules::Scene;
use te_types::{Frame, PlateConsensus, SignalPhase, ViolationKind};

/// Pixels of background kept around the signal heads in their inset.
const HEAD_MARGIN: f32 = 6.0;

/// Scale factors from the scene's `frame_size` pixels to a `width` x `height` frame's.
fn to_frame(scene: &Scene, (width, height): (u32, u32)) -> (f32, f32) {
    (width as f32 / scene.frame_size[0].max(1) as f32, height as f32 / scene.frame_size[1].max(1) as f32)
}

/// The segments of the rule `name` of kind `kind`, in the pixels of a `width` x `height` frame: the stop line,
/// the lane's or zone's outline, or the section's two measuring lines. Empty for rules without geometry (no
/// helmet) or a name the scene does not have.
pub fn rule_lines(scene: &Scene, kind: ViolationKind, name: &str, size: (u32, u32)) -> Vec<[[f32; 2]; 2]> {
    let (sx, sy) = to_frame(scene, size);
    let scale = |p: [f32; 2]| [p[0] * sx, p[1] * sy];
    let outline = |points: &[[f32; 2]]| -> Vec<[[f32; 2]; 2]> {
        (0..points.len()).map(|i| [scale(points[i]), scale(points[(i + 1) % points.len()])]).collect()
    };
    match kind {
        ViolationKind::RedLight | ViolationKind::StopLine => {
            scene.stop_lines.iter().filter(|(n, _)| n == name).map(|(_, l)| [scale(l.a), scale(l.b)]).collect()
        }
        ViolationKind::WrongWay | ViolationKind::WrongLane => {
            scene.lanes.iter().filter(|l| l.name == name).flat_map(|l| outline(&l.polygon.0)).collect()
        }
        ViolationKind::IllegalStopping => {
            scene.no_stopping.iter().filter(|z| z.name == name).flat_map(|z| outline(&z.polygon.0)).collect()
        }
        ViolationKind::Speeding => scene
            .speed_sections
            .iter()
            .filter(|s| s.name == name)
            .flat_map(|s| [[scale(s.entry.a), scale(s.entry.b)], [scale(s.exit.a), scale(s.exit.b)]])
            .collect(),
        ViolationKind::NoHelmet => Vec::new(),
    }
}

/// The scene's signal heads in `frame`, enlarged to `height` pixels, labelled with the phase they showed then
/// (as the judge read it); `None` when the scene names no heads.
pub fn signal_inset(scene: &Scene, frame: &Frame, phase: SignalPhase, height: u32) -> Option<(Frame, String)> {
    let (sx, sy) = to_frame(scene, (frame.width, frame.height));
    let heads = &scene.signal.heads;
    let fold = |pick: fn(&[f32; 4]) -> f32, start: f32, f: fn(f32, f32) -> f32| heads.iter().map(pick).fold(start, f);
    if heads.is_empty() {
        return None;
    }
    let x1 = (fold(|h| h[0], f32::INFINITY, f32::min) * sx - HEAD_MARGIN).max(0.0);
    let y1 = (fold(|h| h[1], f32::INFINITY, f32::min) * sy - HEAD_MARGIN).max(0.0);
    let x2 = (fold(|h| h[2], 0.0, f32::max) * sx + HEAD_MARGIN).min(frame.width as f32);
    let y2 = (fold(|h| h[3], 0.0, f32::max) * sy + HEAD_MARGIN).min(frame.height as f32);
    let region = (x1 as u32, y1 as u32, x2.ceil() as u32, y2.ceil() as u32);
    let inset = close_up(frame, region, height)?;
    Some((inset, format!("Đèn tín hiệu (phóng to): {}", phase_words(phase))))
}

/// The phase as the picture states it.
fn phase_words(phase: SignalPhase) -> String {
    match phase {
        SignalPhase::Unknown => "không xác định".into(),
        p => format!("đèn {}", p.vietnamese()),
    }
}

/// The plate picture of the heaviest vote for the winning plate, decoded and enlarged to `height` pixels, with
/// its caption; `None` without a read plate or its picture.
pub fn plate_close_up(plate: Option<&PlateConsensus>, crops: &[Vec<u8>], height: u32) -> Option<(Frame, String)> {
    let plate = plate?;
    let text = plate.text.as_deref()?;
    let best = plate
        .votes
        .iter()
        .filter(|v| v.text.as_deref() == Some(text) && v.crop_sha256.is_some())
        .max_by(|a, b| a.weight.total_cmp(&b.weight))?;
    let sha = best.crop_sha256.as_deref()?;
    let jpeg = crops.iter().find(|c| hex::encode(Sha256::digest(c)) == sha)?;
    let picture = image::load_from_memory(jpeg).ok()?.into_rgb8();
    let (w, h) = picture.dimensions();
    let whole = Frame {
        camera: te_types::CameraId::new(""),
        number: best.frame_number,
        captured_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
        scene_cut: false,
        width: w,
        height: h,
        pixels: te_types::Pixels::Rgb(std::sync::Arc::new(picture.into_raw())),
    };
    let big = close_up(&whole, (0, 0, w, h), height)?;
    Some((big, format!("Biển số (phóng to, khung hình {}): {text}", best.frame_number)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn scene() -> Scene {
        let config: te_rules::SceneConfig = toml::from_str(
            r#"
camera = "c"
frame_size = [100, 50]
[signal]
source = "image"
layout = "vertical"
heads = [[10, 2, 14, 12], [30, 2, 34, 12]]
[[stop_lines]]
name = "Vạch dừng"
line = [[0, 30], [100, 40]]
direction = [0, -1]
[[lanes]]
name = "Làn"
polygon = [[0, 0], [50, 0], [50, 50]]
direction = [0, -1]
[[no_stopping]]
name = "Cấm dừng"
polygon = [[60, 0], [100, 0], [100, 20], [60, 20]]
max_dwell_s = 10
[[speed_sections]]
name = "Đo tốc độ"
entry = [[0, 10], [100, 10]]
exit = [[0, 45], [100, 45]]
direction = [0, 1]
distance_m = 30
limit_kmh = 50
"#,
        )
        .expect("scene");
        config.validate().expect("valid")
    }

    fn frame(width: u32, height: u32) -> Frame {
        Frame {
            camera: te_types::CameraId::new("c"),
            number: 7,
            captured_at: chrono::Utc::now(),
            scene_cut: false,
            width,
            height,
            pixels: te_types::Pixels::Rgb(Arc::new(vec![90; (width * height * 3) as usize])),
        }
    }

    #[test]
    fn the_stop_line_is_scaled_to_the_frame_and_other_rules_draw_nothing_of_it() {
        let lines = rule_lines(&scene(), ViolationKind::RedLight, "Vạch dừng", (200, 100));
        assert_eq!(lines, [[[0.0, 60.0], [200.0, 80.0]]]);
        assert!(rule_lines(&scene(), ViolationKind::RedLight, "another line", (200, 100)).is_empty());
        assert!(rule_lines(&scene(), ViolationKind::NoHelmet, "Vạch dừng", (200, 100)).is_empty());
    }

    /// Every rule with a place in the picture gets it drawn: a lane's or zone's outline (closed), a section's
    /// two measuring lines.
    #[test]
    fn lanes_zones_and_measuring_lines_are_outlined_for_their_rules() {
        let s = scene();
        let lane = rule_lines(&s, ViolationKind::WrongWay, "Làn", (100, 50));
        assert_eq!(lane, [[[0.0, 0.0], [50.0, 0.0]], [[50.0, 0.0], [50.0, 50.0]], [[50.0, 50.0], [0.0, 0.0]]]);
        assert_eq!(rule_lines(&s, ViolationKind::WrongLane, "Làn", (100, 50)), lane);
        assert_eq!(rule_lines(&s, ViolationKind::IllegalStopping, "Cấm dừng", (100, 50)).len(), 4);
        let section = rule_lines(&s, ViolationKind::Speeding, "Đo tốc độ", (200, 100));
        assert_eq!(section, [[[0.0, 20.0], [200.0, 20.0]], [[0.0, 90.0], [200.0, 90.0]]]);
    }

    #[test]
    fn the_signal_inset_covers_every_head_with_a_margin_and_names_the_phase() {
        let (inset, label) = signal_inset(&scene(), &frame(200, 100), SignalPhase::Red, 60).expect("inset");
        assert_eq!(inset.height, 60);
        // Heads span x 20..68, y 4..24 in the frame; with 6 px around (cut at the top edge): 60 x 30, enlarged
        // to 60 high.
        assert_eq!(inset.width, 120);
        assert!(label.contains("đèn đỏ"), "{label}");
        assert!(signal_inset(&scene(), &frame(200, 100), SignalPhase::Unknown, 60)
            .is_some_and(|(_, l)| l.contains("không xác định")));
    }

    /// The plate panel is the picture of the heaviest read of the winning text, enlarged, captioned with it.
    #[test]
    fn the_plate_close_up_is_the_best_read_of_the_winning_plate() {
        let jpeg = |shade: u8| {
            let picture = image::RgbImage::from_pixel(40, 30, image::Rgb([shade, shade, shade]));
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new(&mut out).encode_image(&picture).expect("encode");
            out
        };
        let (light, dark) = (jpeg(220), jpeg(40));
        let vote = |frame_number, text: &str, weight, crop: &[u8]| te_types::PlateVote {
            frame_number,
            text: Some(text.into()),
            raw: text.into(),
            confidence: 0.9,
            weight,
            crop_sha256: Some(hex::encode(Sha256::digest(crop))),
        };
        let plate = PlateConsensus {
            text: Some("59-U1/729.79".into()),
            share: 0.8,
            votes: vec![
                vote(3, "59-U1/729.79", 0.4, &dark),
                vote(5, "59-U1/729.79", 0.7, &light),
                vote(6, "59-U1/728.79", 0.9, &dark),
            ],
        };
        let (picture, caption) = plate_close_up(Some(&plate), &[dark.clone(), light.clone()], 90).expect("panel");
        assert_eq!((picture.width, picture.height), (120, 90));
        assert!(picture.rgb()[0] > 180, "the light crop of frame 5, not the heavier read of another text");
        assert!(caption.contains("59-U1/729.79") && caption.contains("khung hình 5"), "{caption}");
        let unread = PlateConsensus { text: None, share: 0.0, votes: Vec::new() };
        assert!(plate_close_up(Some(&unread), &[light], 90).is_none());
    }
}
