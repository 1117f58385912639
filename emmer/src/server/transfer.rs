//! One transfer: route dispatch, the handler, option negotiation, and the
//! loop that drives a read or write state machine over its own socket.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{Instrument, field::Empty};

use super::batch::Batch;
use super::body::{Source, netascii_len};
use super::{ABORT, ActiveGuard, Shared};
use crate::handler::response::BodyKind;
use crate::handler::upload::{Chunk, UploadSender};
use crate::handler::{Prepared, ReadBody, Request, Upload};
use crate::proto::OptionLimits;
use crate::proto::netascii::NetasciiDecoder;
use crate::proto::packet::{DATA_HEADER, encode_error};
use crate::proto::{
    Mode, Negotiated, Outcome, Packet, ReadTransfer, RequestPacket, RequestedOptions, WriteTransfer,
};
use crate::route::{Kind, RouteLimits};
use crate::{ErrorCode, TftpError};

/// A request copied out of the listener's buffer.
pub(crate) struct OwnedRequest {
    is_write: bool,
    filename: String,
    mode: Mode,
    options: Vec<(String, String)>,
    peer: SocketAddr,
    local: SocketAddr,
}

impl OwnedRequest {
    pub(crate) fn new(
        req: &RequestPacket<'_>,
        is_write: bool,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Self {
        Self {
            is_write,
            filename: req.filename.to_owned(),
            mode: req.mode,
            options: req
                .options
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            peer,
            local,
        }
    }
}

/// What the transfer log line reports.
struct Report {
    route: Option<Arc<str>>,
    bytes: u64,
    retransmits: u64,
    outcome: Outcome,
    ended: Instant,
}

/// Runs one transfer to its end and logs one line about it.
pub(crate) async fn run(
    shared: Arc<Shared>,
    req: OwnedRequest,
    stop: watch::Receiver<u8>,
    active: ActiveGuard,
) {
    let op = if req.is_write { "write" } else { "read" };
    let span = tracing::info_span!(
        "transfer",
        peer = %req.peer,
        file = %req.filename,
        op,
        mode = %req.mode,
        route = Empty,
        blksize = Empty,
        windowsize = Empty,
    );
    let started = Instant::now();
    async move {
        let peer = req.peer;
        let report = serve(&shared, req, stop, active).await;
        let duration = report.ended.duration_since(started);
        let route = report.route.as_deref().unwrap_or("-");
        match &report.outcome {
            Outcome::Complete => tracing::info!(
                route, bytes = report.bytes, retransmits = report.retransmits,
                duration_ms = duration.as_millis() as u64, outcome = "complete", "transfer finished"
            ),
            Outcome::SizeProbe => tracing::info!(
                route, duration_ms = duration.as_millis() as u64, outcome = "size-probe",
                "transfer ended after the option exchange (size probe)"
            ),
            Outcome::PeerError { code, message } => tracing::warn!(
                route, bytes = report.bytes, duration_ms = duration.as_millis() as u64,
                outcome = "client-error", code, message = %message, "client ended the transfer"
            ),
            Outcome::Failed { code, message } => tracing::warn!(
                route, bytes = report.bytes, duration_ms = duration.as_millis() as u64,
                outcome = "error", code = code.as_u16(), message = %message, "transfer refused or failed"
            ),
            Outcome::TimedOut => tracing::warn!(
                route, bytes = report.bytes, retransmits = report.retransmits,
                duration_ms = duration.as_millis() as u64, outcome = "timeout", %peer,
                "client stopped answering"
            ),
        }
    }
    .instrument(span)
    .await;
}

fn failed(route: Option<Arc<str>>, e: &TftpError) -> Report {
    Report {
        route,
        bytes: 0,
        retransmits: 0,
        outcome: Outcome::Failed {
            code: e.code(),
            message: e.message().to_owned(),
        },
        ended: Instant::now(),
    }
}

async fn serve(
    shared: &Shared,
    req: OwnedRequest,
    stop: watch::Receiver<u8>,
    active: ActiveGuard,
) -> Report {
    let peer = req.peer;
    // The transfer's own socket: a new TID (RFC 1350 §4).
    let socket = match super::udp_socket(SocketAddr::new(req.local.ip(), 0), 0) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot open a socket for the transfer");
            return failed(None, &TftpError::undefined("server cannot open a socket"));
        }
    };
    let refuse = |route: Option<Arc<str>>, e: TftpError| {
        let socket = &socket;
        async move {
            let mut out = Vec::with_capacity(64 + e.message().len());
            encode_error(&mut out, e.code(), e.message());
            let _ = socket.send_to(&out, peer).await;
            failed(route, &e)
        }
    };
    if req.mode == Mode::Mail {
        let e = TftpError::illegal_operation("mail mode is not supported; use octet or netascii");
        return refuse(None, e).await;
    }
    let request = Request::builder(req.filename.clone())
        .peer(peer)
        .local_addr(req.local)
        .mode(req.mode)
        .state_map(shared.state.clone());
    let request = req
        .options
        .iter()
        .fold(request, |r, (k, v)| r.option(k.clone(), v.clone()))
        .build();
    let kind = if req.is_write {
        Kind::Write
    } else {
        Kind::Read
    };
    let dispatch = match shared.table.dispatch(kind, &request) {
        Ok(d) => d,
        Err(e) => return refuse(None, e).await,
    };
    let route = Some(dispatch.route.clone());
    let limits = dispatch.limits;
    tracing::Span::current().record("route", &*dispatch.route);
    let opts: Vec<(&str, &str)> = req
        .options
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let requested = RequestedOptions::parse(&opts);
    let config = &shared.config;
    match dispatch.prepared {
        Prepared::Reject(e) => refuse(route, e).await,
        Prepared::Read(fut) => {
            if req.is_write {
                return refuse(route, TftpError::undefined("route kind mismatch")).await;
            }
            let body = match fut.await {
                Ok(b) => b,
                Err(e) => return refuse(route, e).await,
            };
            let netascii = req.mode == Mode::Netascii;
            let body = if requested.tsize.is_some() && config.options.tsize {
                match measure(body, config.tsize_measure_limit).await {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the body to measure its size failed");
                        return refuse(
                            route,
                            TftpError::undefined("server could not read the file"),
                        )
                        .await;
                    }
                }
            } else {
                body
            };
            let size = match (&body.kind, netascii) {
                (BodyKind::Bytes(b), true) => Some(netascii_len(b)),
                (_, true) => None,
                (_, false) => body.size(),
            };
            // An empty body gets no tsize: curl (7.x) refuses an OACK with
            // "tsize 0", and RFC 2347 lets a server leave any option out.
            let size = size.filter(|&n| n > 0);
            let neg =
                Negotiated::negotiate(&requested, &option_limits(shared, &limits), false, size);
            record_params(&neg);
            let mut t = ReadTransfer::new(Instant::now(), &neg, &transfer_config(shared, &neg));
            let source = Source::new(
                body,
                netascii,
                usize::from(neg.params.blksize),
                usize::from(neg.params.windowsize),
            );
            drive_read(
                &socket,
                peer,
                &mut t,
                source,
                stop,
                route,
                neg.params.blksize,
            )
            .await
        }
        prepared @ (Prepared::WriteBuffered(_) | Prepared::WriteStreaming(_)) => {
            let (neg, mut t) = match start_write(shared, &socket, &limits, &requested) {
                Ok(v) => v,
                Err(e) => return refuse(route, e).await,
            };
            let sink = match prepared {
                Prepared::WriteBuffered(handler) => {
                    // Trust an announced size for the first allocation only up to 1 MiB.
                    let hint = neg.tsize.unwrap_or(0).min(1 << 20) as usize;
                    Sink::Buffer {
                        data: Vec::with_capacity(hint),
                        handler: Some(handler),
                    }
                }
                Prepared::WriteStreaming(handler) => match start_stream(handler, &neg).await {
                    Ok(sink) => sink,
                    Err(e) => return refuse(route, e).await,
                },
                Prepared::Read(_) | Prepared::Reject(_) => {
                    unreachable!("the outer arm takes writes only")
                }
            };
            let netascii = (req.mode == Mode::Netascii).then(NetasciiDecoder::new);
            drive_write(
                &socket,
                peer,
                &mut t,
                sink,
                netascii,
                stop,
                route,
                neg.params.blksize,
                active,
            )
            .await
        }
    }
}

