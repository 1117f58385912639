//! The same routes over HTTP/1.1 (feature `http`), on hyper.
//!
//! [`App::http`](crate::App::http) (or `EMMER_HTTP=host:port`) opens a TCP
//! listener beside the TFTP sockets. Every read route answers `GET` and
//! `HEAD` at `<prefix><file name>`, every write route `PUT`, through the
//! same route table: captures, extractors and `State` work unchanged, and
//! [`Request::transport`] says [`Transport::Http`](crate::Transport::Http).
//!
//! - `listen`: accept, one task per connection, the connection limit,
//!   graceful shutdown;
//! - `read`: `GET` / `HEAD`, `Content-Length` whenever the size is known,
//!   single byte ranges (206, 416), chunked encoding otherwise;
//! - `write`: `PUT` streamed into the handler's [`Upload`](crate::Upload)
//!   with the TFTP side's limits (413 over the route's or the server's);
//! - `body`: the response body (memory, a file read on the blocking pool,
//!   a stream) and the [`Tracker`](body::Tracker) that logs each request
//!   and hands its [`TransferEvent`](crate::TransferEvent) on;
//! - `stall`: the I/O wrapper that closes a connection on which no byte
//!   moved for [`HttpConfig::stall_timeout`](crate::HttpConfig::stall_timeout).
//!
//! A handler's TFTP error becomes a status, its message the body: 1 → 404,
//! 2 → 403, 3 → 507, 6 → 409, any other → 500.

mod body;
mod listen;
mod read;
mod stall;
mod write;

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Response, StatusCode};
use tracing::{Instrument, field::Empty};

pub(crate) use listen::{bind, serve};

use crate::handler::{Request, Traceparent};
use crate::route::Kind;
use crate::server::Shared;
use crate::{ErrorCode, TftpError};
use body::{Body, Tracker};
use stall::Flags;

/// What the requests of one connection share.
struct Conn {
    shared: Arc<Shared>,
    peer: SocketAddr,
    local: SocketAddr,
    flags: Arc<Flags>,
}

/// A read handler's task, aborted when the request is dropped (the client
/// went away): no one waits for its body any more.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The status a TFTP error code stands for.
pub(crate) fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::FileNotFound => StatusCode::NOT_FOUND,
        ErrorCode::AccessViolation => StatusCode::FORBIDDEN,
        ErrorCode::DiskFull => StatusCode::INSUFFICIENT_STORAGE,
        ErrorCode::FileExists => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Answers one request.
async fn handle(cx: Arc<Conn>, req: hyper::Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let (kind, head) = match method {
        Method::GET => (Kind::Read, false),
        Method::HEAD => (Kind::Read, true),
        Method::PUT => (Kind::Write, false),
        _ => {
            tracing::debug!(peer = %cx.peer, %method, "HTTP method not allowed");
            let mut r = plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "only GET, HEAD and PUT are served\n",
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, PUT"));
            return r;
        }
    };
    let config = &cx.shared.config;
    let name = match file_name(req.uri().path(), &config.http.prefix) {
        Ok(name) => name,
        Err((status, message)) => {
            tracing::debug!(peer = %cx.peer, path = req.uri().path(), "{message}");
            return plain(status, format!("{message}\n"));
        }
    };
    let traceparent = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(Traceparent::parse);
    let asked = Request::over_http(
        cx.peer,
        cx.local,
        name,
        traceparent,
        cx.shared.state.clone(),
    );
    let span = tracing::info_span!(
        "transfer",
        peer = %asked.peer(),
        file = %asked.filename(),
        op = kind.as_str(),
        transport = "http",
        %method,
        route = Empty,
        status = Empty,
        trace_id = Empty,
    );
    if let Some(t) = asked.traceparent() {
        span.record("trace_id", t.trace_id());
    }
    let request = if config.strip_traceparent {
        asked.without_traceparent()
    } else {
        asked.clone()
    };
    let tracker = Tracker::new(&cx, kind, asked, span.clone());
    async move {
        match kind {
            Kind::Read => read::serve(&cx, &req, request, head, tracker).await,
            Kind::Write => write::serve(&cx, req, request, tracker).await,
        }
    }
    .instrument(span)
    .await
}

