//! `edge-agent run`: starts the stages (cameras, analysis, uplink, clock, metrics, controller input, heartbeat),
//! stops them on SIGTERM or Ctrl-C (cameras first, then the records in flight, then the uplink's drain), and
//! prints the run's summary.

use crate::boot::{load_onnx_runtime, open_store};
use crate::config::AgentConfig;
use crate::pipeline::overview;
use crate::pipeline::{AnalysisReport, AnalysisStage};
use crate::signal_input;
use crate::telemetry::{health, heartbeat};
use anyhow::bail;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use te_evidence::EvidenceStore;
use te_uplink::Uplink;

pub async fn run(config: AgentConfig, exit_when_done: bool, drain_timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let ort = load_onnx_runtime(&config)?;
    let data_bar_font = overview::DataBarFont::load(Path::new(&config.evidence.data_bar_font))?;
    let detector_settings = config.detector.settings();
    let detector = te_infer::VehicleDetector::load(&ort, &config.model_dirs(), detector_settings)?;
    let plates = if config.plates.enabled {
        let settings = te_infer::RecognizerSettings {
            detector: te_infer::PlateDetectorSettings { threads: config.plates.threads, ..Default::default() },
            reader: te_infer::PlateReaderSettings { threads: config.plates.threads, ..Default::default() },
        };
        Some(te_infer::PlateRecognizer::load(&ort, &config.model_dirs(), settings)?)
    } else {
        None
    };
    let helmets = if config.helmets.enabled {
        Some(te_infer::HelmetClassifier::load(&ort, &config.model_dirs(), config.helmets.threads)?)
    } else {
        None
    };
    let store = open_store(&config)?;
    let uplink = Arc::new(Uplink::new(config.uplink.clone(), store.clone())?);
    let clock = te_uplink::clock::ClockWatch::new(&config.time);
    // The first records should already carry a clock check: one try (bounded by `time.timeout_ms`) before the
    // analysis starts, then the periodic task.
    if let Err(e) =
        te_uplink::clock::check_once(&config.time, uplink.client(), &config.uplink.central_url, &clock).await
    {
        tracing::warn!(error = %e, "clock not checked at start; records are flagged until it is");
    }
    // Housekeeping: images of delivered evidence past retention are removed, now and every ten minutes.
    tokio::spawn({
        let store = store.clone();
        async move {
            let mut every = tokio::time::interval(Duration::from_secs(600));
            loop {
                every.tick().await;
                let store = store.clone();
                match tokio::task::spawn_blocking(move || store.purge_expired(chrono::Utc::now())).await {
                    Ok(Err(e)) => tracing::error!(error = %e, "evidence retention housekeeping failed"),
                    Err(e) => tracing::error!(error = %e, "evidence retention housekeeping panicked"),
                    Ok(Ok(_)) => {}
                }
            }
        }
    });

    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let shutdown_rx_for_tasks = shutdown_rx.clone();
    let (drain_tx, drain_rx) = tokio::sync::watch::channel(false);
    let uplink_task = tokio::spawn({
        let uplink = uplink.clone();
        async move { uplink.run(shutdown_rx, drain_rx).await }
    });

    let (frames_tx, frames_rx) = std::sync::mpsc::sync_channel(config.frame_queue);
    let mut cameras = Vec::new();
    for settings in &config.cameras {
        match te_camera::spawn(settings.clone(), frames_tx.clone()) {
            Ok(handle) => cameras.push(handle),
            // One bad camera must not take the others down.
            Err(e) => tracing::error!(error = %e, "camera not started"),
        }
    }
    drop(frames_tx);
    if cameras.is_empty() {
        bail!("no camera could be started; see the errors above");
    }
    let stops: Vec<_> = cameras.iter().map(|c| c.stopper()).collect();
    // One SIGTERM (or Ctrl-C) stops the cameras; the analysis then writes the records in flight and the
    // uplink drains for at most `drain_timeout` (systemd's TimeoutStopSec is longer).
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stop requested: stopping cameras, writing open records, draining the uplink");
        // A stop always ends: should a stage hang (a stalled disk), the process leaves on its own before
        // systemd's SIGKILL, saying why. What was acknowledged is already on disk.
        let limit = drain_timeout + STOP_GRACE;
        std::thread::spawn(move || {
            std::thread::sleep(limit);
            tracing::error!(seconds = limit.as_secs(), "stop did not finish in time; exiting without it");
            std::process::exit(1);
        });
        let _ = stop_tx.send(true);
        for stop in &stops {
            stop();
        }
    });

    let rings = cameras.iter().map(|c| (c.id.clone(), c.ring.clone())).collect();
    let live = Arc::new(health::LiveCounters::default());
    let controller_phases = Arc::new(signal_input::ControllerPhases::default());
    tokio::spawn(te_uplink::clock::run(
        config.time.clone(),
        uplink.client().clone(),
        config.uplink.central_url.clone(),
        clock.clone(),
        shutdown_rx_for_tasks.clone(),
    ));
    let sources = health::Sources {
        cameras: cameras.iter().map(|c| (c.id.clone(), c.stats.clone())).collect(),
        store: store.clone(),
        uplink: uplink.stats.clone(),
        analysis: live.clone(),
        controller_phases: controller_phases.clone(),
        clock: clock.clone(),
        providers: ort.providers_in_use(),
    };
    if !config.metrics_listen.trim().is_empty() {
        tokio::spawn(health::serve(config.metrics_listen.clone(), sources.clone()));
    }
    if let Some(tokens) = config.controller_tokens()? {
        let allow = signal_input::AllowList::parse(&config.controller.allow)?;
        let router = signal_input::router(controller_phases.clone(), tokens, allow);
        tokio::spawn(signal_input::serve(config.controller.listen.clone(), router));
    }
    if config.uplink.heartbeat_s > 0 {
        tokio::spawn(heartbeat::run(
            uplink.clone(),
            config.device_id.clone(),
            sources,
            PathBuf::from(&config.paths.state),
            Duration::from_secs(config.uplink.heartbeat_s),
            shutdown_rx_for_tasks,
        ));
    }
    let stage = AnalysisStage {
        live,
        rings,
        clip_before: chrono::Duration::seconds(i64::from(config.evidence.clip_before_s)),
        config_version: config.version()?,
        data_bar_font,
        device_id: config.device_id.clone(),
        detector,
        plates,
        plate_reading: config.plates.clone(),
        helmets,
        helmet_checking: config.helmets.clone(),
        tracker_settings: config.tracker.clone(),
        locations: config.cameras.iter().map(|c| (c.id.clone(), c.location.clone())).collect(),
        scenes: config.validated_scenes()?,
        controller_phases,
        clock,
        moments: config.evidence.moments.clone(),
        store: store.clone(),
        new_evidence: uplink.new_evidence.clone(),
    };
    let analysis = tokio::task::spawn_blocking(move || stage.run(frames_rx));
    let camera_stats: Vec<_> = cameras.iter().map(|c| (c.id.clone(), c.stats.clone())).collect();
    let camera_results =
        tokio::task::spawn_blocking(move || cameras.into_iter().map(|c| (c.id.clone(), c.join())).collect::<Vec<_>>())
            .await?;
    for (id, result) in &camera_results {
        if let Err(e) = result {
            tracing::error!(camera = %id, error = %e, "camera ended with an error");
        }
    }
    let report = analysis.await?;
    let analysed_at = started.elapsed();

    if !exit_when_done && !*stop_rx.borrow() {
        tracing::info!("all cameras ended; the uplink keeps delivering until SIGTERM or Ctrl-C");
        let _ = stop_rx.wait_for(|stop| *stop).await;
    }
    let _ = drain_tx.send(true);
    uplink.new_evidence.notify_one();
    if tokio::time::timeout(drain_timeout, uplink_task).await.is_err() {
        tracing::warn!("central service did not take everything in time; the rest stays queued on the box");
    }
    let _ = shutdown_tx.send(true);

    let counts = store.counts()?;
    let central = uplink.central_stats().await;
    let summary = Summary {
        counts,
        central,
        store_alarm: store.alarm(),
        refused: store.refused(),
        elapsed: analysed_at,
        uplink: uplink.stats.clone(),
    };
    print_summary(&config, &report, &camera_stats, &summary);
    if counts.pending > 0 && exit_when_done {
        bail!("{} evidence record(s) are still pending on the box", counts.pending);
    }
    Ok(())
}

