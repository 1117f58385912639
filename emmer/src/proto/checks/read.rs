//! [`ReadTransfer`] driven by any sequence of events: ACKs (any number, or
//! one of a block sent), DATA, ERROR and requests from the client, timer
//! ticks, a repeated RRQ, body bytes fed in any amounts, the body's end, an
//! abort. A model of the client's side checks after each event:
//!
//! - no more than `windowsize` blocks are ever unacknowledged (RFC 7440),
//!   and DATA carries exactly the body's bytes of its block, never a block
//!   beyond the body, a short block only as the last (RFC 1350);
//! - the OACK comes first and DATA waits for ACK 0 (RFC 2347);
//! - an ACK that acknowledges nothing new sends nothing (RFC 1123
//!   §4.2.3.1); stray packets change nothing;
//! - a timer runs exactly while something sent awaits its answer; it is
//!   never in the past, and after it fires the next deadline is later (no
//!   busy loop); an early tick does nothing;
//! - each of `max_retries` silent timeouts resends the oldest unanswered
//!   packet, the next one ends the transfer as `TimedOut`;
//! - a repeated RRQ resends the first packet exactly while nothing sent was
//!   answered;
//! - once there is an outcome nothing is sent but an abort's one ERROR;
//! - whatever happened, a client that then behaves gets the whole body.

use std::borrow::Cow;
use std::time::Duration;

use super::{Clock, MAX_EVENTS, blksize, byte, next_with_wire, rollover, windowsize};
use crate::ErrorCode;
use crate::proto::block::to_wire;
use crate::proto::{
    Mode, Negotiated, Outcome, Packet, ReadTransfer, RequestPacket, Rollover, TransferConfig,
    TransferParams,
};

/// The largest body fed in (16 KiB: hundreds of blocks at small blksizes).
pub const BODY_CAP: usize = 1 << 14;

/// A transfer and what happens to it.
#[derive(Debug, Clone)]
#[cfg_attr(not(test), derive(arbitrary::Arbitrary))]
pub struct Scenario {
    /// See [`super::blksize`].
    pub blksize: u16,
    /// See [`super::windowsize`].
    pub windowsize: u16,
    /// Options were negotiated: an OACK goes first.
    pub oack: bool,
    pub rollover_to_one: bool,
    /// The first retransmission timeout, 1 + this % 2000 ms.
    pub timeout_ms: u16,
    /// Backoff factor, this % 4 (0 is taken as 1).
    pub backoff: u8,
    /// Retries, this % 6.
    pub max_retries: u8,
    pub events: Vec<Event>,
}

/// Something that happens to a read transfer.
#[derive(Debug, Clone)]
#[cfg_attr(not(test), derive(arbitrary::Arbitrary))]
pub enum Event {
    /// The client ACKs this wire number.
    Ack(u16),
    /// The client ACKs the block this many before the highest one sent
    /// (ACK 0 while the OACK is unanswered).
    AckSent(u8),
    /// The client sends DATA (not part of a read).
    Data { block: u16, len: u16 },
    /// The client sends ERROR with this code.
    Error(u16),
    /// The client sends an RRQ, WRQ or OACK (by this % 3) as a packet.
    Stray(u8),
    /// The clock jumps to the deadline, which fires.
    Tick,
    /// The clock moves this many ms, never past the deadline, and an early
    /// `handle_timeout` is called.
    Wait(u16),
    /// The client repeats its RRQ.
    Repeat,
    /// The driver feeds up to this many body bytes.
    Feed(u16),
    /// The body ends.
    End,
    /// The body source fails.
    Abort,
}

/// What the server sent, as the model reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Oack,
    /// DATA of this absolute block.
    Data(u64),
    Error,
}

struct Run {
    t: ReadTransfer,
    clock: Clock,
    blksize: usize,
    ws: u64,
    rollover: Rollover,
    max_retries: u32,
    /// An OACK was negotiated.
    oack: bool,
    /// ACK 0 came for it.
    oack_acked: bool,
    /// Body bytes committed.
    fed: usize,
    /// `finish` was called (before any outcome).
    ended: bool,
    /// Highest block acknowledged.
    acked: u64,
    /// Highest block sent.
    max_sent: u64,
    /// Timer firings since the client last acknowledged something new.
    fires: u32,
    /// An abort's ERROR is still to come.
    error_due: bool,
    /// Blocks up to this one are sent again because of a timeout or a
    /// repeated request: retransmissions, counted.
    resend_upto: u64,
    /// Retransmissions: OACKs after the first, DATA up to `resend_upto`.
    retransmits: u64,
    out: Vec<u8>,
}

