//! The server driven by `emmer::testing::Client`: sizes around block
//! boundaries, every option combination the system clients cannot ask for,
//! error codes, limits, handler panics, routing order and concurrency.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use emmer::testing::{ClientError, TestServer};
use emmer::{App, Mode, Request, TftpError};

use super::support::{BIG, Files, Uploads, assert_bytes_eq, fixture_app, noise, text_body};

/// A [`fixture_app`] server with the given files.
async fn fixture(files: &[(&str, Vec<u8>)]) -> (TestServer, Uploads) {
    let files: Files = Arc::new(Mutex::new(
        files
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    ));
    let uploads = Uploads::default();
    let server = TestServer::start(fixture_app(files, uploads.clone())).await;
    (server, uploads)
}

fn code(r: Result<impl Sized, ClientError>) -> Option<u16> {
    match r {
        Ok(_) => panic!("the transfer succeeded; expected an ERROR"),
        Err(e) => e
            .raw_code()
            .or_else(|| panic!("expected an ERROR, got: {e}")),
    }
}

/// Sizes around the block boundaries, for blksize 512 and 1428 and window
/// sizes 1 and 4, get and put.
#[tokio::test]
async fn sizes_blksizes_and_windows() {
    let sizes = [0usize, 1, 511, 512, 513, 1427, 1428, 2856, 4096, 10_000];
    let files: Vec<(String, Vec<u8>)> = sizes
        .iter()
        .map(|&n| (format!("f/{n}.bin"), noise(n, n as u64 + 100)))
        .collect();
    let named: Vec<(&str, Vec<u8>)> = files.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let (server, uploads) = fixture(&named).await;
    for (blksize, windowsize) in [
        (None, None),
        (Some(1428), None),
        (Some(512), Some(4)),
        (Some(1428), Some(4)),
    ] {
        let mut client = server.client().tsize(true);
        if let Some(b) = blksize {
            client = client.blksize(b);
        }
        if let Some(w) = windowsize {
            client = client.windowsize(w);
        }
        for (name, body) in &files {
            let what = format!("get {name} blksize {blksize:?} windowsize {windowsize:?}");
            let got = client
                .get(name)
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_bytes_eq(&got, body, &what);
            let up = name.replace("f/", "up/");
            let what = format!("put {up} blksize {blksize:?} windowsize {windowsize:?}");
            client
                .put(&up, body)
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_bytes_eq(&uploads.stored(&up).unwrap(), body, &what);
        }
    }
}

/// The OACK carries what was asked for: blksize, windowsize, tsize (the true
/// size on a read), timeout.
#[tokio::test]
async fn oack_reports_negotiated_options() {
    let body = noise(3000, 30);
    let (server, _) = fixture(&[("f/a.bin", body.clone())]).await;
    let (data, info) = server
        .client()
        .blksize(1024)
        .windowsize(2)
        .tsize(true)
        .timeout(3)
        .get_with_info("f/a.bin")
        .await
        .unwrap();
    assert_eq!(data, body);
    let oack: Vec<(String, String)> = info
        .oack
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    for expected in [
        ("blksize", "1024"),
        ("windowsize", "2"),
        ("tsize", "3000"),
        ("timeout", "3"),
    ] {
        assert!(
            oack.iter().any(|(k, v)| k == expected.0 && v == expected.1),
            "{expected:?} missing from OACK {oack:?}"
        );
    }
}

/// 81920 blocks of 512 bytes each way: block numbers roll over past 65535.
#[tokio::test]
async fn rollover_40mib() {
    let body = noise(BIG, 31);
    let (server, uploads) = fixture(&[("f/big.bin", body.clone())]).await;
    let client = server.client().windowsize(8);
    assert_bytes_eq(&client.get("f/big.bin").await.unwrap(), &body, "get 40 MiB");
    client.put("up/big.bin", &body).await.unwrap();
    assert_bytes_eq(&uploads.stored("up/big.bin").unwrap(), &body, "put 40 MiB");
}

/// Netascii both ways: the client encodes and decodes, so bytes come back
/// unchanged; with a blksize too.
#[tokio::test]
async fn netascii_round_trip() {
    let body = text_body();
    let (server, uploads) = fixture(&[("f/t.txt", body.clone())]).await;
    for blksize in [512, 1428] {
        let client = server
            .client()
            .mode(Mode::Netascii)
            .blksize(blksize)
            .tsize(true);
        assert_bytes_eq(&client.get("f/t.txt").await.unwrap(), &body, "netascii get");
        client.put("up/t.txt", &body).await.unwrap();
        assert_bytes_eq(&uploads.stored("up/t.txt").unwrap(), &body, "netascii put");
    }
}

