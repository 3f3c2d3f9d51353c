//! Harness for the system tests and the fault soak: the real `edge-agent` and `central-sync` binaries as
//! processes on 127.0.0.1, a throttling proxy that can cut the link, and counts of what each side holds.

pub mod proxy;
pub mod soak;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A binary of this workspace, built next to the running executable (`target/<profile>/` for binaries,
/// `target/<profile>/deps/` for test executables).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(path.is_file(), "{} not built: run `cargo build --workspace --bins` (scripts/test does)", path.display());
    path
}

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// The team's shared folder (models, footage).
pub fn shared_dir() -> PathBuf {
    std::env::var_os("TE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

/// The central service as a child process; killed when dropped. Its log goes to `<data_dir>.log`.
pub struct Central {
    child: Option<Child>,
    pub port: u16,
    data_dir: PathBuf,
    extra: Vec<String>,
    /// A supervisor API token, made before the first start, for reading what the service holds.
    pub token: String,
    /// Unregistered boxes may upload (`--open-enrolment`); tests of device registration start it closed.
    open_enrolment: bool,
}

impl Central {
    pub fn start(port: u16, data_dir: &Path) -> Self {
        Self::start_with(port, data_dir, &[])
    }

    /// With open enrolment, so that test boxes need no registration.
    pub fn start_with(port: u16, data_dir: &Path, extra: &[&str]) -> Self {
        Self::start_enrolment(port, data_dir, extra, true)
    }

    /// Only registered devices may upload.
    pub fn start_closed(port: u16, data_dir: &Path) -> Self {
        Self::start_enrolment(port, data_dir, &[], false)
    }

    fn start_enrolment(port: u16, data_dir: &Path, extra: &[&str], open_enrolment: bool) -> Self {
        let mut central = Self {
            child: None,
            port,
            data_dir: data_dir.to_path_buf(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            token: String::new(),
            open_enrolment,
        };
        central.token = central_admin(data_dir, &["token", "create", "--name", "tests", "--role", "supervisor"], "");
        central.restart();
        central
    }

    /// Starts it (again) on the same port and data; waits until it listens.
    pub fn restart(&mut self) {
        self.kill();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.with_extension("log"))
            .expect("central log");
        let child = Command::new(bin("central-sync"))
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port), "--data-dir"])
            .arg(&self.data_dir)
            .args(&self.extra)
            .args(self.open_enrolment.then_some("--open-enrolment"))
            .stderr(log)
            .spawn()
            .expect("start central-sync");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "central-sync did not start listening within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no goodbye, as a crash or a power cut.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }

    /// Evidence ids the central service holds, each as often as it lists it.
    pub fn evidence_ids(&self) -> Vec<String> {
        let body = self.get("/api/v1/evidence?limit=1000").unwrap_or_default();
        let entries: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap_or_default();
        entries.iter().filter_map(|e| e["record"]["evidence_id"].as_str().map(str::to_string)).collect()
    }

    /// The body of a 200 answer to `GET <path>` with the supervisor token.
    pub fn get(&self, path: &str) -> Option<String> {
        http_body_with(self.port, &format!("GET {path}"), &format!("Authorization: Bearer {}\r\n", self.token))
    }

    pub fn total(&self) -> Option<u64> {
        let body = http_body(self.port, "GET /api/v1/stats")?;
        serde_json::from_str::<serde_json::Value>(&body).ok()?["evidence_total"].as_u64()
    }
}

