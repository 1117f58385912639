//! The HTTP listener: accept within the connection limit, serve each
//! connection on a task of its own with hyper's HTTP/1.1 server, and stop
//! with the rest of the server.
//!
//! Bounds, so that no client holds memory or a connection forever: at most
//! [`HttpConfig::max_connections`](crate::HttpConfig::max_connections)
//! connections (the next ones wait in the kernel's accept queue), a request
//! head of at most `max_header_bytes` (431 beyond) that must arrive within
//! `header_timeout` (which also closes idle kept-alive connections), a
//! per-connection buffer of [`MAX_BUF`], and no more than `stall_timeout`
//! without a byte moving ([`Stall`]).
//!
//! On shutdown the listener stops accepting and each connection finishes
//! the request it is serving, then closes (idle ones at once); when the
//! grace period is over, the rest are dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::stall::{Flags, Stall};
use super::{Conn, handle};
use crate::server::Shared;
use crate::server::shutdown::{Phase, aborted, stopping};
use crate::{Error, Result};

/// The most a connection buffers of what it reads or has yet to write: a
/// request head, or the body hyper queues ahead of the socket.
const MAX_BUF: usize = 64 * 1024;

/// The accept queue asked for (the kernel caps it at `net.core.somaxconn`):
/// a boot storm's connections wait there instead of being dropped and
/// retried a second later, as they are beyond the usual 128.
const BACKLOG: i32 = 4096;

/// Binds the HTTP listener: `::` takes IPv4 too, as on the TFTP side.
///
/// # Errors
///
/// [`Error::BindHttp`] when the address cannot be bound.
pub(crate) async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let open = || -> std::io::Result<TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        // A restarted server binds at once, whatever is left in TIME_WAIT.
        socket.set_reuse_address(true)?;
        if addr.is_ipv6() {
            socket.set_only_v6(false)?;
        }
        socket.bind(&addr.into())?;
        socket.listen(BACKLOG)?;
        socket.set_nonblocking(true)?;
        TcpListener::from_std(socket.into())
    };
    let listener = open().map_err(|source| Error::BindHttp { addr, source })?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Accepts connections until the server stops.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    connections: Arc<Semaphore>,
    shutdown: Arc<watch::Sender<Phase>>,
) {
    let http = &shared.config.http;
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(http.header_timeout)
        .max_header_size(http.max_header_bytes)
        .max_buf_size(MAX_BUF.max(http.max_header_bytes))
        .keep_alive(true);
    let mut stop = shutdown.subscribe();
    let mut errors = 0u32;
    loop {
        // At the limit, stop accepting: new connections wait in the queue.
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            () = stopping(&mut stop) => return,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => { errors = 0; c }
                Err(e) => {
                    // Out of file descriptors, a connection reset before it
                    // was accepted: log, and pause when it repeats.
                    errors += 1;
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
                    if errors > 3 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            },
            () = stopping(&mut stop) => return,
        };
        let conn = Connection {
            builder: builder.clone(),
            shared: shared.clone(),
            permit,
            stop: shutdown.subscribe(),
        };
        tokio::spawn(conn.run(stream, peer));
    }
}

/// One accepted connection.
struct Connection {
    builder: http1::Builder,
    shared: Arc<Shared>,
    /// Its place within the connection limit.
    permit: OwnedSemaphorePermit,
    stop: watch::Receiver<Phase>,
}

impl Connection {
    async fn run(self, stream: TcpStream, peer: SocketAddr) {
        let Connection {
            builder,
            shared,
            permit,
            stop,
        } = self;
        // Small responses (a config, a script) go out at once.
        let _ = stream.set_nodelay(true);
        let local = match stream.local_addr() {
            Ok(a) => canonical(a),
            Err(_) => return,
        };
        let flags = Arc::new(Flags::default());
        let limit = shared.config.http.stall_timeout;
        let io = TokioIo::new(Stall::new(stream, limit, flags.clone()));
        let cx = Arc::new(Conn {
            shared,
            // An IPv4 client of a dual-stack listener is IPv4 to handlers.
            peer: canonical(peer),
            local,
            flags,
        });
        let service = service_fn(move |req| {
            let cx = cx.clone();
            async move { Ok::<_, std::convert::Infallible>(handle(cx, req).await) }
        });
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        let mut stopping_rx = stop.clone();
        let result = tokio::select! {
            r = conn.as_mut() => r,
            () = stopping(&mut stopping_rx) => {
                // Finish the request under way, then close.
                conn.as_mut().graceful_shutdown();
                tokio::select! {
                    r = conn.as_mut() => r,
                    () = aborted(stop) => Ok(()),
                }
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
        }
        drop(permit);
    }
}

fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}
