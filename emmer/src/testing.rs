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
//! [`ErrorCode`] and [`ClientError::message`] the text a
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

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::time::timeout;

use crate::proto::block::{resolve, to_wire};
use crate::proto::netascii::{NetasciiDecoder, NetasciiEncoder};
use crate::proto::packet::{DATA_HEADER, encode_ack, encode_data_header, encode_error};
use crate::proto::{Mode, Packet, Rollover};
use crate::server::ShutdownHandle;
pub use crate::server::sim::{SimDatagram, SimNet, SimStats};
use crate::server::socket::{Net, Socket};
use crate::{App, ErrorCode};

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

/// Why a client transfer failed.
#[derive(Debug)]
pub enum ClientError {
    /// The server sent an ERROR.
    Server {
        /// The code.
        code: u16,
        /// The message.
        message: String,
    },
    /// The server stopped answering.
    Timeout,
    /// A socket error.
    Io(std::io::Error),
    /// The server broke the protocol.
    Protocol(String),
}

impl ClientError {
    /// The server's ERROR code, as [`TftpError::code`](crate::TftpError::code)
    /// gives it for a request run through [`App::read`]: `None` when the
    /// server sent no ERROR (or a code outside 0..=8, see
    /// [`raw_code`](Self::raw_code)).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use emmer::testing::TestServer;
    /// use emmer::{App, ErrorCode};
    ///
    /// let app = App::empty();
    /// let table = app.read("missing").await.unwrap_err();
    /// let server = TestServer::start(app).await;
    /// let wire = server.client().get("missing").await.unwrap_err();
    /// assert_eq!(wire.code(), Some(table.code()));
    /// assert_eq!(wire.code(), Some(ErrorCode::FileNotFound));
    /// assert_eq!(wire.message(), Some(table.message()));
    /// # }
    /// ```
    pub fn code(&self) -> Option<ErrorCode> {
        self.raw_code().and_then(ErrorCode::from_u16)
    }

