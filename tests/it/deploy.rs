//! Deploying on loopback: single-port mode with every client, port ranges,
//! replies from the address the request hit (a server bound to 0.0.0.0
//! answering 127.0.0.2), several listening addresses, and a dual-stack
//! `::` socket whose IPv4 clients are IPv4 to their handlers.

use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use emmer::{App, Mode, Ports, Request};

use super::clients::{Kind, Opts};
use super::support::{TempDir, Uploads, assert_bytes_eq, fixture_app, noise, read};

/// A bound server on `hosts` (port 0), serving until dropped.
struct Running {
    addrs: Vec<SocketAddr>,
    stop: emmer::ShutdownHandle,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.shutdown();
    }
}

async fn serve(mut app: App, hosts: &[&str], ports: Ports) -> Running {
    app.config_mut().hosts = hosts.iter().map(|h| h.parse().unwrap()).collect();
    app.config_mut().port = 0;
    let server = app.ports(ports).bind().await.expect("bind");
    let addrs = server.local_addrs();
    let stop = server.shutdown_handle();
    tokio::spawn(server.serve());
    Running { addrs, stop }
}

fn echo_app() -> App {
    App::empty().route_read("who", |req: &Request| {
        format!("{} {}", req.client_host(), req.local_addr())
    })
}

/// A lock-step read with raw packets: the body and every port it came from.
fn raw_get(from: &str, to: SocketAddr, name: &str) -> (Vec<u8>, Vec<SocketAddr>) {
    let s = UdpSocket::bind(from).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = vec![0, 1];
    req.extend_from_slice(name.as_bytes());
    req.extend_from_slice(b"\0octet\0");
    s.send_to(&req, to).unwrap();
    let (mut body, mut sources) = (Vec::new(), Vec::new());
    let mut buf = [0u8; 600];
    loop {
        let (n, src) = s.recv_from(&mut buf).expect("DATA within 5 s");
        assert_eq!(&buf[..2], &[0, 3], "DATA, got {:?}", &buf[..n]);
        sources.push(src);
        body.extend_from_slice(&buf[4..n]);
        s.send_to(&[0, 4, buf[2], buf[3]], src).unwrap();
        if n < 4 + 512 {
            return (body, sources);
        }
    }
}

/// In single-port mode every packet of every transfer comes from the
/// listening port, for gets and puts of our client and of every system
/// client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_port_mode_serves_every_client_from_the_listening_port() {
    let body = noise(300_000, 5);
    let uploads = Uploads::default();
    let files = Arc::new(Mutex::new(
        [("f/file.bin".to_owned(), body.clone())]
            .into_iter()
            .collect(),
    ));
    let server = serve(
        fixture_app(files, uploads.clone()),
        &["127.0.0.1"],
        Ports::Single,
    )
    .await;
    let addr = server.addrs[0];
    // Raw packets: the source of every DATA.
    let (got, sources) =
        tokio::task::spawn_blocking(move || raw_get("127.0.0.1:0", addr, "f/file.bin"))
            .await
            .unwrap();
    assert_eq!(got, body);
    assert!(sources.iter().all(|&s| s == addr), "every DATA from {addr}");
    // Our client, lock-step and windowed.
    for (blksize, windowsize) in [(512, 1), (1428, 16), (65464, 4)] {
        let client = emmer::testing::Client::new(addr)
            .blksize(blksize)
            .windowsize(windowsize);
        assert_eq!(
            client.get("f/file.bin").await.unwrap(),
            body,
            "{blksize}/{windowsize}"
        );
        let name = format!("up/{blksize}");
        client.put(&name, &body).await.unwrap();
        assert_eq!(uploads.stored(&name).as_deref(), Some(&body[..]));
    }
    // Every system client.
    let dir = TempDir::new("single");
    let local = dir.write("local.bin", &body);
    for kind in [Kind::Curl, Kind::Hpa, Kind::Atftp, Kind::Busybox] {
        let Some(tool) = kind.require() else { continue };
        // tftp-hpa's client asks for no options.
        let opts = Opts {
            blksize: (kind != Kind::Hpa).then_some(1428),
            ..Opts::default()
        };
        let out_file = dir.join(&format!("{kind:?}.bin"));
        let out = tool
            .get_with(addr, "f/file.bin", &out_file, Mode::Octet, opts)
            .await;
        tool.assert_ok(&out);
        assert_bytes_eq(&read(&out_file), &body, &format!("{kind:?} get"));
        let name = format!("up/{kind:?}");
        let out = tool.put(addr, &local, &name, Mode::Octet).await;
        tool.assert_ok(&out);
        assert_eq!(
            uploads.stored(&name).as_deref(),
            Some(&body[..]),
            "{kind:?} put"
        );
    }
}

