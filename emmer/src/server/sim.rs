//! A simulated network: datagrams between a server and its clients in
//! memory, on tokio's clock, with scripted loss, duplication, reordering
//! and delay. See [`SimNet`].

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

/// Datagrams a simulated socket queues before it drops more, as a kernel
/// receive buffer would.
const QUEUE: usize = 1024;
/// The first port given out for a bind to port 0.
const FIRST_PORT: u16 = 49152;
/// What an unspecified address (0.0.0.0, ::) becomes on the simulated
/// network (TEST-NET-1, RFC 5737).
const ANY_HOST: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

/// A simulated network for tests: a [`TestServer`](crate::testing::TestServer)
/// and its [`Client`](crate::testing::Client)s exchange datagrams in memory,
/// on tokio's clock, through a network that loses, duplicates, delays and
/// reorders them as scripted, repeatably (a seeded generator decides).
///
/// Run the test on a paused clock (`#[tokio::test(start_paused = true)]`,
/// which needs tokio's `test-util` feature in your dev-dependencies): the
/// clock then jumps to the next timer whenever everything waits, so a
/// transfer that recovers from seconds of timeouts runs in milliseconds.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use emmer::testing::{SimNet, TestServer};
/// use emmer::{App, Request};
///
/// let net = SimNet::new()
///     .seed(7)
///     .loss(0.1)
///     .duplication(0.02)
///     .delay(Duration::from_millis(20))
///     .jitter(Duration::from_millis(10));
/// let body = vec![7u8; 100_000];
/// let served = body.clone();
/// let app = App::empty().route_read("big", move |_: &Request| served.clone());
/// let server = TestServer::start_on(app, &net).await;
/// let got = server.client().blksize(1428).get("big").await.unwrap();
/// assert_eq!(got, body);
/// assert!(net.stats().lost > 0);
/// # }
/// ```
#[derive(Clone, Default)]
pub struct SimNet {
    inner: Arc<Mutex<Inner>>,
}

/// One datagram on its way, as a [`SimNet::drop_if`] rule sees it.
#[derive(Debug)]
#[non_exhaustive]
pub struct SimDatagram<'a> {
    /// Where it comes from.
    pub from: SocketAddr,
    /// Where it goes.
    pub to: SocketAddr,
    /// The UDP payload: a whole TFTP packet.
    pub bytes: &'a [u8],
}

/// What a [`SimNet`] did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimStats {
    /// Datagrams sent.
    pub sent: u64,
    /// Copies delivered to a socket.
    pub delivered: u64,
    /// Datagrams (or copies) lost: dropped by the network, by a rule, or
    /// because no socket had the address or its queue was full.
    pub lost: u64,
    /// Datagrams sent twice.
    pub duplicated: u64,
}

type Rule = Box<dyn FnMut(&SimDatagram<'_>) -> bool + Send>;

#[derive(Default)]
struct Inner {
    loss: f64,
    duplication: f64,
    delay: Duration,
    jitter: Duration,
    rules: Vec<Rule>,
    rng: u64,
    ports: HashMap<SocketAddr, mpsc::Sender<(Bytes, SocketAddr)>>,
    next_port: u16,
    stats: SimStats,
}

impl fmt::Debug for SimNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("SimNet")
            .field("loss", &inner.loss)
            .field("duplication", &inner.duplication)
            .field("delay", &inner.delay)
            .field("jitter", &inner.jitter)
            .field("rules", &inner.rules.len())
            .field("stats", &inner.stats)
            .finish_non_exhaustive()
    }
}

