//! `edge-agent camera`: watch one camera without analysis; measure decoding throughput.

use crate::boot::rss_mb;
use std::time::{Duration, Instant};

pub fn watch(source: &str, seconds: u64, transport: &str) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    let transport = match transport {
        "tcp" => te_camera::Transport::Tcp,
        "udp" => te_camera::Transport::Udp,
        _ => te_camera::Transport::Auto,
    };
    let settings = te_camera::CameraSettings {
        transport,
        ..te_camera::CameraSettings::new(te_types::CameraId::new("watch"), source)
    };
    let (tx, rx) = std::sync::mpsc::sync_channel(4);
    let camera = te_camera::spawn(settings, tx)?;
    let stats = camera.stats.clone();
    let drain = std::thread::spawn(move || rx.into_iter().count());
    let started = Instant::now();
    let mut last = (0u64, Instant::now());
    println!("rss_mb at start {:.1}", rss_mb());
    while !camera.is_finished() && (seconds == 0 || started.elapsed() < Duration::from_secs(seconds)) {
        std::thread::sleep(Duration::from_secs(5).min(Duration::from_secs(seconds.max(5))));
        let frames = stats.frames_delivered.load(Relaxed);
        let fps = (frames - last.0) as f64 / last.1.elapsed().as_secs_f64();
        last = (frames, Instant::now());
        println!(
            "t={:>6.0}s state={:<13} frames={frames:>7} fps={fps:>5.1} dropped={} reconnects={} rss_mb={:.1}",
            started.elapsed().as_secs_f64(),
            stats.state().as_str(),
            stats.frames_dropped.load(Relaxed),
            stats.reconnects.load(Relaxed),
            rss_mb()
        );
    }
    camera.stop();
    let result = camera.join();
    let _ = drain.join();
    println!(
        "frames={} reconnects={} rss_mb={:.1}",
        stats.frames_delivered.load(Relaxed),
        stats.reconnects.load(Relaxed),
        rss_mb()
    );
    Ok(result?)
}

pub fn bench(seconds: u32, cameras: &[usize]) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{:<6} {:>7} {:>7} {:>11} {:>11} {:>13} {:>14}",
        "clip", "cameras", "out", "fps/camera", "CPU/camera", "core@25fps", "streams@25fps"
    );
    for (name, w, h) in [("1080p", 1920, 1080), ("720p", 1280, 720)] {
        let clip = dir.path().join(format!("{name}.mp4"));
        te_camera::bench::make_clip(&clip, w, h, seconds)?;
        for &n in cameras {
            for out_width in [0u32, 640] {
                let f = te_camera::bench::decode_throughput(&clip, n.max(1), out_width)?;
                let out = if out_width == 0 { "native".to_string() } else { format!("{out_width}w") };
                println!(
                    "{:<6} {:>7} {:>7} {:>11.1} {:>10.0}% {:>12.1}% {:>14.1}",
                    name,
                    f.cameras,
                    out,
                    f.fps_per_camera(),
                    100.0 * f.cpu_per_camera(),
                    100.0 * f.core_share_at(25.0),
                    f.streams_at(25.0, cores)
                );
            }
        }
    }
    println!(
        "(H.264 main 4:2:0, decoded as fast as possible to RGB on {cores} core(s); core@25fps = CPU a live 25 fps \
         stream needs; streams@25fps = how many this machine could decode, before any analysis)"
    );
    Ok(())
}
