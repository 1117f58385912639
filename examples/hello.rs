//! The Python emmer's example, in Rust: every read gets "example_output",
//! every upload is stored under the system's temporary directory.
//!
//! ```text
//! cargo run --example hello
//! curl tftp://127.0.0.1:3942/anything
//! curl -T Cargo.toml tftp://127.0.0.1:3942/
//! ```

use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use emmer::{route_read, route_write};

#[route_read(".*")]
fn example_action(client_host: IpAddr, client_port: u16, filename: &str) -> &'static str {
    tracing::debug!(%client_host, client_port, filename, "read");
    "example_output"
}

#[route_write(".*")]
fn example_write(
    client_host: IpAddr,
    client_port: u16,
    filename: &str,
    data: Vec<u8>,
) -> std::io::Result<()> {
    tracing::debug!(%client_host, client_port, filename, bytes = data.len(), "write");
    let path = upload_path(filename)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, data)
}

/// Keeps uploads under `$TMPDIR/emmer-hello`: the name is taken as a relative
/// path and anything that climbs out (`..`, absolute paths) is refused.
fn upload_path(filename: &str) -> std::io::Result<PathBuf> {
    let root = std::env::temp_dir().join("emmer-hello");
    let mut path = root.clone();
    for c in Path::new(filename).components() {
        match c {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "file names must stay inside the upload directory",
                ));
            }
        }
    }
    if path == root {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "an upload needs a file name",
        ));
    }
    Ok(path)
}

fn main() -> emmer::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    emmer::run()
}
