//! Transfer events: one [`TransferEvent`] for every request, served or
//! refused, once it has ended, handed to the callbacks registered with
//! [`App::on_transfer`](crate::App::on_transfer).
//!
//! An event says who asked (peer and local address, and over which
//! transport: TFTP, or HTTP with the `http` feature), what (file, read or
//! write, mode, options asked for and granted), which route took it, how it
//! went (bytes, blocks, retransmissions, duplicates received, the measured
//! round trip, the duration) and how it ended ([`TransferOutcome`]).
//!
//! # Callbacks never hold up transfers
//!
//! A transfer hands its event to a bounded queue and goes on; one thread of
//! the server, `emmer-events`, takes events off the queue and calls the
//! callbacks in the order they were registered. A slow callback delays only
//! the events behind it; a callback that panics is logged and the next event
//! is delivered as usual. When the queue is full (the callbacks fell behind
//! by [`EVENT_QUEUE`] events) new events are dropped and counted, never
//! waited for, and the thread reports how many were lost with a warning.
//!
//! # Examples
//!
//! ```
//! use emmer::event::{TransferEvent, TransferOutcome};
//! use emmer::App;
//!
//! let app = App::new().on_transfer(|ev: &TransferEvent| {
//!     if !ev.outcome.is_success() {
//!         eprintln!("{} {} from {}: {}", ev.kind.as_str(), ev.filename, ev.peer, ev.outcome);
//!     }
//! });
//! # let _ = app;
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, SystemTime};

use crate::ErrorCode;
use crate::handler::{Request, Transport};
use crate::proto::Mode;
use crate::route::Kind;

/// How many events may wait for the callbacks before new ones are dropped.
pub const EVENT_QUEUE: usize = 4096;

/// One request, served or refused, after it ended.
///
/// Fields are public to read; more may be added (the struct is
/// `#[non_exhaustive]`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransferEvent {
    /// The protocol that carried the request.
    pub transport: Transport,
    /// The client's address and port.
    pub peer: SocketAddr,
    /// The server address the request arrived on.
    pub local: SocketAddr,
    /// The file name as the client sent it.
    pub filename: String,
    /// Read (RRQ; over HTTP `GET` or `HEAD`) or write (WRQ; `PUT`).
    pub kind: Kind,
    /// The transfer mode the client asked for.
    pub mode: Mode,
    /// The name of the route that took the request (the handler's name for
    /// macro routes), `None` when no route did or the request was refused
    /// before routing.
    pub route: Option<Arc<str>>,
    /// That route's pattern, as written.
    pub pattern: Option<Arc<str>>,
    /// The options the client asked for (RFC 2347), names and values as
    /// sent.
    pub requested: Vec<(String, String)>,
    /// The options the server granted in its OACK (empty when it sent
    /// none).
    pub granted: Vec<(String, String)>,
    /// Payload bytes acknowledged by the client (read) or received in order
    /// (write). Over HTTP: body bytes sent (read) or received (write).
    pub bytes: u64,
    /// Blocks acknowledged (read) or received in order (write); 0 over
    /// HTTP.
    pub blocks: u64,
    /// Packets the server sent again (timeouts, repeated requests).
    pub retransmits: u64,
    /// Packets received that carried nothing new: duplicate or stale ACKs
    /// (read), duplicate or out-of-order DATA (write).
    pub duplicates: u64,
    /// The smoothed round trip measured during the transfer (RFC 6298),
    /// when one was measured.
    pub rtt: Option<Duration>,
    /// When the transfer started (wall clock).
    pub started: SystemTime,
    /// From the start of the transfer to its outcome (an upload's dally
    /// after the final ACK does not count); zero for a request refused by a
    /// limit before a transfer started.
    pub duration: Duration,
    /// How it ended.
    pub outcome: TransferOutcome,
    /// The W3C `traceparent` appended to the file name, if any (see
    /// [`Traceparent`](crate::Traceparent)); `filename` keeps it. Over
    /// HTTP, a `traceparent` header's comes first.
    pub traceparent: Option<crate::Traceparent>,
    /// The HTTP status of the response (HTTP only): 200, 206 for a range,
    /// 404 for a missing file, and so on.
    pub status: Option<u16>,
}

/// How a transfer ended.
///
/// Its [`Display`](fmt::Display) is the short name the transfer's log line
/// uses, such as `complete` or `client-error` (see [`as_str`](Self::as_str)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransferOutcome {
    /// Every byte was sent and acknowledged (read), or received and
    /// accepted (write).
    Complete,
    /// The client answered the OACK with an ERROR: it only wanted the
    /// options (UEFI firmware asks for `tsize` this way); over HTTP, a
    /// `HEAD` request, answered with the headers of a `GET`.
    SizeProbe,
    /// The client sent an ERROR and the transfer stopped.
    ClientError {
        /// The code the client sent (not always 0..=8).
        code: u16,
        /// The client's message.
        message: String,
    },
    /// The server refused the request or ended the transfer with an ERROR
    /// (no route, a handler's error, a limit, shutting down).
    ServerError {
        /// The code sent.
        code: ErrorCode,
        /// The message sent.
        message: String,
    },
    /// The client stopped answering (over HTTP: no byte moved for
    /// [`HttpConfig::stall_timeout`](crate::config::HttpConfig::stall_timeout)).
    TimedOut,
    /// The client closed its connection before the response was sent
    /// whole, or before its upload was (HTTP).
    Disconnected,
    /// A different request from the same client address and port replaced
    /// this transfer.
    Superseded,
    /// Refused by a transfer limit before a transfer started.
    Refused(Limit),
}

