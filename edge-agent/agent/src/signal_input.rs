//! Signal phases from junction controllers: `POST /api/v1/signal/{camera}` with `{"phase": "red"}` on a
//! listener of its own (`[controller] listen`), never on the read-only metrics port. A phase decides whether
//! a red-light case is sealed, so each request must come from an allowed address (`allow`, refused before
//! the request is read) and carry a controller's token (`Authorization: Bearer`), and a controller may only
//! report the cameras its token names. The latest report per camera is kept (a register, not a queue: only
//! the current phase matters) and stamped with the time it arrived. Where the scene also names signal heads,
//! the rules compare the report with the picture (see te-rules).

use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use te_types::{CameraId, SignalPhase};

/// `[controller]`: where junction controllers report signal phases.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControllerInput {
    /// Address of the controller listener (e.g. `0.0.0.0:9899`); empty: no controller input.
    pub listen: String,
    /// Source addresses allowed to report: single addresses or networks (`10.20.0.0/16`). Empty: loopback
    /// only. Connections from anywhere else are refused before their request is read.
    pub allow: Vec<String>,
    /// The controllers' tokens, one per line: `<name> <sha256 of the token, hex> <camera>[,<camera>...]`
    /// (`#` starts a comment). `edge-agent controller token` makes a token and its line. Required with
    /// `listen`: there is no unauthenticated controller input.
    pub tokens_file: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ControllerInputError {
    #[error("controller.allow: {0:?} is not an address or a network (e.g. 10.20.0.0/16)")]
    Allow(String),
    #[error("controller.tokens_file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("controller.tokens_file {path} line {line}: {why}")]
    Line { path: String, line: usize, why: String },
    #[error("controller.tokens_file {path} names no controller")]
    Empty { path: String },
}

/// Networks allowed to report.
#[derive(Debug, Clone)]
pub struct AllowList(Vec<ipnet::IpNet>);

impl AllowList {
    pub fn parse(entries: &[String]) -> Result<Self, ControllerInputError> {
        if entries.is_empty() {
            return Ok(Self(vec!["127.0.0.0/8".parse().expect("literal"), "::1/128".parse().expect("literal")]));
        }
        let parse = |e: &String| {
            let e = e.trim();
            e.parse::<ipnet::IpNet>()
                .or_else(|_| e.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| ControllerInputError::Allow(e.to_owned()))
        };
        entries.iter().map(parse).collect::<Result<_, _>>().map(Self)
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// One controller: its name (for logs) and the cameras it may report.
#[derive(Debug, Clone)]
struct Controller {
    name: String,
    cameras: HashSet<CameraId>,
}

/// The controllers, by the SHA-256 of their token (only digests are kept, as the central does).
#[derive(Debug, Clone, Default)]
pub struct ControllerTokens(HashMap<[u8; 32], Controller>);

impl ControllerTokens {
    /// Reads the tokens file; every camera it names must be one of `known`.
    pub fn load(path: &str, known: &HashSet<CameraId>) -> Result<Self, ControllerInputError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ControllerInputError::Read { path: path.to_owned(), source })?;
        let tokens = Self::parse(&text, known).map_err(|(line, why)| ControllerInputError::Line {
            path: path.to_owned(),
            line,
            why,
        })?;
        if tokens.0.is_empty() {
            return Err(ControllerInputError::Empty { path: path.to_owned() });
        }
        Ok(tokens)
    }

    /// `Err((line number, why))` for the first bad line.
    fn parse(text: &str, known: &HashSet<CameraId>) -> Result<Self, (usize, String)> {
        let mut out = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, digest, cameras] = fields[..] else {
                return Err((i + 1, "expected `<name> <sha256 hex> <camera>[,<camera>...]`".into()));
            };
            let mut key = [0u8; 32];
            hex::decode_to_slice(digest, &mut key)
                .map_err(|_| (i + 1, format!("{digest:?} is not a SHA-256 digest in hex (64 characters)")))?;
            let mut set = HashSet::new();
            for camera in cameras.split(',').filter(|c| !c.is_empty()) {
                let id = CameraId::new(camera);
                if !known.contains(&id) {
                    return Err((i + 1, format!("camera {camera:?} is not configured on this box")));
                }
                set.insert(id);
            }
            if set.is_empty() {
                return Err((i + 1, "names no camera".into()));
            }
            if out.insert(key, Controller { name: name.to_owned(), cameras: set }).is_some() {
                return Err((i + 1, "the same token appears twice".into()));
            }
        }
        Ok(Self(out))
    }

    fn find(&self, token: &str) -> Option<&Controller> {
        self.0.get(&<[u8; 32]>::from(Sha256::digest(token.as_bytes())))
    }
}

