//! `central-sync`: the central service binary. Glue only: settings, logging, serve.

mod bench;

use anyhow::Context;
use central_server::export::{self, FileOwnerRegistry, OwnerRegistry, Webhook};
use central_server::media::S3Settings;
use central_server::{router, AppState, CentralStore, ServerSettings};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The central service of traffic-edge: receives evidence from edge boxes and serves the review queue.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// PostgreSQL for the metadata (`postgres://user@host/db`); without it, SQLite in --data-dir. Media and
    /// clips are files under --data-dir either way.
    #[arg(long, global = true, env = "CENTRAL_DATABASE_URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the service (embedded defaults: SQLite + media folder under --data-dir, listening on loopback).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "CENTRAL_LISTEN", default_value = "127.0.0.1:8787")]
        listen: String,
        /// Folder for the database and media.
        #[arg(long, env = "CENTRAL_DATA_DIR", default_value = ".local/central")]
        data_dir: PathBuf,
        /// Largest accepted upload, bytes.
        #[arg(long, default_value_t = ServerSettings::default().max_upload_bytes)]
        max_upload_bytes: usize,
        /// Most open connections; more are closed at once (keep it under the process's file limit).
        #[arg(long, env = "CENTRAL_MAX_CONNECTIONS", default_value_t = 1024)]
        max_connections: usize,
        /// Most open connections from one address.
        #[arg(long, env = "CENTRAL_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 128)]
        max_connections_per_address: usize,
        /// Log as JSON lines.
        #[arg(long)]
        log_json: bool,
        /// Serve HTTPS with this certificate chain (PEM); needs --tls-key. Boxes pin the CA with `uplink.ca_file`.
        #[arg(long, env = "CENTRAL_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's private key (PEM).
        #[arg(long, env = "CENTRAL_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Accept uploads from unregistered boxes without a token, pinning each one's key on its first record
        /// (the demo and tests). Without it only devices registered with `central-sync device register` upload.
        #[arg(long, env = "CENTRAL_OPEN_ENROLMENT")]
        open_enrolment: bool,
        /// POST every approved case (JSON, as GET /api/v1/export/cases) to this URL, retried until it answers 2xx.
        #[arg(long, env = "CENTRAL_WEBHOOK_URL", requires = "webhook_secret_file")]
        webhook_url: Option<String>,
        /// File with the shared secret for the webhook's `X-Traffic-Edge-Signature: sha256=<HMAC-SHA256 of the body>`.
        #[arg(long, env = "CENTRAL_WEBHOOK_SECRET_FILE", requires = "webhook_url")]
        webhook_secret_file: Option<PathBuf>,
        /// Vehicle owners (CSV: plate,name,address,id_number), standing in for the national registry.
        #[arg(long, env = "CENTRAL_OWNER_REGISTRY")]
        owner_registry: Option<PathBuf>,
        /// Keep media in this S3-compatible object store (path-style, e.g. https://s3.example.vn) instead of
        /// --data-dir/media; credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
        #[arg(long, env = "CENTRAL_MEDIA_S3_ENDPOINT", requires = "media_s3_bucket")]
        media_s3_endpoint: Option<String>,
        /// The bucket (created when missing).
        #[arg(long, env = "CENTRAL_MEDIA_S3_BUCKET", requires = "media_s3_endpoint")]
        media_s3_bucket: Option<String>,
        #[arg(long, env = "CENTRAL_MEDIA_S3_REGION", default_value = "us-east-1")]
        media_s3_region: String,
    },
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
}

