//! The request policy, with raw packets from one fixed client port: the
//! same request again is a retransmission (its first packet is sent again
//! at once, the handler does not run twice), a different request from the
//! same port supersedes the old transfer (which falls silent), and a
//! client never receives bytes of a file it did not ask for.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use emmer::testing::TestServer;
use emmer::{App, Request};

/// The server's own first retransmission comes after 1 s; an answer well
/// before that is the policy's doing, not the timer's.
const PROMPT: Duration = Duration::from_millis(500);

fn socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

/// The next datagram within `wait`, with its source.
fn recv_within(s: &UdpSocket, wait: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = vec![0u8; 2048];
    let (n, from) = s.recv_from(&mut buf).ok()?;
    Some((buf[..n].to_vec(), from))
}

fn recv(s: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    recv_within(s, Duration::from_secs(5)).expect("an answer within 5 s")
}

fn rrq(name: &str, options: &[(&str, &str)]) -> Vec<u8> {
    request(1, name, options)
}

fn wrq(name: &str, options: &[(&str, &str)]) -> Vec<u8> {
    request(2, name, options)
}

fn request(opcode: u8, name: &str, options: &[(&str, &str)]) -> Vec<u8> {
    let mut p = vec![0, opcode];
    for s in [name, "octet"]
        .into_iter()
        .chain(options.iter().flat_map(|(k, v)| [*k, *v]))
    {
        p.extend_from_slice(s.as_bytes());
        p.push(0);
    }
    p
}

fn ack(block: u16) -> Vec<u8> {
    let b = block.to_be_bytes();
    vec![0, 4, b[0], b[1]]
}

fn is_data(p: &[u8], block: u16) -> bool {
    p.len() >= 4 && p[..2] == [0, 3] && p[2..4] == block.to_be_bytes()
}

/// Reads a lock-step transfer to its end from `tid`, given its DATA 1.
fn read_rest(client: &UdpSocket, tid: SocketAddr, data1: Vec<u8>) -> Vec<u8> {
    let mut body = data1[4..].to_vec();
    let mut last = data1;
    let mut block = 1u16;
    while last.len() == 4 + 512 {
        client.send_to(&ack(block), tid).unwrap();
        block += 1;
        let (p, from) = recv(client);
        assert_eq!(from, tid, "every block from the transfer's port");
        assert!(is_data(&p, block), "DATA {block}, got {:?}", &p[..4]);
        body.extend_from_slice(&p[4..]);
        last = p;
    }
    client.send_to(&ack(block), tid).unwrap();
    body
}

/// A server with a large and a small file and an upload route; it counts
/// the calls of the large file's handler.
struct Files {
    server: TestServer,
    big_calls: Arc<AtomicUsize>,
    uploads: Arc<Mutex<Vec<Vec<u8>>>>,
}

const BIG: usize = 1 << 20;
const SMALL: usize = 700;

async fn files() -> Files {
    let big_calls = Arc::new(AtomicUsize::new(0));
    let uploads = Arc::new(Mutex::new(Vec::new()));
    let (calls, stored) = (big_calls.clone(), uploads.clone());
    let app = App::empty()
        .route_read("big", move |_: &Request| {
            calls.fetch_add(1, Ordering::SeqCst);
            vec![b'B'; BIG]
        })
        .route_read("small", |_: &Request| vec![b's'; SMALL])
        .route_write("up", move |_: &Request, data: Vec<u8>| {
            stored.lock().unwrap().push(data);
        });
    Files {
        server: TestServer::start(app).await,
        big_calls,
        uploads,
    }
}

