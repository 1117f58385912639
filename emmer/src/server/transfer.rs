//! One transfer: route dispatch, the handler, option negotiation, and the
//! loop that drives a read or write state machine over its own socket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tracing::{Instrument, field::Empty};

use super::body::{Source, netascii_len};
use super::{ABORT, Shared};
use crate::handler::{Prepared, Request};
use crate::proto::netascii::NetasciiDecoder;
use crate::proto::packet::{DATA_HEADER, encode_error};
use crate::proto::{
    Mode, Negotiated, Outcome, Packet, ReadTransfer, RequestPacket, RequestedOptions,
    WriteTransfer,
};
use crate::route::Kind;
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
pub(crate) async fn run(shared: Arc<Shared>, req: OwnedRequest, stop: watch::Receiver<u8>) {
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
        let report = serve(&shared, req, stop).await;
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

async fn serve(shared: &Shared, req: OwnedRequest, stop: watch::Receiver<u8>) -> Report {
    let peer = req.peer;
    // The transfer's own socket: a new TID (RFC 1350 §4).
    let socket = match UdpSocket::bind(SocketAddr::new(req.local.ip(), 0)).await {
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
    let kind = if req.is_write { Kind::Write } else { Kind::Read };
    let dispatch = match shared.table.dispatch(kind, &request) {
        Ok(d) => d,
        Err(e) => return refuse(None, e).await,
    };
    let route = Some(dispatch.route.clone());
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
            let size = match (&body.kind, netascii) {
                (crate::handler::response::BodyKind::Bytes(b), true) => Some(netascii_len(b)),
                (_, true) => None,
                (_, false) => body.size(),
            };
            let neg = Negotiated::negotiate(&requested, &config.options, false, size);
            record_params(&neg);
            let mut t = ReadTransfer::new(Instant::now(), &neg, &transfer_config(shared, &neg));
            let source = Source::new(body, netascii, usize::from(neg.params.blksize));
            drive_read(&socket, peer, &mut t, source, stop, route).await
        }
        Prepared::WriteBuffered(handler) => {
            if !req.is_write {
                return refuse(route, TftpError::undefined("route kind mismatch")).await;
            }
            let neg = Negotiated::negotiate(&requested, &config.options, true, None);
            if let Some(size) = neg.tsize.filter(|&s| s > config.max_upload) {
                let e = TftpError::disk_full(format!(
                    "upload of {size} bytes exceeds the limit of {} bytes",
                    config.max_upload
                ));
                return refuse(route, e).await;
            }
            record_params(&neg);
            let mut t = WriteTransfer::new(
                Instant::now(),
                &neg,
                &transfer_config(shared, &neg),
                config.max_upload,
            );
            // Trust an announced size for the first allocation only up to 1 MiB.
            let hint = neg.tsize.unwrap_or(0).min(1 << 20) as usize;
            let sink = Sink {
                data: Vec::with_capacity(hint),
                netascii: (req.mode == Mode::Netascii).then(NetasciiDecoder::new),
            };
            drive_write(&socket, peer, &mut t, sink, handler, stop, route, neg.params.blksize).await
        }
    }
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
async fn send(socket: &UdpSocket, peer: SocketAddr, out: &[u8]) {
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
/// the server is gone).
async fn aborted(stop: &mut watch::Receiver<u8>) {
    let _ = stop.wait_for(|v| *v >= ABORT).await.map(|_| ());
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

async fn drive_read(
    socket: &UdpSocket,
    peer: SocketAddr,
    t: &mut ReadTransfer,
    mut source: Source,
    mut stop: watch::Receiver<u8>,
    route: Option<Arc<str>>,
) -> Report {
    let mut out = Vec::with_capacity(DATA_HEADER + 65536);
    let mut buf = vec![0u8; 2048];
    let mut ended = None;
    loop {
        if let Err(e) = source.fill(t).await {
            tracing::warn!(error = %e, "reading the body failed");
            t.abort(ErrorCode::Undefined, "server could not read the file");
        }
        while t.poll_transmit(Instant::now(), &mut out) {
            send(socket, peer, &out).await;
        }
        if t.outcome().is_some() {
            ended.get_or_insert_with(Instant::now);
            break;
        }
        tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, from)) if from == peer => match Packet::decode(&buf[..n]) {
                    Ok(p) => t.handle_packet(Instant::now(), &p),
                    Err(e) => tracing::debug!(error = %e, "malformed packet from the client dropped"),
                },
                Ok((_, from)) => stranger(socket, from).await,
                Err(e) => tracing::debug!(error = %e, "receive failed"),
            },
            () = sleep_until(t.poll_timeout()) => t.handle_timeout(Instant::now()),
            () = aborted(&mut stop) => t.abort(ErrorCode::Undefined, "server is shutting down"),
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

/// Where upload data goes until the handler gets it.
struct Sink {
    data: Vec<u8>,
    netascii: Option<NetasciiDecoder>,
}

impl Sink {
    fn push(&mut self, chunk: &[u8]) {
        match &mut self.netascii {
            Some(d) => d.decode(chunk, &mut self.data),
            None => self.data.extend_from_slice(chunk),
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if let Some(d) = &mut self.netascii {
            d.finish(&mut self.data);
        }
        self.data
    }
}

#[allow(clippy::too_many_arguments)]
async fn drive_write(
    socket: &UdpSocket,
    peer: SocketAddr,
    t: &mut WriteTransfer,
    sink: Sink,
    handler: Box<dyn FnOnce(Vec<u8>) -> crate::handler::BoxFuture<Result<(), TftpError>> + Send>,
    mut stop: watch::Receiver<u8>,
    route: Option<Arc<str>>,
    blksize: u16,
) -> Report {
    let mut out = Vec::with_capacity(512);
    // One byte more than a block so an oversized DATA is seen as such.
    let mut buf = vec![0u8; DATA_HEADER + usize::from(blksize) + 1];
    let mut sink = Some(sink);
    let mut handler = Some(handler);
    let mut ended = None;
    loop {
        while t.poll_transmit(Instant::now(), &mut out) {
            send(socket, peer, &out).await;
        }
        if t.outcome().is_some() {
            ended.get_or_insert_with(Instant::now);
        }
        if t.is_finished() {
            break;
        }
        if t.is_complete() && t.outcome().is_none() {
            if let (Some(h), Some(s)) = (handler.take(), sink.take()) {
                match h(s.finish()).await {
                    Ok(()) => t.accept(Instant::now()),
                    Err(e) => t.abort(e.code(), e.message()),
                }
                continue;
            }
        }
        tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, from)) if from == peer => match Packet::decode(&buf[..n]) {
                    Ok(p) => {
                        if let Some(data) = t.handle_packet(Instant::now(), &p) {
                            if let Some(s) = sink.as_mut() {
                                s.push(data);
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "malformed packet from the client dropped"),
                },
                Ok((_, from)) => stranger(socket, from).await,
                Err(e) => tracing::debug!(error = %e, "receive failed"),
            },
            () = sleep_until(t.poll_timeout()) => t.handle_timeout(Instant::now()),
            () = aborted(&mut stop) => t.abort(ErrorCode::Undefined, "server is shutting down"),
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