#[derive(Debug, Subcommand)]
enum UserCommand {
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
enum DeviceCommand {
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
enum TokenCommand {
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
enum ChainCommand {
    /// Walks each device's records in sequence: numbers never received (gaps) and records that do not link to
    /// their predecessor. Exits 1 on a broken link. Last line: `chain devices=<n> records=<n> gaps=<n> broken=<n>`.
    Verify {
        #[arg(long, env = "CENTRAL_DATA_DIR", default_value = ".local/central")]
        data_dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recomputes the hash chain; exits 1 when an entry was changed or removed. Last line:
    /// `audit entries=<n> chain=intact` or `audit entries=<n> chain=broken_at=<seq>`.
    Verify {
        #[arg(long, env = "CENTRAL_DATA_DIR", default_value = ".local/central")]
        data_dir: PathBuf,
    },
}

async fn open_store(database_url: Option<&str>, data_dir: &Path) -> anyhow::Result<CentralStore> {
    let what = match database_url {
        Some(_) => format!("PostgreSQL (media in {})", data_dir.display()),
        None => data_dir.display().to_string(),
    };
    CentralStore::open_with(database_url, data_dir).await.with_context(|| format!("opening the store in {what}"))
}

async fn admin(db: Option<&str>, command: Command) -> anyhow::Result<()> {
    match command {
        Command::User { command: UserCommand::Add { data_dir, username, role } } => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password).context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            open_store(db, &data_dir)
                .await?
                .add_user(&username, password, &role, &central_server::Actor::cli())
                .await?;
            println!("user {username} added with role {role}");
        }
        Command::Device {
            command: DeviceCommand::Register { data_dir, device_id, public_key, replace_pinned_key },
        } => {
            let store = open_store(db, &data_dir).await?;
            let token = store.register_device_with(&device_id, &public_key, replace_pinned_key).await?;
            println!("{token}");
        }
        Command::Token { command: TokenCommand::Create { data_dir, name, role } } => {
            let token = open_store(db, &data_dir).await?.create_token(&name, &role).await?;
            println!("{token}");
        }
        Command::Chain { command: ChainCommand::Verify { data_dir } } => {
            let chains = open_store(db, &data_dir).await?.chains().await?;
            let (mut records, mut gaps, mut broken) = (0, 0, 0);
            for c in &chains {
                println!(
                    "{}: {} records up to #{}; missing [{}]; broken {:?}",
                    c.device_id,
                    c.records,
                    c.highest,
                    c.missing_text(),
                    c.broken
                );
                records += c.records;
                gaps += c.missing_count();
                broken += c.broken.len();
            }
            println!("chain devices={} records={records} gaps={gaps} broken={broken}", chains.len());
            if broken > 0 {
                std::process::exit(1);
            }
        }
        Command::Audit { command: AuditCommand::Verify { data_dir } } => {
            let check = open_store(db, &data_dir).await?.verify_audit().await?;
            match check.broken_at {
                None => println!("audit entries={} chain=intact", check.entries),
                Some(seq) => {
                    println!("audit entries={} chain=broken_at={seq}", check.entries);
                    std::process::exit(1);
                }
            }
        }
        Command::Fuzz { inputs, seed } => {
            let temp = tempfile::tempdir()?;
            let started = std::time::Instant::now();
            let c = central_server::fuzz::run(temp.path(), inputs, seed).await?;
            println!("central fuzz: {} accepted, {:.1} s", c.accepted, started.elapsed().as_secs_f32());
            println!("inputs={} panics={} errors={} refused={}", c.inputs, c.panics, c.errors, c.refused);
            if c.panics + c.errors > 0 {
                std::process::exit(1);
            }
        }
        Command::Bench { uploads, concurrency, devices, image_kb, data_dir } => {
            let temp = tempfile::tempdir()?;
            let dir = data_dir.unwrap_or_else(|| temp.path().to_path_buf());
            let settings = bench::BenchSettings { uploads, concurrency, devices, image_kb };
            let r = bench::run(&settings, db, &dir).await?;
            println!(
                "central bench: {} uploads of {image_kb} KiB from {devices} boxes, {concurrency} in flight, {:.1} s \
                 ({}, media fsynced)",
                r.uploads,
                r.seconds,
                if db.is_some() { "PostgreSQL" } else { "SQLite, synchronous=FULL" }
            );
            println!("latency ms: p50 {:.1}  p99 {:.1}  max {:.1}", r.p50_ms, r.p99_ms, r.max_ms);
            println!(
                "uploads={} uploads_per_s={:.1} p50_ms={:.1} p99_ms={:.1} errors={}",
                r.uploads,
                r.uploads as f64 / r.seconds.max(1e-9),
                r.p50_ms,
                r.p99_ms,
                r.errors
            );
        }
        Command::Serve { .. } => unreachable!("serve is handled by main"),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cli { database_url, command } = Cli::parse();
    let Command::Serve {
        listen,
        data_dir,
        max_upload_bytes,
        max_connections,
        max_connections_per_address,
        log_json,
        tls_cert,
        tls_key,
        open_enrolment,
        webhook_url,
        webhook_secret_file,
        owner_registry,
        media_s3_endpoint,
        media_s3_bucket,
        media_s3_region,
    } = command
    else {
        return admin(database_url.as_deref(), command).await;
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if log_json {
        builder.json().init();
    } else {
        builder.init();
    }
    let settings = ServerSettings { listen, data_dir, max_upload_bytes };
    let store = match (media_s3_endpoint, media_s3_bucket) {
        (Some(endpoint), Some(bucket)) => {
            let key = |name: &str| std::env::var(name).with_context(|| format!("{name} must be set for S3 media"));
            let s3 = S3Settings {
                endpoint,
                bucket,
                region: media_s3_region,
                access_key: key("AWS_ACCESS_KEY_ID")?,
                secret_key: key("AWS_SECRET_ACCESS_KEY")?,
            };
            CentralStore::open_with_s3(database_url.as_deref(), &settings.data_dir, &s3)
                .await
                .with_context(|| format!("opening the store with media in bucket {} at {}", s3.bucket, s3.endpoint))?
        }
        _ => open_store(database_url.as_deref(), &settings.data_dir).await?,
    };
    if open_enrolment {
        tracing::warn!("open enrolment: unregistered boxes may upload (demo and tests only)");
    }
    let owners: Option<Arc<dyn OwnerRegistry>> = match &owner_registry {
        Some(path) => Some(Arc::new(FileOwnerRegistry::load(path)?)),
        None => None,
    };
    let store = Arc::new(store);
    tokio::spawn(store.clips.clone().sweep_forever());
    if let (Some(url), Some(secret_file)) = (webhook_url, webhook_secret_file) {
        let secret = std::fs::read(&secret_file)
            .with_context(|| format!("reading the webhook secret {}", secret_file.display()))?;
        let secret = String::from_utf8_lossy(&secret).trim().as_bytes().to_vec();
        anyhow::ensure!(secret.len() >= 16, "the webhook secret must be at least 16 characters");
        tracing::info!(%url, "approved cases are pushed to the webhook");
        tokio::spawn(export::deliver(store.clone(), owners.clone(), Webhook { url, secret }));
    }
    let state = AppState { store, secure_cookies: tls_cert.is_some(), open_enrolment, owners };
    let app = router(state, settings.max_upload_bytes);
    let tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key)
                .await
                .with_context(|| format!("loading the TLS certificate {} and key {}", cert.display(), key.display()))?;
            Some(config.get_inner())
        }
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    tracing::info!(listen = %listener.local_addr()?, data_dir = %settings.data_dir.display(), https = tls.is_some(),
        max_connections, "central service ready");
    anyhow::ensure!(
        max_connections > 0 && max_connections_per_address > 0,
        "--max-connections and --max-connections-per-address must be at least 1"
    );
    let limits = central_server::serve::Limits {
        max_connections,
        max_per_address: max_connections_per_address,
        ..Default::default()
    };
    central_server::serve::serve(listener, app, tls, limits, shutdown_signal()).await?;
    Ok(())
}

/// Ctrl-C or SIGTERM (systemd, the demo script): finish in-flight requests, then exit.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
