//! The tokio driver: a listening socket, one task and one socket per
//! transfer, timers and shutdown.

mod batch;
mod body;
mod transfer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, watch};

use crate::app::Config;
use crate::handler::StateMap;
use crate::proto::packet::{Packet, encode_error};
use crate::route::RouteTable;
use crate::{Error, ErrorCode, Result};

/// Shutdown states on the watch channel.
pub(crate) const RUNNING: u8 = 0;
pub(crate) const STOPPING: u8 = 1;
pub(crate) const ABORT: u8 = 2;

/// Everything a transfer task needs, shared by all of them.
pub(crate) struct Shared {
    pub(crate) table: RouteTable,
    pub(crate) config: Config,
    pub(crate) state: Arc<StateMap>,
    /// Clients (address and port) with a transfer under way. A client that
    /// hears nothing for a while sends its request again from the same port;
    /// while the first transfer runs (its handler may be slow), the copy is
    /// dropped instead of starting the handler a second time.
    active: std::sync::Mutex<std::collections::HashSet<SocketAddr>>,
}

/// Marks a client's transfer as under way until dropped.
pub(crate) struct ActiveGuard {
    shared: Arc<Shared>,
    peer: SocketAddr,
}

impl ActiveGuard {
    /// `None` when the client already has a transfer under way.
    fn new(shared: &Arc<Shared>, peer: SocketAddr) -> Option<Self> {
        let mut active = shared.active.lock().unwrap_or_else(|e| e.into_inner());
        active.insert(peer).then(|| Self {
            shared: shared.clone(),
            peer,
        })
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let mut active = self.shared.active.lock().unwrap_or_else(|e| e.into_inner());
        active.remove(&self.peer);
    }
}

/// A bound server, ready to [`serve`](Self::serve).
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> emmer::Result<()> {
/// let server = emmer::App::new().bind().await?;
/// let stop = server.shutdown_handle();
/// tokio::spawn(async move {
///     tokio::time::sleep(std::time::Duration::from_secs(60)).await;
///     stop.shutdown();
/// });
/// server.serve().await
/// # }
/// ```
pub struct Server {
    socket: UdpSocket,
    local: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Arc<watch::Sender<u8>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

/// Stops a [`Server`]: no new transfers are accepted, running ones get
/// [`Config::shutdown_grace`] to finish.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(Arc<watch::Sender<u8>>);

impl ShutdownHandle {
    /// Asks the server to stop.
    pub fn shutdown(&self) {
        self.0.send_if_modified(|v| {
            let was = *v;
            *v = (*v).max(STOPPING);
            was != *v
        });
    }
}

async fn stopping(stop: &mut watch::Receiver<u8>) {
    let _ = stop.wait_for(|v| *v >= STOPPING).await.map(|_| ());
}

/// The receive buffer asked for on the listening socket, so that a boot
/// storm's requests wait in the queue instead of being dropped. The kernel
/// caps it (`net.core.rmem_max`).
const LISTEN_RECV_BUFFER: usize = 4 << 20;

/// A UDP socket bound to `addr`, registered with tokio, with a receive
/// buffer of `recv_buffer` bytes if the kernel grants it (0 keeps its
/// default).
pub(crate) fn udp_socket(addr: SocketAddr, recv_buffer: usize) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if recv_buffer > 0 {
        // Best effort: a smaller buffer only means more retransmissions.
        let _ = socket.set_recv_buffer_size(recv_buffer);
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

impl Server {
    pub(crate) async fn bind(
        table: RouteTable,
        config: Config,
        state: Arc<StateMap>,
    ) -> Result<Self> {
        let addr = config.bind;
        let socket =
            udp_socket(addr, LISTEN_RECV_BUFFER).map_err(|source| Error::Bind { addr, source })?;
        let local = socket.local_addr()?;
        let (tx, _rx) = watch::channel(RUNNING);
        Ok(Self {
            socket,
            local,
            shared: Arc::new(Shared {
                table,
                config,
                state,
                active: Default::default(),
            }),
            shutdown: Arc::new(tx),
        })
    }

    /// The address the server listens on (with the real port when bound to
    /// port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// A handle that stops the server.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutdown.clone())
    }

    /// Serves until [`ShutdownHandle::shutdown`] is called, then waits up to
    /// the grace period for running transfers.
    ///
    /// # Errors
    ///
    /// Only for a failure of the listening socket itself.
    pub async fn serve(self) -> Result<()> {
        let Server {
            socket,
            local,
            shared,
            shutdown,
        } = self;
        let max = shared.config.max_transfers.max(1);
        let permits = Arc::new(Semaphore::new(max));
        let mut stop = shutdown.subscribe();
        tracing::info!(addr = %local, routes = shared.table.routes().len(), "emmer listening");
        // RFC 2347 limits a request to 512 bytes; some clients send more options.
        let mut buf = vec![0u8; 4096];
        let mut out = Vec::with_capacity(256);
        let mut errors = 0u32;
        loop {
            let (n, peer) = tokio::select! {
                r = socket.recv_from(&mut buf) => match r {
                    Ok(v) => { errors = 0; v }
                    Err(e) => {
                        // Transient (ICMP errors, buffer pressure): log and go on,
                        // pausing a little when they repeat.
                        errors += 1;
                        tracing::warn!(error = %e, "receive on the listening socket failed");
                        if errors > 3 {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        continue;
                    }
                },
                _ = stopping(&mut stop) => break,
            };
            let datagram = &buf[..n];
            let packet = match Packet::decode(datagram) {
                Ok(p) => p,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "malformed request");
                    encode_error(&mut out, ErrorCode::IllegalOperation, &e.to_string());
                    let _ = socket.send_to(&out, peer).await;
                    continue;
                }
            };
            let (is_write, req) = match packet {
                Packet::Rrq(r) => (false, r),
                Packet::Wrq(r) => (true, r),
                other => {
                    tracing::debug!(%peer, packet = ?other, "ignored a non-request packet on the listening port");
                    continue;
                }
            };
            let Some(active) = ActiveGuard::new(&shared, peer) else {
                tracing::debug!(%peer, file = req.filename, "dropped a repeated request: its transfer is under way");
                continue;
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                tracing::warn!(%peer, file = req.filename, max, "refused a request: too many transfers at once");
                encode_error(
                    &mut out,
                    ErrorCode::Undefined,
                    "server busy, try again later",
                );
                let _ = socket.send_to(&out, peer).await;
                continue;
            };
            let request = transfer::OwnedRequest::new(&req, is_write, peer, local);
            let shared = shared.clone();
            let stop = shutdown.subscribe();
            tokio::spawn(async move {
                transfer::run(shared, request, stop, active).await;
                drop(permit);
            });
        }
        let grace = shared.config.shutdown_grace;
        tracing::info!(addr = %local, grace = ?grace, "shutting down; waiting for running transfers");
        let all = u32::try_from(max).unwrap_or(u32::MAX);
        if tokio::time::timeout(grace, permits.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!("ending the transfers still running after the grace period");
            shutdown.send_replace(ABORT);
            let _ = tokio::time::timeout(Duration::from_secs(1), permits.acquire_many(all)).await;
        }
        Ok(())
    }
}