impl Drop for Central {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `central-sync <args> --data-dir <dir>` with `stdin` as its input; its trimmed standard output.
pub fn central_admin(data_dir: &Path, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(bin("central-sync"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run central-sync");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("central-sync output");
    assert!(out.status.success(), "central-sync {args:?} failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// One HTTP/1.1 request on 127.0.0.1 (a status line and small bodies need no client library).
pub fn http(port: u16, request: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    // Bodies may be binary (pictures): read bytes, then text lossily (the tests read status lines and JSON).
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    Some(String::from_utf8_lossy(&response).into_owned())
}

/// The body of a 200 answer to `GET <path>` ("GET /x").
pub fn http_body(port: u16, request_line: &str) -> Option<String> {
    http_body_with(port, request_line, "")
}

/// As [`http_body`], with `headers` (each line ending in CRLF) added to the request.
pub fn http_body_with(port: u16, request_line: &str, headers: &str) -> Option<String> {
    let request = format!("{request_line} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n");
    let response = http(port, &request)?;
    if !response.starts_with("HTTP/1.1 200") {
        return None;
    }
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

/// Runs `edge-agent <args> --config <config>` to the end; its stdout is echoed for the test log.
pub fn agent(config: &Path, args: &[&str]) -> std::process::Output {
    let output =
        Command::new(bin("edge-agent")).args(args).arg("--config").arg(config).output().expect("run edge-agent");
    eprintln!("--- edge-agent {args:?}\n{}", String::from_utf8_lossy(&output.stdout));
    output
}

/// Starts `edge-agent run` in the background, its output to `log`.
pub fn spawn_agent(config: &Path, args: &[&str], log: &Path) -> Child {
    let out = std::fs::File::create(log).expect("agent log");
    Command::new(bin("edge-agent"))
        .arg("run")
        .args(args)
        .arg("--config")
        .arg(config)
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .expect("start edge-agent")
}

/// What the box holds, from `edge-agent evidence list` (run when no agent has the store open).
#[derive(Debug, Default)]
pub struct BoxEvidence {
    pub ids: BTreeSet<String>,
    pub pending: u64,
    pub delivered: u64,
    pub rejected: u64,
}

pub fn box_evidence(config: &Path) -> BoxEvidence {
    let out = Command::new(bin("edge-agent"))
        .args(["evidence", "list", "--config"])
        .arg(config)
        .output()
        .expect("evidence list");
    assert!(out.status.success(), "evidence list failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines: Vec<&str> = text.lines().collect();
    let last = lines.pop().unwrap_or_default();
    let field = |key: &str| -> u64 {
        last.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key}= in {last:?}"))
    };
    BoxEvidence {
        ids: lines.iter().skip(1).filter_map(|l| l.split_whitespace().next().map(str::to_string)).collect(),
        pending: field("pending"),
        delivered: field("delivered"),
        rejected: field("rejected"),
    }
}

/// Resident memory of a process, MiB (Linux `/proc`).
pub fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Sends SIGKILL to a child: the agent gets no chance to flush or say goodbye.
pub fn kill_hard(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits until `done` or `limit` passes; true when done.
pub fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

/// An agent config for a system test, as the TOML an installer writes: the device, the shared data and a
/// state folder, plates off (speed) unless asked, `[uplink]` to the central service, then what the test adds.
/// One builder for every system test, so that a new setting is added in one place.
pub struct AgentToml {
    device_id: String,
    state: PathBuf,
    top: Vec<String>,
    plates: bool,
    uplink: Vec<String>,
    time: Vec<String>,
    tail: Vec<String>,
}

impl AgentToml {
    /// `state`: the box's state folder (its evidence store and key).
    pub fn new(device_id: &str, state: &Path, central_url: &str) -> Self {
        Self {
            device_id: device_id.into(),
            state: state.into(),
            top: Vec::new(),
            plates: false,
            uplink: vec![format!("central_url = \"{central_url}\"")],
            time: Vec::new(),
            tail: Vec::new(),
        }
    }

    /// A top-level line (`metrics_listen = ...`).
    pub fn top(mut self, line: impl Into<String>) -> Self {
        self.top.push(line.into());
        self
    }

    /// Plate reading on (the default here is off).
    pub fn plates(mut self) -> Self {
        self.plates = true;
        self
    }

    /// A line of `[uplink]`.
    pub fn uplink(mut self, line: impl Into<String>) -> Self {
        self.uplink.push(line.into());
        self
    }

    /// Quick retries, for tests that cut and restore the central service.
    pub fn fast_backoff(self, initial_ms: u64, max_ms: u64) -> Self {
        self.uplink(format!("backoff_initial_ms = {initial_ms}"))
            .uplink(format!("backoff_max_ms = {max_ms}"))
            .uplink("request_timeout_secs = 5")
    }

    /// A line of `[time]`.
    pub fn time(mut self, line: impl Into<String>) -> Self {
        self.time.push(line.into());
        self
    }

    /// A camera replaying `source` (`{data}/...` for the shared data) that waits for analysis rather than
    /// dropping frames, so runs are repeatable.
    pub fn replay_camera(self, id: &str, source: &str, location: &str) -> Self {
        self.section(format!(
            "[[cameras]]\nid = \"{id}\"\nsource = \"{source}\"\nwhen_full = \"block\"\nlocation = \"{location}\""
        ))
    }

    /// Any further TOML (a live camera, `[controller]`, `[[scenes]]`), as written.
    pub fn section(mut self, toml: impl Into<String>) -> Self {
        self.tail.push(toml.into());
        self
    }

    pub fn text(&self) -> String {
        let mut out = format!("device_id = \"{}\"\n", self.device_id);
        for line in &self.top {
            out.push_str(&format!("{line}\n"));
        }
        out.push_str(&format!(
            "[paths]\nshared = \"{}\"\nstate = \"{}\"\n[plates]\nenabled = {}\n[uplink]\n{}\n",
            shared_dir().display(),
            self.state.display(),
            self.plates,
            self.uplink.join("\n")
        ));
        if !self.time.is_empty() {
            out.push_str(&format!("[time]\n{}\n", self.time.join("\n")));
        }
        for section in &self.tail {
            out.push_str(&format!("{}\n", section.trim_end()));
        }
        out
    }

    /// Writes the config to `path` and returns it.
    pub fn write(&self, path: &Path) -> PathBuf {
        std::fs::write(path, self.text()).expect("write config");
        path.to_path_buf()
    }
}

/// An agent config with two replay cameras, the Vietnamese street photos (dozens of vehicle records, quickly)
/// and the car-park video (records with video clips), recording every vehicle pass (no scene), plates off
/// (speed). `extra_uplink` lines go into `[uplink]`.
pub fn replay_config(dir: &Path, central_url: &str, extra_uplink: &str) -> PathBuf {
    let mut toml = AgentToml::new("fault-test-box", &dir.join("edge"), central_url)
        .fast_backoff(100, 1000)
        .uplink("heartbeat_s = 1")
        .time("timeout_ms = 500")
        .replay_camera("stills", "{data}/vn_scenes", "fault test")
        .replay_camera("carpark-1", "{data}/video/car-detection.mp4", "fault test");
    for line in extra_uplink.lines().filter(|l| !l.trim().is_empty()) {
        toml = toml.uplink(line);
    }
    toml.write(&dir.join("agent.toml"))
}

/// An SNTP server on 127.0.0.1 whose clock runs `skew_ms` ahead of this machine's; answers until the process
/// ends. Returns its `host:port`.
pub fn fake_sntp_server(skew_ms: i64) -> String {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = socket.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        let mut buf = [0u8; 48];
        while let Ok((_, peer)) = socket.recv_from(&mut buf) {
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs_f64()
                    + skew_ms as f64 / 1000.0;
            let secs = (now.trunc() as u64 + 2_208_988_800) as u32;
            let frac = (now.fract() * 4_294_967_296.0) as u32;
            let mut stamp = [0u8; 8];
            stamp[..4].copy_from_slice(&secs.to_be_bytes());
            stamp[4..].copy_from_slice(&frac.to_be_bytes());
            let mut reply = [0u8; 48];
            reply[0] = 0x24; // version 4, mode 4 (server)
            reply[1] = 1;
            reply[24..32].copy_from_slice(&buf[40..48]);
            reply[32..40].copy_from_slice(&stamp);
            reply[40..48].copy_from_slice(&stamp);
            let _ = socket.send_to(&reply, peer);
        }
    });
    addr
}
