//! The receiver side of a write request (WRQ): the client sends DATA, the
//! server ACKs (RFC 1350), in windows (RFC 7440), after an optional OACK.
//!
//! New in-order data is handed back from [`WriteTransfer::handle_packet`]; the
//! driver stores it before it polls the ACK, which gives back-pressure. The
//! final ACK is held until the driver calls [`WriteTransfer::accept`], so a
//! handler can still refuse the upload with an ERROR.

//! Rules followed here, each tested in `write/tests.rs`:
//!
//! - RFC 2347: the first packet is the OACK when options were accepted,
//!   ACK 0 otherwise (RFC 1350); it is sent again on timeout.
//! - RFC 1350: a block shorter than blksize is the last one.
//! - RFC 7440: an ACK goes out after `windowsize` blocks in order, and for
//!   the last block. A duplicate or a block after a gap is answered with an
//!   ACK of the last block received in order; with a window larger than 1,
//!   at most one such ACK is sent until new data arrives or the timer fires,
//!   so a burst of out-of-order blocks does not cause a burst of ACKs.
//! - RFC 1350 §6: after the final ACK the server dallies, to ACK the last
//!   block again if the client did not get the ACK.
//! - RFC 1350 §2: a client that gets no answer repeats its WRQ; until DATA 1
//!   arrives, a repeat sends the OACK / ACK 0 again, spending no retry; later
//!   it changes nothing.
//! - A DATA block larger than the negotiated blksize ends the transfer with
//!   ERROR 4. ACK, RRQ, WRQ and OACK from the client are ignored: they cannot
//!   be part of a write, and a stray packet should not kill a transfer.

use std::time::{Duration, Instant};

use super::block::to_wire;
use super::packet::{append_ack, append_error, encode_oack};
use super::retransmit::{Expiry, Retransmit};
use super::{Negotiated, Outcome, Packet, Rollover, TransferConfig};
use crate::ErrorCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The OACK (or ACK 0) is out; waiting for DATA 1.
    Start,
    /// Receiving blocks.
    Receiving,
    /// The last block arrived; waiting for accept() or abort().
    Complete,
    /// Final ACK sent; re-ACKing a retransmitted last block until the
    /// deadline.
    Dally,
    /// Over.
    Done,
}

/// State of one write transfer.
#[derive(Debug)]
pub struct WriteTransfer {
    blksize: usize,
    windowsize: u64,
    rollover: Rollover,
    /// The retransmission timer: armed while the OACK / ACK 0 or the last
    /// ACK waits for the next DATA.
    rtx: Retransmit,
    dally: Duration,
    window_idle: Duration,
    max_bytes: u64,

    /// The encoded OACK, empty when the transfer starts with ACK 0.
    oack: Vec<u8>,
    phase: Phase,
    /// The OACK / ACK 0 must be sent (first time or again).
    start_due: bool,
    /// The OACK / ACK 0 went out at least once.
    start_sent: bool,
    /// The next block expected (absolute); `expected - 1` were received.
    expected: u64,
    /// Blocks received in order since the last ACK.
    since_ack: u64,
    /// An ACK of `expected - 1` must be sent.
    ack_due: bool,
    /// A re-ACK for a duplicate or a gap was sent since the last new block.
    reack_sent: bool,
    /// The short wait for the rest of a window: when it passes, ACK what
    /// arrived in order. It comes before the retransmission deadline.
    idle: Option<Instant>,
    /// The end of the dally.
    dally_until: Option<Instant>,
    /// The ACK due is the first for its block (a window's): its answer can
    /// be timed. A re-ACK cannot (Karn's rule).
    ack_fresh: bool,
    /// The block whose arrival answers the packet being timed, and when
    /// that packet was sent.
    timing: Option<(u64, Instant)>,
    /// The ERROR of `outcome` (Failed) still has to be sent.
    error_pending: bool,
    outcome: Option<Outcome>,
    bytes: u64,
    retransmits: u64,
    duplicates: u64,
}

