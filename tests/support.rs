//! Helpers shared by the test targets in this crate.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// A binary of this workspace, built next to the test binary (target/<profile>/deps/x -> target/<profile>/name).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe.parent().and_then(Path::parent).expect("target dir").join(name);
    assert!(path.is_file(), "{} not built: run `cargo build --workspace --bins` (scripts/test does)", path.display());
    path
}

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}