/// Time after a stop's drain for cameras and analysis to finish before the process exits regardless.
const STOP_GRACE: Duration = Duration::from_secs(20);

async fn wait_for_signal() {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// What the run ends with, besides the analysis report.
struct Summary {
    counts: te_evidence::StoreCounts,
    central: Result<central_protocol::CentralStats, te_uplink::UplinkError>,
    uplink: Arc<te_uplink::UplinkStats>,
    store_alarm: Option<String>,
    /// Records refused at the disk reserve.
    refused: u64,
    elapsed: Duration,
}

fn print_summary(
    config: &AgentConfig,
    report: &AnalysisReport,
    cameras: &[(te_types::CameraId, Arc<te_camera::CameraStats>)],
    summary: &Summary,
) {
    let Summary { counts, central, store_alarm, refused: summary_refused, elapsed, uplink } = summary;
    use std::sync::atomic::Ordering::Relaxed;
    let dropped: u64 = cameras.iter().map(|(_, s)| s.frames_dropped.load(Relaxed)).sum();
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!();
    println!("traffic-edge summary ({})", config.device_id);
    for (id, stats) in cameras {
        println!(
            "  camera {:<14} frames analysed {:>5}   dropped {:>3}   skipped inputs {}   reconnects {}",
            id.as_str(),
            report.frames_per_camera.get(id).copied().unwrap_or(0),
            stats.frames_dropped.load(Relaxed),
            stats.inputs_skipped.load(Relaxed),
            stats.reconnects.load(Relaxed)
        );
        if let Some(error) = stats.last_error.lock().ok().and_then(|e| e.clone()) {
            println!("         {:<14} last error: {error}", "");
        }
    }
    println!(
        "  frames           {:>6}  ({:.1} frames/s, {:.0}% of the time inside the detector; {} dropped)",
        report.frames,
        report.frames as f64 / secs,
        100.0 * report.inference_seconds / secs,
        dropped
    );
    println!("  detections       {:>6}", report.detections);
    println!("  vehicles         {:>6}  (tracked, one per pass)", report.vehicles);
    if config.plates.enabled {
        println!(
            "  plates read      {:>6}  (vehicles with a valid plate; {} reads, {:.1} s reading)",
            report.plates_read, report.plate_reads, report.plate_seconds
        );
    } else {
        println!("  plates read      {:>6}  (plate reading is off: plates.enabled = false)", 0);
    }
    let by_kind: Vec<String> = report.violations.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "  violations       {:>6}  ({})",
        report.violations.values().sum::<u64>(),
        if by_kind.is_empty() {
            "none judged; cameras with a [[scenes]] entry are judged".into()
        } else {
            by_kind.join(", ")
        }
    );
    println!(
        "  evidence         {:>6}  written, {} synced, {} pending, {} rejected",
        report.evidence_written, counts.delivered, counts.pending, counts.rejected
    );
    println!(
        "  uplink           {:>6}  KiB sent, {} KiB of clips resumed, {} failed attempt(s), {} heartbeat(s)",
        uplink.bytes_sent.load(Relaxed) / 1024,
        uplink.clip_bytes_resumed.load(Relaxed) / 1024,
        uplink.failures.load(Relaxed),
        uplink.heartbeats.load(Relaxed)
    );
    if let Some(alarm) = store_alarm {
        println!("  ALARM            {alarm}");
    }
    if *summary_refused > 0 {
        println!("  ALARM            {summary_refused} record(s) refused: the evidence disk reached its reserve");
    }
    match central {
        Ok(stats) => println!(
            "  central          {:>6}  records held at {} ({} device(s), {} camera(s))",
            stats.evidence_total, config.uplink.central_url, stats.devices, stats.cameras
        ),
        Err(e) => println!("  central          unreachable: {e}"),
    }
}