/// A fresh controller token (256 bits, hex) and the tokens-file line that admits it.
/// `edge-agent controller token`: checks the names, prints the tokens-file line to stdout and the token itself
/// to stderr (shown this once).
pub fn print_new_token(name: &str, cameras: &[String]) -> anyhow::Result<()> {
    if name.is_empty() || name.contains(char::is_whitespace) || name.contains('#') {
        anyhow::bail!("the controller name must be one word without '#', got {name:?}");
    }
    if cameras.iter().any(|c| c.is_empty() || c.contains(char::is_whitespace) || c.contains('#')) {
        anyhow::bail!("camera ids are single words without '#'");
    }
    let (token, line) = new_token(name, cameras)?;
    eprintln!("controller token (give it to {name}; it is not stored anywhere): {token}");
    println!("{line}");
    Ok(())
}

pub fn new_token(name: &str, cameras: &[String]) -> std::io::Result<(String, String)> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(std::io::Error::other)?;
    let token = hex::encode(secret);
    let line = format!("{name} {} {}", hex::encode(Sha256::digest(token.as_bytes())), cameras.join(","));
    Ok((token, line))
}

#[derive(Debug, Default)]
pub struct ControllerPhases {
    latest: Mutex<HashMap<CameraId, (DateTime<Utc>, SignalPhase)>>,
    /// Reports taken.
    pub reports: AtomicU64,
    /// Requests refused: address not allowed, no or unknown token, a camera not the controller's.
    pub refused: AtomicU64,
}

impl ControllerPhases {
    pub fn report(&self, camera: CameraId, at: DateTime<Utc>, phase: SignalPhase) {
        if let Ok(mut latest) = self.latest.lock() {
            latest.insert(camera, (at, phase));
        }
    }

    pub fn latest(&self, camera: &CameraId) -> Option<(DateTime<Utc>, SignalPhase)> {
        self.latest.lock().ok()?.get(camera).copied()
    }
}

/// The body a controller posts.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseReport {
    pub phase: SignalPhase,
}

#[derive(Clone)]
struct Listener {
    phases: Arc<ControllerPhases>,
    tokens: Arc<ControllerTokens>,
    allow: Arc<AllowList>,
}

/// The controller listener's routes; requests need `ConnectInfo<SocketAddr>` (see [`serve`]).
pub fn router(phases: Arc<ControllerPhases>, tokens: ControllerTokens, allow: AllowList) -> Router {
    Router::new()
        .route("/api/v1/signal/{camera}", axum::routing::post(phase_report))
        // A phase report is a few bytes.
        .layer(DefaultBodyLimit::max(1024))
        .with_state(Listener { phases, tokens: Arc::new(tokens), allow: Arc::new(allow) })
}

async fn phase_report(
    State(s): State<Listener>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(camera): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let refuse = |status: StatusCode, why: &'static str| {
        s.phases.refused.fetch_add(1, Relaxed);
        tracing::warn!(peer = %peer.ip(), why, "controller report refused");
        (status, why).into_response()
    };
    if !s.allow.allows(peer.ip()) {
        return refuse(StatusCode::FORBIDDEN, "this address may not report signal phases");
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(controller) = token.and_then(|t| s.tokens.find(t)) else {
        return refuse(StatusCode::UNAUTHORIZED, "send Authorization: Bearer <controller token>");
    };
    let id = CameraId::new(&camera);
    if !controller.cameras.contains(&id) {
        return refuse(StatusCode::FORBIDDEN, "this controller does not report that camera");
    }
    let report: PhaseReport = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(_) => {
            return (StatusCode::BAD_REQUEST, "expected {\"phase\": \"red\" | \"yellow\" | \"green\" | \"unknown\"}")
                .into_response()
        }
    };
    tracing::debug!(controller = %controller.name, camera = %id, phase = ?report.phase, "controller phase");
    s.phases.reports.fetch_add(1, Relaxed);
    s.phases.report(id, Utc::now(), report.phase);
    StatusCode::NO_CONTENT.into_response()
}

