//! A TCP proxy on 127.0.0.1 between the box and the central service: passes bytes at a set rate (a slow
//! junction link), and can cut every connection and refuse new ones (the link goes down) until restored.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Default)]
struct State {
    /// Bytes per second each way per connection; 0: unlimited.
    rate: AtomicU64,
    cut: AtomicBool,
    stop: AtomicBool,
    /// Bytes passed from the box towards the central service.
    bytes_up: AtomicU64,
    connections: AtomicU64,
    open: Mutex<Vec<TcpStream>>,
}

#[derive(Debug)]
pub struct Proxy {
    pub port: u16,
    state: Arc<State>,
}

impl Proxy {
    /// Listens on a free port and forwards to `127.0.0.1:upstream`.
    pub fn start(upstream: u16, bytes_per_s: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(State::default());
        state.rate.store(bytes_per_s, Ordering::SeqCst);
        let s = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if s.cut.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                s.connections.fetch_add(1, Ordering::SeqCst);
                if let (Ok(mut open), Ok(c), Ok(v)) = (s.open.lock(), client.try_clone(), server.try_clone()) {
                    open.push(c);
                    open.push(v);
                }
                pump(client.try_clone(), server.try_clone(), s.clone(), true);
                pump(Ok(server), Ok(client), s.clone(), false);
            }
        });
        Self { port, state }
    }

    /// Drops every open connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        if let Ok(mut open) = self.state.open.lock() {
            for stream in open.drain(..) {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }

    pub fn restore(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }

    pub fn set_rate(&self, bytes_per_s: u64) {
        self.state.rate.store(bytes_per_s, Ordering::SeqCst);
    }

    pub fn bytes_up(&self) -> u64 {
        self.state.bytes_up.load(Ordering::SeqCst)
    }

    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.cut();
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wakes the accept loop
    }
}

fn pump(from: std::io::Result<TcpStream>, to: std::io::Result<TcpStream>, state: Arc<State>, up: bool) {
    let (Ok(mut from), Ok(mut to)) = (from, to) else { return };
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if state.cut.load(Ordering::SeqCst) {
                break;
            }
            let rate = state.rate.load(Ordering::SeqCst);
            if rate > 0 {
                std::thread::sleep(Duration::from_secs_f64(n as f64 / rate as f64));
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
            if up {
                state.bytes_up.fetch_add(n as u64, Ordering::SeqCst);
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