/// Starts a streaming handler on its [`Upload`]. The handler decides first:
/// an error before its first read refuses the transfer before anything is
/// acknowledged.
async fn start_stream(
    handler: crate::handler::StreamFn,
    neg: &Negotiated,
) -> Result<Sink, TftpError> {
    let depth = usize::from(neg.params.windowsize) + 1;
    let (sender, upload) = Upload::channel(neg.tsize, depth);
    let UploadSender {
        tx,
        mut started,
        end,
    } = sender;
    let mut task = tokio::spawn(handler(upload));
    let read_first = tokio::select! {
        biased;
        r = &mut task => Err(join_result(r)),
        r = &mut started => Ok(r.is_ok()),
    };
    let verdict = match read_first {
        // The handler read: the transfer starts.
        Ok(true) => None,
        // It dropped the upload unread: its result decides.
        Ok(false) => Some(join_result((&mut task).await)),
        Err(v) => Some(v),
    };
    if let Some(Err(e)) = verdict {
        return Err(e);
    }
    Ok(Sink::Stream {
        tx: verdict.is_none().then_some(tx),
        end,
        task,
        verdict,
        scratch: Vec::new(),
        pool: BytesMut::with_capacity(depth * usize::from(neg.params.blksize)),
    })
}

/// Negotiates a write; ERROR 3 when the announced size is over the limit
/// (RFC 2349: refused before the transfer starts).
fn start_write(
    shared: &Shared,
    socket: &UdpSocket,
    limits: &RouteLimits,
    requested: &RequestedOptions,
) -> Result<(Negotiated, WriteTransfer), TftpError> {
    let max = max_upload(shared, limits);
    if let Some(size) = requested.tsize.filter(|&s| s > max) {
        return Err(TftpError::disk_full(format!(
            "upload of {size} bytes exceeds the limit of {max} bytes"
        )));
    }
    let mut option_limits = option_limits(shared, limits);
    let mut neg = Negotiated::negotiate(requested, &option_limits, true, None);
    // RFC 7440 windows arrive back to back: grant no larger a window than
    // the socket can queue, or its tail is dropped every time.
    let fits = window_fits(socket, neg.params.blksize, neg.params.windowsize);
    if fits < neg.params.windowsize {
        option_limits.max_windowsize = fits;
        neg = Negotiated::negotiate(requested, &option_limits, true, None);
    }
    record_params(&neg);
    let t = WriteTransfer::new(Instant::now(), &neg, &transfer_config(shared, &neg), max);
    Ok((neg, t))
}

