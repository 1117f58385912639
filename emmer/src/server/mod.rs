//! The tokio driver, one concern per file:
//!
//! - `listener`: receive, decode once, the request policy (`session`) and
//!   the transfer limit, hand each new request to a transfer task;
//! - `transfer`: one transfer from request to log line, and the signals it
//!   answers; `read` and `write`: the loops around the protocol machines,
//!   with the body `source` a read feeds from and the upload sink a write
//!   feeds;
//! - `timer`: a transfer's one timer; `send`: sockets, a transfer's link to
//!   its client, GSO batches; `shutdown`: stopping with a grace period.

mod demux;
mod gate;
mod listener;
mod read;
mod send;
mod session;
pub(crate) mod shutdown;
pub(crate) mod sim;
pub(crate) mod socket;
pub(crate) mod source;
pub(crate) mod timer;
pub(crate) mod transfer;
mod write;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

pub use shutdown::ShutdownHandle;

use crate::Config;
use crate::handler::StateMap;
use crate::route::RouteTable;
use crate::{Error, Result};
use shutdown::Phase;

/// Everything a transfer task needs, shared by all of them.
pub(crate) struct Shared {
    pub(crate) table: RouteTable,
    pub(crate) config: Config,
    pub(crate) state: Arc<StateMap>,
    /// ERROR replies, rate-limited per source address.
    pub(crate) errors: Arc<send::ErrorLimit>,
    /// Memory for uploads held whole (`data` handlers), across transfers.
    pub(crate) buffered: Arc<tokio::sync::Semaphore>,
    /// Where the transfers' sockets come from.
    pub(crate) net: socket::Net,
    /// Single-port mode: the transfers the listeners hand datagrams to.
    pub(crate) demux: Arc<demux::Demux>,
    /// Where each transfer's event goes (`App::on_transfer`).
    pub(crate) events: crate::event::Events,
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
    /// One listening socket per address, and its address.
    sockets: Vec<(Arc<socket::Socket>, SocketAddr)>,
    /// The HTTP listener, and its address (feature `http`).
    #[cfg(feature = "http")]
    http: Option<(tokio::net::TcpListener, SocketAddr)>,
    shared: Arc<Shared>,
    shutdown: Arc<watch::Sender<Phase>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local", &self.local_addrs())
            .finish_non_exhaustive()
    }
}

/// The receive buffer asked for on the listening socket, so that a boot
/// storm's requests wait in the queue instead of being dropped. The kernel
/// caps it (`net.core.rmem_max`).
const LISTEN_RECV_BUFFER: usize = 4 << 20;

impl Server {
    pub(crate) async fn bind(
        table: RouteTable,
        config: Config,
        state: Arc<StateMap>,
        net: socket::Net,
        observers: crate::event::Observers,
    ) -> Result<Self> {
        let mut sockets = Vec::with_capacity(config.hosts.len());
        let mut port = config.port;
        for &host in &config.hosts {
            let addr = SocketAddr::new(host, port);
            let socket = net
                .bind(addr, LISTEN_RECV_BUFFER)
                .map_err(|source| Error::Bind { addr, source })?;
            let local = socket.local_addr()?;
            // Port 0: the first address picks the port for all of them.
            port = local.port();
            sockets.push((Arc::new(socket), local));
        }
        #[cfg(feature = "http")]
        let http = match config.http.addr {
            Some(addr) => Some(crate::http::bind(addr).await?),
            None => None,
        };
        let (tx, _rx) = watch::channel(Phase::Running);
        Ok(Self {
            sockets,
            #[cfg(feature = "http")]
            http,
            shared: Arc::new(Shared {
                buffered: crate::handler::upload::budget(config.max_buffered_uploads),
                table,
                config,
                state,
                errors: Arc::new(send::ErrorLimit::new()),
                net,
                demux: Arc::default(),
                events: crate::event::Events::start(observers),
            }),
            shutdown: Arc::new(tx),
        })
    }

    /// The address the server listens on (with the real port when bound to
    /// port 0); the first, when it listens on several.
    pub fn local_addr(&self) -> SocketAddr {
        self.sockets[0].1
    }

    /// Every address the server listens on.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.sockets.iter().map(|(_, a)| *a).collect()
    }

    /// The address HTTP is served on (with the real port when bound to
    /// port 0), when it is ([`App::http`](crate::App::http)).
    #[cfg(feature = "http")]
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|(_, a)| *a)
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
            sockets,
            #[cfg(feature = "http")]
            http,
            shared,
            shutdown,
        } = self;
        // At least 1: `App::bind` validated the configuration.
        let max = shared.config.max_transfers;
        let permits = Arc::new(Semaphore::new(max));
        let gate = Arc::new(gate::Gate::new(
            permits.clone(),
            shared.config.max_transfers_per_host,
        ));
        let common = Arc::new(listener::Common {
            sessions: Arc::default(),
            gate,
        });
        let mut listeners = Vec::with_capacity(sockets.len());
        for (socket, local) in sockets {
            let (ports, routes) = (&shared.config.ports, shared.table.routes().len());
            tracing::info!(addr = %local, %ports, routes, "emmer listening");
            let (shared, common, shutdown) = (shared.clone(), common.clone(), shutdown.clone());
            listeners.push(tokio::spawn(listener::listen(
                socket, shared, common, shutdown,
            )));
        }
        // HTTP connections, counted like transfers for the grace period.
        let connections = Arc::new(Semaphore::new(shared.config.http.max_connections));
        #[cfg(feature = "http")]
        if let Some((listener, local)) = http {
            let prefix = &shared.config.http.prefix;
            tracing::info!(addr = %local, %prefix, "emmer http listening");
            listeners.push(tokio::spawn(crate::http::serve(
                listener,
                shared.clone(),
                connections.clone(),
                shutdown.clone(),
            )));
        }
        for l in listeners {
            let _ = l.await;
        }
        let grace = shared.config.shutdown_grace;
        tracing::info!(grace = ?grace, "shutting down; waiting for running transfers");
        let all = u32::try_from(max).unwrap_or(u32::MAX);
        let conns = u32::try_from(shared.config.http.max_connections).unwrap_or(u32::MAX);
        let drained = || async {
            let _transfers = permits.acquire_many(all).await;
            let _connections = connections.acquire_many(conns).await;
        };
        if tokio::time::timeout(grace, drained()).await.is_err() {
            tracing::warn!("ending the transfers still running after the grace period");
            shutdown.send_replace(Phase::Abort);
            let _ = tokio::time::timeout(Duration::from_secs(1), drained()).await;
        }
        Ok(())
    }
}
