//! Transfer events (`App::on_transfer`): one for every request, served or
//! refused, with what a transfer did and how it ended; callbacks that are
//! slow or panic never hold up or stop transfers.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use emmer::event::{Limit, TransferEvent, TransferOutcome};
use emmer::route::Kind;
use emmer::testing::TestServer;
use emmer::{App, ErrorCode, Mode, Request};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::support::noise;

/// An app whose events arrive on the returned channel.
fn recorded(app: App) -> (App, UnboundedReceiver<TransferEvent>) {
    let (tx, rx) = unbounded_channel();
    let app = app.on_transfer(move |ev: &TransferEvent| {
        let _ = tx.send(ev.clone());
    });
    (app, rx)
}

/// The next event, within 5 s.
async fn next(rx: &mut UnboundedReceiver<TransferEvent>) -> TransferEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("an event within 5 s")
        .expect("the server is still there")
}

fn has(options: &[(String, String)], name: &str, value: &str) -> bool {
    options.iter().any(|(k, v)| k == name && v == value)
}

#[tokio::test]
async fn a_complete_read_reports_what_was_asked_granted_and_sent() {
    let body = noise(5000, 1);
    let served = body.clone();
    let (app, mut rx) =
        recorded(App::empty().route_read(r"boot/(?P<n>\w+)", move |_: &Request| served.clone()));
    let server = TestServer::start(app).await;
    let got = server
        .client()
        .blksize(1428)
        .tsize(true)
        .get("boot/x")
        .await
        .unwrap();
    assert_eq!(got, body);
    let ev = next(&mut rx).await;
    assert_eq!(ev.outcome, TransferOutcome::Complete);
    assert!(ev.peer.ip().is_loopback(), "{ev:?}");
    assert_eq!(ev.local, server.addr());
    assert_eq!(ev.filename, "boot/x");
    assert_eq!(ev.kind, Kind::Read);
    assert_eq!(ev.mode, Mode::Octet);
    assert_eq!(
        ev.route.as_deref(),
        Some(r#"read route "boot/(?P<n>\\w+)""#)
    );
    assert_eq!(ev.pattern.as_deref(), Some(r"boot/(?P<n>\w+)"));
    assert!(has(&ev.requested, "blksize", "1428"), "{:?}", ev.requested);
    assert!(has(&ev.requested, "tsize", "0"), "{:?}", ev.requested);
    assert!(has(&ev.granted, "blksize", "1428"), "{:?}", ev.granted);
    assert!(has(&ev.granted, "tsize", "5000"), "{:?}", ev.granted);
    assert_eq!(ev.bytes, 5000);
    assert_eq!(ev.blocks, 4, "3 × 1428 and a short block");
    assert_eq!((ev.retransmits, ev.duplicates), (0, 0));
    assert!(ev.rtt.is_some(), "the OACK's round trip is measured");
    assert!(ev.duration < Duration::from_secs(5));
}

#[tokio::test]
async fn a_write_reports_its_bytes_and_blocks() {
    let (app, mut rx) = recorded(
        App::empty().route_write("up/.+", |_: &Request, data: Vec<u8>| data.len() == 1500),
    );
    let server = TestServer::start(app).await;
    server.client().put("up/a", &noise(1500, 2)).await.unwrap();
    let ev = next(&mut rx).await;
    assert_eq!(ev.kind, Kind::Write);
    assert_eq!(ev.filename, "up/a");
    assert_eq!(ev.outcome, TransferOutcome::Complete);
    assert_eq!((ev.bytes, ev.blocks), (1500, 3), "512 + 512 + 476");
    assert!(ev.granted.is_empty(), "no options, no OACK");
    // Refused by its handler: our error, with the route.
    let e = server.client().put("up/b", b"short").await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::AccessViolation));
    let ev = next(&mut rx).await;
    assert_eq!(
        ev.outcome,
        TransferOutcome::ServerError {
            code: ErrorCode::AccessViolation,
            message: "upload rejected by the server".into()
        }
    );
    assert_eq!(ev.route.as_deref(), Some(r#"write route "up/.+""#));
}

#[tokio::test]
async fn refused_requests_are_reported_too() {
    let mut app = App::empty().route_read_async("slow", |_: Request| async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        "done"
    });
    app.config_mut().max_transfers_per_host = 1;
    let (app, mut rx) = recorded(app);
    let server = TestServer::start(app).await;

    // No route takes it.
    let e = server.client().get("none").await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::FileNotFound));
    let ev = next(&mut rx).await;
    assert_eq!(ev.outcome.code(), Some(1));
    assert_eq!(ev.outcome.as_str(), "error");
    assert_eq!((ev.route, ev.bytes), (None, 0));

    // Over the per-address limit while another transfer runs.
    let client = server.client();
    let first = tokio::spawn(async move { client.get("slow").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let e = server.client().get("slow").await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Undefined));
    let ev = next(&mut rx).await;
    assert_eq!(ev.outcome, TransferOutcome::Refused(Limit::PerHost(1)));
    assert_eq!(ev.filename, "slow");
    assert_eq!(first.await.unwrap().unwrap(), b"done");
    let ev = next(&mut rx).await;
    assert_eq!(ev.outcome, TransferOutcome::Complete);
    assert!(
        ev.duration >= Duration::from_millis(700),
        "the handler's time counts: {:?}",
        ev.duration
    );
}

