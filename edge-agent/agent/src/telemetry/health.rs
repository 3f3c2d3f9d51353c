//! The agent's own HTTP endpoint: Prometheus metrics (`/metrics`) and a health summary (`/healthz`).
//!
//! Read-only views of counters the stages keep anyway (camera stats, evidence totals, uplink stats, analysis
//! counters). No plate numbers or URLs ever become labels or values here: labels are camera ids and states.

use crate::telemetry::counters::AnalysisCounters;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use te_camera::{CameraState, CameraStats};
use te_evidence::EvidenceStore;
use te_types::CameraId;
use te_uplink::UplinkStats;

/// Everything the endpoint reports on.
#[derive(Clone)]
pub struct Sources {
    pub cameras: Vec<(CameraId, Arc<CameraStats>)>,
    pub store: Arc<dyn EvidenceStore>,
    pub uplink: Arc<UplinkStats>,
    pub analysis: Arc<AnalysisCounters>,
    /// Where junction controllers' signal phases go.
    pub controller_phases: Arc<crate::signal_input::ControllerPhases>,
    /// The latest clock measurement.
    pub clock: te_uplink::clock::ClockWatch,
    /// The execution provider each model runs on.
    pub providers: Vec<(String, te_infer::Provider)>,
}

const STATES: [CameraState; 5] = [
    CameraState::Connecting,
    CameraState::Streaming,
    CameraState::BackingOff,
    CameraState::FailedConfig,
    CameraState::Ended,
];

/// Prometheus text exposition: each family's HELP and TYPE lines, then its samples.
#[derive(Default)]
struct Exposition(String);

impl Exposition {
    /// `samples`: (labels, value); labels are written as given (`camera="x"`), empty for none.
    fn family(&mut self, name: &str, kind: &str, help: &str, samples: impl IntoIterator<Item = (String, f64)>) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let labels = if labels.is_empty() { labels } else { format!("{{{labels}}}") };
            let _ = writeln!(self.0, "{name}{labels} {value}");
        }
    }

    /// One histogram per label set: cumulative buckets, `+Inf`, sum and count.
    fn histograms<'a>(
        &mut self,
        name: &str,
        help: &str,
        series: impl IntoIterator<Item = (String, &'a crate::telemetry::latency::Histogram)>,
    ) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (labels, histogram) in series {
            let (buckets, count, sum) = histogram.snapshot();
            for (le, n) in buckets {
                let _ = writeln!(self.0, "{name}_bucket{{{labels},le=\"{le}\"}} {n}");
            }
            let _ = writeln!(self.0, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
            let _ = writeln!(self.0, "{name}_sum{{{labels}}} {sum}\n{name}_count{{{labels}}} {count}");
        }
    }

    fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help, [(String::new(), value)]);
    }
}

