//! Handlers: what a route calls, what it may take and what it may return.
//!
//! A handler is an ordinary function. `#[route_read]` and `#[route_write]`
//! bind its parameters by name (`client_host`, `client_port`, `filename`,
//! `mode`, `data`, and the named capture groups of the pattern) and by type
//! (anything that implements [`FromRequest`]), and convert what it returns
//! with [`IntoReadResponse`] or [`IntoWriteResponse`].

mod extract;
pub(crate) mod response;
pub(crate) mod upload;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

pub use extract::{FromRequest, Peer, State};
pub use response::{IntoReadResponse, IntoWriteResponse, ReadBody};
pub use upload::Upload;

use crate::TftpError;
use crate::proto::Mode;

/// A boxed future, as route handlers return it.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

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
}

struct Inner {
    peer: SocketAddr,
    local: SocketAddr,
    filename: String,
    mode: Mode,
    options: Vec<(String, String)>,
    captures: Vec<(String, Option<String>)>,
    state: Arc<StateMap>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("peer", &self.inner.peer)
            .field("local", &self.inner.local)
            .field("filename", &self.inner.filename)
            .field("mode", &self.inner.mode)
            .field("options", &self.inner.options)
            .field("captures", &self.inner.captures)
            .finish_non_exhaustive()
    }
}

impl Request {
    /// Starts building a request, for tests of handlers and extractors.
    /// Defaults: peer 127.0.0.1:50000, local 127.0.0.1:3942, octet mode.
    pub fn builder(filename: impl Into<String>) -> RequestBuilder {
        RequestBuilder {
            peer: SocketAddr::from(([127, 0, 0, 1], 50000)),
            local: SocketAddr::from(([127, 0, 0, 1], 3942)),
            filename: filename.into(),
            mode: Mode::Octet,
            options: Vec::new(),
            captures: Vec::new(),
            state: Arc::new(StateMap::default()),
        }
    }

    /// The client's address and port.
    pub fn peer(&self) -> SocketAddr {
        self.inner.peer
    }

    /// The client's address.
    pub fn client_host(&self) -> IpAddr {
        self.inner.peer.ip()
    }

    /// The client's port (its transfer ID).
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

    /// The transfer mode.
    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    /// The options the client asked for (RFC 2347), names as sent.
    pub fn options(&self) -> &[(String, String)] {
        &self.inner.options
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
        self.inner
            .captures
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// All named capture groups of the route's pattern.
    pub fn captures(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.inner
            .captures
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
    }

    /// Application state of type `T` registered on the [`App`](crate::App).
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.inner.state.get::<T>()
    }

    pub(crate) fn with_captures(&self, captures: Vec<(String, Option<String>)>) -> Request {
        let i = &self.inner;
        Request {
            inner: Arc::new(Inner {
                peer: i.peer,
                local: i.local,
                filename: i.filename.clone(),
                mode: i.mode,
                options: i.options.clone(),
                captures,
                state: i.state.clone(),
            }),
        }
    }
}

/// Builds a [`Request`] by hand, for tests.
#[derive(Debug)]
pub struct RequestBuilder {
    peer: SocketAddr,
    local: SocketAddr,
    filename: String,
    mode: Mode,
    options: Vec<(String, String)>,
    captures: Vec<(String, Option<String>)>,
    state: Arc<StateMap>,
}

impl RequestBuilder {
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
        self.captures.push((name.into(), value.map(str::to_owned)));
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
                peer: self.peer,
                local: self.local,
                filename: self.filename,
                mode: self.mode,
                options: self.options,
                captures: self.captures,
                state: self.state,
            }),
        }
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

    pub(crate) fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.map.get(&TypeId::of::<T>())?.downcast_ref()
    }
}

/// A route's pattern matched but one of its captures did not convert to the
/// parameter's type: the route table tries the next route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoMatch;

/// A write handler that takes the whole upload.
pub type WriteFn = Box<dyn FnOnce(Vec<u8>) -> BoxFuture<Result<(), TftpError>> + Send>;

/// A write handler that streams the upload.
pub type StreamFn = Box<dyn FnOnce(Upload) -> BoxFuture<Result<(), TftpError>> + Send>;

/// What a route's handler does with a request, decided once its parameters are
/// bound.
pub enum Prepared {
    /// A read: the future yields the body or a TFTP error.
    Read(BoxFuture<Result<ReadBody, TftpError>>),
    /// A write whose handler wants the whole upload at once.
    WriteBuffered(WriteFn),
    /// A write whose handler streams the upload ([`Upload`]): the future is
    /// started when the request arrives.
    WriteStreaming(StreamFn),
    /// Binding failed with an error for the client (an extractor refused).
    Reject(TftpError),
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Prepared::Read(_) => f.write_str("Prepared::Read"),
            Prepared::WriteBuffered(_) => f.write_str("Prepared::WriteBuffered"),
            Prepared::WriteStreaming(_) => f.write_str("Prepared::WriteStreaming"),
            Prepared::Reject(e) => write!(f, "Prepared::Reject({e})"),
        }
    }
}

/// Runs a blocking closure where blocking is allowed; a panic becomes
/// ERROR 0 for the client.
pub(crate) async fn run_blocking<T, F>(f: F) -> Result<T, TftpError>
where
    F: FnOnce() -> Result<T, TftpError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(panic_error(e)),
    }
}

/// Runs a future on its own task; a panic becomes ERROR 0 for the client.
pub(crate) async fn run_async<T, F>(f: F) -> Result<T, TftpError>
where
    F: Future<Output = Result<T, TftpError>> + Send + 'static,
    T: Send + 'static,
{
    match tokio::spawn(f).await {
        Ok(r) => r,
        Err(e) => Err(panic_error(e)),
    }
}

fn panic_error(e: tokio::task::JoinError) -> TftpError {
    let what = match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string payload".to_owned()),
        Err(_) => "cancelled".to_owned(),
    };
    tracing::error!(panic = %what, "handler panicked; the client gets ERROR 0");
    TftpError::undefined("internal server error")
}