/// A client that abandons a read after DATA 1 and asks, from the same port,
/// for another file gets that file, from a new transfer, and never another
/// byte of the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_read_from_the_same_port_gets_the_new_file() {
    let f = files().await;
    let addr = f.server.addr();
    tokio::task::spawn_blocking(move || {
        let client = socket();
        client.send_to(&rrq("big", &[]), addr).unwrap();
        let (data1, old) = recv(&client);
        assert!(is_data(&data1, 1) && data1[4] == b'B');
        // Abandoned: no ACK. Another request from the same port.
        client.send_to(&rrq("small", &[]), addr).unwrap();
        let (p, new) = recv(&client);
        assert_ne!(new, old, "the new request is a new transfer");
        assert!(is_data(&p, 1), "DATA 1 of the new file, got {:?}", &p[..4]);
        let body = read_rest(&client, new, p);
        assert_eq!(body, vec![b's'; SMALL], "the file asked for, byte for byte");
        // The old transfer fell silent: its timer (1 s) sends nothing.
        let deadline = Instant::now() + Duration::from_millis(2500);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Some((p, from)) = recv_within(&client, left) else {
                break;
            };
            assert_ne!(
                from,
                old,
                "a packet of the abandoned transfer: {:?}",
                &p[..4]
            );
        }
    })
    .await
    .unwrap();
}

/// The same, with a write: the reused port gets ACK 0 of the upload, not
/// the old transfer's DATA, and the upload is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_from_the_same_port_supersedes_a_read() {
    let f = files().await;
    let addr = f.server.addr();
    tokio::task::spawn_blocking(move || {
        let client = socket();
        client.send_to(&rrq("big", &[]), addr).unwrap();
        let (_, old) = recv(&client);
        client.send_to(&wrq("up", &[]), addr).unwrap();
        let (p, new) = recv(&client);
        assert_ne!(new, old);
        assert_eq!(p, ack(0), "ACK 0 for the write");
        let mut data = vec![0, 3, 0, 1];
        data.extend_from_slice(b"config");
        client.send_to(&data, new).unwrap();
        let (p, from) = recv(&client);
        assert_eq!((p, from), (ack(1), new));
    })
    .await
    .unwrap();
    assert_eq!(*f.uploads.lock().unwrap(), vec![b"config".to_vec()]);
}

/// The same request again while DATA 1 is unanswered means DATA 1 was
/// lost: it is sent again at once, and the handler does not run again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_read_again_resends_data_1_at_once() {
    let f = files().await;
    let addr = f.server.addr();
    tokio::task::spawn_blocking(move || {
        let client = socket();
        client.send_to(&rrq("big", &[]), addr).unwrap();
        let (first, tid) = recv(&client);
        assert!(is_data(&first, 1));
        let sent = Instant::now();
        client.send_to(&rrq("big", &[]), addr).unwrap();
        let (again, from) = recv(&client);
        assert!(sent.elapsed() < PROMPT, "resent after {:?}", sent.elapsed());
        assert_eq!((&again, from), (&first, tid), "DATA 1 again, same port");
        let body = read_rest(&client, tid, again);
        assert_eq!(body.len(), BIG);
        assert!(body.iter().all(|&b| b == b'B'));
    })
    .await
    .unwrap();
    assert_eq!(
        f.big_calls.load(Ordering::SeqCst),
        1,
        "the handler ran once"
    );
}

/// An OACK lost once, then twice: each repeated request gets it again at
/// once, so recovery takes the client's own timeout, not the server's
/// backoff (1 s, then 2 s more).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_oack_is_sent_again_when_the_request_is() {
    let f = files().await;
    let addr = f.server.addr();
    tokio::task::spawn_blocking(move || {
        for losses in [1, 2] {
            let client = socket();
            let req = rrq("small", &[("blksize", "1428"), ("tsize", "0")]);
            client.send_to(&req, addr).unwrap();
            let (oack, tid) = recv(&client);
            assert_eq!(&oack[..2], &[0, 6], "an OACK");
            for _ in 0..losses {
                // "Lost": ignored. The client repeats its request.
                std::thread::sleep(Duration::from_millis(300));
                let sent = Instant::now();
                client.send_to(&req, addr).unwrap();
                let (again, from) = recv(&client);
                assert!(
                    sent.elapsed() < PROMPT,
                    "{losses}: OACK after {:?}",
                    sent.elapsed()
                );
                assert_eq!((&again, from), (&oack, tid), "{losses}: the same OACK");
            }
            client.send_to(&ack(0), tid).unwrap();
            let (data, from) = recv(&client);
            assert_eq!(from, tid);
            assert!(is_data(&data, 1));
            assert_eq!(&data[4..], &[b's'; SMALL][..], "{losses} losses");
            client.send_to(&ack(1), tid).unwrap();
        }
    })
    .await
    .unwrap();
}

