//! Sockets and sending: the UDP socket setup, a transfer's [`Link`] to its
//! client, and a window of DATA packets sent in as few system calls as
//! possible.
//!
//! On Linux, UDP segmentation offload (`UDP_SEGMENT`, kernel 4.18 and
//! later) sends packets of equal size laid out back to back with one
//! `sendmsg`; the kernel cuts them apart. Elsewhere, or when the kernel
//! refuses it, each packet goes out with its own `send_to`.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::demux::Inbox;
use super::socket::{Local, Net, Socket};
use crate::ErrorCode;
use crate::proto::packet::encode_error;

/// ERROR replies a source address may draw per second: enough for any
/// real client, too few to make the server an amplifier for spoofed
/// datagrams.
const ERRORS_PER_SECOND: u32 = 8;
/// The most source addresses the limiter remembers within one second;
/// beyond them, no ERROR goes out until the next second.
const ERROR_SOURCES: usize = 4096;

/// Rate-limits ERROR replies per source address (an ERROR is the one
/// packet the server sends to an address that never completed anything).
#[derive(Debug)]
pub(crate) struct ErrorLimit {
    state: Mutex<(Instant, HashMap<IpAddr, u32>)>,
}

impl ErrorLimit {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new((super::timer::now(), HashMap::new())),
        }
    }

    /// Whether an ERROR may go to `to` now (and counts it).
    pub(crate) fn allow(&self, to: IpAddr) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (since, counts) = &mut *state;
        let now = super::timer::now();
        if now.saturating_duration_since(*since).as_secs() >= 1 {
            *since = now;
            counts.clear();
        }
        if counts.len() >= ERROR_SOURCES && !counts.contains_key(&to) {
            return false;
        }
        let n = counts.entry(to).or_insert(0);
        *n += 1;
        *n <= ERRORS_PER_SECOND
    }

    /// Sends an ERROR to `to` from `socket` (from the local address
    /// `from`), unless the limit says no.
    pub(crate) async fn send(
        &self,
        socket: &Socket,
        to: SocketAddr,
        from: Option<Local>,
        code: ErrorCode,
        message: &str,
    ) {
        if !self.allow(to.ip()) {
            tracing::debug!(%to, code = code.as_u16(), "ERROR not sent: too many to this address");
            return;
        }
        let mut out = Vec::with_capacity(5 + message.len());
        encode_error(&mut out, code, message);
        let _ = socket.send(&out, to, from).await;
    }
}

/// A transfer's line to its client: where its datagrams come from and its
/// packets go. Either a socket of its own, bound to the address the
/// request hit with a new port (a new transfer ID, RFC 1350 §4), or, in
/// single-port mode, the listening socket with the datagrams the listener
/// hands over. The transfer loops do not know which they have.
pub(crate) struct Link {
    socket: Arc<Socket>,
    peer: SocketAddr,
    /// Where replies leave from on a shared wildcard socket.
    from: Option<Local>,
    /// Single-port mode: the datagrams of this client.
    inbox: Option<Inbox>,
    errors: Arc<ErrorLimit>,
}

impl Link {
    /// A socket of its own on `local` for talking to `peer`: port 0, or a
    /// port of `range` (tried from a random one on, wrapping around).
    ///
    /// # Errors
    ///
    /// The socket cannot be bound (with a range: every port is in use).
    pub(crate) fn open(
        net: &Net,
        local: Local,
        range: Option<(u16, u16)>,
        peer: SocketAddr,
        errors: Arc<ErrorLimit>,
    ) -> io::Result<Self> {
        let socket = match range {
            None => net.bind(local.with_port(0), 0)?,
            Some((first, last)) => bind_in_range(net, local, first, last)?,
        };
        Ok(Self {
            socket: Arc::new(socket),
            peer,
            from: None,
            inbox: None,
            errors,
        })
    }

    /// The listening socket, shared (single-port mode): replies leave from
    /// `local`, datagrams come through `inbox`.
    pub(crate) fn shared(
        socket: Arc<Socket>,
        local: Local,
        inbox: Inbox,
        peer: SocketAddr,
        errors: Arc<ErrorLimit>,
    ) -> Self {
        Self {
            socket,
            peer,
            from: Some(local),
            inbox: Some(inbox),
            errors,
        }
    }

    /// The next datagram from the peer, into `buf`: its length. On a socket
    /// of its own, a datagram from anyone else is answered with ERROR 5
    /// (RFC 1350 §4) and `None` returned, as for a failed receive; the
    /// transfer goes on. Cancel-safe.
    pub(crate) async fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        if let Some(inbox) = &mut self.inbox {
            let datagram = inbox.recv().await;
            let n = datagram.len().min(buf.len());
            buf[..n].copy_from_slice(&datagram[..n]);
            return Some(n);
        }
        match self.socket.recv(buf).await {
            Ok(d) if d.peer == self.peer => Some(d.len),
            Ok(d) => {
                tracing::debug!(from = %d.peer, "datagram from an unknown transfer ID");
                let e = ErrorCode::UnknownTid;
                self.errors
                    .send(
                        &self.socket,
                        d.peer,
                        Some(d.local),
                        e,
                        "unknown transfer ID",
                    )
                    .await;
                None
            }
            Err(e) => {
                tracing::debug!(error = %e, "receive failed");
                None
            }
        }
    }

    /// Sends one packet; a failed send is like a lost packet (the
    /// retransmission timer covers it), so it is only logged.
    pub(crate) async fn send(&self, packet: &[u8]) {
        if let Err(e) = self.socket.send(packet, self.peer, self.from).await {
            tracing::debug!(error = %e, "send failed");
        }
    }

    /// Sends an ERROR to the peer (rate-limited like every ERROR to an
    /// address that has not shown it is a real client).
    pub(crate) async fn send_error(&self, code: ErrorCode, message: &str) {
        self.errors
            .send(&self.socket, self.peer, self.from, code, message)
            .await;
    }

    /// Sends what the batch holds and empties it.
    pub(crate) async fn flush(&self, batch: &mut Batch) {
        batch.flush(self).await;
    }

    /// The socket, to size its buffers.
    pub(crate) fn socket(&self) -> &Socket {
        &self.socket
    }
}

