//! # emmer
//!
//! A framework for dynamic TFTP servers: the answer to each request is
//! computed by a function you write, not read from a directory.
//!
//! ```no_run
//! use std::net::IpAddr;
//! use emmer::{route_read, route_write};
//!
//! #[route_read(r"pxelinux\.cfg/01-(?P<mac>[0-9a-f-]{17})")]
//! fn pxe_config(client_host: IpAddr, mac: String) -> String {
//!     format!("# config for {mac} at {client_host}\n")
//! }
//!
//! #[route_write(r"backups/(?P<host>[a-z0-9-]+)\.cfg")]
//! fn backup(host: String, data: Vec<u8>) -> std::io::Result<()> {
//!     std::fs::write(std::env::temp_dir().join(format!("{host}.cfg")), data)
//! }
//!
//! fn main() -> emmer::Result<()> {
//!     emmer::run() // serves on 127.0.0.1:3942 unless EMMER_HOST / EMMER_PORT say otherwise
//! }
//! ```
//!
//! ## Routes
//!
//! [`route_read`] and [`route_write`] register a function for the file names
//! its regex matches. Patterns match the whole name; routes are tried in a
//! fixed order (priority, then declaration order): see [`route`].
//!
//! ## Handlers
//!
//! Parameters bind by name (`client_host`, `client_port`, `filename`, `mode`,
//! `data`, capture groups) and by type ([`FromRequest`]); return values
//! convert with [`IntoReadResponse`] and [`IntoWriteResponse`]. A write
//! handler runs once the whole upload has arrived, and its verdict decides
//! between the final ACK and an ERROR.
//!
//! ## Uploads
//!
//! A write handler that takes `data` gets the whole upload once it has
//! arrived. One that takes an [`Upload`] is called when the request arrives:
//! it may refuse before anything is acknowledged, reads the data as it comes
//! (the engine acknowledges no faster), and can commit it with
//! [`Upload::save_atomic`], so that a failed upload leaves no file.
//!
//! ## Testing
//!
//! Handlers are plain functions; [`App::read`] and [`App::write`] run a
//! request through the real route table without a socket; and
//! [`testing::TestServer`] with [`testing::Client`] test end to end. See
//! [`testing`].
//!
//! ## Configuration
//!
//! [`run`] reads `EMMER_*` variables ([`Config::from_env`]); [`App`]
//! configures everything in code: address, retransmission timeout and
//! retries, option limits (also per route), upload and transfer limits,
//! state, and graceful shutdown through [`Server::shutdown_handle`]. Both
//! go through one check, [`Config::validate`], so a value out of range is the
//! same start-up error whichever way it came: see [`config`].
//!
//! ## Operating
//!
//! [`App::on_transfer`] hands every finished request, served or refused, to
//! a callback as a [`TransferEvent`] (peer, file, route, options, bytes,
//! retransmissions, round trip, duration, outcome), off the transfers'
//! tasks: see [`event`]. [`App::serve_dir`] mounts a directory
//! ([`fs::ServeDir`]) beside the dynamic routes, safe against `..`,
//! absolute names and symbolic links that lead out of it.
//!
//! ## Protocol
//!
//! The engine in [`proto`] implements RFC 1350 (octet and netascii, block
//! number rollover), RFC 2347 (OACK), 2348 (blksize), 2349 (timeout, tsize)
//! and 7440 (windowsize) as state machines without I/O; the tokio driver runs
//! each transfer on its own task and socket.

#![warn(missing_docs)]

mod app;
pub mod config;
mod error;
pub mod event;
pub mod fs;
pub mod handler;
pub mod proto;
pub mod route;
mod server;
pub mod testing;

#[doc(hidden)]
pub mod __private;

pub use app::App;
pub use bytes::Bytes;
pub use config::{Config, Ports, TftpOption, UnknownOptionError};
pub use emmer_macros::{route_read, route_write};
pub use error::{Error, ErrorCode, Result, TftpError};
pub use event::{TransferEvent, TransferOutcome};
pub use handler::{
    FromRequest, IntoReadResponse, IntoWriteResponse, Peer, ReadBody, Request, State, Traceparent,
    Transport, Upload,
};
pub use proto::{Mode, Rollover};
pub use route::{RouteLimits, RoutePattern};
pub use server::{Server, ShutdownHandle};

/// Serves the routes declared with [`route_read`] and [`route_write`] until the
/// process is told to stop.
///
/// Listens on 127.0.0.1:3942 unless `EMMER_HOST` / `EMMER_PORT` (or the other
/// `EMMER_*` variables, see [`Config::from_env`]) say otherwise. Starts a
/// multi-threaded tokio runtime; from async code use [`App::serve`].
///
/// SIGTERM (what a Kubernetes rolling update sends) and SIGINT (Ctrl-C)
/// stop it cleanly: no new requests are taken, running transfers get
/// [`Config::shutdown_grace`] to finish, the rest end with ERROR 0 ("server
/// is shutting down"), and `run` returns `Ok` (the process exits 0).
///
/// # Errors
///
/// A bad `EMMER_*` value, an invalid or duplicate route, or a socket that
/// cannot be bound.
///
/// # Examples
///
/// ```no_run
/// fn main() -> emmer::Result<()> {
///     emmer::run()
/// }
/// ```
pub fn run() -> Result<()> {
    let app = App::from_env()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("emmer")
        .build()?;
    rt.block_on(async {
        let server = app.bind().await?;
        let stop = server.shutdown_handle();
        tokio::spawn(async move {
            let signal = stop_signal().await;
            tracing::info!(
                signal,
                "stopping: no new requests; running transfers may finish"
            );
            stop.shutdown();
        });
        server.serve().await
    })
}

/// Resolves with the name of the first stop signal the process gets.
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            return tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}
