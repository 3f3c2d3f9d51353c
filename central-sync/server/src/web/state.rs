//! What every request handler is given.

use crate::owners::OwnerRegistry;
use crate::store::CentralStore;
use std::sync::Arc;

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<CentralStore>,
    /// Session cookies carry `Secure` (the service is served over HTTPS).
    pub secure_cookies: bool,
    /// Unregistered boxes may upload without a token (their key is pinned on first use): demo and tests only.
    pub open_enrolment: bool,
    /// Who owns a plate, for exported cases; `None`: cases go out without the owner.
    pub owners: Option<Arc<dyn OwnerRegistry>>,
    /// The service's public address (no trailing `/`), the base of exported media links; empty: links are
    /// paths on this service.
    pub public_url: String,
}

impl AppState {
    /// Closed enrolment: only registered devices upload.
    pub fn new(store: Arc<CentralStore>) -> Self {
        Self { store, secure_cookies: false, open_enrolment: false, owners: None, public_url: String::new() }
    }
}
