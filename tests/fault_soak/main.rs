//! `te-fault-soak`: the real agent and central service for N minutes under random faults (central killed and
//! restarted, link cut, link throttled, agent killed with SIGKILL), then a clean drain; prints what was
//! produced, delivered, duplicated and lost, and the processes' memory. Not part of CI: `scripts/fault-soak`.
//!
//! Last line: `produced=<n> delivered=<n> duplicated=<n> lost=<n> agent_rss_mb=<first>-><last>
//! central_rss_mb=<start>-><end> rounds=<n> faults=<n>`; exits 1 when anything was duplicated or lost.

use clap::Parser;
use te_system_tests::soak::fault::{run, Args};

fn main() -> std::process::ExitCode {
    if run(Args::parse()) {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
