//! The receiver side of a write request (WRQ): the client sends DATA, the
//! server ACKs (RFC 1350), in windows (RFC 7440), after an optional OACK.
//!
//! New in-order data is handed back from [`WriteTransfer::handle_packet`]; the
//! driver stores it before it polls the ACK, which gives back-pressure. The
//! final ACK is held until the driver calls [`WriteTransfer::accept`], so a
//! handler can still refuse the upload with an ERROR.

//! Rules followed here, each tested below:
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
//! - A DATA block larger than the negotiated blksize ends the transfer with
//!   ERROR 4. ACK, RRQ, WRQ and OACK from the client are ignored: they cannot
//!   be part of a write, and a stray packet should not kill a transfer.

use std::time::{Duration, Instant};

use super::block::to_wire;
use super::packet::{encode_ack, encode_error, encode_oack};
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
    base_timeout: Duration,
    backoff: u32,
    max_timeout: Duration,
    max_retries: u32,
    dally: Duration,
    max_bytes: u64,

    /// The encoded OACK, empty when the transfer starts with ACK 0.
    oack: Vec<u8>,
    phase: Phase,
    /// The OACK / ACK 0 must be sent (first time or again).
    start_due: bool,
    /// The next block expected (absolute); `expected - 1` were received.
    expected: u64,
    /// Blocks received in order since the last ACK.
    since_ack: u64,
    /// An ACK of `expected - 1` must be sent.
    ack_due: bool,
    /// A re-ACK for a duplicate or a gap was sent since the last new block.
    reack_sent: bool,
    /// Timeouts since the last progress.
    retries: u32,
    /// Retransmission deadline, or the end of the dally.
    deadline: Option<Instant>,
    /// The ERROR of `outcome` (Failed) still has to be sent.
    error_pending: bool,
    outcome: Option<Outcome>,
    bytes: u64,
    retransmits: u64,
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
        let base_timeout = negotiated.timeout.unwrap_or(config.timeout);
        Self {
            blksize: usize::from(negotiated.params.blksize.max(1)),
            windowsize: u64::from(negotiated.params.windowsize.max(1)),
            rollover: config.rollover,
            base_timeout,
            backoff: config.backoff.max(1),
            max_timeout: config.max_timeout,
            max_retries: config.max_retries,
            dally: config.dally,
            max_bytes,
            oack,
            phase: Phase::Start,
            start_due: true,
            expected: 1,
            since_ack: 0,
            ack_due: false,
            reack_sent: false,
            retries: 0,
            deadline: Some(now + base_timeout),
            error_pending: false,
            outcome: None,
            bytes: 0,
            retransmits: 0,
        }
    }

    /// The wait before the next retransmission: the base timeout times
    /// backoff^retries, capped at `max_timeout` (but never below a negotiated
    /// timeout, which the client was promised).
    fn rto(&self) -> Duration {
        let factor = self.backoff.saturating_pow(self.retries);
        let cap = self.max_timeout.max(self.base_timeout);
        self.base_timeout.saturating_mul(factor).min(cap)
    }

    fn end(&mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
        self.phase = Phase::Done;
        self.deadline = None;
        self.ack_due = false;
        self.start_due = false;
    }

    /// Handles a packet from the client. Returns the payload of a new
    /// in-order DATA block, which the driver must store before it polls for
    /// the ACK; duplicates and out-of-order blocks return `None`.
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
            (Phase::Start | Phase::Receiving | Phase::Complete, Packet::Error { code, message }) => {
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
        self.bytes = total;
        self.expected += 1;
        self.phase = Phase::Receiving;
        self.start_due = false;
        self.reack_sent = false;
        self.retries = 0;
        self.deadline = Some(now + self.rto());
        if data.len() < self.blksize {
            // RFC 1350: a short block is the last; its ACK waits for accept().
            self.phase = Phase::Complete;
            self.deadline = None;
            self.ack_due = false;
        } else {
            self.since_ack += 1;
            // RFC 7440: ACK once a whole window has arrived.
            if self.since_ack >= self.windowsize {
                self.ack_due = true;
                self.since_ack = 0;
            }
        }
        Some(data)
    }

    /// Handles the expiry of the deadline from [`poll_timeout`](Self::poll_timeout).
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.deadline {
            Some(deadline) if now >= deadline => {}
            _ => return,
        }
        match self.phase {
            Phase::Start | Phase::Receiving => {
                if self.retries >= self.max_retries {
                    self.end(Outcome::TimedOut);
                    return;
                }
                self.retries += 1;
                self.retransmits += 1;
                if self.phase == Phase::Start {
                    self.start_due = true;
                } else {
                    // Nothing came: ACK the last block received in order.
                    self.ack_due = true;
                    self.since_ack = 0;
                }
                self.reack_sent = false;
                self.deadline = Some(now + self.rto());
            }
            Phase::Dally => {
                self.phase = Phase::Done;
                self.deadline = None;
            }
            Phase::Complete | Phase::Done => {}
        }
    }

    /// True once the last block has arrived and the transfer waits for
    /// [`accept`](Self::accept) or [`abort`](Self::abort).
    pub fn is_complete(&self) -> bool {
        self.phase == Phase::Complete
    }

    /// The upload was accepted: send the final ACK and dally.
    pub fn accept(&mut self, now: Instant) {
        if self.phase != Phase::Complete {
            return;
        }
        self.ack_due = true;
        self.outcome = Some(Outcome::Complete);
        self.phase = Phase::Dally;
        self.deadline = Some(now + self.dally);
    }

    /// Ends the transfer with an ERROR instead of the next ACK.
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

    /// Clears `out` and writes the next packet to send into it; false when
    /// there is nothing to send now.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> bool {
        let _ = now;
        if self.error_pending {
            self.error_pending = false;
            if let Some(Outcome::Failed { code, message }) = &self.outcome {
                encode_error(out, *code, message);
                return true;
            }
            return false;
        }
        if self.ack_due {
            self.ack_due = false;
            encode_ack(out, to_wire(self.expected - 1, self.rollover));
            return true;
        }
        if self.start_due {
            self.start_due = false;
            if self.oack.is_empty() {
                // RFC 1350: a WRQ is answered with ACK 0.
                encode_ack(out, 0);
            } else {
                out.clear();
                out.extend_from_slice(&self.oack);
            }
            return true;
        }
        false
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called; `None`
    /// when the transfer is over or waits for [`accept`](Self::accept).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Start | Phase::Receiving | Phase::Dally => self.deadline,
            Phase::Complete | Phase::Done => None,
        }
    }

    /// How the transfer ended, once it has. Set at the final ACK (the dally
    /// that follows does not change it); [`is_finished`](Self::is_finished)
    /// tells when the driver may drop the transfer.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// True when nothing more will be sent or received (after the dally).
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Done && !self.error_pending && !self.ack_due
    }

    /// Payload bytes received in order so far.
    pub fn bytes_received(&self) -> u64 {
        self.bytes
    }

    /// Packets sent again because of a timeout.
    pub fn retransmits(&self) -> u64 {
        self.retransmits
    }
}