impl Run {
    fn new(s: &Scenario) -> Self {
        let blksize = blksize(s.blksize);
        let ws = windowsize(s.windowsize);
        let negotiated = Negotiated {
            params: TransferParams {
                blksize,
                windowsize: ws,
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
            ..TransferConfig::default()
        };
        let clock = Clock::start();
        let mut run = Run {
            t: ReadTransfer::new(clock.now, &negotiated, &config),
            clock,
            blksize: usize::from(blksize),
            ws: u64::from(ws),
            rollover: config.rollover,
            max_retries: config.max_retries,
            oack: s.oack,
            oack_acked: false,
            fed: 0,
            ended: false,
            acked: 0,
            max_sent: 0,
            fires: 0,
            error_due: false,
            resend_upto: 0,
            retransmits: 0,
            out: Vec::new(),
        };
        // The driver polls at once: the OACK, if any, goes out.
        let sent = run.drain();
        assert_eq!(sent, if s.oack { vec![Sent::Oack] } else { vec![] });
        run
    }

    /// The last block, once the body has ended.
    fn last(&self) -> Option<u64> {
        self.ended.then(|| (self.fed / self.blksize) as u64 + 1)
    }

    /// The OACK waits for ACK 0.
    fn oack_out(&self) -> bool {
        self.oack && !self.oack_acked
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
            match packet {
                Packet::Oack { .. } => {
                    assert!(self.oack_out(), "an OACK when none is due");
                    assert!(self.t.outcome().is_none(), "an OACK after the end");
                    sent.push(Sent::Oack);
                }
                Packet::Data { block, data } => {
                    let n = self.check_data(block, data);
                    if n <= self.resend_upto {
                        self.retransmits += 1;
                    }
                    sent.push(Sent::Data(n));
                }
                Packet::Error { .. } => {
                    assert!(self.error_due, "an ERROR without an abort");
                    self.error_due = false;
                    sent.push(Sent::Error);
                }
                other => panic!("a read sent {other:?}"),
            }
            // A window at most, after the OACK: else poll_transmit loops.
            assert!(
                sent.len() as u64 <= self.ws + 1,
                "{} packets at once",
                sent.len()
            );
        }
        self.resend_upto = 0;
        assert_eq!(
            self.t.retransmits(),
            self.retransmits,
            "retransmissions: after a timeout or a repeat, not after a mid-window ACK"
        );
        assert!(
            self.max_sent - self.acked <= self.ws,
            "blocks {}..={} are out with a window of {}",
            self.acked + 1,
            self.max_sent,
            self.ws
        );
        if self.t.outcome().is_some() {
            assert!(!self.error_due, "the abort's ERROR was not sent");
            assert!(self.t.is_finished(), "over but not finished");
        }
        sent
    }

    /// Checks a DATA packet the server sent; returns its absolute block.
    fn check_data(&mut self, wire: u16, data: &[u8]) -> u64 {
        assert!(self.t.outcome().is_none(), "DATA {wire} after the end");
        assert!(
            !self.oack_out(),
            "DATA {wire} before ACK 0 of the OACK (RFC 2347)"
        );
        let n = next_with_wire(self.acked + 1, wire, self.rollover)
            .filter(|&n| n <= self.acked + self.ws)
            .unwrap_or_else(|| {
                panic!(
                    "DATA {wire} is not in the window after block {} (windowsize {})",
                    self.acked, self.ws
                )
            });
        let start = (n - 1) as usize * self.blksize;
        assert!(
            start <= self.fed,
            "DATA {n} is beyond the {} body bytes fed",
            self.fed
        );
        let end = (start + self.blksize).min(self.fed);
        if data.len() < self.blksize {
            assert_eq!(
                self.last(),
                Some(n),
                "short DATA {n} ({} bytes) is not the last block (RFC 1350)",
                data.len()
            );
        }
        let expected: Vec<u8> = (start..end).map(|i| byte(0, i)).collect();
        assert!(
            data == expected.as_slice(),
            "DATA {n} does not carry bytes {start}..{end}"
        );
        self.max_sent = self.max_sent.max(n);
        n
    }