    /// The server's ERROR code as sent, any number.
    pub fn raw_code(&self) -> Option<u16> {
        match self {
            ClientError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The server's ERROR message.
    pub fn message(&self) -> Option<&str> {
        match self {
            ClientError::Server { message, .. } => Some(message),
            _ => None,
        }
    }

    /// The server's ERROR as a [`TftpError`](crate::TftpError), the shape
    /// [`App::read`] and [`App::write`] give without a socket.
    pub fn to_tftp_error(&self) -> Option<crate::TftpError> {
        match self {
            ClientError::Server { message, .. } => {
                Some(crate::TftpError::new(self.code()?, message.clone()))
            }
            _ => None,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Server { code, message } => {
                write!(f, "server sent ERROR {code}: {message}")
            }
            ClientError::Timeout => f.write_str("server stopped answering"),
            ClientError::Io(e) => write!(f, "socket error: {e}"),
            ClientError::Protocol(m) => write!(f, "protocol error: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// An async TFTP client (RFC 1350 with blksize, windowsize, tsize and
/// timeout options), for tests and benchmarks.
#[derive(Debug, Clone)]
pub struct Client {
    server: SocketAddr,
    blksize: Option<u16>,
    windowsize: Option<u16>,
    tsize: bool,
    timeout: Option<u8>,
    mode: Mode,
    wait: Duration,
    retries: u32,
    extra: Vec<(String, String)>,
    net: Net,
}

/// What a transfer negotiated, as [`Client::get_with_info`] reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferInfo {
    /// The options the server acknowledged (empty when it sent no OACK),
    /// as sent; [`option`](Self::option) looks one up.
    pub oack: Vec<(String, String)>,
    /// Packets the client sent again after a timeout.
    pub retransmits: u32,
}

impl TransferInfo {
    /// The value the server's OACK gave an option, by name
    /// (case-insensitive, as RFC 2347 says), as
    /// [`Request::option`](crate::Request::option) does for a request.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.oack
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Client {
    /// A client for `server`: octet mode, no options, waits 1 s for each
    /// answer, 5 retries.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use emmer::testing::Client;
    /// let client = Client::new("127.0.0.1:3942".parse().unwrap())
    ///     .blksize(1428)
    ///     .timeout(3) // RFC 2349: asks the server to retransmit after 3 s
    ///     .wait(Duration::from_millis(500)); // the client's own patience
    /// # let _ = client;
    /// ```
    pub fn new(server: SocketAddr) -> Self {
        Self {
            server,
            blksize: None,
            windowsize: None,
            tsize: false,
            timeout: None,
            mode: Mode::Octet,
            wait: Duration::from_secs(1),
            retries: 5,
            extra: Vec::new(),
            net: Net::Os,
        }
    }

    /// Talks over a simulated network (see [`SimNet`]) instead of the
    /// operating system's. [`TestServer::client`] sets it for a server
    /// started with [`TestServer::start_on`].
    pub fn on(mut self, net: &SimNet) -> Self {
        self.net = Net::Sim(net.clone());
        self
    }

    /// Asks for a block size (RFC 2348).
    pub fn blksize(mut self, n: u16) -> Self {
        self.blksize = Some(n);
        self
    }

    /// Asks for a window size (RFC 7440).
    pub fn windowsize(mut self, n: u16) -> Self {
        self.windowsize = Some(n);
        self
    }

    /// Sends the tsize option (0 on a read, the length on a write).
    pub fn tsize(mut self, on: bool) -> Self {
        self.tsize = on;
        self
    }

    /// Sends the `timeout` option (RFC 2349): asks the server to retransmit
    /// after this many seconds. How long this client waits is
    /// [`wait`](Self::wait).
    pub fn timeout(mut self, secs: u8) -> Self {
        self.timeout = Some(secs);
        self
    }

    /// Adds any option as written.
    pub fn option(mut self, name: &str, value: &str) -> Self {
        self.extra.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The transfer mode (default octet).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// How long this client waits for each answer of the server before it
    /// retransmits (default 1 s). Not an option: the server never sees it
    /// (that is [`timeout`](Self::timeout)).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// How many times this client sends a packet again before it gives up
    /// (default 5).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Downloads a file.
    ///
    /// # Errors
    ///
    /// The server's ERROR, a timeout, or a protocol violation.
    pub async fn get(&self, filename: &str) -> Result<Vec<u8>, ClientError> {
        self.get_with_info(filename).await.map(|(d, _)| d)
    }

    fn request(&self, opcode: u16, filename: &str, size: Option<u64>) -> Vec<u8> {
        let mut p = Vec::with_capacity(64 + filename.len());
        p.extend_from_slice(&opcode.to_be_bytes());
        for s in [filename, self.mode.as_str()] {
            p.extend_from_slice(s.as_bytes());
            p.push(0);
        }
        let mut opt = |k: &str, v: &str| {
            p.extend_from_slice(k.as_bytes());
            p.push(0);
            p.extend_from_slice(v.as_bytes());
            p.push(0);
        };
        if let Some(b) = self.blksize {
            opt("blksize", &b.to_string());
        }
        if let Some(w) = self.windowsize {
            opt("windowsize", &w.to_string());
        }
        if let Some(t) = self.timeout {
            opt("timeout", &t.to_string());
        }
        if self.tsize {
            opt("tsize", &size.unwrap_or(0).to_string());
        }
        for (k, v) in &self.extra {
            opt(k, v);
        }
        p
    }

    async fn socket(&self) -> Result<Socket, ClientError> {
        let any = match self.server.ip() {
            IpAddr::V4(v) if v.is_loopback() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(v) if v.is_loopback() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        Ok(self.net.bind(SocketAddr::new(any, 0), 0)?)
    }

    /// Downloads a file and reports what was negotiated.
    ///
    /// # Errors
    ///
    /// See [`get`](Self::get).
    pub async fn get_with_info(
        &self,
        filename: &str,
    ) -> Result<(Vec<u8>, TransferInfo), ClientError> {
        let sock = self.socket().await?;
        let rrq = self.request(1, filename, None);
        let mut info = TransferInfo::default();
        let mut buf = vec![0u8; DATA_HEADER + 65536];
        let mut out = Vec::with_capacity(64);
        let mut last_sent = rrq.clone();
        let mut peer: Option<SocketAddr> = None;
        let mut blksize = 512usize;
        let mut windowsize = 1u64;
        let mut received: Vec<u8> = Vec::new();
        let mut decoder = (self.mode == Mode::Netascii).then(NetasciiDecoder::new);
        let mut next: u64 = 1; // next block expected
        let mut in_window = 0u64;
        let mut tries = 0u32;
        sock.send_to(&rrq, self.server).await?;
        loop {
            let (n, from) = match timeout(self.wait, sock.recv_from(&mut buf)).await {
                Ok(r) => r?,
                Err(_) => {
                    tries += 1;
                    if tries > self.retries {
                        return Err(ClientError::Timeout);
                    }
                    info.retransmits += 1;
                    sock.send_to(&last_sent, peer.unwrap_or(self.server))
                        .await?;
                    continue;
                }
            };
            if from.ip() != self.server.ip() || peer.is_some_and(|p| p != from) {
                encode_error(&mut out, ErrorCode::UnknownTid, "unknown transfer ID");
                sock.send_to(&out, from).await?;
                continue;
            }
            let packet =
                Packet::decode(&buf[..n]).map_err(|e| ClientError::Protocol(e.to_string()))?;
            match packet {
                Packet::Error { code, message } => {
                    return Err(ClientError::Server {
                        code,
                        message: message.into_owned(),
                    });
                }
                Packet::Oack { options } if peer.is_none() => {
                    peer = Some(from);
                    (blksize, windowsize) = read_oack(&options, &mut info)?;
                    encode_ack(&mut out, 0);
                    last_sent.clone_from(&out);
                    sock.send_to(&out, from).await?;
                    tries = 0;
                }
                // The OACK again: our ACK 0 was lost (before any DATA), or
                // a late copy (after), which is ignored.
                Packet::Oack { .. } => {
                    if next == 1 {
                        encode_ack(&mut out, 0);
                        last_sent.clone_from(&out);
                        sock.send_to(&out, from).await?;
                    }
                }
                Packet::Data { block, data } => {
                    peer.get_or_insert(from);
                    if data.len() > blksize {
                        return Err(ClientError::Protocol(format!(
                            "DATA block of {} bytes, larger than blksize {blksize}",
                            data.len()
                        )));
                    }
                    if resolve(block, next, 1, Rollover::ToZero).is_some() {
                        tries = 0;
                        match &mut decoder {
                            Some(d) => d.decode(data, &mut received),
                            None => received.extend_from_slice(data),
                        }
                        let last = data.len() < blksize;
                        next += 1;
                        in_window += 1;
                        if last || in_window == windowsize {
                            in_window = 0;
                            encode_ack(&mut out, block);
                            last_sent.clone_from(&out);
                            sock.send_to(&out, from).await?;
                        }
                        if last {
                            if let Some(d) = &mut decoder {
                                d.finish(&mut received);
                            }
                            return Ok((received, info));
                        }
                    } else {
                        // A gap or a duplicate: acknowledge what we have, in order.
                        in_window = 0;
                        encode_ack(&mut out, to_wire(next - 1, Rollover::ToZero));
                        last_sent.clone_from(&out);
                        sock.send_to(&out, from).await?;
                    }
                }
                other => {
                    return Err(ClientError::Protocol(format!(
                        "unexpected packet during a read: {other:?}"
                    )));
                }
            }
        }
    }

    /// Uploads a file.
    ///
    /// # Errors
    ///
    /// The server's ERROR (for instance a rejection instead of the final
    /// ACK), a timeout, or a protocol violation.
    pub async fn put(&self, filename: &str, data: &[u8]) -> Result<(), ClientError> {
        self.put_with_info(filename, data).await.map(|_| ())
    }

    /// Uploads a file and reports what was negotiated.
    ///
    /// # Errors
    ///
    /// See [`put`](Self::put).
    pub async fn put_with_info(
        &self,
        filename: &str,
        data: &[u8],
    ) -> Result<TransferInfo, ClientError> {
        let encoded;
        let data = if self.mode == Mode::Netascii {
            let mut enc = NetasciiEncoder::new();
            let mut v = vec![0u8; data.len() * 2 + 2];
            let (_, mut w) = enc.encode(data, &mut v);
            w += enc.flush(&mut v[w..]);
            v.truncate(w);
            encoded = v;
            &encoded[..]
        } else {
            data
        };
        let sock = self.socket().await?;
        let wrq = self.request(2, filename, Some(data.len() as u64));
        let mut info = TransferInfo::default();
        let mut buf = vec![0u8; 2048];
        let mut out = Vec::with_capacity(DATA_HEADER + 65536);
        sock.send_to(&wrq, self.server).await?;
        // Wait for ACK 0 or the OACK.
        let mut tries = 0;
        let (peer, blksize, windowsize) = loop {
            let (n, from) = match timeout(self.wait, sock.recv_from(&mut buf)).await {
                Ok(r) => r?,
                Err(_) => {
                    tries += 1;
                    if tries > self.retries {
                        return Err(ClientError::Timeout);
                    }
                    info.retransmits += 1;
                    sock.send_to(&wrq, self.server).await?;
                    continue;
                }
            };
            if from.ip() != self.server.ip() {
                continue;
            }
            match Packet::decode(&buf[..n]).map_err(|e| ClientError::Protocol(e.to_string()))? {
                Packet::Error { code, message } => {
                    return Err(ClientError::Server {
                        code,
                        message: message.into_owned(),
                    });
                }
                Packet::Ack { block: 0 } => break (from, 512usize, 1u64),
                Packet::Oack { options } => {
                    let (b, w) = read_oack(&options, &mut info)?;
                    break (from, b, w);
                }
                other => {
                    return Err(ClientError::Protocol(format!(
                        "unexpected answer to a write request: {other:?}"
                    )));
                }
            }
        };
        let blocks = data.len() as u64 / blksize as u64 + 1; // the last is short, maybe empty
        let mut acked = 0u64; // blocks acknowledged
        let mut tries = 0u32;
        let mut resend = false;
        while acked < blocks {
            let end = (acked + windowsize).min(blocks);
            for n in acked + 1..=end {
                let start = ((n - 1) as usize) * blksize;
                let stop = (start + blksize).min(data.len());
                encode_data_header(&mut out, to_wire(n, Rollover::ToZero));
                out.extend_from_slice(&data[start..stop]);
                sock.send_to(&out, peer).await?;
            }
            if resend {
                info.retransmits += 1;
            }
            // Wait for an ACK inside the window.
            loop {
                let (n, from) = match timeout(self.wait, sock.recv_from(&mut buf)).await {
                    Ok(r) => r?,
                    Err(_) => {
                        tries += 1;
                        if tries > self.retries {
                            return Err(ClientError::Timeout);
                        }
                        resend = true;
                        break;
                    }
                };
                if from != peer {
                    encode_error(&mut out, ErrorCode::UnknownTid, "unknown transfer ID");
                    sock.send_to(&out, from).await?;
                    continue;
                }
                match Packet::decode(&buf[..n]).map_err(|e| ClientError::Protocol(e.to_string()))? {
                    Packet::Error { code, message } => {
                        return Err(ClientError::Server {
                            code,
                            message: message.into_owned(),
                        });
                    }
                    Packet::Ack { block } => {
                        if let Some(b) = resolve(block, acked + 1, end - acked, Rollover::ToZero) {
                            acked = b;
                            tries = 0;
                            resend = false;
                            break;
                        }
                        // An old ACK: ignore it (no Sorcerer's Apprentice).
                    }
                    // The server sent its OACK again: DATA 1 was lost.
                    Packet::Oack { .. } if acked == 0 => {
                        resend = true;
                        break;
                    }
                    // A late copy of the OACK.
                    Packet::Oack { .. } => {}
                    other => {
                        return Err(ClientError::Protocol(format!(
                            "unexpected packet during a write: {other:?}"
                        )));
                    }
                }
            }
        }
        Ok(info)
    }
}

/// Records an OACK's options and returns the blksize and windowsize it
/// grants (512 and 1 when it leaves them out).
fn read_oack(
    options: &[(&str, &str)],
    info: &mut TransferInfo,
) -> Result<(usize, u64), ClientError> {
    let (mut blksize, mut windowsize) = (512usize, 1u64);
    for (k, v) in options {
        info.oack.push(((*k).to_owned(), (*v).to_owned()));
        match k.to_ascii_lowercase().as_str() {
            "blksize" => blksize = parse_opt(v)?,
            "windowsize" => windowsize = parse_opt(v)?,
            _ => {}
        }
    }
    Ok((blksize, windowsize))
}

fn parse_opt<T: std::str::FromStr>(v: &str) -> Result<T, ClientError> {
    v.parse()
        .map_err(|_| ClientError::Protocol(format!("bad option value {v:?} in OACK")))
}

/// A request run through an [`App`]'s real route table and extractors, with
/// no socket: see [`App::read`] and [`App::write`].
#[derive(Debug)]
pub struct TestRequest<'a> {
    app: &'a App,
    kind: crate::route::Kind,
    builder: crate::handler::RequestBuilder,
    data: Vec<u8>,
}

impl App {
    /// Runs a read request through the route table and the handler, without
    /// a socket. The result is the body as the handler produced it (before
    /// netascii conversion), or the TFTP error the client would get.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use emmer::{App, Request};
    /// let app = App::empty().route_read(r"hosts/(?P<name>\w+)", |req: &Request| {
    ///     format!("{} from {}", req.capture("name").unwrap(), req.client_host())
    /// });
    /// let body = app.read("hosts/sw1").from("10.0.0.7:1234".parse().unwrap()).await.unwrap();
    /// assert_eq!(body, b"sw1 from 10.0.0.7");
    /// assert_eq!(app.read("other").await.unwrap_err().code(), emmer::ErrorCode::FileNotFound);
    /// # }
    /// ```
    pub fn read(&self, filename: &str) -> TestRequest<'_> {
        TestRequest {
            app: self,
            kind: crate::route::Kind::Read,
            builder: crate::Request::builder(filename).state_map(self.state_map()),
            data: Vec::new(),
        }
    }

    /// Runs a write request with the given upload through the route table
    /// and the handler, without a socket: `Ok` (with an empty body) is the
    /// final ACK, an error what the client would get instead. Size limits
    /// are the engine's and are not applied here.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use emmer::{App, Request};
    /// let app = App::empty().route_write("cfg/.+", |_: &Request, data: Vec<u8>| !data.is_empty());
    /// assert!(app.write("cfg/a", "x").await.is_ok());
    /// assert_eq!(app.write("cfg/a", "").await.unwrap_err().code(), emmer::ErrorCode::AccessViolation);
    /// # }
    /// ```
    pub fn write(&self, filename: &str, data: impl Into<Vec<u8>>) -> TestRequest<'_> {
        TestRequest {
            app: self,
            kind: crate::route::Kind::Write,
            builder: crate::Request::builder(filename).state_map(self.state_map()),
            data: data.into(),
        }
    }
}

impl<'a> TestRequest<'a> {
    /// The client's address (default 127.0.0.1:50000).
    pub fn from(mut self, peer: SocketAddr) -> Self {
        self.builder = self.builder.peer(peer);
        self
    }

    /// The transfer mode (default octet).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.builder = self.builder.mode(mode);
        self
    }

    /// The transport that carries the request (default TFTP): routes kept
    /// to another transport do not see it.
    pub fn transport(mut self, transport: crate::Transport) -> Self {
        self.builder = self.builder.transport(transport);
        self
    }

    /// An option as the client would send it.
    pub fn option(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.option(name, value);
        self
    }

    async fn run(self) -> Result<Vec<u8>, crate::TftpError> {
        use crate::handler::response::BodyKind;
        use tokio::io::AsyncReadExt;
        let table = self
            .app
            .table()
            .unwrap_or_else(|e| panic!("the app's routes are invalid: {e}"));
        let req = self.builder.build();
        match self.kind {
            crate::route::Kind::Read => {
                let body = table.dispatch_read(&req)?.call.run().await?;
                let mut v = Vec::new();
                match body.kind {
                    BodyKind::Bytes(b) => v.extend_from_slice(&b),
                    BodyKind::File { mut file, .. } => {
                        std::io::Read::read_to_end(&mut file, &mut v)?;
                    }
                    BodyKind::Stream { mut reader, .. } => {
                        reader.read_to_end(&mut v).await?;
                    }
                }
                Ok(v)
            }
            crate::route::Kind::Write => {
                let call = table.dispatch_write(&req)?.call;
                let upload = crate::Upload::from_bytes(self.data);
                crate::handler::call::verdict(call.start(upload).await).map(|()| Vec::new())
            }
        }
    }
}

impl<'a> std::future::IntoFuture for TestRequest<'a> {
    type Output = Result<Vec<u8>, crate::TftpError>;
    type IntoFuture =
        std::pin::Pin<Box<dyn std::future::Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}