/// In single-port mode a DATA or ACK from a client without a transfer (a
/// flow re-balanced to this replica) gets ERROR 5 at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_port_mode_answers_strays_with_error_5() {
    let server = serve(echo_app(), &["127.0.0.1"], Ports::Single).await;
    let addr = server.addrs[0];
    tokio::task::spawn_blocking(move || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.send_to(&[0, 4, 0, 7], addr).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = s.recv_from(&mut buf).expect("ERROR 5 at once");
        assert_eq!(from, addr);
        assert_eq!(&buf[..4], &[0, 5, 0, 5], "{:?}", &buf[..n]);
    })
    .await
    .unwrap();
}

/// With a port range, transfers answer from ports of the range; when every
/// port is taken, the client is told (ERROR 0) instead of timing out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_range_is_kept_and_its_exhaustion_is_told() {
    // A free port, to make a range of one.
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = App::empty().route_read("slow", |_: &Request| {
        std::thread::sleep(Duration::from_millis(600));
        "slow"
    });
    let range = Ports::Range {
        first: port,
        last: port,
    };
    let server = serve(app, &["127.0.0.1"], range).await;
    let addr = server.addrs[0];
    let first = tokio::task::spawn_blocking(move || raw_get("127.0.0.1:0", addr, "slow"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = tokio::task::spawn_blocking(move || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.send_to(b"\x00\x01slow\x00octet\x00", addr).unwrap();
        let mut buf = [0u8; 128];
        let (n, _) = s.recv_from(&mut buf).unwrap();
        buf[..n].to_vec()
    });
    let (body, sources) = first.await.unwrap();
    assert_eq!(body, b"slow");
    assert_eq!(sources, [SocketAddr::from(([127, 0, 0, 1], port))]);
    let err = second.await.unwrap();
    assert_eq!(&err[..4], &[0, 5, 0, 0], "ERROR 0: {err:?}");
    assert!(String::from_utf8_lossy(&err).contains("busy"));
}

/// Bound to 0.0.0.0, the server answers a request to 127.0.0.2 from
/// 127.0.0.2, in both port modes, and the handler sees 127.0.0.2 as its
/// local address (never 0.0.0.0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_leave_from_the_address_the_request_hit() {
    for ports in [Ports::Ephemeral, Ports::Single] {
        let server = serve(echo_app(), &["0.0.0.0"], ports).await;
        let port = server.addrs[0].port();
        for hit in ["127.0.0.1", "127.0.0.2"] {
            let to: SocketAddr = format!("{hit}:{port}").parse().unwrap();
            let (body, sources) =
                tokio::task::spawn_blocking(move || raw_get("127.0.0.1:0", to, "who"))
                    .await
                    .unwrap();
            assert_eq!(
                String::from_utf8(body).unwrap(),
                format!("127.0.0.1 {hit}:{port}"),
                "{ports}"
            );
            assert!(
                sources.iter().all(|s| s.ip().to_string() == hit),
                "{ports}: replies to a request for {hit} came from {sources:?}"
            );
        }
    }
}

/// Several addresses, one server; and `::` serves IPv4 clients, who are
/// IPv4 to their handlers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_addresses_and_dual_stack() {
    let server = serve(echo_app(), &["127.0.0.1", "127.0.0.2"], Ports::Ephemeral).await;
    assert_eq!(server.addrs.len(), 2);
    assert_eq!(
        server.addrs[0].port(),
        server.addrs[1].port(),
        "one port for all"
    );
    for addr in server.addrs.clone() {
        let got = emmer::testing::Client::new(addr).get("who").await.unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), format!("127.0.0.1 {addr}"));
    }
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("skipped the dual-stack part: this machine has no IPv6 loopback");
        return;
    }
    for ports in [Ports::Ephemeral, Ports::Single] {
        let server = serve(echo_app(), &["::"], ports).await;
        let port = server.addrs[0].port();
        let v4: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let got = emmer::testing::Client::new(v4).get("who").await.unwrap();
        assert_eq!(
            String::from_utf8(got).unwrap(),
            format!("127.0.0.1 127.0.0.1:{port}"),
            "{ports}: an IPv4 client is IPv4, not ::ffff:127.0.0.1"
        );
        let v6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
        let got = emmer::testing::Client::new(v6).get("who").await.unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), format!("::1 [::1]:{port}"));
    }
}
