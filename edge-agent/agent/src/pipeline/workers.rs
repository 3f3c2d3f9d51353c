//! Analysis workers: the analysis stage run on several threads, each with its own models (single-thread ONNX
//! Runtime sessions scale better on a CPU box than one multi-threaded session: measured 1.21x on 2 cores).
//!
//! ```text
//!  camera 0, 2, 4.. --bounded frames--> worker 0 (its own detector, plate and helmet sessions) --+
//!  camera 1, 3, 5.. --bounded frames--> worker 1                                                --+--> evidence store
//! ```
//!
//! Cameras are dealt to workers in turn and stay with their worker, so a camera's frames are analysed in order
//! and its tracker, rules and open records live in one place. Each worker's queue holds `frame_queue` frames;
//! a live camera whose worker falls behind drops its newest frame (counted), a file replay waits.

use crate::config::AgentConfig;
use crate::pipeline::{AnalysisStage, StageLinks, StageModels};
use crate::telemetry::counters::AnalysisReport;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;
use te_types::Frame;

/// The running workers.
pub struct AnalysisWorkers {
    handles: Vec<JoinHandle<()>>,
    links: StageLinks,
}

/// How many workers `config` asks for: `analysis_workers`, or one per core when it is 0.
pub fn worker_count(config: &AgentConfig) -> usize {
    match config.analysis_workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// One bounded frame queue per worker: (senders, receivers). Camera `i` gets sender `i % workers`.
#[allow(clippy::type_complexity)]
pub fn queues(workers: usize, frame_queue: usize) -> (Vec<SyncSender<Frame>>, Vec<Receiver<Frame>>) {
    (0..workers.max(1)).map(|_| sync_channel(frame_queue)).unzip()
}

impl AnalysisWorkers {
    /// Starts one thread per receiver, each with one set of `models` (load them with `boot::load_models`).
    pub fn start(
        config: &AgentConfig,
        models: Vec<StageModels>,
        receivers: Vec<Receiver<Frame>>,
        links: StageLinks,
    ) -> anyhow::Result<Self> {
        let mut handles = Vec::new();
        for (i, (models, rx)) in models.into_iter().zip(receivers).enumerate() {
            let stage = AnalysisStage::new(crate::boot::stage_settings(config)?, models, links.clone());
            let handle = std::thread::Builder::new().name(format!("te-analysis-{i}")).spawn(move || {
                stage.run(rx);
            })?;
            handles.push(handle);
        }
        Ok(Self { handles, links })
    }

    /// Waits until every camera has dropped its sender and the workers have written what they hold; the
    /// counters then hold the whole run.
    pub fn join(self) -> AnalysisReport {
        for handle in self.handles {
            if handle.join().is_err() {
                tracing::error!("an analysis worker panicked");
            }
        }
        self.links.counters.snapshot()
    }
}
