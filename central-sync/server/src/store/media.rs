//! Where evidence media (overview images, clips) are kept: a local folder (embedded default) or an
//! S3-compatible object store (production: the province's cloud platform, MinIO, Ceph...), by configuration.
//! Keys are `<evidence id>/<name>`; the id is a parsed ULID and the name a constant or made of a checked SHA-256
//! hex, so neither carries a path.
//! Content is checked against the record's hashes on every case view, wherever it is kept.

use super::StoreError;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use std::path::PathBuf;
use std::time::Duration;

/// How long a signed request stays valid (it is used at once).
const SIGNED_FOR: Duration = Duration::from_secs(300);

/// An S3-compatible bucket.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// `https://s3.example.vn` (path-style addressing, as MinIO and Ceph expect).
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
}

#[derive(Debug)]
pub enum MediaStore {
    Local(PathBuf),
    S3 { bucket: Bucket, credentials: Credentials, client: reqwest::Client },
}

fn request_failed(key: &str) -> impl FnOnce(reqwest::Error) -> StoreError + '_ {
    move |source| StoreError::ObjectStoreRequest { key: key.to_string(), source }
}

fn answered(key: &str, answer: String) -> StoreError {
    StoreError::ObjectStoreAnswer { key: key.to_string(), answer }
}

impl MediaStore {
    pub fn local(dir: PathBuf) -> Result<Self, StoreError> {
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Media { path: dir.clone(), source })?;
        Ok(Self::Local(dir))
    }

    pub fn s3(settings: &S3Settings) -> Result<Self, StoreError> {
        let endpoint = settings
            .endpoint
            .parse()
            .map_err(|e: url::ParseError| StoreError::S3Setting { what: "endpoint", source: Box::new(e) })?;
        let bucket = Bucket::new(endpoint, UrlStyle::Path, settings.bucket.clone(), settings.region.clone())
            .map_err(|e| StoreError::S3Setting { what: "bucket", source: Box::new(e) })?;
        let credentials = Credentials::new(settings.access_key.clone(), settings.secret_key.clone());
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| StoreError::S3Setting { what: "client", source: Box::new(e) })?;
        Ok(Self::S3 { bucket, credentials, client })
    }

    /// Stores `bytes` under `key`, durably: a local file is written beside, synced and renamed; an object is
    /// acknowledged by the store only once it is whole.
    pub async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        match self {
            MediaStore::Local(dir) => {
                let (dir, key, bytes) = (dir.clone(), key.to_string(), bytes.to_vec());
                tokio::task::spawn_blocking(move || write_file(&dir, &key, &bytes))
                    .await
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?
            }
            MediaStore::S3 { bucket, credentials, client } => {
                let url = bucket.put_object(Some(credentials), key).sign(SIGNED_FOR);
                let response = client.put(url).body(bytes.to_vec()).send().await.map_err(request_failed(key))?;
                if !response.status().is_success() {
                    return Err(answered(key, format!("PUT answered {}", response.status())));
                }
                Ok(())
            }
        }
    }

    /// The bytes under `key`; `None` when there are none.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            MediaStore::Local(dir) => {
                let path = dir.join(key);
                match tokio::fs::read(&path).await {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(StoreError::Media { path, source }),
                }
            }
            MediaStore::S3 { bucket, credentials, client } => {
                let url = bucket.get_object(Some(credentials), key).sign(SIGNED_FOR);
                let response = client.get(url).send().await.map_err(request_failed(key))?;
                match response.status() {
                    reqwest::StatusCode::NOT_FOUND => Ok(None),
                    s if s.is_success() => Ok(Some(response.bytes().await.map_err(request_failed(key))?.to_vec())),
                    s => Err(answered(key, format!("GET answered {s}"))),
                }
            }
        }
    }

    /// Whether something is stored under `key`.
    pub async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        match self {
            MediaStore::Local(dir) => {
                let path = dir.join(key);
                tokio::fs::try_exists(&path).await.map_err(|source| StoreError::Media { path, source })
            }
            MediaStore::S3 { bucket, credentials, client } => {
                let url = bucket.head_object(Some(credentials), key).sign(SIGNED_FOR);
                let response = client.head(url).send().await.map_err(request_failed(key))?;
                match response.status() {
                    reqwest::StatusCode::NOT_FOUND => Ok(false),
                    s if s.is_success() => Ok(true),
                    s => Err(answered(key, format!("HEAD answered {s}"))),
                }
            }
        }
    }

    /// Creates the bucket if it is not there (first start against an empty object store).
    pub async fn ensure_bucket(&self) -> Result<(), StoreError> {
        let MediaStore::S3 { bucket, credentials, client } = self else { return Ok(()) };
        let head = bucket.head_bucket(Some(credentials)).sign(SIGNED_FOR);
        let exists = client.head(head).send().await.map_err(request_failed(bucket.name()))?;
        if exists.status().is_success() {
            return Ok(());
        }
        let create = bucket.create_bucket(credentials).sign(SIGNED_FOR);
        // An empty PUT must still say so (411 otherwise).
        let response = client
            .put(create)
            .header(reqwest::header::CONTENT_LENGTH, 0)
            .send()
            .await
            .map_err(request_failed(bucket.name()))?;
        if response.status().is_success() {
            tracing::info!(bucket = bucket.name(), "media bucket created");
            Ok(())
        } else {
            Err(answered(bucket.name(), format!("creating the bucket answered {}", response.status())))
        }
    }
}

/// Write beside, sync, then rename: a crash leaves the old state or the whole file, never half of it.
fn write_file(dir: &std::path::Path, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let path = dir.join(key);
    let media_err = |source| StoreError::Media { path: path.clone(), source };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(media_err)?;
    }
    let tmp = path.with_extension("partial");
    let mut file = std::fs::File::create(&tmp).map_err(media_err)?;
    file.write_all(bytes).map_err(media_err)?;
    file.sync_all().map_err(media_err)?;
    std::fs::rename(&tmp, &path).map_err(media_err)?;
    Ok(())
}