    /// After every event: the outcome and the timer agree with the model.
    fn settle(&mut self) {
        let outcome = self.t.outcome();
        if outcome == Some(&Outcome::Complete) {
            assert_eq!(
                Some(self.acked),
                self.last(),
                "complete before the last ACK"
            );
        }
        let bytes = if Some(self.acked) == self.last() {
            self.fed
        } else {
            self.acked as usize * self.blksize
        };
        assert_eq!(self.t.bytes_acked(), bytes as u64, "bytes acknowledged");
        let waiting = outcome.is_none() && (self.oack_out() || self.max_sent > self.acked);
        let deadline = self.t.poll_timeout();
        assert_eq!(
            deadline.is_some(),
            waiting,
            "a timer must run exactly while something sent awaits its answer"
        );
        if let Some(d) = deadline {
            assert!(d >= self.clock.now, "the deadline is in the past");
        }
        if self.fires > 0 && outcome.is_none() {
            assert!(
                self.fires <= self.max_retries,
                "{} silent timeouts",
                self.fires
            );
        }
    }

    /// What is out goes again, as retransmissions: the OACK, or the blocks
    /// sent and not acknowledged.
    fn expect_resend(&mut self) {
        if self.t.outcome().is_some() {
            return;
        }
        if self.oack_out() {
            self.retransmits += 1;
        } else {
            self.resend_upto = self.max_sent;
        }
    }

    /// The room the driver should get from `fill_buf`.
    fn room(&self) -> Option<usize> {
        let building = (self.fed / self.blksize) as u64 + 1;
        (self.t.outcome().is_none() && !self.ended && building <= self.acked + self.ws)
            .then(|| self.blksize - self.fed % self.blksize)
    }

    fn packet(&mut self, packet: &Packet<'_>) -> Vec<Sent> {
        self.t.handle_packet(self.clock.now, packet);
        self.drain()
    }

    fn ack(&mut self, wire: u16) {
        let before = self.t.outcome().cloned();
        let mut progress = false;
        if before.is_none() {
            if self.oack_out() {
                // RFC 2347: ACK 0 acknowledges the OACK; nothing else counts.
                progress = wire == 0;
                self.oack_acked = progress;
            } else if let Some(n) =
                next_with_wire(self.acked + 1, wire, self.rollover).filter(|&n| n <= self.max_sent)
            {
                self.acked = n;
                progress = true;
            }
        }
        if progress {
            self.fires = 0;
        }
        let sent = self.packet(&Packet::Ack { block: wire });
        if !progress {
            assert_eq!(
                sent,
                [],
                "ACK {wire} acknowledges nothing new (RFC 1123 §4.2.3.1)"
            );
        }
        if before.is_none() && self.ended && Some(self.acked) == self.last() {
            assert_eq!(
                self.t.outcome(),
                Some(&Outcome::Complete),
                "the last block is acked"
            );
        } else {
            assert_eq!(
                self.t.outcome(),
                before.as_ref(),
                "ACK {wire} changed the outcome"
            );
        }
    }

    fn ignored(&mut self, packet: &Packet<'_>) {
        let before = self.t.outcome().cloned();
        let sent = self.packet(packet);
        assert_eq!(sent, [], "{packet:?} is not part of a read");
        assert_eq!(
            self.t.outcome(),
            before.as_ref(),
            "{packet:?} changed the outcome"
        );
    }

