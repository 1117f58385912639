//! [`WriteTransfer`] driven by any sequence of events: DATA (any number, or
//! one near the next block expected) of any length, ACK, ERROR and requests
//! from the client, timer ticks, a repeated WRQ, and the verdict (accept or
//! abort) at any moment. A model of the client's side checks after each
//! event:
//!
//! - a block's payload is handed on exactly when it is the next block in
//!   order (RFC 1350), at most once, whole; so what was handed on is the
//!   client's in-order blocks, and a short block is the last;
//! - every ACK names the last block handed on, so nothing is acknowledged
//!   before it is stored, and the final ACK waits for `accept`;
//! - the OACK goes only before DATA 1 (RFC 2347); a block over blksize or
//!   over the size limit ends the transfer with one ERROR;
//! - stray packets change nothing; an ERROR ends the transfer, except
//!   during the dally;
//! - a timer runs exactly while the transfer waits for DATA or dallies; it
//!   is never in the past, and after it fires the next deadline is later;
//!   an early tick does nothing;
//! - silent timeouts resend the last packet, and the transfer ends as
//!   `TimedOut` after `max_retries` of them (one more when the first was
//!   the short wait for the rest of a window);
//! - a repeated WRQ resends the first packet exactly until DATA 1 comes;
//! - whatever happened, a client that then behaves completes the upload.

use std::borrow::Cow;
use std::time::Duration;

use super::{Clock, MAX_EVENTS, blksize, byte, rollover, windowsize};
use crate::ErrorCode;
use crate::proto::block::to_wire;
use crate::proto::packet::MAX_BLKSIZE;
use crate::proto::{
    Mode, Negotiated, Outcome, Packet, RequestPacket, Rollover, TransferConfig, TransferParams,
    WriteTransfer,
};

/// An upload and what happens to it.
#[derive(Debug, Clone)]
#[cfg_attr(not(test), derive(arbitrary::Arbitrary))]
pub struct Scenario {
    /// See [`super::blksize`].
    pub blksize: u16,
    /// See [`super::windowsize`].
    pub windowsize: u16,
    /// Options were negotiated: an OACK goes first, not ACK 0.
    pub oack: bool,
    pub rollover_to_one: bool,
    /// The first retransmission timeout, 1 + this % 2000 ms.
    pub timeout_ms: u16,
    /// Backoff factor, this % 4 (0 is taken as 1).
    pub backoff: u8,
    /// Retries, this % 6.
    pub max_retries: u8,
    /// The wait for the rest of a window, this % 200 ms.
    pub window_idle_ms: u16,
    /// The dally after the final ACK, this % 5000 ms.
    pub dally_ms: u16,
    /// The upload limit in bytes, none if `None`.
    pub max_bytes: Option<u16>,
    pub events: Vec<Event>,
}

/// The length of a DATA payload.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(test), derive(arbitrary::Arbitrary))]
pub enum Len {
    /// blksize bytes.
    Full,
    /// Shorter than blksize: this % blksize.
    Short(u16),
    /// Anything a DATA packet can carry: this % 65465.
    Any(u16),
}

/// Something that happens to a write transfer.
#[derive(Debug, Clone)]
#[cfg_attr(not(test), derive(arbitrary::Arbitrary))]
pub enum Event {
    /// The client sends DATA with this wire number.
    Data { block: u16, len: Len, seed: u8 },
    /// The client sends DATA of the next block expected moved by `skip`
    /// (below: a duplicate; above: a gap).
    DataNear { skip: i8, len: Len, seed: u8 },
    /// The client sends ACK (not part of a write).
    Ack(u16),
    /// The client sends ERROR with this code.
    Error(u16),
    /// The client sends an RRQ, WRQ or OACK (by this % 3) as a packet.
    Stray(u8),
    /// The clock jumps to the deadline, which fires.
    Tick,
    /// The clock moves this many ms, never past the deadline, and an early
    /// `handle_timeout` is called.
    Wait(u16),
    /// The client repeats its WRQ.
    Repeat,
    /// The handler accepts the upload (ignored unless it awaits a verdict).
    Accept,
    /// The handler or the driver refuses the upload.
    Abort,
}

