//! The request policy: which requests start a transfer, keyed on what is
//! asked.
//!
//! A client is known by its address and port. While its transfer is under
//! way:
//!
//! - the same request again (same kind, file name, mode and options) is a
//!   retransmission: the client did not hear our first packet. No second
//!   transfer and no second handler call; the running transfer is told, and
//!   resends its first packet at once if the client has not answered it yet.
//! - a different request supersedes the transfer: it stops at once (not one
//!   more packet to that port) and the new request is served. Linux and NATs
//!   reuse ports, and many PXE ROMs always use the same one; a client must
//!   never receive bytes of a file it did not ask for.
//!
//! A transfer leaves the table as soon as its outcome is known (an upload's
//! dally after the final ACK does not count), so a request after that
//! starts afresh.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::Request;
use crate::route::Kind;

/// The clients with a transfer under way.
#[derive(Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<SocketAddr, Entry>>,
    next_id: AtomicU64,
}

struct Entry {
    id: u64,
    kind: Kind,
    request: Request,
    control: Arc<Control>,
}

/// What the listener does with a request.
pub(crate) enum Admission {
    /// Serve it: a new transfer, registered under the client's address.
    Start(Session),
    /// A copy of the request whose transfer is under way: drop it (the
    /// transfer was told).
    Repeat,
}

/// What the listener tells a running transfer.
#[derive(Debug, Default)]
pub(crate) struct Control {
    repeated: Notify,
    superseded: Notify,
}

impl Control {
    /// Resolves when the client sent the same request again.
    pub(crate) async fn repeated(&self) {
        self.repeated.notified().await;
    }

    /// Resolves when the client sent a different request: the transfer
    /// must stop at once, without another packet.
    pub(crate) async fn superseded(&self) {
        self.superseded.notified().await;
    }
}

/// A transfer's place in [`Sessions`]; dropping it frees the place.
pub(crate) struct Session {
    sessions: Arc<Sessions>,
    peer: SocketAddr,
    id: u64,
    control: Arc<Control>,
}

impl Session {
    /// The transfer's end of the listener's signals.
    pub(crate) fn control(&self) -> Arc<Control> {
        self.control.clone()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let mut map = self.sessions.lock();
        // A superseded transfer no longer owns the place.
        if map.get(&self.peer).is_some_and(|e| e.id == self.id) {
            map.remove(&self.peer);
        }
    }
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<SocketAddr, Entry>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies the policy to a request from `request.peer()`.
    pub(crate) fn admit(self: &Arc<Self>, kind: Kind, request: &Request) -> Admission {
        let peer = request.peer();
        let mut map = self.lock();
        if let Some(e) = map.get(&peer) {
            if e.kind == kind && e.request.asks_same_as(request) {
                e.control.repeated.notify_one();
                return Admission::Repeat;
            }
            e.control.superseded.notify_one();
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let control = Arc::new(Control::default());
        map.insert(
            peer,
            Entry {
                id,
                kind,
                request: request.clone(),
                control: control.clone(),
            },
        );
        Admission::Start(Session {
            sessions: self.clone(),
            peer,
            id,
            control,
        })
    }

    /// Clients with a transfer under way.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn req(name: &str, port: u16) -> Request {
        Request::builder(name)
            .peer(SocketAddr::from(([10, 0, 0, 1], port)))
            .option("blksize", "1428")
            .build()
    }

    fn start(a: Admission) -> Session {
        match a {
            Admission::Start(s) => s,
            Admission::Repeat => panic!("expected a new transfer"),
        }
    }

    async fn signalled(f: impl std::future::Future<Output = ()>) -> bool {
        tokio::time::timeout(Duration::from_millis(20), f)
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn the_same_request_again_is_a_repeat_and_tells_the_transfer() {
        let sessions = Arc::new(Sessions::default());
        let first = start(sessions.admit(Kind::Read, &req("a", 1000)));
        assert!(matches!(
            sessions.admit(Kind::Read, &req("a", 1000)),
            Admission::Repeat
        ));
        let control = first.control();
        assert!(signalled(control.repeated()).await);
        assert!(!signalled(control.superseded()).await);
    }

    #[tokio::test]
    async fn a_different_request_supersedes_the_transfer() {
        let sessions = Arc::new(Sessions::default());
        for (kind, name, opt) in [
            (Kind::Read, "b", "1428"),
            (Kind::Write, "a", "1428"),
            (Kind::Read, "a", "512"),
        ] {
            let old = start(sessions.admit(Kind::Read, &req("a", 1001)));
            let mut other = Request::builder(name)
                .peer(SocketAddr::from(([10, 0, 0, 1], 1001)))
                .option("blksize", opt)
                .build();
            if kind == Kind::Write {
                other = req(name, 1001);
            }
            let new = start(sessions.admit(kind, &other));
            assert!(
                signalled(old.control().superseded()).await,
                "{kind:?} {name} {opt}"
            );
            // The old transfer ends: the new one keeps its place.
            drop(old);
            assert_eq!(sessions.len(), 1);
            drop(new);
            assert_eq!(sessions.len(), 0);
        }
    }

    #[tokio::test]
    async fn other_clients_and_ended_transfers_start_afresh() {
        let sessions = Arc::new(Sessions::default());
        let a = start(sessions.admit(Kind::Read, &req("a", 1002)));
        // Same file, another port: another client.
        let b = start(sessions.admit(Kind::Read, &req("a", 1003)));
        assert!(!signalled(a.control().superseded()).await);
        assert_eq!(sessions.len(), 2);
        drop(a);
        drop(b);
        // The same request after the transfer ended: a new transfer.
        let _c = start(sessions.admit(Kind::Read, &req("a", 1002)));
    }
}