/// How many blocks of `blksize` the socket's receive queue holds, after
/// asking for room for `windowsize` of them (at least 1).
fn window_fits(socket: &UdpSocket, blksize: u16, windowsize: u16) -> u16 {
    if windowsize <= 1 {
        return 1;
    }
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

/// The server's option limits, tightened by the route's.
fn option_limits(shared: &Shared, route: &RouteLimits) -> OptionLimits {
    let mut o = shared.config.options.clone();
    if let Some(b) = route.max_blksize {
        o.max_blksize = o.max_blksize.min(b);
    }
    if let Some(w) = route.max_windowsize {
        o.max_windowsize = o.max_windowsize.min(w);
    }
    o
}

fn max_upload(shared: &Shared, route: &RouteLimits) -> u64 {
    route.max_upload.map_or(shared.config.max_upload, |m| {
        m.min(shared.config.max_upload)
    })
}

/// Learns the size of a streamed body of unknown size by reading up to its
/// (or the server's) measuring limit ahead; see
/// [`ReadBody::measure_tsize_up_to`].
async fn measure(body: ReadBody, default_limit: u64) -> std::io::Result<ReadBody> {
    use tokio::io::AsyncReadExt;
    let BodyKind::Stream {
        reader,
        size: None,
        measure,
    } = body.kind
    else {
        return Ok(body);
    };
    let limit = measure.unwrap_or(default_limit);
    if limit == 0 {
        return Ok(ReadBody {
            kind: BodyKind::Stream {
                reader,
                size: None,
                measure,
            },
        });
    }
    let mut head = Vec::new();
    let mut limited = reader.take(limit.saturating_add(1));
    limited.read_to_end(&mut head).await?;
    let reader = limited.into_inner();
    if head.len() as u64 <= limit {
        return Ok(ReadBody::from_bytes(head));
    }
    // Longer than the limit: send what was read, then the rest, without tsize.
    let chained = std::io::Cursor::new(head).chain(reader);
    Ok(ReadBody {
        kind: BodyKind::Stream {
            reader: Box::pin(chained),
            size: None,
            measure,
        },
    })
}

fn record_params(neg: &Negotiated) {
    let span = tracing::Span::current();
    span.record("blksize", neg.params.blksize);
    span.record("windowsize", neg.params.windowsize);
}

fn transfer_config(shared: &Shared, neg: &Negotiated) -> crate::proto::TransferConfig {
    let mut c = shared.config.transfer.clone();
    if let Some(t) = neg.timeout {
        c.timeout = t;
        c.max_timeout = c.max_timeout.max(t);
    }
    c
}

/// Sends a packet to the peer; a failed send is like a lost packet (the
/// retransmission timer covers it), so it is only logged.
pub(crate) async fn send(socket: &UdpSocket, peer: SocketAddr, out: &[u8]) {
    if let Err(e) = socket.send_to(out, peer).await {
        tracing::debug!(error = %e, "send failed");
    }
}

/// Answers a datagram from someone other than the transfer's peer
/// (RFC 1350 §4: ERROR 5, and the transfer goes on).
async fn stranger(socket: &UdpSocket, from: SocketAddr) {
    tracing::debug!(%from, "datagram from an unknown transfer ID");
    let mut out = Vec::with_capacity(48);
    encode_error(&mut out, ErrorCode::UnknownTid, "unknown transfer ID");
    let _ = socket.send_to(&out, from).await;
}

/// Resolves when running transfers must end (the grace period is over, or
/// the server is gone). Created once per transfer and kept pinned, so it
/// registers with the channel once rather than on every packet.
async fn aborted(mut stop: watch::Receiver<u8>) {
    let _ = stop.wait_for(|v| *v >= ABORT).await.map(|_| ());
}

/// A transfer's one timer. The state machine's deadline moves with nearly
/// every packet; the timer is moved only when that deadline is earlier than
/// the one armed, or when the armed one fires (then the loop re-arms it for
/// the real deadline). A lock-step transfer so touches the timer wheel about
/// once per timeout period instead of once per packet.
struct Timer {
    sleep: Pin<Box<tokio::time::Sleep>>,
    armed: Option<Instant>,
}

impl Timer {
    fn new() -> Self {
        Self {
            sleep: Box::pin(tokio::time::sleep(Duration::from_secs(86400))),
            armed: None,
        }
    }

    fn arm(&mut self, want: Option<Instant>) {
        match (want, self.armed) {
            (Some(w), Some(a)) if a <= w => {}
            (Some(w), _) => {
                self.sleep.as_mut().reset(w.into());
                self.armed = Some(w);
            }
            (None, _) => self.armed = None,
        }
    }

    /// Resolves when the armed deadline passes; never while none is armed.
    async fn fired(&mut self) {
        if self.armed.is_none() {
            return std::future::pending().await;
        }
        self.sleep.as_mut().await;
        self.armed = None;
    }
}

/// The time to handle a timeout at, when the state machine's deadline has passed (the
/// timer may fire early, at a deadline that has since moved).
fn due(deadline: Option<Instant>) -> Option<Instant> {
    let now = Instant::now();
    deadline.filter(|&d| d <= now).map(|_| now)
}

async fn drive_read(
    socket: &UdpSocket,
    peer: SocketAddr,
    t: &mut ReadTransfer,
    mut source: Source,
    stop: watch::Receiver<u8>,
    route: Option<Arc<str>>,
    blksize: u16,
) -> Report {
    let abort = aborted(stop);
    tokio::pin!(abort);
    let mut aborting = false;
    let mut timer = Timer::new();
    // A window's packets, laid out back to back for one send where the
    // kernel can cut them apart (at most 64 KB, see `batch`).
    let packet = DATA_HEADER + usize::from(blksize).max(508);
    let mut batch = Batch::new(
        packet
            .max(packet * usize::from(t.windowsize()).min(64))
            .min(65536),
    );
    // ACKs and ERRORs; a longer datagram is cut, which decode tolerates for ERROR.
    let mut buf = vec![0u8; 1024];
    let mut ended = None;
    loop {
        if let Err(e) = source.fill(t).await {
            tracing::warn!(error = %e, "reading the body failed");
            t.abort(ErrorCode::Undefined, "server could not read the file");
        }
        let now = Instant::now();
        loop {
            if !batch.has_room(packet) {
                batch.flush(socket, peer).await;
            }
            let Some(len) = t.poll_transmit(now, &mut batch.buf) else {
                break;
            };
            if batch.appended(len) {
                batch.flush(socket, peer).await;
            }
        }
        batch.flush(socket, peer).await;
        if t.is_finished() {
            ended.get_or_insert_with(Instant::now);
            break;
        }
        timer.arm(t.poll_timeout());
        tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, from)) if from == peer => match Packet::decode(&buf[..n]) {
                    Ok(p) => t.handle_packet(Instant::now(), &p),
                    Err(e) => tracing::debug!(error = %e, "malformed packet from the client dropped"),
                },
                Ok((_, from)) => stranger(socket, from).await,
                Err(e) => tracing::debug!(error = %e, "receive failed"),
            },
            () = timer.fired() => if let Some(now) = due(t.poll_timeout()) {
                t.handle_timeout(now);
            },
            () = &mut abort, if !aborting => {
                aborting = true;
                t.abort(ErrorCode::Undefined, "server is shutting down");
            }
        }
    }
    Report {
        route,
        bytes: t.bytes_acked(),
        retransmits: t.retransmits(),
        outcome: t.outcome().cloned().unwrap_or(Outcome::TimedOut),
        ended: ended.unwrap_or_else(Instant::now),
    }
}