pub fn render_metrics(s: &Sources) -> String {
    let mut out = Exposition::default();
    let per_camera = |read: fn(&CameraStats) -> u64| {
        s.cameras.iter().map(move |(id, c)| (format!("camera=\"{}\"", label(id.as_str())), read(c) as f64))
    };
    out.family(
        "te_camera_frames_delivered_total",
        "counter",
        "Frames handed to analysis.",
        per_camera(|c| c.frames_delivered.load(Relaxed)),
    );
    out.family(
        "te_camera_frames_dropped_total",
        "counter",
        "Frames dropped because analysis was behind.",
        per_camera(|c| c.frames_dropped.load(Relaxed)),
    );
    out.family(
        "te_camera_reconnects_total",
        "counter",
        "Connection attempts after the first.",
        per_camera(|c| c.reconnects.load(Relaxed)),
    );
    out.family(
        "te_camera_state",
        "gauge",
        "1 for the state each camera is in.",
        s.cameras.iter().flat_map(|(id, c)| {
            let now = c.state();
            STATES.iter().map(move |state| {
                (
                    format!("camera=\"{}\",state=\"{}\"", label(id.as_str()), state.as_str()),
                    f64::from(u8::from(*state == now)),
                )
            })
        }),
    );
    let a = &s.analysis;
    out.single("te_analysis_frames_total", "counter", "Frames analysed.", a.frames.load(Relaxed) as f64);
    out.single("te_analysis_detections_total", "counter", "Vehicle detections.", a.detections.load(Relaxed) as f64);
    out.single(
        "te_analysis_vehicles_total",
        "counter",
        "Vehicles confirmed by the tracker.",
        a.vehicles.load(Relaxed) as f64,
    );
    out.single("te_plate_reads_total", "counter", "Plate reads.", a.plate_reads.load(Relaxed) as f64);
    out.single(
        "te_detector_seconds_total",
        "counter",
        "Time inside the vehicle detector.",
        a.stages.get(crate::telemetry::latency::Stage::Detect).snapshot().2,
    );
    out.single("te_violations_total", "counter", "Violations found by the rules.", a.violations.load(Relaxed) as f64);
    out.single(
        "te_evidence_written_total",
        "counter",
        "Records sealed and flushed.",
        a.evidence_written.load(Relaxed) as f64,
    );
    out.single(
        "te_evidence_store_errors_total",
        "counter",
        "Records the store could not take, and vehicles whose record could not be made.",
        a.store_errors.load(Relaxed) as f64,
    );
    out.single(
        "te_inference_errors_total",
        "counter",
        "Frames and plates whose model run failed.",
        a.inference_errors.load(Relaxed) as f64,
    );
    let c = &s.controller_phases;
    out.single(
        "te_controller_reports_total",
        "counter",
        "Signal phases taken from controllers.",
        c.reports.load(Relaxed) as f64,
    );
    out.single(
        "te_controller_refused_total",
        "counter",
        "Controller requests refused (address, token or camera not allowed).",
        c.refused.load(Relaxed) as f64,
    );
    out.single(
        "te_signal_disagreements_total",
        "counter",
        "Times a controller's phase and the signal head in the picture disagreed (no signal rule is judged then).",
        a.signal_disagreements.load(Relaxed) as f64,
    );
    let delivered: u64 = s.cameras.iter().map(|(_, c)| c.frames_delivered.load(Relaxed)).sum();
    out.single(
        "te_frame_queue_depth",
        "gauge",
        "Frames handed to analysis and not yet analysed (all cameras).",
        delivered.saturating_sub(a.frames.load(Relaxed)) as f64,
    );
    out.histograms(
        "te_stage_seconds",
        "Time per frame in each analysis step (detect: vehicle model; plates: plate models).",
        crate::telemetry::latency::Stage::ALL
            .map(|stage| (format!("stage=\"{}\"", stage.as_str()), a.stages.get(stage))),
    );
    out.family(
        "te_inference_provider",
        "gauge",
        "1 for the execution provider each model runs on.",
        s.providers.iter().map(|(model, p)| (format!("model=\"{}\",provider=\"{p}\"", label(model)), 1.0)),
    );
    let u = &s.uplink;
    out.single(
        "te_uplink_delivered_total",
        "counter",
        "Records the central service acknowledged.",
        u.delivered.load(Relaxed) as f64,
    );
    out.single(
        "te_uplink_rejected_total",
        "counter",
        "Records the central service refused (kept).",
        u.rejected.load(Relaxed) as f64,
    );
    out.single("te_uplink_failures_total", "counter", "Failed delivery attempts.", u.failures.load(Relaxed) as f64);
    out.single("te_uplink_bytes_sent_total", "counter", "Request bytes sent.", u.bytes_sent.load(Relaxed) as f64);
    out.single(
        "te_uplink_clip_bytes_resumed_total",
        "counter",
        "Clip bytes not resent because the central service already held them.",
        u.clip_bytes_resumed.load(Relaxed) as f64,
    );
    out.single("te_uplink_heartbeats_total", "counter", "Heartbeats delivered.", u.heartbeats.load(Relaxed) as f64);
    if let Some(clock) = s.clock.check(chrono::Utc::now()) {
        out.single(
            "te_clock_offset_seconds",
            "gauge",
            "Reference clock minus box clock.",
            clock.offset_ms as f64 / 1000.0,
        );
        out.single(
            "te_clock_trusted",
            "gauge",
            "1 when the last clock check is recent and within the limit.",
            f64::from(u8::from(clock.trusted)),
        );
    }
    match s.store.counts() {
        Ok(c) => {
            out.family(
                "te_evidence_records",
                "gauge",
                "Records on the box by delivery state.",
                [("pending", c.pending), ("delivered", c.delivered), ("rejected", c.rejected)]
                    .map(|(state, n)| (format!("state=\"{state}\""), n as f64)),
            );
            out.single("te_evidence_bytes", "gauge", "Bytes of records and media on the box.", c.bytes as f64);
        }
        Err(e) => tracing::warn!(error = %e, "evidence counts unavailable for /metrics"),
    }
    out.single(
        "te_evidence_refused_total",
        "counter",
        "Records refused because the evidence disk reached its reserve.",
        s.store.refused() as f64,
    );
    out.single(
        "te_evidence_store_alarm",
        "gauge",
        "1 when the store is over quota with nothing left to free, or its disk is nearly full.",
        f64::from(u8::from(s.store.alarm().is_some())),
    );
    out.0
}

