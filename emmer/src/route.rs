//! Routes: what the macros submit ([`RouteDef`]) and the table built from
//! them at start-up ([`RouteTable`]).
//!
//! # Order
//!
//! `inventory` yields routes in no particular order, so the table sorts them
//! once, at start-up:
//!
//! 1. higher `priority` first (`#[route_read("…", priority = 10)]`, or
//!    [`RoutePattern::priority`] for a builder route; default 0);
//! 2. within one priority, routes declared with the macros, by source file
//!    path, then by line and column, so within a file the first declared is
//!    tried first;
//! 3. then, within the same priority, routes added with
//!    [`App::route_read`](crate::App::route_read) and the other builder
//!    methods (and [`App::serve_dir`](crate::App::serve_dir)), in the order
//!    added.
//!
//! So a builder route of priority 0 comes after every macro route of
//! priority 0 or more, and before macro routes of a negative priority.
//!
//! # Matching
//!
//! A pattern must match the **whole** file name: `r"boot/.*\.cfg"` matches
//! `boot/a.cfg` but not `x/boot/a.cfg` or `boot/a.cfg.bak`. (The Python emmer
//! matched only the start of the name.) One [`regex::RegexSet`] pass finds the
//! routes that match; the first in order whose captures convert to its
//! handler's parameter types handles the request. When none does, a read is
//! refused with ERROR 1 (file not found) and a write with ERROR 2 (access
//! violation).
//!
//! # Shared bodies
//!
//! A read route may share its bodies (`#[route_read("…", share_for = "2s")]`,
//! or [`RoutePattern::share_for`] / [`RoutePattern::sharing`]): concurrent
//! requests for the same file name share one handler call and one body, and
//! the body is kept for the given time. See [`Sharing`] for what is shared
//! and what a shared handler may take.
//! # Transports
//!
//! A route serves every transport the server speaks: TFTP, and HTTP when
//! the server has it ([`App::http`](crate::App::http), feature `http`).
//! `#[route_read("…", transports = "tftp")]` (or [`RoutePattern::transports`])
//! keeps it to one; a request over another transport does not see it and
//! goes on to the next route. Two routes of the same kind may share a
//! pattern when they serve different transports.

use std::cmp::Reverse;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use regex::{Regex, RegexSet};

use crate::__private::{Location, Need, NoMatch, ReadCall, RouteDef, RouteFn, WriteCall};
use crate::handler::shared::SharedBodies;
use crate::handler::{Capture, Request, Sharing, StateMap, Transport};
use crate::{Error, TftpError};

/// The transports a route serves: [`Transports::ALL`] (the default),
/// [`Transports::TFTP`] or [`Transports::HTTP`].
///
/// # Examples
///
/// ```
/// use emmer::Transport;
/// use emmer::route::Transports;
///
/// assert!(Transports::ALL.contains(Transport::Http));
/// assert!(!Transports::TFTP.contains(Transport::Http));
/// assert_eq!(Transports::TFTP.union(Transports::HTTP), Transports::ALL);
/// assert_eq!(Transports::HTTP.to_string(), "http");
/// assert_eq!("tftp, http".parse::<Transports>(), Ok(Transports::ALL));
/// assert!("ftp".parse::<Transports>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transports(u8);

impl Transports {
    /// TFTP only.
    pub const TFTP: Transports = Transports(1);
    /// HTTP only.
    pub const HTTP: Transports = Transports(2);
    /// Every transport (the default).
    pub const ALL: Transports = Transports(3);

    /// The set holding only `transport`.
    pub const fn only(transport: Transport) -> Transports {
        match transport {
            Transport::Tftp => Self::TFTP,
            Transport::Http => Self::HTTP,
        }
    }

    /// Whether the set holds `transport`.
    pub const fn contains(self, transport: Transport) -> bool {
        self.0 & Self::only(transport).0 != 0
    }

    /// The transports of either set.
    pub const fn union(self, other: Transports) -> Transports {
        Transports(self.0 | other.0)
    }

    /// Whether the sets share a transport.
    pub const fn intersects(self, other: Transports) -> bool {
        self.0 & other.0 != 0
    }
}

impl Default for Transports {
    fn default() -> Self {
        Self::ALL
    }
}

impl From<Transport> for Transports {
    fn from(t: Transport) -> Self {
        Self::only(t)
    }
}

impl fmt::Display for Transports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [Transport::Tftp, Transport::Http]
            .into_iter()
            .filter(|t| self.contains(*t))
            .map(Transport::as_str)
            .collect();
        f.write_str(&names.join(","))
    }
}

