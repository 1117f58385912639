//! The application: routes, state and configuration, and the builder that
//! starts a [`Server`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::handler::call::{ReadCall, WriteCall};
use crate::handler::{IntoReadResponse, IntoWriteResponse, Request, StateMap};
use crate::proto::{OptionLimits, Rollover, TransferConfig};
use crate::route::{Handler, RouteSpec, RouteTable, registered};
use crate::server::Server;
use crate::{Error, Result};

/// The default address: loopback only, so a development server is not
/// reachable from the network until you say so.
pub const DEFAULT_HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// The default port (the Python emmer's development port; TFTP's own is 69).
pub const DEFAULT_PORT: u16 = 3942;
/// The default upload limit: 64 MiB.
pub const DEFAULT_MAX_UPLOAD: u64 = 64 * 1024 * 1024;
/// The default number of transfers served at once.
pub const DEFAULT_MAX_TRANSFERS: usize = 4096;

/// Server settings. [`Config::default`] gives the documented defaults,
/// [`Config::from_env`] applies `EMMER_*` variables on top.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Where to listen. Default 127.0.0.1:3942.
    pub bind: SocketAddr,
    /// Retransmission timer, retries, dally, block number rollover.
    pub transfer: TransferConfig,
    /// Which options are answered and their maxima.
    pub options: OptionLimits,
    /// Largest upload accepted, in bytes. Default 64 MiB.
    pub max_upload: u64,
    /// Most transfers served at once; a request beyond it is refused with
    /// ERROR 0 ("server busy"). Default 4096.
    pub max_transfers: usize,
    /// On shutdown, how long running transfers may go on. Default 5 s.
    pub shutdown_grace: Duration,
    /// When a client asks for `tsize` of a streamed body whose size is not
    /// known, read up to this many bytes ahead to learn it (0: leave tsize
    /// out of the OACK). A body can set its own limit with
    /// [`ReadBody::measure_tsize_up_to`](crate::ReadBody::measure_tsize_up_to).
    /// Default 0.
    pub tsize_measure_limit: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::new(DEFAULT_HOST, DEFAULT_PORT),
            transfer: TransferConfig::default(),
            options: OptionLimits::default(),
            max_upload: DEFAULT_MAX_UPLOAD,
            max_transfers: DEFAULT_MAX_TRANSFERS,
            shutdown_grace: Duration::from_secs(5),
            tsize_measure_limit: 0,
        }
    }
}

