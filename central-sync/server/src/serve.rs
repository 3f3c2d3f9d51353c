//! The listener: HTTP/1.1 (or HTTPS through rustls) with limits that keep the service answering under a
//! flood of idle or slow clients.
//!
//! - At most `max_connections` open connections, and `max_per_address` from one address; a connection over
//!   either is closed at once (not left in the kernel's queue, where it would hold up everyone).
//! - A client has `header_timeout` to send each request's headers (and to finish the TLS handshake); an
//!   idle keep-alive connection is closed after the same time.
//! - A request (body read included) that is not answered within `request_timeout` gets 408.
//! - On shutdown, requests in flight finish (up to 10 s), then the process exits.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

/// Connection and time limits (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_address: usize,
    pub header_timeout: Duration,
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_per_address: 128,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
        }
    }
}

/// Open connections per address.
#[derive(Debug, Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in [`PerAddress`], given back when dropped.
struct Slot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut table = self.0.lock().ok()?;
        let n = table.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot { table: self.clone(), ip })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut table) = self.table.0.lock() {
            if let Some(n) = table.get_mut(&self.ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    table.remove(&self.ip);
                }
            }
        }
    }
}

/// Answers 408 to a request not answered within the limit (a slow body included).
pub async fn request_timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "request took too long").into_response(),
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Serves `app` on `listener` until `shutdown` resolves. With `tls`, every connection is HTTPS.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let app = app.layer(axum::middleware::from_fn_with_state(limits.request_timeout, request_timeout));
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let per_address = Arc::new(PerAddress::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(peer = %peer.ip(), "connection limit reached; connection closed");
            continue;
        };
        let Some(slot) = per_address.take(peer.ip(), limits.max_per_address) else {
            tracing::warn!(peer = %peer.ip(), "too many connections from this address; connection closed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = tower::ServiceExt::map_request(app.clone(), move |mut request: Request<_>| {
            request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            request
        });
        let service = hyper_util::service::TowerToHyperService::new(service);
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let io: Box<dyn Io> = match tls {
                None => Box::new(stream),
                Some(tls) => match tokio::time::timeout(limits.header_timeout, tls.accept(stream)).await {
                    Ok(Ok(stream)) => Box::new(stream),
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %peer.ip(), error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                },
            };
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(hyper_util::rt::TokioIo::new(io), service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(peer = %peer.ip(), error = %e, "connection ended with an error");
            }
            drop((permit, slot));
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => tracing::warn!("requests still in flight at shutdown"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start(limits: Limits) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
        tokio::spawn(serve(listener, app, None, limits, std::future::pending()));
        addr
    }

    async fn healthz(addr: SocketAddr) -> bool {
        let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else { return false };
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
        let mut out = String::new();
        let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out)).await;
        read.is_ok() && out.starts_with("HTTP/1.1 200")
    }

    #[tokio::test]
    async fn idle_connections_past_the_limit_are_closed_and_health_still_answers() {
        let limits = Limits {
            max_connections: 20,
            max_per_address: 10,
            header_timeout: Duration::from_millis(500),
            ..Limits::default()
        };
        let addr = start(limits).await;
        let mut idle = Vec::new();
        for _ in 0..10 {
            idle.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
        }
        // The address is at its limit: one more is closed at once...
        let mut extra = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut buf = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut buf)).await;
        assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
        // ...and the idle ones are dropped after the header timeout, after which health answers again.
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert!(healthz(addr).await, "the service answers once idle connections time out");
        for mut s in idle {
            let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
            assert!(matches!(n, Ok(Ok(0)) | Ok(Err(_))), "an idle connection was left open: {n:?}");
        }
    }

    #[tokio::test]
    async fn slow_headers_are_cut_off_at_the_header_timeout() {
        let limits = Limits { header_timeout: Duration::from_millis(300), ..Limits::default() };
        let addr = start(limits).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ").await.expect("write");
        let started = std::time::Instant::now();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        assert!(started.elapsed() < Duration::from_secs(3), "slow headers held the connection {:?}", started.elapsed());
    }
}