impl SimNet {
    /// A network that loses nothing and delivers at once.
    pub fn new() -> Self {
        Self::default().seed(1)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Seeds the generator that decides losses, copies and delays: the same
    /// seed and the same traffic give the same decisions.
    pub fn seed(self, seed: u64) -> Self {
        // xorshift must not start at 0.
        self.lock().rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        self
    }

    /// Loses each datagram with this probability (0.0 to 1.0).
    pub fn loss(self, probability: f64) -> Self {
        self.lock().loss = probability.clamp(0.0, 1.0);
        self
    }

    /// Delivers each datagram twice with this probability (0.0 to 1.0).
    pub fn duplication(self, probability: f64) -> Self {
        self.lock().duplication = probability.clamp(0.0, 1.0);
        self
    }

    /// Delays every datagram by this much (one way).
    pub fn delay(self, delay: Duration) -> Self {
        self.lock().delay = delay;
        self
    }

    /// Delays each datagram (and each copy) by a further random time up to
    /// this much, so that datagrams overtake each other.
    pub fn jitter(self, jitter: Duration) -> Self {
        self.lock().jitter = jitter;
        self
    }

    /// Loses the datagrams for which `rule` says true, besides the random
    /// loss: scripted loss, such as "the first OACK".
    ///
    /// # Examples
    ///
    /// ```
    /// use emmer::testing::SimNet;
    /// // Lose the server's first OACK (opcode 6), and only that one.
    /// let mut lost = false;
    /// let net = SimNet::new().drop_if(move |d| {
    ///     let first_oack = d.bytes.starts_with(&[0, 6]) && !lost;
    ///     lost |= first_oack;
    ///     first_oack
    /// });
    /// # let _ = net;
    /// ```
    pub fn drop_if(self, rule: impl FnMut(&SimDatagram<'_>) -> bool + Send + 'static) -> Self {
        self.lock().rules.push(Box::new(rule));
        self
    }

    /// What the network did so far.
    pub fn stats(&self) -> SimStats {
        self.lock().stats
    }

    /// A port of this network bound to `addr` (port 0: a free one).
    pub(crate) fn bind(&self, addr: SocketAddr) -> io::Result<SimPort> {
        let mut inner = self.lock();
        let ip = if addr.ip().is_unspecified() {
            ANY_HOST
        } else {
            addr.ip()
        };
        let port = if addr.port() != 0 {
            addr.port()
        } else {
            let free = (0..=u16::MAX - FIRST_PORT)
                .map(|i| FIRST_PORT + (inner.next_port.wrapping_add(i) % (u16::MAX - FIRST_PORT)))
                .find(|&p| !inner.ports.contains_key(&SocketAddr::new(ip, p)))
                .ok_or_else(|| io::Error::new(io::ErrorKind::AddrInUse, "no free port"))?;
            inner.next_port = free - FIRST_PORT + 1;
            free
        };
        let local = SocketAddr::new(ip, port);
        if inner.ports.contains_key(&local) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{local} is in use on the simulated network"),
            ));
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        inner.ports.insert(local, tx);
        Ok(SimPort {
            net: self.clone(),
            local,
            rx: tokio::sync::Mutex::new(rx),
        })
    }

    /// A number in 0.0..1.0 from the seeded generator.
    fn random(inner: &mut Inner) -> f64 {
        inner.rng ^= inner.rng << 13;
        inner.rng ^= inner.rng >> 7;
        inner.rng ^= inner.rng << 17;
        (inner.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Sends a datagram through the network.
    fn transmit(&self, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        let mut inner = self.lock();
        inner.stats.sent += 1;
        let datagram = SimDatagram { from, to, bytes };
        // Every rule sees every datagram (a rule may count them).
        let mut scripted = false;
        for rule in &mut inner.rules {
            scripted |= rule(&datagram);
        }
        let copies = if Self::random(&mut inner) < inner.duplication {
            inner.stats.duplicated += 1;
            2
        } else {
            1
        };
        let bytes = Bytes::copy_from_slice(bytes);
        for _ in 0..copies {
            if scripted || Self::random(&mut inner) < inner.loss {
                inner.stats.lost += 1;
                continue;
            }
            let delay = inner.delay + inner.jitter.mul_f64(Self::random(&mut inner));
            let Some(port) = inner.ports.get(&to).cloned() else {
                inner.stats.lost += 1;
                continue;
            };
            let net = self.clone();
            let bytes = bytes.clone();
            if delay.is_zero() {
                net.deliver(&mut inner, &port, bytes, from);
            } else {
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let mut inner = net.lock();
                    net.deliver(&mut inner, &port, bytes, from);
                });
            }
        }
    }

