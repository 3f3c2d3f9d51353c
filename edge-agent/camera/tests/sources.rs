//! Real GStreamer decoding of the real car-park clip, and still-image cameras, through the public API.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::sync_channel;
use std::time::Duration;
use te_camera::{CameraError, CameraSettings, WhenFull};
use te_types::CameraId;

fn shared_dir() -> PathBuf {
    std::env::var_os("TE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

fn clip() -> String {
    shared_dir().join("data/video/car-detection.mp4").display().to_string()
}

fn settings(source: String, when_full: WhenFull) -> CameraSettings {
    CameraSettings { when_full, ..CameraSettings::new(CameraId::new("test-cam"), source) }
}

#[test]
fn a_replayed_file_delivers_every_frame_in_order_with_rising_timestamps() {
    let (tx, rx) = sync_channel(2);
    let camera = te_camera::spawn(settings(clip(), WhenFull::Block), tx).expect("spawn");
    let frames: Vec<_> = rx.iter().collect();
    camera.join().expect("camera ends cleanly at end of stream");
    // 377 frames at 12.5 fps, 768x432 (as ffprobe/OpenCV report for this clip).
    assert_eq!(frames.len(), 377);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.number, i as u64);
        assert_eq!((f.width, f.height), (768, 432));
        assert_eq!(f.rgb().len(), 768 * 432 * 3);
    }
    let span = frames[376].captured_at - frames[0].captured_at;
    assert_eq!(span.num_milliseconds(), 376 * 80, "PTS spacing of a 12.5 fps clip");
    assert!(frames.windows(2).all(|w| w[0].captured_at < w[1].captured_at));
}

#[test]
fn a_slow_consumer_makes_a_drop_newest_camera_drop_and_count_instead_of_queueing() {
    let (tx, rx) = sync_channel(1);
    let camera = te_camera::spawn(settings(clip(), WhenFull::DropNewest), tx).expect("spawn");
    let stats = camera.stats.clone();
    let mut received = 0u64;
    while let Ok(frame) = rx.recv() {
        received += 1;
        assert!(frame.number < 377);
        std::thread::sleep(Duration::from_millis(20));
    }
    camera.join().expect("camera ends");
    let (delivered, dropped) =
        (stats.frames_delivered.load(Ordering::Relaxed), stats.frames_dropped.load(Ordering::Relaxed));
    assert_eq!(delivered, received);
    assert_eq!(delivered + dropped, 377, "every frame is either delivered or counted as dropped");
    assert!(dropped > 0, "a 20 ms/frame consumer cannot keep up with an unthrottled decoder");
}

#[test]
fn a_stills_camera_skips_and_counts_an_undecodable_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = image::RgbImage::from_pixel(32, 16, image::Rgb([1, 2, 3]));
    good.save(dir.path().join("a.png")).expect("save");
    std::fs::write(dir.path().join("b.jpg"), b"not a jpeg").expect("write");
    good.save(dir.path().join("c.png")).expect("save");
    let (tx, rx) = sync_channel(4);
    let camera = te_camera::spawn(settings(dir.path().display().to_string(), WhenFull::Block), tx).expect("spawn");
    let frames: Vec<_> = rx.iter().collect();
    let stats = camera.stats.clone();
    camera.join().expect("ends");
    assert_eq!(frames.len(), 2);
    assert!(frames.iter().all(|f| f.scene_cut && f.width == 32 && f.rgb()[..3] == [1, 2, 3]));
    assert_eq!(stats.inputs_skipped.load(Ordering::Relaxed), 1);
}

#[test]
fn a_corrupt_video_file_ends_the_camera_with_a_stream_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken.mp4");
    std::fs::write(&path, vec![0x42u8; 4096]).expect("write");
    let (tx, rx) = sync_channel(2);
    let camera = te_camera::spawn(settings(path.display().to_string(), WhenFull::Block), tx).expect("spawn");
    assert_eq!(rx.iter().count(), 0);
    let err = camera.join().expect_err("a corrupt file is an error");
    assert!(matches!(err, CameraError::Stream { .. }), "{err}");
    assert!(err.to_string().contains("test-cam"), "{err}");
}