/// A client that never ACKs: the transfer times out after one
/// retransmission, and says so.
#[tokio::test]
async fn a_silent_client_is_reported_as_timed_out() {
    let mut app = App::empty()
        .route_read("f", |_: &Request| vec![b'x'; 2000])
        .retransmit_timeout(Duration::from_millis(50))
        .retries(1);
    app.config_mut().transfer.min_retransmit_timeout = Duration::from_millis(10);
    let (app, mut rx) = recorded(app);
    let server = TestServer::start(app).await;
    let addr = server.addr();
    let data1 = tokio::task::spawn_blocking(move || {
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"\x00\x01f\x00octet\x00", addr).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 1024];
        client.recv_from(&mut buf).unwrap();
        buf[..4].to_vec()
    })
    .await
    .unwrap();
    assert_eq!(data1, [0, 3, 0, 1], "DATA 1, never acknowledged");
    let ev = next(&mut rx).await;
    assert_eq!(ev.outcome, TransferOutcome::TimedOut);
    assert_eq!(ev.retransmits, 1);
    assert_eq!((ev.bytes, ev.blocks), (0, 0));
}

/// A different request from the same port ends the first transfer as
/// superseded; the second is reported on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_transfer_is_reported_as_superseded() {
    let (app, mut rx) = recorded(
        App::empty()
            .route_read("big", |_: &Request| vec![b'B'; 4096])
            .route_read("small", |_: &Request| vec![b's'; 100]),
    );
    let server = TestServer::start(app).await;
    let addr = server.addr();
    tokio::task::spawn_blocking(move || {
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 1024];
        client.send_to(b"\x00\x01big\x00octet\x00", addr).unwrap();
        client.recv_from(&mut buf).unwrap();
        client.send_to(b"\x00\x01small\x00octet\x00", addr).unwrap();
        let (n, tid): (usize, SocketAddr) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..4], [0, 3, 0, 1]);
        assert_eq!(n, 4 + 100);
        client.send_to(&[0, 4, 0, 1], tid).unwrap();
    })
    .await
    .unwrap();
    let mut events = [next(&mut rx).await, next(&mut rx).await];
    events.sort_by_key(|e| e.filename.clone());
    assert_eq!(events[0].filename, "big");
    assert_eq!(events[0].outcome, TransferOutcome::Superseded);
    assert_eq!(events[1].filename, "small");
    assert_eq!(events[1].outcome, TransferOutcome::Complete);
    assert_eq!(events[0].peer, events[1].peer);
}

/// A callback that panics on every event: transfers go on, and the next
/// callback still gets every event.
#[tokio::test]
async fn a_panicking_callback_does_not_stop_the_server() {
    let app = App::empty()
        .route_read("f", |_: &Request| "data")
        .on_transfer(|_: &TransferEvent| panic!("a callback that always fails"));
    let (app, mut rx) = recorded(app);
    let server = TestServer::start(app).await;
    for i in 0..3 {
        assert_eq!(server.client().get("f").await.unwrap(), b"data", "get {i}");
        assert_eq!(next(&mut rx).await.outcome, TransferOutcome::Complete);
    }
}

/// A callback that takes 3 s per event: ten transfers take far less than
/// one call of it.
#[tokio::test]
async fn a_slow_callback_does_not_slow_transfers() {
    let (tx, mut started) = unbounded_channel();
    let app = App::empty()
        .route_read("f", |_: &Request| "data")
        .on_transfer(move |_: &TransferEvent| {
            let _ = tx.send(());
            std::thread::sleep(Duration::from_secs(3));
        });
    let server = TestServer::start(app).await;
    let t0 = Instant::now();
    for _ in 0..10 {
        assert_eq!(server.client().get("f").await.unwrap(), b"data");
    }
    let took = t0.elapsed();
    tokio::time::timeout(Duration::from_secs(5), started.recv())
        .await
        .expect("the callback was called")
        .unwrap();
    assert!(
        took < Duration::from_millis(2500),
        "10 transfers took {took:?} beside a callback of 3 s per event"
    );
}

/// A W3C traceparent appended to the name: with `strip_traceparent` the
/// route sees the plain name; the event keeps the whole name and the trace.
#[tokio::test]
async fn the_traceparent_of_a_name_reaches_the_event() {
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let (app, mut rx) = recorded(
        App::empty()
            .route_read(r"ipxe\.efi", |req: &Request| req.filename().to_owned())
            .strip_traceparent(true),
    );
    let server = TestServer::start(app).await;
    let name = format!("ipxe.efi-{tp}");
    assert_eq!(server.client().get(&name).await.unwrap(), b"ipxe.efi");
    let ev = next(&mut rx).await;
    assert_eq!(ev.filename, name);
    assert_eq!(ev.pattern.as_deref(), Some(r"ipxe\.efi"));
    let trace = ev.traceparent.expect("the event carries the trace");
    assert_eq!(trace.to_string(), tp);
    assert_eq!(trace.trace_id(), "0af7651916cd43dd8448eb211c80319c");
    // Without a traceparent, the event has none.
    server.client().get("ipxe.efi").await.unwrap();
    assert_eq!(next(&mut rx).await.traceparent, None);
}
