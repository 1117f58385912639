//! The listening socket: receive, decode once, apply the request policy
//! and the transfer limit, and hand each new request to a transfer task.
//!
//! Only requests are answered. A datagram that is not a request (too short,
//! an unknown opcode, fields without their NUL) is dropped without a word,
//! and counted: answering garbage would make the server an amplifier for
//! spoofed source addresses. A request with a wrong mode or option list
//! gets ERROR 4 saying what is wrong; every ERROR is rate-limited per
//! source address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, watch};

use super::session::{Admission, Sessions};
use super::shutdown::{Phase, stopping};
use super::timer::now;
use super::{Shared, transfer};
use crate::ErrorCode;
use crate::handler::Request;
use crate::proto::PacketError;
use crate::proto::packet::Packet;
use crate::route::Kind;

/// How often, at most, the listener reports the garbage it dropped.
const GARBAGE_REPORT: Duration = Duration::from_secs(10);

/// RFC 2347 limits a request to 512 bytes; some clients send more options.
const REQUEST_BUFFER: usize = 4096;

/// Receives requests until the server stops.
pub(crate) async fn listen(
    socket: &UdpSocket,
    local: SocketAddr,
    shared: &Arc<Shared>,
    permits: &Arc<Semaphore>,
    shutdown: &watch::Sender<Phase>,
) {
    let sessions = Arc::new(Sessions::default());
    let mut stop = shutdown.subscribe();
    let mut buf = vec![0u8; REQUEST_BUFFER];
    let mut errors = 0u32;
    let mut garbage = Garbage::default();
    loop {
        let (n, peer) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(v) => { errors = 0; v }
                Err(e) => {
                    // Transient (ICMP errors, buffer pressure): log and go on,
                    // pausing a little when they repeat.
                    errors += 1;
                    tracing::warn!(error = %e, "receive on the listening socket failed");
                    if errors > 3 {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    continue;
                }
            },
            () = stopping(&mut stop) => return,
        };
        let (kind, packet) = match Packet::decode(&buf[..n]) {
            Ok(Packet::Rrq(r)) => (Kind::Read, r),
            Ok(Packet::Wrq(r)) => (Kind::Write, r),
            Ok(other) => {
                tracing::debug!(%peer, packet = ?other, "ignored a non-request packet on the listening port");
                continue;
            }
            Err(e) if answerable(&buf[..n], &e) => {
                tracing::debug!(%peer, error = %e, "malformed request");
                let code = ErrorCode::IllegalOperation;
                shared.errors.send(socket, peer, code, &e.to_string()).await;
                continue;
            }
            Err(e) => {
                garbage.dropped(peer, &e);
                continue;
            }
        };
        let request = Request::received(peer, local, &packet, shared.state.clone());
        let session = match sessions.admit(kind, &request) {
            Admission::Start(s) => s,
            Admission::Repeat => {
                tracing::debug!(%peer, file = request.filename(), "a repeated request: its transfer is under way");
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(
                %peer,
                file = request.filename(),
                max = shared.config.max_transfers,
                "refused a request: too many transfers at once (EMMER_MAX_TRANSFERS)"
            );
            let busy = "server busy, try again later";
            shared
                .errors
                .send(socket, peer, ErrorCode::Undefined, busy)
                .await;
            continue;
        };
        let shared = shared.clone();
        let stop = shutdown.subscribe();
        tokio::spawn(async move {
            transfer::run(&shared, kind, request, session, stop).await;
            drop(permit);
        });
    }
}

/// Whether a malformed datagram was a request after all (the opcode of an
/// RRQ or WRQ and its strings terminated), whose sender deserves to learn
/// what was wrong with it.
fn answerable(datagram: &[u8], e: &PacketError) -> bool {
    let request = matches!(datagram, [0, 1 | 2, ..]);
    request
        && matches!(
            e,
            PacketError::UnknownMode(_)
                | PacketError::OptionWithoutValue(_)
                | PacketError::EmptyFilename
                | PacketError::NotUtf8(_)
        )
}

/// Datagrams dropped as garbage, reported now and then.
#[derive(Default)]
struct Garbage {
    count: u64,
    reported: Option<std::time::Instant>,
}

impl Garbage {
    fn dropped(&mut self, from: SocketAddr, e: &PacketError) {
        self.count += 1;
        tracing::debug!(%from, error = %e, "dropped a datagram that is not a request");
        let now = now();
        if self
            .reported
            .is_none_or(|t| now.saturating_duration_since(t) >= GARBAGE_REPORT)
        {
            tracing::warn!(
                dropped = self.count,
                last_from = %from,
                "dropped datagrams on the listening port that are not TFTP requests"
            );
            self.reported = Some(now);
            self.count = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_request_shaped_datagrams_are_answered() {
        for (bytes, answered) in [
            (&b"\x00\x01x\x00nonsense\x00"[..], true),
            (b"\x00\x02x\x00octet\x00blksize\x00", true),
            (b"\x00\x01\x00octet\x00", true),
            (b"\x00", false),
            (b"\x00\x01", false),
            (b"\x00\x01file", false),
            (b"\x00\x09abc\x00", false),
            (b"\x00\x03\x00", false),
            (b"GET / HTTP/1.1\r\n", false),
        ] {
            let e = Packet::decode(bytes).expect_err("malformed");
            assert_eq!(answerable(bytes, &e), answered, "{bytes:?}: {e}");
        }
    }
}
