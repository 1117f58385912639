//! Response bodies, and the tracker that reports each request once it is
//! over.
//!
//! A body is bytes in memory, a file read on the blocking pool one chunk
//! ahead of the socket (as the TFTP side reads it, so a slow disk never
//! stalls the runtime), or a stream. Each knows how many bytes it still has
//! when the size is known, and hyper sends it with `Content-Length`;
//! otherwise with chunked encoding.
//!
//! The [`Tracker`] travels with the request and then inside its response
//! body; when it is dropped (the body handed to the connection whole, or
//! the connection gone) it logs the request's line and hands its
//! [`TransferEvent`](crate::TransferEvent) on, exactly once. "Whole" is as
//! far as the server can see: the last chunk queued on the connection,
//! with at most a chunk and the kernel's buffers yet to reach the client.

use std::future::Future as _;
use std::io::{self, Read, Seek, SeekFrom};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use hyper::StatusCode;
use hyper::body::{Frame, SizeHint};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::task::JoinHandle;

use super::Conn;
use super::stall::Flags;
use crate::TftpError;
use crate::handler::Request;
use crate::proto::Outcome;
use crate::route::{Kind, RouteId};
use crate::server::Shared;
use crate::server::transfer::{Counters, Finish, Report};

/// The most one read of a file or a stream takes, and so the most a body
/// holds at once besides what hyper is writing.
const CHUNK: usize = 128 * 1024;

/// Reports one request when dropped: its log line and its event.
pub(super) struct Tracker {
    shared: Arc<Shared>,
    flags: Arc<Flags>,
    span: tracing::Span,
    kind: Kind,
    /// The request as the client asked it.
    request: Request,
    route: Option<Arc<RouteId>>,
    started: Instant,
    wall: SystemTime,
    bytes: u64,
    status: Option<u16>,
    /// How the request ends once its response is sent whole.
    finish: Finish,
    /// The response was handed to hyper whole.
    sent: bool,
}

impl Tracker {
    pub(super) fn new(cx: &Conn, kind: Kind, request: Request, span: tracing::Span) -> Self {
        Self {
            shared: cx.shared.clone(),
            flags: cx.flags.clone(),
            span,
            kind,
            request,
            route: None,
            started: Instant::now(),
            wall: SystemTime::now(),
            bytes: 0,
            status: None,
            finish: Finish::Done(Outcome::Complete),
            sent: false,
        }
    }

    /// The route that took the request.
    pub(super) fn route(&mut self, route: Arc<RouteId>) {
        self.span.record("route", &*route.name);
        self.route = Some(route);
    }

    /// The status sent.
    pub(super) fn status(&mut self, status: StatusCode) {
        self.span.record("status", status.as_u16());
        self.status = Some(status.as_u16());
    }

    /// The request was refused or failed with `e`.
    pub(super) fn failed(&mut self, e: &TftpError) {
        self.finish = Finish::failed(e);
    }

    /// A `HEAD`: only the size was asked for.
    pub(super) fn size_probe(&mut self) {
        self.finish = Finish::Done(Outcome::SizeProbe);
    }

    /// Body bytes received (an upload).
    pub(super) fn received(&mut self, n: u64) {
        self.bytes += n;
    }

    /// The connection failed under the request: it timed out or the client
    /// went away, whatever is sent now.
    pub(super) fn connection_lost(&mut self) {
        self.finish = self.lost();
    }

    fn lost(&self) -> Finish {
        if self.flags.timed_out() {
            Finish::Done(Outcome::TimedOut)
        } else {
            Finish::Disconnected
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        let finish = if self.sent {
            std::mem::replace(&mut self.finish, Finish::Disconnected)
        } else {
            self.lost()
        };
        let report = Report {
            route: self.route.take(),
            counters: Counters {
                bytes: self.bytes,
                ..Counters::default()
            },
            granted: Vec::new(),
            finish,
            ended: crate::server::timer::now(),
            status: self.status,
        };
        let _in = self.span.enter();
        report.log(self.started);
        let (kind, started, wall) = (self.kind, self.started, self.wall);
        let request = &self.request;
        self.shared
            .events
            .emit(|| report.into_event(kind, request, started, wall));
    }
}

/// A response body.
pub(crate) struct Body {
    source: Source,
    /// Bytes still to send, when known.
    remaining: Option<u64>,
    tracker: Option<Tracker>,
}

enum Source {
    /// Nothing (more) to send.
    Empty,
    Bytes(Bytes),
    File(FileReader),
    Stream(StreamReader),
}

impl Body {
    /// A response outside any route (a bad path): nothing to report.
    pub(super) fn untracked(bytes: Bytes) -> Self {
        Self {
            remaining: Some(bytes.len() as u64),
            source: Source::Bytes(bytes),
            tracker: None,
        }
    }

    /// No body (a `HEAD`, a 204).
    pub(super) fn empty(mut tracker: Tracker) -> Self {
        tracker.sent = true;
        Self {
            source: Source::Empty,
            remaining: Some(0),
            tracker: Some(tracker),
        }
    }

    pub(super) fn bytes(bytes: Bytes, tracker: Tracker) -> Self {
        if bytes.is_empty() {
            return Self::empty(tracker);
        }
        Self {
            remaining: Some(bytes.len() as u64),
            source: Source::Bytes(bytes),
            tracker: Some(tracker),
        }
    }

    /// `len` bytes of `file` from `offset`, read on the blocking pool.
    pub(super) fn file(file: std::fs::File, offset: u64, len: u64, tracker: Tracker) -> Self {
        if len == 0 {
            return Self::empty(tracker);
        }
        Self {
            source: Source::File(FileReader {
                file: Some(file),
                seek: Some(offset),
                left: len,
                running: None,
            }),
            remaining: Some(len),
            tracker: Some(tracker),
        }
    }

