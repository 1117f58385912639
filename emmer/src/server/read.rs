//! A read request (RRQ): the route's handler gives the body, options are
//! negotiated, then the loop sends it through a [`ReadTransfer`], fed by
//! the body [`Source`].

use std::sync::Arc;

use super::send::Batch;
use super::source::{Fed, Source, measure, netascii_len};
use super::timer::{Timer, due, now};
use super::transfer::{Ctx, Finish, Report, Signal, Waited};
use crate::handler::call::verdict;
use crate::handler::response::BodyKind;
use crate::handler::{ReadBody, Request};
use crate::proto::packet::DATA_HEADER;
use crate::proto::{Mode, Negotiated, Outcome, Packet, ReadTransfer};
use crate::route::RouteId;
use crate::{ErrorCode, TftpError};

/// Serves one read request.
pub(crate) async fn serve(cx: &mut Ctx<'_>, request: Request) -> Report {
    let d = match cx.shared.table.dispatch_read(&request) {
        Ok(d) => d,
        Err(e) => return cx.refuse(None, e).await,
    };
    let route = Some(d.route.clone());
    tracing::Span::current().record("route", &*d.route.name);
    let mut handler = d.call.start();
    let body = match cx.signals.until(&mut handler).await {
        Waited::Done(r) => match verdict(r) {
            Ok(body) => body,
            Err(e) => return cx.refuse(route, e).await,
        },
        Waited::Superseded => {
            handler.abort();
            return Report::new(route, Finish::Superseded);
        }
        Waited::Abort => {
            handler.abort();
            let e = TftpError::undefined("server is shutting down");
            return cx.refuse(route, e).await;
        }
    };
    let requested = Ctx::requested(&request);
    let config = &cx.shared.config;
    let body = if requested.tsize.is_some() && config.options.tsize {
        match cx
            .signals
            .until(measure(body, config.tsize_measure_limit))
            .await
        {
            Waited::Done(Ok(b)) => b,
            Waited::Done(Err(e)) => {
                tracing::warn!(error = %e, "reading the body to measure its size failed");
                let e = TftpError::undefined("server could not read the file");
                return cx.refuse(route, e).await;
            }
            Waited::Superseded => return Report::new(route, Finish::Superseded),
            Waited::Abort => {
                let e = TftpError::undefined("server is shutting down");
                return cx.refuse(route, e).await;
            }
        }
    } else {
        body
    };
    let netascii = request.mode() == Mode::Netascii;
    let neg = Negotiated::negotiate(
        &requested,
        &cx.option_limits(&d.limits),
        false,
        tsize(&body, netascii),
    );
    let mut t = ReadTransfer::new(now(), &neg, &cx.transfer_config(&neg));
    let (blksize, windowsize) = (neg.params.blksize, neg.params.windowsize);
    let source = Source::new(
        body,
        netascii,
        usize::from(blksize),
        usize::from(windowsize),
    );
    drive(cx, &mut t, source, route, blksize).await
}

/// The size announced as tsize: the body's, after netascii conversion.
fn tsize(body: &ReadBody, netascii: bool) -> Option<u64> {
    let size = match (&body.kind, netascii) {
        (BodyKind::Bytes(b), true) => Some(netascii_len(b)),
        (_, true) => None,
        (_, false) => body.size(),
    };
    // An empty body gets no tsize: curl (7.x) refuses an OACK with
    // "tsize 0", and RFC 2347 lets a server leave any option out.
    size.filter(|&n| n > 0)
}

/// Sends the body until the transfer ends.
async fn drive(
    cx: &mut Ctx<'_>,
    t: &mut ReadTransfer,
    mut source: Source,
    route: Option<Arc<RouteId>>,
    blksize: u16,
) -> Report {
    let mut timer = Timer::new();
    // A window's packets, laid out back to back for one send where the
    // kernel can cut them apart (at most 64 KB, see `send`).
    let packet = DATA_HEADER + usize::from(blksize).max(508);
    let window = usize::from(t.windowsize()).min(64);
    let mut batch = Batch::new((packet * window).clamp(packet, 65536));
    // ACKs and ERRORs; a longer datagram is cut, which decode tolerates for ERROR.
    let mut buf = vec![0u8; 1024];
    let mut ended = None;
    loop {
        let fed = source.feed(t);
        let at = now();
        loop {
            if !batch.has_room(packet) {
                cx.link.flush(&mut batch).await;
            }
            let Some(len) = t.poll_transmit(at, &mut batch.buf) else {
                break;
            };
            if batch.appended(len) {
                cx.link.flush(&mut batch).await;
            }
        }
        cx.link.flush(&mut batch).await;
        if t.outcome().is_some() && ended.is_none() {
            ended = Some(now());
            cx.release();
        }
        if t.is_finished() {
            break;
        }
        timer.arm(t.poll_timeout());
        tokio::select! {
            r = source.refill(), if fed == Fed::NeedInput => if let Err(e) = r {
                tracing::warn!(error = %e, "reading the body failed");
                t.abort(ErrorCode::Undefined, "server could not read the file");
            },
            n = cx.link.recv(&mut buf) => if let Some(n) = n {
                match Packet::decode(&buf[..n]) {
                    Ok(p) => t.handle_packet(now(), &p),
                    Err(e) => tracing::debug!(error = %e, "malformed packet from the client dropped"),
                }
            },
            () = timer.fired() => if let Some(at) = due(t.poll_timeout()) {
                t.handle_timeout(at);
            },
            s = cx.signals.next() => match s {
                Signal::Repeat => {
                    if t.handle_repeat(now()) {
                        tracing::debug!("the client repeated its request: first packet sent again");
                    }
                }
                Signal::Superseded => {
                    return cx.report(route, (&*t).into(), Finish::Superseded, now());
                }
                Signal::Abort => t.abort(ErrorCode::Undefined, "server is shutting down"),
            },
        }
    }
    let finish = Finish::Done(t.outcome().cloned().unwrap_or(Outcome::TimedOut));
    cx.report(route, (&*t).into(), finish, ended.unwrap_or_else(now))
}
