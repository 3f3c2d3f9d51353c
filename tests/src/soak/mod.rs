//! The long soaks (`scripts/fault-soak`, `scripts/outage-soak`), as library code their thin binaries call.

pub mod fault;
pub mod outage;
