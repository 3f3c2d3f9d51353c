//! The outage soak behind `te-outage-soak`: a box records for simulated days while the central service is unreachable (its disk quota
//! reached on the way), then the centre comes back and the box delivers. The real `edge-agent` store and uplink
//! (`evidence soak-fill`, `evidence send`) and the real `central-sync` over loopback. Not part of CI:
//! `scripts/outage-soak`.
//!
//! Last line: `produced=<n> delivered=<n> duplicated=<n> lost=<n> refused=<n> max_rss_mb=<x>`; exits 1 when
//! anything was duplicated or lost.

use crate::{bin, box_evidence, central_admin, free_port, rss_mb, shared_dir, Central};
use clap::Parser;
use std::process::{Command, Stdio};
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(about = "Days offline, then the centre comes back: counts what arrived")]
pub struct Args {
    /// Simulated days without the central service.
    #[arg(long, default_value_t = 3.0)]
    pub days: f64,
    /// Records per simulated hour (a busy junction camera records a few hundred violations a day).
    #[arg(long, default_value_t = 40)]
    pub per_hour: u64,
    /// Image size per record, KiB.
    #[arg(long, default_value_t = 40)]
    pub media_kb: usize,
    /// The box's disk quota, MiB: set below what the outage produces, so it is reached on the way.
    #[arg(long, default_value_t = 64)]
    pub quota_mb: u64,
    /// Keep the working folder and print where it is.
    #[arg(long)]
    pub keep: bool,
}

/// Runs `edge-agent <args>` to the end, sampling its memory; returns (stdout, peak RSS MiB).
fn agent_sampled(args: &[&str]) -> (String, f64) {
    let mut child = Command::new(bin("edge-agent"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start edge-agent");
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let mut peak = 0.0f64;
    while child.try_wait().expect("wait").is_none() {
        peak = peak.max(rss_mb(pid).unwrap_or(0.0));
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = reader.join().unwrap_or_default();
    print!("{out}");
    (out, peak)
}

fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace().find_map(|kv| kv.strip_prefix(&format!("{key}="))).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Runs the soak; `false` when anything was duplicated or lost.
pub fn run(args: Args) -> bool {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().to_path_buf();
    let port = free_port();
    let data = work.join("central");
    let mut central = Central::start(port, &data);
    central.kill(); // the outage
    let config = work.join("box.toml");
    std::fs::write(
        &config,
        format!(
            "device_id = \"outage-box\"\n[paths]\nshared = \"{}\"\nstate = \"{}\"\n[plates]\nenabled = false\n\
             [evidence]\nquota_mb = {}\n[uplink]\ncentral_url = \"http://127.0.0.1:{port}\"\nbackoff_initial_ms = 100\n\
             backoff_max_ms = 1000\n[[cameras]]\nid = \"nga-tu-1\"\nsource = \"{{data}}/vn_scenes\"\nlocation = \"outage soak\"\n",
            shared_dir().display(),
            work.join("edge").display(),
            args.quota_mb,
        ),
    )
    .expect("config");
    let config_arg = config.to_str().expect("utf8 path");
    let records = ((args.days * 24.0) as u64 * args.per_hour).max(1);
    println!(
        "outage: {records} records over {} simulated days, central unreachable, quota {} MiB",
        args.days, args.quota_mb
    );
    let (fill, fill_rss) = agent_sampled(&[
        "evidence",
        "soak-fill",
        "--config",
        config_arg,
        "--records",
        &records.to_string(),
        "--days",
        &args.days.to_string(),
        "--media-kb",
        &args.media_kb.to_string(),
    ]);
    let last = fill.lines().last().unwrap_or_default();
    let refused = field(last, "refused");
    if field(last, "alarm") == 1 {
        println!("the store's alarm rose during the outage (quota reached with nothing deliverable)");
    }
    println!("the centre comes back");
    central.restart();
    let (send, send_rss) = agent_sampled(&["evidence", "send", "--config", config_arg, "--timeout-s", "1800"]);
    let sent = send.lines().last().unwrap_or_default().to_string();
    let held = box_evidence(&config);
    let at_centre = central.total().unwrap_or(0);
    let chain = central_admin(&data, &["chain", "verify"], "");
    let chain_last = chain.lines().last().unwrap_or_default();
    println!("box: {sent}; centre holds {at_centre}; {chain_last}");
    let box_total = held.ids.len() as u64;
    let duplicated = at_centre.saturating_sub(box_total);
    // Lost: recorded on the box but not at the centre (still pending, or missing from its chain).
    let lost = box_total.saturating_sub(at_centre).max(held.pending).max(field(chain_last, "gaps"));
    if args.keep {
        println!("working folder kept: {}", dir.keep().display());
    }
    println!(
        "produced={records} delivered={} duplicated={duplicated} lost={lost} refused={refused} max_rss_mb={:.1}",
        held.delivered,
        fill_rss.max(send_rss),
    );
    duplicated == 0 && lost == 0
}
