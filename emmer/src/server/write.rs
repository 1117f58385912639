//! A write request (WRQ): the route's handler is started on its [`Upload`]
//! and decides first; then the loop receives the blocks through a
//! [`WriteTransfer`] and hands them to the handler through the [`Sink`].
//!
//! The upload protocol, in one place: data then exactly one end travel on
//! the upload's channel ([`Chunk`]); the handler runs as one task, and its
//! `JoinHandle` is its verdict. The loop waits for room on the channel as
//! one arm of its `select!`, beside the socket, the timer and the signals,
//! so a handler that falls behind holds back the ACKs (back-pressure) but
//! never the timer or a shutdown.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::socket::Socket;
use super::timer::{Timer, due, now};
use super::transfer::{Ctx, Finish, Report, Signal, Waited};
use crate::handler::call::verdict;
use crate::handler::upload::{Chunk, Ending, UploadSender};
use crate::handler::{Request, Upload};
use crate::proto::netascii::NetasciiDecoder;
use crate::proto::packet::DATA_HEADER;
use crate::proto::{Mode, Negotiated, Outcome, Packet, WriteTransfer};
use crate::route::RouteId;
use crate::{ErrorCode, TftpError};

/// Serves one write request.
pub(crate) async fn serve(cx: &mut Ctx<'_>, request: Request) -> Report {
    let d = match cx.shared.table.dispatch_write(&request) {
        Ok(d) => d,
        Err(e) => return cx.refuse(None, e).await,
    };
    let route = Some(d.route.clone());
    tracing::Span::current().record("route", &*d.route.name);
    let requested = Ctx::requested(&request);
    let max = cx.max_upload(&d.limits);
    // RFC 2349: an announced size over the limit is refused before the start.
    if let Some(size) = requested.tsize.filter(|&s| s > max) {
        let e = TftpError::disk_full(format!(
            "upload of {size} bytes exceeds the limit of {max} bytes"
        ));
        return cx.refuse(route, e).await;
    }
    let mut limits = cx.option_limits(&d.limits);
    let mut neg = Negotiated::negotiate(&requested, &limits, true, None);
    // RFC 7440 windows arrive back to back: grant no larger a window than
    // the socket can queue, or its tail is dropped every time.
    let fits = if cx.shared.config.ports == crate::Ports::Single {
        // The listening socket's buffer is shared, and large already.
        neg.params.windowsize
    } else {
        window_fits(cx.link.socket(), neg.params.blksize, neg.params.windowsize)
    };
    if fits < neg.params.windowsize {
        limits.max_windowsize = fits;
        neg = Negotiated::negotiate(&requested, &limits, true, None);
    }
    let config = cx.transfer_config(&neg);

    let (sender, upload) = Upload::channel(neg.tsize, usize::from(neg.params.windowsize) + 1);
    let upload = upload.within(cx.shared.buffered.clone());
    let UploadSender { tx, mut started } = sender;
    let mut task = d.call.start(upload);
    // The handler decides first: returning before its first read refuses
    // (or accepts) the upload before anything is acknowledged.
    let first = cx
        .signals
        .until(async {
            tokio::select! {
                biased;
                r = &mut task => Some(verdict(r)),
                r = &mut started => match r {
                    Ok(()) => None,
                    // It dropped its upload unread: its result decides.
                    Err(_) => Some(verdict((&mut task).await)),
                },
            }
        })
        .await;
    let (handler, tx) = match first {
        Waited::Done(None) => (Handler::Running(task), Some(tx)),
        Waited::Done(Some(Err(e))) => return cx.refuse(route, e).await,
        Waited::Done(Some(Ok(()))) => (Handler::Returned(Ok(())), None),
        Waited::Superseded => {
            task.abort();
            return Report::new(route, Finish::Superseded);
        }
        Waited::Abort => {
            task.abort();
            let e = TftpError::undefined("server is shutting down");
            return cx.refuse(route, e).await;
        }
    };
    let blksize = usize::from(neg.params.blksize);
    let sink = Sink {
        tx,
        pending: VecDeque::with_capacity(2),
        netascii: (request.mode() == Mode::Netascii).then(NetasciiDecoder::new),
        pool: BytesMut::with_capacity((usize::from(neg.params.windowsize) + 1) * blksize),
        scratch: Vec::new(),
        ended: false,
    };
    let mut t = WriteTransfer::new(now(), &neg, &config, max);
    drive(cx, &mut t, sink, handler, route, blksize).await
}