impl WriteTransfer {
    /// Starts a write transfer: the first packet is the OACK when
    /// `negotiated.oack` is not empty, ACK 0 otherwise. More than `max_bytes`
    /// of data ends the transfer with ERROR 3.
    pub fn new(
        now: Instant,
        negotiated: &Negotiated,
        config: &TransferConfig,
        max_bytes: u64,
    ) -> Self {
        let mut oack = Vec::new();
        if !negotiated.oack.is_empty() {
            encode_oack(&mut oack, &negotiated.oack);
        }
        // RFC 2349: the negotiated timeout replaces the configured one.
        let mut rtx = Retransmit::new(negotiated.timeout, config);
        rtx.arm(now);
        Self {
            blksize: usize::from(negotiated.params.blksize.max(1)),
            windowsize: u64::from(negotiated.params.windowsize.max(1)),
            rollover: config.rollover,
            rtx,
            // RFC 1350 §6: long enough for the client's own retransmission
            // of its last block, twice the timeout it asked for.
            dally: config
                .dally
                .max(negotiated.timeout.unwrap_or_default().saturating_mul(2)),
            window_idle: config.window_idle,
            max_bytes,
            oack,
            phase: Phase::Start,
            start_due: true,
            start_sent: false,
            expected: 1,
            since_ack: 0,
            ack_due: false,
            reack_sent: false,
            idle: None,
            dally_until: None,
            ack_fresh: false,
            timing: None,
            error_pending: false,
            outcome: None,
            bytes: 0,
            retransmits: 0,
            duplicates: 0,
        }
    }

    fn end(&mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
        self.phase = Phase::Done;
        self.rtx.disarm();
        self.idle = None;
        self.dally_until = None;
        self.ack_due = false;
        self.start_due = false;
    }

