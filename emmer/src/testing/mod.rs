//! Test helpers: requests through an app's real route table without a
//! socket, a server on an ephemeral port, and an async TFTP client.
//!
//! Three levels, from the fastest:
//!
//! **A handler is a function**: call it.
//!
//! ```
//! use std::net::IpAddr;
//! use emmer::route_read;
//!
//! #[route_read(r"greeting/(?P<name>\w+)")]
//! fn greeting(name: String, client_host: IpAddr) -> String {
//!     format!("hello {name} at {client_host}")
//! }
//!
//! assert_eq!(greeting("pc1".into(), "10.0.0.1".parse().unwrap()), "hello pc1 at 10.0.0.1");
//! ```
//!
//! **The route table**: [`App::read`] and [`App::write`] run a request through
//! the routes, captures and extractors, with no socket.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use emmer::{App, ErrorCode, Request};
//!
//! let app = App::empty()
//!     .route_read(r"cfg/(?P<host>[a-z0-9-]+)\.cfg", |req: &Request| {
//!         format!("hostname {}\n", req.capture("host").unwrap())
//!     })
//!     .route_write(r"backup/.+", |_: &Request, data: Vec<u8>| !data.is_empty());
//! assert_eq!(app.read("cfg/sw1.cfg").await.unwrap(), b"hostname sw1\n");
//! assert_eq!(app.read("cfg/SW1.cfg").await.unwrap_err().code(), ErrorCode::FileNotFound);
//! assert!(app.write("backup/a", "data").await.is_ok());
//! assert_eq!(app.write("backup/a", "").await.unwrap_err().code(), ErrorCode::AccessViolation);
//! # }
//! ```
//!
//! **Picking macro routes**: [`App::new`] takes every `#[route_read]` and
//! `#[route_write]` route of the test binary, so two test files that both
//! declare `".*"` collide there. A test builds its app from the routes it
//! means instead: [`App::macro_route`] adds one function's route by name,
//! [`App::macro_routes_in`] those of a module (`module_path!()` for the
//! test's own).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use emmer::{App, route_read};
//!
//! #[route_read(".*")]
//! fn everything() -> &'static str { "from this file" }
//!
//! mod other_file {
//!     #[emmer::route_read(".*")]
//!     pub fn everything() -> &'static str { "from another file" }
//! }
//!
//! let app = App::empty().macro_routes_in(&format!("{}::other_file", module_path!()));
//! assert_eq!(app.read("x").await.unwrap(), b"from another file");
//! // A name shared by two functions needs more of the path.
//! assert!(App::empty().macro_route("everything").table().is_err());
//! let app = App::empty().macro_route("other_file::everything");
//! assert_eq!(app.read("x").await.unwrap(), b"from another file");
//! # }
//! ```
//!
//! **End to end**: [`TestServer`] serves the app on 127.0.0.1 with a free
//! port, on a runtime of its own (a test that blocks its thread does not
//! freeze the server), and [`Client`] talks TFTP to it, with options. Its
//! errors have the shape of the table's: [`ClientError::code`] is the
//! [`ErrorCode`](crate::ErrorCode) and [`ClientError::message`] the text a
//! [`TftpError`](crate::TftpError) from [`App::read`] carries.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use emmer::testing::TestServer;
//! use emmer::{App, ErrorCode, Request};
//!
//! let server = TestServer::start(App::empty().route_read("motd", |_: &Request| "hi")).await;
//! let (body, info) = server.client().blksize(1428).tsize(true).get_with_info("motd").await.unwrap();
//! assert_eq!(body, b"hi");
//! assert_eq!(info.option("tsize"), Some("2"));
//! let e = server.client().get("other").await.unwrap_err();
//! assert_eq!(e.code(), Some(ErrorCode::FileNotFound));
//! assert_eq!(e.message(), Some("file not found"));
//! # }
//! ```

mod client;
mod table;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

pub use client::{Client, ClientError, TransferInfo};
pub use table::TestRequest;

use crate::App;
use crate::server::ShutdownHandle;
pub use crate::server::sim::{SimDatagram, SimNet, SimStats};
use crate::server::socket::Net;

/// A server on 127.0.0.1 with a free port, stopped when dropped.
///
/// The server runs on a runtime of its own, on its own threads, not on the
/// test's: a test may block (a `std::thread::sleep`, a blocking channel, a
/// plain `#[tokio::test]` with its single thread busy) without freezing the
/// server it talks to, and its handlers' `tokio` calls run there.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    /// Where HTTP is served, when the app asked for it.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    http: Option<SocketAddr>,
    stop: ShutdownHandle,
    net: Option<SimNet>,
}

