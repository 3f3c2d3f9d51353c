//! The heartbeat: every `uplink.heartbeat_s`, the box tells the central service how it is (send queue depth,
//! disk, clock, cameras), so a box that went quiet or fell behind is seen at the centre before evidence is late.

use crate::telemetry::health::Sources;
use central_protocol::{CameraState, Heartbeat};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use te_uplink::Uplink;
use tokio::sync::watch;

/// Free bytes on the file system holding `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let stat = rustix::fs::statvfs(existing).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// The box's state now.
pub fn heartbeat(device_id: &te_types::DeviceId, sources: &Sources, state_dir: &Path, every: Duration) -> Heartbeat {
    let counts = sources.store.counts().unwrap_or_default();
    Heartbeat {
        device_id: device_id.clone(),
        sent_at: chrono::Utc::now(),
        agent_version: env!("CARGO_PKG_VERSION").into(),
        pending: counts.pending,
        delivered: counts.delivered,
        rejected: counts.rejected,
        disk_used_bytes: counts.bytes,
        disk_free_bytes: free_bytes(state_dir).unwrap_or(0),
        clock: sources.clock.check(chrono::Utc::now()),
        cameras: sources
            .cameras
            .iter()
            .map(|(id, stats)| CameraState {
                camera_id: id.clone(),
                state: stats.state().as_str().into(),
                frames_in: stats.frames_delivered.load(Relaxed),
                frames_dropped: stats.frames_dropped.load(Relaxed),
                reconnects: stats.reconnects.load(Relaxed),
            })
            .collect(),
        alarm: sources.store.alarm(),
        interval_s: Some(u32::try_from(every.as_secs().max(1)).unwrap_or(u32::MAX)),
    }
}

/// Sends a heartbeat every `every` until `shutdown`; a failed one is logged and the next one tries again.
pub async fn run(
    uplink: Arc<Uplink>,
    device_id: te_types::DeviceId,
    sources: Sources,
    state_dir: PathBuf,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let beat = {
            let (sources, device_id, state_dir) = (sources.clone(), device_id.clone(), state_dir.clone());
            tokio::task::spawn_blocking(move || heartbeat(&device_id, &sources, &state_dir, every)).await
        };
        match beat {
            Ok(beat) => {
                if let Err(e) = uplink.send_heartbeat(&beat).await {
                    tracing::debug!(error = %e, "heartbeat not delivered");
                }
            }
            Err(e) => tracing::error!(error = %e, "heartbeat task failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}