/// Each refusal has its code: no route (1 for reads, 2 for writes), `None`
/// (1), `false` (2), `Err` (its code), mail mode (4).
#[tokio::test]
async fn error_codes() {
    let (server, uploads) = fixture(&[("f/a.bin", b"a".to_vec())]).await;
    let client = server.client();
    assert_eq!(code(client.get("nothing/here").await), Some(1));
    assert_eq!(code(client.get("f/absent").await), Some(1));
    assert_eq!(code(client.put("nothing/here", b"x").await), Some(2));
    assert_eq!(
        code(client.put("reject/x", &noise(2000, 32)).await),
        Some(2)
    );
    assert_eq!(code(client.put("full/x", b"x").await), Some(3));
    assert_eq!(
        code(client.clone().mode(Mode::Mail).get("f/a.bin").await),
        Some(4)
    );
    assert_eq!(uploads.stored_count(), 0);
    assert_eq!(
        uploads.refused(),
        [("reject/x".to_owned(), 2000), ("full/x".to_owned(), 1)]
    );
    match client.get("nothing/here").await {
        Err(e) => assert_eq!(e.message(), Some("file not found")),
        other => panic!("{other:?}"),
    }
}

/// An upload over the limit is ERROR 3 and never reaches the handler: at
/// once when the client announces its size (tsize), after the limit is
/// crossed otherwise.
#[tokio::test]
async fn upload_limit() {
    let called = Arc::new(Mutex::new(0usize));
    let seen = called.clone();
    let app = App::empty()
        .max_upload(4000)
        .route_write("up/.+", move |_: &Request, _: Vec<u8>| {
            *seen.lock().unwrap() += 1;
        });
    let server = TestServer::start(app).await;
    let body = noise(10_000, 33);
    assert_eq!(
        code(server.client().tsize(true).put("up/a", &body).await),
        Some(3)
    );
    assert_eq!(code(server.client().put("up/b", &body).await), Some(3));
    server.client().put("up/c", &body[..4000]).await.unwrap();
    assert_eq!(
        *called.lock().unwrap(),
        1,
        "only the upload within the limit reaches the handler"
    );
}

