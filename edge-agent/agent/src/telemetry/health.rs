//! The agent's own HTTP endpoint: Prometheus metrics (`/metrics`) and a health summary (`/healthz`).
//!
//! Read-only views of counters the stages keep anyway (camera stats, evidence totals, uplink stats, analysis
//! counters), encoded by `prometheus-client` (OpenMetrics text) through one collector read at each scrape. No
//! plate numbers or URLs ever become labels or values here: labels are camera ids (checked at load: letters,
//! digits, `- _ . :`), model names and fixed states. The encoder does not escape label values (client_rust
//! issue 151), so nothing free-form may become a label.

use crate::telemetry::counters::AnalysisCounters;
use crate::telemetry::latency::Stage;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
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

/// A value read from the sources at scrape time.
type Read = fn(&Sources) -> u64;
type CameraRead = fn(&CameraStats) -> u64;

/// The plain counters: name (Prometheus adds `_total`), help, value.
const COUNTERS: &[(&str, &str, Read)] = &[
    ("te_analysis_frames", "Frames analysed.", |s| s.analysis.frames.load(Relaxed)),
    ("te_analysis_detections", "Vehicle detections.", |s| s.analysis.detections.load(Relaxed)),
    ("te_analysis_vehicles", "Vehicles confirmed by the tracker.", |s| s.analysis.vehicles.load(Relaxed)),
    ("te_plate_reads", "Plate reads.", |s| s.analysis.plate_reads.load(Relaxed)),
    ("te_violations", "Violations found by the rules.", |s| s.analysis.violations.load(Relaxed)),
    ("te_evidence_written", "Records sealed and flushed.", |s| s.analysis.evidence_written.load(Relaxed)),
    (
        "te_evidence_store_errors",
        "Records the store could not take, and vehicles whose record could not be made.",
        |s| s.analysis.store_errors.load(Relaxed),
    ),
    ("te_inference_errors", "Frames and plates whose model run failed.", |s| s.analysis.inference_errors.load(Relaxed)),
    ("te_controller_reports", "Signal phases taken from controllers.", |s| s.controller_phases.reports.load(Relaxed)),
    ("te_controller_refused", "Controller requests refused (address, token or camera not allowed).", |s| {
        s.controller_phases.refused.load(Relaxed)
    }),
    (
        "te_signal_disagreements",
        "Times a controller's phase and the signal head in the picture disagreed (no signal rule is judged then).",
        |s| s.analysis.signal_disagreements.load(Relaxed),
    ),
    ("te_uplink_delivered", "Records the central service acknowledged.", |s| s.uplink.delivered.load(Relaxed)),
    ("te_uplink_rejected", "Records the central service refused (kept).", |s| s.uplink.rejected.load(Relaxed)),
    ("te_uplink_failures", "Failed delivery attempts.", |s| s.uplink.failures.load(Relaxed)),
    ("te_uplink_bytes_sent", "Request bytes sent.", |s| s.uplink.bytes_sent.load(Relaxed)),
    ("te_uplink_clip_bytes_resumed", "Clip bytes not resent because the central service already held them.", |s| {
        s.uplink.clip_bytes_resumed.load(Relaxed)
    }),
    ("te_uplink_heartbeats", "Heartbeats delivered.", |s| s.uplink.heartbeats.load(Relaxed)),
    ("te_evidence_refused", "Records refused because the evidence disk reached its reserve.", |s| s.store.refused()),
];

/// Per-camera counters: name, help, value.
const CAMERA_COUNTERS: &[(&str, &str, CameraRead)] = &[
    ("te_camera_frames_delivered", "Frames handed to analysis.", |c| c.frames_delivered.load(Relaxed)),
    ("te_camera_frames_dropped", "Frames dropped because analysis was behind.", |c| c.frames_dropped.load(Relaxed)),
    ("te_camera_reconnects", "Connection attempts after the first.", |c| c.reconnects.load(Relaxed)),
];

/// Reads the sources on each scrape (the stages keep their counters anyway; nothing is copied between scrapes).
struct Collector(Sources);

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("telemetry::health::Collector")
    }
}

type Labels<'a> = [(&'static str, &'a str)];

