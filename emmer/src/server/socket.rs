//! The sockets a server and its transfers use: UDP sockets of the
//! operating system, or ports of a simulated network
//! ([`SimNet`](crate::testing::SimNet)) for tests on tokio's clock. The
//! listener and the transfer loops see one type and never know which.

use std::io;
use std::net::SocketAddr;

use tokio::net::UdpSocket;

use super::sim::{SimNet, SimPort};

/// Where sockets come from.
#[derive(Debug, Clone, Default)]
pub(crate) enum Net {
    /// The operating system's network.
    #[default]
    Os,
    /// A simulated network.
    Sim(SimNet),
}

impl Net {
    /// A socket bound to `addr`, with a receive buffer of `recv_buffer`
    /// bytes if the kernel grants it (0 keeps its default).
    pub(crate) fn bind(&self, addr: SocketAddr, recv_buffer: usize) -> io::Result<Socket> {
        match self {
            Net::Os => udp_socket(addr, recv_buffer).map(Socket::Os),
            Net::Sim(net) => net.bind(addr).map(Socket::Sim),
        }
    }
}

/// A UDP socket, real or simulated.
#[derive(Debug)]
pub(crate) enum Socket {
    Os(UdpSocket),
    Sim(SimPort),
}

impl Socket {
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Socket::Os(s) => s.local_addr(),
            Socket::Sim(s) => Ok(s.local_addr()),
        }
    }

    /// The next datagram: its length and source. Cancel-safe.
    pub(crate) async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match self {
            Socket::Os(s) => s.recv_from(buf).await,
            Socket::Sim(s) => s.recv_from(buf).await,
        }
    }

    pub(crate) async fn send_to(&self, packet: &[u8], to: SocketAddr) -> io::Result<usize> {
        match self {
            Socket::Os(s) => s.send_to(packet, to).await,
            Socket::Sim(s) => s.send_to(packet, to),
        }
    }

    /// The operating system's socket, for what only it has (segmentation
    /// offload, buffer sizes).
    pub(crate) fn os(&self) -> Option<&UdpSocket> {
        match self {
            Socket::Os(s) => Some(s),
            Socket::Sim(_) => None,
        }
    }
}

/// A UDP socket bound to `addr`, registered with tokio, with a receive
/// buffer of `recv_buffer` bytes if the kernel grants it (0 keeps its
/// default).
fn udp_socket(addr: SocketAddr, recv_buffer: usize) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if recv_buffer > 0 {
        // Best effort: a smaller buffer only means more retransmissions.
        let _ = socket.set_recv_buffer_size(recv_buffer);
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}