/// What the server's thread reports once bound: the TFTP address, the HTTP
/// address (if any) and the handle that stops it.
type Started = crate::Result<(SocketAddr, Option<SocketAddr>, ShutdownHandle)>;

#[cfg(feature = "http")]
fn http_addr(server: &crate::Server) -> Option<SocketAddr> {
    server.http_addr()
}

#[cfg(not(feature = "http"))]
fn http_addr(_: &crate::Server) -> Option<SocketAddr> {
    None
}

impl TestServer {
    /// Binds `app` to 127.0.0.1:0 and serves it on a runtime of its own (a
    /// thread named `emmer-test-server` with two workers), until dropped.
    ///
    /// # Panics
    ///
    /// When the app's routes are invalid or the socket cannot be bound: a
    /// test cannot go on then.
    ///
    /// # Examples
    ///
    /// A test that blocks its own (single) thread still gets its answer:
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use emmer::testing::TestServer;
    /// use emmer::{App, Request};
    ///
    /// let server = TestServer::start(App::empty().route_read("x", |_: &Request| "x")).await;
    /// let addr = server.addr();
    /// // A plain blocking client, on the test's only thread.
    /// let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// sock.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    /// sock.send_to(b"\0\x01x\0octet\0", addr).unwrap();
    /// let mut buf = [0u8; 16];
    /// let (n, _) = sock.recv_from(&mut buf).unwrap();
    /// assert_eq!(&buf[..n], b"\0\x03\0\x01x");
    /// # }
    /// ```
    pub async fn start(app: App) -> Self {
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("emmer-test-server".into())
            .spawn(move || Self::run(app, tx))
            .unwrap_or_else(|e| panic!("test server failed to start a thread: {e}"));
        match rx.await {
            Ok(Ok((addr, http, stop))) => Self {
                addr,
                http,
                stop,
                net: None,
            },
            Ok(Err(e)) => panic!("test server failed to start: {e}"),
            Err(_) => panic!("test server failed to start: its thread ended"),
        }
    }

    /// Binds `app` to 127.0.0.1:0 of a simulated network and serves it on
    /// the current runtime (it must share the test's clock, which may be
    /// paused); [`client`](Self::client) talks over the same network. See
    /// [`SimNet`].
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub async fn start_on(app: App, net: &SimNet) -> Self {
        let server = app
            .on_net(Net::Sim(net.clone()))
            .bind_to(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
            .bind()
            .await
            .unwrap_or_else(|e| panic!("test server failed to start: {e}"));
        let addr = server.local_addr();
        let http = http_addr(&server);
        let stop = server.shutdown_handle();
        tokio::spawn(async move {
            if let Err(e) = server.serve().await {
                tracing::error!(error = %e, "test server stopped");
            }
        });
        Self {
            addr,
            http,
            stop,
            net: Some(net.clone()),
        }
    }

    /// The server's thread: its own runtime, bound, serving until stopped.
    fn run(app: App, started: tokio::sync::oneshot::Sender<Started>) {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("emmer-test-server")
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                let _ = started.send(Err(e.into()));
                return;
            }
        };
        runtime.block_on(async move {
            let bound = app
                .bind_to(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
                .bind()
                .await;
            let server = match bound {
                Ok(s) => s,
                Err(e) => {
                    let _ = started.send(Err(e));
                    return;
                }
            };
            let bound = (
                server.local_addr(),
                http_addr(&server),
                server.shutdown_handle(),
            );
            if started.send(Ok(bound)).is_err() {
                return;
            }
            if let Err(e) = server.serve().await {
                tracing::error!(error = %e, "test server stopped");
            }
        });
        // Handlers still running after the grace period are not waited for.
        runtime.shutdown_background();
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the server serves HTTP, when the app asked for it with
    /// [`App::http`] (give it `127.0.0.1:0` for a free port).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use emmer::testing::TestServer;
    /// use emmer::{App, Request};
    ///
    /// let app = App::empty().route_read("motd", |_: &Request| "hi").http("127.0.0.1:0".parse().unwrap());
    /// let server = TestServer::start(app).await;
    /// let http = server.http_addr().expect("the app serves HTTP");
    /// assert!(http.ip().is_loopback() && http.port() != 0);
    /// # }
    /// ```
    #[cfg(feature = "http")]
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http
    }

    /// A client for this server with default settings (on its simulated
    /// network, if it has one).
    pub fn client(&self) -> Client {
        let client = Client::new(self.addr);
        match &self.net {
            Some(net) => client.on(net),
            None => client,
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.shutdown();
    }
}