/// The limit a refused request ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// Its address already had this many transfers
    /// ([`Config::max_transfers_per_host`](crate::Config::max_transfers_per_host)):
    /// the client was told with ERROR 0.
    PerHost(usize),
    /// The server was at its transfer limit
    /// ([`Config::max_transfers`](crate::Config::max_transfers)) and the
    /// request waited too long, or found the waiting room full; it was
    /// dropped without an answer (the client may send it again).
    Server,
}

impl TransferOutcome {
    /// True for [`Complete`](Self::Complete) and [`SizeProbe`](Self::SizeProbe).
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Complete | Self::SizeProbe)
    }

    /// A short, stable name, fit for a metric label: `complete`,
    /// `size-probe`, `client-error`, `error`, `timeout`, `disconnected`,
    /// `superseded`, `refused`.
    ///
    /// # Examples
    ///
    /// ```
    /// use emmer::event::TransferOutcome;
    /// assert_eq!(TransferOutcome::TimedOut.as_str(), "timeout");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::SizeProbe => "size-probe",
            Self::ClientError { .. } => "client-error",
            Self::ServerError { .. } => "error",
            Self::TimedOut => "timeout",
            Self::Disconnected => "disconnected",
            Self::Superseded => "superseded",
            Self::Refused(_) => "refused",
        }
    }

    /// The TFTP error code, for an ERROR sent by either side.
    pub fn code(&self) -> Option<u16> {
        match self {
            Self::ClientError { code, .. } => Some(*code),
            Self::ServerError { code, .. } => Some(code.as_u16()),
            Self::Refused(Limit::PerHost(_)) => Some(0),
            _ => None,
        }
    }
}

impl fmt::Display for TransferOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClientError { code, message } => {
                write!(f, "client-error {code}: {message}")
            }
            Self::ServerError { code, message } => {
                write!(f, "error {}: {message}", code.as_u16())
            }
            Self::Refused(Limit::PerHost(n)) => {
                write!(f, "refused: {n} transfers from this address already")
            }
            Self::Refused(Limit::Server) => f.write_str("refused: server at its transfer limit"),
            other => f.write_str(other.as_str()),
        }
    }
}

impl TransferEvent {
    /// An event for a request that `limit` refused before it started.
    pub(crate) fn refused(kind: Kind, request: &Request, limit: Limit) -> Self {
        let mut ev = Self::blank(kind, request, SystemTime::now());
        ev.outcome = TransferOutcome::Refused(limit);
        ev
    }

    /// The event of a request, before anything is known of its transfer.
    pub(crate) fn blank(kind: Kind, request: &Request, started: SystemTime) -> Self {
        Self {
            transport: request.transport(),
            peer: request.peer(),
            local: request.local_addr(),
            filename: request.filename().to_owned(),
            kind,
            mode: request.mode(),
            route: None,
            pattern: None,
            requested: request.options().to_vec(),
            granted: Vec::new(),
            bytes: 0,
            blocks: 0,
            retransmits: 0,
            duplicates: 0,
            rtt: None,
            started,
            duration: Duration::ZERO,
            outcome: TransferOutcome::Complete,
            traceparent: request.traceparent().cloned(),
            status: None,
        }
    }
}

/// A callback registered with [`App::on_transfer`](crate::App::on_transfer).
pub(crate) type Callback = Arc<dyn Fn(&TransferEvent) + Send + Sync>;

/// What an app observes its transfers with, handed to the server at start.
#[derive(Clone, Default)]
pub(crate) struct Observers {
    pub(crate) callbacks: Vec<Callback>,
}

impl fmt::Debug for Observers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Observers({} callbacks)", self.callbacks.len())
    }
}

/// The server's end of the event queue.
pub(crate) struct Events {
    /// `None` when nobody listens: no event is built.
    tx: Option<SyncSender<TransferEvent>>,
    dropped: Arc<AtomicU64>,
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("enabled", &self.tx.is_some())
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .finish()
    }
}

impl Events {
    /// Starts the dispatcher thread when there are callbacks.
    pub(crate) fn start(observers: Observers) -> Self {
        Self::with_capacity(observers, EVENT_QUEUE)
    }

    fn with_capacity(observers: Observers, capacity: usize) -> Self {
        let dropped = Arc::new(AtomicU64::new(0));
        if observers.callbacks.is_empty() {
            return Self { tx: None, dropped };
        }
        let (tx, rx) = sync_channel(capacity);
        let counter = dropped.clone();
        let spawned = std::thread::Builder::new()
            .name("emmer-events".into())
            .spawn(move || dispatch(rx, observers.callbacks, counter));
        match spawned {
            Ok(_) => Self {
                tx: Some(tx),
                dropped,
            },
            Err(e) => {
                tracing::error!(error = %e, "cannot start the transfer event thread; on_transfer callbacks will not be called");
                Self { tx: None, dropped }
            }
        }
    }

