//! The fault soak behind `te-fault-soak`: the real agent and central service for N minutes under random faults (central killed and
//! restarted, link cut, link throttled, agent killed with SIGKILL), then a clean drain; prints what was
//! produced, delivered, duplicated and lost, and the processes' memory. Not part of CI: `scripts/fault-soak`.
//!
//! Last line: `produced=<n> delivered=<n> duplicated=<n> lost=<n> agent_rss_mb=<first>-><last>
//! central_rss_mb=<start>-><end> rounds=<n> faults=<n>`; exits 1 when anything was duplicated or lost.

use crate::proxy::Proxy;
use crate::{box_evidence, free_port, kill_hard, replay_config, rss_mb, spawn_agent, Central};
use clap::Parser;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(about = "Runs the agent and the central service under random faults and counts what arrived")]
pub struct Args {
    /// How long to inject faults; the final drain comes after.
    #[arg(long, default_value_t = 10.0)]
    pub minutes: f64,
    /// Seed for the fault schedule (a run can be repeated).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Keep the working folder (stores, logs) and print where it is.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    KillCentral,
    CutLink,
    Throttle,
    KillAgent,
}

/// Runs the soak; `false` when anything was duplicated or lost.
pub fn run(args: Args) -> bool {
    let mut rng = fastrand::Rng::with_seed(args.seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().to_path_buf();
    let mut central = Central::start(free_port(), &work.join("central"));
    let proxy = Proxy::start(central.port, 0);
    let config = replay_config(&work, &format!("http://127.0.0.1:{}", proxy.port), "");
    let central_rss_start = central.pid().and_then(rss_mb).unwrap_or(0.0);
    let (mut agent_rss_first, mut agent_rss_last) = (None::<f64>, 0.0f64);
    let deadline = Instant::now() + Duration::from_secs_f64(args.minutes * 60.0);
    let (mut rounds, mut faults) = (0u32, 0u32);

    while Instant::now() < deadline {
        rounds += 1;
        let fault = match rng.u8(0..5) {
            0 => Fault::None,
            1 => Fault::KillCentral,
            2 => Fault::CutLink,
            3 => Fault::Throttle,
            _ => Fault::KillAgent,
        };
        let at = Duration::from_millis(rng.u64(1000..15_000));
        let length = Duration::from_millis(rng.u64(1000..6000));
        let log = work.join(format!("agent-{rounds}.log"));
        let mut agent = spawn_agent(&config, &["--exit-when-done", "--drain-timeout", "30"], &log);
        let started = Instant::now();
        let mut peak = 0.0f64;
        let mut injected = false;
        let mut restore_at = None;
        loop {
            if let Ok(Some(_)) = agent.try_wait() {
                break;
            }
            peak = peak.max(rss_mb(agent.id()).unwrap_or(0.0));
            if !injected && started.elapsed() >= at {
                injected = true;
                match fault {
                    Fault::None => {}
                    Fault::KillCentral => {
                        central.kill();
                        restore_at = Some(Instant::now() + length);
                    }
                    Fault::CutLink => {
                        proxy.cut();
                        restore_at = Some(Instant::now() + length);
                    }
                    Fault::Throttle => {
                        proxy.set_rate(rng.u64(100_000..500_000));
                        restore_at = Some(Instant::now() + length * 2);
                    }
                    Fault::KillAgent => {
                        kill_hard(&mut agent);
                        break;
                    }
                }
                faults += u32::from(!matches!(fault, Fault::None));
            }
            if restore_at.is_some_and(|t| Instant::now() >= t) {
                restore_at = None;
                restore(&mut central, &proxy);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        if restore_at.is_some() {
            restore(&mut central, &proxy);
        }
        agent_rss_first.get_or_insert(peak);
        agent_rss_last = peak;
        println!(
            "round {rounds:>3}  fault {:<12} at {:>5.1} s  agent peak RSS {peak:>6.1} MiB  central holds {}",
            format!("{fault:?}"),
            at.as_secs_f64(),
            central.total().unwrap_or(0)
        );
    }

    // Faults over: one clean run sends whatever is still queued.
    restore(&mut central, &proxy);
    let log = work.join("agent-drain.log");
    let mut drain = spawn_agent(&config, &["--exit-when-done", "--drain-timeout", "120"], &log);
    let _ = drain.wait();
    let held = box_evidence(&config);
    let at_centre = central.evidence_ids();
    let distinct: BTreeSet<String> = at_centre.iter().cloned().collect();
    let duplicated = (at_centre.len() - distinct.len()) + distinct.difference(&held.ids).count();
    let lost = held.ids.difference(&distinct).count();
    let central_rss_end = central.pid().and_then(rss_mb).unwrap_or(0.0);
    if args.keep {
        println!("working folder kept: {}", dir.keep().display());
    }
    println!(
        "produced={} delivered={} duplicated={duplicated} lost={lost} agent_rss_mb={:.1}->{:.1} central_rss_mb={:.1}->{:.1} rounds={rounds} faults={faults}",
        held.ids.len(),
        held.delivered,
        agent_rss_first.unwrap_or(0.0),
        agent_rss_last,
        central_rss_start,
        central_rss_end,
    );
    duplicated == 0 && lost == 0
}

/// Brings the link and the central service back to normal.
fn restore(central: &mut Central, proxy: &Proxy) {
    proxy.restore();
    proxy.set_rate(0);
    if central.pid().is_none() {
        central.restart();
    }
}
