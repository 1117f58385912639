//! The listening socket: receive, decode once, apply the request policy
//! and the transfer limits (`gate`: a request beyond them waits a little
//! instead of being refused), and hand each new request to a transfer task.
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
use tokio::sync::watch;

use super::gate::{Full, Gate, Slot, WaitingRoom};
use super::session::{Admission, Session, Sessions};
use super::shutdown::{Phase, stopping};
use super::timer::now;
use super::{Shared, transfer};
use crate::ErrorCode;
use crate::event::{Limit, TransferEvent};
use crate::handler::Request;
use crate::proto::PacketError;
use crate::proto::packet::Packet;
use crate::route::Kind;

/// How often, at most, the listener reports the garbage it dropped.
const GARBAGE_REPORT: Duration = Duration::from_secs(10);

/// RFC 2347 limits a request to 512 bytes; some clients send more options.
const REQUEST_BUFFER: usize = 4096;

/// The most requests waiting for a slot.
const WAITING_ROOM: usize = 4096;

/// A request admitted by the policy, waiting for or holding a slot.
struct Admitted {
    kind: Kind,
    request: Request,
    session: Session,
}

/// Receives requests until the server stops.
pub(crate) async fn listen(
    socket: &UdpSocket,
    local: SocketAddr,
    shared: &Arc<Shared>,
    gate: &Arc<Gate>,
    shutdown: &watch::Sender<Phase>,
) {
    let sessions = Arc::new(Sessions::default());
    let mut waiting = WaitingRoom::new(WAITING_ROOM);
    let start = |slot: Slot, a: Admitted| {
        let shared = shared.clone();
        let stop = shutdown.subscribe();
        tokio::spawn(async move {
            transfer::run(&shared, a.kind, a.request, a.session, stop).await;
            drop(slot);
        });
    };
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
            () = gate.ended(), if !waiting.is_empty() => {
                for (slot, a) in waiting.release(gate, now(), |a| gave_up(shared, a)) {
                    start(slot, a);
                }
                continue;
            }
            () = wait_until(waiting.next_expiry()), if !waiting.is_empty() => {
                for (slot, a) in waiting.release(gate, now(), |a| gave_up(shared, a)) {
                    start(slot, a);
                }
                continue;
            }
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
        let admitted = Admitted {
            kind,
            request,
            session,
        };
        match gate.try_enter(peer.ip()) {
            Ok(slot) if waiting.is_empty() => start(slot, admitted),
            // Others waited first.
            Ok(slot) => {
                drop(slot);
                wait(shared, &mut waiting, peer, admitted);
            }
            Err(Full::Server) => wait(shared, &mut waiting, peer, admitted),
            Err(Full::Host(n)) => {
                refused(shared, &admitted, Limit::PerHost(n));
                tracing::warn!(
                    %peer,
                    file = admitted.request.filename(),
                    "refused a request: this address has {n} transfers under way \
                     (EMMER_MAX_TRANSFERS_PER_HOST)"
                );
                let message =
                    format!("too many transfers from your address ({n} at once); try again later");
                shared
                    .errors
                    .send(socket, peer, ErrorCode::Undefined, &message)
                    .await;
            }
        }
    }
}

/// Lets a request wait for a slot; a full waiting room drops it silently
/// (the client sends it again).
fn wait(shared: &Shared, waiting: &mut WaitingRoom<Admitted>, peer: SocketAddr, a: Admitted) {
    tracing::debug!(%peer, file = a.request.filename(), "at the transfer limit: the request waits");
    if let Err(a) = waiting.push(peer.ip(), now(), a) {
        refused(shared, &a, Limit::Server);
        tracing::warn!(
            %peer,
            file = a.request.filename(),
            "dropped a request: the transfer limit is reached and {WAITING_ROOM} requests wait \
             (EMMER_MAX_TRANSFERS)"
        );
    }
}

/// A request that waited too long for a slot; the client's next copy of it
/// is a new request.
fn gave_up(shared: &Shared, a: Admitted) {
    refused(shared, &a, Limit::Server);
    tracing::warn!(
        peer = %a.request.peer(),
        file = a.request.filename(),
        "dropped a request that waited too long for a free transfer slot \
         (EMMER_MAX_TRANSFERS, EMMER_MAX_TRANSFERS_PER_HOST)"
    );
}

/// The transfer event of a request a limit refused (`App::on_transfer`).
fn refused(shared: &Shared, a: &Admitted, limit: Limit) {
    shared
        .events
        .emit(|| TransferEvent::refused(a.kind, &a.request, limit));
}

async fn wait_until(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
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
