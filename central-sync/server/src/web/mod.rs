//! What every feature's routes share, and nothing feature-specific: the state handlers get, the API's one
//! error answer, the UI language, the page frame, CSV answers, text helpers and request headers. Features
//! depend on this module; it depends on none of them.

pub mod csv;
pub mod error;
pub mod lang;
pub mod layout;
pub mod request;
pub mod state;
pub mod text;

pub use csv::csv_response;
pub use error::ApiError;
pub use lang::{Lang, LANG_COOKIE};
pub use layout::{forbidden, message, render, storage_failure, Frame, Viewer};
pub use state::AppState;
pub use text::{local_time, url_encode};