/// Escapes a label value (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `ok`, or `degraded` with the reasons: a camera not streaming, a store alarm, rejected records.
pub fn health(s: &Sources) -> serde_json::Value {
    let mut problems = Vec::new();
    let cameras: Vec<_> = s
        .cameras
        .iter()
        .map(|(id, stats)| {
            let state = stats.state();
            if matches!(state, CameraState::BackingOff | CameraState::FailedConfig) {
                problems.push(format!("camera {id} is {}", state.as_str()));
            }
            serde_json::json!({
                "camera": id.as_str(),
                "state": state.as_str(),
                "reconnects": stats.reconnects.load(Relaxed),
                "last_error": stats.last_error.lock().ok().and_then(|e| e.clone()),
            })
        })
        .collect();
    if let Some(alarm) = s.store.alarm() {
        problems.push(alarm);
    }
    let refused = s.store.refused();
    if refused > 0 {
        problems.push(format!("{refused} record(s) refused since start: the evidence disk reached its reserve"));
    }
    let clock = s.clock.check(chrono::Utc::now());
    match &clock {
        None => problems.push("the clock has not been checked yet: violations are flagged for review".into()),
        Some(c) if !c.trusted => problems.push(format!(
            "the clock is off by {} ms (±{}, {}) or the check is stale: violations are flagged for review",
            c.offset_ms, c.uncertainty_ms, c.source
        )),
        Some(_) => {}
    }
    let counts = s.store.counts().ok();
    if counts.is_some_and(|c| c.rejected > 0) {
        problems.push("the central service rejected records; see `edge-agent evidence list`".into());
    }
    serde_json::json!({
        "status": if problems.is_empty() { "ok" } else { "degraded" },
        "problems": problems,
        "cameras": cameras,
        "evidence": counts,
        "clock": clock,
    })
}

pub fn router(sources: Sources) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(s): State<Sources>| async move {
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], render_metrics(&s)).into_response()
            }),
        )
        .route(
            "/healthz",
            get(|State(s): State<Sources>| async move {
                let body = health(&s);
                let status = if body["status"] == "ok" { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
                (status, axum::Json(body)).into_response()
            }),
        )
        .with_state(sources)
}