    fn event(&mut self, e: &Event) {
        match *e {
            Event::Ack(wire) => self.ack(wire),
            Event::AckSent(back) => {
                let wire = if self.oack_out() {
                    0
                } else {
                    to_wire(self.max_sent.saturating_sub(u64::from(back)), self.rollover)
                };
                self.ack(wire);
            }
            Event::Data { block, len } => {
                let data = vec![7u8; usize::from(len % 600)];
                self.ignored(&Packet::Data { block, data: &data });
            }
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
                let sent = self.packet(&Packet::Error { code, message });
                assert_eq!(sent, [], "an ERROR is not answered");
                let expected = match before {
                    Some(o) => o,
                    // RFC 2347: an ERROR in answer to the OACK is a refusal.
                    None if self.oack_out() => Outcome::SizeProbe,
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
                let expected = self.t.outcome().is_none()
                    && if self.oack {
                        !self.oack_acked
                    } else {
                        self.max_sent > 0 && self.acked == 0
                    };
                let fires = self.fires;
                assert_eq!(
                    self.t.handle_repeat(self.clock.now),
                    expected,
                    "handle_repeat"
                );
                if expected {
                    self.expect_resend();
                }
                let sent = self.drain();
                if expected {
                    // RFC 1350 §2: the first packet again.
                    let first = if self.oack { Sent::Oack } else { Sent::Data(1) };
                    assert_eq!(
                        sent.first(),
                        Some(&first),
                        "a repeat resends the first packet"
                    );
                } else {
                    assert_eq!(sent, [], "a stale repeat sent something");
                }
                assert_eq!(self.fires, fires);
            }
            Event::Feed(n) => {
                self.feed(usize::from(n));
                self.drain();
            }
            Event::End => {
                if self.t.outcome().is_none() {
                    self.ended = true;
                }
                self.t.finish();
                assert!(self.t.fill_buf().is_none(), "room after the end");
                self.drain();
            }
            Event::Abort => {
                if self.t.outcome().is_none() {
                    self.error_due = true;
                }
                self.t.abort(ErrorCode::Undefined, "the body failed");
                let expected: &[Sent] = if self.error_due { &[Sent::Error] } else { &[] };
                assert_eq!(self.drain(), expected, "an abort sends one ERROR");
                assert!(self.t.outcome().is_some(), "an abort ends the transfer");
            }
        }
        self.settle();
    }

    /// Feeds up to `n` body bytes, as `fill_buf` allows.
    fn feed(&mut self, mut n: usize) {
        while n > 0 && self.fed < BODY_CAP {
            let room = self.room();
            let fed = self.fed;
            let Some(buf) = self.t.fill_buf() else {
                assert_eq!(room, None, "fill_buf gives no room");
                return;
            };
            assert_eq!(
                Some(buf.len()),
                room,
                "fill_buf gives the rest of the block"
            );
            let k = buf.len().min(n).min(BODY_CAP - fed);
            for (i, b) in buf[..k].iter_mut().enumerate() {
                *b = byte(0, fed + i);
            }
            self.t.commit(k);
            self.fed += k;
            n -= k;
        }
    }

    /// The clock jumps to the deadline and it fires.
    fn tick(&mut self) {
        let before = self.t.outcome().cloned();
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
        self.fires += 1;
        self.expect_resend();
        let sent = self.drain();
        if self.fires > self.max_retries {
            assert_eq!(
                self.t.outcome(),
                Some(&Outcome::TimedOut),
                "{} silent timeouts with {} retries",
                self.fires,
                self.max_retries
            );
            assert_eq!(sent, [], "giving up is silent");
        } else {
            // RFC 1350: the oldest unanswered packet goes again.
            let first = if self.oack_out() {
                Sent::Oack
            } else {
                Sent::Data(self.acked + 1)
            };
            assert_eq!(sent.first(), Some(&first), "a timeout resends");
            if let Some(next) = self.t.poll_timeout() {
                assert!(next > deadline, "the timer fired at once again (busy loop)");
            }
        }
    }

    /// A client that behaves from now on: the body ends and every block is
    /// acknowledged; the transfer completes with the whole body.
    fn finish_cleanly(&mut self) {
        if self.t.outcome().is_some() {
            return;
        }
        self.event(&Event::End);
        let blocks = self.last().unwrap_or(0);
        for _ in 0..blocks + 2 {
            if self.t.outcome().is_some() {
                break;
            }
            let wire = if self.oack_out() {
                0
            } else {
                to_wire(self.max_sent, self.rollover)
            };
            self.ack(wire);
            self.settle();
        }
        assert_eq!(
            self.t.outcome(),
            Some(&Outcome::Complete),
            "a willing client is served"
        );
        assert_eq!(self.t.bytes_acked(), self.fed as u64);
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
