//! `PUT`: the request body streamed into the write route's handler through
//! the same [`Upload`] channel as a TFTP upload, with the same rules.
//!
//! - The route's (or the server's) upload limit: a `Content-Length` over it
//!   is refused with 413 before anything is read (before `100 Continue`);
//!   a body that grows past it is cut off, the handler's upload aborted,
//!   and the client gets 413.
//! - The handler decides first: one that returns before its first read
//!   refuses (or accepts) the upload before the body is read.
//! - Back-pressure: the body is read no faster than the handler takes it;
//!   a `data` handler gets the whole body from the same path, within the
//!   server's memory budget for uploads held whole (507 beyond).
//! - The handler learns the end of the data only when the body arrived
//!   whole; a client that goes away aborts its upload.
//!
//! Accepted uploads are answered `204 No Content`.

use std::pin::Pin;

use hyper::body::{Body as _, Frame, Incoming};
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::body::{Body, Tracker};
use super::{Conn, error_response, failure};
use crate::TftpError;
use crate::handler::call::verdict;
use crate::handler::upload::{Chunk, Ending, UploadSender};
use crate::handler::{Request, Upload};

/// How many body chunks may wait between the connection and the handler.
const DEPTH: usize = 8;

/// Answers a `PUT`.
pub(super) async fn serve(
    cx: &Conn,
    req: hyper::Request<Incoming>,
    request: Request,
    mut tracker: Tracker,
) -> Response<Body> {
    let shared = &cx.shared;
    let d = match shared.table.dispatch_write(&request) {
        Ok(d) => d,
        Err(e) => return error_response(&e, false, tracker),
    };
    tracker.route(d.route.clone());
    let server = shared.config.max_upload;
    let max = d.limits.max_upload.map_or(server, |m| m.min(server));
    let mut body = req.into_body();
    let announced = body.size_hint().exact();
    if let Some(size) = announced.filter(|&s| s > max) {
        return too_large(size, max, tracker);
    }
    let (sender, upload) = Upload::channel(announced, DEPTH);
    let upload = upload.within(shared.buffered.clone());
    let UploadSender { tx, mut started } = sender;
    // Not aborted when the connection goes: the handler learns from its
    // upload that it was cut short, and cleans up (`save_atomic`).
    let mut task = d.call.start(upload);
    // The handler decides first: returning before its first read refuses
    // (or accepts) the upload before the body is read.
    let first = tokio::select! {
        biased;
        r = &mut task => Some(verdict(r)),
        r = &mut started => match r {
            Ok(()) => None,
            // It dropped its upload unread: its result decides.
            Err(_) => Some(verdict((&mut task).await)),
        },
    };
    let verdict = match first {
        Some(v) => v,
        None => match pump(&mut body, tx, &mut task, max, &mut tracker).await {
            Pumped::Verdict(v) => v,
            Pumped::TooLarge(n) => return too_large(n, max, tracker),
            Pumped::Lost => {
                tracker.connection_lost();
                let e = TftpError::undefined("the upload was cut short");
                return error_response(&e, false, tracker);
            }
        },
    };
    match verdict {
        Ok(()) => {
            tracker.status(StatusCode::NO_CONTENT);
            let mut r = Response::new(Body::empty(tracker));
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        }
        Err(e) => error_response(&e, false, tracker),
    }
}

/// 413, and the handler's upload (if any) aborted with ERROR 3.
fn too_large(size: u64, max: u64, tracker: Tracker) -> Response<Body> {
    let e = TftpError::disk_full(format!(
        "upload of {size} bytes exceeds the limit of {max} bytes"
    ));
    failure(StatusCode::PAYLOAD_TOO_LARGE, &e, false, tracker)
}

/// How streaming the body into the handler ended.
enum Pumped {
    /// The handler's verdict, once it returned.
    Verdict(Result<(), TftpError>),
    /// The body went past the limit after this many bytes.
    TooLarge(u64),
    /// The connection failed (the client went away or stalled).
    Lost,
}

/// What woke the loop.
enum Event {
    Frame(Option<Result<Frame<bytes::Bytes>, hyper::Error>>),
    Sent(bool),
    Returned(Result<(), TftpError>),
}

/// Streams the body into the upload channel until the handler returns.
async fn pump(
    body: &mut Incoming,
    tx: mpsc::Sender<Chunk>,
    task: &mut JoinHandle<Result<(), TftpError>>,
    max: u64,
    tracker: &mut Tracker,
) -> Pumped {
    let mut tx = Some(tx);
    let mut pending: Option<Chunk> = None;
    let mut received = 0u64;
    let mut ended = false;
    loop {
        let event = tokio::select! {
            r = &mut *task => Event::Returned(verdict(r)),
            sent = send(&tx, &mut pending), if pending.is_some() => Event::Sent(sent),
            f = next_frame(body), if pending.is_none() && !ended => Event::Frame(f),
        };
        match event {
            Event::Returned(v) => return Pumped::Verdict(v),
            Event::Sent(true) => {}
            // The handler dropped its upload: what is left is not read;
            // its verdict decides.
            Event::Sent(false) => {
                tx = None;
                pending = None;
                ended = true;
            }
            Event::Frame(Some(Ok(frame))) => {
                let Ok(data) = frame.into_data() else {
                    continue; // trailers
                };
                received += data.len() as u64;
                tracker.received(data.len() as u64);
                if received > max {
                    abort(
                        &mut tx,
                        TftpError::disk_full("the upload exceeds the limit"),
                    );
                    return Pumped::TooLarge(received);
                }
                if !data.is_empty() && tx.is_some() {
                    pending = Some(Chunk::Data(data));
                }
            }
            Event::Frame(None) => {
                ended = true;
                if tx.is_some() {
                    pending = Some(Chunk::End(Ending::Complete));
                }
            }
            Event::Frame(Some(Err(e))) => {
                tracing::debug!(error = %e, "the upload's body failed");
                abort(
                    &mut tx,
                    TftpError::undefined("the client closed the connection"),
                );
                return Pumped::Lost;
            }
        }
    }
}

/// The next frame of the request body.
async fn next_frame(body: &mut Incoming) -> Option<Result<Frame<bytes::Bytes>, hyper::Error>> {
    std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
}

/// Sends the pending chunk when the channel has room; false when the
/// handler dropped its upload.
async fn send(tx: &Option<mpsc::Sender<Chunk>>, pending: &mut Option<Chunk>) -> bool {
    let Some(tx) = tx else { return false };
    match tx.reserve().await {
        Ok(permit) => {
            if let Some(c) = pending.take() {
                permit.send(c);
            }
            true
        }
        Err(_) => false,
    }
}

/// Tells the handler the upload stopped before its end.
fn abort(tx: &mut Option<mpsc::Sender<Chunk>>, why: TftpError) {
    if let Some(tx) = tx.take() {
        // A full channel closes without the reason: still an abort.
        let _ = tx.try_send(Chunk::End(Ending::Aborted(why)));
    }
}
