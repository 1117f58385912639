//! Metrics through the [`metrics`](https://docs.rs/metrics) facade, with the
//! cargo feature `metrics`.
//!
//! A library emits, the application chooses the exporter: install any
//! `metrics` recorder (`metrics-exporter-prometheus`, statsd, ...) before
//! starting the server, and emmer's numbers go there. Without the feature
//! nothing is recorded and the facade is not a dependency.
//!
//! ```toml
//! emmer = { version = "0.1", features = ["metrics"] }
//! ```
//!
//! Labels are route names (the handler's name for macro routes, `read route
//! "<pattern>"` for builder routes, `serve_dir "<prefix>"`, `-` for none),
//! never file names, so that their number stays bounded whatever clients
//! ask for; `op` is `read` or `write`; `outcome` is
//! [`TransferOutcome::as_str`](crate::TransferOutcome::as_str).
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `emmer_transfers_total` | counter | `route`, `op`, `outcome` | requests that ended, refused ones included |
//! | `emmer_transfer_bytes_total` | counter | `route`, `op`, `outcome` | payload bytes acknowledged (read) or received (write) |
//! | `emmer_transfer_duration_seconds` | histogram | `route`, `op` | from the start of a transfer to its outcome |
//! | `emmer_retransmits_total` | counter | `route`, `op` | packets sent again |
//! | `emmer_active_transfers` | gauge | `op` | transfers under way |
//! | `emmer_refused_requests_total` | counter | `reason` | requests refused before a transfer ran: `no-route`, `per-host-limit`, `transfer-limit` |
//!
//! `examples/metrics.rs` serves them for Prometheus.

#[cfg(feature = "metrics")]
use crate::event::{Limit, TransferEvent, TransferOutcome};
use crate::route::Kind;

/// Requests that ended, by `route`, `op` and `outcome`.
pub const TRANSFERS: &str = "emmer_transfers_total";
/// Payload bytes, by `route`, `op` and `outcome`.
pub const BYTES: &str = "emmer_transfer_bytes_total";
/// Transfer durations in seconds, by `route` and `op`.
pub const DURATION: &str = "emmer_transfer_duration_seconds";
/// Retransmitted packets, by `route` and `op`.
pub const RETRANSMITS: &str = "emmer_retransmits_total";
/// Transfers under way, by `op`.
pub const ACTIVE: &str = "emmer_active_transfers";
/// Requests refused before a transfer ran, by `reason`.
pub const REFUSED: &str = "emmer_refused_requests_total";

/// Whether transfer events are recorded as metrics.
pub(crate) const ENABLED: bool = cfg!(feature = "metrics");

/// A transfer is under way until the returned guard is dropped.
pub(crate) fn active(kind: Kind) -> Active {
    #[cfg(feature = "metrics")]
    metrics::gauge!(ACTIVE, "op" => kind.as_str()).increment(1.0);
    Active { kind }
}

/// Counts a transfer under way (see [`active`]).
pub(crate) struct Active {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    kind: Kind,
}

impl Drop for Active {
    fn drop(&mut self) {
        #[cfg(feature = "metrics")]
        metrics::gauge!(ACTIVE, "op" => self.kind.as_str()).decrement(1.0);
    }
}

/// Records a finished (or refused) request.
#[cfg(feature = "metrics")]
pub(crate) fn record(ev: &TransferEvent) {
    let route = ev.route.as_deref().unwrap_or("-").to_owned();
    let op = ev.kind.as_str();
    let outcome = ev.outcome.as_str();
    let labels = [
        ("route", route.clone()),
        ("op", op.to_owned()),
        ("outcome", outcome.to_owned()),
    ];
    metrics::counter!(TRANSFERS, &labels).increment(1);
    metrics::counter!(BYTES, &labels).increment(ev.bytes);
    let reason = match &ev.outcome {
        TransferOutcome::Refused(Limit::PerHost(_)) => Some("per-host-limit"),
        TransferOutcome::Refused(_) => Some("transfer-limit"),
        TransferOutcome::ServerError { .. } if ev.route.is_none() => Some("no-route"),
        _ => None,
    };
    if let Some(reason) = reason {
        metrics::counter!(REFUSED, "reason" => reason).increment(1);
        if matches!(ev.outcome, TransferOutcome::Refused(_)) {
            return;
        }
    }
    let labels = [("route", route), ("op", op.to_owned())];
    metrics::histogram!(DURATION, &labels).record(ev.duration.as_secs_f64());
    metrics::counter!(RETRANSMITS, &labels).increment(ev.retransmits);
}

#[cfg(not(feature = "metrics"))]
pub(crate) fn record(_: &crate::event::TransferEvent) {}