/// A socket on `local` with a port of `first..=last`, trying them from a
/// random one on.
fn bind_in_range(net: &Net, local: Local, first: u16, last: u16) -> io::Result<Socket> {
    let span = u32::from(last - first) + 1;
    let start = std::collections::hash_map::RandomState::new().hash_one(local.ip) as u32 % span;
    for i in 0..span {
        let port = first + ((start + i) % span) as u16;
        match net.bind(local.with_port(port), 0) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            r => return r,
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("every port of {first}-{last} is in use (EMMER_PORTS)"),
    ))
}

/// Set once the kernel has refused segmentation offload: not tried again.
static GSO_REFUSED: AtomicBool = AtomicBool::new(false);

/// The most a batch may hold: what one UDP send can carry, and the kernel's
/// limit on segments.
const MAX_BATCH_BYTES: usize = 65000;
const MAX_SEGMENTS: usize = 64;

/// Packets waiting to be sent, laid out back to back.
pub(crate) struct Batch {
    pub(crate) buf: Vec<u8>,
    /// The length of each packet in `buf`.
    lens: Vec<usize>,
    segment: usize,
    count: usize,
}

impl Batch {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
            lens: Vec::with_capacity(MAX_SEGMENTS),
            segment: 0,
            count: 0,
        }
    }

    /// Whether one more packet of up to `max_len` bytes may be appended.
    pub(crate) fn has_room(&self, max_len: usize) -> bool {
        self.count == 0
            || (self.count < MAX_SEGMENTS
                && self.buf.len() + max_len <= MAX_BATCH_BYTES
                && gso_available())
    }

    /// Records the packet of `len` bytes just appended to `buf`. Returns
    /// true when the batch must be sent now: the packet is shorter than the
    /// ones before (only the last segment may be).
    pub(crate) fn appended(&mut self, len: usize) -> bool {
        self.count += 1;
        self.lens.push(len);
        if self.count == 1 {
            self.segment = len;
            return false;
        }
        len != self.segment
    }

    async fn flush(&mut self, link: &Link) {
        if self.count == 0 {
            return;
        }
        // Segmentation needs equal packets, the last one possibly shorter.
        let uniform = self.lens[..self.count - 1]
            .iter()
            .all(|&l| l == self.segment)
            && self.lens[self.count - 1] <= self.segment;
        if self.count > 1 && uniform && gso_available() {
            let segment = u16::try_from(self.segment).unwrap_or(u16::MAX);
            let sent = link
                .socket
                .send_segments(&self.buf, segment, link.peer, link.from)
                .await;
            match sent {
                Ok(()) => return self.clear(),
                Err(e) => {
                    tracing::debug!(error = %e, "UDP segmentation offload refused; sending packets one by one");
                    GSO_REFUSED.store(true, Ordering::Relaxed);
                }
            }
        }
        let mut at = 0;
        for &len in &self.lens {
            link.send(&self.buf[at..at + len]).await;
            at += len;
        }
        self.clear();
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.lens.clear();
        self.count = 0;
    }
}

fn gso_available() -> bool {
    cfg!(target_os = "linux") && !GSO_REFUSED.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(b: &mut Batch, len: usize) -> bool {
        b.buf.extend(std::iter::repeat_n(0u8, len));
        b.appended(len)
    }

    #[test]
    fn a_batch_ends_at_a_packet_of_another_size() {
        let mut b = Batch::new(0);
        assert!(!push(&mut b, 1432));
        assert!(!push(&mut b, 1432));
        assert!(push(&mut b, 100), "a short last packet closes the batch");
        let mut b = Batch::new(0);
        assert!(!push(&mut b, 100));
        assert!(
            push(&mut b, 1432),
            "a longer packet cannot follow a shorter one"
        );
    }

    #[test]
    fn a_batch_stays_within_the_kernel_limits() {
        let mut b = Batch::new(0);
        assert!(b.has_room(65468), "an empty batch takes any packet");
        push(&mut b, 65468);
        assert!(!b.has_room(65468), "two large packets exceed one send");
        let mut b = Batch::new(0);
        let mut n = 0;
        while b.has_room(516) {
            push(&mut b, 516);
            n += 1;
            assert!(n <= MAX_SEGMENTS);
        }
        assert!(b.buf.len() <= MAX_BATCH_BYTES);
        if gso_available() {
            assert_eq!(n, MAX_SEGMENTS);
        }
    }
}
