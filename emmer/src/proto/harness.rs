//! What the tests of both transfer machines share: a fake clock that jumps to
//! the machine's deadline, `poll_transmit` drained into decoded packets, the
//! packets a client sends, and a builder of [`Negotiated`] parameters. Each
//! machine's tests add their constructors (`impl Harness<ReadTransfer>` in
//! read.rs, `impl Harness<WriteTransfer>` in write.rs).

use std::borrow::Cow;
use std::time::{Duration, Instant};

use super::{Negotiated, Packet, ReadTransfer, TransferParams, WriteTransfer};

/// A packet the server sent, decoded into owned form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Sent {
    Oack(Vec<(String, String)>),
    Data(u16, Vec<u8>),
    Ack(u16),
    Error(u16, String),
}

impl Sent {
    /// The block number of a DATA packet.
    pub(super) fn block(&self) -> u16 {
        match self {
            Sent::Data(block, _) => *block,
            other => panic!("not DATA: {other:?}"),
        }
    }
}

/// The block numbers of a run of DATA packets.
pub(super) fn blocks(sent: &[Sent]) -> Vec<u16> {
    sent.iter().map(Sent::block).collect()
}

/// The block number of the last of a run of DATA packets.
pub(super) fn last_block(sent: &[Sent]) -> u16 {
    sent.last().expect("DATA was sent").block()
}

/// Negotiated parameters: `blksize`, `windowsize`, and the OACK to send
/// (empty: none). No timeout or tsize.
pub(super) fn negotiated(
    blksize: u16,
    windowsize: u16,
    oack: &[(&'static str, &str)],
) -> Negotiated {
    Negotiated {
        params: TransferParams {
            blksize,
            windowsize,
        },
        timeout: None,
        tsize: None,
        oack: oack.iter().map(|&(k, v)| (k, v.to_string())).collect(),
    }
}

/// The driver's side of a transfer machine, the same on both.
pub(super) trait Machine {
    /// What a driver does before it polls: a read takes what it can of the
    /// rest of the body, and is told when it has ended.
    fn feed(&mut self, body: &mut Vec<u8>);
    /// Returns the payload a write hands on.
    fn handle_packet<'p>(&mut self, now: Instant, packet: &Packet<'p>) -> Option<&'p [u8]>;
    fn handle_timeout(&mut self, now: Instant);
    fn handle_repeat(&mut self, now: Instant) -> bool;
    fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> Option<usize>;
    fn poll_timeout(&self) -> Option<Instant>;
}

impl Machine for ReadTransfer {
    fn feed(&mut self, body: &mut Vec<u8>) {
        loop {
            if body.is_empty() {
                self.finish();
                return;
            }
            let Some(buf) = self.fill_buf() else { return };
            let n = buf.len().min(body.len());
            buf[..n].copy_from_slice(&body[..n]);
            body.drain(..n);
            self.commit(n);
        }
    }
    fn handle_packet<'p>(&mut self, now: Instant, packet: &Packet<'p>) -> Option<&'p [u8]> {
        ReadTransfer::handle_packet(self, now, packet);
        None
    }
    fn handle_timeout(&mut self, now: Instant) {
        ReadTransfer::handle_timeout(self, now)
    }
    fn handle_repeat(&mut self, now: Instant) -> bool {
        ReadTransfer::handle_repeat(self, now)
    }
    fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> Option<usize> {
        ReadTransfer::poll_transmit(self, now, out)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        ReadTransfer::poll_timeout(self)
    }
}

impl Machine for WriteTransfer {
    fn feed(&mut self, _: &mut Vec<u8>) {}
    fn handle_packet<'p>(&mut self, now: Instant, packet: &Packet<'p>) -> Option<&'p [u8]> {
        WriteTransfer::handle_packet(self, now, packet)
    }
    fn handle_timeout(&mut self, now: Instant) {
        WriteTransfer::handle_timeout(self, now)
    }
    fn handle_repeat(&mut self, now: Instant) -> bool {
        WriteTransfer::handle_repeat(self, now)
    }
    fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> Option<usize> {
        WriteTransfer::poll_transmit(self, now, out)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        WriteTransfer::poll_timeout(self)
    }
}