/// How many blocks of `blksize` the socket's receive queue holds, after
/// asking for room for `windowsize` of them (at least 1).
fn window_fits(socket: &Socket, blksize: u16, windowsize: u16) -> u16 {
    let Some(socket) = socket.os().filter(|_| windowsize > 1) else {
        return windowsize.max(1);
    };
    let sock = socket2::SockRef::from(socket);
    // What a queued datagram costs the buffer: payload, headers and the
    // kernel's bookkeeping, counted generously.
    let cost = 2 * (usize::from(blksize) + 64);
    let want = (cost * usize::from(windowsize)).min(32 << 20);
    let _ = sock.set_recv_buffer_size(want);
    let have = sock.recv_buffer_size().unwrap_or(0);
    u16::try_from(have / cost)
        .unwrap_or(u16::MAX)
        .clamp(1, windowsize)
}

/// The upload's handler: running, or returned with its verdict.
enum Handler {
    Running(JoinHandle<Result<(), TftpError>>),
    Returned(Result<(), TftpError>),
}

impl Handler {
    /// Resolves when a running handler returns, with its verdict; never
    /// once it has. Cancel-safe.
    async fn returned(&mut self) -> Result<(), TftpError> {
        let Handler::Running(task) = self else {
            return std::future::pending().await;
        };
        let v = verdict(task.await);
        *self = Handler::Returned(v.clone());
        v
    }
}

/// The engine's side of the upload channel.
struct Sink {
    /// `None` once the handler no longer reads (it dropped its upload, or
    /// returned): what arrives after is received and discarded.
    tx: Option<mpsc::Sender<Chunk>>,
    /// Chunks waiting for room on the channel, in order (at most a block
    /// and the end).
    pending: VecDeque<Chunk>,
    netascii: Option<NetasciiDecoder>,
    /// Chunks are cut from one buffer, reused once the handler has dropped
    /// the chunks before (no allocation per block while it keeps up).
    pool: BytesMut,
    scratch: Vec<u8>,
    /// The end went into the channel.
    ended: bool,
}

impl Sink {
    /// Queues a chunk: straight into the channel when there is room.
    fn queue(&mut self, chunk: Chunk) {
        let Some(tx) = &self.tx else { return };
        if !self.pending.is_empty() {
            self.pending.push_back(chunk);
            return;
        }
        match tx.try_send(chunk) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(c)) => self.pending.push_back(c),
            Err(mpsc::error::TrySendError::Closed(_)) => self.discard(),
        }
    }

    /// New in-order data from the client.
    fn push(&mut self, data: &[u8]) {
        if self.tx.is_none() {
            return;
        }
        match &mut self.netascii {
            Some(d) => {
                self.scratch.clear();
                d.decode(data, &mut self.scratch);
                self.pool.extend_from_slice(&self.scratch);
            }
            None => self.pool.extend_from_slice(data),
        }
        let bytes = self.pool.split().freeze();
        if !bytes.is_empty() {
            self.queue(Chunk::Data(bytes));
        }
    }

    /// The last block arrived: the rest of the data, then the end.
    fn complete(&mut self) {
        if let Some(d) = &mut self.netascii {
            self.scratch.clear();
            d.finish(&mut self.scratch);
            if !self.scratch.is_empty() {
                let tail = bytes::Bytes::copy_from_slice(&self.scratch);
                self.queue(Chunk::Data(tail));
            }
        }
        self.queue(Chunk::End(Ending::Complete));
        self.ended = true;
    }

    /// The transfer stopped before the end: the handler's next read fails
    /// with `why`.
    fn abort(&mut self, why: TftpError) {
        self.pending.clear();
        if let Some(tx) = self.tx.take() {
            // A full channel closes without the reason: still an abort.
            let _ = tx.try_send(Chunk::End(Ending::Aborted(why)));
        }
    }

    /// Moves waiting chunks into the channel while it has room.
    fn send_pending(&mut self) {
        let Some(tx) = &self.tx else { return };
        while let Some(chunk) = self.pending.pop_front() {
            match tx.try_send(chunk) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(c)) => {
                    self.pending.push_front(c);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return self.discard(),
            }
        }
    }

    /// The handler no longer reads.
    fn discard(&mut self) {
        self.tx = None;
        self.pending.clear();
    }

    /// Everything queued is in the channel (or was discarded).
    fn delivered(&self) -> bool {
        self.pending.is_empty()
    }
}

