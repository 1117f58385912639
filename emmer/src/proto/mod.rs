//! The TFTP protocol without I/O: packets, options, netascii and the read and
//! write transfer state machines.
//!
//! Nothing here touches a socket, a clock or tokio. Time comes in as an
//! argument (`now: Instant`), packets come in decoded, and what must be sent is
//! polled out into a caller-owned buffer. Every rule of RFC 1350, 2347, 2348,
//! 2349 and 7440 that the engine follows is unit-tested in these files.
//!
//! [`ReadTransfer`] and [`WriteTransfer`] have one shape:
//!
//! ```text
//! driver                     state machine
//!   recv datagram ──decode──▶ handle_packet(now, &packet)
//!   request again ─────────▶ handle_repeat(now)
//!   timer fired   ─────────▶ handle_timeout(now)
//!   send          ◀──────── poll_transmit(now, &mut out)  (appends; until None)
//!   arm timer     ◀──────── poll_timeout()
//!   log           ◀──────── outcome()
//!   drop it       ◀──────── is_finished()
//! ```

pub mod block;
#[cfg(test)]
// The fuzz crate compiles these files as its own modules and uses their
// items from outside: `pub` there, unreachable here.
#[allow(unreachable_pub)]
mod checks;
#[cfg(test)]
mod harness;
pub mod netascii;
pub mod options;
pub mod packet;
#[cfg(test)]
mod props;
pub mod read;
mod retransmit;
pub mod write;

use std::time::Duration;

use crate::ErrorCode;

pub use options::{Negotiated, OptionLimits, RequestedOptions};
pub use packet::{Mode, Packet, PacketError, RequestPacket};
pub use read::ReadTransfer;
pub use write::WriteTransfer;

/// How block numbers continue after 65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rollover {
    /// 65535 is followed by 0 (what most clients expect).
    #[default]
    ToZero,
    /// 65535 is followed by 1 (some old clients expect it).
    ToOne,
}

/// Timing and limits of one transfer, fixed when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferConfig {
    /// The retransmission timeout: wait this long for an answer before the
    /// first retransmission (`EMMER_TIMEOUT_MS`,
    /// [`App::retransmit_timeout`](crate::App::retransmit_timeout)). The
    /// negotiated RFC 2349 `timeout`/`utimeout` option replaces it.
    pub retransmit_timeout: Duration,
    /// Each further retransmission waits `backoff` times longer than the one
    /// before, up to `max_retransmit_timeout`.
    pub backoff: u32,
    /// Longest wait between two retransmissions (`EMMER_MAX_TIMEOUT_MS`,
    /// [`App::retransmit_bounds`](crate::App::retransmit_bounds)).
    pub max_retransmit_timeout: Duration,
    /// Shortest first wait once the round trip has been measured
    /// (`EMMER_MIN_TIMEOUT_MS`,
    /// [`App::retransmit_bounds`](crate::App::retransmit_bounds)). Without a
    /// negotiated timeout the wait adapts to the measured round trip
    /// (RFC 6298: SRTT + 4 × RTTVAR), within this floor and
    /// `max_retransmit_timeout`.
    pub min_retransmit_timeout: Duration,
    /// Give up after this many retransmissions of the same packet.
    pub max_retries: u32,
    /// After the final ACK of an upload, stay this long to re-ACK a
    /// retransmitted last block (RFC 1350 §6), at least twice a negotiated
    /// timeout. Default 12 s: clients that negotiate nothing retransmit
    /// after their own timer (tftp-hpa 5 s, curl 5 to 6 s), and one that
    /// lost the final ACK must hear it then. A dallying transfer no longer
    /// counts toward the transfer limits.
    pub dally: Duration,
    /// What follows block 65535.
    pub rollover: Rollover,
    /// On an upload with windows (RFC 7440): when part of a window has
    /// arrived and nothing more comes for this long, ACK the last block
    /// received in order, so that a lost tail of a window costs this wait
    /// instead of a whole retransmission timeout.
    pub window_idle: Duration,
}

impl Default for TransferConfig {
    fn default() -> Self {
        Self {
            retransmit_timeout: Duration::from_secs(1),
            backoff: 2,
            max_retransmit_timeout: Duration::from_secs(8),
            min_retransmit_timeout: Duration::from_millis(200),
            max_retries: 5,
            dally: Duration::from_secs(12),
            rollover: Rollover::ToZero,
            window_idle: Duration::from_millis(50),
        }
    }
}

/// How a transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every byte was sent and acknowledged (read), or received and
    /// acknowledged (write).
    Complete,
    /// The client answered our OACK with an ERROR: it only wanted the options
    /// (UEFI firmware asks for `tsize` this way, then sends ERROR 8).
    SizeProbe,
    /// The client sent an ERROR and the transfer stopped.
    PeerError {
        /// The code the client sent (not always 0..=8).
        code: u16,
        /// The client's message.
        message: String,
    },
    /// We ended the transfer with an ERROR.
    Failed {
        /// The code we sent.
        code: ErrorCode,
        /// The message we sent.
        message: String,
    },
    /// The peer stopped answering: `max_retries` retransmissions went unanswered.
    TimedOut,
}

impl Outcome {
    /// True for [`Outcome::Complete`] and [`Outcome::SizeProbe`].
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Complete | Outcome::SizeProbe)
    }
}

/// Parameters of one transfer after option negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferParams {
    /// Bytes of data per block (RFC 2348), 512 unless negotiated.
    pub blksize: u16,
    /// Blocks per window (RFC 7440), 1 unless negotiated.
    pub windowsize: u16,
}

impl Default for TransferParams {
    fn default() -> Self {
        Self {
            blksize: 512,
            windowsize: 1,
        }
    }
}
