//! Hostile input: garbage is dropped without an answer (no amplification
//! for spoofed sources), ERRORs are rate-limited per source address, and
//! uploads held whole in memory share one budget.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use emmer::testing::TestServer;
use emmer::{App, Request};

fn socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

/// Everything that arrives within `wait`.
fn answers(s: &UdpSocket, wait: Duration) -> Vec<(Vec<u8>, SocketAddr)> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match s.recv_from(&mut buf) {
            Ok((n, from)) => got.push((buf[..n].to_vec(), from)),
            Err(_) => break,
        }
    }
    got
}

/// Datagrams that are not requests get no answer at all; the server still
/// serves the next real request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_dropped_without_an_answer() {
    let server = TestServer::start(App::empty().route_read("x", |_: &Request| "x")).await;
    let addr = server.addr();
    tokio::task::spawn_blocking(move || {
        let client = socket();
        let garbage: [&[u8]; 7] = [
            b"\x00",
            b"\x00\x01",
            b"\x00\x01file-without-nul",
            b"\x00\x09\x00\x00",
            b"\x00\x04\x00\x01",
            b"\x00\x05\x00\x01oops\x00",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        ];
        for g in garbage {
            client.send_to(g, addr).unwrap();
        }
        let got = answers(&client, Duration::from_millis(500));
        assert!(got.is_empty(), "garbage was answered: {got:?}");
        client.send_to(b"\x00\x01x\x00octet\x00", addr).unwrap();
        let got = answers(&client, Duration::from_secs(2));
        assert_eq!(
            got.first().map(|(p, _)| &p[..]),
            Some(&b"\x00\x03\x00\x01x"[..])
        );
    })
    .await
    .unwrap();
}

/// A flood of requests for a missing file from one address (as a spoofed
/// source would send) draws only a few ERRORs per second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_to_one_address_are_rate_limited() {
    let server = TestServer::start(App::empty().route_read("x", |_: &Request| "x")).await;
    let addr = server.addr();
    tokio::task::spawn_blocking(move || {
        let clients: Vec<UdpSocket> = (0..40).map(|_| socket()).collect();
        let started = Instant::now();
        for c in &clients {
            c.send_to(b"\x00\x01missing\x00octet\x00", addr).unwrap();
        }
        let mut errors = 0;
        for c in &clients {
            let left = Duration::from_millis(800).saturating_sub(started.elapsed());
            errors += answers(c, left.max(Duration::from_millis(1)))
                .iter()
                .filter(|(p, _)| p.starts_with(b"\x00\x05\x00\x01"))
                .count();
        }
        assert!(errors >= 1, "the first requests are answered");
        assert!(
            errors <= 16,
            "{errors} ERRORs to one address within a second"
        );
    })
    .await
    .unwrap();
}

/// Uploads for `data` handlers are held whole in memory until the handler
/// returns; together they stay within the server's budget, and the one
/// that does not fit gets ERROR 3 instead of more memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_held_whole_share_one_memory_budget() {
    let mut app = App::empty().route_write("slow/.+", |_: &Request, data: Vec<u8>| {
        // Holds the upload's memory for a while.
        std::thread::sleep(Duration::from_millis(1500));
        !data.is_empty()
    });
    app.config_mut().max_buffered_uploads = 100 * 1024;
    let server = TestServer::start(app).await;
    let body = vec![7u8; 80 * 1024];
    let first = {
        let client = server.client().blksize(1428);
        let body = body.clone();
        tokio::spawn(async move { client.put("slow/a", &body).await })
    };
    // Let the first upload arrive whole and its handler start.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = server.client().blksize(1428).put("slow/b", &body).await;
    assert_eq!(
        second.expect_err("over the budget").code(),
        Some(emmer::ErrorCode::DiskFull),
        "ERROR 3 while the first upload holds the memory"
    );
    first.await.unwrap().expect("the first upload is accepted");
    // Its memory is free again.
    server
        .client()
        .blksize(1428)
        .put("slow/c", &body)
        .await
        .expect("fits once the first handler returned");
}

/// At the transfer limit a request waits for a slot instead of drawing
/// "server busy"; an address over its own limit is told so at once, while
/// other addresses are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_limits_wait_or_are_told_why() {
    let mut app = App::empty().route_read("slow", |req: &Request| {
        std::thread::sleep(Duration::from_millis(400));
        req.client_host().to_string()
    });
    app.config_mut().max_transfers = 2;
    app.config_mut().max_transfers_per_host = 1;
    let server = TestServer::start(app).await;
    let addr = server.addr();
    let fetch = move |from: &'static str| {
        std::thread::spawn(move || {
            let s = UdpSocket::bind(from).unwrap();
            s.send_to(b"\x00\x01slow\x00octet\x00", addr).unwrap();
            let got = answers_until_data(&s, Duration::from_secs(3));
            (got, Instant::now())
        })
    };
    let a1 = fetch("127.0.0.1:0");
    std::thread::sleep(Duration::from_millis(50));
    let a2 = fetch("127.0.0.1:0");
    std::thread::sleep(Duration::from_millis(50));
    let b = fetch("127.0.0.2:0");
    std::thread::sleep(Duration::from_millis(50));
    // Both slots are taken: this one waits for a1 or b to end.
    let c = fetch("127.0.0.3:0");
    let (a1, a1_at) = a1.join().unwrap();
    let (a2, _) = a2.join().unwrap();
    let (b, _) = b.join().unwrap();
    let (c, c_at) = c.join().unwrap();
    assert_eq!(a1, b"\x00\x03\x00\x01127.0.0.1");
    assert!(
        a2.starts_with(b"\x00\x05\x00\x00"),
        "ERROR 0 for host 1's second: {a2:?}"
    );
    assert!(String::from_utf8_lossy(&a2).contains("too many transfers from your address"));
    assert_eq!(b, b"\x00\x03\x00\x01127.0.0.2");
    assert_eq!(
        c, b"\x00\x03\x00\x01127.0.0.3",
        "waited, then served, no ERROR"
    );
    assert!(a1_at < c_at);
}

/// The first packet from the server (DATA or ERROR), within `wait`; a DATA
/// is acknowledged at once, so the transfer ends.
fn answers_until_data(s: &UdpSocket, wait: Duration) -> Vec<u8> {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 1024];
    let (n, from) = s.recv_from(&mut buf).expect("an answer");
    if buf.starts_with(b"\x00\x03") {
        s.send_to(&[0, 4, buf[2], buf[3]], from).unwrap();
    }
    buf[..n].to_vec()
}
