//! The central service: takes evidence in from edge boxes, keeps it, shows the review queue.
//!
//! ```text
//!  edge box --PUT  /api/v1/clips/<sha>-> clip chunks (resumable) ---------> clips/partial, then clips/<sha>.mp4
//!  edge box --POST /api/v1/evidence--> device token, ingest (verify, idempotent by id) --> SQL row + media file
//!  edge box --POST /api/v1/heartbeat-> latest state per device -----------> SQL row, devices page
//!  officer  --GET /, /evidence/<id>--> review queue, one case (HTML; login, session cookie)
//!  officer  --POST decide------------> approve / reject / correct plate / reopen --> SQL + audit log (chained)
//!  fines system <--GET /api/v1/export/cases[.csv], webhook (outbox, retries, HMAC)-- approved cases
//! ```
//!
//! Invariants: a record is stored once per evidence id, whatever the number of uploads; the answer to a
//! repeated upload is the same receipt; an upload whose media does not match its hash is refused and nothing
//! of it is stored. Embedded default: SQLite and a local media folder, so the demo needs no server.

//!
//! Layers, each using only those below it: `store` (SQL, media, clips) <- `web` (state, the API's error, page
//! frame, language, CSV) <- one folder per feature (`accounts`, `devices`, `evidence`, `review`, `export`,
//! `stats`, `chain`), each with its routes, queries and pages <- `openapi` (the API document's frame) <- `app`
//! (joins the routes; serves the document generated from them).

pub mod accounts;
pub mod app;
pub mod chain;
pub mod cli;
pub mod commands;
pub mod devices;
pub mod evidence;
pub mod export;
pub mod openapi;
pub mod owners;
pub mod review;
pub mod serve;
pub mod stats;
pub mod store;
pub mod tools;
pub mod web;

pub use accounts::{csrf, AccountError, Actor, Role};
pub use app::{api_routes, router, ServerSettings};
pub use devices::DeviceStatus;
pub use review::{ChainCheck, Decision, ReviewError};
pub use store::{clips, media};
pub use store::{
    CentralStore, ClipError, ClipStore, QueueEntry, QueueFilter, ReviewStatus, SealCheck, StoreError, MAX_CLIP_BYTES,
};
pub use tools::fuzz;
pub use web::AppState;