    /// A stream: `skip` bytes dropped first, then `len` bytes (or all that
    /// come, when `None`).
    pub(super) fn stream(
        reader: Pin<Box<dyn AsyncRead + Send>>,
        skip: u64,
        len: Option<u64>,
        tracker: Tracker,
    ) -> Self {
        if len == Some(0) {
            return Self::empty(tracker);
        }
        Self {
            source: Source::Stream(StreamReader {
                reader,
                skip,
                buf: Vec::new(),
            }),
            remaining: len,
            tracker: Some(tracker),
        }
    }

    fn next(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        if self.remaining == Some(0) {
            return Poll::Ready(None);
        }
        let want = self.remaining.map_or(CHUNK, |r| {
            usize::try_from(r).unwrap_or(usize::MAX).min(CHUNK)
        });
        match &mut self.source {
            Source::Empty => Poll::Ready(None),
            // In chunks, so that what hyper holds ahead of the socket stays
            // small and the end is seen when the last chunk is taken.
            Source::Bytes(b) if b.is_empty() => Poll::Ready(None),
            Source::Bytes(b) => Poll::Ready(Some(Ok(b.split_to(b.len().min(CHUNK))))),
            Source::File(f) => f.poll_chunk(cx, self.remaining.unwrap_or(0)),
            Source::Stream(s) => match std::task::ready!(s.poll_chunk(cx, want)) {
                Ok(c) if c.is_empty() => match self.remaining {
                    None => Poll::Ready(None),
                    Some(left) => Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the body ended {left} bytes short of its announced size"),
                    )))),
                },
                r => Poll::Ready(Some(r)),
            },
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let r = std::task::ready!(this.next(cx));
        match &r {
            Some(Ok(chunk)) => {
                let n = chunk.len() as u64;
                if let Some(left) = &mut this.remaining {
                    *left = left.saturating_sub(n);
                }
                if let Some(t) = &mut this.tracker {
                    t.bytes += n;
                    // hyper polls no further once the length is reached.
                    t.sent |= this.remaining == Some(0);
                }
            }
            Some(Err(e)) => {
                if let Some(t) = &this.tracker {
                    let _in = t.span.enter();
                    tracing::warn!(error = %e, "reading the body failed; the connection is closed");
                }
            }
            None => {
                if let Some(t) = &mut this.tracker {
                    t.sent = true;
                }
            }
        }
        Poll::Ready(r.map(|r| r.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == Some(0) || matches!(self.source, Source::Empty)
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

/// A file read on the blocking pool, one chunk ahead of hyper.
struct FileReader {
    /// The file, while no read is running.
    file: Option<std::fs::File>,
    /// Where the first read starts.
    seek: Option<u64>,
    /// Bytes not yet read.
    left: u64,
    running: Option<JoinHandle<ChunkRead>>,
}

type ChunkRead = (std::fs::File, io::Result<Vec<u8>>);

impl FileReader {
    /// Starts reading the next chunk, if there is one and no read runs.
    fn start(&mut self) {
        if self.left == 0 || self.running.is_some() {
            return;
        }
        let Some(mut file) = self.file.take() else {
            return;
        };
        let n = self.left.min(CHUNK as u64);
        self.left -= n;
        let seek = self.seek.take();
        self.running = Some(tokio::task::spawn_blocking(move || {
            let r = (|| {
                if let Some(at) = seek {
                    file.seek(SeekFrom::Start(at))?;
                }
                let mut buf = Vec::with_capacity(n as usize);
                (&mut file).take(n).read_to_end(&mut buf)?;
                if (buf.len() as u64) < n {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file is shorter than when it was opened",
                    ));
                }
                Ok(buf)
            })();
            (file, r)
        }));
    }

    fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
        remaining: u64,
    ) -> Poll<Option<io::Result<Bytes>>> {
        if remaining == 0 {
            return Poll::Ready(None);
        }
        self.start();
        let Some(running) = &mut self.running else {
            return Poll::Ready(Some(Err(io::Error::other("the file is gone"))));
        };
        let done = std::task::ready!(Pin::new(running).poll(cx));
        self.running = None;
        let (file, r) = match done {
            Ok(d) => d,
            Err(e) => {
                return Poll::Ready(Some(Err(io::Error::other(format!(
                    "file read task failed: {e}"
                )))));
            }
        };
        self.file = Some(file);
        match r {
            Ok(buf) => {
                // Read ahead while hyper sends this one.
                self.start();
                Poll::Ready(Some(Ok(Bytes::from(buf))))
            }
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }
}

/// A stream, read into a buffer of its own.
struct StreamReader {
    reader: Pin<Box<dyn AsyncRead + Send>>,
    /// Bytes to drop first (a range).
    skip: u64,
    buf: Vec<u8>,
}

impl StreamReader {
    /// The next chunk of at most `want` bytes; empty at the end.
    fn poll_chunk(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<Bytes>> {
        if self.buf.is_empty() {
            self.buf = vec![0u8; CHUNK.min(64 * 1024)];
        }
        loop {
            let n = if self.skip > 0 {
                usize::try_from(self.skip).unwrap_or(usize::MAX)
            } else {
                want
            }
            .min(self.buf.len());
            let mut rb = ReadBuf::new(&mut self.buf[..n]);
            std::task::ready!(self.reader.as_mut().poll_read(cx, &mut rb))?;
            let got = rb.filled().len();
            if self.skip > 0 {
                if got == 0 {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the body ended before the range started",
                    )));
                }
                self.skip -= got as u64;
                continue;
            }
            return Poll::Ready(Ok(Bytes::copy_from_slice(rb.filled())));
        }
    }
}
