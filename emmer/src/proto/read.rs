//! The sender side of a read request (RRQ): the server sends DATA, the client
//! ACKs (RFC 1350), in windows of blocks (RFC 7440), after an optional OACK
//! (RFC 2347).
//!
//! The body is fed in by the driver through [`ReadTransfer::fill_buf`] /
//! [`ReadTransfer::commit`] / [`ReadTransfer::finish`]; the state machine keeps
//! at most one window of blocks (the unacknowledged ones), and reuses their
//! buffers.

//! Rules followed here, each tested below:
//!
//! - RFC 2347: with options, the OACK goes first and DATA 1 waits for ACK 0;
//!   an ERROR in answer to the OACK ends the transfer as a size probe.
//! - RFC 1350: a block shorter than blksize (possibly empty) is the last one.
//! - RFC 7440: up to windowsize blocks are sent before an ACK is awaited; an
//!   ACK inside the window acknowledges up to its block, and sending resumes
//!   after it.
//! - RFC 1123 §4.2.3.1: an ACK for a block that is not outstanding (a
//!   duplicate) is ignored and never triggers a retransmission (the Sorcerer's
//!   Apprentice bug); only the timer retransmits.
//! - DATA, RRQ, WRQ and OACK from the client are ignored: they cannot be part
//!   of a read, and a stray packet should not kill a transfer.

