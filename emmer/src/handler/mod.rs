//! Handlers: what a route calls, what it may take and what it may return.
//!
//! A handler is an ordinary function. `#[route_read]` and `#[route_write]`
//! bind its parameters by name (`client_host`, `client_port`, `filename`,
//! `mode`, `data`, and the named capture groups of the pattern) and by type
//! (anything that implements [`FromRequest`]), and convert what it returns
//! with [`IntoReadResponse`] or [`IntoWriteResponse`].

pub(crate) mod call;
mod extract;
pub(crate) mod response;
pub(crate) mod shared;
mod trace;
pub(crate) mod upload;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

pub use extract::{FromRequest, Peer, State};
pub use response::{IntoReadResponse, IntoWriteResponse, ReadBody};
pub use shared::Sharing;
pub use trace::Traceparent;
pub use upload::{SaveAtomic, Upload};

use crate::proto::Mode;

/// One request, as a handler sees it.
///
/// Cheap to clone (the data is shared).
///
/// # Examples
///
/// ```
/// use emmer::Request;
/// let req = Request::builder("pxelinux.cfg/default").build();
/// assert_eq!(req.filename(), "pxelinux.cfg/default");
/// assert_eq!(req.peer().ip().to_string(), "127.0.0.1");
/// ```
#[derive(Clone)]
pub struct Request {
    inner: Arc<Inner>,
    /// The named groups of the route that took the request, set by the route
    /// table (empty before).
    captures: Arc<[Capture]>,
}

/// A named capture group and its text, if it took part in the match.
pub(crate) type Capture = (Arc<str>, Option<String>);

struct Inner {
    transport: Transport,
    peer: SocketAddr,
    local: SocketAddr,
    filename: String,
    mode: Mode,
    options: Vec<(String, String)>,
    state: Arc<StateMap>,
    /// The W3C trace context at the end of the file name, if any.
    traceparent: Option<Traceparent>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("transport", &self.inner.transport)
            .field("peer", &self.inner.peer)
            .field("local", &self.inner.local)
            .field("filename", &self.inner.filename)
            .field("mode", &self.inner.mode)
            .field("options", &self.inner.options)
            .field("captures", &self.captures)
            .finish_non_exhaustive()
    }
}

impl Request {
    /// Starts building a request, for tests of handlers and extractors.
    /// Defaults: TFTP, peer 127.0.0.1:50000, local 127.0.0.1:3942, octet
    /// mode.
    pub fn builder(filename: impl Into<String>) -> RequestBuilder {
        RequestBuilder {
            transport: Transport::Tftp,
            peer: SocketAddr::from(([127, 0, 0, 1], 50000)),
            local: SocketAddr::from(([127, 0, 0, 1], 3942)),
            filename: filename.into(),
            mode: Mode::Octet,
            options: Vec::new(),
            captures: Vec::new(),
            state: Arc::new(StateMap::default()),
        }
    }

    /// Which protocol carried the request: TFTP, or HTTP (with the `http`
    /// feature, see [`App::http`](crate::App::http)). Handlers can also
    /// take it as a parameter of type [`Transport`].
    ///
    /// # Examples
    ///
    /// ```
    /// use emmer::{Request, Transport};
    /// let req = Request::builder("boot.ipxe").transport(Transport::Http).build();
    /// assert_eq!(req.transport(), Transport::Http);
    /// ```
    pub fn transport(&self) -> Transport {
        self.inner.transport
    }

    /// The client's address and port (over HTTP, the TCP peer's).
    pub fn peer(&self) -> SocketAddr {
        self.inner.peer
    }

    /// The client's address.
    pub fn client_host(&self) -> IpAddr {
        self.inner.peer.ip()
    }

    /// The client's port (over TFTP its transfer ID, over HTTP the TCP
    /// connection's port).
    pub fn client_port(&self) -> u16 {
        self.inner.peer.port()
    }

    /// The server address the request arrived on.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// The file name as the client sent it.
    pub fn filename(&self) -> &str {
        &self.inner.filename
    }

    /// The transfer mode ([`Mode::Octet`] over HTTP).
    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    /// The options the client asked for (RFC 2347), names as sent (none
    /// over HTTP).
    pub fn options(&self) -> &[(String, String)] {
        &self.inner.options
    }

    /// The W3C `traceparent` appended to the file name (see
    /// [`Traceparent`]), if there is one.
    pub fn traceparent(&self) -> Option<&Traceparent> {
        self.inner.traceparent.as_ref()
    }

    /// The request as routes see it with
    /// [`App::strip_traceparent`](crate::App::strip_traceparent): the file
    /// name without its `traceparent`.
    pub(crate) fn without_traceparent(&self) -> Request {
        let Some(t) = &self.inner.traceparent else {
            return self.clone();
        };
        let name = self.inner.filename.strip_suffix(&t.to_string());
        let Some(name) = name.and_then(|n| n.strip_suffix('-')) else {
            return self.clone();
        };
        let i = &self.inner;
        Request {
            inner: Arc::new(Inner {
                transport: i.transport,
                peer: i.peer,
                local: i.local,
                filename: name.to_owned(),
                mode: i.mode,
                options: i.options.clone(),
                state: i.state.clone(),
                traceparent: i.traceparent.clone(),
            }),
            captures: self.captures.clone(),
        }
    }