impl std::str::FromStr for Transports {
    type Err = String;

    /// A comma-separated list of `tftp` and `http`, as the macros' and
    /// `transports = "…"` take it.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut set = Transports(0);
        for name in s.split(',').map(str::trim) {
            set = set.union(match name.to_ascii_lowercase().as_str() {
                "tftp" => Self::TFTP,
                "http" => Self::HTTP,
                _ => {
                    return Err(format!(
                        "{name:?} is not a transport; the transports are tftp and http"
                    ));
                }
            });
        }
        Ok(set)
    }
}

/// Read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A read request (RRQ): the server sends a file.
    Read,
    /// A write request (WRQ): the client sends a file.
    Write,
}

impl Kind {
    /// "read" or "write".
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Read => "read",
            Kind::Write => "write",
        }
    }
}

/// Limits of one route, tighter than the server's [`Config`](crate::Config).
///
/// With the macros: `#[route_read("…", max_blksize = 1428, max_windowsize = 8)]`,
/// `#[route_write("…", max_upload = 1048576)]`; on the builder:
/// [`RoutePattern::limits`] (or `max_blksize`, `max_windowsize`,
/// `max_upload`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteLimits {
    /// Largest blksize granted on this route.
    pub max_blksize: Option<u16>,
    /// Largest windowsize granted on this route.
    pub max_windowsize: Option<u16>,
    /// Largest upload accepted on this route, in bytes (ERROR 3 beyond).
    pub max_upload: Option<u64>,
}

/// A builder route's pattern with its priority, limits and sharing: what
/// `#[route_read("…", priority = 10, max_blksize = 1428, share_for = "2s")]`
/// says for a macro route, for [`App::route_read`](crate::App::route_read)
/// and the other builder methods. A plain `&str` or `String` converts into
/// one with priority 0, no limits and no sharing.
///
/// # Examples
///
/// ```
/// use emmer::{App, Request, RoutePattern};
///
/// let app = App::empty().route_write(
///     RoutePattern::new(r"backups/.+\.cfg")
///         .priority(5)
///         .max_upload(1 << 20)
///         .max_blksize(1428),
///     |_: &Request, data: Vec<u8>| !data.is_empty(),
/// );
/// let route = &app.table().unwrap().routes()[0];
/// assert_eq!((route.pattern.as_str(), route.priority), (r"backups/.+\.cfg", 5));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    pub(crate) pattern: String,
    pub(crate) priority: i32,
    pub(crate) limits: RouteLimits,
    pub(crate) sharing: Option<Sharing>,
    pub(crate) transports: Transports,
}

impl RoutePattern {
    /// A regex that must match the whole file name; priority 0, no limits,
    /// no sharing.
    pub fn new(pattern: impl Into<String>) -> Self {
        Self {
            pattern: pattern.into(),
            priority: 0,
            limits: RouteLimits::default(),
            sharing: None,
            transports: Transports::ALL,
        }
    }

    /// The transports the route serves (default all), as the macros'
    /// `transports = "tftp"`: a request over another one does not see the
    /// route.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use emmer::{App, Request, RoutePattern, Transport};
    /// use emmer::route::Transports;
    ///
    /// let app = App::empty()
    ///     .route_read(RoutePattern::new("boot").transports(Transports::TFTP), |_: &Request| "tftp")
    ///     .route_read(RoutePattern::new("boot").transports(Transport::Http), |_: &Request| "http");
    /// assert_eq!(app.read("boot").await.unwrap(), b"tftp");
    /// assert_eq!(app.read("boot").transport(Transport::Http).await.unwrap(), b"http");
    /// # }
    /// ```
    pub fn transports(mut self, transports: impl Into<Transports>) -> Self {
        self.transports = transports.into();
        self
    }

