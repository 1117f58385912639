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

use regex::{Regex, RegexSet};

use crate::__private::{Location, Need, NoMatch, ReadCall, RouteDef, RouteFn, WriteCall};
use crate::handler::{Capture, Request, StateMap, Transport};
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

/// A builder route's pattern with its priority and limits: what
/// `#[route_read("…", priority = 10, max_blksize = 1428)]` says for a macro
/// route, for [`App::route_read`](crate::App::route_read) and the other
/// builder methods. A plain `&str` or `String` converts into one with
/// priority 0 and no limits.
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
    pub(crate) transports: Transports,
}

impl RoutePattern {
    /// A regex that must match the whole file name; priority 0, no limits.
    pub fn new(pattern: impl Into<String>) -> Self {
        Self {
            pattern: pattern.into(),
            priority: 0,
            limits: RouteLimits::default(),
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
        self.read
            .dispatch(req)
            .ok_or_else(|| TftpError::not_found("file not found"))
    }

    /// Finds the write route for a request and binds it.
    ///
    /// # Errors
    ///
    /// ERROR 2 (access violation) when no write route takes it.
    pub(crate) fn dispatch_write(&self, req: &Request) -> Result<Dispatch<WriteCall>, TftpError> {
        self.write
            .dispatch(req)
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
    /// convert; `None` when there is none.
    fn dispatch(&self, req: &Request) -> Option<Dispatch<C>> {
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
                return Some(Dispatch {
                    route: route.id.clone(),
                    limits: route.limits,
                    call,
                });
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
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn def(
        kind: Kind,
        pattern: &'static str,
        priority: i32,
        file: &'static str,
        line: u32,
    ) -> RouteSpec {
        fn read(_: &Request) -> Result<ReadCall, NoMatch> {
            Ok(ReadCall::reject(TftpError::undefined("test")))
        }
        fn write(_: &Request) -> Result<WriteCall, NoMatch> {
            Ok(WriteCall::reject(TftpError::undefined("test")))
        }
        RouteSpec::from_def(Box::leak(Box::new(RouteDef {
            pattern,
            priority,
            limits: RouteLimits::default(),
            transports: Transports::ALL,
            name: "handler",
            location: Location::new(file, line, 1),
            module: "tests",
            needs: &[],
            handler: match kind {
                Kind::Read => RouteFn::Read(read),
                Kind::Write => RouteFn::Write(write),
            },
        })))
    }

    fn never() -> Handler {
        Handler::Read(Arc::new(|_: &Request| Err(NoMatch)))
    }

    fn order(table: &RouteTable) -> Vec<String> {
        table
            .routes()
            .into_iter()
            .map(|r| format!("{} {}", r.kind.as_str(), r.pattern))
            .collect()
    }

    /// A small deterministic shuffle (xorshift), so the test needs no crate.
    fn shuffle<T>(v: &mut [T], mut seed: u64) {
        for i in (1..v.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            v.swap(i, (seed % (i as u64 + 1)) as usize);
        }
    }

    #[test]
    fn order_is_priority_then_file_then_line_whatever_the_input_order() {
        let specs = vec![
            def(Kind::Read, "a", 0, "src/b.rs", 10),
            def(Kind::Read, "b", 0, "src/a.rs", 20),
            def(Kind::Read, "c", 0, "src/a.rs", 5),
            def(Kind::Read, "d", 5, "src/z.rs", 1),
            def(Kind::Read, "e", -1, "src/a.rs", 1),
            def(Kind::Write, "f", 0, "src/a.rs", 30),
            RouteSpec::builder("g".into(), 0, 0, never()),
            RouteSpec::builder("h".into(), 0, 1, never()),
        ];
        let expected = vec![
            "read d", "read c", "read b", "read a", "read g", "read h", "read e", "write f",
        ];
        for seed in 1..50u64 {
            let mut s = specs.clone();
            shuffle(&mut s, seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let table = RouteTable::build(s).unwrap();
            assert_eq!(order(&table), expected, "seed {seed}");
        }
    }

    #[test]
    fn duplicate_route_names_both_places() {
        let err = RouteTable::build(vec![
            def(Kind::Read, "x.*", 0, "src/one.rs", 3),
            def(Kind::Write, "x.*", 0, "src/one.rs", 4),
            def(Kind::Read, "x.*", 0, "src/two.rs", 9),
        ])
        .expect_err("duplicate read routes must be refused");
        let msg = err.to_string();
        assert!(
            msg.contains("src/one.rs:3:1") && msg.contains("src/two.rs:9:1"),
            "{msg}"
        );
        assert!(msg.contains("read") && msg.contains("\"x.*\""), "{msg}");
    }

    #[test]
    fn one_pattern_may_have_a_route_per_transport() {
        let with = |t: Transports| {
            let mut r = RouteSpec::builder("x".into(), 0, 0, never());
            r.transports = t;
            r
        };
        assert!(RouteTable::build(vec![with(Transports::TFTP), with(Transports::HTTP)]).is_ok());
        for (a, b) in [
            (Transports::ALL, Transports::HTTP),
            (Transports::TFTP, Transports::TFTP),
        ] {
            let err = RouteTable::build(vec![with(a), with(b)]).err();
            assert!(
                matches!(err, Some(Error::DuplicateRoute { .. })),
                "{a} and {b}"
            );
        }
    }

    #[tokio::test]
    async fn a_route_kept_to_one_transport_is_not_seen_by_the_other() {
        let mut tftp = tagged(Kind::Read, "boot/.*", "tftp only", 0);
        tftp.transports = Transports::TFTP;
        let table = RouteTable::build(vec![tftp, tagged(Kind::Read, ".*", "any", 1)]).unwrap();
        let tag = |t: Transport| {
            let d = table.dispatch_read(&Request::builder("boot/x").transport(t).build());
            async move {
                d.unwrap()
                    .call
                    .run()
                    .await
                    .unwrap_err()
                    .message()
                    .to_owned()
            }
        };
        assert_eq!(tag(Transport::Tftp).await, "tftp only");
        assert_eq!(
            tag(Transport::Http).await,
            "any",
            "falls through to the next route"
        );
    }

    #[test]
    fn invalid_builder_pattern_is_a_startup_error() {
        let err = RouteTable::build(vec![RouteSpec::builder("(".into(), 0, 0, never())])
            .expect_err("an invalid regex must be refused");
        assert!(err.to_string().contains("App builder route #1"), "{err}");
    }

    /// A route that answers with an error carrying `tag`, so a test can
    /// see which route took a request.
    fn tagged(kind: Kind, pattern: &str, tag: &'static str, index: usize) -> RouteSpec {
        // A capture named `n` must be a number, or the route does not match.
        fn numeric(req: &Request) -> Result<(), NoMatch> {
            match req.capture("n") {
                Some(n) => n.parse::<u32>().map(drop).map_err(|_| NoMatch),
                None => Ok(()),
            }
        }
        let handler = match kind {
            Kind::Read => Handler::Read(Arc::new(move |req: &Request| {
                numeric(req)?;
                Ok(ReadCall::reject(TftpError::undefined(tag)))
            })),
            Kind::Write => Handler::Write(Arc::new(move |req: &Request| {
                numeric(req)?;
                Ok(WriteCall::reject(TftpError::undefined(tag)))
            })),
        };
        RouteSpec::builder(pattern.into(), 0, index, handler)
    }

    async fn read_tag(table: &RouteTable, name: &str) -> Result<String, TftpError> {
        let d = table.dispatch_read(&Request::builder(name).build())?;
        Ok(d.call.run().await.unwrap_err().message().to_owned())
    }

    async fn write_tag(table: &RouteTable, name: &str) -> Result<String, TftpError> {
        let d = table.dispatch_write(&Request::builder(name).build())?;
        let verdict = d.call.start(crate::Upload::from_bytes("")).await.unwrap();
        Ok(verdict.unwrap_err().message().to_owned())
    }

    #[tokio::test]
    async fn patterns_match_the_whole_name_and_failed_captures_fall_through() {
        let table = RouteTable::build(vec![
            tagged(Kind::Read, r"boot/(?P<n>\w+)\.cfg", "numbered", 0),
            tagged(Kind::Read, r"boot/.*", "any", 1),
            tagged(Kind::Write, r"up/.*", "upload", 2),
        ])
        .unwrap();
        assert_eq!(read_tag(&table, "boot/7.cfg").await.unwrap(), "numbered");
        // The capture does not parse as u32: the next route takes it.
        assert_eq!(read_tag(&table, "boot/x.cfg").await.unwrap(), "any");
        // Not anchored at the start or the end: no match.
        let e = read_tag(&table, "x/boot/7.cfg").await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::FileNotFound);
        assert_eq!(read_tag(&table, "boot/7.cfg.bak").await.unwrap(), "any");
        let e = read_tag(&table, "up/a").await.unwrap_err();
        assert_eq!(
            e.code(),
            ErrorCode::FileNotFound,
            "a write route does not serve reads"
        );
        let e = write_tag(&table, "boot/7.cfg").await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::AccessViolation);
        assert!(
            !e.message().contains("127.0.0.1"),
            "no client address in {e}"
        );
        assert_eq!(write_tag(&table, "up/a").await.unwrap(), "upload");
    }

    #[tokio::test]
    async fn the_request_a_route_sees_has_its_captures_and_shares_the_rest() {
        let pattern = r"(?P<dir>\w+)/(?P<n>\d+)(?P<ext>\.cfg)?";
        let seen = Handler::Read(Arc::new(|req: &Request| {
            let req = req.clone();
            Ok(ReadCall::blocking(move || {
                let caps: Vec<String> = req
                    .captures()
                    .map(|(k, v)| format!("{k}={}", v.unwrap_or("-")))
                    .collect();
                format!(
                    "{} {}",
                    caps.join(","),
                    req.option("BLKSIZE").unwrap_or("?")
                )
            }))
        }));
        let table =
            RouteTable::build(vec![RouteSpec::builder(pattern.into(), 0, 0, seen)]).unwrap();
        let req = Request::builder("boot/42")
            .option("blksize", "1428")
            .build();
        let d = table.dispatch_read(&req).unwrap();
        assert_eq!(*d.route.name, format!("read route {pattern:?}"));
        assert_eq!(*d.route.pattern, *pattern);
        let body = d.call.run().await.unwrap();
        let crate::handler::response::BodyKind::Bytes(b) = body.kind else {
            panic!("a string body is bytes")
        };
        assert_eq!(&b[..], b"dir=boot,n=42,ext=- 1428");
    }
}
