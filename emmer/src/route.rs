//! Routes: what the macros submit ([`RouteDef`]) and the table built from
//! them at start-up ([`RouteTable`]).
//!
//! # Order
//!
//! `inventory` yields routes in no particular order, so the table sorts them
//! once, at start-up:
//!
//! 1. higher `priority` first (`#[route_read("…", priority = 10)]`; default 0);
//! 2. then routes declared with the macros, by source file path, then by line
//!    and column, so within a file the first declared is tried first;
//! 3. then routes added with [`App::route_read`](crate::App::route_read) and
//!    [`App::route_write`](crate::App::route_write), in the order added.
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

use std::cmp::Reverse;
use std::fmt;
use std::sync::Arc;

use regex::{Regex, RegexSet};

use crate::handler::{NoMatch, Prepared, Request};
use crate::{Error, TftpError};

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

/// Where a route was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Source file, as `file!()` gives it.
    pub file: &'static str,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
}

impl Location {
    /// A location, as the macros build it from `file!()`, `line!()`, `column!()`.
    pub const fn new(file: &'static str, line: u32, column: u32) -> Self {
        Self { file, line, column }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Limits of one route, tighter than the server's [`Config`](crate::Config).
///
/// With the macros: `#[route_read("…", max_blksize = 1428, max_windowsize = 8)]`,
/// `#[route_write("…", max_upload = 1048576)]`; on the builder:
/// [`App::limits`](crate::App::limits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteLimits {
    /// Largest blksize granted on this route.
    pub max_blksize: Option<u16>,
    /// Largest windowsize granted on this route.
    pub max_windowsize: Option<u16>,
    /// Largest upload accepted on this route, in bytes (ERROR 3 beyond).
    pub max_upload: Option<u64>,
}

/// The function a route calls to bind a request to its handler.
pub type PrepareFn = fn(&Request) -> Result<Prepared, NoMatch>;

/// A route as `#[route_read]` / `#[route_write]` submit it.
#[derive(Debug)]
pub struct RouteDef {
    /// Read or write.
    pub kind: Kind,
    /// The regex, as written.
    pub pattern: &'static str,
    /// Higher is tried first.
    pub priority: i32,
    /// Limits of this route.
    pub limits: RouteLimits,
    /// The handler's name.
    pub name: &'static str,
    /// Where the route was declared.
    pub location: Location,
    /// Binds a request to the handler.
    pub prepare: PrepareFn,
}

inventory::collect!(RouteDef);

type DynPrepare = Arc<dyn Fn(&Request) -> Result<Prepared, NoMatch> + Send + Sync>;

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
    kind: Kind,
    pattern: String,
    priority: i32,
    pub(crate) limits: RouteLimits,
    name: String,
    origin: Origin,
    prepare: DynPrepare,
}

impl RouteSpec {
    pub(crate) fn from_def(def: &'static RouteDef) -> Self {
        Self {
            kind: def.kind,
            pattern: def.pattern.to_owned(),
            priority: def.priority,
            limits: def.limits,
            name: def.name.to_owned(),
            origin: Origin::Macro(def.location),
            prepare: Arc::new(def.prepare),
        }
    }

    pub(crate) fn builder(
        kind: Kind,
        pattern: String,
        priority: i32,
        index: usize,
        prepare: DynPrepare,
    ) -> Self {
        Self {
            kind,
            name: format!("{} route {pattern:?}", kind.as_str()),
            pattern,
            priority,
            limits: RouteLimits::default(),
            origin: Origin::Builder(index),
            prepare,
        }
    }
}

impl fmt::Debug for RouteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteSpec")
            .field("kind", &self.kind)
            .field("pattern", &self.pattern)
            .field("priority", &self.priority)
            .field("name", &self.name)
            .field("origin", &self.origin.to_string())
            .finish()
    }
}

struct Route {
    spec: RouteSpec,
    regex: Regex,
}