    /// The value of an option the client asked for; the name is
    /// case-insensitive.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.inner
            .options
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The text of a named capture group of the route's pattern, if it took
    /// part in the match.
    pub fn capture(&self, name: &str) -> Option<&str> {
        self.captures
            .iter()
            .find(|(k, _)| &**k == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// All named capture groups of the route's pattern.
    pub fn captures(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.captures.iter().map(|(k, v)| (&**k, v.as_deref()))
    }

    /// Application state of type `T` registered on the [`App`](crate::App).
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.inner.state.get::<T>()
    }

    /// The request as a route with these capture groups sees it (shares
    /// everything else).
    pub(crate) fn with_captures(&self, captures: Arc<[Capture]>) -> Request {
        Request {
            inner: self.inner.clone(),
            captures,
        }
    }

    /// A request as it arrived from the network, before routing.
    pub(crate) fn received(
        peer: SocketAddr,
        local: SocketAddr,
        packet: &crate::proto::RequestPacket<'_>,
        state: Arc<StateMap>,
    ) -> Request {
        Request {
            inner: Arc::new(Inner {
                transport: Transport::Tftp,
                peer,
                local,
                filename: packet.filename.to_owned(),
                traceparent: Traceparent::split_filename(packet.filename).1,
                mode: packet.mode,
                options: packet
                    .options
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                state,
            }),
            captures: Arc::new([]),
        }
    }

    /// A request as it arrived over HTTP, before routing: `filename` is
    /// the decoded path below the prefix; the trace context comes from the
    /// `traceparent` header, or else from the end of the name as over TFTP.
    #[cfg(feature = "http")]
    pub(crate) fn over_http(
        peer: SocketAddr,
        local: SocketAddr,
        filename: String,
        traceparent: Option<Traceparent>,
        state: Arc<StateMap>,
    ) -> Request {
        let traceparent = traceparent.or_else(|| Traceparent::split_filename(&filename).1);
        Request {
            inner: Arc::new(Inner {
                transport: Transport::Http,
                peer,
                local,
                filename,
                mode: Mode::Octet,
                options: Vec::new(),
                state,
                traceparent,
            }),
            captures: Arc::new([]),
        }
    }

    /// Whether `other` asks for the same thing: file, mode and options.
    pub(crate) fn asks_same_as(&self, other: &Request) -> bool {
        let (a, b) = (&self.inner, &other.inner);
        a.filename == b.filename && a.mode == b.mode && a.options == b.options
    }
}

/// Builds a [`Request`] by hand, for tests.
#[derive(Debug)]
pub struct RequestBuilder {
    transport: Transport,
    peer: SocketAddr,
    local: SocketAddr,
    filename: String,
    mode: Mode,
    options: Vec<(String, String)>,
    captures: Vec<Capture>,
    state: Arc<StateMap>,
}

impl RequestBuilder {
    /// The protocol that carried the request (default TFTP).
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// The client's address.
    pub fn peer(mut self, peer: SocketAddr) -> Self {
        self.peer = peer;
        self
    }

    /// The server address the request arrived on.
    pub fn local_addr(mut self, local: SocketAddr) -> Self {
        self.local = local;
        self
    }

    /// The transfer mode.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Adds an option as the client would send it.
    pub fn option(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.push((name.into(), value.into()));
        self
    }

    /// Sets a capture group, as the route table would.
    pub fn capture(mut self, name: impl Into<String>, value: Option<&str>) -> Self {
        self.captures
            .push((Arc::from(name.into()), value.map(str::to_owned)));
        self
    }

    pub(crate) fn state_map(mut self, state: Arc<StateMap>) -> Self {
        self.state = state;
        self
    }

    /// The request.
    pub fn build(self) -> Request {
        Request {
            inner: Arc::new(Inner {
                traceparent: Traceparent::split_filename(&self.filename).1,
                transport: self.transport,
                peer: self.peer,
                local: self.local,
                filename: self.filename,
                mode: self.mode,
                options: self.options,
                state: self.state,
            }),
            captures: self.captures.into(),
        }
    }
}

/// The protocol that carried a request ([`Request::transport`]).
///
/// A handler can take it as a parameter (by type), and a route can be
/// limited to one transport (`#[route_read("…", transports = "tftp")]`,
/// [`RoutePattern::transports`](crate::RoutePattern::transports)).
///
/// # Examples
///
/// ```
/// use emmer::{route_read, Transport};
///
/// #[route_read(r"greeting\.txt")]
/// fn greeting(transport: Transport) -> String {
///     format!("hello over {transport}\n")
/// }
/// assert_eq!(greeting(Transport::Http), "hello over http\n");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// TFTP (RFC 1350), over UDP.
    Tftp,
    /// HTTP/1.1, over TCP: `GET` and `HEAD` for read routes, `PUT` for
    /// write routes (feature `http`).
    Http,
}

impl Transport {
    /// `"tftp"` or `"http"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Transport::Tftp => "tftp",
            Transport::Http => "http",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Application state by type.
#[derive(Default, Clone)]
pub(crate) struct StateMap {
    map: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl fmt::Debug for StateMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateMap({} entries)", self.map.len())
    }
}

impl StateMap {
    pub(crate) fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.map.insert(TypeId::of::<T>(), Arc::new(value));
    }

    pub(crate) fn contains(&self, id: TypeId) -> bool {
        self.map.contains_key(&id)
    }

    pub(crate) fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.map.get(&TypeId::of::<T>())?.downcast_ref()
    }
}
