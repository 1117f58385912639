//! A handler with its parameters bound: what a route hands the engine for
//! one request. A read route gives a [`ReadCall`], a write route a
//! [`WriteCall`], so a read handler can never be handed an upload.
//!
//! The engine starts a call exactly once, on the runtime for an async
//! handler or on the blocking pool for a plain one, and the task's
//! `JoinHandle` is its result: a panic becomes ERROR 0 for the client.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use tokio::task::JoinHandle;

use super::{IntoReadResponse, IntoWriteResponse, ReadBody, Upload};
use crate::TftpError;

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Where a bound handler runs.
enum Job<T> {
    /// An async handler: a task on the runtime.
    Async(BoxFuture<T>),
    /// A plain handler: a thread of the blocking pool, where it may block.
    Blocking(Box<dyn FnOnce() -> T + Send>),
}

impl<T: Send + 'static> Job<T> {
    fn spawn(self) -> JoinHandle<T> {
        match self {
            Job::Async(fut) => tokio::spawn(fut),
            Job::Blocking(f) => tokio::task::spawn_blocking(f),
        }
    }
}

/// A read handler with its parameters bound. Not public API: what the
/// macros and the [`App`](crate::App) builder produce for the route table.
pub struct ReadCall(Job<Result<ReadBody, TftpError>>);

impl fmt::Debug for ReadCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReadCall")
    }
}

impl ReadCall {
    /// A plain handler, run on the blocking pool.
    pub(crate) fn blocking<R: IntoReadResponse>(f: impl FnOnce() -> R + Send + 'static) -> Self {
        Self(Job::Blocking(Box::new(move || f().into_read_response())))
    }

    /// An async handler, run on its own task.
    pub(crate) fn asynchronous<R: IntoReadResponse>(
        fut: impl Future<Output = R> + Send + 'static,
    ) -> Self {
        Self(Job::Async(Box::pin(async move {
            fut.await.into_read_response()
        })))
    }

    /// The client gets `e` (an extractor refused the request).
    pub(crate) fn reject(e: TftpError) -> Self {
        Self(Job::Async(Box::pin(async move { Err(e) })))
    }

    /// Starts the handler.
    pub(crate) fn start(self) -> JoinHandle<Result<ReadBody, TftpError>> {
        self.0.spawn()
    }

    /// Runs the handler to its end.
    pub(crate) async fn run(self) -> Result<ReadBody, TftpError> {
        verdict(self.start().await)
    }
}

/// A write handler with its parameters bound, waiting for its [`Upload`].
/// Not public API, like [`ReadCall`].
pub struct WriteCall(Box<dyn FnOnce(Upload) -> Job<Result<(), TftpError>> + Send>);

impl fmt::Debug for WriteCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WriteCall")
    }
}

impl WriteCall {
    /// A handler that takes the whole upload (`data`), run once it has
    /// arrived; `blocking` runs it on the blocking pool.
    pub(crate) fn whole<R, Fut>(
        f: impl FnOnce(Vec<u8>) -> Result<Fut, TftpError> + Send + 'static,
    ) -> Self
    where
        Fut: Future<Output = R> + Send + 'static,
        R: IntoWriteResponse,
    {
        Self(Box::new(move |mut upload: Upload| {
            Job::Async(Box::pin(async move {
                // The memory stays counted until the handler is done.
                let (data, _held) = upload.read_whole_counted().await?;
                f(data)?.await.into_write_response()
            }))
        }))
    }

    /// A plain handler that takes the whole upload, run on the blocking
    /// pool once it has arrived.
    pub(crate) fn whole_blocking<R: IntoWriteResponse>(
        f: impl FnOnce(Vec<u8>) -> Result<R, TftpError> + Send + 'static,
    ) -> Self {
        Self::whole(move |data| {
            Ok(async move {
                let run = tokio::task::spawn_blocking(move || f(data)?.into_write_response());
                verdict(run.await)
            })
        })
    }

    /// An async handler that streams the upload, started when the request
    /// arrives.
    pub(crate) fn streaming<R, Fut>(f: impl FnOnce(Upload) -> Fut + Send + 'static) -> Self
    where
        Fut: Future<Output = R> + Send + 'static,
        R: IntoWriteResponse,
    {
        Self(Box::new(move |upload| {
            Job::Async(Box::pin(
                async move { f(upload).await.into_write_response() },
            ))
        }))
    }

    /// A plain handler that streams the upload with blocking reads, on the
    /// blocking pool, started when the request arrives.
    pub(crate) fn streaming_blocking<R: IntoWriteResponse>(
        f: impl FnOnce(Upload) -> R + Send + 'static,
    ) -> Self {
        Self(Box::new(move |upload| {
            Job::Blocking(Box::new(move || f(upload).into_write_response()))
        }))
    }

    /// The client gets `e` before anything is acknowledged.
    pub(crate) fn reject(e: TftpError) -> Self {
        Self(Box::new(move |_| {
            Job::Async(Box::pin(async move { Err(e) }))
        }))
    }

    /// Starts the handler on its upload.
    pub(crate) fn start(self, upload: Upload) -> JoinHandle<Result<(), TftpError>> {
        (self.0)(upload).spawn()
    }
}

/// A handler task's result: a panic (or a cancelled task) becomes ERROR 0.
pub(crate) fn verdict<T>(
    r: Result<Result<T, TftpError>, tokio::task::JoinError>,
) -> Result<T, TftpError> {
    r.unwrap_or_else(|e| {
        let what = match e.try_into_panic() {
            Ok(p) => p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string payload".to_owned()),
            Err(_) => "cancelled".to_owned(),
        };
        tracing::error!(panic = %what, "handler panicked; the client gets ERROR 0");
        Err(TftpError::undefined("internal server error"))
    })
}