/// A panicking handler gives the client ERROR 0 and the server goes on.
#[tokio::test]
async fn handler_panic_is_error_0() {
    let app = App::empty()
        .route_read("boom", |_: &Request| -> String {
            panic!("handler exploded")
        })
        .route_write("boom", |_: &Request, _: Vec<u8>| -> bool {
            panic!("handler exploded")
        })
        .route_read("ok", |_: &Request| "fine");
    let server = TestServer::start(app).await;
    let client = server.client();
    match client.get("boom").await {
        Err(ClientError::Server { code, message }) => {
            assert_eq!(code, 0);
            assert!(
                !message.contains("exploded"),
                "panic text leaked: {message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(code(client.put("boom", b"x").await), Some(0));
    assert_eq!(client.get("ok").await.unwrap(), b"fine");
}

/// The handler sees the request: peer, file name, mode, options, captures;
/// builder routes are tried in the order added.
#[tokio::test]
async fn request_fields_and_route_order() {
    let app = App::empty()
        .route_read(r"echo/(?P<word>[a-z]+)", |req: &Request| {
            format!(
                "{} {} {} {} {}",
                req.client_host(),
                req.filename(),
                req.mode(),
                req.capture("word").unwrap_or("-"),
                req.option("blksize").unwrap_or("-"),
            )
        })
        .route_read(r"order/.*", |_: &Request| "first")
        .route_read(r"order/x", |_: &Request| "second");
    let server = TestServer::start(app).await;
    assert_eq!(
        server
            .client()
            .blksize(600)
            .get("echo/hello")
            .await
            .unwrap(),
        b"127.0.0.1 echo/hello octet hello 600"
    );
    assert_eq!(server.client().get("order/x").await.unwrap(), b"first");
    // Patterns match the whole name.
    assert_eq!(code(server.client().get("echo/hello/more").await), Some(1));
    assert_eq!(code(server.client().get("xecho/hello").await), Some(1));
}

/// Application state reaches handlers through `Request::state`.
#[tokio::test]
async fn state_reaches_handlers() {
    #[derive(Clone)]
    struct Site(&'static str);
    let app = App::empty()
        .state(Site("lab-3"))
        .route_read("site", |req: &Request| {
            req.state::<Site>().map(|s| s.0.to_owned())
        });
    let server = TestServer::start(app).await;
    assert_eq!(server.client().get("site").await.unwrap(), b"lab-3");
}

/// Many transfers at once, each on its own socket, all correct.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transfers() {
    let files: Vec<(String, Vec<u8>)> = (0..24)
        .map(|i| {
            (
                format!("f/{i}.bin"),
                noise(20_000 + i * 977, i as u64 + 200),
            )
        })
        .collect();
    let named: Vec<(&str, Vec<u8>)> = files.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let (server, uploads) = fixture(&named).await;
    let mut tasks = Vec::new();
    for (name, body) in files.clone() {
        let client = server.client().wait(Duration::from_secs(2));
        tasks.push(tokio::spawn(async move {
            let got = client.get(&name).await.unwrap();
            assert_bytes_eq(&got, &body, &name);
            let up = name.replace("f/", "up/");
            client.put(&up, &body).await.unwrap();
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .expect("transfers finish within 120 s")
            .unwrap();
    }
    for (name, body) in &files {
        let up = name.replace("f/", "up/");
        assert_bytes_eq(&uploads.stored(&up).unwrap(), body, &up);
    }
}

/// After shutdown, requests go unanswered.
#[tokio::test]
async fn shutdown_stops_answering() {
    let server = TestServer::start(App::empty().route_read("a", |_: &Request| "a")).await;
    let addr = server.addr();
    assert_eq!(server.client().get("a").await.unwrap(), b"a");
    drop(server);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = emmer::testing::Client::new(addr)
        .wait(Duration::from_millis(100))
        .get("a")
        .await;
    assert!(
        matches!(r, Err(ClientError::Timeout | ClientError::Io(_))),
        "a stopped server answered: {r:?}"
    );
}

/// `TftpError` messages reach the client as written.
#[tokio::test]
async fn error_messages_reach_the_client() {
    let app = App::empty().route_read("denied", |_: &Request| {
        Err::<String, _>(TftpError::access_violation("ask the lab admin for access"))
    });
    let server = TestServer::start(app).await;
    match server.client().get("denied").await {
        Err(ClientError::Server { code, message }) => {
            assert_eq!(
                (code, message.as_str()),
                (2, "ask the lab admin for access")
            );
        }
        other => panic!("{other:?}"),
    }
}

/// A scripted server for the client's side of the protocol: answers with
/// exactly the packets a test lists, from its own port.
struct Scripted {
    sock: tokio::net::UdpSocket,
    client: Option<std::net::SocketAddr>,
    buf: Vec<u8>,
}

impl Scripted {
    async fn new() -> Self {
        Self {
            sock: tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            client: None,
            buf: vec![0; 70_000],
        }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.sock.local_addr().unwrap()
    }

    /// The next packet from the client, as raw bytes (5 s at most).
    async fn recv(&mut self) -> Vec<u8> {
        let (n, from) =
            tokio::time::timeout(Duration::from_secs(5), self.sock.recv_from(&mut self.buf))
                .await
                .expect("the client sent nothing within 5 s")
                .unwrap();
        self.client = Some(from);
        self.buf[..n].to_vec()
    }

    async fn send(&self, packet: &[u8]) {
        self.sock
            .send_to(packet, self.client.unwrap())
            .await
            .unwrap();
    }
}

fn oack_1428() -> Vec<u8> {
    let mut p = Vec::new();
    emmer::proto::packet::encode_oack(&mut p, &[("blksize", "1428")]);
    p
}

/// A repeated OACK (the client's ACK 0 was lost, or the network sent the
/// OACK twice) is acknowledged again, not taken for a protocol error; found
/// by `loss::emmer_client` under real loss.
#[tokio::test]
async fn repeated_oack_on_a_read_is_acknowledged_again() {
    let mut server = Scripted::new().await;
    let client = emmer::testing::Client::new(server.addr())
        .blksize(1428)
        .wait(Duration::from_secs(2));
    let get = tokio::spawn(async move { client.get("f").await });
    assert_eq!(server.recv().await[..2], [0, 1], "an RRQ");
    server.send(&oack_1428()).await;
    assert_eq!(server.recv().await, [0, 4, 0, 0], "ACK 0");
    server.send(&oack_1428()).await;
    assert_eq!(server.recv().await, [0, 4, 0, 0], "ACK 0 again");
    server.send(&[0, 3, 0, 1, b'h', b'i']).await;
    assert_eq!(server.recv().await, [0, 4, 0, 1], "ACK 1");
    assert_eq!(get.await.unwrap().unwrap(), b"hi");
}

/// The same on a write: a repeated OACK is no error; the transfer goes on.
#[tokio::test]
async fn repeated_oack_on_a_write_is_ignored() {
    let mut server = Scripted::new().await;
    let client = emmer::testing::Client::new(server.addr())
        .blksize(1428)
        .wait(Duration::from_secs(2));
    let put = tokio::spawn(async move { client.put("f", b"hi").await });
    assert_eq!(server.recv().await[..2], [0, 2], "a WRQ");
    server.send(&oack_1428()).await;
    assert_eq!(server.recv().await, [0, 3, 0, 1, b'h', b'i'], "DATA 1");
    server.send(&oack_1428()).await;
    server.send(&[0, 4, 0, 1]).await;
    put.await.unwrap().unwrap();
}