/// The file name a path asks for: percent-decoded, below the prefix.
fn file_name(path: &str, prefix: &str) -> Result<String, (StatusCode, &'static str)> {
    let bad = (
        StatusCode::BAD_REQUEST,
        "the path is not valid percent-encoded UTF-8",
    );
    let mut bytes = Vec::with_capacity(path.len());
    let mut rest = path.as_bytes();
    while let [first, tail @ ..] = rest {
        if *first == b'%' {
            let [h, l, tail @ ..] = tail else {
                return Err(bad);
            };
            let hex = |b: u8| (b as char).to_digit(16);
            let (Some(h), Some(l)) = (hex(*h), hex(*l)) else {
                return Err(bad);
            };
            bytes.push((h * 16 + l) as u8);
            rest = tail;
        } else {
            bytes.push(*first);
            rest = tail;
        }
    }
    let path = String::from_utf8(bytes).map_err(|_| bad)?;
    match path.strip_prefix(prefix) {
        Some(name) => Ok(name.to_owned()),
        None => Err((
            StatusCode::NOT_FOUND,
            "the path is not under the server's prefix",
        )),
    }
}

/// A short plain-text response outside any route (bad path, method).
fn plain(status: StatusCode, text: impl Into<String>) -> Response<Body> {
    let text = text.into();
    let mut r = Response::new(Body::untracked(bytes::Bytes::from(text)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The response to a TFTP error: its status, its message as the body.
fn error_response(e: &TftpError, head: bool, tracker: Tracker) -> Response<Body> {
    failure(status_of(e.code()), e, head, tracker)
}

/// A failed request's response: `status`, with the error's message as the
/// body (headers only for `HEAD`); the tracker reports the error.
fn failure(status: StatusCode, e: &TftpError, head: bool, mut tracker: Tracker) -> Response<Body> {
    tracker.failed(e);
    tracker.status(status);
    let text = bytes::Bytes::from(format!("{}\n", e.message()));
    let len = text.len();
    let body = if head {
        Body::empty(tracker)
    } else {
        Body::bytes(text, tracker)
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_decoded_below_the_prefix() {
        assert_eq!(file_name("/pxelinux.0", "/").unwrap(), "pxelinux.0");
        assert_eq!(file_name("/a%20b/%C3%A9", "/").unwrap(), "a b/é");
        assert_eq!(file_name("/tftp/boot.ipxe", "/tftp/").unwrap(), "boot.ipxe");
        assert_eq!(file_name("/", "/").unwrap(), "");
        assert_eq!(
            file_name("/other/x", "/tftp/").unwrap_err().0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            file_name("/tftp", "/tftp/").unwrap_err().0,
            StatusCode::NOT_FOUND
        );
        for bad in ["/%", "/%4", "/%zz", "/%ff"] {
            assert_eq!(
                file_name(bad, "/").unwrap_err().0,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
        // An encoded slash is a slash of the name; `..` is the route's
        // business (ServeDir refuses it).
        assert_eq!(file_name("/a%2Fb/../c", "/").unwrap(), "a/b/../c");
    }

    #[test]
    fn codes_map_to_statuses() {
        for (code, status) in [
            (ErrorCode::FileNotFound, 404),
            (ErrorCode::AccessViolation, 403),
            (ErrorCode::DiskFull, 507),
            (ErrorCode::FileExists, 409),
            (ErrorCode::Undefined, 500),
            (ErrorCode::IllegalOperation, 500),
            (ErrorCode::NoSuchUser, 500),
        ] {
            assert_eq!(status_of(code).as_u16(), status, "{code}");
        }
    }
}