    /// Routes with a higher priority are tried first (default 0; may be
    /// negative), as with the macros' `priority = n`.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// All the route's limits at once.
    pub fn limits(mut self, limits: RouteLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Largest blksize granted on this route (RFC 2348).
    pub fn max_blksize(mut self, blksize: u16) -> Self {
        self.limits.max_blksize = Some(blksize);
        self
    }

    /// Largest windowsize granted on this route (RFC 7440).
    pub fn max_windowsize(mut self, windowsize: u16) -> Self {
        self.limits.max_windowsize = Some(windowsize);
        self
    }

    /// Largest upload accepted on this route, in bytes (ERROR 3 beyond).
    pub fn max_upload(mut self, bytes: u64) -> Self {
        self.limits.max_upload = Some(bytes);
        self
    }

    /// Concurrent requests for the same file name share one handler call
    /// and one body, kept for `keep` after it is done, with the default
    /// bounds: the same as `#[route_read("…", share_for = "2s")]`. A read
    /// route only; [`sharing`](Self::sharing) sets the bounds too.
    ///
    /// The handler must not depend on the client (its address, port, trace
    /// context or options): all the clients of one name get the body of the
    /// first. See [`Sharing`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::time::Duration;
    /// use emmer::{App, Request, RoutePattern};
    /// use emmer::testing::TestServer;
    ///
    /// static CALLS: AtomicUsize = AtomicUsize::new(0);
    /// let app = App::empty().route_read(
    ///     RoutePattern::new(r"menu/(?P<site>\w+)\.ipxe").share_for(Duration::from_secs(2)),
    ///     |req: &Request| {
    ///         CALLS.fetch_add(1, Ordering::SeqCst);
    ///         format!("#!ipxe\necho {}\n", req.capture("site").unwrap())
    ///     },
    /// );
    /// let server = TestServer::start(app).await;
    /// let first = server.client().get("menu/lab.ipxe").await.unwrap();
    /// let again = server.client().get("menu/lab.ipxe").await.unwrap();
    /// assert_eq!((&first[..], &again[..]), (&b"#!ipxe\necho lab\n"[..], &first[..]));
    /// assert_eq!(CALLS.load(Ordering::SeqCst), 1, "kept for 2 s");
    /// # }
    /// ```
    pub fn share_for(self, keep: Duration) -> Self {
        self.sharing(Sharing::new(keep))
    }

    /// Shares the route's bodies as `sharing` says (see [`Sharing`]).
    pub fn sharing(mut self, sharing: Sharing) -> Self {
        self.sharing = Some(sharing);
        self
    }
}

impl From<&str> for RoutePattern {
    fn from(pattern: &str) -> Self {
        Self::new(pattern)
    }
}

impl From<String> for RoutePattern {
    fn from(pattern: String) -> Self {
        Self::new(pattern)
    }
}

impl From<&String> for RoutePattern {
    fn from(pattern: &String) -> Self {
        Self::new(pattern.as_str())
    }
}

/// Binds a request to a handler whose call is `C`, or says the route does
/// not match after all (a capture did not convert).
pub(crate) type Bind<C> = Arc<dyn Fn(&Request) -> Result<C, NoMatch> + Send + Sync>;
pub(crate) type ReadHandler = Bind<ReadCall>;
pub(crate) type WriteHandler = Bind<WriteCall>;

/// What a route binds requests to; the variant is the route's kind.
#[derive(Clone)]
pub(crate) enum Handler {
    Read(ReadHandler),
    Write(WriteHandler),
}

impl Handler {
    fn kind(&self) -> Kind {
        match self {
            Handler::Read(_) => Kind::Read,
            Handler::Write(_) => Kind::Write,
        }
    }
}

/// Where a route came from, for ordering and messages.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Origin {
    Macro(Location),
    Builder(usize),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Macro(l) => l.fmt(f),
            Origin::Builder(i) => write!(f, "App builder route #{}", i + 1),
        }
    }
}

/// A route before the table is built.
#[derive(Clone)]
pub(crate) struct RouteSpec {
    pattern: String,
    priority: i32,
    pub(crate) limits: RouteLimits,
    pub(crate) sharing: Option<Sharing>,
    pub(crate) transports: Transports,
    name: String,
    origin: Origin,
    /// The module of a macro route's function.
    module: Option<&'static str>,
    /// What a macro route's extractors need (see `RouteDef::needs`).
    needs: &'static [fn() -> Option<Need>],
    handler: Handler,
}

impl RouteSpec {
    pub(crate) fn from_def(def: &'static RouteDef) -> Self {
        let handler = match def.handler {
            RouteFn::Read(f) => Handler::Read(Arc::new(f)),
            RouteFn::Write(f) => Handler::Write(Arc::new(f)),
        };
        Self {
            pattern: def.pattern.to_owned(),
            priority: def.priority,
            limits: def.limits,
            sharing: def.sharing,
            transports: def.transports,
            name: def.name.to_owned(),
            origin: Origin::Macro(def.location),
            module: Some(def.module),
            needs: def.needs,
            handler,
        }
    }

