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

use tokio::sync::watch;

use super::demux::Delivery;
use super::gate::{Full, Gate, Slot, WaitingRoom};
use super::session::{Admission, Session, Sessions};
use super::shutdown::{Phase, stopping};
use super::socket::{Local, Socket};
use super::timer::now;
use super::{Shared, transfer};
use crate::event::{Limit, TransferEvent};
use crate::handler::Request;
use crate::proto::PacketError;
use crate::proto::packet::Packet;
use crate::route::Kind;
use crate::{ErrorCode, Ports};

/// How often, at most, the listener reports the garbage it dropped.
const GARBAGE_REPORT: Duration = Duration::from_secs(10);

/// A request is at most 512 bytes by RFC 2347 (some clients send more);
/// in single-port mode DATA of any blksize comes through here too.
const RECEIVE_BUFFER: usize = 65536;

/// The most requests waiting for a slot.
const WAITING_ROOM: usize = 4096;

/// What the listeners of a server share.
pub(crate) struct Common {
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) gate: Arc<Gate>,
}

/// A request admitted by the policy, waiting for or holding a slot.
pub(crate) struct Admitted {
    pub(crate) kind: Kind,
    pub(crate) request: Request,
    pub(crate) session: Session,
    /// The listening socket it came through, and the address it hit.
    pub(crate) via: Arc<Socket>,
    pub(crate) local: Local,
}

/// Receives requests on `socket` until the server stops.
pub(crate) async fn listen(
    socket: Arc<Socket>,
    shared: Arc<Shared>,
    common: Arc<Common>,
    shutdown: Arc<watch::Sender<Phase>>,
) {
    let gate = &common.gate;
    let port = socket.local_addr().map_or(0, |a| a.port());
    let single = shared.config.ports == Ports::Single;
    let mut waiting = WaitingRoom::new(WAITING_ROOM);
    let start = |slot: Slot, a: Admitted| {
        let shared = shared.clone();
        let stop = shutdown.subscribe();
        tokio::spawn(async move {
            transfer::run(&shared, a, slot, stop).await;
        });
    };
    let mut stop = shutdown.subscribe();
    let mut buf = vec![0u8; RECEIVE_BUFFER];
    let mut errors = 0u32;
    let mut garbage = Garbage::default();
    loop {
        let d = tokio::select! {
            r = socket.recv(&mut buf) => match r {
                Ok(d) => { errors = 0; d }
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
                for (slot, a) in waiting.release(gate, now(), |a| gave_up(&shared, a)) {
                    start(slot, a);
                }
                continue;
            }
            () = wait_until(waiting.next_expiry()), if !waiting.is_empty() => {
                for (slot, a) in waiting.release(gate, now(), |a| gave_up(&shared, a)) {
                    start(slot, a);
                }
                continue;
            }
            () = stopping(&mut stop) => return,
        };
        let (peer, datagram) = (d.peer, &buf[..d.len]);
        let (kind, packet) = match Packet::decode(datagram) {
            Ok(Packet::Rrq(r)) => (Kind::Read, r),
            Ok(Packet::Wrq(r)) => (Kind::Write, r),
            Ok(other) if single => {
                let stray = matches!(other, Packet::Data { .. } | Packet::Ack { .. });
                let delivery = shared.demux.deliver(peer, datagram);
                if delivery == Delivery::Dropped {
                    let dropped = shared.demux.dropped();
                    tracing::debug!(%peer, dropped, "a transfer is behind: its datagram was dropped");
                }
                if delivery == Delivery::NoTransfer && stray {
                    // A re-balanced flow, or a transfer long gone: say so
                    // at once (RFC 1350 §4) instead of letting the client
                    // time out.
                    tracing::debug!(%peer, "DATA or ACK from a client without a transfer");
                    let (code, message) = (ErrorCode::UnknownTid, "unknown transfer ID");
                    shared
                        .errors
                        .send(&socket, peer, Some(d.local), code, message)
                        .await;
                }
                continue;
            }
            Ok(other) => {
                tracing::debug!(%peer, packet = ?other, "ignored a non-request packet on the listening port");
                continue;
            }
            Err(e) if answerable(datagram, &e) => {
                tracing::debug!(%peer, error = %e, "malformed request");
                let code = ErrorCode::IllegalOperation;
                let message = e.to_string();
                shared
                    .errors
                    .send(&socket, peer, Some(d.local), code, &message)
                    .await;
                continue;
            }
            Err(e) => {
                garbage.dropped(peer, &e);
                continue;
            }
        };
        let local = SocketAddr::new(d.local.ip, port);
        let request = Request::received(peer, local, &packet, shared.state.clone());
        let session = match common.sessions.admit(kind, &request) {
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
            via: socket.clone(),
            local: d.local,
        };
        match gate.try_enter(peer.ip()) {
            Ok(slot) if waiting.is_empty() => start(slot, admitted),
            // Others waited first.
            Ok(slot) => {
                drop(slot);
                wait(&shared, &mut waiting, peer, admitted);
            }
            Err(Full::Server) => wait(&shared, &mut waiting, peer, admitted),
            Err(Full::Host(n)) => {
                refused(&shared, &admitted, Limit::PerHost(n));
                tracing::warn!(
                    %peer,
                    file = admitted.request.filename(),
                    "refused a request: this address has {n} transfers under way \
                     (EMMER_MAX_TRANSFERS_PER_HOST)"
                );
                let message =
                    format!("too many transfers from your address ({n} at once); try again later");
                let code = ErrorCode::Undefined;
                shared
                    .errors
                    .send(&socket, peer, Some(d.local), code, &message)
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