/// Where upload data goes: a buffer for a handler that takes the whole
/// upload, or the channel of a streaming handler's [`Upload`].
enum Sink {
    Buffer {
        data: Vec<u8>,
        handler: Option<WriteFn>,
    },
    Stream {
        tx: Option<mpsc::Sender<Chunk>>,
        /// Tells the handler how the upload ended (see `UploadSender::end`).
        end: Arc<OnceLock<Result<(), TftpError>>>,
        task: JoinHandle<Result<(), TftpError>>,
        /// The handler's verdict, once it has returned.
        verdict: Option<Result<(), TftpError>>,
        scratch: Vec<u8>,
        pool: BytesMut,
    },
}

use crate::handler::WriteFn;

fn join_result(r: Result<Result<(), TftpError>, tokio::task::JoinError>) -> Result<(), TftpError> {
    r.unwrap_or_else(|e| {
        tracing::error!(error = %e, "upload handler panicked; the client gets ERROR 0");
        Err(TftpError::undefined("internal server error"))
    })
}

impl Sink {
    /// Hands on a chunk of new in-order data; for a stream this waits while
    /// the handler is behind (back-pressure: no ACK goes out meanwhile).
    async fn push(&mut self, chunk: &[u8], netascii: &mut Option<NetasciiDecoder>) {
        match self {
            Sink::Buffer { data, .. } => match netascii {
                Some(d) => d.decode(chunk, data),
                None => data.extend_from_slice(chunk),
            },
            Sink::Stream {
                tx, scratch, pool, ..
            } => {
                let data = match netascii {
                    Some(d) => {
                        scratch.clear();
                        d.decode(chunk, scratch);
                        &scratch[..]
                    }
                    None => chunk,
                };
                // Chunks are cut from one buffer that is reused once the
                // handler has dropped the chunks before (no allocation per
                // block while the handler keeps up).
                pool.reserve(data.len());
                pool.extend_from_slice(data);
                let bytes = pool.split().freeze();
                if let Some(t) = tx {
                    if !bytes.is_empty() && t.send(Ok(bytes)).await.is_err() {
                        // The handler dropped its Upload: the rest is discarded.
                        *tx = None;
                    }
                }
            }
        }
    }