/// A transfer machine on a fake clock, and a driver that does everything at
/// once: each event is followed by everything the transfer sends.
pub(super) struct Harness<M> {
    pub(super) t: M,
    /// When the transfer started.
    pub(super) base: Instant,
    pub(super) now: Instant,
    /// Read: the rest of the body, not yet handed to the transfer.
    pub(super) body: Vec<u8>,
    /// Write: everything the transfer handed on, in order.
    pub(super) stored: Vec<u8>,
    out: Vec<u8>,
}

impl<M: Machine> Harness<M> {
    /// Starts the machine `make` builds at the current time.
    pub(super) fn start(make: impl FnOnce(Instant) -> M) -> Self {
        let base = Instant::now();
        Self {
            t: make(base),
            base,
            now: base,
            body: Vec::new(),
            stored: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Everything the transfer wants to send now, decoded. The packets are
    /// polled into one buffer, as a driver laying out a batch does: each one
    /// must be appended after the ones before, with its length returned.
    pub(super) fn sent(&mut self) -> Vec<Sent> {
        let mut v = Vec::new();
        self.out.clear();
        loop {
            let start = self.out.len();
            let Some(len) = self.t.poll_transmit(self.now, &mut self.out) else {
                assert_eq!(self.out.len(), start, "nothing appended after None");
                return v;
            };
            assert_eq!(self.out.len(), start + len, "the packet is appended");
            v.push(match Packet::decode(&self.out[start..]).unwrap() {
                Packet::Oack { options } => Sent::Oack(
                    options
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                Packet::Data { block, data } => Sent::Data(block, data.to_vec()),
                Packet::Ack { block } => Sent::Ack(block),
                Packet::Error { code, message } => Sent::Error(code, message.into_owned()),
                other => panic!("server sent {other:?}"),
            });
        }
    }

    /// Feeds (a read), then collects what is sent.
    pub(super) fn step(&mut self) -> Vec<Sent> {
        self.t.feed(&mut self.body);
        self.sent()
    }

    /// Hands `packet` from the client to the transfer: returns whether it
    /// handed on data (stored), and what was sent after it.
    pub(super) fn packet(&mut self, packet: &Packet<'_>) -> (bool, Vec<Sent>) {
        let handed = self.t.handle_packet(self.now, packet);
        let handed = handed
            .inspect(|d| self.stored.extend_from_slice(d))
            .is_some();
        (handed, self.step())
    }

    pub(super) fn ack(&mut self, block: u16) -> Vec<Sent> {
        self.packet(&Packet::Ack { block }).1
    }

    /// DATA `block` with `len` bytes (the byte is the low bits of the
    /// block): returns whether it was handed on, and what was sent.
    pub(super) fn data(&mut self, block: u16, len: usize) -> (bool, Vec<Sent>) {
        let payload = vec![block as u8; len];
        self.packet(&Packet::Data {
            block,
            data: &payload,
        })
    }

    pub(super) fn error(&mut self, code: u16, message: &'static str) -> Vec<Sent> {
        let message = Cow::Borrowed(message);
        self.packet(&Packet::Error { code, message }).1
    }

    /// The client sends its request again: returns what
    /// `handle_repeat` returned, and what was sent after it.
    pub(super) fn repeat(&mut self) -> (bool, Vec<Sent>) {
        let resent = self.t.handle_repeat(self.now);
        (resent, self.step())
    }

    /// Advances the clock by `d`, firing nothing.
    pub(super) fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// Advances the clock to the deadline and fires it, then collects what
    /// is sent.
    pub(super) fn fire(&mut self) -> Vec<Sent> {
        let d = self.t.poll_timeout().expect("a timer is armed");
        assert!(d >= self.now);
        self.now = d;
        self.t.handle_timeout(self.now);
        self.step()
    }
}