#[test]
fn a_named_decoder_is_used_and_a_missing_one_is_a_clear_configuration_error() {
    let (tx, rx) = sync_channel(4);
    let mut ok = settings(clip(), WhenFull::Block);
    ok.decoder = "avdec_h264".into();
    ok.width = 384;
    let camera = te_camera::spawn(ok, tx).expect("spawn");
    let first = rx.recv_timeout(Duration::from_secs(10)).expect("a frame through avdec_h264");
    assert_eq!((first.width, first.height), (384, 216), "scaled before conversion, aspect kept");
    camera.stop();
    drop(rx);
    let _ = camera.join();

    let (tx, _rx) = sync_channel(4);
    let mut missing = settings(clip(), WhenFull::Block);
    missing.decoder = "nvh264dec-not-here".into();
    let err = te_camera::spawn(missing, tx).expect("spawn").join().expect_err("no such decoder");
    assert!(err.to_string().contains("not installed"), "{err}");
}

/// GStreamer's own RGB of the first `count` frames of `path` (videoconvert, packed rows).
fn gstreamer_rgb(path: &str, count: usize) -> Vec<Vec<u8>> {
    use gstreamer::prelude::*;
    gstreamer::init().expect("gstreamer");
    let description = format!(
        "filesrc location=\"{path}\" ! decodebin ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false"
    );
    let pipeline = gstreamer::parse::launch(&description)
        .expect("pipeline")
        .downcast::<gstreamer::Pipeline>()
        .expect("a pipeline");
    let sink = pipeline.by_name("sink").and_then(|e| e.downcast::<gstreamer_app::AppSink>().ok()).expect("appsink");
    pipeline.set_state(gstreamer::State::Playing).expect("playing");
    let mut frames = Vec::new();
    while frames.len() < count {
        let sample = sink.pull_sample().expect("a sample");
        let info = gstreamer_video::VideoInfo::from_caps(sample.caps().expect("caps")).expect("video caps");
        let buffer = sample.buffer().expect("buffer");
        let map = buffer.map_readable().expect("readable");
        let (row, stride) = (info.width() as usize * 3, info.stride()[0] as usize);
        frames.push((0..info.height() as usize).flat_map(|y| map[y * stride..y * stride + row].to_vec()).collect());
    }
    pipeline.set_state(gstreamer::State::Null).expect("stopped");
    frames
}

#[test]
fn video_frames_kept_as_i420_give_the_rgb_gstreamer_makes_within_its_rounding() {
    let (tx, rx) = sync_channel(2);
    let camera = te_camera::spawn(settings(clip(), WhenFull::Block), tx).expect("spawn");
    let ours: Vec<_> = rx.iter().take(3).collect();
    camera.stop();
    drop(rx);
    let _ = camera.join();
    assert!(ours.iter().all(|f| matches!(f.pixels, te_types::Pixels::I420(_))), "video frames stay I420");
    for (frame, theirs) in ours.iter().zip(gstreamer_rgb(&clip(), 3)) {
        let mine = frame.rgb();
        assert_eq!(mine.len(), theirs.len());
        let signed: Vec<f64> = (0..3)
            .map(|c| {
                mine.iter().zip(&theirs).skip(c).step_by(3).map(|(a, b)| f64::from(*a) - f64::from(*b)).sum::<f64>()
                    / (mine.len() / 3) as f64
            })
            .collect();
        println!("mean signed difference per channel (R, G, B): {signed:.2?}");
        let mut diffs: Vec<u8> = mine.iter().zip(&theirs).map(|(a, b)| a.abs_diff(*b)).collect();
        let mean = diffs.iter().map(|&d| f64::from(d)).sum::<f64>() / diffs.len() as f64;
        diffs.sort_unstable();
        let p99 = diffs[diffs.len() * 99 / 100];
        println!(
            "frame {}: mean difference {mean:.3}, 99th percentile {p99}, max {}",
            frame.number,
            diffs[diffs.len() - 1]
        );
        // GStreamer's fixed-point fast path runs about two levels darker than the exact BT.601 matrix (which
        // this conversion and OpenCV both follow, to within 0.05 on this clip); a wrong matrix, range or plane
        // layout would be tens of levels off.
        assert!(mean < 3.0 && p99 <= 5, "frame {}: mean {mean:.3}, p99 {p99}", frame.number);
        assert!(signed.iter().all(|d| (0.0..3.0).contains(d)), "{signed:?}");
    }
}
