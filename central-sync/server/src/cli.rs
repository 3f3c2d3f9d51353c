//! The command line of `central-sync` (clap types only; `commands` runs them).

use crate::app::ServerSettings;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// The central service of traffic-edge: receives evidence from edge boxes and serves the review queue.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// PostgreSQL for the metadata (`postgres://user@host/db`); without it, SQLite in --data-dir. Media and
    /// clips are files under --data-dir either way.
    #[arg(long, global = true, env = "CENTRAL_DATABASE_URL")]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the service (embedded defaults: SQLite + media folder under --data-dir, listening on loopback).
    Serve(Box<ServeArgs>),
    /// Edge boxes.
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// Officers' accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// API tokens for systems (the fines system: role export).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Fuzzing: generated hostile uploads and heartbeats through the ingest router in-process (sealed, so the
    /// field checks are what stands in the way) and mutated bytes through the protocol decoder. Last line:
    /// `inputs=<n> panics=<n> errors=<n> refused=<n>` (errors: 5xx answers). Exits 1 on a panic or an error.
    Fuzz {
        #[arg(long, default_value_t = 1_000_000)]
        inputs: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Load benchmark: sealed uploads from registered boxes over loopback HTTP into a fresh store. Last line:
    /// `uploads=<n> uploads_per_s=<x> p50_ms=<x> p99_ms=<x> errors=<n>`.
    Bench {
        /// Uploads in all.
        #[arg(long, default_value_t = 2000)]
        uploads: usize,
        /// Uploads in flight at once.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Boxes they come from.
        #[arg(long, default_value_t = 300)]
        devices: usize,
        /// Overview image size, KiB (a 1080p overview with its data bar is 150-300 KiB).
        #[arg(long, default_value_t = 200)]
        image_kb: usize,
        /// Where the throw-away store goes (default: a temporary folder, removed afterwards).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Every device's hash chain as received.
    Chain {
        #[command(subcommand)]
        command: ChainCommand,
    },
    /// The audit log of every review action.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Prints the HTTP API's OpenAPI 3.1 document (JSON), as served at /api/v1/openapi.json.
    Openapi,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Adds an account; the password is read from the first line of standard input (at least 10 characters).
    Add {
        #[arg(long, env = "CENTRAL_DATA_DIR", default_value = ".local/central")]
        data_dir: PathBuf,
        /// 3-32 characters: a-z, 0-9, '.', '_', '-'.
        #[arg(long)]
        username: String,
        /// reviewer (decides pending cases), supervisor (also reopens and reads the audit log), admin.
        #[arg(long)]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Registers a box with the key it seals records with (`edge-agent evidence key` on the box) and prints its
    /// upload token once; put it in the file the box's `uplink.token_file` names.
    Register {
        #[arg(long, env = "CENTRAL_DATA_DIR", default_value = ".local/central")]
        data_dir: PathBuf,
        #[arg(long)]
        device_id: String,
        /// 64 hex characters.
        #[arg(long)]
        public_key: String,
        /// The name was taken under open enrolment by a box that is not this one (its key is pinned): give
        /// the name to this key. Audited; the other key's records stay, flagged.
        #[arg(long)]
        replace_pinned_key: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Makes a token and prints it once (only its SHA-256 is kept); send it as `Authorization: Bearer <token>`.
    Create {
        #[arg(long, env = "CENTRAL_DATA_DIR", default_value = ".local/central")]
        data_dir: PathBuf,
        /// Who uses it, e.g. fines-system.
        #[arg(long)]
        name: String,
        /// export (reads approved cases), reviewer, supervisor or admin.
        #[arg(long)]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ChainCommand {
    /// Walks each device's records in sequence: numbers never received (gaps) and records that do not link to
    /// their predecessor. Exits 1 on a broken link. Last line: `chain devices=<n> records=<n> gaps=<n> broken=<n>`.
    Verify {
        #[arg(long, env = "CENTRAL_DATA_DIR", default_value = ".local/central")]
        data_dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recomputes the hash chain; exits 1 when an entry was changed or removed. Last line:
    /// `audit entries=<n> chain=intact` or `audit entries=<n> chain=broken_at=<seq>`.
    Verify {
        #[arg(long, env = "CENTRAL_DATA_DIR", default_value = ".local/central")]
        data_dir: PathBuf,
    },
}

/// `central-sync serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CENTRAL_LISTEN", default_value = "127.0.0.1:8787")]
    pub listen: String,
    /// Folder for the database and media.
    #[arg(long, env = "CENTRAL_DATA_DIR", default_value = ".local/central")]
    pub data_dir: PathBuf,
    /// Largest accepted upload, bytes.
    #[arg(long, default_value_t = ServerSettings::default().max_upload_bytes)]
    pub max_upload_bytes: usize,
    /// Most open connections; more are closed at once (keep it under the process's file limit).
    #[arg(long, env = "CENTRAL_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Most open connections from one address.
    #[arg(long, env = "CENTRAL_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 128)]
    pub max_connections_per_address: usize,
    /// Log as JSON lines.
    #[arg(long)]
    pub log_json: bool,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key. Boxes pin the CA with `uplink.ca_file`.
    #[arg(long, env = "CENTRAL_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "CENTRAL_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Accept uploads from unregistered boxes without a token, pinning each one's key on its first record
    /// (the demo and tests). Without it only devices registered with `central-sync device register` upload.
    #[arg(long, env = "CENTRAL_OPEN_ENROLMENT")]
    pub open_enrolment: bool,
    /// POST every approved case (JSON, as GET /api/v1/export/cases) to this URL, retried until it answers 2xx.
    #[arg(long, env = "CENTRAL_WEBHOOK_URL", requires = "webhook_secret_file")]
    pub webhook_url: Option<String>,
    /// File with the shared secret for the webhook's `X-Traffic-Edge-Signature: sha256=<HMAC-SHA256 of the body>`.
    #[arg(long, env = "CENTRAL_WEBHOOK_SECRET_FILE", requires = "webhook_url")]
    pub webhook_secret_file: Option<PathBuf>,
    /// POST device health incidents (a box offline, its store's alarm, its clock untrusted) to this URL as
    /// they open and close, once each (JSON, event `device.incident_opened` / `device.incident_closed`).
    #[arg(long, env = "CENTRAL_ALERT_WEBHOOK_URL", requires = "alert_webhook_secret_file")]
    pub alert_webhook_url: Option<String>,
    /// File with the shared secret for the alert webhook's signature (as --webhook-secret-file).
    #[arg(long, env = "CENTRAL_ALERT_WEBHOOK_SECRET_FILE", requires = "alert_webhook_url")]
    pub alert_webhook_secret_file: Option<PathBuf>,
    /// Vehicle owners (CSV: plate,name,address,id_number), standing in for the national registry.
    #[arg(long, env = "CENTRAL_OWNER_REGISTRY")]
    pub owner_registry: Option<PathBuf>,
    /// The address the fines system reaches this service at (`https://phatnguoi.example.vn`): the media links
    /// of exported cases are absolute under it. Default: http(s)://<--listen>.
    #[arg(long, env = "CENTRAL_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Keep media in this S3-compatible object store (path-style, e.g. https://s3.example.vn) instead of
    /// --data-dir/media; credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    #[arg(long, env = "CENTRAL_MEDIA_S3_ENDPOINT", requires = "media_s3_bucket")]
    pub media_s3_endpoint: Option<String>,
    /// The bucket (created when missing).
    #[arg(long, env = "CENTRAL_MEDIA_S3_BUCKET", requires = "media_s3_endpoint")]
    pub media_s3_bucket: Option<String>,
    #[arg(long, env = "CENTRAL_MEDIA_S3_REGION", default_value = "us-east-1")]
    pub media_s3_region: String,
}