    /// The whole upload has arrived: the handler's verdict.
    async fn finish(&mut self, netascii: &mut Option<NetasciiDecoder>) -> Result<(), TftpError> {
        match self {
            Sink::Buffer { data, handler } => {
                if let Some(d) = netascii {
                    d.finish(data);
                }
                match handler.take() {
                    Some(h) => h(std::mem::take(data)).await,
                    None => Err(TftpError::undefined("internal server error")),
                }
            }
            Sink::Stream {
                tx,
                end,
                task,
                verdict,
                scratch,
                ..
            } => {
                if let (Some(d), Some(t)) = (netascii, tx.as_ref()) {
                    scratch.clear();
                    d.finish(scratch);
                    if !scratch.is_empty() {
                        let _ = t.send(Ok(Bytes::copy_from_slice(scratch))).await;
                    }
                }
                // The upload is complete; then the end of the channel says so.
                let _ = end.set(Ok(()));
                *tx = None;
                match verdict.take() {
                    Some(v) => v,
                    None => join_result(task.await),
                }
            }
        }
    }

    /// The transfer ended early: a streaming handler's next read fails.
    fn abort(&mut self, why: &Outcome) {
        if let Sink::Stream { tx, .. } = self {
            if let Some(t) = tx.take() {
                let e = match why {
                    Outcome::Failed { code, message } => TftpError::new(*code, message.clone()),
                    Outcome::PeerError { .. } => {
                        TftpError::undefined("the client aborted the upload")
                    }
                    _ => TftpError::undefined("the client stopped sending"),
                };
                let _ = t.try_send(Err(e));
            }
        }
    }
}

