//! Transfer metrics for Prometheus: emmer records through the `metrics`
//! facade (cargo feature `metrics`), and this program installs
//! `metrics-exporter-prometheus` and serves its text on `/metrics`.
//!
//! ```text
//! cargo run --example metrics --features metrics
//! curl tftp://127.0.0.1:3942/motd
//! curl http://127.0.0.1:9184/metrics     # emmer_transfers_total{route="motd",...} 1
//! ```
//!
//! `EMMER_METRICS_ADDR` sets where the metrics are served (default
//! 127.0.0.1:9184). The TFTP side is `emmer::run()` with its `EMMER_*`
//! variables. The exporter's own HTTP listener needs a full HTTP stack;
//! this example renders the exporter's text itself, on a plain socket, to
//! stay small.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use emmer::{TftpError, route_read, route_write};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

#[route_read("motd")]
fn motd() -> &'static str {
    "welcome to the lab\n"
}

#[route_write(r"uploads/[a-z0-9-]+\.txt")]
fn upload(data: Vec<u8>) -> Result<(), TftpError> {
    if data.is_empty() {
        return Err(TftpError::access_violation("empty uploads are refused"));
    }
    Ok(())
}

/// Answers every HTTP request on `listener` with the metrics.
fn serve_metrics(listener: TcpListener, handle: PrometheusHandle) {
    for stream in listener.incoming().flatten() {
        if let Err(e) = answer(stream, &handle) {
            tracing::debug!(error = %e, "metrics request failed");
        }
    }
}

fn answer(stream: TcpStream, handle: &PrometheusHandle) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    // The request line and headers, up to the blank line.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let body = handle.render();
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn main() -> emmer::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| std::io::Error::other(format!("cannot install the metrics recorder: {e}")))?;
    let addr: SocketAddr = std::env::var("EMMER_METRICS_ADDR")
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9184)));
    let listener = TcpListener::bind(addr)?;
    tracing::info!(addr = %listener.local_addr()?, "metrics on /metrics");
    std::thread::spawn(move || serve_metrics(listener, handle));
    emmer::run()
}
