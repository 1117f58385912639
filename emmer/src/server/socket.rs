//! The sockets a server and its transfers use: UDP sockets of the
//! operating system, or ports of a simulated network
//! ([`SimNet`](crate::testing::SimNet)) for tests on tokio's clock. The
//! listener and the transfer loops see one type and never know which.
//!
//! Addresses are canonical on this side of the type: an IPv4 client of a
//! dual-stack (`::`) socket is `a.b.c.d`, never `::ffff:a.b.c.d`. A socket
//! bound to a wildcard address learns which of the host's addresses each
//! datagram hit (`IP_PKTINFO`, `IPV6_PKTINFO` with the interface, on
//! Linux), and replies leave from that address: a multi-homed host or a
//! request to a broadcast address is answered from the interface address.

use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};

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
    /// bytes if the kernel grants it (0 keeps its default). `::` serves
    /// IPv4 too.
    pub(crate) fn bind(&self, addr: SocketAddr, recv_buffer: usize) -> io::Result<Socket> {
        match self {
            Net::Os => OsSocket::bind(addr, recv_buffer).map(Socket::Os),
            Net::Sim(net) => net.bind(addr).map(Socket::Sim),
        }
    }
}

/// The local end of a datagram: the address it hit, with the interface
/// for an IPv6 link-local address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Local {
    pub(crate) ip: IpAddr,
    /// The IPv6 interface index (0 when it does not matter).
    pub(crate) scope: u32,
}

impl Local {
    /// This address with `port`, scoped where it must be.
    pub(crate) fn with_port(self, port: u16) -> SocketAddr {
        match self.ip {
            IpAddr::V6(ip) if self.scope != 0 => {
                SocketAddr::V6(SocketAddrV6::new(ip, port, 0, self.scope))
            }
            ip => SocketAddr::new(ip, port),
        }
    }
}

/// A datagram received into a caller's buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Datagram {
    pub(crate) len: usize,
    pub(crate) peer: SocketAddr,
    pub(crate) local: Local,
}

/// A UDP socket, real or simulated.
#[derive(Debug)]
pub(crate) enum Socket {
    Os(OsSocket),
    Sim(SimPort),
}

impl Socket {
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Socket::Os(s) => s.io.local_addr(),
            Socket::Sim(s) => Ok(s.local_addr()),
        }
    }

    /// The next datagram, cut to `buf`. Cancel-safe.
    pub(crate) async fn recv(&self, buf: &mut [u8]) -> io::Result<Datagram> {
        match self {
            Socket::Os(s) => s.recv(buf).await,
            Socket::Sim(s) => {
                let (len, peer) = s.recv_from(buf).await?;
                let local = Local {
                    ip: s.local_addr().ip(),
                    scope: 0,
                };
                Ok(Datagram { len, peer, local })
            }
        }
    }

    /// Sends `packet` to `to`, from the local address `from` when the
    /// socket is bound to a wildcard address.
    pub(crate) async fn send(
        &self,
        packet: &[u8],
        to: SocketAddr,
        from: Option<Local>,
    ) -> io::Result<()> {
        match self {
            Socket::Os(s) => s.send(packet, to, from, None).await,
            Socket::Sim(s) => s.send_to(packet, to).map(drop),
        }
    }

    /// Sends packets of `segment` bytes laid out back to back (the last may
    /// be shorter) with one system call: UDP segmentation offload (Linux
    /// 4.18 and later). `Unsupported` where there is none.
    pub(crate) async fn send_segments(
        &self,
        packets: &[u8],
        segment: u16,
        to: SocketAddr,
        from: Option<Local>,
    ) -> io::Result<()> {
        match self {
            Socket::Os(s) if cfg!(target_os = "linux") => {
                s.send(packets, to, from, Some(segment)).await
            }
            _ => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "no UDP segmentation offload",
            )),
        }
    }

    /// The next datagram and its source, for clients.
    pub(crate) async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv(buf).await.map(|d| (d.len, d.peer))
    }

    /// Sends to `to`, for clients.
    pub(crate) async fn send_to(&self, packet: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.send(packet, to, None).await.map(|()| packet.len())
    }

    /// The operating system's socket, to size its buffers.
    pub(crate) fn os(&self) -> Option<&UdpSocket> {
        match self {
            Socket::Os(s) => Some(&s.io),
            Socket::Sim(_) => None,
        }
    }
}

