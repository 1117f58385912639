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
        let mut rtx = Retransmit::new(negotiated.timeout, config);
        rtx.arm(now);
        Self {
            blksize: usize::from(negotiated.params.blksize.max(1)),
            windowsize: u64::from(negotiated.params.windowsize.max(1)),
            rollover: config.rollover,
            rtx,
            dally: config.dally,
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
            error_pending: false,
            outcome: None,
            bytes: 0,
            retransmits: 0,
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
        let _ = now;
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
            append_ack(out, to_wire(self.expected - 1, self.rollover));
            return Some(out.len() - start);
        }
        if self.start_due {
            self.start_due = false;
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

    /// Packets sent again because of a timeout or a repeated request
    /// ([`handle_repeat`](Self::handle_repeat)).
    pub fn retransmits(&self) -> u64 {
        self.retransmits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::harness::{Harness, Sent, negotiated};

    impl Harness<WriteTransfer> {
        fn new(n: Negotiated, config: TransferConfig, max_bytes: u64) -> Self {
            Harness::start(|now| WriteTransfer::new(now, &n, &config, max_bytes))
        }

        fn simple(blksize: u16, windowsize: u16) -> Self {
            Self::new(
                negotiated(blksize, windowsize, &[]),
                TransferConfig::default(),
                u64::MAX,
            )
        }
    }

    #[test]
    fn lock_step_without_options() {
        let mut h = Harness::simple(512, 1);
        assert_eq!(h.sent(), vec![Sent::Ack(0)]);
        assert_eq!(h.t.poll_timeout(), Some(h.base + Duration::from_secs(1)));
        assert_eq!(h.data(1, 512), (true, vec![Sent::Ack(1)]));
        assert_eq!(h.data(2, 512), (true, vec![Sent::Ack(2)]));
        assert!(!h.t.awaits_verdict());
        // The short block: handed on, but its ACK waits for accept().
        assert_eq!(h.data(3, 100), (true, vec![]));
        assert!(h.t.awaits_verdict());
        assert_eq!(h.t.outcome(), None);
        assert_eq!(h.t.poll_timeout(), None);
        assert_eq!(h.t.bytes_received(), 1124);
        assert_eq!(h.stored.len(), 1124);
        h.t.accept(h.now);
        assert!(!h.t.awaits_verdict());
        assert_eq!(h.sent(), vec![Sent::Ack(3)]);
        assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
        assert!(!h.t.is_finished());
        assert_eq!(h.t.retransmits(), 0);
    }

    #[test]
    fn oack_first_then_data_1() {
        let mut h = Harness::new(
            negotiated(1024, 1, &[("blksize", "1024"), ("tsize", "1500")]),
            TransferConfig::default(),
            u64::MAX,
        );
        assert_eq!(
            h.sent(),
            vec![Sent::Oack(vec![
                ("blksize".into(), "1024".into()),
                ("tsize".into(), "1500".into())
            ])]
        );
        assert_eq!(h.data(1, 1024), (true, vec![Sent::Ack(1)]));
        assert_eq!(h.data(2, 476), (true, vec![]));
        h.t.accept(h.now);
        assert_eq!(h.sent(), vec![Sent::Ack(2)]);
        assert_eq!(h.t.bytes_received(), 1500);
    }

    #[test]
    fn oack_is_retransmitted_with_backoff_then_gives_up() {
        let config = TransferConfig {
            timeout: Duration::from_secs(1),
            backoff: 3,
            max_timeout: Duration::from_secs(5),
            max_retries: 3,
            ..TransferConfig::default()
        };
        let mut h = Harness::new(negotiated(512, 1, &[("tsize", "0")]), config, u64::MAX);
        let oack = h.sent();
        assert!(matches!(oack[..], [Sent::Oack(_)]));
        // Too early: nothing.
        h.t.handle_timeout(h.now + Duration::from_millis(500));
        assert_eq!(h.sent(), vec![]);
        let mut waits = vec![];
        for _ in 0..3 {
            let before = h.now;
            assert_eq!(h.fire(), oack);
            waits.push(h.now - before);
        }
        assert_eq!(h.t.retransmits(), 3);
        let before = h.now;
        assert_eq!(h.fire(), vec![]);
        waits.push(h.now - before);
        // 1 s, 3 s, 5 s (9 s capped), 5 s.
        assert_eq!(waits, [1, 3, 5, 5].map(Duration::from_secs).to_vec());
        assert_eq!(h.t.outcome(), Some(&Outcome::TimedOut));
        assert!(h.t.is_finished());
        assert_eq!(h.t.poll_timeout(), None);
        assert_eq!(h.data(1, 512), (false, vec![]));
    }

    #[test]
    fn ack_0_is_retransmitted_on_timeout() {
        let mut h = Harness::simple(512, 1);
        assert_eq!(h.sent(), vec![Sent::Ack(0)]);
        assert_eq!(h.fire(), vec![Sent::Ack(0)]);
        assert_eq!(h.t.retransmits(), 1);
    }

    #[test]
    fn repeated_request_resends_the_oack() {
        let config = TransferConfig {
            max_retries: 2,
            ..TransferConfig::default()
        };
        let mut h = Harness::new(negotiated(512, 1, &[("tsize", "0")]), config, u64::MAX);
        let oack = h.sent();
        assert!(matches!(oack[..], [Sent::Oack(_)]));
        h.advance(Duration::from_millis(300));
        assert_eq!(h.repeat(), (true, oack.clone()));
        assert_eq!(h.t.retransmits(), 1);
        assert_eq!(h.t.poll_timeout(), Some(h.now + Duration::from_secs(1)));
        // After a timeout, a repeat keeps the backoff: the wait stays 2 s.
        assert_eq!(h.fire(), oack);
        assert_eq!(h.repeat(), (true, oack.clone()));
        assert_eq!(h.t.poll_timeout(), Some(h.now + Duration::from_secs(2)));
        // No retry was spent on the repeat: one is left.
        assert_eq!(h.fire(), oack);
        assert_eq!(h.t.outcome(), None);
        assert_eq!(h.t.retransmits(), 4);
        assert_eq!(h.data(1, 512), (true, vec![Sent::Ack(1)]));
        // DATA 1 came: the client has the OACK.
        assert_eq!(h.repeat(), (false, vec![]));
        assert_eq!(h.t.retransmits(), 4);
    }

    #[test]
    fn repeated_request_resends_ack_0_until_data_1() {
        let mut h = Harness::simple(512, 1);
        // Before anything was sent: nothing happens, ACK 0 goes once.
        assert!(!h.t.handle_repeat(h.now));
        assert_eq!(h.sent(), vec![Sent::Ack(0)]);
        assert_eq!(h.repeat(), (true, vec![Sent::Ack(0)]));
        assert_eq!(h.repeat(), (true, vec![Sent::Ack(0)]));
        assert_eq!(h.t.retransmits(), 2);
        assert_eq!(h.data(1, 512), (true, vec![Sent::Ack(1)]));
        assert_eq!(h.repeat(), (false, vec![]));
        assert_eq!(h.data(2, 0), (true, vec![]));
        assert_eq!(h.repeat(), (false, vec![]), "waiting for the verdict");
        h.t.accept(h.now);
        assert_eq!(h.sent(), vec![Sent::Ack(2)]);
        assert_eq!(h.repeat(), (false, vec![]), "dallying");
        assert_eq!(h.t.retransmits(), 2);
    }

    #[test]
    fn timeout_resends_last_ack_and_data_resets_retries() {
        let config = TransferConfig {
            max_retries: 2,
            ..TransferConfig::default()
        };
        let mut h = Harness::new(negotiated(8, 1, &[]), config, u64::MAX);
        h.sent();
        assert_eq!(h.data(1, 8), (true, vec![Sent::Ack(1)]));
        assert_eq!(h.t.poll_timeout(), Some(h.now + Duration::from_secs(1)));
        assert_eq!(h.fire(), vec![Sent::Ack(1)]);
        assert_eq!(h.fire(), vec![Sent::Ack(1)]);
        // New data: a fresh retry budget and the base timeout.
        assert_eq!(h.data(2, 8), (true, vec![Sent::Ack(2)]));
        assert_eq!(h.t.poll_timeout(), Some(h.now + Duration::from_secs(1)));
        assert_eq!(h.fire(), vec![Sent::Ack(2)]);
        assert_eq!(h.fire(), vec![Sent::Ack(2)]);
        assert_eq!(h.fire(), vec![]);
        assert_eq!(h.t.outcome(), Some(&Outcome::TimedOut));
        assert_eq!(h.t.retransmits(), 4);
    }

    #[test]
    fn negotiated_timeout_replaces_configured_one() {
        let mut n = negotiated(512, 1, &[("timeout", "4")]);
        n.timeout = Some(Duration::from_secs(4));
        let h = Harness::new(n, TransferConfig::default(), u64::MAX);
        assert_eq!(h.t.poll_timeout(), Some(h.base + Duration::from_secs(4)));
    }

    #[test]
    fn empty_upload() {
        let mut h = Harness::simple(512, 1);
        h.sent();
        assert_eq!(h.data(1, 0), (true, vec![]));
        assert!(h.t.awaits_verdict());
        h.t.accept(h.now);
        assert_eq!(h.sent(), vec![Sent::Ack(1)]);
        assert_eq!(h.t.bytes_received(), 0);
    }

    #[test]
    fn upload_multiple_of_blksize_ends_with_empty_block() {
        let mut h = Harness::simple(8, 1);
        h.sent();
        assert_eq!(h.data(1, 8), (true, vec![Sent::Ack(1)]));
        assert!(!h.t.awaits_verdict(), "a full block is not the last");
        assert_eq!(h.data(2, 0), (true, vec![]));
        assert!(h.t.awaits_verdict());
    }

    #[test]
    fn duplicate_data_is_re_acked_and_handed_on_once() {
        let mut h = Harness::simple(8, 1);
        h.sent();
        assert_eq!(h.data(1, 8), (true, vec![Sent::Ack(1)]));
        let deadline = h.t.poll_timeout();
        // The client did not get ACK 1: every duplicate is re-ACKed.
        for _ in 0..3 {
            assert_eq!(h.data(1, 8), (false, vec![Sent::Ack(1)]));
        }
        assert_eq!(h.t.poll_timeout(), deadline, "a duplicate is no progress");
        assert_eq!(h.data(2, 8), (true, vec![Sent::Ack(2)]));
        assert_eq!(h.t.bytes_received(), 16);
        assert_eq!(h.stored, [[1u8; 8], [2u8; 8]].concat());
        // A block from the future (gap) is not handed on either.
        assert_eq!(h.data(9, 8), (false, vec![Sent::Ack(2)]));
        assert_eq!(h.t.bytes_received(), 16);
    }

    #[test]
    fn window_acks_after_windowsize_blocks() {
        let mut h = Harness::simple(8, 4);
        h.sent();
        for b in 1..=3 {
            assert_eq!(h.data(b, 8), (true, vec![]), "block {b}: no ACK mid-window");
        }
        assert_eq!(h.data(4, 8), (true, vec![Sent::Ack(4)]));
        for b in 5..=7 {
            assert_eq!(h.data(b, 8), (true, vec![]));
        }
        assert_eq!(h.data(8, 8), (true, vec![Sent::Ack(8)]));
        // The last block is ACKed at accept, even mid-window.
        assert_eq!(h.data(9, 8), (true, vec![]));
        assert_eq!(h.data(10, 3), (true, vec![]));
        assert!(h.t.awaits_verdict());
        h.t.accept(h.now);
        assert_eq!(h.sent(), vec![Sent::Ack(10)]);
        assert_eq!(h.t.bytes_received(), 75);
    }

    #[test]
    fn lost_block_in_window_is_re_acked_once() {
        let mut h = Harness::simple(8, 4);
        h.sent();
        assert_eq!(h.data(1, 8), (true, vec![]));
        // Block 2 is lost: 3 reveals the gap, ACK 1 tells the sender.
        assert_eq!(h.data(3, 8), (false, vec![Sent::Ack(1)]));
        // More of the same window: no ACK storm.
        assert_eq!(h.data(4, 8), (false, vec![]));
        assert_eq!(h.data(1, 8), (false, vec![]), "duplicates too");
        // The sender restarts at 2 with a new window of 4.
        assert_eq!(h.data(2, 8), (true, vec![]));
        assert_eq!(h.data(3, 8), (true, vec![]));
        assert_eq!(h.data(4, 8), (true, vec![]));
        assert_eq!(h.data(5, 8), (true, vec![Sent::Ack(5)]));
        // New data re-arms the one re-ACK.
        assert_eq!(h.data(7, 8), (false, vec![Sent::Ack(5)]));
        assert_eq!(h.data(8, 8), (false, vec![]));
        // So does the timer: it ACKs the last in-order block, and the next
        // out-of-order block may be re-ACKed again.
        assert_eq!(h.fire(), vec![Sent::Ack(5)]);
        assert_eq!(h.data(8, 8), (false, vec![Sent::Ack(5)]));
        assert_eq!(h.stored.len(), 40);
        assert_eq!(h.stored, (1..=5u8).flat_map(|b| [b; 8]).collect::<Vec<_>>());
    }

    #[test]
    fn timeout_mid_window_acks_last_in_order_block() {
        let mut h = Harness::simple(8, 8);
        h.sent();
        for b in 1..=3 {
            h.data(b, 8);
        }
        assert_eq!(h.fire(), vec![Sent::Ack(3)]);
        // The sender resumes at 4 with a full window: ACK after 8 more.
        for b in 4..=10 {
            assert_eq!(h.data(b, 8), (true, vec![]));
        }
        assert_eq!(h.data(11, 8), (true, vec![Sent::Ack(11)]));
    }

    #[test]
    fn lost_window_tail_is_acked_after_the_idle_wait_not_the_timeout() {
        let mut h = Harness::simple(8, 4);
        h.sent();
        h.data(1, 8);
        h.data(2, 8);
        // Blocks 3 and 4 are lost: the idle wait, not the 1 s timeout.
        let idle = TransferConfig::default().window_idle;
        assert_eq!(h.t.poll_timeout(), Some(h.now + idle));
        assert_eq!(h.fire(), vec![Sent::Ack(2)]);
        assert_eq!(h.t.retransmits(), 0, "an early ACK is no retransmission");
        // Then the ordinary timeout applies again.
        assert_eq!(
            h.t.poll_timeout(),
            Some(h.now + TransferConfig::default().timeout)
        );
        // A whole window arrives: ACK at its end, with no idle wait.
        for b in 3..=5 {
            assert_eq!(h.data(b, 8), (true, vec![]));
        }
        assert_eq!(h.data(6, 8), (true, vec![Sent::Ack(6)]));
        assert_eq!(
            h.t.poll_timeout(),
            Some(h.now + TransferConfig::default().timeout)
        );
    }

    #[test]
    fn last_block_waits_for_accept_and_retransmissions_are_ignored() {
        let mut h = Harness::simple(8, 1);
        h.sent();
        h.data(1, 8);
        assert_eq!(h.data(2, 5), (true, vec![]));
        for _ in 0..3 {
            assert_eq!(h.data(2, 5), (false, vec![]));
        }
        assert_eq!(h.t.poll_timeout(), None);
        h.t.handle_timeout(h.now + Duration::from_secs(1000));
        assert_eq!(h.sent(), vec![]);
        assert!(h.t.awaits_verdict());
        assert_eq!(h.t.bytes_received(), 13);
    }

    #[test]
    fn dally_re_acks_the_last_block() {
        let config = TransferConfig {
            dally: Duration::from_secs(2),
            ..TransferConfig::default()
        };
        let mut h = Harness::new(negotiated(8, 1, &[]), config, u64::MAX);
        h.sent();
        h.data(1, 8);
        h.data(2, 1);
        h.now += Duration::from_millis(10);
        h.t.accept(h.now);
        assert_eq!(h.sent(), vec![Sent::Ack(2)]);
        let end = h.now + Duration::from_secs(2);
        assert_eq!(h.t.poll_timeout(), Some(end));
        // The final ACK was lost: the client sends block 2 again.
        h.now += Duration::from_millis(500);
        assert_eq!(h.data(2, 1), (false, vec![Sent::Ack(2)]));
        assert_eq!(h.data(2, 1), (false, vec![Sent::Ack(2)]));
        // Other blocks are not answered.
        assert_eq!(h.data(1, 8), (false, vec![]));
        assert_eq!(h.t.poll_timeout(), Some(end));
        assert!(!h.t.is_finished());
        h.t.handle_timeout(end - Duration::from_millis(1));
        assert!(!h.t.is_finished(), "not before the deadline");
        assert_eq!(h.fire(), vec![]);
        assert!(h.t.is_finished());
        assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
        assert_eq!(h.t.poll_timeout(), None);
        assert_eq!(h.data(2, 1), (false, vec![]), "after the dally: silence");
        assert_eq!(h.t.bytes_received(), 9);
    }

    #[test]
    fn abort_instead_of_final_ack() {
        let mut h = Harness::simple(8, 1);
        h.sent();
        h.data(1, 3);
        assert!(h.t.awaits_verdict());
        h.t.abort(ErrorCode::AccessViolation, "checksum mismatch");
        assert!(!h.t.is_finished(), "the ERROR is not sent yet");
        assert_eq!(h.sent(), vec![Sent::Error(2, "checksum mismatch".into())]);
        assert!(h.t.is_finished());
        assert_eq!(
            h.t.outcome(),
            Some(&Outcome::Failed {
                code: ErrorCode::AccessViolation,
                message: "checksum mismatch".into()
            })
        );
        // accept() after abort does nothing; nothing more is sent.
        h.t.accept(h.now);
        assert_eq!(h.sent(), vec![]);
        assert_eq!(h.data(1, 3), (false, vec![]));
    }

    #[test]
    fn abort_mid_transfer_and_after_accept() {
        let mut h = Harness::simple(8, 1);
        h.sent();
        h.data(1, 8);
        h.t.abort(ErrorCode::Undefined, "shutting down");
        assert_eq!(h.sent(), vec![Sent::Error(0, "shutting down".into())]);
        assert_eq!(h.t.poll_timeout(), None);

        // After accept the upload is complete: abort is ignored.
        let mut h = Harness::simple(8, 1);
        h.sent();
        h.data(1, 2);
        h.t.accept(h.now);
        h.t.abort(ErrorCode::Undefined, "too late");
        assert_eq!(h.sent(), vec![Sent::Ack(1)]);
        assert_eq!(h.t.outcome(), Some(&Outcome::Complete));
    }

    #[test]
    fn upload_over_max_bytes_is_refused_with_error_3() {
        let mut h = Harness::new(negotiated(512, 1, &[]), TransferConfig::default(), 1000);
        h.sent();
        assert_eq!(h.data(1, 512), (true, vec![Sent::Ack(1)]));
        assert_eq!(
            h.data(2, 512),
            (
                false,
                vec![Sent::Error(
                    3,
                    "upload exceeds the limit of 1000 bytes".into()
                )]
            )
        );
        assert_eq!(h.t.bytes_received(), 512);
        assert!(matches!(
            h.t.outcome(),
            Some(Outcome::Failed {
                code: ErrorCode::DiskFull,
                ..
            })
        ));
        assert!(h.t.is_finished());
        // Exactly at the limit is fine.
        let mut h = Harness::new(negotiated(512, 1, &[]), TransferConfig::default(), 1024);
        h.sent();
        h.data(1, 512);
        assert_eq!(h.data(2, 512), (true, vec![Sent::Ack(2)]));
        assert_eq!(h.data(3, 0), (true, vec![]));
        assert!(h.t.awaits_verdict());
    }

    #[test]
    fn block_larger_than_blksize_is_illegal() {
        let mut h = Harness::simple(512, 1);
        h.sent();
        let (handed, sent) = h.data(1, 513);
        assert!(!handed);
        let [Sent::Error(4, msg)] = &sent[..] else {
            panic!("{sent:?}")
        };
        assert!(msg.contains("513") && msg.contains("blksize"), "{msg}");
        assert!(matches!(
            h.t.outcome(),
            Some(Outcome::Failed {
                code: ErrorCode::IllegalOperation,
                ..
            })
        ));
    }

    #[test]
    fn client_error_ends_quietly() {
        for before_data in [true, false] {
            let mut h = Harness::simple(8, 1);
            h.sent();
            if !before_data {
                h.data(1, 8);
            }
            assert_eq!(h.error(0, "user cancelled"), vec![]);
            assert_eq!(
                h.t.outcome(),
                Some(&Outcome::PeerError {
                    code: 0,
                    message: "user cancelled".into()
                })
            );
            assert!(h.t.is_finished());
            assert_eq!(h.t.poll_timeout(), None);
        }
    }

    #[test]
    fn stray_packets_are_ignored() {
        let mut h = Harness::simple(8, 1);
        h.sent();
        let req = crate::proto::RequestPacket {
            filename: "f",
            mode: crate::proto::Mode::Octet,
            options: vec![],
        };
        for p in [
            Packet::Ack { block: 0 },
            Packet::Rrq(req.clone()),
            Packet::Wrq(req),
            Packet::Oack { options: vec![] },
        ] {
            assert_eq!(h.t.handle_packet(h.now, &p), None);
            assert_eq!(h.sent(), vec![]);
            assert_eq!(h.t.outcome(), None);
        }
        assert_eq!(h.data(1, 8), (true, vec![Sent::Ack(1)]));
    }

    #[test]
    fn rollover_past_65535_lock_step() {
        for rollover in [Rollover::ToZero, Rollover::ToOne] {
            let config = TransferConfig {
                rollover,
                ..TransferConfig::default()
            };
            let mut h = Harness::new(negotiated(8, 1, &[]), config, u64::MAX);
            h.sent();
            for n in 1..=65537u64 {
                let wire = to_wire(n, rollover);
                assert_eq!(h.data(wire, 8), (true, vec![Sent::Ack(wire)]), "{n}");
            }
            // 65538 is 2 (ToZero) or 3 (ToOne) on the wire; the next number
            // is out of order and only re-ACKs 65537.
            let (right, wrong) = match rollover {
                Rollover::ToZero => (2, 3),
                Rollover::ToOne => (3, 4),
            };
            assert_eq!(to_wire(65538, rollover), right);
            assert_eq!(h.data(wrong, 8), (false, vec![Sent::Ack(right - 1)]));
            assert_eq!(h.data(right, 3), (true, vec![]));
            h.t.accept(h.now);
            assert_eq!(h.sent(), vec![Sent::Ack(right)]);
            assert_eq!(h.t.bytes_received(), 65537 * 8 + 3);
        }
    }

    #[test]
    fn rollover_at_the_exact_wrap() {
        // 65535 is followed by 0 (ToZero) or 1 (ToOne); the other is a gap.
        for (rollover, next, other) in [(Rollover::ToZero, 0u16, 1u16), (Rollover::ToOne, 1, 0)] {
            let config = TransferConfig {
                rollover,
                ..TransferConfig::default()
            };
            let mut h = Harness::new(negotiated(8, 1, &[]), config, u64::MAX);
            h.sent();
            for n in 1..=65535u16 {
                h.data(n, 8);
            }
            assert_eq!(
                h.data(other, 8),
                (false, vec![Sent::Ack(65535)]),
                "{rollover:?}"
            );
            assert_eq!(
                h.data(next, 8),
                (true, vec![Sent::Ack(next)]),
                "{rollover:?}"
            );
        }
    }

    #[test]
    fn rollover_inside_a_window() {
        for rollover in [Rollover::ToZero, Rollover::ToOne] {
            let config = TransferConfig {
                rollover,
                ..TransferConfig::default()
            };
            let mut h = Harness::new(negotiated(8, 8, &[]), config, u64::MAX);
            h.sent();
            // Windows of 8 from block 1: 65529..=65536 spans 65535.
            for n in 1..=65528u64 {
                h.data(to_wire(n, rollover), 8);
            }
            for n in 65529..65536u64 {
                assert_eq!(h.data(to_wire(n, rollover), 8), (true, vec![]));
            }
            let w = to_wire(65536, rollover);
            assert_eq!(h.data(w, 8), (true, vec![Sent::Ack(w)]), "{rollover:?}");
            // A gap right after the wrap re-ACKs the wrapped number.
            let skip = to_wire(65538, rollover);
            assert_eq!(h.data(skip, 8), (false, vec![Sent::Ack(w)]));
            assert_eq!(h.t.bytes_received(), 65536 * 8);
        }
    }
}