impl Config {
    /// The defaults overridden by environment variables:
    ///
    /// | variable | meaning | default |
    /// |---|---|---|
    /// | `EMMER_HOST` | address to listen on (IPv4 or IPv6) | `127.0.0.1` |
    /// | `EMMER_PORT` | UDP port | `3942` |
    /// | `EMMER_TIMEOUT_MS` | first retransmission after this many ms | `1000` |
    /// | `EMMER_RETRIES` | retransmissions before a transfer is dropped | `5` |
    /// | `EMMER_MAX_UPLOAD` | largest upload in bytes | `67108864` |
    /// | `EMMER_MAX_TRANSFERS` | transfers at once | `4096` |
    /// | `EMMER_MAX_BLKSIZE` | largest blksize granted | `65464` |
    /// | `EMMER_MAX_WINDOWSIZE` | largest windowsize granted | `64` |
    /// | `EMMER_ROLLOVER` | block after 65535: `0` or `1` | `0` |
    /// | `EMMER_REFUSE_OPTIONS` | options never acknowledged, comma-separated: `blksize`, `windowsize`, `timeout`, `tsize` | none |
    /// | `EMMER_TSIZE_MEASURE_LIMIT` | bytes read ahead to learn the tsize of a stream of unknown size | `0` |
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the variable when a value does not parse.
    ///
    /// # Examples
    ///
    /// ```
    /// let config = emmer::Config::from_env().unwrap();
    /// assert!(config.max_upload > 0);
    /// ```
    pub fn from_env() -> Result<Self> {
        let mut c = Self::default();
        let host: Option<IpAddr> = env("EMMER_HOST", "an IP address such as 0.0.0.0 or ::")?;
        let port: Option<u16> = env("EMMER_PORT", "a port number 0..=65535")?;
        if let Some(h) = host {
            c.bind.set_ip(h);
        }
        if let Some(p) = port {
            c.bind.set_port(p);
        }
        if let Some(ms) = env::<u64>("EMMER_TIMEOUT_MS", "milliseconds, such as 1000")? {
            if ms == 0 {
                return Err(config_err("EMMER_TIMEOUT_MS", "must be at least 1"));
            }
            c.transfer.timeout = Duration::from_millis(ms);
        }
        if let Some(r) = env("EMMER_RETRIES", "a count such as 5")? {
            c.transfer.max_retries = r;
        }
        if let Some(m) = env("EMMER_MAX_UPLOAD", "a size in bytes")? {
            c.max_upload = m;
        }
        if let Some(m) = env("EMMER_MAX_TRANSFERS", "a count such as 4096")? {
            c.max_transfers = m;
        }
        if let Some(b) = env::<u16>("EMMER_MAX_BLKSIZE", "a block size 8..=65464")? {
            if !(8..=crate::proto::packet::MAX_BLKSIZE).contains(&b) {
                return Err(config_err("EMMER_MAX_BLKSIZE", "must be in 8..=65464"));
            }
            c.options.max_blksize = b;
        }
        if let Some(w) = env::<u16>("EMMER_MAX_WINDOWSIZE", "a window size 1..=65535")? {
            if w == 0 {
                return Err(config_err("EMMER_MAX_WINDOWSIZE", "must be at least 1"));
            }
            c.options.max_windowsize = w;
        }
        if let Some(r) = env::<u8>("EMMER_ROLLOVER", "0 or 1")? {
            c.transfer.rollover = match r {
                0 => Rollover::ToZero,
                1 => Rollover::ToOne,
                _ => return Err(config_err("EMMER_ROLLOVER", "must be 0 or 1")),
            };
        }
        if let Some(list) =
            env::<String>("EMMER_REFUSE_OPTIONS", "a list such as tsize,windowsize")?
        {
            for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match name.to_ascii_lowercase().as_str() {
                    "blksize" => c.options.blksize = false,
                    "windowsize" => c.options.windowsize = false,
                    "timeout" | "utimeout" => c.options.timeout = false,
                    "tsize" => c.options.tsize = false,
                    other => {
                        return Err(config_err(
                            "EMMER_REFUSE_OPTIONS",
                            &format!(
                                "{other:?} is not an option emmer negotiates (blksize, windowsize, timeout, tsize)"
                            ),
                        ));
                    }
                }
            }
        }
        if let Some(n) = env("EMMER_TSIZE_MEASURE_LIMIT", "a size in bytes")? {
            c.tsize_measure_limit = n;
        }
        Ok(c)
    }
}

fn config_err(setting: &str, message: &str) -> Error {
    Error::Config {
        setting: setting.to_owned(),
        message: message.to_owned(),
    }
}

fn env<T: std::str::FromStr>(name: &str, expected: &str) -> Result<Option<T>> {
    match std::env::var(name) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => v.trim().parse().map(Some).map_err(|_| Error::Config {
            setting: name.to_owned(),
            message: format!("{v:?} is not {expected}; fix or unset it"),
        }),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(config_err(name, "is not valid UTF-8")),
    }
}

/// A TFTP application: routes, shared state and configuration.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> emmer::Result<()> {
/// use emmer::{App, Request};
///
/// let server = App::empty()
///     .route_read(r"motd\.txt", |_req: &Request| "hello\n")
///     .route_write(r"uploads/.+", |_req: &Request, data: Vec<u8>| !data.is_empty())
///     .bind_to("127.0.0.1:0".parse().unwrap())
///     .bind()
///     .await?;
/// println!("serving on {}", server.local_addr());
/// server.serve().await
/// # }
/// ```
pub struct App {
    routes: Vec<RouteSpec>,
    builder_routes: usize,
    config: Config,
    state: Arc<StateMap>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("routes", &self.routes)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for App {
    fn default() -> Self {
        Self::new()
    }
}

impl App {
    /// An app with the routes declared by `#[route_read]` and
    /// `#[route_write]` in this program, and the default configuration.
    pub fn new() -> Self {
        let mut app = Self::empty();
        app.routes = registered();
        app
    }

