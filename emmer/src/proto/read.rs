//! The sender side of a read request (RRQ): the server sends DATA, the client
//! ACKs (RFC 1350), in windows of blocks (RFC 7440), after an optional OACK
//! (RFC 2347).
//!
//! The body is fed in by the driver through [`ReadTransfer::fill_buf`] /
//! [`ReadTransfer::commit`] / [`ReadTransfer::finish`]; the state machine keeps
//! at most one window of blocks (the unacknowledged ones), and reuses their
//! buffers.

use std::time::Instant;

use super::{Negotiated, Outcome, Packet, TransferConfig};
use crate::ErrorCode;

/// State of one read transfer.
#[derive(Debug)]
pub struct ReadTransfer {
    _todo: (),
}

impl ReadTransfer {
    /// Starts a read transfer. When `negotiated.oack` is not empty the first
    /// packet is the OACK and DATA 1 waits for ACK 0; otherwise DATA 1 goes
    /// first (once the driver has filled it).
    pub fn new(now: Instant, negotiated: &Negotiated, config: &TransferConfig) -> Self {
        let _ = (now, negotiated, config);
        todo!("proto helper")
    }

    /// Space for the next bytes of the body: the unfilled rest of the block
    /// being built. `None` when the window is full or the body has ended.
    pub fn fill_buf(&mut self) -> Option<&mut [u8]> {
        todo!("proto helper")
    }

    /// `n` bytes of the slice from [`fill_buf`](Self::fill_buf) were written.
    pub fn commit(&mut self, n: usize) {
        let _ = n;
        todo!("proto helper")
    }

    /// The body has ended; the block being built (possibly empty) is the last.
    pub fn finish(&mut self) {
        todo!("proto helper")
    }

    /// Handles a packet from the client (the driver has checked its source).
    pub fn handle_packet(&mut self, now: Instant, packet: &Packet<'_>) {
        let _ = (now, packet);
        todo!("proto helper")
    }

    /// Handles the expiry of the deadline from [`poll_timeout`](Self::poll_timeout).
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
        todo!("proto helper")
    }

    /// Ends the transfer with an ERROR to the client (for a failure of the
    /// body source, or a shutdown).
    pub fn abort(&mut self, code: ErrorCode, message: &str) {
        let _ = (code, message);
        todo!("proto helper")
    }

    /// Clears `out` and writes the next packet to send into it; false when
    /// there is nothing to send now.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> bool {
        let _ = (now, out);
        todo!("proto helper")
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called; `None`
    /// once the transfer is over or while it waits for the driver to fill a
    /// block.
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!("proto helper")
    }

    /// How the transfer ended, once it has.
    pub fn outcome(&self) -> Option<&Outcome> {
        todo!("proto helper")
    }

    /// Payload bytes acknowledged by the client so far.
    pub fn bytes_acked(&self) -> u64 {
        todo!("proto helper")
    }

    /// Packets sent again because of a timeout.
    pub fn retransmits(&self) -> u64 {
        todo!("proto helper")
    }
}