    /// The function's path, `module::name`, of a macro route.
    pub(crate) fn path(&self) -> Option<String> {
        self.module.map(|m| format!("{m}::{}", self.name))
    }

    /// Whether this is the same macro route as `other`.
    pub(crate) fn same_macro_route(&self, other: &RouteSpec) -> bool {
        matches!((&self.origin, &other.origin), (Origin::Macro(a), Origin::Macro(b)) if a == b)
            && self.kind() == other.kind()
    }

    /// Checks that the app has what the route's extractors need.
    pub(crate) fn check_needs(&self, state: &StateMap) -> Result<(), Error> {
        for need in self.needs.iter().filter_map(|f| f()) {
            if !state.contains(need.type_id) {
                return Err(Error::MissingState {
                    route: self.name.clone(),
                    location: self.origin.to_string(),
                    type_name: need.type_name,
                });
            }
        }
        Ok(())
    }

    pub(crate) fn builder(pattern: String, priority: i32, index: usize, handler: Handler) -> Self {
        Self {
            name: format!("{} route {pattern:?}", handler.kind().as_str()),
            pattern,
            priority,
            limits: RouteLimits::default(),
            sharing: None,
            transports: Transports::ALL,
            origin: Origin::Builder(index),
            module: None,
            needs: &[],
            handler,
        }
    }

    /// The same route under another name (in logs and transfer events).
    pub(crate) fn named(mut self, name: String) -> Self {
        self.name = name;
        self
    }

    fn kind(&self) -> Kind {
        self.handler.kind()
    }

    fn info(&self) -> RouteInfo {
        RouteInfo {
            kind: self.kind(),
            pattern: self.pattern.clone(),
            priority: self.priority,
            transports: self.transports,
            name: self.name.clone(),
            location: self.origin.to_string(),
        }
    }
}

impl fmt::Debug for RouteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteSpec")
            .field("kind", &self.kind())
            .field("pattern", &self.pattern)
            .field("priority", &self.priority)
            .field("transports", &self.transports)
            .field("name", &self.name)
            .field("origin", &self.origin.to_string())
            .finish()
    }
}

/// The route that took a request, as its transfer reports it.
#[derive(Debug)]
pub(crate) struct RouteId {
    pub(crate) name: Arc<str>,
    pub(crate) pattern: Arc<str>,
}

/// One compiled route of a table, its handler typed by the table's kind.
struct Route<H> {
    info: RouteInfo,
    id: Arc<RouteId>,
    limits: RouteLimits,
    /// The bodies a read route shares, when it does.
    shared: Option<Arc<SharedBodies>>,
    transports: Transports,
    regex: Regex,
    /// The names of the pattern's capture groups, shared by every request.
    groups: Vec<Arc<str>>,
    handler: H,
}

/// The routes of one kind, in order, and one set to match them all at once.
struct Table<H> {
    set: RegexSet,
    routes: Vec<Route<H>>,
}

/// A route as listed by [`RouteTable::routes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// Read or write.
    pub kind: Kind,
    /// The pattern as written.
    pub pattern: String,
    /// The priority.
    pub priority: i32,
    /// The transports it serves.
    pub transports: Transports,
    /// The handler's name.
    pub name: String,
    /// Where it was declared.
    pub location: String,
}

/// The routes of a server, sorted and compiled once at start-up.
pub struct RouteTable {
    read: Table<ReadHandler>,
    write: Table<WriteHandler>,
}

impl fmt::Debug for RouteTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.routes()).finish()
    }
}

/// The route that took a request, and its handler bound to the request as
/// that route sees it (with its captures).
pub(crate) struct Dispatch<C> {
    pub(crate) route: Arc<RouteId>,
    pub(crate) limits: RouteLimits,
    pub(crate) call: C,
}

impl RouteTable {
    /// Builds the table from route specs in any order.
    pub(crate) fn build(mut specs: Vec<RouteSpec>) -> Result<Self, Error> {
        specs.sort_by(|a, b| {
            (Reverse(a.priority), &a.origin).cmp(&(Reverse(b.priority), &b.origin))
        });
        for (i, a) in specs.iter().enumerate() {
            if let Some(b) = specs[..i].iter().find(|b| {
                b.kind() == a.kind()
                    && b.pattern == a.pattern
                    && b.transports.intersects(a.transports)
            }) {
                return Err(Error::DuplicateRoute {
                    kind: a.kind().as_str(),
                    pattern: a.pattern.clone(),
                    first: b.origin.to_string(),
                    second: a.origin.to_string(),
                });
            }
        }
        let mut read = Vec::new();
        let mut write = Vec::new();
        for spec in specs {
            match spec.handler.clone() {
                Handler::Write(_) if spec.sharing.is_some() => {
                    return Err(Error::Config {
                        setting: "route sharing (RoutePattern::sharing)".into(),
                        message: format!(
                            "the write route {:?} ({}) shares bodies, which only read routes have; remove the sharing",
                            spec.pattern, spec.origin
                        ),
                    });
                }
                Handler::Read(h) => read.push(Route::compile(spec, h)?),
                Handler::Write(h) => write.push(Route::compile(spec, h)?),
            }
        }
        Ok(Self {
            read: Table::new(read)?,
            write: Table::new(write)?,
        })
    }