/// A UDP socket of the operating system.
#[derive(Debug)]
pub(crate) struct OsSocket {
    io: UdpSocket,
    /// The address it is bound to (what a datagram hit, when not a
    /// wildcard), kept to spare a system call per datagram.
    bound: IpAddr,
    /// Bound to a wildcard address: each datagram says which local
    /// address it hit, and replies say which to leave from.
    wildcard: bool,
    /// An IPv6 socket (IPv4 peers are reached as `::ffff:a.b.c.d`).
    v6: bool,
}

impl OsSocket {
    fn bind(addr: SocketAddr, recv_buffer: usize) -> io::Result<Self> {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if recv_buffer > 0 {
            // Best effort: a smaller buffer only means more retransmissions.
            let _ = socket.set_recv_buffer_size(recv_buffer);
        }
        let wildcard = addr.ip().is_unspecified();
        if addr.is_ipv6() && wildcard {
            // `::` serves IPv4 as well.
            socket.set_only_v6(false)?;
        }
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        let io = UdpSocket::from_std(socket.into())?;
        if wildcard {
            sys::enable_pktinfo(&io, addr.is_ipv6())?;
        }
        Ok(Self {
            bound: addr.ip(),
            io,
            wildcard,
            v6: addr.is_ipv6(),
        })
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<Datagram> {
        let (len, peer, local) = if self.wildcard && sys::PKTINFO {
            self.io
                .async_io(tokio::io::Interest::READABLE, || sys::recv(&self.io, buf))
                .await?
        } else {
            let (len, peer) = self.io.recv_from(buf).await?;
            (len, peer, None)
        };
        let local = local.unwrap_or(Local {
            ip: self.bound,
            scope: 0,
        });
        Ok(Datagram {
            len,
            peer: canonical(peer),
            local: Local {
                ip: local.ip.to_canonical(),
                ..local
            },
        })
    }

    async fn send(
        &self,
        packet: &[u8],
        to: SocketAddr,
        from: Option<Local>,
        segment: Option<u16>,
    ) -> io::Result<()> {
        let to = if self.v6 { mapped(to) } else { to };
        let from = from.filter(|_| self.wildcard && sys::PKTINFO);
        if from.is_none() && segment.is_none() {
            return self.io.send_to(packet, to).await.map(drop);
        }
        let from = from.map(|l| match l.ip {
            IpAddr::V4(ip) if self.v6 => Local {
                ip: IpAddr::V6(ip.to_ipv6_mapped()),
                ..l
            },
            _ => l,
        });
        self.io
            .async_io(tokio::io::Interest::WRITABLE, || {
                sys::send(&self.io, packet, to, from, segment)
            })
            .await
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d`.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// `a.b.c.d` as `::ffff:a.b.c.d`, for an IPv6 socket.
fn mapped(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port()),
        v6 => v6,
    }
}

/// Control messages with the system's socket calls: PKTINFO and UDP
/// segmentation offload on Linux.
#[cfg(target_os = "linux")]
mod sys {
    use std::io::{self, IoSlice, IoSliceMut};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    use std::os::fd::AsRawFd;

    use nix::libc;
    use nix::sys::socket::{
        ControlMessage, ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, sendmsg,
        setsockopt, sockopt,
    };
    use tokio::net::UdpSocket;

    use super::Local;

    pub(super) const PKTINFO: bool = true;

    pub(super) fn enable_pktinfo(socket: &UdpSocket, v6: bool) -> io::Result<()> {
        if v6 {
            setsockopt(socket, sockopt::Ipv6RecvPacketInfo, &true)?;
            // IPv4 datagrams on a dual-stack socket: `ipi_spec_dst` too.
            let _ = setsockopt(socket, sockopt::Ipv4PacketInfo, &true);
        } else {
            setsockopt(socket, sockopt::Ipv4PacketInfo, &true)?;
        }
        Ok(())
    }

    pub(super) fn recv(
        socket: &UdpSocket,
        buf: &mut [u8],
    ) -> io::Result<(usize, SocketAddr, Option<Local>)> {
        let mut iov = [IoSliceMut::new(buf)];
        let mut space = nix::cmsg_space!(libc::in_pktinfo, libc::in6_pktinfo);
        let msg = recvmsg::<SockaddrStorage>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )?;
        let peer = msg
            .address
            .and_then(|a| {
                a.as_sockaddr_in()
                    .map(|v4| SocketAddr::from(std::net::SocketAddrV4::from(*v4)))
                    .or_else(|| {
                        a.as_sockaddr_in6()
                            .map(|v6| SocketAddr::from(std::net::SocketAddrV6::from(*v6)))
                    })
            })
            .ok_or_else(|| io::Error::other("a datagram without a source address"))?;
        let mut v4 = None;
        let mut v6 = None;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                match c {
                    // RFC 3542 style: the address the datagram was sent
                    // to, and the interface it came in on.
                    ControlMessageOwned::Ipv6PacketInfo(pi) => {
                        v6 = Some(Local {
                            ip: IpAddr::V6(Ipv6Addr::from(pi.ipi6_addr.s6_addr)),
                            scope: pi.ipi6_ifindex,
                        });
                    }
                    // `ipi_spec_dst`: the local address to answer from
                    // (the interface's own for a broadcast).
                    ControlMessageOwned::Ipv4PacketInfo(pi) => {
                        let ip = Ipv4Addr::from(u32::from_be(pi.ipi_spec_dst.s_addr));
                        v4 = Some(Local {
                            ip: IpAddr::V4(ip),
                            scope: 0,
                        });
                    }
                    _ => {}
                }
            }
        }
        Ok((msg.bytes, peer, v4.or(v6)))
    }

    pub(super) fn send(
        socket: &UdpSocket,
        packet: &[u8],
        to: SocketAddr,
        from: Option<Local>,
        segment: Option<u16>,
    ) -> io::Result<()> {
        let iov = [IoSlice::new(packet)];
        let v4;
        let v6;
        let mut cmsgs = Vec::with_capacity(2);
        match from.map(|l| (l.ip, l.scope)) {
            Some((IpAddr::V4(ip), _)) => {
                v4 = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(ip).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                cmsgs.push(ControlMessage::Ipv4PacketInfo(&v4));
            }
            Some((IpAddr::V6(ip), scope)) => {
                v6 = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: ip.octets(),
                    },
                    ipi6_ifindex: scope,
                };
                cmsgs.push(ControlMessage::Ipv6PacketInfo(&v6));
            }
            None => {}
        }
        if let Some(segment) = &segment {
            cmsgs.push(ControlMessage::UdpGsoSegments(segment));
        }
        let to = SockaddrStorage::from(to);
        sendmsg(
            socket.as_raw_fd(),
            &iov,
            &cmsgs,
            MsgFlags::empty(),
            Some(&to),
        )?;
        Ok(())
    }
}

/// Elsewhere: no PKTINFO (replies leave from the address the system
/// picks) and no segmentation offload.
#[cfg(not(target_os = "linux"))]
mod sys {
    use std::io;
    use std::net::SocketAddr;

    use tokio::net::UdpSocket;

    use super::Local;

    pub(super) const PKTINFO: bool = false;

    pub(super) fn enable_pktinfo(_: &UdpSocket, _: bool) -> io::Result<()> {
        Ok(())
    }

    pub(super) fn recv(
        _: &UdpSocket,
        _: &mut [u8],
    ) -> io::Result<(usize, SocketAddr, Option<Local>)> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "no PKTINFO"))
    }

    pub(super) fn send(
        _: &UdpSocket,
        _: &[u8],
        _: SocketAddr,
        _: Option<Local>,
        _: Option<u16>,
    ) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no control messages",
        ))
    }
}
