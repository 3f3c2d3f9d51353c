//! `te-outage-soak`: a box records for simulated days while the central service is unreachable (its disk quota
//! reached on the way), then the centre comes back and the box delivers. The real `edge-agent` store and uplink
//! (`evidence soak-fill`, `evidence send`) and the real `central-sync` over loopback. Not part of CI:
//! `scripts/outage-soak`.
//!
//! Last line: `produced=<n> delivered=<n> duplicated=<n> lost=<n> refused=<n> max_rss_mb=<x>`; exits 1 when
//! anything was duplicated or lost.

use clap::Parser;
use te_system_tests::soak::outage::{run, Args};

fn main() -> std::process::ExitCode {
    if run(Args::parse()) {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
