//! Who starts now when the server is loaded: a global limit on transfers
//! with a short waiting room instead of "server busy", and a limit per
//! client address.
//!
//! In a boot storm, a client refused with an ERROR fails its boot; one
//! whose request waits a little starts as soon as a transfer ends, and
//! transfers already under way keep their pace because they never compete
//! with more new ones than the limit allows. A request waits at most
//! [`WAIT_AT_MOST`]: by then the client has sent it again (the copy finds
//! the request waiting and is dropped) or given up. One address over its
//! own limit is told so at once (ERROR 0), so that it cannot crowd out the
//! others; when a slot frees, the oldest waiting request of an address
//! under its limit starts.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// The longest a request waits for a free slot.
pub(crate) const WAIT_AT_MOST: Duration = Duration::from_secs(2);

/// The transfer limits, shared by the listener and every transfer.
#[derive(Debug)]
pub(crate) struct Gate {
    permits: Arc<Semaphore>,
    per_host: usize,
    hosts: Mutex<HashMap<IpAddr, usize>>,
    /// A transfer ended: a waiting request may start.
    ended: Notify,
}

/// Which limit a request ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// The server's: the request may wait.
    Server,
    /// Its address has this many transfers already.
    Host(usize),
}

/// A running transfer's place within the limits; dropping it frees it.
#[derive(Debug)]
pub(crate) struct Slot {
    gate: Arc<Gate>,
    host: IpAddr,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut hosts = self.gate.hosts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = hosts.get_mut(&self.host) {
            *n -= 1;
            if *n == 0 {
                hosts.remove(&self.host);
            }
        }
        drop(hosts);
        self.gate.ended.notify_one();
    }
}

impl Gate {
    /// At most `max` transfers at once, `per_host` of them for one client
    /// address (0: no such limit).
    pub(crate) fn new(permits: Arc<Semaphore>, per_host: usize) -> Self {
        Self {
            permits,
            per_host,
            hosts: Mutex::new(HashMap::new()),
            ended: Notify::new(),
        }
    }

    /// A slot for a transfer of `host`, if both limits allow it now.
    pub(crate) fn try_enter(self: &Arc<Self>, host: IpAddr) -> Result<Slot, Full> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let n = hosts.get(&host).copied().unwrap_or(0);
        if self.per_host > 0 && n >= self.per_host {
            return Err(Full::Host(self.per_host));
        }
        let permit = self
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| Full::Server)?;
        hosts.insert(host, n + 1);
        Ok(Slot {
            gate: self.clone(),
            host,
            _permit: permit,
        })
    }

    /// Resolves when a transfer has ended since the last call.
    pub(crate) async fn ended(&self) {
        self.ended.notified().await;
    }
}

/// Requests waiting for a slot, oldest first.
#[derive(Debug)]
pub(crate) struct WaitingRoom<T> {
    queue: VecDeque<(IpAddr, Instant, T)>,
    capacity: usize,
}

impl<T> WaitingRoom<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            capacity,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Lets `request` of `host` wait from `now`; gives it back when the
    /// room is full.
    pub(crate) fn push(&mut self, host: IpAddr, now: Instant, request: T) -> Result<(), T> {
        if self.queue.len() >= self.capacity {
            return Err(request);
        }
        self.queue.push_back((host, now, request));
        Ok(())
    }

    /// When the oldest request has waited long enough.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.queue
            .front()
            .map(|(_, since, _)| *since + WAIT_AT_MOST)
    }

    /// Takes out what may start now, in order, each with its slot, and
    /// drops what waited too long (handing both to the caller).
    pub(crate) fn release(
        &mut self,
        gate: &Arc<Gate>,
        now: Instant,
        mut expired: impl FnMut(T),
    ) -> Vec<(Slot, T)> {
        let mut ready = Vec::new();
        let mut waiting = VecDeque::with_capacity(self.queue.len());
        for (host, since, request) in self.queue.drain(..) {
            if now.saturating_duration_since(since) >= WAIT_AT_MOST {
                expired(request);
            } else if let Ok(slot) = gate.try_enter(host) {
                ready.push((slot, request));
            } else {
                waiting.push_back((host, since, request));
            }
        }
        self.queue = waiting;
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn limits_overall_and_per_host() {
        let gate = Arc::new(Gate::new(Arc::new(Semaphore::new(3)), 2));
        let a1 = gate.try_enter(host(1)).expect("first of host 1");
        let a2 = gate.try_enter(host(1)).expect("second of host 1");
        assert_eq!(gate.try_enter(host(1)).unwrap_err(), Full::Host(2));
        let b1 = gate.try_enter(host(2)).expect("host 2 is not");
        assert_eq!(gate.try_enter(host(3)).unwrap_err(), Full::Server);
        drop(a1);
        assert!(gate.try_enter(host(3)).is_ok(), "a slot is free again");
        drop((a2, b1));
    }

    #[test]
    fn the_oldest_start_first_unless_their_host_is_full_and_old_ones_leave() {
        let gate = Arc::new(Gate::new(Arc::new(Semaphore::new(2)), 1));
        let t0 = Instant::now();
        let busy = gate.try_enter(host(1)).unwrap();
        let other = gate.try_enter(host(9)).unwrap();
        let mut room = WaitingRoom::new(3);
        room.push(host(1), t0, "1a").unwrap();
        room.push(host(2), t0, "2a").unwrap();
        room.push(host(3), t0 + Duration::from_millis(10), "3a")
            .unwrap();
        assert_eq!(room.push(host(4), t0, "4a"), Err("4a"), "the room is full");
        let mut gone = Vec::new();
        // Nothing free: nothing starts.
        assert!(room.release(&gate, t0, |r| gone.push(r)).is_empty());
        // One slot frees; host 1 still has a transfer: host 2 goes first.
        drop(other);
        let started = room.release(&gate, t0, |r| gone.push(r));
        let names: Vec<_> = started.iter().map(|(_, r)| *r).collect();
        assert_eq!(names, ["2a"]);
        drop(started);
        drop(busy);
        // Later than the wait allows: the first two are dropped, the third
        // (10 ms younger) still starts.
        let late = t0 + WAIT_AT_MOST;
        let started = room.release(&gate, late, |r| gone.push(r));
        assert_eq!(started.iter().map(|(_, r)| *r).collect::<Vec<_>>(), ["3a"]);
        assert_eq!(gone, ["1a"]);
        assert!(room.is_empty());
    }
}
