//! The listening socket: receive, decode once, apply the request policy
//! and the transfer limit, and hand each new request to a transfer task.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, watch};

use super::session::{Admission, Sessions};
use super::shutdown::{Phase, stopping};
use super::{Shared, transfer};
use crate::ErrorCode;
use crate::handler::Request;
use crate::proto::packet::{Packet, encode_error};
use crate::route::Kind;

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
    let mut out = Vec::with_capacity(256);
    let mut errors = 0u32;
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
            Err(e) => {
                tracing::debug!(%peer, error = %e, "malformed request");
                encode_error(&mut out, ErrorCode::IllegalOperation, &e.to_string());
                let _ = socket.send_to(&out, peer).await;
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
            encode_error(
                &mut out,
                ErrorCode::Undefined,
                "server busy, try again later",
            );
            let _ = socket.send_to(&out, peer).await;
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