/// Serves the controller listener until the process ends; a port that cannot be bound is logged, not fatal
/// (the rules then see no controller phase, which is "unknown": nothing is judged on it).
pub async fn serve(listen: String, router: Router, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    match tokio::net::TcpListener::bind(&listen).await {
        Ok(listener) => {
            tracing::info!(%listen, "signal controller input");
            let app = router.into_make_service_with_connect_info::<SocketAddr>();
            let stop = async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            };
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
                tracing::error!(error = %e, "controller listener stopped");
            }
        }
        Err(e) => tracing::error!(%listen, error = %e, "controller listener could not bind; no controller input"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    fn known() -> HashSet<CameraId> {
        ["nga-tu-1", "nga-tu-2"].into_iter().map(CameraId::new).collect()
    }

    fn listener(allow: &[&str]) -> (Router, Arc<ControllerPhases>, String) {
        let (token, line) = new_token("tu-dieu-khien-1", &["nga-tu-1".into()]).expect("token");
        let tokens = ControllerTokens::parse(&line, &known()).expect("tokens");
        let allow = AllowList::parse(&allow.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("allow");
        let phases = Arc::new(ControllerPhases::default());
        (router(phases.clone(), tokens, allow), phases, token)
    }

    fn post(camera: &str, token: Option<&str>, from: &str, body: &str) -> axum::http::Request<axum::body::Body> {
        let mut req = axum::http::Request::post(format!("/api/v1/signal/{camera}"))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let mut req = req.body(axum::body::Body::from(body.to_owned())).expect("request");
        req.extensions_mut().insert(ConnectInfo(from.parse::<SocketAddr>().expect("addr")));
        req
    }

    #[tokio::test]
    async fn an_unauthenticated_phase_report_cannot_set_the_signal() {
        let (app, phases, _) = listener(&[]);
        let res = app.oneshot(post("nga-tu-1", None, "127.0.0.1:5000", r#"{"phase":"red"}"#)).await.expect("res");
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(phases.latest(&CameraId::new("nga-tu-1")), None);
        let (app, phases, _) = listener(&[]);
        let res =
            app.oneshot(post("nga-tu-1", Some("guess"), "127.0.0.1:5000", r#"{"phase":"red"}"#)).await.expect("res");
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(phases.latest(&CameraId::new("nga-tu-1")), None);
        assert_eq!(phases.refused.load(Relaxed), 1);
    }

    #[tokio::test]
    async fn a_controller_reports_only_its_own_cameras_from_an_allowed_address() {
        let (app, phases, token) = listener(&["10.20.0.0/16"]);
        let from_elsewhere = post("nga-tu-1", Some(&token), "192.168.1.9:5000", r#"{"phase":"red"}"#);
        assert_eq!(app.clone().oneshot(from_elsewhere).await.expect("res").status(), StatusCode::FORBIDDEN);
        let not_its_camera = post("nga-tu-2", Some(&token), "10.20.3.4:5000", r#"{"phase":"red"}"#);
        assert_eq!(app.clone().oneshot(not_its_camera).await.expect("res").status(), StatusCode::FORBIDDEN);
        assert_eq!(phases.latest(&CameraId::new("nga-tu-2")), None);
        let bad_phase = post("nga-tu-1", Some(&token), "10.20.3.4:5000", r#"{"phase":"purple"}"#);
        assert_eq!(app.clone().oneshot(bad_phase).await.expect("res").status(), StatusCode::BAD_REQUEST);
        let ok = post("nga-tu-1", Some(&token), "10.20.3.4:5000", r#"{"phase":"red"}"#);
        assert_eq!(app.oneshot(ok).await.expect("res").status(), StatusCode::NO_CONTENT);
        assert_eq!(phases.latest(&CameraId::new("nga-tu-1")).map(|p| p.1), Some(SignalPhase::Red));
        assert_eq!((phases.reports.load(Relaxed), phases.refused.load(Relaxed)), (1, 2));
    }

    #[test]
    fn the_default_allow_list_is_loopback_only() {
        let allow = AllowList::parse(&[]).expect("default");
        assert!(allow.allows("127.0.0.1".parse().expect("ip")));
        assert!(allow.allows("::ffff:127.0.0.1".parse().expect("ip")));
        assert!(!allow.allows("10.0.0.1".parse().expect("ip")));
        assert!(AllowList::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(AllowList::parse(&["10.0.0.7".into()]).expect("single").allows("10.0.0.7".parse().expect("ip")));
    }

    #[test]
    fn a_tokens_file_naming_an_unknown_camera_or_a_malformed_digest_is_refused_with_its_line() {
        let digest = "ab".repeat(32);
        let err = ControllerTokens::parse(&format!("# comment\nc1 {digest} nga-tu-9\n"), &known()).expect_err("bad");
        assert_eq!(err.0, 2);
        assert!(ControllerTokens::parse(&format!("c1 {} nga-tu-1", "ab".repeat(31)), &known()).is_err());
        assert!(ControllerTokens::parse(&format!("c1 {digest} nga-tu-1\nc2 {digest} nga-tu-2"), &known()).is_err());
        let ok = ControllerTokens::parse(&format!("c1 {digest} nga-tu-1,nga-tu-2 # junction 1"), &known());
        assert_eq!(ok.expect("ok").0.len(), 1);
    }
}
