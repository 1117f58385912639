//! The sender side of a read request (RRQ): the server sends DATA, the client
//! ACKs (RFC 1350), in windows of blocks (RFC 7440), after an optional OACK
//! (RFC 2347).
//!
//! The body is fed in by the driver through [`ReadTransfer::fill_buf`] /
//! [`ReadTransfer::commit`] / [`ReadTransfer::finish`]; the state machine keeps
//! at most one window of blocks (the unacknowledged ones), and reuses their
//! buffers.

//! Rules followed here, each tested in `read/tests.rs`:
//!
//! - RFC 2347: with options, the OACK goes first and DATA 1 waits for ACK 0;
//!   an ERROR in answer to the OACK ends the transfer as a size probe.
//! - RFC 1350: a block shorter than blksize (possibly empty) is the last one.
//! - RFC 7440: up to windowsize blocks are sent before an ACK is awaited; an
//!   ACK inside the window acknowledges up to its block, and sending resumes
//!   after it.
//! - RFC 1123 §4.2.3.1: an ACK for a block that is not outstanding (a
//!   duplicate) is ignored and never triggers a retransmission (the Sorcerer's
//!   Apprentice bug); only the timer retransmits (and a repeated RRQ, below).
//! - RFC 1350 §2: a client that gets no answer repeats its RRQ; while nothing
//!   sent has been answered, a repeat sends the first packet (the OACK, or
//!   the first window) again, spending no retry; later it changes nothing.
//! - DATA, RRQ, WRQ and OACK from the client are ignored: they cannot be part
//!   of a read, and a stray packet should not kill a transfer.

use std::time::{Duration, Instant};

use super::block::{resolve, to_wire};
use super::packet::{append_error, encode_oack, opcode};
use super::retransmit::{Expiry, Retransmit};
use super::{Negotiated, Outcome, Packet, Rollover, TransferConfig};
use crate::ErrorCode;

/// One block buffer of the window: `blksize` bytes, `len` of them filled.
#[derive(Debug)]
struct Slot {
    buf: Vec<u8>,
    len: usize,
}

/// Where the OACK stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OackState {
    /// No OACK, or it was acknowledged.
    Done,
    /// It must be sent for the first time.
    Due,
    /// It must be sent again (a timeout or a repeated request).
    Resend,
    /// Sent, waiting for ACK 0.
    Sent,
}

/// State of one read transfer.
#[derive(Debug)]
pub struct ReadTransfer {
    blksize: usize,
    windowsize: u64,
    rollover: Rollover,
    /// The retransmission timer: armed while something sent waits for its
    /// acknowledgement.
    rtx: Retransmit,

    /// The encoded OACK, empty when there is none.
    oack: Vec<u8>,
    oack_state: OackState,
    /// Ring of block buffers: block `n` lives in `slots[(n - 1) % windowsize]`.
    /// Grows up to `windowsize` slots, then buffers are reused.
    slots: Vec<Slot>,
    /// Highest block acknowledged (0: none).
    acked: u64,
    /// Highest block that is full (ready to send).
    ready: u64,
    /// The last block, once the body has ended.
    last: Option<u64>,
    /// The next block to transmit.
    next_send: u64,
    /// The highest block transmitted so far (0: none).
    max_sent: u64,
    /// Blocks below this one are sent again because of a timeout or a
    /// repeated request: retransmissions.
    resend_end: u64,
    /// The packet whose round trip is being measured (block 0: the OACK)
    /// and when it was sent; dropped when it is sent again (Karn's rule).
    timing: Option<(u64, Instant)>,
    /// When the rest of a window was last sent again after a mid-window ACK.
    rewound_at: Option<Instant>,
    /// The ERROR of `outcome` (Failed) still has to be sent.
    error_pending: bool,
    outcome: Option<Outcome>,
    bytes_acked: u64,
    retransmits: u64,
    duplicates: u64,
}

impl ReadTransfer {
    /// Starts a read transfer. When `negotiated.oack` is not empty the first
    /// packet is the OACK and DATA 1 waits for ACK 0; otherwise DATA 1 goes
    /// first (once the driver has filled it).
    pub fn new(now: Instant, negotiated: &Negotiated, config: &TransferConfig) -> Self {
        let _ = now;
        let mut oack = Vec::new();
        let oack_state = if negotiated.oack.is_empty() {
            OackState::Done
        } else {
            encode_oack(&mut oack, &negotiated.oack);
            OackState::Due
        };
        Self {
            blksize: usize::from(negotiated.params.blksize.max(1)),
            windowsize: u64::from(negotiated.params.windowsize.max(1)),
            rollover: config.rollover,
            // RFC 2349: the negotiated timeout replaces the configured one.
            rtx: Retransmit::new(negotiated.timeout, config),
            oack,
            oack_state,
            slots: Vec::new(),
            acked: 0,
            ready: 0,
            last: None,
            next_send: 1,
            max_sent: 0,
            resend_end: 0,
            timing: None,
            rewound_at: None,
            error_pending: false,
            outcome: None,
            bytes_acked: 0,
            retransmits: 0,
            duplicates: 0,
        }
    }