/// Writes one family with the samples given.
fn family<V>(
    out: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: impl IntoIterator<Item = (Vec<(&'static str, String)>, V)>,
    mut write: impl FnMut(&mut MetricEncoder<'_>, V) -> std::fmt::Result,
) -> std::fmt::Result {
    let mut metric = out.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in samples {
        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let labels: &Labels<'_> = &labels;
        write(&mut metric.encode_family(&labels)?, value)?;
    }
    Ok(())
}

fn counter(
    out: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: impl EncodeCounterValue,
) -> std::fmt::Result {
    ConstCounter::new(value).encode(out.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge(out: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: impl EncodeGaugeValue) -> std::fmt::Result {
    let mut metric = out.encode_descriptor(name, help, None, MetricType::Gauge)?;
    metric.encode_gauge(&value)
}

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut out: DescriptorEncoder<'_>) -> std::fmt::Result {
        let s = &self.0;
        let camera = |id: &CameraId| vec![("camera", id.as_str().to_owned())];
        for (name, help, read) in CAMERA_COUNTERS {
            let samples = s.cameras.iter().map(|(id, c)| (camera(id), read(c)));
            family(&mut out, name, help, MetricType::Counter, samples, |m, v| {
                m.encode_counter::<NoLabelSet, _, u64>(&v, None)
            })?;
        }
        let states = s.cameras.iter().flat_map(|(id, c)| {
            let now = c.state();
            STATES.iter().map(move |state| {
                let labels = vec![("camera", id.as_str().to_owned()), ("state", state.as_str().to_owned())];
                (labels, i64::from(*state == now))
            })
        });
        family(
            &mut out,
            "te_camera_state",
            "1 for the state each camera is in.",
            MetricType::Gauge,
            states,
            |m, v| m.encode_gauge(&v),
        )?;
        for (name, help, read) in COUNTERS {
            counter(&mut out, name, help, read(s))?;
        }
        let detect = s.analysis.stages.get(Stage::Detect).snapshot().2;
        counter(&mut out, "te_detector_seconds", "Time inside the vehicle detector.", detect)?;
        let delivered: u64 = s.cameras.iter().map(|(_, c)| c.frames_delivered.load(Relaxed)).sum();
        let waiting = delivered.saturating_sub(s.analysis.frames.load(Relaxed));
        let help = "Frames handed to analysis and not yet analysed (all cameras).";
        gauge(&mut out, "te_frame_queue_depth", help, i64::try_from(waiting).unwrap_or(i64::MAX))?;
        let stages = Stage::ALL.map(|stage| (vec![("stage", stage.as_str().to_owned())], s.analysis.stages.get(stage)));
        let help = "Time per frame in each analysis step (detect: vehicle model; plates: plate models).";
        family(&mut out, "te_stage_seconds", help, MetricType::Histogram, stages, |m, h| {
            let (_, count, sum) = h.snapshot();
            m.encode_histogram::<NoLabelSet>(sum, count, &h.buckets(), None)
        })?;
        let providers =
            s.providers.iter().map(|(model, p)| (vec![("model", model.clone()), ("provider", p.to_string())], 1_i64));
        let help = "1 for the execution provider each model runs on.";
        family(&mut out, "te_inference_provider", help, MetricType::Gauge, providers, |m, v| m.encode_gauge(&v))?;
        if let Some(clock) = s.clock.check(chrono::Utc::now()) {
            let offset = clock.offset_ms as f64 / 1000.0;
            gauge(&mut out, "te_clock_offset_seconds", "Reference clock minus box clock.", offset)?;
            let help = "1 when the last clock check is recent and within the limit.";
            gauge(&mut out, "te_clock_trusted", help, i64::from(clock.trusted))?;
        }
        match s.store.counts() {
            Ok(c) => {
                let records = [("pending", c.pending), ("delivered", c.delivered), ("rejected", c.rejected)]
                    .map(|(state, n)| (vec![("state", state.to_owned())], i64::try_from(n).unwrap_or(i64::MAX)));
                let help = "Records on the box by delivery state.";
                family(&mut out, "te_evidence_records", help, MetricType::Gauge, records, |m, v| m.encode_gauge(&v))?;
                let bytes = i64::try_from(c.bytes).unwrap_or(i64::MAX);
                gauge(&mut out, "te_evidence_bytes", "Bytes of records and media on the box.", bytes)?;
            }
            Err(e) => tracing::warn!(error = %e, "evidence counts unavailable for /metrics"),
        }
        let help = "1 when the store is over quota with nothing left to free, or its disk is nearly full.";
        gauge(&mut out, "te_evidence_store_alarm", help, i64::from(s.store.alarm().is_some()))
    }
}

/// The registry `/metrics` encodes: one collector over the sources.
fn registry(sources: Sources) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Collector(sources)));
    registry
}

/// The metrics as Prometheus scrapes them (OpenMetrics text).
pub fn render_metrics(s: &Sources) -> String {
    encode(&registry(s.clone()))
}

fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, registry) {
        tracing::warn!(error = %e, "metrics could not be encoded");
    }
    text
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
    let metrics = Arc::new(registry(sources.clone()));
    Router::new()
        .route(
            "/metrics",
            get(move || async move {
                let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
                ([(header::CONTENT_TYPE, content_type)], encode(&metrics)).into_response()
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
        assert!(text.contains("te_stage_seconds_bucket{le=\"0.01\",stage=\"detect\"} 0"), "{text}");
        assert!(text.contains("te_stage_seconds_bucket{le=\"0.02\",stage=\"detect\"} 1"));
        assert!(text.contains("te_stage_seconds_bucket{le=\"+Inf\",stage=\"detect\"} 1"));
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
        assert!(text.ends_with("# EOF\n"), "OpenMetrics text ends with its EOF marker");
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