    /// Handles a packet from the client (the driver has checked its source,
    /// RFC 1350 §4). Returns the payload of a new in-order DATA block, which
    /// the driver must hand on before it polls for the ACK (back-pressure);
    /// duplicates and out-of-order blocks return `None` and are answered
    /// with an ACK of the last block received in order (RFC 7440).
    ///
    /// A short block is the last (RFC 1350): its ACK waits for
    /// [`accept`](Self::accept). During the dally a retransmitted last block
    /// is ACKed again (RFC 1350 §6). An ERROR ends the transfer; a block
    /// larger than blksize ends it with ERROR 4 (RFC 2348). ACK, RRQ, WRQ and
    /// OACK are ignored (a repeated WRQ goes to [`handle_repeat`](Self::handle_repeat)).
    pub fn handle_packet<'p>(&mut self, now: Instant, packet: &Packet<'p>) -> Option<&'p [u8]> {
        match (self.phase, packet) {
            (Phase::Done, _) => None,
            (Phase::Start | Phase::Receiving, Packet::Data { block, data }) => {
                self.on_data(now, *block, data)
            }
            // The upload waits for accept(): retransmissions of the last
            // block are ignored (no ACK before the handler has decided).
            (Phase::Complete, Packet::Data { .. }) => None,
            (Phase::Dally, Packet::Data { block, .. }) => {
                // RFC 1350 §6: the final ACK was lost; send it again.
                if *block == to_wire(self.expected - 1, self.rollover) {
                    self.ack_due = true;
                }
                None
            }
            (
                Phase::Start | Phase::Receiving | Phase::Complete,
                Packet::Error { code, message },
            ) => {
                self.end(Outcome::PeerError {
                    code: *code,
                    message: message.to_string(),
                });
                None
            }
            // Dallying, the upload is complete: a late ERROR changes nothing.
            (Phase::Dally, Packet::Error { .. }) => None,
            // Not part of a write: ignored.
            (_, Packet::Ack { .. } | Packet::Rrq(_) | Packet::Wrq(_) | Packet::Oack { .. }) => None,
        }
    }

    fn on_data<'p>(&mut self, now: Instant, wire: u16, data: &'p [u8]) -> Option<&'p [u8]> {
        if data.len() > self.blksize {
            // RFC 2348: blocks are at most the negotiated blksize.
            let message = format!(
                "DATA block of {} bytes is larger than the negotiated blksize of {} bytes",
                data.len(),
                self.blksize
            );
            self.abort(ErrorCode::IllegalOperation, &message);
            return None;
        }
        if wire != to_wire(self.expected, self.rollover) {
            // A duplicate, or a block after a gap (RFC 7440): ACK the last
            // block received in order, so the sender goes on from there.
            // With windows, once until new data or the timer (no ACK storm).
            self.duplicates += 1;
            if self.windowsize == 1 || !self.reack_sent {
                self.ack_due = true;
                self.since_ack = 0;
                self.reack_sent = true;
            }
            return None;
        }
        let total = self.bytes + data.len() as u64;
        if total > self.max_bytes {
            let message = format!("upload exceeds the limit of {} bytes", self.max_bytes);
            self.abort(ErrorCode::DiskFull, &message);
            return None;
        }
        if let Some((block, sent)) = self.timing.take() {
            if block == self.expected {
                self.rtx.sample(now.saturating_duration_since(sent));
            }
        }
        self.bytes = total;
        self.expected += 1;
        self.phase = Phase::Receiving;
        self.start_due = false;
        self.reack_sent = false;
        self.rtx.progress();
        self.rtx.arm(now);
        if data.len() < self.blksize {
            // RFC 1350: a short block is the last; its ACK waits for accept().
            self.phase = Phase::Complete;
            self.rtx.disarm();
            self.idle = None;
            self.ack_due = false;
        } else {
            self.since_ack += 1;
            // RFC 7440: ACK once a whole window has arrived.
            if self.since_ack >= self.windowsize {
                self.ack_due = true;
                self.ack_fresh = true;
                self.since_ack = 0;
                self.idle = None;
            } else {
                // Mid-window: if the rest does not follow soon, it was lost.
                self.idle = Some(now + self.window_idle.min(self.rtx.rto()));
            }
        }
        Some(data)
    }

    /// Handles the expiry of the deadline from [`poll_timeout`](Self::poll_timeout)
    /// (an early call does nothing). Mid-window, the short idle wait ACKs
    /// what arrived in order (RFC 7440), no retry spent. Otherwise the OACK /
    /// ACK 0 or the last ACK is sent again (RFC 1350), one retry spent and
    /// the next wait backed off; after `max_retries` the transfer ends as
    /// [`Outcome::TimedOut`], silently. At the end of the dally the transfer
    /// is finished.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Start | Phase::Receiving => {
                if let Some(idle) = self.idle {
                    if now < idle {
                        return;
                    }
                    // The rest of the window did not come: ACK what arrived
                    // in order so the sender goes on from there. Not a
                    // retransmission, and no retry is spent.
                    self.idle = None;
                    self.ack_due = true;
                    self.since_ack = 0;
                    self.reack_sent = false;
                    self.rtx.arm(now);
                    return;
                }
                match self.rtx.expire(now) {
                    Expiry::NotYet => return,
                    Expiry::GiveUp => {
                        self.end(Outcome::TimedOut);
                        return;
                    }
                    Expiry::Retry => {}
                }
                self.retransmits += 1;
                if self.phase == Phase::Start {
                    self.start_due = true;
                } else {
                    // Nothing came: ACK the last block received in order.
                    self.ack_due = true;
                    self.since_ack = 0;
                }
                self.reack_sent = false;
                self.rtx.arm(now);
            }
            Phase::Dally => {
                if self.dally_until.is_some_and(|end| now >= end) {
                    self.phase = Phase::Done;
                    self.dally_until = None;
                }
            }
            Phase::Complete | Phase::Done => {}
        }
    }

    /// The client sent its WRQ again (the driver matched it to this
    /// transfer). RFC 1350 §2: a side that gets no answer retransmits its
    /// last packet, so the client has not received our first one.
    ///
    /// If no DATA has come yet and the OACK (RFC 2347) or ACK 0 (RFC 1350)
    /// is out, it goes again at the next [`poll_transmit`](Self::poll_transmit),
    /// counted in [`retransmits`](Self::retransmits) but spending no retry and
    /// leaving the backoff as it is (the timer restarts from now); returns
    /// true. Otherwise (nothing sent yet, DATA has come, or the transfer is
    /// over) nothing happens and it returns false: a stale request never
    /// causes a retransmission.
    pub fn handle_repeat(&mut self, now: Instant) -> bool {
        if self.phase != Phase::Start || !self.start_sent {
            return false;
        }
        if !self.start_due {
            self.start_due = true;
            self.retransmits += 1;
            self.rtx.arm(now);
        }
        true
    }

    /// True once the last block has arrived (RFC 1350: the short one) and
    /// the transfer waits for the verdict: [`accept`](Self::accept) or
    /// [`abort`](Self::abort). Nothing is sent and no timer runs meanwhile.
    pub fn awaits_verdict(&self) -> bool {
        self.phase == Phase::Complete
    }

    /// The upload was accepted: the final ACK goes out, the outcome is
    /// [`Outcome::Complete`], and the transfer dallies to ACK a retransmitted
    /// last block again (RFC 1350 §6). Ignored unless
    /// [`awaits_verdict`](Self::awaits_verdict).
    pub fn accept(&mut self, now: Instant) {
        if self.phase != Phase::Complete {
            return;
        }
        self.ack_due = true;
        self.outcome = Some(Outcome::Complete);
        self.phase = Phase::Dally;
        self.dally_until = Some(now + self.dally);
    }

    /// Ends the transfer with an ERROR (RFC 1350 §7) instead of the next
    /// ACK: the ERROR is the next and last packet
    /// [`poll_transmit`](Self::poll_transmit) gives. Ignored once the outcome
    /// is known (after [`accept`](Self::accept) too).
    pub fn abort(&mut self, code: ErrorCode, message: &str) {
        if self.outcome.is_some() {
            return;
        }
        self.end(Outcome::Failed {
            code,
            message: message.to_owned(),
        });
        self.error_pending = true;
    }

    /// Appends the next packet to send to `out` (which is never cleared)
    /// and returns its length; `None` when there is nothing to send now.
    /// Call it until `None`.
    ///
    /// In order: the ERROR of an [`abort`](Self::abort); an ACK that is due
    /// (after a window, RFC 7440, a re-ACK, the final ACK); the first packet,
    /// which is the OACK when options were accepted (RFC 2347) and ACK 0
    /// otherwise (RFC 1350).
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> Option<usize> {
        let start = out.len();
        if self.error_pending {
            self.error_pending = false;
            if let Some(Outcome::Failed { code, message }) = &self.outcome {
                append_error(out, *code, message);
                return Some(out.len() - start);
            }
            return None;
        }
        if self.ack_due {
            self.ack_due = false;
            let fresh = std::mem::take(&mut self.ack_fresh);
            self.timing = fresh.then_some((self.expected, now));
            append_ack(out, to_wire(self.expected - 1, self.rollover));
            return Some(out.len() - start);
        }
        if self.start_due {
            self.start_due = false;
            self.timing = (!self.start_sent).then_some((1, now));
            self.start_sent = true;
            if self.oack.is_empty() {
                // RFC 1350: a WRQ is answered with ACK 0.
                append_ack(out, 0);
            } else {
                out.extend_from_slice(&self.oack);
            }
            return Some(out.len() - start);
        }
        None
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called; `None`
    /// when the transfer is over or waits for [`accept`](Self::accept).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            // The idle wait, when there is one, is never the later.
            Phase::Start | Phase::Receiving => self.idle.or(self.rtx.deadline()),
            Phase::Dally => self.dally_until,
            Phase::Complete | Phase::Done => None,
        }
    }

    /// How the transfer ended, once that is known. [`Outcome::Complete`] is
    /// set at the final ACK (the dally that follows does not change it);
    /// [`is_finished`](Self::is_finished) tells when the driver may drop the
    /// transfer.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// True when nothing more will be sent or received: after the dally
    /// (RFC 1350 §6), or once the ERROR that ended the transfer is sent. The
    /// driver then drops the transfer.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Done && !self.error_pending && !self.ack_due
    }

    /// Payload bytes received in order so far.
    pub fn bytes_received(&self) -> u64 {
        self.bytes
    }

    /// The smoothed round trip measured so far (RFC 6298), if any.
    pub fn srtt(&self) -> Option<Duration> {
        self.rtx.srtt()
    }

    /// Packets sent again because of a timeout or a repeated request
    /// ([`handle_repeat`](Self::handle_repeat)).
    pub fn retransmits(&self) -> u64 {
        self.retransmits
    }

    /// DATA blocks received out of order (duplicates, or after a gap),
    /// answered with an ACK of the last block in order.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Blocks received in order so far.
    pub fn blocks_received(&self) -> u64 {
        self.expected - 1
    }
}

#[cfg(test)]
mod tests;