    fn deliver(
        &self,
        inner: &mut Inner,
        port: &mpsc::Sender<(Bytes, SocketAddr)>,
        bytes: Bytes,
        from: SocketAddr,
    ) {
        match port.try_send((bytes, from)) {
            Ok(()) => inner.stats.delivered += 1,
            // A full queue or a closed socket: lost, as in a kernel.
            Err(_) => inner.stats.lost += 1,
        }
    }
}

/// A socket of a [`SimNet`].
pub(crate) struct SimPort {
    net: SimNet,
    local: SocketAddr,
    rx: tokio::sync::Mutex<mpsc::Receiver<(Bytes, SocketAddr)>>,
}

impl fmt::Debug for SimPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimPort")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl SimPort {
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The next datagram, cut to `buf` as UDP would. Cancel-safe.
    pub(crate) async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let mut rx = self.rx.lock().await;
        match rx.recv().await {
            Some((bytes, from)) => {
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                Ok((n, from))
            }
            // The network keeps every sender of a bound port.
            None => std::future::pending().await,
        }
    }

    pub(crate) fn send_to(&self, packet: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.net.transmit(self.local, to, packet);
        Ok(packet.len())
    }
}

impl Drop for SimPort {
    fn drop(&mut self) {
        self.net.lock().ports.remove(&self.local);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn delivers_loses_duplicates_and_delays_as_told() {
        let net = SimNet::new().seed(3);
        let a = net.bind("10.0.0.1:0".parse().unwrap()).unwrap();
        let b = net.bind("10.0.0.2:69".parse().unwrap()).unwrap();
        assert!(net.bind("10.0.0.2:69".parse().unwrap()).is_err(), "in use");
        a.send_to(b"hi", b.local_addr()).unwrap();
        let mut buf = [0u8; 1];
        let (n, from) = b.recv_from(&mut buf).await.unwrap();
        assert_eq!(
            (n, &buf[..], from),
            (1, &b"h"[..], a.local_addr()),
            "cut to the buffer"
        );

        // Half lost, a tenth duplicated, out of 1000.
        let net = net.loss(0.5).duplication(0.1);
        for _ in 0..1000 {
            a.send_to(b"x", b.local_addr()).unwrap();
        }
        let s = net.stats();
        assert!((400..600).contains(&s.lost), "{s:?}");
        assert!((60..140).contains(&s.duplicated), "{s:?}");
        assert_eq!(s.delivered + s.lost, 1 + 1000 + s.duplicated);

        // Delay: nothing before it, everything after.
        let _ = net
            .loss(0.0)
            .duplication(0.0)
            .delay(Duration::from_millis(300));
        let start = tokio::time::Instant::now();
        a.send_to(b"late", b.local_addr()).unwrap();
        let mut rest = 0;
        let mut buf = [0u8; 8];
        loop {
            let (n, _) = b.recv_from(&mut buf).await.unwrap();
            if &buf[..n] == b"late" {
                break;
            }
            rest += 1;
        }
        assert_eq!(rest, s.delivered - 1, "the earlier datagrams came first");
        assert!(start.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_reorders_and_rules_drop_what_they_match() {
        let net = SimNet::new()
            .seed(9)
            .jitter(Duration::from_millis(50))
            .drop_if(|d| d.bytes == b"drop me");
        let a = net.bind("10.0.0.1:0".parse().unwrap()).unwrap();
        let b = net.bind("10.0.0.2:0".parse().unwrap()).unwrap();
        for i in 0..20u8 {
            a.send_to(&[i], b.local_addr()).unwrap();
        }
        a.send_to(b"drop me", b.local_addr()).unwrap();
        let mut order = Vec::new();
        let mut buf = [0u8; 8];
        for _ in 0..20 {
            let (n, _) = b.recv_from(&mut buf).await.unwrap();
            assert_eq!(n, 1, "the rule dropped its datagram");
            order.push(buf[0]);
        }
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..20).collect::<Vec<u8>>(), "each once");
        assert_ne!(order, sorted, "some overtook others");
        assert_eq!(net.stats().lost, 1);
    }
}
