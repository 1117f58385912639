//! One transfer from request to log line: its link, the read or write loop,
//! the signals it answers while it runs, and the line that reports it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{oneshot, watch};
use tracing::{Instrument, field::Empty};

use super::gate::Slot;
use super::listener::Admitted;
use super::send::Link;
use super::session::{Control, Session};
use super::shutdown::{Phase, aborted};
use super::timer::now;
use super::{Shared, read, write};
use crate::event::{TransferEvent, TransferOutcome};
use crate::handler::Request;
use crate::proto::{
    Mode, Negotiated, OptionLimits, Outcome, ReadTransfer, RequestedOptions, TransferConfig,
    WriteTransfer,
};
use crate::route::{Kind, RouteId, RouteLimits};
use crate::{Ports, TftpError};

/// Runs one transfer to its end, logs one line about it and hands its
/// event to the `on_transfer` callbacks.
pub(crate) async fn run(
    shared: &Shared,
    mut admitted: Admitted,
    slot: Slot,
    stop: watch::Receiver<Phase>,
) {
    let kind = admitted.kind;
    let request = &admitted.request;
    let span = tracing::info_span!(
        "transfer",
        peer = %request.peer(),
        file = %request.filename(),
        op = kind.as_str(),
        mode = %request.mode(),
        route = Empty,
        blksize = Empty,
        windowsize = Empty,
        trace_id = Empty,
    );
    if let Some(t) = request.traceparent() {
        span.record("trace_id", t.trace_id());
    }
    let asked = shared.events.enabled().then(|| request.clone());
    if shared.config.strip_traceparent {
        admitted.request = admitted.request.without_traceparent();
    }
    let _active = crate::metrics::active(kind);
    let started = now();
    let wall = SystemTime::now();
    // The report goes out as soon as the outcome is known: an upload's
    // dally after its final ACK goes on beside it.
    let (reported, report) = oneshot::channel::<Report>();
    let serving = serve(shared, admitted, slot, stop, reported);
    let reporting = async move {
        let Ok(report) = report.await else { return };
        report.log(started);
        if let Some(request) = asked {
            shared
                .events
                .emit(|| report.into_event(kind, &request, started, wall));
        }
    };
    async move {
        tokio::join!(serving, reporting);
    }
    .instrument(span)
    .await;
}

/// Serves the transfer; its report goes to `reported` once the outcome is
/// known (for an upload, before the dally).
async fn serve(
    shared: &Shared,
    admitted: Admitted,
    slot: Slot,
    stop: watch::Receiver<Phase>,
    reported: oneshot::Sender<Report>,
) {
    let Admitted {
        kind,
        request,
        session,
        via,
        local,
    } = admitted;
    let peer = request.peer();
    let errors = shared.errors.clone();
    let link = match shared.config.ports {
        // The listening socket; the listener hands this client's datagrams over.
        Ports::Single => Ok(Link::shared(
            via.clone(),
            local,
            shared.demux.register(peer),
            peer,
            errors,
        )),
        // A socket of its own: a new TID (RFC 1350 §4).
        Ports::Ephemeral => Link::open(&shared.net, local, None, peer, errors),
        Ports::Range { first, last } => {
            Link::open(&shared.net, local, Some((first, last)), peer, errors)
        }
    };
    let link = match link {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, ports = %shared.config.ports, "cannot open a socket for the transfer (EMMER_PORTS)");
            let e = TftpError::undefined("server busy, try again later");
            let code = e.code();
            shared
                .errors
                .send(&via, peer, Some(local), code, e.message())
                .await;
            let _ = reported.send(Report::new(None, Finish::failed(&e)));
            return;
        }
    };
    let mut cx = Ctx {
        shared,
        link,
        signals: Signals::new(session.control(), stop),
        place: Some((session, slot)),
        reported: Some(reported),
        granted: Vec::new(),
    };
    let report = if request.mode() == Mode::Mail {
        let e = TftpError::illegal_operation("mail mode is not supported; use octet or netascii");
        cx.refuse(None, e).await
    } else {
        match kind {
            Kind::Read => read::serve(&mut cx, request).await,
            Kind::Write => write::serve(&mut cx, request).await,
        }
    };
    cx.report_now(report);
}

/// What a transfer loop works with.
pub(crate) struct Ctx<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) link: Link,
    pub(crate) signals: Signals,
    /// The transfer's place in the request policy and within the transfer
    /// limits, until its outcome is known (an upload's dally does not count).
    place: Option<(Session, Slot)>,
    /// The options granted, once negotiated (for the transfer's event).
    granted: Vec<(String, String)>,
    /// Where the report goes, until it has gone.
    reported: Option<oneshot::Sender<Report>>,
}

