//! `te-rtsp-test-server`: a real RTSP server (gstreamer-rtsp-server) on 127.0.0.1 for the camera tests and the
//! camera benchmark. Serves `/cam`: a live H.264 4:2:0 stream, either a generated moving pattern or a video
//! file re-encoded in a loop. Prints `ready <port>` once it accepts connections; runs until killed (the tests
//! kill it with SIGKILL to simulate a camera that dies).
//!
//!   te-rtsp-test-server --port 8554 [--codec h264|h265] [--file clip.mp4] [--width 640 --height 360 --fps 25]
//!                       [--user u --password p]
//!   te-rtsp-test-server --port 8554 --preencoded a.mp4,b.mp4 --mounts 12 [--fps 25]
//!
//! `--preencoded` (`edge-agent bench`): serves `/cam0` .. `/cam<mounts-1>`, each a live stream of one of the
//! given H.264 MP4 files (round robin), sent as encoded, in a loop, at `--fps`: nothing is re-encoded while it
//! runs, so the server costs the box under test almost nothing. Each mount starts at another keyframe, so the
//! cameras' frames do not all arrive at the same instant.

use gstreamer as gst;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let port = arg(&args, "--port").unwrap_or_else(|| "8554".into());
    let width = arg(&args, "--width").unwrap_or_else(|| "640".into());
    let height = arg(&args, "--height").unwrap_or_else(|| "360".into());
    let fps = arg(&args, "--fps").unwrap_or_else(|| "25".into());
    gst::init()?;
    if let Some(files) = arg(&args, "--preencoded") {
        let mounts: usize = arg(&args, "--mounts").unwrap_or_else(|| "1".into()).parse()?;
        let fps: u64 = fps.parse()?;
        return preencoded::serve(&port, &files, mounts, fps);
    }
    // 4:2:0 like real cameras (x264enc would otherwise pick 4:4:4 from raw RGB), one keyframe a second.
    let raw = format!("video/x-raw,format=I420,width={width},height={height},framerate={fps}/1");
    let encode = match arg(&args, "--codec").as_deref() {
        Some("h265") => format!(
            "{raw} ! x265enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} ! \
             rtph265pay name=pay0 pt=96 config-interval=1"
        ),
        _ => format!(
            "{raw} ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} ! \
             video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=1"
        ),
    };
    let source = match arg(&args, "--file") {
        Some(file) => format!(
            "filesrc location=\"{file}\" ! decodebin ! videoconvert ! videoscale ! videorate ! \
             identity sync=true ! {encode}"
        ),
        None => format!("videotestsrc is-live=true pattern=ball ! videoconvert ! {encode}"),
    };
    let server = rtsp::RTSPServer::new();
    server.set_address("127.0.0.1");
    server.set_service(&port);
    let factory = rtsp::RTSPMediaFactory::new();
    factory.set_launch(&format!("( {source} )"));
    // One encoder for all clients, as a camera has.
    factory.set_shared(true);
    if let (Some(user), Some(password)) = (arg(&args, "--user"), arg(&args, "--password")) {
        let auth = rtsp::RTSPAuth::new();
        let token = rtsp::RTSPToken::builder().field(rtsp::RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user").build();
        auth.add_basic(&rtsp::RTSPAuth::make_basic(&user, &password), &token);
        server.set_auth(Some(&auth));
        factory.add_role_from_structure(
            &gst::Structure::builder("user")
                .field(rtsp::RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
                .field(rtsp::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, true)
                .build(),
        );
    }
    server.mount_points().ok_or("server has no mount points")?.add_factory("/cam", factory);
    serve_forever(&server)
}

/// Attaches the server to the main loop, says `ready <port>` on stdout and serves until killed.
fn serve_forever(server: &rtsp::RTSPServer) -> Result<(), Box<dyn std::error::Error>> {
    let main_loop = gst::glib::MainLoop::new(None, false);
    let _source = server.attach(None)?;
    println!("ready {}", server.bound_port());
    use std::io::Write;
    std::io::stdout().flush()?;
    main_loop.run();
    Ok(())
}

mod preencoded {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    use gstreamer_app as gst_app;
    use gstreamer_rtsp_server as rtsp;
    use gstreamer_rtsp_server::prelude::*;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// One file's encoded pictures (access units, Annex B), in order, with their keyframe flags.
    struct Clip {
        caps: gst::Caps,
        units: Vec<gst::Buffer>,
        keyframes: Vec<usize>,
    }

    fn load(path: &str) -> Result<Clip, Box<dyn std::error::Error>> {
        let pipeline = gst::parse::launch(&format!(
            "filesrc location=\"{path}\" ! qtdemux ! h264parse ! \
             video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=sink sync=false"
        ))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline")?;
        let sink = pipeline.by_name("sink").and_then(|e| e.downcast::<gst_app::AppSink>().ok()).ok_or("no sink")?;
        pipeline.set_state(gst::State::Playing)?;
        let (mut caps, mut units, mut keyframes) = (None, Vec::new(), Vec::new());
        while let Ok(sample) = sink.pull_sample() {
            if caps.is_none() {
                caps = sample.caps_owned();
            }
            let Some(buffer) = sample.buffer_owned() else { continue };
            if !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                keyframes.push(units.len());
            }
            // The server stamps each picture as it sends it (a live camera's clock, not the file's).
            let mut buffer = buffer.copy();
            {
                let b = buffer.get_mut().ok_or("buffer not writable")?;
                b.set_pts(gst::ClockTime::NONE);
                b.set_dts(gst::ClockTime::NONE);
            }
            units.push(buffer);
        }
        pipeline.set_state(gst::State::Null)?;
        let caps = caps.ok_or_else(|| format!("{path}: no H.264 picture"))?;
        if keyframes.first() != Some(&0) {
            return Err(format!("{path}: does not start with a keyframe").into());
        }
        Ok(Clip { caps, units, keyframes })
    }

    /// Sends `clip` into `appsrc` at `fps` from keyframe number `start`, looping, until the media goes away.
    fn pace(appsrc: gst_app::AppSrc, clip: Arc<Clip>, start: usize, fps: u64) {
        let tick = Duration::from_nanos(1_000_000_000 / fps.max(1));
        let first = clip.keyframes[start % clip.keyframes.len()];
        let mut next = Instant::now();
        for i in (0..).map(|n: usize| (first + n) % clip.units.len()) {
            if appsrc.push_buffer(clip.units[i].clone()).is_err() {
                return; // flushing or gone: the last client left
            }
            next += tick;
            match next.checked_duration_since(Instant::now()) {
                Some(wait) => std::thread::sleep(wait),
                None => next = Instant::now(), // fell behind (the box is saturated): do not burst to catch up
            }
        }
    }

    pub fn serve(port: &str, files: &str, mounts: usize, fps: u64) -> Result<(), Box<dyn std::error::Error>> {
        let clips: Vec<Arc<Clip>> =
            files.split(',').filter(|f| !f.is_empty()).map(|f| load(f).map(Arc::new)).collect::<Result<_, _>>()?;
        if clips.is_empty() {
            return Err("--preencoded names no file".into());
        }
        let server = rtsp::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service(port);
        let mount_points = server.mount_points().ok_or("server has no mount points")?;
        for m in 0..mounts.max(1) {
            let clip = clips[m % clips.len()].clone();
            let factory = rtsp::RTSPMediaFactory::new();
            factory.set_launch(
                "( appsrc name=src is-live=true format=time do-timestamp=true ! h264parse ! \
                 rtph264pay name=pay0 pt=96 config-interval=1 )",
            );
            factory.set_shared(true);
            factory.connect_media_configure(move |_, media| {
                let Some(appsrc) = media
                    .element()
                    .downcast::<gst::Bin>()
                    .ok()
                    .and_then(|bin| bin.by_name_recurse_up("src"))
                    .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
                else {
                    eprintln!("mount {m}: no appsrc in the media");
                    return;
                };
                appsrc.set_caps(Some(&clip.caps));
                let clip = clip.clone();
                std::thread::spawn(move || pace(appsrc, clip, m * 3, fps));
            });
            mount_points.add_factory(&format!("/cam{m}"), factory);
        }
        super::serve_forever(&server)
    }
}