    /// An app with no routes (add them with [`route_read`](Self::route_read)
    /// and [`route_write`](Self::route_write)), e.g. for tests.
    pub fn empty() -> Self {
        Self {
            routes: Vec::new(),
            builder_routes: 0,
            config: Config::default(),
            state: Arc::new(StateMap::default()),
        }
    }

    /// [`App::new`] configured by [`Config::from_env`], as [`run`](crate::run) does.
    ///
    /// # Errors
    ///
    /// A bad `EMMER_*` value.
    pub fn from_env() -> Result<Self> {
        Ok(Self::new().config(Config::from_env()?))
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The configuration, to read or change in place.
    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    /// Where to listen (default 127.0.0.1:3942; port 0 picks a free port).
    pub fn bind_to(mut self, addr: SocketAddr) -> Self {
        self.config.bind = addr;
        self
    }

    /// The first retransmission timeout (default 1 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.transfer.timeout = timeout;
        self
    }

    /// Retransmissions before a silent client is dropped (default 5).
    pub fn retries(mut self, retries: u32) -> Self {
        self.config.transfer.max_retries = retries;
        self
    }

    /// Largest blksize granted (RFC 2348; default 65464). Larger requests
    /// are lowered to it.
    pub fn max_blksize(mut self, blksize: u16) -> Self {
        self.config.options.max_blksize = blksize.clamp(8, crate::proto::packet::MAX_BLKSIZE);
        self
    }

    /// Largest windowsize granted (RFC 7440; default 64).
    pub fn max_windowsize(mut self, windowsize: u16) -> Self {
        self.config.options.max_windowsize = windowsize.max(1);
        self
    }

    /// What follows block 65535 (default 0).
    pub fn rollover(mut self, rollover: Rollover) -> Self {
        self.config.transfer.rollover = rollover;
        self
    }

    /// Never acknowledges the named option (`"blksize"`, `"windowsize"`,
    /// `"timeout"` or `"tsize"`); other names are ignored.
    pub fn refuse_option(mut self, name: &str) -> Self {
        let o = &mut self.config.options;
        match name.to_ascii_lowercase().as_str() {
            "blksize" => o.blksize = false,
            "windowsize" => o.windowsize = false,
            "timeout" | "utimeout" => o.timeout = false,
            "tsize" => o.tsize = false,
            _ => {}
        }
        self
    }

    /// Largest upload in bytes (default 64 MiB); a longer one ends with
    /// ERROR 3 and is not handed to the handler.
    pub fn max_upload(mut self, bytes: u64) -> Self {
        self.config.max_upload = bytes;
        self
    }

    /// Registers application state, taken by handlers as
    /// [`State<T>`](crate::State).
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        Arc::make_mut(&mut self.state).insert(value);
        self
    }

    /// Adds a read route without a macro. The handler runs on the blocking
    /// pool. Builder routes come after macro routes of the same priority, in
    /// the order added.
    pub fn route_read<H, R>(self, pattern: impl Into<String>, handler: H) -> Self
    where
        H: Fn(&Request) -> R + Send + Sync + 'static,
        R: IntoReadResponse + 'static,
    {
        let handler = Arc::new(handler);
        self.push(
            pattern.into(),
            Handler::Read(Arc::new(move |req: &Request| {
                let (h, req) = (handler.clone(), req.clone());
                Ok(ReadCall::blocking(move || h(&req)))
            })),
        )
    }

    /// Adds a write route without a macro: the handler gets the whole upload
    /// and decides between the final ACK and an ERROR.
    pub fn route_write<H, R>(self, pattern: impl Into<String>, handler: H) -> Self
    where
        H: Fn(&Request, Vec<u8>) -> R + Send + Sync + 'static,
        R: IntoWriteResponse + 'static,
    {
        let handler = Arc::new(handler);
        self.push(
            pattern.into(),
            Handler::Write(Arc::new(move |req: &Request| {
                let (h, req) = (handler.clone(), req.clone());
                Ok(WriteCall::whole_blocking(move |data| Ok(h(&req, data))))
            })),
        )
    }

