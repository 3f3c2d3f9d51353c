//! `edge-agent run`: starts the stages (cameras, analysis, uplink, clock, metrics, controller input, heartbeat,
//! housekeeping), stops them when asked (SIGTERM or Ctrl-C for the binary, any future for a test): cameras
//! first, then the records in flight, then the uplink's drain; and prints the run's summary.
//!
//! Invariant: every task the run starts is joined before it returns. The background tasks live in one
//! `JoinSet` and all end on the one shutdown signal (the HTTP listeners shut down gracefully); what has not
//! ended `TASKS_GRACE` after it is aborted, and a task that panicked is logged.

use crate::boot::{load_models, load_onnx_runtime, open_store};
use crate::config::AgentConfig;
use crate::pipeline::workers::AnalysisWorkers;
use crate::pipeline::StageLinks;
use crate::signal_input;
use crate::telemetry::counters::{AnalysisCounters, AnalysisReport};
use crate::telemetry::{health, heartbeat};
use anyhow::bail;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use te_evidence::EvidenceStore;
use te_uplink::Uplink;

/// Runs the configured cameras until they end (`exit_when_done`, file replay) or `stop` resolves.
pub async fn run(
    config: AgentConfig,
    exit_when_done: bool,
    drain_timeout: Duration,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let ort = load_onnx_runtime(&config)?;
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
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(housekeeping(store.clone(), shutdown_rx.clone()));
    let (drain_tx, drain_rx) = tokio::sync::watch::channel(false);
    let mut uplink_task = tokio::spawn({
        let uplink = uplink.clone();
        let shutdown = shutdown_rx.clone();
        async move { uplink.run(shutdown, drain_rx).await }
    });

    // Models first (a missing model stops the run before any camera opens), then the cameras, each on its
    // worker's queue, then the workers.
    let workers = crate::pipeline::workers::worker_count(&config).min(config.cameras.len().max(1));
    let models = (0..workers).map(|_| load_models(&config, &ort)).collect::<anyhow::Result<Vec<_>>>()?;
    let (senders, receivers) = crate::pipeline::workers::queues(workers, config.frame_queue);
    let mut cameras = Vec::new();
    for (i, settings) in config.cameras.iter().enumerate() {
        match te_camera::spawn(settings.clone(), senders[i % senders.len()].clone()) {
            Ok(handle) => cameras.push(handle),
            // One bad camera must not take the others down.
            Err(e) => tracing::error!(error = %e, "camera not started"),
        }
    }
    drop(senders);
    if cameras.is_empty() {
        let _ = shutdown_tx.send(true);
        join_all(Some(uplink_task), tasks).await;
        bail!("no camera could be started; see the errors above");
    }
    let stops: Vec<_> = cameras.iter().map(|c| c.stopper()).collect();
    // One SIGTERM (or Ctrl-C) stops the cameras; the analysis then writes the records in flight and the
    // uplink drains for at most `drain_timeout` (systemd's TimeoutStopSec is longer).
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let mut run_ended = shutdown_rx.clone();
    let finished = RunFinished::default();
    let finished_flag = finished.0.clone();
    tasks.spawn(async move {
        tokio::select! {
            _ = stop => {}
            // The run ended without being asked to stop (file replay with `exit_when_done`).
            _ = run_ended.wait_for(|ended| *ended) => return,
        }
        tracing::info!("stop requested: stopping cameras, writing open records, draining the uplink");
        // A stop always ends: should a stage hang (a stalled disk), the process leaves on its own before
        // systemd's SIGKILL, saying why. What was acknowledged is already on disk.
        let limit = drain_timeout + STOP_GRACE;
        std::thread::spawn(move || {
            std::thread::sleep(limit);
            if finished_flag.load(std::sync::atomic::Ordering::SeqCst) {
                return; // the run ended in time (a run started in-process must not end its host)
            }
            tracing::error!(seconds = limit.as_secs(), "stop did not finish in time; exiting without it");
            std::process::exit(1);
        });
        let _ = stop_tx.send(true);
        for stop in &stops {
            stop();
        }
    });

    let rings = cameras.iter().map(|c| (c.id.clone(), c.ring.clone())).collect();
    let counters = Arc::new(AnalysisCounters::default());
    let controller_phases = Arc::new(signal_input::ControllerPhases::default());
    tasks.spawn(te_uplink::clock::run(
        config.time.clone(),
        uplink.client().clone(),
        config.uplink.central_url.clone(),
        clock.clone(),
        shutdown_rx.clone(),
    ));
    let sources = health::Sources {
        cameras: cameras.iter().map(|c| (c.id.clone(), c.stats.clone())).collect(),
        store: store.clone(),
        uplink: uplink.stats.clone(),
        analysis: counters.clone(),
        controller_phases: controller_phases.clone(),
        clock: clock.clone(),
        providers: ort.providers_in_use(),
    };
    if !config.metrics_listen.trim().is_empty() {
        tasks.spawn(health::serve(config.metrics_listen.clone(), sources.clone(), shutdown_rx.clone()));
    }
    if let Some(tokens) = config.controller_tokens()? {
        let allow = signal_input::AllowList::parse(&config.controller.allow)?;
        let router = signal_input::router(controller_phases.clone(), tokens, allow);
        tasks.spawn(signal_input::serve(config.controller.listen.clone(), router, shutdown_rx.clone()));
    }
    if config.uplink.heartbeat_s > 0 {
        tasks.spawn(heartbeat::run(
            uplink.clone(),
            config.device_id.clone(),
            sources,
            PathBuf::from(&config.paths.state),
            Duration::from_secs(config.uplink.heartbeat_s),
            shutdown_rx.clone(),
        ));
    }
    let links = StageLinks {
        counters,
        rings,
        controller_phases,
        clock,
        store: store.clone(),
        new_evidence: uplink.new_evidence.clone(),
    };
    let analysis = AnalysisWorkers::start(&config, models, receivers, links)?;
    let analysis = tokio::task::spawn_blocking(move || analysis.join());
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
    // The uplink is joined here when it drains in time, else after the shutdown signal below.
    let uplink_left = match tokio::time::timeout(drain_timeout, &mut uplink_task).await {
        Ok(ended) => {
            if let Err(e) = ended {
                tracing::error!(error = %e, "uplink task failed");
            }
            None
        }
        Err(_) => {
            tracing::warn!("central service did not take everything in time; the rest stays queued on the box");
            Some(uplink_task)
        }
    };
    let _ = shutdown_tx.send(true);
    join_all(uplink_left, tasks).await;

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

/// Set when `run` returns, however it returns: the stop watchdog then leaves the process alone.
#[derive(Default)]
struct RunFinished(Arc<std::sync::atomic::AtomicBool>);

impl Drop for RunFinished {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Time after a stop's drain for cameras and analysis to finish before the process exits regardless.
const STOP_GRACE: Duration = Duration::from_secs(20);
/// Time after the shutdown signal for the background tasks to end before they are aborted.
const TASKS_GRACE: Duration = Duration::from_secs(5);

/// Joins the uplink and every background task after the shutdown signal: bounded by `TASKS_GRACE`, then
/// what is left is aborted (and awaited), so that nothing outlives the run.
async fn join_all(uplink: Option<tokio::task::JoinHandle<()>>, mut tasks: tokio::task::JoinSet<()>) {
    let log = |what: &str, e: tokio::task::JoinError| {
        if e.is_panic() {
            tracing::error!(task = what, error = %e, "task panicked");
        }
    };
    if let Some(uplink) = uplink {
        let uplink_abort = uplink.abort_handle();
        match tokio::time::timeout(TASKS_GRACE, uplink).await {
            Ok(Err(e)) => log("uplink", e),
            Err(_) => {
                tracing::warn!("uplink did not stop in time; aborted");
                uplink_abort.abort();
            }
            Ok(Ok(())) => {}
        }
    }
    let joined = tokio::time::timeout(TASKS_GRACE, async {
        while let Some(result) = tasks.join_next().await {
            if let Err(e) = result {
                log("background", e);
            }
        }
    })
    .await;
    if joined.is_err() {
        tracing::warn!(left = tasks.len(), "background tasks did not stop in time; aborted");
        tasks.shutdown().await;
    }
}

/// Removes the images of delivered evidence past retention, now and every ten minutes, until shutdown.
async fn housekeeping(store: Arc<te_evidence::SledStore>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut every = tokio::time::interval(Duration::from_secs(600));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let store = store.clone();
        match tokio::task::spawn_blocking(move || store.purge_expired(chrono::Utc::now())).await {
            Ok(Err(e)) => tracing::error!(error = %e, "evidence retention housekeeping failed"),
            Err(e) => tracing::error!(error = %e, "evidence retention housekeeping panicked"),
            Ok(Ok(_)) => {}
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C: the binary's stop.
pub async fn wait_for_signal() {
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
