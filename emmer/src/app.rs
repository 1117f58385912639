//! The application: routes, state and configuration, and the builder that
//! starts a [`Server`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::event::{Observers, TransferEvent};
use crate::fs::ServeDir;
use crate::handler::call::{ReadCall, WriteCall};
use crate::handler::{IntoReadResponse, IntoWriteResponse, Request, StateMap};
use crate::proto::Rollover;
use crate::route::{Handler, RoutePattern, RouteSpec, RouteTable, registered};
use crate::server::Server;
use crate::server::socket::Net;
use crate::{Config, Error, Result, TftpOption};

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
    /// The operating system's network, or a simulated one in tests.
    net: Net,
    observers: Observers,
    /// Checked when the route table is built (served directories).
    checks: Vec<Check>,
}

/// A start-up check, run by [`App::table`].
type Check = Box<dyn Fn() -> Result<()> + Send + Sync>;

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("routes", &self.routes)
            .field("config", &self.config)
            .field("observers", &self.observers)
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
    /// and [`route_write`](Self::route_write), or pick macro routes with
    /// [`macro_route`](Self::macro_route) and
    /// [`macro_routes_in`](Self::macro_routes_in)), e.g. for tests.
    pub fn empty() -> Self {
        Self {
            routes: Vec::new(),
            builder_routes: 0,
            config: Config::default(),
            state: Arc::new(StateMap::default()),
            net: Net::Os,
            observers: Observers::default(),
            checks: Vec::new(),
        }
    }

    /// Adds the route of the `#[route_read]` / `#[route_write]` function
    /// named `path`: its name (`"pxe_config"`), or as much of its module
    /// path as tells it from others of the same name
    /// (`"boot::pxe_config"`). For tests that pick their routes when the
    /// binary holds others (see [`testing`](crate::testing)).
    ///
    /// A route added twice is added once. [`table`](Self::table) and
    /// [`bind`](Self::bind) fail when no function, or more than one, has
    /// that path.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use emmer::{App, route_read};
    ///
    /// #[route_read("hello")]
    /// fn hello() -> &'static str { "hi" }
    ///
    /// #[route_read(".*")]
    /// fn everything() -> &'static str { "all" }
    ///
    /// let app = App::empty().macro_route("hello");
    /// assert_eq!(app.read("hello").await.unwrap(), b"hi");
    /// assert!(app.read("other").await.is_err(), "`everything` was not picked");
    /// assert!(App::empty().macro_route("nope").table().is_err());
    /// # }
    /// ```
    pub fn macro_route(mut self, path: &str) -> Self {
        let suffix = format!("::{path}");
        let found: Vec<RouteSpec> = registered()
            .into_iter()
            .filter(|r| r.path().is_some_and(|p| p == path || p.ends_with(&suffix)))
            .collect();
        if found.len() == 1 {
            self.add_macro_routes(found);
            return self;
        }
        let mut paths: Vec<String> = found.iter().filter_map(RouteSpec::path).collect();
        let message = if paths.is_empty() {
            let mut all: Vec<String> = registered().iter().filter_map(RouteSpec::path).collect();
            all.sort();
            format!(
                "no #[route_read] or #[route_write] function is named {path:?}; the macro routes are: {}",
                all.join(", ")
            )
        } else {
            paths.sort();
            format!(
                "{path:?} names {}; write more of the module path",
                paths.join(" and ")
            )
        };
        self.checks.push(Box::new(move || {
            Err(Error::Config {
                setting: "macro route (App::macro_route)".into(),
                message: message.clone(),
            })
        }));
        self
    }

    /// Adds every `#[route_read]` / `#[route_write]` route declared in
    /// `module` or its submodules: pass `module_path!()` to take the routes
    /// of the calling module. [`table`](Self::table) and
    /// [`bind`](Self::bind) fail when there is none.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// mod boot {
    ///     #[emmer::route_read("kernel")]
    ///     pub fn kernel() -> &'static str { "vmlinuz" }
    /// }
    /// let app = emmer::App::empty().macro_routes_in(&format!("{}::boot", module_path!()));
    /// assert_eq!(app.read("kernel").await.unwrap(), b"vmlinuz");
    /// # }
    /// ```
    pub fn macro_routes_in(mut self, module: &str) -> Self {
        let below = format!("{module}::");
        let found: Vec<RouteSpec> = registered()
            .into_iter()
            .filter(|r| r.path().is_some_and(|p| p.starts_with(&below)))
            .collect();
        if found.is_empty() {
            let module = module.to_owned();
            self.checks.push(Box::new(move || {
                Err(Error::Config {
                    setting: "macro routes (App::macro_routes_in)".into(),
                    message: format!(
                        "no #[route_read] or #[route_write] function is declared in {module} or below"
                    ),
                })
            }));
        }
        self.add_macro_routes(found);
        self
    }

    fn add_macro_routes(&mut self, routes: Vec<RouteSpec>) {
        for r in routes {
            if !self.routes.iter().any(|have| have.same_macro_route(&r)) {
                self.routes.push(r);
            }
        }
    }

    /// Serves on a simulated network instead of the operating system's.
    pub(crate) fn on_net(mut self, net: Net) -> Self {
        self.net = net;
        self
    }

    /// [`App::new`] configured by [`Config::from_env`], as [`run`](crate::run) does.
    ///
    /// # Errors
    ///
    /// A bad `EMMER_*` value.
    pub fn from_env() -> Result<Self> {
        Ok(Self::new().config(Config::from_env()?))
    }

    /// Replaces the whole configuration; [`bind`](Self::bind) validates it.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The configuration, to read or change in place (for the settings
    /// without a builder method); [`bind`](Self::bind) validates it.
    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    /// Which ports transfers answer from (default
    /// [`Ports::Ephemeral`](crate::Ports::Ephemeral); `EMMER_PORTS`).
    /// [`Ports::Single`](crate::Ports::Single) is what containers,
    /// Kubernetes Services and load balancers need.
    ///
    /// # Examples
    ///
    /// ```
    /// let app = emmer::App::new().ports(emmer::Ports::Single);
    /// # let _ = app;
    /// ```
    pub fn ports(mut self, ports: crate::Ports) -> Self {
        self.config.ports = ports;
        self
    }

    /// Where to listen (default 127.0.0.1:3942; port 0 picks a free port).
    /// For several addresses set [`Config::hosts`].
    pub fn bind_to(mut self, addr: SocketAddr) -> Self {
        self.config.hosts = vec![addr.ip()];
        self.config.port = addr.port();
        self
    }

    /// Serves the same routes over HTTP/1.1 too, on `addr` (port 0 picks a
    /// free one; `EMMER_HTTP`): every read route answers `GET` and `HEAD`
    /// at [`http_prefix`](Self::http_prefix)` + <file name>`, every write
    /// route `PUT`. Handlers see [`Transport::Http`](crate::Transport::Http)
    /// and the TCP peer's address; a route can keep to one transport
    /// (`transports = "tftp"`, [`RoutePattern::transports`]).
    ///
    /// Sizes are sent as `Content-Length` whenever they are known, ranges
    /// are served, a TFTP error becomes its status (1 → 404, 2 → 403,
    /// 3 → 507, 6 → 409, others → 500) with its message as the body, and
    /// uploads have the same limits as over TFTP (413 beyond). The limits
    /// that keep slow clients out are in [`HttpConfig`](crate::HttpConfig)
    /// (`config_mut().http`).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use emmer::{App, Request};
    ///
    /// let app = App::empty()
    ///     .route_read(r"boot\.ipxe", |req: &Request| {
    ///         format!("#!ipxe\necho over {}\n", req.transport())
    ///     })
    ///     .http("127.0.0.1:0".parse().unwrap());
    /// let server = app.bind_to("127.0.0.1:0".parse().unwrap()).bind().await.unwrap();
    /// let http = server.http_addr().unwrap();
    /// assert!(http.port() != 0);
    /// # }
    /// ```
    #[cfg(feature = "http")]
    pub fn http(mut self, addr: SocketAddr) -> Self {
        self.config.http.addr = Some(addr);
        self
    }

    /// The URL path the file names hang under over HTTP (default `/`;
    /// `EMMER_HTTP_PREFIX`): with `/tftp/`, `GET /tftp/pxelinux.0` reads
    /// `pxelinux.0`. It must start and end with `/` ([`bind`](Self::bind)
    /// refuses anything else).
    ///
    /// # Examples
    ///
    /// ```
    /// let app = emmer::App::new()
    ///     .http("0.0.0.0:8080".parse().unwrap())
    ///     .http_prefix("/tftp/");
    /// # let _ = app;
    /// ```
    #[cfg(feature = "http")]
    pub fn http_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.http.prefix = prefix.into();
        self
    }

    /// The retransmission timeout: how long the server waits for an answer
    /// before it sends a packet again (default 1 s, `EMMER_TIMEOUT_MS`).
    /// Later retransmissions back off from it; a client's RFC 2349
    /// `timeout` option replaces it for its transfer.
    ///
    /// Valid from 1 ms to 255 s; [`bind`](Self::bind) refuses anything else
    /// (see [`Config::validate`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let app = emmer::App::new().retransmit_timeout(Duration::from_millis(300));
    /// # let _ = app;
    /// ```
    pub fn retransmit_timeout(mut self, timeout: Duration) -> Self {
        self.config.transfer.retransmit_timeout = timeout;
        self
    }

    /// The bounds of the adapted retransmission timeout (default 200 ms and
    /// 8 s; `EMMER_MIN_TIMEOUT_MS`, `EMMER_MAX_TIMEOUT_MS`). Without a
    /// negotiated `timeout` option, each transfer measures its round trips
    /// and waits SRTT + 4 × RTTVAR (RFC 6298) before sending again, never
    /// less than `min` (once measured) nor more than `max`; each retry
    /// doubles the wait, up to `max`. Checked when the server starts.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// // A lossy LAN of slow firmware: never resend within 500 ms.
    /// let app = emmer::App::new()
    ///     .retransmit_bounds(Duration::from_millis(500), Duration::from_secs(8));
    /// # let _ = app;
    /// ```
    pub fn retransmit_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.config.transfer.min_retransmit_timeout = min;
        self.config.transfer.max_retransmit_timeout = max;
        self
    }

    /// Retransmissions before a silent client is dropped (default 5,
    /// `EMMER_RETRIES`).
    ///
    /// # Examples
    ///
    /// ```
    /// let app = emmer::App::new().retries(3);
    /// # let _ = app;
    /// ```
    pub fn retries(mut self, retries: u32) -> Self {
        self.config.transfer.max_retries = retries;
        self
    }

    /// Largest blksize granted (RFC 2348; default 65464,
    /// `EMMER_MAX_BLKSIZE`). Larger requests are lowered to it.
    ///
    /// Valid in 8..=65464; [`bind`](Self::bind) refuses anything else
    /// (see [`Config::validate`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use emmer::App;
    /// let app = App::new().max_blksize(1428); // one Ethernet frame
    /// # let _ = app;
    /// let err = App::empty().max_blksize(4).bind().await.unwrap_err();
    /// assert!(err.to_string().contains("EMMER_MAX_BLKSIZE"));
    /// # }
    /// ```
    pub fn max_blksize(mut self, blksize: u16) -> Self {
        self.config.options.max_blksize = blksize;
        self
    }

    /// Largest windowsize granted (RFC 7440; default 64,
    /// `EMMER_MAX_WINDOWSIZE`). At least 1; [`bind`](Self::bind) refuses 0
    /// (see [`Config::validate`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let app = emmer::App::new().max_windowsize(16);
    /// # let _ = app;
    /// ```
    pub fn max_windowsize(mut self, windowsize: u16) -> Self {
        self.config.options.max_windowsize = windowsize;
        self
    }

    /// What follows block 65535 (default 0, `EMMER_ROLLOVER`).
    ///
    /// # Examples
    ///
    /// ```
    /// let app = emmer::App::new().rollover(emmer::Rollover::ToOne);
    /// # let _ = app;
    /// ```
    pub fn rollover(mut self, rollover: Rollover) -> Self {
        self.config.transfer.rollover = rollover;
        self
    }

    /// Never acknowledges `option` (`EMMER_REFUSE_OPTIONS`): it is left out
    /// of every OACK, and the transfer goes on with the option's default.
    ///
    /// # Examples
    ///
    /// ```
    /// use emmer::{App, TftpOption};
    /// let app = App::new()
    ///     .refuse_option(TftpOption::Tsize)
    ///     .refuse_option("windowsize".parse().unwrap());
    /// # let _ = app;
    /// ```
    pub fn refuse_option(mut self, option: TftpOption) -> Self {
        self.config.refuse_option(option);
        self
    }

    /// Largest upload in bytes (default 64 MiB, `EMMER_MAX_UPLOAD`); a
    /// longer one ends with ERROR 3 and is not handed to the handler.
    pub fn max_upload(mut self, bytes: u64) -> Self {
        self.config.max_upload = bytes;
        self
    }

    /// Routes requests by their file name without the W3C `traceparent`
    /// a client appended to it (default false): with it, a request for
    /// `ipxe.efi-00-<trace id>-<parent id>-01` is routed, and seen by
    /// handlers, as `ipxe.efi`. Either way the trace id goes on the
    /// transfer's span and event, and handlers can take
    /// [`Option<Traceparent>`](crate::Traceparent).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use emmer::{App, Request};
    /// let app = App::empty()
    ///     .route_read(r"ipxe\.efi", |req: &Request| {
    ///         format!("{} {}", req.filename(), req.traceparent().unwrap().trace_id())
    ///     })
    ///     .strip_traceparent(true);
    /// # let server = emmer::testing::TestServer::start(app).await;
    /// let name = "ipxe.efi-00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    /// let body = server.client().get(name).await.unwrap();
    /// assert_eq!(body, b"ipxe.efi 0af7651916cd43dd8448eb211c80319c");
    /// # }
    /// ```
    pub fn strip_traceparent(mut self, on: bool) -> Self {
        self.config.strip_traceparent = on;
        self
    }

    /// Registers application state, taken by handlers as
    /// [`State<T>`](crate::State).
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        Arc::make_mut(&mut self.state).insert(value);
        self
    }

    /// Calls `callback` once for every request, served or refused, after it
    /// ended, with its [`TransferEvent`]: who asked for what, which route
    /// took it, bytes, blocks, retransmissions, the round trip, the duration
    /// and the outcome.
    ///
    /// Callbacks run on a thread of their own, one event after the other,
    /// in the order they were registered: a slow callback never slows a
    /// transfer, and one that panics is logged and called again for the
    /// next event. When they fall behind by
    /// [`EVENT_QUEUE`](crate::event::EVENT_QUEUE) events, new events are
    /// dropped (and counted in a warning) rather than waited for. See
    /// [`event`](crate::event).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use emmer::testing::TestServer;
    /// use emmer::{App, Request, TransferEvent};
    ///
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let app = App::empty()
    ///     .route_read("motd", |_: &Request| "hello")
    ///     .on_transfer(move |ev: &TransferEvent| {
    ///         let _ = tx.send((ev.filename.clone(), ev.bytes, ev.outcome.as_str()));
    ///     });
    /// let server = TestServer::start(app).await;
    /// server.client().get("motd").await.unwrap();
    /// let ev = rx.recv().await.unwrap();
    /// assert_eq!(ev, ("motd".to_owned(), 5, "complete"));
    /// # }
    /// ```
    pub fn on_transfer<F>(mut self, callback: F) -> Self
    where
        F: Fn(&TransferEvent) + Send + Sync + 'static,
    {
        self.observers.callbacks.push(Arc::new(callback));
        self
    }

    /// Adds a read route without a macro. The handler runs on the blocking
    /// pool.
    ///
    /// `pattern` is a regex (`&str` or `String`) or a [`RoutePattern`] that
    /// also gives the route a priority and limits. Builder routes come after
    /// macro routes of the same priority, in the order added (see
    /// [`route`](crate::route)).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use emmer::{App, Request, RoutePattern};
    /// let app = App::empty()
    ///     .route_read(".*", |_: &Request| "fallback")
    ///     // Added later, tried first.
    ///     .route_read(RoutePattern::new("motd").priority(1), |_: &Request| "hello");
    /// assert_eq!(app.read("motd").await.unwrap(), b"hello");
    /// assert_eq!(app.read("other").await.unwrap(), b"fallback");
    /// # }
    /// ```
    pub fn route_read<H, R>(self, pattern: impl Into<RoutePattern>, handler: H) -> Self
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
    pub fn route_write<H, R>(self, pattern: impl Into<RoutePattern>, handler: H) -> Self
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
    pub fn route_read_async<H, Fut, R>(self, pattern: impl Into<RoutePattern>, handler: H) -> Self
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
    pub fn route_write_async<H, Fut, R>(self, pattern: impl Into<RoutePattern>, handler: H) -> Self
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
    pub fn route_upload<H, Fut, R>(self, pattern: impl Into<RoutePattern>, handler: H) -> Self
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
    /// upload size than the server's). Prefer giving them with the route:
    /// [`RoutePattern::limits`](crate::RoutePattern::limits).
    ///
    /// # Examples
    ///
    /// ```
    /// # #![allow(deprecated)]
    /// use emmer::{App, Request, RouteLimits};
    /// let app = App::empty()
    ///     .route_write("cfg/.+", |_: &Request, _data: Vec<u8>| ())
    ///     .limits(RouteLimits { max_upload: Some(64 * 1024), ..Default::default() });
    /// # let _ = app;
    /// ```
    ///
    /// # Panics
    ///
    /// When no route was added yet.
    #[deprecated(
        since = "0.1.0",
        note = "give the limits with the route: `RoutePattern::new(p).limits(..)` or `.max_upload(n)`"
    )]
    pub fn limits(mut self, limits: crate::route::RouteLimits) -> Self {
        self.routes
            .last_mut()
            .expect("App::limits applies to the route added last; add a route first")
            .limits = limits;
        self
    }

    /// Serves the files under `dir`'s root for names that start with
    /// `prefix` (`""` for every name): reads always, writes when
    /// [`ServeDir::allow_writes`] says so. The rest of the name is the path
    /// under the root; see [`fs`](crate::fs) for which names are refused.
    ///
    /// The mount is a builder route: it comes after macro routes of the same
    /// priority, in the order added, so dynamic routes declared with the
    /// macros take their names first. Its routes are named
    /// `serve_dir "<prefix>"` in logs and [`TransferEvent`]s.
    ///
    /// [`bind`](Self::bind) (and [`table`](Self::table)) fail when the root
    /// is not a directory.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use emmer::{App, ErrorCode, Request, fs::ServeDir};
    ///
    /// let root = std::env::temp_dir().join(format!("emmer-doc-serve-{}", std::process::id()));
    /// std::fs::create_dir_all(&root).unwrap();
    /// std::fs::write(root.join("pxelinux.0"), "nbp").unwrap();
    /// let app = App::empty()
    ///     .route_read(r"pxelinux\.cfg/.+", |_: &Request| "default local\n")
    ///     .serve_dir("", ServeDir::new(&root));
    /// assert_eq!(app.read("/pxelinux.0").await.unwrap(), b"nbp");
    /// assert_eq!(app.read("pxelinux.cfg/default").await.unwrap(), b"default local\n");
    /// assert_eq!(app.read("../etc/passwd").await.unwrap_err().code(), ErrorCode::AccessViolation);
    /// assert_eq!(app.write("new.bin", "x").await.unwrap_err().code(), ErrorCode::AccessViolation);
    ///
    /// let missing = App::empty().serve_dir("", ServeDir::new(root.join("missing")));
    /// assert!(missing.table().unwrap_err().to_string().contains("App::serve_dir"));
    /// # std::fs::remove_dir_all(&root).unwrap();
    /// # }
    /// ```
    pub fn serve_dir(mut self, prefix: &str, dir: ServeDir) -> Self {
        let pattern = dir.pattern(prefix);
        let name = format!("serve_dir {prefix:?}");
        let (check, at) = (dir.clone(), prefix.to_owned());
        self.checks.push(Box::new(move || {
            check.check().map_err(|e| Error::Config {
                setting: format!("served directory (App::serve_dir {at:?})"),
                message: format!(
                    "cannot serve {}: {e}; create it or fix the path",
                    check.root().display()
                ),
            })
        }));
        let reads = dir.clone();
        let read = Handler::Read(Arc::new(move |req: &Request| {
            let (dir, req) = (reads.clone(), req.clone());
            Ok(ReadCall::blocking(move || {
                dir.open(req.capture("path").unwrap_or_default())
            }))
        }));
        let transports = dir.transports_served();
        let mount = RoutePattern::new(pattern).transports(transports);
        self = self.push_named(mount.clone(), Some(name.clone()), read);
        if dir.writes_allowed() {
            let write = Handler::Write(Arc::new(move |req: &Request| {
                let (dir, req) = (dir.clone(), req.clone());
                Ok(WriteCall::streaming(move |upload| async move {
                    let name = req.capture("path").unwrap_or_default();
                    dir.store(name, upload).await.map(drop)
                }))
            }));
            self = self.push_named(mount, Some(name), write);
        }
        self
    }

    fn push(self, pattern: RoutePattern, handler: Handler) -> Self {
        self.push_named(pattern, None, handler)
    }

    fn push_named(mut self, pattern: RoutePattern, name: Option<String>, handler: Handler) -> Self {
        let index = self.builder_routes;
        self.builder_routes += 1;
        let mut spec = RouteSpec::builder(pattern.pattern, pattern.priority, index, handler);
        spec.limits = pattern.limits;
        spec.sharing = pattern.sharing;
        spec.transports = pattern.transports;
        if let Some(name) = name {
            spec = spec.named(name);
        }
        self.routes.push(spec);
        self
    }

    pub(crate) fn state_map(&self) -> Arc<StateMap> {
        self.state.clone()
    }

    /// Builds the route table, as the server will at start-up.
    ///
    /// # Errors
    ///
    /// An invalid pattern, two routes of the same kind with the same
    /// pattern, a route that takes a [`State<T>`](crate::State) never
    /// registered with [`state`](Self::state) ([`Error::MissingState`], naming
    /// the route and the type), a [`macro_route`](Self::macro_route) that
    /// names no route, or a served directory ([`serve_dir`](Self::serve_dir))
    /// that is not there.
    pub fn table(&self) -> Result<RouteTable> {
        for check in &self.checks {
            check()?;
        }
        for route in &self.routes {
            route.check_needs(&self.state)?;
        }
        RouteTable::build(self.routes.clone())
    }

    /// Checks the configuration ([`Config::validate`]), builds the route
    /// table and binds the socket.
    ///
    /// # Errors
    ///
    /// A configuration value out of range ([`Error::Config`](crate::Error::Config)),
    /// an invalid or duplicate route, or a socket that cannot be bound.
    pub async fn bind(self) -> Result<Server> {
        self.config.validate()?;
        let table = self.table()?;
        Server::bind(table, self.config, self.state, self.net, self.observers).await
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
