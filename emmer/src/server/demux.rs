//! Single-port mode: every transfer talks through the listening socket,
//! and the listener hands each datagram to its transfer by the client's
//! address and port.
//!
//! Each transfer has a bounded queue: when it is full the datagram is
//! dropped and counted (the transfer is behind; TFTP retransmits), never
//! blocking the listener or the other transfers. A transfer's entry lives
//! as long as its task, dally included, and is removed when it ends; a
//! newer transfer of the same client takes the entry over.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::mpsc;

/// Datagrams queued for one transfer before more are dropped.
const QUEUE: usize = 128;

/// The transfers reachable through the listening socket, by client.
#[derive(Debug, Default)]
pub(crate) struct Demux {
    map: Mutex<HashMap<SocketAddr, (u64, mpsc::Sender<Bytes>)>>,
    next_id: AtomicU64,
    /// Datagrams dropped because their transfer's queue was full.
    dropped: AtomicU64,
}

/// What became of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    Queued,
    /// The transfer's queue is full: dropped.
    Dropped,
    /// No transfer of this client.
    NoTransfer,
}

/// A transfer's queue of datagrams; dropping it removes the entry.
#[derive(Debug)]
pub(crate) struct Inbox {
    rx: mpsc::Receiver<Bytes>,
    demux: Arc<Demux>,
    peer: SocketAddr,
    id: u64,
}

impl Inbox {
    /// The next datagram for the transfer. Cancel-safe.
    pub(crate) async fn recv(&mut self) -> Bytes {
        match self.rx.recv().await {
            Some(b) => b,
            // The demux keeps the sender while this inbox lives.
            None => std::future::pending().await,
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let mut map = self.demux.lock();
        if map.get(&self.peer).is_some_and(|(id, _)| *id == self.id) {
            map.remove(&self.peer);
        }
    }
}

impl Demux {
    fn lock(&self) -> MutexGuard<'_, HashMap<SocketAddr, (u64, mpsc::Sender<Bytes>)>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Routes `peer`'s datagrams to a new transfer from now on.
    pub(crate) fn register(self: &Arc<Self>, peer: SocketAddr) -> Inbox {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(QUEUE);
        self.lock().insert(peer, (id, tx));
        Inbox {
            rx,
            demux: self.clone(),
            peer,
            id,
        }
    }

    /// Hands a datagram from `peer` to its transfer.
    pub(crate) fn deliver(&self, peer: SocketAddr, datagram: &[u8]) -> Delivery {
        let map = self.lock();
        let Some((_, tx)) = map.get(&peer) else {
            return Delivery::NoTransfer;
        };
        match tx.try_send(Bytes::copy_from_slice(datagram)) {
            Ok(()) => Delivery::Queued,
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                Delivery::Dropped
            }
        }
    }

    /// Datagrams dropped so far because a transfer was behind.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    #[tokio::test]
    async fn datagrams_reach_their_transfer_and_entries_leave_with_it() {
        let demux = Arc::new(Demux::default());
        assert_eq!(demux.deliver(peer(1), b"x"), Delivery::NoTransfer);
        let mut a = demux.register(peer(1));
        let mut b = demux.register(peer(2));
        assert_eq!(demux.deliver(peer(1), b"for a"), Delivery::Queued);
        assert_eq!(demux.deliver(peer(2), b"for b"), Delivery::Queued);
        assert_eq!(a.recv().await, "for a");
        assert_eq!(b.recv().await, "for b");
        drop(a);
        assert_eq!(demux.deliver(peer(1), b"x"), Delivery::NoTransfer);
        // A newer transfer of the same client takes over; the older one
        // leaving does not remove it.
        let old = demux.register(peer(2));
        let mut new = demux.register(peer(2));
        drop(old);
        assert_eq!(demux.deliver(peer(2), b"new"), Delivery::Queued);
        assert_eq!(new.recv().await, "new");
        drop(b);
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let demux = Arc::new(Demux::default());
        let _slow = demux.register(peer(1));
        for _ in 0..QUEUE {
            assert_eq!(demux.deliver(peer(1), b"x"), Delivery::Queued);
        }
        assert_eq!(demux.deliver(peer(1), b"x"), Delivery::Dropped);
        assert_eq!(demux.dropped(), 1);
    }
}
