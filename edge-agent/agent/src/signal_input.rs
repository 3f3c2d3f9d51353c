//! Signal phases from junction controllers: `POST /api/v1/signal/{camera}` with `{"phase": "red"}` on the
//! agent's local endpoint (`metrics_listen`). The latest report per camera is kept (a register, not a queue:
//! only the current phase matters) and stamped with the time it arrived.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;
use te_types::{CameraId, SignalPhase};

#[derive(Debug, Default)]
pub struct ControllerPhases {
    latest: Mutex<HashMap<CameraId, (DateTime<Utc>, SignalPhase)>>,
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
