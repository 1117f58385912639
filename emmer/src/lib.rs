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
//! absolute names and symbolic links that lead out of it. A read route
//! with `share_for = "2s"` ([`RoutePattern::share_for`]) serves a boot
//! storm with one handler call per file name and keeps the body for the
//! download that follows a size probe: see [`Sharing`]. With the cargo
//! feature `metrics`, transfers are counted through the `metrics` facade:
//! see [`metrics`].
//!
//! ## HTTP (feature `http`)
//!
//! Netboot is TFTP for the first stage and HTTP for the rest (iPXE, UEFI
//! HTTP Boot, u-boot's `wget`). With the `http` feature, [`App::http`] (or
//! `EMMER_HTTP=host:port`) serves the same route table over HTTP/1.1 as
//! well: read routes answer `GET` and `HEAD` under a prefix
//! ([`App::http_prefix`], `/` by default), write routes `PUT`. Handlers,
//! captures, extractors and [`State`] work unchanged; [`Request::transport`]
//! says [`Transport::Http`] and the client is the TCP peer. A route can keep
//! to one transport (`transports = "tftp"`).
//!
//! ```no_run
//! # #[cfg(feature = "http")]
//! # fn main() -> emmer::Result<()> {
//! use emmer::{App, ReadBody, TftpError, route_read};
//!
//! // A per-MAC iPXE script, over TFTP and HTTP alike.
//! #[route_read(r"boot/(?P<mac>[0-9a-f-]{17})\.ipxe")]
//! fn script(mac: String) -> String {
//!     format!("#!ipxe\nkernel http://10.0.0.1:8080/vmlinuz mac={mac}\nboot\n")
//! }
//!
//! // The kernel, streamed over HTTP only.
//! #[route_read("vmlinuz", transports = "http")]
//! async fn kernel() -> Result<ReadBody, TftpError> {
//!     Ok(ReadBody::file("/srv/boot/vmlinuz").await?)
//! }
//!
//! let app = App::new().http("0.0.0.0:8080".parse().unwrap());
//! tokio::runtime::Runtime::new()?.block_on(app.serve())
//! # }
//! # #[cfg(not(feature = "http"))]
//! # fn main() {}
//! ```
//!
//! Responses carry `Content-Length` whenever the size is known (a buffer,
//! a file, a measured stream), so firmware that asks with `HEAD` first
//! learns it; files and sized streams serve a byte `Range` (206, or 416
//! outside the body); streams of unknown size go out chunked. A TFTP error
//! becomes a status (1 → 404, 2 → 403, 3 → 507, 6 → 409, others → 500)
//! with its message as the body. A `PUT` streams into the handler's
//! [`Upload`] with the same limits as over TFTP (413 over them) and the
//! same memory budget for `data` handlers. Connections are kept alive and
//! bounded: [`HttpConfig`] caps their number, the request head's size and
//! time, and how long a request may go without a byte moving. Every
//! request ends in one log line and one [`TransferEvent`] with
//! `transport: Http` and its `status`.
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
#[cfg(feature = "http")]
mod http;
pub mod metrics;
pub mod proto;
pub mod route;
mod server;
pub mod testing;

#[doc(hidden)]
pub mod __private;

pub use app::App;
pub use bytes::Bytes;
pub use config::{Config, HttpConfig, Ports, TftpOption, UnknownOptionError};
pub use emmer_macros::{route_read, route_write};
pub use error::{Error, ErrorCode, Result, TftpError};
pub use event::{TransferEvent, TransferOutcome};
pub use handler::{
    FromRequest, IntoReadResponse, IntoWriteResponse, Peer, ReadBody, Request, Sharing, State,
    Traceparent, Transport, Upload,
};
pub use proto::{Mode, Rollover};
pub use route::{RouteLimits, RoutePattern};
pub use server::{Server, ShutdownHandle};

/// Serves the routes declared with [`route_read`] and [`route_write`] until the
/// process is told to stop.
///
/// Listens on 127.0.0.1:3942 unless `EMMER_HOST` / `EMMER_PORT` (or the other
/// `EMMER_*` variables, see [`Config::from_env`]) say otherwise; serves the
/// same routes over HTTP too when `EMMER_HTTP=host:port` is set (feature
/// `http`). Starts a multi-threaded tokio runtime; from async code use
/// [`App::serve`].
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