    fn slot_index(&self, block: u64) -> usize {
        ((block - 1) % self.windowsize) as usize
    }

    /// The highest block that may be sent: full blocks, and the last one.
    fn sendable(&self) -> u64 {
        self.last
            .unwrap_or(self.ready)
            .min(self.acked + self.windowsize)
    }

    /// True while something sent waits for its acknowledgement.
    fn outstanding(&self) -> bool {
        self.oack_state == OackState::Sent
            || (self.oack_state == OackState::Done && self.max_sent > self.acked)
    }

    fn end(&mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
        self.rtx.disarm();
    }

    /// Space for the next bytes of the body: the unfilled rest of the block
    /// being built. `None` when the window is full or the body has ended.
    pub fn fill_buf(&mut self) -> Option<&mut [u8]> {
        if self.outcome.is_some() || self.last.is_some() {
            return None;
        }
        let block = self.ready + 1;
        // RFC 7440: at most one window beyond the last acknowledged block.
        if block > self.acked + self.windowsize {
            return None;
        }
        let idx = self.slot_index(block);
        if idx == self.slots.len() {
            // First use of this slot; it is reused for later windows.
            self.slots.push(Slot {
                buf: vec![0; self.blksize],
                len: 0,
            });
        }
        let slot = &mut self.slots[idx];
        Some(&mut slot.buf[slot.len..])
    }

    /// `n` bytes of the slice from [`fill_buf`](Self::fill_buf) were written.
    pub fn commit(&mut self, n: usize) {
        if n == 0 || self.outcome.is_some() || self.last.is_some() {
            return;
        }
        let block = self.ready + 1;
        let idx = self.slot_index(block);
        if block > self.acked + self.windowsize || idx >= self.slots.len() {
            debug_assert!(false, "commit without fill_buf");
            return;
        }
        let blksize = self.blksize;
        let slot = &mut self.slots[idx];
        debug_assert!(slot.len + n <= blksize, "commit beyond the fill_buf slice");
        slot.len = (slot.len + n).min(blksize);
        if slot.len == blksize {
            self.ready = block;
        }
    }

    /// The body has ended; the block being built (possibly empty) is the last.
    pub fn finish(&mut self) {
        if self.last.is_none() && self.outcome.is_none() {
            // RFC 1350: a block shorter than blksize ends the transfer, so a
            // body that fills its last block exactly is followed by an empty
            // one. If that block is beyond the window it has no slot yet; it
            // is empty and gets a released (emptied) one.
            self.last = Some(self.ready + 1);
        }
    }

    /// Handles a packet from the client (the driver has checked its source,
    /// RFC 1350 §4).
    ///
    /// ACK 0 acknowledges the OACK (RFC 2347); an ACK of an outstanding block
    /// acknowledges every block up to it (RFC 7440) and sending goes on after
    /// it; any other ACK is a duplicate and ignored (RFC 1123 §4.2.3.1). An
    /// ERROR ends the transfer: a size probe in answer to the OACK, a peer
    /// error otherwise. DATA, RRQ, WRQ and OACK are ignored (a repeated RRQ
    /// goes to [`handle_repeat`](Self::handle_repeat)).
    pub fn handle_packet(&mut self, now: Instant, packet: &Packet<'_>) {
        let _ = now;
        if self.outcome.is_some() {
            return;
        }
        match packet {
            Packet::Ack { block } => self.on_ack(now, *block),
            Packet::Error { code, message } => {
                let outcome = if self.oack_state == OackState::Done {
                    Outcome::PeerError {
                        code: *code,
                        message: message.to_string(),
                    }
                } else {
                    // RFC 2347: the client may refuse the OACK with an ERROR
                    // (UEFI asks for tsize this way): nothing more is sent.
                    Outcome::SizeProbe
                };
                self.end(outcome);
            }
            // Not part of a read: ignored.
            Packet::Data { .. } | Packet::Rrq(_) | Packet::Wrq(_) | Packet::Oack { .. } => {}
        }
    }