struct Table {
    set: RegexSet,
    routes: Vec<Route>,
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
    /// The handler's name.
    pub name: String,
    /// Where it was declared.
    pub location: String,
}

/// The routes of a server, sorted and compiled once at start-up.
pub struct RouteTable {
    read: Table,
    write: Table,
}

impl fmt::Debug for RouteTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.routes()).finish()
    }
}

/// The route that took a request, and what to run.
pub(crate) struct Dispatch {
    pub(crate) route: Arc<str>,
    pub(crate) limits: RouteLimits,
    pub(crate) prepared: Prepared,
}

impl RouteTable {
    /// Builds the table from route specs in any order.
    pub(crate) fn build(mut specs: Vec<RouteSpec>) -> Result<Self, Error> {
        specs.sort_by(|a, b| {
            (Reverse(a.priority), &a.origin).cmp(&(Reverse(b.priority), &b.origin))
        });
        for (i, a) in specs.iter().enumerate() {
            if let Some(b) = specs[..i]
                .iter()
                .find(|b| b.kind == a.kind && b.pattern == a.pattern)
            {
                return Err(Error::DuplicateRoute {
                    kind: a.kind.as_str(),
                    pattern: a.pattern.clone(),
                    first: b.origin.to_string(),
                    second: a.origin.to_string(),
                });
            }
        }
        let (read, write): (Vec<_>, Vec<_>) = specs.into_iter().partition(|s| s.kind == Kind::Read);
        Ok(Self {
            read: Table::build(read)?,
            write: Table::build(write)?,
        })
    }

    /// The routes in the order they are tried: reads first, then writes.
    pub fn routes(&self) -> Vec<RouteInfo> {
        self.read
            .routes
            .iter()
            .chain(&self.write.routes)
            .map(|r| RouteInfo {
                kind: r.spec.kind,
                pattern: r.spec.pattern.clone(),
                priority: r.spec.priority,
                name: r.spec.name.clone(),
                location: r.spec.origin.to_string(),
            })
            .collect()
    }

    /// Finds the route for a request and binds it.
    ///
    /// # Errors
    ///
    /// ERROR 1 for a read and ERROR 2 for a write that no route takes.
    pub(crate) fn dispatch(&self, kind: Kind, req: &Request) -> Result<Dispatch, TftpError> {
        let table = match kind {
            Kind::Read => &self.read,
            Kind::Write => &self.write,
        };
        let name = req.filename();
        for index in table.set.matches(name).iter() {
            let route = &table.routes[index];
            let Some(caps) = route.regex.captures(name) else {
                continue;
            };
            let captures = route
                .regex
                .capture_names()
                .flatten()
                .map(|n| (n.to_owned(), caps.name(n).map(|m| m.as_str().to_owned())))
                .collect();
            let request = req.with_captures(captures);
            match (route.spec.prepare)(&request) {
                Ok(prepared) => {
                    return Ok(Dispatch {
                        route: Arc::from(route.spec.name.as_str()),
                        limits: route.spec.limits,
                        prepared,
                    });
                }
                Err(NoMatch) => continue,
            }
        }
        Err(match kind {
            Kind::Read => TftpError::not_found("file not found"),
            Kind::Write => TftpError::access_violation("writing this file is not allowed"),
        })
    }
}