use std::time::Instant;

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
    /// It must be sent again (a retransmission).
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
    /// Blocks below this one are sent again because of a timeout.
    resend_end: u64,
    /// The ERROR of `outcome` (Failed) still has to be sent.
    error_pending: bool,
    outcome: Option<Outcome>,
    bytes_acked: u64,
    retransmits: u64,
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
            error_pending: false,
            outcome: None,
            bytes_acked: 0,
            retransmits: 0,
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
            Packet::Ack { block } => self.on_ack(*block),
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

    fn on_ack(&mut self, wire: u16) {
        if self.oack_state != OackState::Done {
            // RFC 2347: ACK 0 acknowledges the OACK; DATA 1 may go.
            if wire == 0 {
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
        self.rtx.progress();
        // RFC 7440: sending goes on after the acknowledged block; after a
        // mid-window ACK the rest is sent again as a new window, which is
        // no timeout retransmission (even after one).
        self.next_send = block + 1;
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

    /// Packets sent again because of a timeout or a repeated request
    /// ([`handle_repeat`](Self::handle_repeat)); not the rest of a window
    /// sent again after a mid-window ACK.
    pub fn retransmits(&self) -> u64 {
        self.retransmits
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::proto::harness::{Harness, Sent, blocks, last_block, negotiated};

    fn data(block: u16, len: usize) -> Sent {
        Sent::Data(block, vec![b'x'; len])
    }

    impl Harness<ReadTransfer> {
        fn new(n: Negotiated, config: TransferConfig, body_len: usize) -> Self {
            let mut h = Harness::start(|now| ReadTransfer::new(now, &n, &config));
            h.body = vec![b'x'; body_len];
            h
        }

        fn simple(blksize: u16, windowsize: u16, body_len: usize) -> Self {
            Self::new(
                negotiated(blksize, windowsize, &[]),
                TransferConfig::default(),
                body_len,
            )
        }
    }

    #[test]
    fn lock_step_without_options() {
        let mut h = Harness::simple(512, 1, 1300);
        assert_eq!(h.step(), vec![data(1, 512)]);
        assert_eq!(h.t.poll_timeout(), Some(h.base + Duration::from_secs(1)));
        assert_eq!(h.ack(1), vec![data(2, 512)]);
        assert_eq!(h.t.bytes_acked(), 512);
        assert_eq!(h.ack(2), vec![data(3, 276)]);
        assert_eq!(h.t.outcome(), None);
        assert_eq!(h.ack(3), vec![]);
        assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
        assert_eq!(h.t.bytes_acked(), 1300);
        assert_eq!(h.t.poll_timeout(), None);
        assert_eq!(h.t.retransmits(), 0);
    }

    #[test]
    fn data_1_waits_until_it_is_filled() {
        let mut h = Harness::simple(512, 1, 0);
        // Nothing filled yet: nothing to send, no timer.
        assert_eq!(h.sent(), vec![]);
        assert_eq!(h.t.poll_timeout(), None);
        let buf = h.t.fill_buf().unwrap();
        assert_eq!(buf.len(), 512);
        h.t.commit(100);
        assert_eq!(h.sent(), vec![], "a partial block is not ready");
        assert_eq!(h.t.fill_buf().unwrap().len(), 412);
        h.t.commit(412);
        assert_eq!(h.sent(), vec![Sent::Data(1, vec![0; 512])]);
        // Window of 1 is full: no space until ACK 1.
        assert!(h.t.fill_buf().is_none());
    }

    #[test]
    fn empty_body_is_one_empty_data_block() {
        let mut h = Harness::simple(512, 1, 0);
        assert_eq!(h.step(), vec![data(1, 0)]);
        assert_eq!(h.ack(1), vec![]);
        assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
        assert_eq!(h.t.bytes_acked(), 0);
    }

    #[test]
    fn body_multiple_of_blksize_ends_with_empty_block() {
        for ws in [1u16, 2, 4] {
            let mut h = Harness::simple(512, ws, 1024);
            let mut got = h.step();
            let mut acked = 0u16;
            while h.t.outcome().is_none() {
                let last = match got.last() {
                    Some(Sent::Data(b, _)) => *b,
                    other => panic!("ws {ws}: {other:?}"),
                };
                for s in &got {
                    let Sent::Data(b, d) = s else { panic!() };
                    assert_eq!(d.len(), if *b == 3 { 0 } else { 512 }, "ws {ws} block {b}");
                }
                assert!(last > acked);
                acked = last;
                got = h.ack(last);
            }
            assert_eq!(acked, 3, "ws {ws}: the last block is the empty block 3");
            assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
            assert_eq!(h.t.bytes_acked(), 1024);
        }
    }

    #[test]
    fn full_window_then_empty_last_block_after_ack() {
        // Exactly one window of full blocks: the empty block 5 is beyond it.
        let mut h = Harness::simple(8, 4, 32);
        assert_eq!(
            h.step(),
            vec![data(1, 8), data(2, 8), data(3, 8), data(4, 8)]
        );
        assert_eq!(h.ack(4), vec![data(5, 0)]);
        assert_eq!(h.ack(5), vec![]);
        assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
        assert_eq!(h.t.bytes_acked(), 32);
    }

    #[test]
    fn finish_without_asking_for_space_sends_empty_block() {
        // finish() right after a full block, without a fill_buf for the next.
        let base = Instant::now();
        let mut t = ReadTransfer::new(base, &negotiated(8, 4, &[]), &TransferConfig::default());
        t.fill_buf().unwrap().copy_from_slice(b"abcdefgh");
        t.commit(8);
        t.finish();
        let mut out = Vec::new();
        assert_eq!(t.poll_transmit(base, &mut out), Some(12));
        assert_eq!(out, b"\x00\x03\x00\x01abcdefgh");
        out.clear();
        assert_eq!(t.poll_transmit(base, &mut out), Some(4));
        assert_eq!(out, b"\x00\x03\x00\x02");
        assert_eq!(t.poll_transmit(base, &mut out), None);
        t.handle_packet(base, &Packet::Ack { block: 2 });
        assert_eq!(t.outcome(), Some(&Outcome::Complete));
        assert_eq!(t.bytes_acked(), 8);
    }

    #[test]
    fn oack_first_and_data_after_ack_0() {
        let mut h = Harness::new(
            negotiated(1024, 1, &[("blksize", "1024"), ("tsize", "2000")]),
            TransferConfig::default(),
            2000,
        );
        assert_eq!(
            h.step(),
            vec![Sent::Oack(vec![
                ("blksize".into(), "1024".into()),
                ("tsize".into(), "2000".into())
            ])]
        );
        // Block 1 is filled meanwhile, but waits for ACK 0.
        assert_eq!(h.step(), vec![]);
        assert!(h.t.poll_timeout().is_some());
        // An ACK of another block does not count as ACK 0.
        assert_eq!(h.ack(1), vec![]);
        assert_eq!(h.ack(0), vec![data(1, 1024)]);
        // A duplicate ACK 0 after DATA 1 changes nothing.
        assert_eq!(h.ack(0), vec![]);
        assert_eq!(h.ack(1), vec![data(2, 976)]);
        assert_eq!(h.ack(2), vec![]);
        assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
    }

    #[test]
    fn error_in_answer_to_oack_is_a_size_probe() {
        for code in [8u16, 0] {
            let mut h = Harness::new(
                negotiated(512, 1, &[("tsize", "123")]),
                TransferConfig::default(),
                123,
            );
            assert_eq!(
                h.step(),
                vec![Sent::Oack(vec![("tsize".into(), "123".into())])]
            );
            assert_eq!(h.error(code, "tsize only"), vec![]);
            assert_eq!(h.t.outcome(), Some(&Outcome::SizeProbe));
            assert_eq!(h.t.poll_timeout(), None);
            assert!(h.t.outcome().unwrap().is_success());
        }
    }

    #[test]
    fn error_after_ack_0_is_a_peer_error() {
        let mut h = Harness::new(
            negotiated(512, 1, &[("tsize", "600")]),
            TransferConfig::default(),
            600,
        );
        h.step();
        assert_eq!(h.ack(0), vec![data(1, 512)]);
        assert_eq!(h.error(2, "disk on fire"), vec![]);
        assert_eq!(
            h.t.outcome(),
            Some(&Outcome::PeerError {
                code: 2,
                message: "disk on fire".into()
            })
        );
        assert_eq!(h.t.poll_timeout(), None);
        assert_eq!(h.ack(1), vec![], "nothing after the end");
    }

    #[test]
    fn oack_is_retransmitted_on_timeout() {
        let mut h = Harness::new(
            negotiated(512, 1, &[("blksize", "512")]),
            TransferConfig::default(),
            10,
        );
        let oack = h.step();
        assert_eq!(oack.len(), 1);
        assert_eq!(h.fire(), oack);
        assert_eq!(h.t.retransmits(), 1);
        assert_eq!(h.now, h.base + Duration::from_secs(1));
        // The second wait is doubled.
        assert_eq!(h.t.poll_timeout(), Some(h.base + Duration::from_secs(3)));
        assert_eq!(h.ack(0), vec![data(1, 10)]);
        // Progress resets the backoff.
        assert_eq!(h.t.poll_timeout(), Some(h.now + Duration::from_secs(1)));
    }

    #[test]
    fn duplicate_ack_never_triggers_data() {
        // RFC 1123 §4.2.3.1: Sorcerer's Apprentice.
        let mut h = Harness::simple(512, 1, 2000);
        h.step();
        assert_eq!(h.ack(1), vec![data(2, 512)]);
        let deadline = h.t.poll_timeout();
        h.advance(Duration::from_millis(300));
        assert_eq!(h.ack(1), vec![], "duplicate ACK 1");
        assert_eq!(h.ack(0), vec![], "stale ACK 0");
        assert_eq!(h.ack(3), vec![], "ACK of an unsent block");
        assert_eq!(h.ack(60000), vec![]);
        assert_eq!(h.t.poll_timeout(), deadline, "the timer is not reset");
        assert_eq!(h.t.retransmits(), 0);
        assert_eq!(h.ack(2), vec![data(3, 512)]);
    }

    #[test]
    fn windows_and_mid_window_ack() {
        // 10 full blocks and a short one, window of 4.
        let mut h = Harness::simple(8, 4, 10 * 8 + 3);
        assert_eq!(
            h.step(),
            vec![data(1, 8), data(2, 8), data(3, 8), data(4, 8)]
        );
        assert!(h.t.fill_buf().is_none(), "at most one window is buffered");
        assert_eq!(h.step(), vec![], "wait for an ACK after a window");
        assert_eq!(
            h.ack(4),
            vec![data(5, 8), data(6, 8), data(7, 8), data(8, 8)]
        );
        // Mid-window: 7 and 8 were lost; they go again in a new window.
        assert_eq!(
            h.ack(6),
            vec![data(7, 8), data(8, 8), data(9, 8), data(10, 8)]
        );
        assert_eq!(h.t.bytes_acked(), 48);
        // A late ACK of the old window is a duplicate now.
        assert_eq!(h.ack(5), vec![]);
        assert_eq!(h.ack(10), vec![data(11, 3)]);
        assert_eq!(h.ack(11), vec![]);
        assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
        assert_eq!(h.t.bytes_acked(), 83);
        // Mid-window resends are not timeout retransmissions.
        assert_eq!(h.t.retransmits(), 0);
    }

    #[test]
    fn blocks_are_sent_as_they_become_ready() {
        let mut h = Harness::simple(8, 4, 0);
        let buf = h.t.fill_buf().unwrap();
        buf.copy_from_slice(&[1; 8]);
        h.t.commit(8);
        assert_eq!(h.sent(), vec![Sent::Data(1, vec![1; 8])]);
        // The timer runs while block 1 is outstanding, even though the
        // window is not full.
        assert!(h.t.poll_timeout().is_some());
        h.t.fill_buf().unwrap()[..4].copy_from_slice(&[2; 4]);
        h.t.commit(4);
        assert_eq!(h.sent(), vec![]);
        h.t.finish();
        assert_eq!(h.sent(), vec![Sent::Data(2, vec![2; 4])]);
        assert!(h.t.fill_buf().is_none(), "no space after finish");
        // ACK of everything sent: done.
        h.t.handle_packet(h.now, &Packet::Ack { block: 2 });
        assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
        assert_eq!(h.t.bytes_acked(), 12);
    }

    #[test]
    fn no_timer_while_waiting_for_the_driver() {
        let mut h = Harness::simple(8, 1, 0);
        h.t.fill_buf().unwrap();
        h.t.commit(8);
        assert_eq!(h.sent().len(), 1);
        h.t.handle_packet(h.now, &Packet::Ack { block: 1 });
        // Block 1 acknowledged, block 2 not filled: nothing outstanding.
        assert_eq!(h.t.poll_timeout(), None);
        h.t.handle_timeout(h.now + Duration::from_secs(100));
        assert_eq!(h.sent(), vec![]);
        assert_eq!(h.t.outcome(), None);
    }

    #[test]
    fn timeout_resends_window_with_backoff_then_gives_up() {
        let config = TransferConfig {
            timeout: Duration::from_secs(1),
            backoff: 2,
            max_timeout: Duration::from_secs(3),
            max_retries: 3,
            ..TransferConfig::default()
        };
        let mut h = Harness::new(negotiated(8, 3, &[]), config, 100);
        let window = vec![data(1, 8), data(2, 8), data(3, 8)];
        assert_eq!(h.step(), window);
        // Too early: nothing happens.
        h.t.handle_timeout(h.now + Duration::from_millis(999));
        assert_eq!(h.sent(), vec![]);
        // Waits: 1 s, then 2 s, then 3 s (4 s capped), then 3 s.
        let mut waits = vec![];
        for _ in 0..3 {
            let before = h.now;
            assert_eq!(h.fire(), window, "the whole window again");
            waits.push(h.now - before);
        }
        assert_eq!(h.t.retransmits(), 9);
        let before = h.now;
        assert_eq!(h.fire(), vec![], "gives up after max_retries");
        waits.push(h.now - before);
        assert_eq!(
            waits,
            [1, 2, 3, 3].map(Duration::from_secs).to_vec(),
            "backoff capped at max_timeout"
        );
        assert_eq!(h.t.outcome(), Some(&Outcome::TimedOut));
        assert_eq!(h.t.poll_timeout(), None);
        assert_eq!(h.ack(3), vec![], "nothing after giving up");
    }

    #[test]
    fn progress_resets_the_retry_count() {
        let config = TransferConfig {
            max_retries: 1,
            ..TransferConfig::default()
        };
        let mut h = Harness::new(negotiated(8, 1, &[]), config, 40);
        h.step();
        assert_eq!(h.fire(), vec![data(1, 8)]);
        assert_eq!(h.ack(1), vec![data(2, 8)]);
        // A fresh retry budget for block 2.
        assert_eq!(h.fire(), vec![data(2, 8)]);
        assert_eq!(h.t.outcome(), None);
        assert_eq!(h.fire(), vec![]);
        assert_eq!(h.t.outcome(), Some(&Outcome::TimedOut));
        assert_eq!(h.t.retransmits(), 2);
    }

    #[test]
    fn timeout_after_mid_window_ack_resends_from_first_unacked() {
        let mut h = Harness::simple(8, 4, 100);
        h.step();
        assert_eq!(
            h.ack(2),
            vec![data(3, 8), data(4, 8), data(5, 8), data(6, 8)]
        );
        assert_eq!(
            h.fire(),
            vec![data(3, 8), data(4, 8), data(5, 8), data(6, 8)]
        );
        assert_eq!(h.t.retransmits(), 4);
    }

    #[test]
    fn mid_window_ack_after_a_timeout_is_no_retransmission() {
        let mut h = Harness::simple(8, 4, 100);
        let window = vec![data(1, 8), data(2, 8), data(3, 8), data(4, 8)];
        assert_eq!(h.step(), window);
        assert_eq!(h.fire(), window);
        assert_eq!(h.t.retransmits(), 4);
        // 3 and 4 go a third time, in the new window after ACK 2: not
        // because of the timeout.
        assert_eq!(
            h.ack(2),
            vec![data(3, 8), data(4, 8), data(5, 8), data(6, 8)]
        );
        assert_eq!(h.t.retransmits(), 4);
    }

    #[test]
    fn negotiated_timeout_replaces_configured_one() {
        let mut n = negotiated(512, 1, &[("timeout", "5")]);
        n.timeout = Some(Duration::from_secs(5));
        let mut h = Harness::new(n, TransferConfig::default(), 10);
        h.step();
        assert_eq!(h.t.poll_timeout(), Some(h.base + Duration::from_secs(5)));
        // Doubling is not capped below the negotiated value (max_timeout 8 s).
        h.fire();
        assert_eq!(h.t.poll_timeout(), Some(h.now + Duration::from_secs(8)));
    }

    #[test]
    fn client_error_mid_transfer_is_quiet() {
        let mut h = Harness::simple(512, 2, 5000);
        h.step();
        assert_eq!(h.error(0, "cancelled"), vec![]);
        assert_eq!(
            h.t.outcome(),
            Some(&Outcome::PeerError {
                code: 0,
                message: "cancelled".into()
            })
        );
        assert!(h.t.fill_buf().is_none());
    }

    #[test]
    fn stray_packets_from_the_client_are_ignored() {
        let mut h = Harness::simple(512, 1, 600);
        assert_eq!(h.step(), vec![data(1, 512)]);
        let req = crate::proto::RequestPacket {
            filename: "f",
            mode: crate::proto::Mode::Octet,
            options: vec![],
        };
        for p in [
            Packet::Data {
                block: 1,
                data: b"x",
            },
            Packet::Rrq(req.clone()),
            Packet::Wrq(req),
            Packet::Oack { options: vec![] },
        ] {
            h.t.handle_packet(h.now, &p);
            assert_eq!(h.step(), vec![]);
            assert_eq!(h.t.outcome(), None);
        }
        assert_eq!(h.ack(1), vec![data(2, 88)]);
    }

    #[test]
    fn abort_sends_error_once() {
        let mut h = Harness::simple(512, 1, 600);
        h.step();
        h.t.abort(ErrorCode::Undefined, "source failed");
        assert_eq!(h.step(), vec![Sent::Error(0, "source failed".into())]);
        assert_eq!(h.step(), vec![]);
        assert_eq!(
            h.t.outcome(),
            Some(&Outcome::Failed {
                code: ErrorCode::Undefined,
                message: "source failed".into()
            })
        );
        assert_eq!(h.t.poll_timeout(), None);
        // A second abort or an ACK changes nothing.
        h.t.abort(ErrorCode::DiskFull, "again");
        assert_eq!(h.ack(1), vec![]);
        assert!(matches!(
            h.t.outcome(),
            Some(Outcome::Failed {
                code: ErrorCode::Undefined,
                ..
            })
        ));
    }

    #[test]
    fn is_finished_once_the_outcome_is_known_and_no_error_is_left() {
        let mut h = Harness::simple(512, 1, 10);
        assert_eq!(h.step(), vec![data(1, 10)]);
        assert!(!h.t.is_finished());
        assert_eq!(h.ack(1), vec![]);
        assert!(h.t.is_finished());
        // An ERROR from the client: nothing to send back.
        let mut h = Harness::simple(512, 1, 600);
        h.step();
        h.error(0, "cancelled");
        assert!(h.t.is_finished());
        // Our ERROR: finished once it is sent.
        let mut h = Harness::simple(512, 1, 600);
        h.step();
        h.t.abort(ErrorCode::Undefined, "gone");
        assert!(h.t.outcome().is_some());
        assert!(!h.t.is_finished(), "the ERROR is not sent yet");
        assert_eq!(h.sent(), vec![Sent::Error(0, "gone".into())]);
        assert!(h.t.is_finished());
    }

    #[test]
    fn abort_after_completion_is_ignored() {
        let mut h = Harness::simple(512, 1, 10);
        h.step();
        h.ack(1);
        h.t.abort(ErrorCode::Undefined, "late");
        assert_eq!(h.step(), vec![]);
        assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
    }

    #[test]
    fn repeated_request_resends_the_oack() {
        let config = TransferConfig {
            max_retries: 2,
            ..TransferConfig::default()
        };
        let mut h = Harness::new(negotiated(512, 1, &[("tsize", "600")]), config, 600);
        let oack = h.step();
        assert!(matches!(oack[..], [Sent::Oack(_)]));
        h.advance(Duration::from_millis(300));
        assert_eq!(h.repeat(), (true, oack.clone()));
        assert_eq!(h.t.retransmits(), 1);
        // The timer restarts with the base timeout.
        assert_eq!(h.t.poll_timeout(), Some(h.now + Duration::from_secs(1)));
        // After a timeout, a repeat keeps the backoff: the wait stays 2 s.
        assert_eq!(h.fire(), oack);
        assert_eq!(h.repeat(), (true, oack.clone()));
        assert_eq!(h.t.poll_timeout(), Some(h.now + Duration::from_secs(2)));
        assert_eq!(h.t.retransmits(), 3);
        // No retry was spent on the repeat: one is left.
        assert_eq!(h.fire(), oack);
        assert_eq!(h.t.outcome(), None);
        assert_eq!(h.ack(0), vec![data(1, 512)]);
        // ACK 0 came: the client has the OACK.
        assert_eq!(h.repeat(), (false, vec![]));
        assert_eq!(h.t.retransmits(), 4);
    }

    #[test]
    fn repeated_request_resends_data_1_lock_step() {
        let mut h = Harness::simple(512, 1, 600);
        assert_eq!(h.step(), vec![data(1, 512)]);
        h.advance(Duration::from_millis(300));
        assert_eq!(h.repeat(), (true, vec![data(1, 512)]));
        assert_eq!(h.t.retransmits(), 1);
        assert_eq!(h.t.poll_timeout(), Some(h.now + Duration::from_secs(1)));
        assert_eq!(h.ack(1), vec![data(2, 88)]);
        // ACK 1 came: the request is stale.
        assert_eq!(h.repeat(), (false, vec![]));
        assert_eq!(h.t.retransmits(), 1);
        assert_eq!(h.ack(2), vec![]);
        assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
        assert_eq!(h.repeat(), (false, vec![]), "over");
    }

    #[test]
    fn repeated_request_resends_the_first_window() {
        let mut h = Harness::simple(8, 4, 100);
        let window = vec![data(1, 8), data(2, 8), data(3, 8), data(4, 8)];
        assert_eq!(h.step(), window);
        assert_eq!(h.repeat(), (true, window));
        assert_eq!(h.t.retransmits(), 4);
        // A mid-window ACK is an answer: no resend after it.
        assert_eq!(
            h.ack(2),
            vec![data(3, 8), data(4, 8), data(5, 8), data(6, 8)]
        );
        assert_eq!(h.repeat(), (false, vec![]));
        assert_eq!(h.t.retransmits(), 4);
    }

    #[test]
    fn repeated_request_before_anything_was_sent_resends_nothing() {
        // The body is not ready: nothing was sent.
        let mut h = Harness::simple(512, 1, 0);
        assert_eq!(h.sent(), vec![]);
        assert!(!h.t.handle_repeat(h.now));
        assert_eq!(h.sent(), vec![]);
        // The OACK was not polled yet: it goes once.
        let mut h = Harness::new(
            negotiated(512, 1, &[("blksize", "512")]),
            TransferConfig::default(),
            10,
        );
        assert!(!h.t.handle_repeat(h.now));
        assert_eq!(h.step().len(), 1);
        assert_eq!(h.t.retransmits(), 0);
        // After an abort, nothing but the ERROR.
        h.t.abort(ErrorCode::Undefined, "gone");
        assert!(!h.t.handle_repeat(h.now));
        assert_eq!(h.sent(), vec![Sent::Error(0, "gone".into())]);
    }

    #[test]
    fn buffers_are_reused() {
        let mut h = Harness::simple(8, 4, 8 * 40);
        h.step();
        let ptrs: Vec<*const u8> = h.t.slots.iter().map(|s| s.buf.as_ptr()).collect();
        assert_eq!(ptrs.len(), 4);
        let mut last = 4;
        while h.t.outcome().is_none() {
            let got = h.ack(last);
            if let Some(Sent::Data(b, _)) = got.last() {
                last = *b;
            }
            assert!(h.t.slots.len() <= 4);
        }
        let after: Vec<*const u8> = h.t.slots.iter().map(|s| s.buf.as_ptr()).collect();
        assert_eq!(ptrs, after);
        assert_eq!(h.t.bytes_acked(), 320);
    }

    /// Runs a whole lock-step or windowed transfer with a perfect client and
    /// returns the wire numbers of all DATA sent, in order.
    fn run_to_end(h: &mut Harness<ReadTransfer>) -> Vec<u16> {
        let mut wires = Vec::new();
        let mut got = h.step();
        while h.t.outcome().is_none() {
            let window = blocks(&got);
            let last = *window.last().expect("stalled");
            wires.extend(window);
            got = h.ack(last);
        }
        wires
    }

    #[test]
    fn rollover_past_65535_lock_step() {
        for (rollover, after) in [
            (Rollover::ToZero, [0u16, 1, 2]),
            (Rollover::ToOne, [1, 2, 3]),
        ] {
            let config = TransferConfig {
                rollover,
                ..TransferConfig::default()
            };
            // 65538 blocks of 8 bytes: the last one is short.
            let len = 65537 * 8 + 5;
            let mut h = Harness::new(negotiated(8, 1, &[]), config, len);
            let wires = run_to_end(&mut h);
            assert_eq!(wires.len(), 65538);
            assert_eq!(&wires[65533..65535], &[65534, 65535]);
            assert_eq!(&wires[65535..], &after, "{rollover:?}");
            assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
            assert_eq!(h.t.bytes_acked(), len as u64);
        }
    }

    #[test]
    fn rollover_inside_a_window() {
        for (rollover, wrap) in [
            (Rollover::ToZero, [65535u16, 0, 1]),
            (Rollover::ToOne, [65535, 1, 2]),
        ] {
            let config = TransferConfig {
                rollover,
                ..TransferConfig::default()
            };
            // Window of 8 starting at block 65530: 65530..=65537 spans the wrap.
            let mut h = Harness::new(negotiated(8, 8, &[]), config, 65600 * 8);
            let mut got = h.step();
            // Whole windows up to the one holding 65529 (65529..=65536).
            while !got.contains(&data(65529, 8)) {
                got = h.ack(last_block(&got));
            }
            assert_eq!(got.last(), Some(&data(wrap[1], 8)));
            // Mid-window ACK of 65529: the new window 65530..=65537 spans the wrap.
            got = h.ack(65529);
            let (w1, w2) = (wrap[1], wrap[2]);
            assert_eq!(
                blocks(&got),
                [65530, 65531, 65532, 65533, 65534, 65535, w1, w2],
                "{rollover:?}"
            );
            // An ACK of a block from before the window is ignored.
            assert_eq!(h.ack(65529), vec![]);
            // Mid-window ACK after the wrap: block 65536 (wire w1).
            let got = h.ack(w1);
            assert_eq!(got.first(), Some(&data(w2, 8)), "{rollover:?}");
            assert_eq!(got.len(), 8);
            assert_eq!(h.t.bytes_acked(), 65536 * 8);
            // Timeout resends from the first unacknowledged block, 65537.
            let again = h.fire();
            assert_eq!(again, got);
            // Finish the transfer.
            let mut got = h.ack(last_block(&again));
            while h.t.outcome().is_none() {
                got = h.ack(last_block(&got));
            }
            assert_eq!(h.t.bytes_acked(), 65600 * 8);
        }
    }
}