impl Ctx<'_> {
    /// Sends `e` to the client: the transfer ends before it started.
    pub(crate) async fn refuse(&self, route: Option<Arc<RouteId>>, e: TftpError) -> Report {
        self.link.send_error(e.code(), e.message()).await;
        Report::new(route, Finish::failed(&e))
    }

    /// Hands the report on now (once; later reports are dropped).
    pub(crate) fn report_now(&mut self, report: Report) {
        if let Some(tx) = self.reported.take() {
            let _ = tx.send(report);
        }
    }

    /// The outcome is known: a new request from the client is a new
    /// transfer from now on.
    pub(crate) fn release(&mut self) {
        self.place = None;
    }

    /// The requested options, parsed.
    pub(crate) fn requested(request: &Request) -> RequestedOptions {
        let opts: Vec<(&str, &str)> = request
            .options()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        RequestedOptions::parse(&opts)
    }

    /// The server's option limits, tightened by the route's.
    pub(crate) fn option_limits(&self, route: &RouteLimits) -> OptionLimits {
        let mut o = self.shared.config.options.clone();
        if let Some(b) = route.max_blksize {
            o.max_blksize = o.max_blksize.min(b);
        }
        if let Some(w) = route.max_windowsize {
            o.max_windowsize = o.max_windowsize.min(w);
        }
        o
    }

    /// The largest upload the route takes.
    pub(crate) fn max_upload(&self, route: &RouteLimits) -> u64 {
        let server = self.shared.config.max_upload;
        route.max_upload.map_or(server, |m| m.min(server))
    }

    /// The transfer's timing (the machines apply a negotiated timeout).
    pub(crate) fn transfer_config(&mut self, neg: &Negotiated) -> TransferConfig {
        record_params(neg);
        self.granted = neg
            .oack
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        self.shared.config.transfer.clone()
    }

    /// The report of a transfer that ran: its machine's counters and the
    /// options granted.
    pub(crate) fn report(
        &mut self,
        route: Option<Arc<RouteId>>,
        counters: Counters,
        finish: Finish,
        ended: Instant,
    ) -> Report {
        Report {
            route,
            counters,
            granted: std::mem::take(&mut self.granted),
            finish,
            ended,
            status: None,
        }
    }
}

fn record_params(neg: &Negotiated) {
    let span = tracing::Span::current();
    span.record("blksize", neg.params.blksize);
    span.record("windowsize", neg.params.windowsize);
}

/// What reaches a running transfer from outside its link.
pub(crate) enum Signal {
    /// The client sent its request again.
    Repeat,
    /// The client sent another request: stop at once, silently.
    Superseded,
    /// The server's grace period is over.
    Abort,
}

/// A transfer's end of the listener's and the server's signals.
pub(crate) struct Signals {
    control: Arc<Control>,
    abort: Pin<Box<dyn Future<Output = ()> + Send + Sync>>,
    aborting: bool,
}

/// How waiting for something under [`Signals::until`] ended.
pub(crate) enum Waited<T> {
    Done(T),
    Superseded,
    Abort,
}

impl Signals {
    fn new(control: Arc<Control>, stop: watch::Receiver<Phase>) -> Self {
        Self {
            control,
            abort: Box::pin(aborted(stop)),
            aborting: false,
        }
    }

    /// The next signal; `Abort` is given once. Cancel-safe.
    pub(crate) async fn next(&mut self) -> Signal {
        tokio::select! {
            () = self.control.superseded() => Signal::Superseded,
            () = &mut self.abort, if !self.aborting => {
                self.aborting = true;
                Signal::Abort
            }
            () = self.control.repeated() => Signal::Repeat,
        }
    }

    /// Waits for `f` (a handler, a measurement) unless the transfer is
    /// superseded or aborted first. Repeats are dropped meanwhile: nothing
    /// was sent that could be sent again.
    pub(crate) async fn until<F: Future>(&mut self, f: F) -> Waited<F::Output> {
        tokio::pin!(f);
        loop {
            tokio::select! {
                r = &mut f => return Waited::Done(r),
                s = self.next() => match s {
                    Signal::Repeat => continue,
                    Signal::Superseded => return Waited::Superseded,
                    Signal::Abort => return Waited::Abort,
                },
            }
        }
    }
}

/// How a transfer ended, for the log.
#[derive(Debug)]
pub(crate) enum Finish {
    /// The state machine's outcome.
    Done(Outcome),
    /// A different request from the same client replaced it.
    Superseded,
    /// The client closed its connection first (HTTP).
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    Disconnected,
}

impl Finish {
    pub(crate) fn failed(e: &TftpError) -> Self {
        Finish::Done(Outcome::Failed {
            code: e.code(),
            message: e.message().to_owned(),
        })
    }
}

