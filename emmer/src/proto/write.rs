//! The receiver side of a write request (WRQ): the client sends DATA, the
//! server ACKs (RFC 1350), in windows (RFC 7440), after an optional OACK.
//!
//! New in-order data is handed back from [`WriteTransfer::handle_packet`]; the
//! driver stores it before it polls the ACK, which gives back-pressure. The
//! final ACK is held until the driver calls [`WriteTransfer::accept`], so a
//! handler can still refuse the upload with an ERROR.

use std::time::Instant;

use super::{Negotiated, Outcome, Packet, TransferConfig};
use crate::ErrorCode;

/// State of one write transfer.
#[derive(Debug)]
pub struct WriteTransfer {
    _todo: (),
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
        let _ = (now, negotiated, config, max_bytes);
        todo!("proto helper")
    }

    /// Handles a packet from the client. Returns the payload of a new
    /// in-order DATA block, which the driver must store before it polls for
    /// the ACK; duplicates and out-of-order blocks return `None`.
    pub fn handle_packet<'p>(&mut self, now: Instant, packet: &Packet<'p>) -> Option<&'p [u8]> {
        let _ = (now, packet);
        todo!("proto helper")
    }

    /// Handles the expiry of the deadline from [`poll_timeout`](Self::poll_timeout).
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
        todo!("proto helper")
    }

    /// True once the last block has arrived and the transfer waits for
    /// [`accept`](Self::accept) or [`abort`](Self::abort).
    pub fn is_complete(&self) -> bool {
        todo!("proto helper")
    }

    /// The upload was accepted: send the final ACK and dally.
    pub fn accept(&mut self, now: Instant) {
        let _ = now;
        todo!("proto helper")
    }

    /// Ends the transfer with an ERROR instead of the next ACK.
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
    /// when the transfer is over or waits for [`accept`](Self::accept).
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!("proto helper")
    }

    /// How the transfer ended, once it has. Set at the final ACK (the dally
    /// that follows does not change it); [`is_finished`](Self::is_finished)
    /// tells when the driver may drop the transfer.
    pub fn outcome(&self) -> Option<&Outcome> {
        todo!("proto helper")
    }

    /// True when nothing more will be sent or received (after the dally).
    pub fn is_finished(&self) -> bool {
        todo!("proto helper")
    }

    /// Payload bytes received in order so far.
    pub fn bytes_received(&self) -> u64 {
        todo!("proto helper")
    }

    /// Packets sent again because of a timeout.
    pub fn retransmits(&self) -> u64 {
        todo!("proto helper")
    }
}