    /// Measures the round trip if the packet being timed is acknowledged.
    fn measure(&mut self, now: Instant, acked: u64) {
        if let Some((block, sent)) = self.timing {
            if acked >= block {
                self.rtx.sample(now.saturating_duration_since(sent));
                self.timing = None;
            }
        }
    }

    fn on_ack(&mut self, now: Instant, wire: u16) {
        if self.oack_state != OackState::Done {
            // RFC 2347: ACK 0 acknowledges the OACK; DATA 1 may go.
            if wire == 0 {
                if self.oack_state == OackState::Sent {
                    self.measure(now, 0);
                }
                self.timing = None;
                self.oack_state = OackState::Done;
                self.rtx.progress();
                self.rtx.disarm();
            }
            return;
        }
        // Only an ACK of a block that was sent and not yet acknowledged
        // counts; anything else is a duplicate or stale and is ignored
        // (RFC 1123 §4.2.3.1: never retransmit on a duplicate ACK).
        let count = self.max_sent - self.acked;
        let Some(block) = resolve(wire, self.acked + 1, count, self.rollover) else {
            self.duplicates += 1;
            return;
        };
        for b in self.acked + 1..=block {
            let idx = self.slot_index(b);
            // An empty last block may never have had a slot.
            if let Some(slot) = self.slots.get_mut(idx) {
                self.bytes_acked += slot.len as u64;
                slot.len = 0;
            }
        }
        self.acked = block;
        self.measure(now, block);
        self.rtx.progress();
        // RFC 7440: sending goes on after the acknowledged block; after a
        // mid-window ACK the rest is sent again as a new window, which is
        // no timeout retransmission (even after one). At most once per
        // round trip: a late ACK from before the last resend must not make
        // the client get the same blocks yet again.
        let mid_window = block < self.max_sent;
        let round_trip = self.rtx.srtt().unwrap_or_default();
        let recent = self
            .rewound_at
            .is_some_and(|t| now.saturating_duration_since(t) < round_trip);
        if mid_window && recent {
            self.next_send = self.next_send.max(block + 1);
        } else {
            self.next_send = block + 1;
            if mid_window {
                self.rewound_at = Some(now);
            }
        }
        self.resend_end = 0;
        if self.last == Some(block) {
            self.end(Outcome::Complete);
        } else if self.max_sent == self.acked {
            self.rtx.disarm();
        }
    }