/// The same for a write: a repeated WRQ gets the OACK again, not a second
/// transfer, and the upload goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_oack_of_a_write_is_sent_again() {
    let f = files().await;
    let addr = f.server.addr();
    tokio::task::spawn_blocking(move || {
        let client = socket();
        let req = wrq("up", &[("blksize", "1024")]);
        client.send_to(&req, addr).unwrap();
        let (oack, tid) = recv(&client);
        assert_eq!(&oack[..2], &[0, 6]);
        let sent = Instant::now();
        client.send_to(&req, addr).unwrap();
        let (again, from) = recv(&client);
        assert!(sent.elapsed() < PROMPT, "OACK after {:?}", sent.elapsed());
        assert_eq!((&again, from), (&oack, tid));
        let mut data = vec![0, 3, 0, 1];
        data.extend_from_slice(b"once");
        client.send_to(&data, tid).unwrap();
        assert_eq!(recv(&client), (ack(1), tid));
    })
    .await
    .unwrap();
    assert_eq!(*f.uploads.lock().unwrap(), vec![b"once".to_vec()]);
}

/// A streaming handler that reads once and then holds its upload without
/// reading: the engine stops acknowledging (back-pressure), but a shutdown
/// still ends the transfer with an ERROR after the grace period, and the
/// server returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_stops_reading_does_not_outlive_shutdown() {
    let mut app = App::empty()
        .route_upload("stuck", |_: Request, mut up: emmer::Upload| async move {
            let _ = up.chunk().await;
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(up);
        })
        .bind_to("127.0.0.1:0".parse().unwrap());
    app.config_mut().shutdown_grace = Duration::from_millis(300);
    let server = app.bind().await.unwrap();
    let addr = server.local_addr();
    let stop = server.shutdown_handle();
    let serving = tokio::spawn(server.serve());
    let client = tokio::task::spawn_blocking(move || {
        let client = socket();
        client.send_to(&wrq("stuck", &[]), addr).unwrap();
        let (p, tid) = recv(&client);
        assert_eq!(p, ack(0));
        // Send until the ACKs stop: the handler is not reading.
        let mut block = 1u16;
        loop {
            let mut data = vec![0, 3];
            data.extend_from_slice(&block.to_be_bytes());
            data.extend_from_slice(&[b'x'; 512]);
            client.send_to(&data, tid).unwrap();
            match recv_within(&client, Duration::from_millis(300)) {
                Some((p, _)) if p == ack(block) => block += 1,
                Some((p, _)) => panic!("unexpected {p:?}"),
                None => break,
            }
            assert!(block < 100, "the engine kept acknowledging");
        }
        (client, tid)
    })
    .await
    .unwrap();
    let (client, tid) = client;
    let stopped = Instant::now();
    stop.shutdown();
    let (err, from) = tokio::task::spawn_blocking(move || recv(&client))
        .await
        .unwrap();
    assert_eq!(from, tid);
    assert_eq!(&err[..4], &[0, 5, 0, 0], "ERROR 0: {err:?}");
    assert!(String::from_utf8_lossy(&err[4..]).contains("shutting down"));
    tokio::time::timeout(Duration::from_secs(3), serving)
        .await
        .expect("the server returns after the grace period")
        .unwrap()
        .unwrap();
    assert!(
        stopped.elapsed() >= Duration::from_millis(300),
        "not before the grace period"
    );
}