    /// Adds a read route whose handler is async (it runs on the runtime, so
    /// it must not block).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use emmer::{App, ReadBody, Request, TftpError};
    /// let app = App::empty().route_read_async(r"files/.+", |req: Request| async move {
    ///     let path = std::env::temp_dir().join(req.filename().trim_start_matches("files/"));
    ///     Ok::<_, TftpError>(ReadBody::file(path).await?)
    /// });
    /// assert_eq!(app.read("files/none-such").await.unwrap_err().code(), emmer::ErrorCode::FileNotFound);
    /// # }
    /// ```
    pub fn route_read_async<H, Fut, R>(self, pattern: impl Into<String>, handler: H) -> Self
    where
        H: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = R> + Send + 'static,
        R: IntoReadResponse + 'static,
    {
        self.push(
            pattern.into(),
            Handler::Read(Arc::new(move |req: &Request| {
                Ok(ReadCall::asynchronous(handler(req.clone())))
            })),
        )
    }

    /// Adds a write route whose async handler gets the whole upload.
    pub fn route_write_async<H, Fut, R>(self, pattern: impl Into<String>, handler: H) -> Self
    where
        H: Fn(Request, Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = R> + Send + 'static,
        R: IntoWriteResponse + 'static,
    {
        let handler = Arc::new(handler);
        self.push(
            pattern.into(),
            Handler::Write(Arc::new(move |req: &Request| {
                let (h, req) = (handler.clone(), req.clone());
                Ok(WriteCall::whole(move |data| Ok(h(req, data))))
            })),
        )
    }

    /// Adds a write route whose async handler streams the upload
    /// ([`Upload`](crate::Upload)): called when the request arrives, it can
    /// refuse before anything is acknowledged.
    pub fn route_upload<H, Fut, R>(self, pattern: impl Into<String>, handler: H) -> Self
    where
        H: Fn(Request, crate::Upload) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = R> + Send + 'static,
        R: IntoWriteResponse + 'static,
    {
        let handler = Arc::new(handler);
        self.push(
            pattern.into(),
            Handler::Write(Arc::new(move |req: &Request| {
                let (h, req) = (handler.clone(), req.clone());
                Ok(WriteCall::streaming(move |upload| h(req, upload)))
            })),
        )
    }

    /// Sets limits on the route added last (a tighter blksize, windowsize or
    /// upload size than the server's).
    ///
    /// # Examples
    ///
    /// ```
    /// use emmer::{App, Request, route::RouteLimits};
    /// let app = App::empty()
    ///     .route_write("cfg/.+", |_: &Request, _data: Vec<u8>| ())
    ///     .limits(RouteLimits { max_upload: Some(64 * 1024), ..Default::default() });
    /// # let _ = app;
    /// ```
    ///
    /// # Panics
    ///
    /// When no route was added yet.
    pub fn limits(mut self, limits: crate::route::RouteLimits) -> Self {
        self.routes
            .last_mut()
            .expect("App::limits applies to the route added last; add a route first")
            .limits = limits;
        self
    }

    fn push(mut self, pattern: String, handler: Handler) -> Self {
        let index = self.builder_routes;
        self.builder_routes += 1;
        self.routes
            .push(RouteSpec::builder(pattern, 0, index, handler));
        self
    }

    pub(crate) fn state_map(&self) -> Arc<StateMap> {
        self.state.clone()
    }

    /// Builds the route table, as the server will at start-up.
    ///
    /// # Errors
    ///
    /// An invalid pattern, or two routes of the same kind with the same pattern.
    pub fn table(&self) -> Result<RouteTable> {
        RouteTable::build(self.routes.clone())
    }

    /// Builds the route table and binds the socket.
    ///
    /// # Errors
    ///
    /// An invalid or duplicate route, or a socket that cannot be bound.
    pub async fn bind(self) -> Result<Server> {
        let table = self.table()?;
        Server::bind(table, self.config, self.state).await
    }

    /// Binds and serves until the process ends.
    ///
    /// # Errors
    ///
    /// See [`bind`](Self::bind).
    pub async fn serve(self) -> Result<()> {
        self.bind().await?.serve().await
    }
}
