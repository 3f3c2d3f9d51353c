//! What each command of `central-sync` does: the operator's commands (accounts, devices, tokens, chain and
//! audit checks, fuzz, bench) and `serve`. The binary parses and calls these.

use crate::app::{router, ServerSettings};
use crate::cli::{AuditCommand, ChainCommand, Command, DeviceCommand, ServeArgs, TokenCommand, UserCommand};
use crate::export::{self, Webhook};
use crate::owners::{FileOwnerRegistry, OwnerRegistry};
use crate::store::media::S3Settings;
use crate::store::CentralStore;
use crate::tools::bench;
use crate::web::AppState;
use anyhow::Context;
use std::path::Path;
use std::sync::Arc;

async fn open_store(database_url: Option<&str>, data_dir: &Path) -> anyhow::Result<CentralStore> {
    let what = match database_url {
        Some(_) => format!("PostgreSQL (media in {})", data_dir.display()),
        None => data_dir.display().to_string(),
    };
    CentralStore::open_with(database_url, data_dir).await.with_context(|| format!("opening the store in {what}"))
}

/// Runs one of the operator's commands (all but `serve`); `Ok(false)` when its check failed (exit status 1).
pub async fn admin(db: Option<&str>, command: Command) -> anyhow::Result<bool> {
    match command {
        Command::User { command: UserCommand::Add { data_dir, username, role } } => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password).context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            open_store(db, &data_dir)
                .await?
                .add_user(&username, password, &role, &crate::accounts::Actor::cli())
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
            return Ok(broken == 0);
        }
        Command::Audit { command: AuditCommand::Verify { data_dir } } => {
            let check = open_store(db, &data_dir).await?.verify_audit().await?;
            match check.broken_at {
                None => println!("audit entries={} chain=intact", check.entries),
                Some(seq) => {
                    println!("audit entries={} chain=broken_at={seq}", check.entries);
                    return Ok(false);
                }
            }
        }
        Command::Fuzz { inputs, seed } => {
            let temp = tempfile::tempdir()?;
            let started = std::time::Instant::now();
            let c = crate::tools::fuzz::run(temp.path(), inputs, seed).await?;
            println!("central fuzz: {} accepted, {:.1} s", c.accepted, started.elapsed().as_secs_f32());
            println!("inputs={} panics={} errors={} refused={}", c.inputs, c.panics, c.errors, c.refused);
            return Ok(c.panics + c.errors == 0);
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
        Command::Serve(args) => serve(db, *args).await?,
        Command::Openapi => println!("{}", crate::app::json()),
    }
    Ok(true)
}

/// A webhook's shared secret from its file (trimmed; at least 16 characters).
fn read_secret(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    let secret = std::fs::read(path).with_context(|| format!("{what}: reading {}", path.display()))?;
    let secret = String::from_utf8_lossy(&secret).trim().as_bytes().to_vec();
    anyhow::ensure!(secret.len() >= 16, "{what}: the secret must be at least 16 characters");
    Ok(secret)
}

/// `serve`: opens the store, starts the clip sweeper and the webhook deliverer, and serves until Ctrl-C or
/// SIGTERM.
pub async fn serve(database_url: Option<&str>, args: ServeArgs) -> anyhow::Result<()> {
    let ServeArgs {
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
        alert_webhook_url,
        alert_webhook_secret_file,
        owner_registry,
        public_url,
        media_s3_endpoint,
        media_s3_bucket,
        media_s3_region,
    } = args;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if log_json {
        builder.json().init();
    } else {
        builder.init();
    }
    let scheme = if tls_cert.is_some() { "https" } else { "http" };
    let public_url = crate::export::public_base(&public_url.unwrap_or_else(|| format!("{scheme}://{listen}")))
        .map_err(|e| anyhow::anyhow!("--public-url: {e}"))?;
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
            CentralStore::open_with_s3(database_url, &settings.data_dir, &s3)
                .await
                .with_context(|| format!("opening the store with media in bucket {} at {}", s3.bucket, s3.endpoint))?
        }
        _ => open_store(database_url, &settings.data_dir).await?,
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
        let secret = read_secret(&secret_file, "--webhook-secret-file")?;
        tracing::info!(%url, "approved cases are pushed to the webhook");
        let hook = Webhook { url, secret, public_url: public_url.clone() };
        tokio::spawn(export::deliver(store.clone(), owners.clone(), hook));
    }
    let alerts = match (alert_webhook_url, alert_webhook_secret_file) {
        (Some(url), Some(secret_file)) => {
            let secret = read_secret(&secret_file, "--alert-webhook-secret-file")?;
            tracing::info!(%url, "device incidents are pushed to the alert webhook");
            Some(Webhook { url, secret, public_url: public_url.clone() })
        }
        _ => None,
    };
    tokio::spawn(crate::devices::alerts::watch(store.clone(), alerts, crate::devices::alerts::CHECK_EVERY));
    let state = AppState { store, secure_cookies: tls_cert.is_some(), open_enrolment, owners, public_url };
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
    let limits =
        crate::serve::Limits { max_connections, max_per_address: max_connections_per_address, ..Default::default() };
    crate::serve::serve(listener, app, tls, limits, shutdown_signal()).await?;
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
