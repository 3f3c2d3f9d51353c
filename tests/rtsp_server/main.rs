//! `te-rtsp-test-server`: a real RTSP server (gstreamer-rtsp-server) on 127.0.0.1 for the camera tests and the
//! camera benchmark. Serves `/cam`: a live H.264 4:2:0 stream, either a generated moving pattern or a video
//! file re-encoded in a loop. Prints `ready <port>` once it accepts connections; runs until killed (the tests
//! kill it with SIGKILL to simulate a camera that dies).
//!
//!   te-rtsp-test-server --port 8554 [--codec h264|h265] [--file clip.mp4] [--width 640 --height 360 --fps 25]
//!                       [--user u --password p]

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
    let main_loop = gst::glib::MainLoop::new(None, false);
    let _source = server.attach(None)?;
    println!("ready {}", server.bound_port());
    use std::io::Write;
    std::io::stdout().flush()?;
    main_loop.run();
    Ok(())
}
