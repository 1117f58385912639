//! Engine rules seen from the wire that need a second party or the
//! operating system: strangers on a transfer's port, bind failures, and the
//! size probe of UEFI firmware.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use emmer::testing::TestServer;
use emmer::{App, Error, Request};

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn recv(s: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 1024];
    let (n, from) = s.recv_from(&mut buf).expect("an answer within 5 s");
    (buf[..n].to_vec(), from)
}

/// RFC 1350 §4: a packet from another address or port gets ERROR 5, and the
/// transfer goes on with its own client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_gets_error_5_and_the_transfer_goes_on() {
    let body = vec![b'z'; 700]; // two blocks: 512 + 188
    let server =
        TestServer::start(App::empty().route_read("two", move |_: &Request| body.clone())).await;
    let addr = server.addr();
    tokio::task::spawn_blocking(move || {
        let client = socket();
        client.send_to(b"\x00\x01two\x00octet\x00", addr).unwrap();
        let (data1, tid) = recv(&client);
        assert_eq!(&data1[..4], b"\x00\x03\x00\x01");
        assert_eq!(data1.len(), 4 + 512);
        assert_ne!(tid, addr, "the transfer has its own port");

        let stranger = socket();
        stranger.send_to(b"\x00\x04\x00\x01", tid).unwrap();
        let (err, from) = recv(&stranger);
        assert_eq!(from, tid);
        assert_eq!(
            &err[..4],
            b"\x00\x05\x00\x05",
            "ERROR 5 for the stranger: {err:?}"
        );

        client.send_to(b"\x00\x04\x00\x01", tid).unwrap();
        let (data2, _) = recv(&client);
        assert_eq!(&data2[..4], b"\x00\x03\x00\x02");
        assert_eq!(data2.len(), 4 + 188);
        client.send_to(b"\x00\x04\x00\x02", tid).unwrap();
    })
    .await
    .unwrap();
}

/// UEFI firmware asks for the size only, then answers the OACK with
/// ERROR 8. The server stops there, sends nothing more, and goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_size_probe_ends_quietly_after_the_oack() {
    let server =
        TestServer::start(App::empty().route_read("boot.efi", |_: &Request| vec![7u8; 4000])).await;
    let addr = server.addr();
    tokio::task::spawn_blocking(move || {
        let client = socket();
        client
            .send_to(b"\x00\x01boot.efi\x00octet\x00tsize\x000\x00", addr)
            .unwrap();
        let (oack, tid) = recv(&client);
        assert_eq!(oack, b"\x00\x06tsize\x004000\x00");
        client
            .send_to(b"\x00\x05\x00\x08size probe\x00", tid)
            .unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        let mut buf = [0u8; 64];
        assert!(
            client.recv_from(&mut buf).is_err(),
            "nothing follows an ERROR"
        );
    })
    .await
    .unwrap();
    // The real download follows.
    let (data, info) = server
        .client()
        .tsize(true)
        .get_with_info("boot.efi")
        .await
        .unwrap();
    assert_eq!(data, vec![7u8; 4000]);
    assert_eq!(info.oack, vec![("tsize".to_owned(), "4000".to_owned())]);
}

/// A port in use is a start-up error that names the address and says what
/// to do.
#[tokio::test]
async fn a_bind_failure_names_the_address_and_the_fix() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = App::empty()
        .bind_to(addr)
        .bind()
        .await
        .expect_err("the port is taken");
    assert!(matches!(err, Error::Bind { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&addr.to_string()), "{msg}");
    assert!(msg.contains("EMMER_PORT"), "{msg}");
}

/// A malformed request gets ERROR 4 with the reason, from the listening port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_gets_error_4() {
    let server = TestServer::start(App::empty().route_read("x", |_: &Request| "x")).await;
    let addr = server.addr();
    tokio::task::spawn_blocking(move || {
        let client = socket();
        client.send_to(b"\x00\x01x\x00nonsense\x00", addr).unwrap();
        let (err, _) = recv(&client);
        assert_eq!(&err[..4], b"\x00\x05\x00\x04");
        let text = String::from_utf8_lossy(&err[4..]);
        assert!(text.contains("mode"), "{text}");
    })
    .await
    .unwrap();
}

/// A client that hears nothing while a slow handler runs sends its request
/// again from the same port: the copy must not run the handler again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_request_does_not_run_the_handler_twice() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = App::empty().route_read("slow", move |_: &Request| {
        counted.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(1200));
        "done"
    });
    let server = TestServer::start(app).await;
    // The client's 300 ms wait makes it repeat the RRQ about four times.
    let client = server.client().wait(Duration::from_millis(300));
    assert_eq!(client.get("slow").await.unwrap(), b"done");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the handler ran once");
    // A new request from another port is a new transfer.
    assert_eq!(server.client().get("slow").await.unwrap(), b"done");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// The server and its transfers work over IPv6 too.
#[tokio::test]
async fn ipv6_loopback() {
    let Ok(probe) = UdpSocket::bind("[::1]:0") else {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    };
    drop(probe);
    let app = App::empty()
        .route_read("v6", |req: &Request| format!("{}", req.client_host()))
        .route_write("up", |_: &Request, data: Vec<u8>| data == b"over v6")
        .bind_to("[::1]:0".parse().unwrap());
    let server = app.bind().await.unwrap();
    let addr = server.local_addr();
    let stop = server.shutdown_handle();
    tokio::spawn(server.serve());
    let client = emmer::testing::Client::new(addr)
        .blksize(1428)
        .windowsize(4);
    assert_eq!(client.get("v6").await.unwrap(), b"::1");
    client.put("up", b"over v6").await.unwrap();
    assert_eq!(
        client.put("up", b"other").await.unwrap_err().code(),
        Some(emmer::ErrorCode::AccessViolation)
    );
    stop.shutdown();
}