/// What the server sent, as the model reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Oack,
    Ack(u16),
    Error(u16),
}

struct Run {
    t: WriteTransfer,
    clock: Clock,
    blksize: usize,
    rollover: Rollover,
    max_retries: u32,
    max_bytes: u64,
    /// An OACK was negotiated.
    oack: bool,
    /// Blocks handed on.
    handed: u64,
    /// Their payloads, in order.
    stored: Vec<u8>,
    /// The short block was handed on.
    ended: bool,
    /// `accept` was called while the upload awaited its verdict.
    accepted: bool,
    /// The dally ended.
    dallied: bool,
    /// Timer firings since the last block handed on.
    fires: u32,
    /// The ERROR that ends the transfer is still to come.
    error_due: bool,
    out: Vec<u8>,
}

impl Run {
    fn new(s: &Scenario) -> Self {
        let blksize = blksize(s.blksize);
        let negotiated = Negotiated {
            params: TransferParams {
                blksize,
                windowsize: windowsize(s.windowsize),
            },
            timeout: None,
            tsize: None,
            oack: if s.oack {
                vec![("blksize", blksize.to_string())]
            } else {
                Vec::new()
            },
        };
        let config = TransferConfig {
            retransmit_timeout: Duration::from_millis(1 + u64::from(s.timeout_ms % 2000)),
            backoff: u32::from(s.backoff % 4),
            max_retries: u32::from(s.max_retries % 6),
            rollover: rollover(s.rollover_to_one),
            window_idle: Duration::from_millis(u64::from(s.window_idle_ms % 200)),
            dally: Duration::from_millis(u64::from(s.dally_ms % 5000)),
            ..TransferConfig::default()
        };
        let max_bytes = s.max_bytes.map_or(u64::MAX, u64::from);
        let clock = Clock::start();
        let mut run = Run {
            t: WriteTransfer::new(clock.now, &negotiated, &config, max_bytes),
            clock,
            blksize: usize::from(blksize),
            rollover: config.rollover,
            max_retries: config.max_retries,
            max_bytes,
            oack: s.oack,
            handed: 0,
            stored: Vec::new(),
            ended: false,
            accepted: false,
            dallied: false,
            fires: 0,
            error_due: false,
            out: Vec::new(),
        };
        // The driver polls at once: the OACK or ACK 0 goes out.
        let sent = run.drain();
        assert_eq!(sent, [run.start_packet()]);
        run
    }

    /// The first packet: the OACK (RFC 2347) or ACK 0 (RFC 1350).
    fn start_packet(&self) -> Sent {
        if self.oack { Sent::Oack } else { Sent::Ack(0) }
    }

    /// Still receiving: no verdict, no outcome.
    fn active(&self) -> bool {
        self.t.outcome().is_none() && !self.ended
    }

    /// Everything the transfer sends now, checked packet by packet.
    fn drain(&mut self) -> Vec<Sent> {
        let mut sent = Vec::new();
        self.out.clear();
        loop {
            let start = self.out.len();
            let Some(len) = self.t.poll_transmit(self.clock.now, &mut self.out) else {
                assert_eq!(self.out.len(), start, "bytes appended with None");
                break;
            };
            assert_eq!(
                self.out.len(),
                start + len,
                "the length returned is appended"
            );
            let bytes = self.out[start..].to_vec();
            let packet =
                Packet::decode(&bytes).unwrap_or_else(|e| panic!("the server sent {bytes:?}: {e}"));
            sent.push(match packet {
                Packet::Oack { .. } => {
                    assert!(self.oack, "an OACK without options");
                    assert_eq!(self.handed, 0, "an OACK after DATA 1");
                    assert!(self.t.outcome().is_none(), "an OACK after the end");
                    Sent::Oack
                }
                Packet::Ack { block } => {
                    assert_eq!(
                        block,
                        to_wire(self.handed, self.rollover),
                        "ACK {block} with {} blocks handed on",
                        self.handed
                    );
                    assert!(
                        !self.ended || self.accepted,
                        "the final ACK before accept()"
                    );
                    Sent::Ack(block)
                }
                Packet::Error { code, .. } => {
                    assert!(self.error_due, "an ERROR nothing called for");
                    self.error_due = false;
                    Sent::Error(code)
                }
                other => panic!("a write sent {other:?}"),
            });
            assert!(sent.len() <= 2, "{} packets at once: {sent:?}", sent.len());
        }
        if matches!(
            self.t.outcome(),
            Some(Outcome::Failed { .. } | Outcome::PeerError { .. } | Outcome::TimedOut)
        ) {
            assert!(!self.error_due, "the ERROR was not sent");
            assert!(self.t.is_finished(), "over but not finished");
        }
        sent
    }