/// What a transfer's machine counted.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counters {
    pub(crate) bytes: u64,
    pub(crate) blocks: u64,
    pub(crate) retransmits: u64,
    pub(crate) duplicates: u64,
    pub(crate) rtt: Option<Duration>,
}

impl From<&ReadTransfer> for Counters {
    fn from(t: &ReadTransfer) -> Self {
        Self {
            bytes: t.bytes_acked(),
            blocks: t.blocks_acked(),
            retransmits: t.retransmits(),
            duplicates: t.duplicates(),
            rtt: t.srtt(),
        }
    }
}

impl From<&WriteTransfer> for Counters {
    fn from(t: &WriteTransfer) -> Self {
        Self {
            bytes: t.bytes_received(),
            blocks: t.blocks_received(),
            retransmits: t.retransmits(),
            duplicates: t.duplicates(),
            rtt: t.srtt(),
        }
    }
}

/// What the transfer log line and the transfer event report.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) route: Option<Arc<RouteId>>,
    pub(crate) counters: Counters,
    /// The options granted in the OACK.
    pub(crate) granted: Vec<(String, String)>,
    pub(crate) finish: Finish,
    /// When the outcome became known (an upload's dally comes after).
    pub(crate) ended: Instant,
    /// The HTTP status sent (HTTP only).
    pub(crate) status: Option<u16>,
}

impl Report {
    pub(crate) fn new(route: Option<Arc<RouteId>>, finish: Finish) -> Self {
        Self {
            route,
            counters: Counters::default(),
            granted: Vec::new(),
            finish,
            ended: now(),
            status: None,
        }
    }

    /// The transfer's event.
    pub(crate) fn into_event(
        self,
        kind: Kind,
        request: &Request,
        started: Instant,
        wall: SystemTime,
    ) -> TransferEvent {
        let mut ev = TransferEvent::blank(kind, request, wall);
        if let Some(r) = &self.route {
            ev.route = Some(r.name.clone());
            ev.pattern = Some(r.pattern.clone());
        }
        let c = self.counters;
        (ev.bytes, ev.blocks, ev.retransmits, ev.duplicates, ev.rtt) =
            (c.bytes, c.blocks, c.retransmits, c.duplicates, c.rtt);
        ev.granted = self.granted;
        ev.status = self.status;
        ev.duration = self.ended.saturating_duration_since(started);
        ev.outcome = match self.finish {
            Finish::Done(Outcome::Complete) => TransferOutcome::Complete,
            Finish::Done(Outcome::SizeProbe) => TransferOutcome::SizeProbe,
            Finish::Done(Outcome::PeerError { code, message }) => {
                TransferOutcome::ClientError { code, message }
            }
            Finish::Done(Outcome::Failed { code, message }) => {
                TransferOutcome::ServerError { code, message }
            }
            Finish::Done(Outcome::TimedOut) => TransferOutcome::TimedOut,
            Finish::Superseded => TransferOutcome::Superseded,
            Finish::Disconnected => TransferOutcome::Disconnected,
        };
        ev
    }

    pub(crate) fn log(&self, started: Instant) {
        let duration_ms = self.ended.saturating_duration_since(started).as_millis() as u64;
        let route = self.route.as_ref().map_or("-", |r| &*r.name);
        let (bytes, retransmits) = (self.counters.bytes, self.counters.retransmits);
        match &self.finish {
            Finish::Done(Outcome::Complete) => tracing::info!(
                route,
                bytes,
                retransmits,
                duration_ms,
                outcome = "complete",
                "transfer finished"
            ),
            Finish::Done(Outcome::SizeProbe) => tracing::info!(
                route,
                duration_ms,
                outcome = "size-probe",
                "transfer ended after the option exchange (size probe)"
            ),
            Finish::Done(Outcome::PeerError { code, message }) => tracing::warn!(
                route, bytes, duration_ms, outcome = "client-error", code, message = %message,
                "client ended the transfer"
            ),
            Finish::Done(Outcome::Failed { code, message }) => tracing::warn!(
                route, bytes, duration_ms, outcome = "error", code = code.as_u16(),
                message = %message, "transfer refused or failed"
            ),
            Finish::Done(Outcome::TimedOut) => tracing::warn!(
                route,
                bytes,
                retransmits,
                duration_ms,
                outcome = "timeout",
                "client stopped answering"
            ),
            Finish::Superseded => tracing::info!(
                route,
                bytes,
                duration_ms,
                outcome = "superseded",
                "the client sent a different request from the same port; this transfer stopped"
            ),
            Finish::Disconnected => tracing::info!(
                route,
                bytes,
                duration_ms,
                outcome = "disconnected",
                "the client closed its connection before the transfer ended"
            ),
        }
    }
}