    /// Whether anyone listens (an event is worth building): a callback, or
    /// the metrics (feature `metrics`).
    pub(crate) fn enabled(&self) -> bool {
        self.tx.is_some() || crate::metrics::ENABLED
    }

    /// Records the event `make` builds as metrics and queues it for the
    /// callbacks, if anyone listens; never waits.
    pub(crate) fn emit(&self, make: impl FnOnce() -> TransferEvent) {
        if !self.enabled() {
            return;
        }
        let ev = make();
        crate::metrics::record(&ev);
        let Some(tx) = &self.tx else { return };
        match tx.try_send(ev) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // The dispatcher is gone (it cannot end while we hold the
            // sender, short of a bug): nothing to do.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Events dropped because the queue was full, since the start.
    #[cfg(test)]
    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The dispatcher thread: calls every callback for every event, in order,
/// until the server is gone.
fn dispatch(rx: Receiver<TransferEvent>, callbacks: Vec<Callback>, dropped: Arc<AtomicU64>) {
    let mut reported = 0u64;
    while let Ok(ev) = rx.recv() {
        for cb in &callbacks {
            if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| cb(&ev))) {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-string payload".to_owned());
                tracing::error!(panic = %what, file = %ev.filename, "an on_transfer callback panicked; events go on");
            }
        }
        let lost = dropped.load(Ordering::Relaxed);
        if lost > reported {
            tracing::warn!(
                dropped = lost - reported,
                total = lost,
                "transfer events were dropped: the on_transfer callbacks fell behind"
            );
            reported = lost;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::mpsc;

    use super::*;

    fn event(name: &str) -> TransferEvent {
        TransferEvent::blank(
            Kind::Read,
            &Request::builder(name).build(),
            SystemTime::now(),
        )
    }

    #[test]
    #[cfg(not(feature = "metrics"))]
    fn without_callbacks_nothing_is_built() {
        let events = Events::start(Observers::default());
        assert!(!events.enabled());
        events.emit(|| panic!("no event is built when nobody listens"));
    }

    /// A callback that blocks fills the queue: further events are dropped
    /// and counted at once, and emit never waits.
    #[test]
    fn a_full_queue_drops_and_counts_without_waiting() {
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let gate_rx = Mutex::new(gate_rx);
        let (seen_tx, seen_rx) = mpsc::channel::<String>();
        let cb: Callback = Arc::new(move |ev: &TransferEvent| {
            seen_tx.send(ev.filename.clone()).unwrap();
            // Blocks until the test lets it go on.
            let _ = gate_rx.lock().unwrap().recv();
        });
        let events = Events::with_capacity(
            Observers {
                callbacks: vec![cb],
            },
            2,
        );
        events.emit(|| event("first"));
        // The dispatcher holds "first" inside the callback.
        assert_eq!(
            seen_rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            "first"
        );
        let t0 = std::time::Instant::now();
        for i in 0..10 {
            events.emit(|| event(&format!("e{i}")));
        }
        assert!(t0.elapsed() < Duration::from_secs(1), "emit never waits");
        assert_eq!(events.dropped(), 8, "two fit in the queue");
        for _ in 0..3 {
            gate_tx.send(()).unwrap();
        }
        assert_eq!(seen_rx.recv_timeout(Duration::from_secs(5)).unwrap(), "e0");
        assert_eq!(seen_rx.recv_timeout(Duration::from_secs(5)).unwrap(), "e1");
    }

    #[test]
    fn a_panicking_callback_does_not_stop_the_others_or_later_events() {
        let (tx, rx) = mpsc::channel::<String>();
        let boom: Callback = Arc::new(|ev: &TransferEvent| {
            if ev.filename == "boom" {
                panic!("callback failed on purpose");
            }
        });
        let record: Callback = Arc::new(move |ev: &TransferEvent| {
            tx.send(ev.filename.clone()).unwrap();
        });
        let events = Events::start(Observers {
            callbacks: vec![boom, record],
        });
        events.emit(|| event("boom"));
        events.emit(|| event("after"));
        let got: Vec<String> = (0..2)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(got, ["boom", "after"]);
    }

    #[test]
    fn outcome_names_and_codes() {
        let e = TransferOutcome::ServerError {
            code: ErrorCode::FileNotFound,
            message: "file not found".into(),
        };
        assert_eq!(e.as_str(), "error");
        assert_eq!(e.code(), Some(1));
        assert_eq!(e.to_string(), "error 1: file not found");
        assert!(!e.is_success());
        assert!(TransferOutcome::SizeProbe.is_success());
        assert_eq!(TransferOutcome::Refused(Limit::PerHost(2)).code(), Some(0));
        assert_eq!(TransferOutcome::Refused(Limit::Server).code(), None);
    }
}
