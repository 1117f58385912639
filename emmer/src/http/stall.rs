//! A connection on which nothing moves is closed: the socket is wrapped so
//! that a read or write that has been waiting, with no byte moved either
//! way for the stall timeout, fails with `TimedOut`. A client that stops
//! reading its download or sending its upload, or that opened a connection
//! and went quiet, holds it no longer than that.
//!
//! The timer is reset lazily: progress only stamps the time, and the
//! sleep is moved when a wait finds its deadline stale, so a fast transfer
//! costs one clock read per read or write, not a timer per chunk.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// What a connection's requests can learn of it.
#[derive(Debug, Default)]
pub(super) struct Flags {
    /// The connection was closed because nothing moved.
    timed_out: AtomicBool,
}

impl Flags {
    pub(super) fn timed_out(&self) -> bool {
        self.timed_out.load(Ordering::Relaxed)
    }
}

/// A socket whose waits end after `limit` without progress.
pub(super) struct Stall<S> {
    io: S,
    limit: Duration,
    /// When a byte last moved.
    last: Instant,
    sleep: Pin<Box<Sleep>>,
    flags: std::sync::Arc<Flags>,
}

impl<S> Stall<S> {
    pub(super) fn new(io: S, limit: Duration, flags: std::sync::Arc<Flags>) -> Self {
        let now = Instant::now();
        Self {
            io,
            limit,
            last: now,
            sleep: Box::pin(tokio::time::sleep_until(now + limit)),
            flags,
        }
    }

    /// The I/O is waiting: fails once nothing has moved for the limit.
    fn check(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let deadline = self.last + self.limit;
        if self.sleep.deadline() != deadline {
            self.sleep.as_mut().reset(deadline);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.flags.timed_out.store(true, Ordering::Relaxed);
                Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no byte moved on the connection for the stall timeout",
                ))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Stall<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.last = Instant::now();
                }
                Poll::Ready(r)
            }
            Poll::Pending => this.check(cx).map(Err),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Stall<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write(cx, data) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    this.last = Instant::now();
                }
                Poll::Ready(r)
            }
            Poll::Pending => this.check(cx).map(Err),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    this.last = Instant::now();
                }
                Poll::Ready(r)
            }
            Poll::Pending => this.check(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => this.check(cx).map(Err),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_shutdown(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => this.check(cx).map(Err),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// On tokio's paused clock: a read that waits fails after the limit;
    /// progress pushes the deadline back.
    #[tokio::test(start_paused = true)]
    async fn a_wait_without_progress_fails_after_the_limit() {
        let (a, mut b) = tokio::io::duplex(64);
        let flags = Arc::new(Flags::default());
        let mut s = Stall::new(a, Duration::from_secs(10), flags.clone());
        let mut buf = [0u8; 8];
        tokio::time::sleep(Duration::from_secs(6)).await;
        b.write_all(b"x").await.unwrap();
        assert_eq!(s.read(&mut buf).await.unwrap(), 1);
        let t0 = Instant::now();
        let e = s.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            t0.elapsed(),
            Duration::from_secs(10),
            "counted from the byte"
        );
        assert!(flags.timed_out());
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_stops_reading_stalls_the_writer() {
        let (a, _b) = tokio::io::duplex(16);
        let flags = Arc::new(Flags::default());
        let mut s = Stall::new(a, Duration::from_secs(5), flags.clone());
        let e = s.write_all(&[0u8; 1024]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(flags.timed_out());
    }
}