/// What woke the write loop.
enum Event {
    /// The channel has room (true), or the handler dropped its upload.
    Room(bool),
    Datagram(Option<usize>),
    Timer,
    Returned(Result<(), TftpError>),
    Signal(Signal),
}

/// Waits for room on the channel: false when the handler dropped its
/// upload. The room is not held: only this loop sends, so it stays.
async fn reserve(tx: &Option<mpsc::Sender<Chunk>>) -> bool {
    match tx {
        Some(tx) => tx.reserve().await.is_ok(),
        None => false,
    }
}

/// What the handler is told when the transfer stops early.
fn abort_reason(outcome: &Outcome) -> TftpError {
    match outcome {
        Outcome::Failed { code, message } => TftpError::new(*code, message.clone()),
        Outcome::PeerError { .. } => TftpError::undefined("the client aborted the upload"),
        _ => TftpError::undefined("the client stopped sending"),
    }
}

/// Receives the upload until the transfer ends.
async fn drive(
    cx: &mut Ctx<'_>,
    t: &mut WriteTransfer,
    mut sink: Sink,
    mut handler: Handler,
    route: Option<Arc<RouteId>>,
    blksize: usize,
) -> Report {
    let mut timer = Timer::new();
    let mut out = Vec::with_capacity(512);
    // One byte more than a block so an oversized DATA is seen as such.
    let mut buf = vec![0u8; DATA_HEADER + blksize + 1];
    let mut ended = None;
    loop {
        if let Some(outcome) = t.outcome() {
            if ended.is_none() {
                let at = now();
                ended = Some(at);
                cx.release();
                if !outcome.is_success() {
                    sink.abort(abort_reason(outcome));
                }
                // Reported now: the dally that follows changes nothing.
                let finish = Finish::Done(outcome.clone());
                let report = cx.report(route.clone(), (&*t).into(), finish, at);
                cx.report_now(report);
            }
        }
        // No ACK goes out while the handler is behind.
        if sink.delivered() {
            out.clear();
            while let Some(len) = t.poll_transmit(now(), &mut out) {
                cx.link.send(&out[out.len() - len..]).await;
                out.clear();
            }
        }
        if t.is_finished() {
            break;
        }
        if t.awaits_verdict() {
            if !sink.ended {
                sink.complete();
            }
            if let (true, Handler::Returned(v)) = (sink.delivered(), &handler) {
                match v {
                    Ok(()) => t.accept(now()),
                    Err(e) => t.abort(e.code(), e.message()),
                }
                continue;
            }
        }
        timer.arm(t.poll_timeout());
        // Each arm only says what happened; it is handled after, when
        // nothing is borrowed by the futures any more.
        let event = tokio::select! {
            room = reserve(&sink.tx), if !sink.delivered() => Event::Room(room),
            n = cx.link.recv(&mut buf), if sink.delivered() => Event::Datagram(n),
            () = timer.fired() => Event::Timer,
            v = handler.returned() => Event::Returned(v),
            s = cx.signals.next() => Event::Signal(s),
        };
        match event {
            Event::Room(true) => sink.send_pending(),
            // The handler dropped its upload: the rest is discarded.
            Event::Room(false) => sink.discard(),
            Event::Datagram(Some(n)) => match Packet::decode(&buf[..n]) {
                Ok(p) => {
                    if let Some(data) = t.handle_packet(now(), &p) {
                        sink.push(data);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "malformed packet from the client dropped"),
            },
            Event::Datagram(None) => {}
            Event::Timer => {
                if let Some(at) = due(t.poll_timeout()) {
                    t.handle_timeout(at);
                }
            }
            Event::Returned(v) => {
                if !t.awaits_verdict() && t.outcome().is_none() {
                    match v {
                        // Accepted early: the rest is received and discarded.
                        Ok(()) => sink.discard(),
                        Err(e) => t.abort(e.code(), e.message()),
                    }
                }
            }
            Event::Signal(Signal::Repeat) => {
                if t.handle_repeat(now()) {
                    tracing::debug!("the client repeated its request: first packet sent again");
                }
            }
            Event::Signal(Signal::Superseded) => {
                sink.abort(TftpError::undefined("the client sent another request"));
                return cx.report(route, (&*t).into(), Finish::Superseded, now());
            }
            Event::Signal(Signal::Abort) => {
                t.abort(ErrorCode::Undefined, "server is shutting down");
            }
        }
    }
    let finish = Finish::Done(t.outcome().cloned().unwrap_or(Outcome::TimedOut));
    cx.report(route, (&*t).into(), finish, ended.unwrap_or_else(now))
}
