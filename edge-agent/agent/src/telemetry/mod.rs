//! What the box says about itself: the analysis stage's counters (`counters`), Prometheus metrics and a health summary on its own endpoint (`health`),
//! the analysis stage's latency histograms (`latency`), and the heartbeat to the central service (`heartbeat`).

pub mod counters;
pub mod health;
pub mod heartbeat;
pub mod latency;