/// Resolves when a streaming handler returns before the upload is complete.
async fn early_verdict(sink: &mut Sink) -> Result<(), TftpError> {
    match sink {
        Sink::Stream {
            task,
            verdict: None,
            ..
        } => join_result(task.await),
        _ => std::future::pending().await,
    }
}

#[allow(clippy::too_many_arguments)]
async fn drive_write(
    socket: &UdpSocket,
    peer: SocketAddr,
    t: &mut WriteTransfer,
    mut sink: Sink,
    mut netascii: Option<NetasciiDecoder>,
    stop: watch::Receiver<u8>,
    route: Option<Arc<str>>,
    blksize: u16,
    active: ActiveGuard,
) -> Report {
    // Held until the outcome is known: during the dally that follows, a new
    // request from the same client is a new transfer, not a repeat.
    let mut active = Some(active);
    let abort = aborted(stop);
    tokio::pin!(abort);
    let mut aborting = false;
    let mut timer = Timer::new();
    let mut out = Vec::with_capacity(512);
    // One byte more than a block so an oversized DATA is seen as such.
    let mut buf = vec![0u8; DATA_HEADER + usize::from(blksize) + 1];
    let mut ended = None;
    let mut verdict_given = false;
    loop {
        loop {
            out.clear();
            if t.poll_transmit(Instant::now(), &mut out).is_none() {
                break;
            }
            send(socket, peer, &out).await;
        }
        if let Some(outcome) = t.outcome() {
            if ended.is_none() {
                ended = Some(Instant::now());
                drop(active.take());
                if !outcome.is_success() {
                    sink.abort(outcome);
                }
            }
        }
        if t.is_finished() {
            break;
        }
        if t.awaits_verdict() && !verdict_given {
            verdict_given = true;
            match sink.finish(&mut netascii).await {
                Ok(()) => t.accept(Instant::now()),
                Err(e) => t.abort(e.code(), e.message()),
            }
            continue;
        }
        timer.arm(t.poll_timeout());
        tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, from)) if from == peer => match Packet::decode(&buf[..n]) {
                    Ok(p) => {
                        if let Some(data) = t.handle_packet(Instant::now(), &p) {
                            sink.push(data, &mut netascii).await;
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "malformed packet from the client dropped"),
                },
                Ok((_, from)) => stranger(socket, from).await,
                Err(e) => tracing::debug!(error = %e, "receive failed"),
            },
            () = timer.fired() => if let Some(now) = due(t.poll_timeout()) {
                t.handle_timeout(now);
            },
            v = early_verdict(&mut sink), if t.outcome().is_none() => match v {
                // Accepted early: the rest of the upload is received and discarded.
                Ok(()) => if let Sink::Stream { verdict, tx, .. } = &mut sink {
                    *verdict = Some(Ok(()));
                    *tx = None;
                },
                Err(e) => t.abort(e.code(), e.message()),
            },
            () = &mut abort, if !aborting => {
                aborting = true;
                t.abort(ErrorCode::Undefined, "server is shutting down");
            }
        }
    }
    Report {
        route,
        bytes: t.bytes_received(),
        retransmits: t.retransmits(),
        outcome: t.outcome().cloned().unwrap_or(Outcome::TimedOut),
        ended: ended.unwrap_or_else(Instant::now),
    }
}