/// Serves the endpoint until the process ends; a port that cannot be bound is logged, not fatal.
pub async fn serve(listen: String, sources: Sources, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    match tokio::net::TcpListener::bind(&listen).await {
        Ok(listener) => {
            tracing::info!(%listen, "metrics and health endpoint");
            let stop = async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            };
            if let Err(e) = axum::serve(listener, router(sources)).with_graceful_shutdown(stop).await {
                tracing::error!(error = %e, "metrics endpoint stopped");
            }
        }
        Err(e) => tracing::error!(%listen, error = %e, "metrics endpoint could not bind; running without it"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources() -> (Sources, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = te_evidence::DeviceKey::load_or_create(&dir.path().join("k")).expect("key");
        let store = te_evidence::SledStore::open(&dir.path().join("s"), key).expect("store");
        let cam = Arc::new(CameraStats::default());
        cam.frames_delivered.store(42, Relaxed);
        let s = Sources {
            cameras: vec![(CameraId::new("nga-tu-1"), cam)],
            store: Arc::new(store),
            uplink: Arc::default(),
            analysis: Arc::default(),
            controller_phases: Arc::default(),
            clock: te_uplink::clock::ClockWatch::new(&te_uplink::clock::ClockSettings::default()),
            providers: vec![("vehicle".into(), te_infer::Provider::Cpu)],
        };
        let measured = te_uplink::clock::Offset { offset_ms: 20, uncertainty_ms: 5 };
        s.clock.record(measured, "ntp:test:123".into(), chrono::Utc::now());
        (s, dir)
    }

    #[test]
    fn metrics_are_grouped_by_family_with_camera_labels_and_no_plates() {
        let (s, _dir) = sources();
        s.analysis.frames.store(7, Relaxed);
        let text = render_metrics(&s);
        assert!(text.contains("te_camera_frames_delivered_total{camera=\"nga-tu-1\"} 42"), "{text}");
        assert!(text.contains("te_analysis_frames_total 7"));
        assert!(text.contains("te_evidence_records{state=\"pending\"} 0"));
        assert!(text.contains("te_camera_state{camera=\"nga-tu-1\",state=\"connecting\"} 1"));
        assert!(text.contains("te_frame_queue_depth 35"), "42 delivered, 7 analysed");
        assert!(text.contains("te_inference_provider{model=\"vehicle\",provider=\"cpu\"} 1"));
        s.analysis.stages.get(crate::telemetry::latency::Stage::Detect).observe(std::time::Duration::from_millis(19));
        let text = render_metrics(&s);
        assert!(text.contains("te_stage_seconds_bucket{stage=\"detect\",le=\"0.01\"} 0"), "{text}");
        assert!(text.contains("te_stage_seconds_bucket{stage=\"detect\",le=\"0.02\"} 1"));
        assert!(text.contains("te_stage_seconds_bucket{stage=\"detect\",le=\"+Inf\"} 1"));
        assert!(text.contains("te_stage_seconds_count{stage=\"plates\"} 0"));
        // Each family: HELP, TYPE, then its samples, before the next family starts.
        let families: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE")).collect();
        for f in &families {
            let name = f.split_whitespace().nth(2).expect("name");
            let first = text.lines().position(|l| l.starts_with(name)).expect("a sample");
            let header = text.lines().position(|l| l == *f).expect("header");
            assert!(first > header, "{name} sample before its header");
        }
        assert!(!text.contains("plate=\""), "plates never become labels");
    }

    #[test]
    fn health_turns_degraded_when_the_central_service_rejects_records() {
        let (s, _dir) = sources();
        assert_eq!(health(&s)["status"], "ok");
        let (record, jpeg) = crate::tools::evidence::synthetic_record(&mut fastrand::Rng::with_seed(1), 16);
        let id = s.store.put(&record, &jpeg).expect("put").record.evidence_id;
        s.store.mark_rejected(id, "bad signature").expect("reject");
        let h = health(&s);
        assert_eq!(h["status"], "degraded", "{h}");
        assert_eq!(h["evidence"]["rejected"], 1);
    }

    #[test]
    fn health_turns_degraded_when_the_clock_is_off_or_unchecked() {
        let (s, _dir) = sources();
        assert_eq!(health(&s)["clock"]["offset_ms"], 20);
        s.clock.record(
            te_uplink::clock::Offset { offset_ms: -4000, uncertainty_ms: 5 },
            "ntp:t:1".into(),
            chrono::Utc::now(),
        );
        let h = health(&s);
        assert_eq!(h["status"], "degraded", "{h}");
        assert!(h["problems"][0].as_str().expect("problem").contains("-4000 ms"), "{h}");
        assert!(render_metrics(&s).contains("te_clock_offset_seconds -4"));
        let unchecked = Sources { clock: te_uplink::clock::ClockWatch::default(), ..s.clone() };
        assert_eq!(health(&unchecked)["status"], "degraded");
    }

    #[tokio::test]
    async fn the_metrics_port_takes_no_signal_phase() {
        use tower::ServiceExt;
        let (s, _dir) = sources();
        let phases = s.controller_phases.clone();
        let post = axum::http::Request::post("/api/v1/signal/nga-tu-1")
            .header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(r#"{"phase":"red"}"#))
            .expect("request");
        let res = router(s).oneshot(post).await.expect("response");
        assert!(res.status().is_client_error(), "{}", res.status());
        assert_eq!(phases.latest(&CameraId::new("nga-tu-1")), None);
    }
}