    /// The routes in the order they are tried: reads first, then writes.
    pub fn routes(&self) -> Vec<RouteInfo> {
        let read = self.read.routes.iter().map(|r| r.info.clone());
        read.chain(self.write.routes.iter().map(|r| r.info.clone()))
            .collect()
    }

    /// Finds the read route for a request and binds it.
    ///
    /// # Errors
    ///
    /// ERROR 1 (file not found) when no read route takes it.
    pub(crate) fn dispatch_read(&self, req: &Request) -> Result<Dispatch<ReadCall>, TftpError> {
        let (mut d, shared) = self
            .read
            .dispatch(req)
            .ok_or_else(|| TftpError::not_found("file not found"))?;
        if let Some(shared) = shared {
            d.call = shared.call(req, d.call);
        }
        Ok(d)
    }

    /// Finds the write route for a request and binds it.
    ///
    /// # Errors
    ///
    /// ERROR 2 (access violation) when no write route takes it.
    pub(crate) fn dispatch_write(&self, req: &Request) -> Result<Dispatch<WriteCall>, TftpError> {
        self.write
            .dispatch(req)
            .map(|(d, _)| d)
            .ok_or_else(|| TftpError::access_violation("writing this file is not allowed"))
    }
}

impl<C> Route<Bind<C>> {
    fn compile(spec: RouteSpec, handler: Bind<C>) -> Result<Self, Error> {
        let anchored = format!("^(?:{})$", spec.pattern);
        let regex = Regex::new(&anchored).map_err(|e| Error::Pattern {
            pattern: spec.pattern.clone(),
            location: spec.origin.to_string(),
            message: e.to_string(),
        })?;
        let groups = regex.capture_names().flatten().map(Arc::from).collect();
        Ok(Route {
            info: spec.info(),
            id: Arc::new(RouteId {
                name: Arc::from(spec.name.as_str()),
                pattern: Arc::from(spec.pattern.as_str()),
            }),
            limits: spec.limits,
            shared: spec.sharing.map(SharedBodies::new),
            transports: spec.transports,
            regex,
            groups,
            handler,
        })
    }
}

impl<C> Table<Bind<C>> {
    fn new(routes: Vec<Route<Bind<C>>>) -> Result<Self, Error> {
        let set =
            RegexSet::new(routes.iter().map(|r| r.regex.as_str())).map_err(|e| Error::Config {
                setting: "routes".into(),
                message: format!("the route patterns cannot be combined: {e}"),
            })?;
        Ok(Self { set, routes })
    }

    /// The first route in order whose pattern matches and whose captures
    /// convert, with its shared bodies; `None` when there is none.
    fn dispatch(&self, req: &Request) -> Option<(Dispatch<C>, Option<&Arc<SharedBodies>>)> {
        let name = req.filename();
        for index in self.set.matches(name).iter() {
            let route = &self.routes[index];
            if !route.transports.contains(req.transport()) {
                continue;
            }
            let Some(caps) = route.regex.captures(name) else {
                continue;
            };
            let captures: Arc<[Capture]> = route
                .groups
                .iter()
                .map(|g| (g.clone(), caps.name(g).map(|m| m.as_str().to_owned())))
                .collect();
            let request = req.with_captures(captures);
            if let Ok(call) = (route.handler)(&request) {
                let d = Dispatch {
                    route: route.id.clone(),
                    limits: route.limits,
                    call,
                };
                return Some((d, route.shared.as_ref()));
            }
        }
        None
    }
}

/// The routes submitted by `#[route_read]` and `#[route_write]` in this
/// program.
pub(crate) fn registered() -> Vec<RouteSpec> {
    inventory::iter::<RouteDef>
        .into_iter()
        .map(RouteSpec::from_def)
        .collect()
}

#[cfg(test)]
mod tests;