    /// After every event: the verdict, the byte count and the timer agree
    /// with the model.
    fn settle(&mut self) {
        let outcome = self.t.outcome();
        assert_eq!(
            self.t.awaits_verdict(),
            outcome.is_none() && self.ended,
            "awaits_verdict"
        );
        assert_eq!(self.t.bytes_received(), self.stored.len() as u64);
        let dallying = self.accepted && !self.dallied;
        let deadline = self.t.poll_timeout();
        assert_eq!(
            deadline.is_some(),
            self.active() || dallying,
            "a timer must run exactly while DATA is awaited or during the dally"
        );
        if let Some(d) = deadline {
            assert!(d >= self.clock.now, "the deadline is in the past");
        }
        if self.accepted {
            assert_eq!(outcome, Some(&Outcome::Complete));
            assert_eq!(
                self.t.is_finished(),
                self.dallied,
                "finished after the dally"
            );
        }
    }

    fn packet<'p>(&mut self, packet: &Packet<'p>) -> (Option<&'p [u8]>, Vec<Sent>) {
        let handed = self.t.handle_packet(self.clock.now, packet);
        (handed, self.drain())
    }

    fn data(&mut self, wire: u16, len: Len, seed: u8) {
        let len = match len {
            Len::Full => self.blksize,
            Len::Short(n) => usize::from(n) % self.blksize,
            Len::Any(n) => usize::from(n) % (usize::from(MAX_BLKSIZE) + 1),
        };
        let payload: Vec<u8> = (0..len).map(|i| byte(seed, i)).collect();
        let before = self.t.outcome().cloned();
        let active = self.active();
        let in_order = wire == to_wire(self.handed + 1, self.rollover);
        let too_long = len > self.blksize;
        let too_much = self.stored.len() as u64 + len as u64 > self.max_bytes;
        let expected = active && in_order && !too_long && !too_much;
        // RFC 2348: a block over blksize is refused first; then the limit.
        let refused = active && (too_long || (in_order && too_much));
        self.error_due |= refused;
        let dally_reack =
            self.accepted && !self.dallied && wire == to_wire(self.handed, self.rollover);
        let packet = Packet::Data {
            block: wire,
            data: &payload,
        };
        let handed = self.t.handle_packet(self.clock.now, &packet);
        assert_eq!(
            handed.is_some(),
            expected,
            "DATA {wire} ({len} bytes) after {} blocks handed on",
            self.handed
        );
        if let Some(d) = handed {
            assert!(d == payload.as_slice(), "the payload is handed on whole");
            self.stored.extend_from_slice(d);
            self.handed += 1;
            self.fires = 0;
            // RFC 1350: a short block is the last.
            self.ended = len < self.blksize;
        }
        let sent = self.drain();
        if refused {
            let code = if too_long {
                ErrorCode::IllegalOperation
            } else {
                ErrorCode::DiskFull
            };
            assert_eq!(sent, [Sent::Error(code.as_u16())], "a refused block");
            assert!(
                matches!(self.t.outcome(), Some(Outcome::Failed { code: c, .. }) if *c == code),
                "{:?}",
                self.t.outcome()
            );
        } else {
            assert_eq!(
                self.t.outcome(),
                before.as_ref(),
                "DATA changed the outcome"
            );
            if dally_reack {
                // RFC 1350 §6: the final ACK was lost; it goes again.
                assert_eq!(sent, [Sent::Ack(wire)], "a re-ACK during the dally");
            } else if !active {
                assert_eq!(sent, [], "DATA {wire} answered after the last block");
            }
        }
    }

    fn ignored(&mut self, packet: &Packet<'_>) {
        let before = self.t.outcome().cloned();
        let (handed, sent) = self.packet(packet);
        assert!(handed.is_none());
        assert_eq!(sent, [], "{packet:?} is not part of a write");
        assert_eq!(
            self.t.outcome(),
            before.as_ref(),
            "{packet:?} changed the outcome"
        );
    }

    fn event(&mut self, e: &Event) {
        let retransmits = self.t.retransmits();
        match *e {
            Event::Data { block, len, seed } => self.data(block, len, seed),
            Event::DataNear { skip, len, seed } => {
                let n = (self.handed + 1).saturating_add_signed(i64::from(skip));
                self.data(to_wire(n, self.rollover), len, seed);
            }
            Event::Ack(block) => self.ignored(&Packet::Ack { block }),
            Event::Stray(k) => {
                let request = RequestPacket {
                    filename: "f",
                    mode: Mode::Octet,
                    options: vec![],
                };
                match k % 3 {
                    0 => self.ignored(&Packet::Rrq(request)),
                    1 => self.ignored(&Packet::Wrq(request)),
                    _ => self.ignored(&Packet::Oack { options: vec![] }),
                }
            }
            Event::Error(code) => {
                let before = self.t.outcome().cloned();
                let message = Cow::Borrowed("client error");
                let (_, sent) = self.packet(&Packet::Error { code, message });
                assert_eq!(sent, [], "an ERROR is not answered");
                let expected = match before {
                    // Dallying, the upload is complete: a late ERROR changes
                    // nothing.
                    Some(o) => o,
                    None => Outcome::PeerError {
                        code,
                        message: "client error".into(),
                    },
                };
                assert_eq!(self.t.outcome(), Some(&expected));
            }
            Event::Tick => self.tick(),
            Event::Wait(ms) => {
                let deadline = self.t.poll_timeout();
                let later = self.clock.now + Duration::from_millis(u64::from(ms));
                self.clock.now = deadline.map_or(later, |d| later.min(d));
                if deadline.is_some_and(|d| self.clock.now < d) {
                    let before = self.t.outcome().cloned();
                    self.t.handle_timeout(self.clock.now);
                    assert_eq!(self.drain(), [], "an early handle_timeout sent something");
                    assert_eq!(
                        self.t.poll_timeout(),
                        deadline,
                        "an early tick moved the timer"
                    );
                    assert_eq!(self.t.outcome(), before.as_ref());
                }
            }
            Event::Repeat => {
                let expected = self.t.outcome().is_none() && self.handed == 0;
                let fires = self.fires;
                assert_eq!(
                    self.t.handle_repeat(self.clock.now),
                    expected,
                    "handle_repeat"
                );
                let sent = self.drain();
                let counted = self.t.retransmits() - retransmits;
                assert_eq!(counted, u64::from(expected), "a repeat's resend is counted");
                if expected {
                    // RFC 1350 §2: the first packet again.
                    assert_eq!(
                        sent,
                        [self.start_packet()],
                        "a repeat resends the first packet"
                    );
                } else {
                    assert_eq!(sent, [], "a stale repeat sent something");
                }
                assert_eq!(self.fires, fires);
            }
            Event::Accept => {
                let awaiting = self.t.outcome().is_none() && self.ended;
                let before = self.t.outcome().cloned();
                self.t.accept(self.clock.now);
                if awaiting {
                    self.accepted = true;
                }
                let sent = self.drain();
                if awaiting {
                    let last = to_wire(self.handed, self.rollover);
                    assert_eq!(sent, [Sent::Ack(last)], "accept sends the final ACK");
                    assert_eq!(self.t.outcome(), Some(&Outcome::Complete));
                } else {
                    assert_eq!(sent, [], "an accept out of turn sent something");
                    assert_eq!(self.t.outcome(), before.as_ref());
                }
            }
            Event::Abort => {
                let open = self.t.outcome().is_none();
                self.error_due |= open;
                self.t.abort(ErrorCode::AccessViolation, "refused");
                let sent = self.drain();
                if open {
                    assert_eq!(sent, [Sent::Error(ErrorCode::AccessViolation.as_u16())]);
                } else {
                    assert_eq!(sent, [], "an abort after the outcome sent something");
                }
            }
        }
        // Only a timeout or a repeated request resends, once.
        let counted = self.t.retransmits() - retransmits;
        let resends = matches!(e, Event::Tick | Event::Repeat);
        assert!(
            counted <= u64::from(resends),
            "{counted} retransmissions counted for {e:?}"
        );
        self.settle();
    }

    /// The clock jumps to the deadline and it fires.
    fn tick(&mut self) {
        let before = self.t.outcome().cloned();
        let retransmits = self.t.retransmits();
        let Some(deadline) = self.t.poll_timeout() else {
            // No timer: a late call changes nothing.
            self.clock.now += Duration::from_secs(1);
            self.t.handle_timeout(self.clock.now);
            assert_eq!(
                self.drain(),
                [],
                "handle_timeout without a timer sent something"
            );
            assert_eq!(self.t.outcome(), before.as_ref());
            return;
        };
        self.clock.now = deadline;
        self.t.handle_timeout(deadline);
        if self.accepted {
            // RFC 1350 §6: the dally is over.
            self.dallied = true;
            assert_eq!(self.drain(), [], "the end of the dally is silent");
            return;
        }
        self.fires += 1;
        let sent = self.drain();
        if self.t.outcome() == Some(&Outcome::TimedOut) {
            assert!(
                self.fires > self.max_retries,
                "timed out after {} timeouts with {} retries",
                self.fires,
                self.max_retries
            );
            assert_eq!(sent, [], "giving up is silent");
            return;
        }
        assert_eq!(self.t.outcome(), None, "a timeout changed the outcome");
        // One retry may go to the short wait for the rest of a window.
        assert!(
            self.fires <= self.max_retries + 1,
            "still going after {} silent timeouts with {} retries",
            self.fires,
            self.max_retries
        );
        // RFC 1350: the last packet goes again (or, after a partial
        // window, the ACK of what came in order, RFC 7440).
        let again = if self.handed == 0 {
            self.start_packet()
        } else {
            Sent::Ack(to_wire(self.handed, self.rollover))
        };
        let resent = sent == [again] || sent == [Sent::Ack(to_wire(self.handed, self.rollover))];
        assert!(resent, "a timeout sent {sent:?}");
        if self.handed == 0 {
            // No window has begun, so no idle wait: a retry, counted.
            assert_eq!(
                self.t.retransmits(),
                retransmits + 1,
                "a timeout's resend is counted"
            );
        }
        if let Some(next) = self.t.poll_timeout() {
            assert!(next > deadline, "the timer fired at once again (busy loop)");
        }
    }

    /// A client that behaves from now on sends the next block, short, and
    /// the handler accepts: the upload completes, and the dally ends.
    fn finish_cleanly(&mut self) {
        if self.active() {
            let wire = to_wire(self.handed + 1, self.rollover);
            self.event(&Event::Data {
                block: wire,
                len: Len::Short(0),
                seed: 0,
            });
        }
        if self.t.outcome().is_none() {
            self.event(&Event::Accept);
        }
        if self.accepted {
            self.event(&Event::Tick);
            assert!(self.t.is_finished(), "the dally ends");
        }
        if self.t.outcome().is_none() {
            panic!("a willing client cannot finish the upload");
        }
    }
}

/// Runs one scenario.
pub fn check(s: &Scenario) {
    let mut run = Run::new(s);
    for e in s.events.iter().take(MAX_EVENTS) {
        run.event(e);
    }
    run.finish_cleanly();
}