    /// Handles the expiry of the deadline from [`poll_timeout`](Self::poll_timeout)
    /// (an early call does nothing). RFC 1350: what is unacknowledged is sent
    /// again, the OACK or the whole outstanding window (RFC 7440), one retry
    /// spent and the next wait backed off; after `max_retries` the transfer
    /// ends as [`Outcome::TimedOut`], silently.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.outcome.is_some() || !self.outstanding() {
            return;
        }
        match self.rtx.expire(now) {
            Expiry::NotYet => return,
            Expiry::GiveUp => {
                self.end(Outcome::TimedOut);
                return;
            }
            // Armed again when the packets go out.
            Expiry::Retry => {}
        }
        if self.oack_state == OackState::Sent {
            self.oack_state = OackState::Resend;
        } else {
            // Send the whole outstanding window again.
            self.resend_end = self.max_sent + 1;
            self.next_send = self.acked + 1;
        }
    }

    /// The client sent its RRQ again (the driver matched it to this
    /// transfer). RFC 1350 §2: a side that gets no answer retransmits its
    /// last packet, so the client has not received our first one.
    ///
    /// If nothing sent has been answered yet (the OACK is out and ACK 0 has
    /// not come, RFC 2347; or, without OACK, DATA is out and no block is
    /// acknowledged), the first packet goes again at the next
    /// [`poll_transmit`](Self::poll_transmit) (without OACK: from block 1,
    /// the first window, as a timeout would), counted in
    /// [`retransmits`](Self::retransmits) but spending no retry and leaving
    /// the backoff as it is; returns true. Otherwise (nothing sent yet
    /// because the body is not ready, the transfer has moved past its first
    /// packet, or it is over) nothing happens and it returns false: a stale
    /// request never causes a retransmission, as a duplicate ACK never does
    /// (RFC 1123 §4.2.3.1).
    pub fn handle_repeat(&mut self, now: Instant) -> bool {
        let _ = now;
        if self.outcome.is_some() {
            return false;
        }
        match self.oack_state {
            OackState::Sent => {
                self.oack_state = OackState::Resend;
                true
            }
            // Already to be sent again.
            OackState::Resend => true,
            // Not sent yet.
            OackState::Due => false,
            // ACK 0 came: the client has the OACK.
            OackState::Done if !self.oack.is_empty() => false,
            OackState::Done => {
                if self.max_sent == 0 || self.acked > 0 {
                    return false;
                }
                self.resend_end = self.max_sent + 1;
                self.next_send = 1;
                true
            }
        }
    }

    /// Ends the transfer with an ERROR to the client (RFC 1350 §7), for a
    /// failure of the body source or a shutdown: the ERROR is the next and
    /// last packet [`poll_transmit`](Self::poll_transmit) gives. Ignored once
    /// the outcome is known.
    pub fn abort(&mut self, code: ErrorCode, message: &str) {
        if self.outcome.is_some() {
            return;
        }
        self.error_pending = true;
        self.end(Outcome::Failed {
            code,
            message: message.to_owned(),
        });
    }

    /// Appends the next packet to send to `out` (which is never cleared)
    /// and returns its length; `None` when there is nothing to send now.
    /// Call it until `None`: a driver may lay a window of packets out back to
    /// back and send them in one system call (UDP segmentation offload).
    ///
    /// In order: the ERROR of an [`abort`](Self::abort); the OACK (RFC 2347),
    /// alone until ACK 0; then DATA blocks as they are filled, up to one
    /// window beyond the last acknowledged block (RFC 7440). Each packet
    /// (re)arms the retransmission timer.
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
        if self.outcome.is_some() {
            return None;
        }
        match self.oack_state {
            OackState::Due | OackState::Resend => {
                out.extend_from_slice(&self.oack);
                if self.oack_state == OackState::Resend {
                    self.retransmits += 1;
                    self.timing = None;
                } else {
                    self.timing = Some((0, now));
                }
                self.oack_state = OackState::Sent;
                self.rtx.arm(now);
                return Some(self.oack.len());
            }
            OackState::Sent => return None,
            OackState::Done => {}
        }
        let block = self.next_send;
        if block > self.sendable() {
            return None;
        }
        // RFC 1350: DATA is opcode 3, the block number, then the payload.
        out.extend_from_slice(&opcode::DATA.to_be_bytes());
        out.extend_from_slice(&to_wire(block, self.rollover).to_be_bytes());
        // A block without a slot is an empty last block that the driver
        // never asked space for (finish() right after a full block).
        if let Some(slot) = self.slots.get(self.slot_index(block)) {
            out.extend_from_slice(&slot.buf[..slot.len]);
        }
        if block < self.resend_end {
            self.retransmits += 1;
        }
        if block <= self.max_sent {
            // Sent before: the answer could be to either copy (Karn).
            if self.timing.is_some_and(|(timed, _)| block <= timed) {
                self.timing = None;
            }
        } else if self.timing.is_none() {
            self.timing = Some((block, now));
        }
        self.max_sent = self.max_sent.max(block);
        self.next_send = block + 1;
        self.rtx.arm(now);
        Some(out.len() - start)
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called; `None`
    /// once the transfer is over or while it waits for the driver to fill a
    /// block.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.outcome.is_some() || !self.outstanding() {
            return None;
        }
        self.rtx.deadline()
    }

    /// How the transfer ended, once that is known: [`Outcome::Complete`] at
    /// the ACK of the last block (RFC 1350), [`Outcome::SizeProbe`] for an
    /// ERROR in answer to the OACK (RFC 2347), and so on. An ERROR of
    /// [`abort`](Self::abort) may still have to be sent; see
    /// [`is_finished`](Self::is_finished).
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// True when nothing more will be sent or received: the outcome is known
    /// and no ERROR is left to send. The driver then drops the transfer.
    pub fn is_finished(&self) -> bool {
        self.outcome.is_some() && !self.error_pending
    }

    /// The negotiated window size.
    pub fn windowsize(&self) -> u16 {
        u16::try_from(self.windowsize).unwrap_or(u16::MAX)
    }

    /// Payload bytes acknowledged by the client so far.
    pub fn bytes_acked(&self) -> u64 {
        self.bytes_acked
    }

    /// The smoothed round trip measured so far (RFC 6298), if any.
    pub fn srtt(&self) -> Option<Duration> {
        self.rtx.srtt()
    }

    /// Packets sent again because of a timeout or a repeated request
    /// ([`handle_repeat`](Self::handle_repeat)); not the rest of a window
    /// sent again after a mid-window ACK.
    pub fn retransmits(&self) -> u64 {
        self.retransmits
    }

    /// ACKs received that acknowledged nothing new (duplicates and stale
    /// ones, RFC 1123 §4.2.3.1), ignored.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Blocks acknowledged by the client so far.
    pub fn blocks_acked(&self) -> u64 {
        self.acked
    }
}

#[cfg(test)]
mod tests;