impl Table {
    fn build(specs: Vec<RouteSpec>) -> Result<Self, Error> {
        let mut routes = Vec::with_capacity(specs.len());
        for spec in specs {
            let anchored = format!("^(?:{})$", spec.pattern);
            let regex = Regex::new(&anchored).map_err(|e| Error::Pattern {
                pattern: spec.pattern.clone(),
                location: spec.origin.to_string(),
                message: e.to_string(),
            })?;
            routes.push(Route { spec, regex });
        }
        let set =
            RegexSet::new(routes.iter().map(|r| r.regex.as_str())).map_err(|e| Error::Config {
                setting: "routes".into(),
                message: format!("the route patterns cannot be combined: {e}"),
            })?;
        Ok(Self { set, routes })
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
        fn prepare(_: &Request) -> Result<Prepared, NoMatch> {
            Ok(Prepared::Reject(TftpError::undefined("test")))
        }
        RouteSpec::from_def(Box::leak(Box::new(RouteDef {
            kind,
            pattern,
            priority,
            limits: RouteLimits::default(),
            name: "handler",
            location: Location::new(file, line, 1),
            prepare,
        })))
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
            RouteSpec::builder(
                Kind::Read,
                "g".into(),
                0,
                0,
                Arc::new(|_: &Request| Err(NoMatch)),
            ),
            RouteSpec::builder(
                Kind::Read,
                "h".into(),
                0,
                1,
                Arc::new(|_: &Request| Err(NoMatch)),
            ),
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
    fn invalid_builder_pattern_is_a_startup_error() {
        let err = RouteTable::build(vec![RouteSpec::builder(
            Kind::Read,
            "(".into(),
            0,
            0,
            Arc::new(|_: &Request| Err(NoMatch)),
        )])
        .expect_err("an invalid regex must be refused");
        assert!(err.to_string().contains("App builder route #1"), "{err}");
    }

    fn tagged(kind: Kind, pattern: &str, tag: &'static str, index: usize) -> RouteSpec {
        RouteSpec::builder(
            kind,
            pattern.into(),
            0,
            index,
            Arc::new(move |req: &Request| {
                // A capture named `n` must be a number, or the route does not match.
                if let Some(n) = req.capture("n") {
                    n.parse::<u32>().map_err(|_| NoMatch)?;
                }
                Ok(Prepared::Reject(TftpError::undefined(tag)))
            }),
        )
    }

    fn tag_of(d: Result<Dispatch, TftpError>) -> Result<String, TftpError> {
        d.map(|d| match d.prepared {
            Prepared::Reject(e) => e.message().to_owned(),
            _ => unreachable!("test routes reject"),
        })
    }

    #[test]
    fn patterns_match_the_whole_name_and_failed_captures_fall_through() {
        let table = RouteTable::build(vec![
            tagged(Kind::Read, r"boot/(?P<n>\w+)\.cfg", "numbered", 0),
            tagged(Kind::Read, r"boot/.*", "any", 1),
            tagged(Kind::Write, r"up/.*", "upload", 2),
        ])
        .unwrap();
        let req = |name: &str| Request::builder(name).build();
        assert_eq!(
            tag_of(table.dispatch(Kind::Read, &req("boot/7.cfg"))).unwrap(),
            "numbered"
        );
        // The capture does not parse as u32: the next route takes it.
        assert_eq!(
            tag_of(table.dispatch(Kind::Read, &req("boot/x.cfg"))).unwrap(),
            "any"
        );
        // Not anchored at the start or the end: no match.
        let e = tag_of(table.dispatch(Kind::Read, &req("x/boot/7.cfg"))).unwrap_err();
        assert_eq!(e.code(), ErrorCode::FileNotFound);
        assert_eq!(
            tag_of(table.dispatch(Kind::Read, &req("boot/7.cfg.bak"))).unwrap(),
            "any"
        );
        let e = tag_of(table.dispatch(Kind::Read, &req("up/a"))).unwrap_err();
        assert_eq!(
            e.code(),
            ErrorCode::FileNotFound,
            "a write route does not serve reads"
        );
        let e = tag_of(table.dispatch(Kind::Write, &req("boot/7.cfg"))).unwrap_err();
        assert_eq!(e.code(), ErrorCode::AccessViolation);
        assert!(
            !e.message().contains("127.0.0.1"),
            "no client address in {e}"
        );
        assert_eq!(
            tag_of(table.dispatch(Kind::Write, &req("up/a"))).unwrap(),
            "upload"
        );
    }
}
