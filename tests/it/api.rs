//! The handler API through the macros and the real route table: captures
//! typed by `FromStr`, extractors, async and blocking handlers, read bodies,
//! the upload lifecycle, and `emmer::testing` at the table level.
//!
//! The macro routes here all start with `api/`; each test picks the routes
//! it needs (`App::macro_route`, `App::macro_routes_in`), and the other
//! modules build their apps with `App::empty()`.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use emmer::testing::{ClientError, TestServer};
use emmer::{
    App, ErrorCode, FromRequest, Mode, Peer, ReadBody, Request, State, TftpError, Upload,
    route_read, route_write,
};

use super::support::{TempDir, noise};

// ---- captures --------------------------------------------------------------

#[route_read(r"api/unit/(?P<n>\d+)")]
fn small_unit(n: u8) -> String {
    format!("small {n}")
}

#[route_read(r"api/unit/(?P<big>\d+)")]
fn big_unit(big: u64) -> String {
    format!("big {big}")
}

#[route_read(r"api/pkg/(?P<name>[a-z]+)(?:-(?P<ver>\d+))?")]
fn package(name: &str, ver: Option<u32>) -> String {
    format!("{name} {ver:?}")
}

#[tokio::test]
async fn a_capture_that_does_not_convert_passes_the_request_on() {
    let app = App::empty()
        .macro_route("small_unit")
        .macro_route("big_unit");
    assert_eq!(app.read("api/unit/7").await.unwrap(), b"small 7");
    // 300 is no u8: the first route does not match, the second takes it.
    assert_eq!(app.read("api/unit/300").await.unwrap(), b"big 300");
    // Nothing converts: no route, ERROR 1.
    let e = app
        .read("api/unit/99999999999999999999999")
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::FileNotFound);
}

#[tokio::test]
async fn an_optional_group_binds_to_option() {
    let app = App::empty().macro_route("package");
    assert_eq!(app.read("api/pkg/grub-2").await.unwrap(), b"grub Some(2)");
    assert_eq!(app.read("api/pkg/grub").await.unwrap(), b"grub None");
}

// ---- extractors -------------------------------------------------------------

/// A user extractor: the request must come from a port above 1023.
struct Unprivileged(u16);

impl FromRequest for Unprivileged {
    type Rejection = TftpError;
    fn from_request(req: &Request) -> Result<Self, TftpError> {
        match req.client_port() {
            p if p > 1023 => Ok(Unprivileged(p)),
            _ => Err(TftpError::access_violation(
                "clients on privileged ports are refused",
            )),
        }
    }
}

#[derive(Clone)]
struct Site(&'static str);

#[route_read(r"api/who")]
fn who(
    Peer(peer): Peer,
    req: &Request,
    Unprivileged(port): Unprivileged,
    State(site): State<Site>,
) -> String {
    assert_eq!(peer.port(), port);
    format!(
        "{peer} on {} asked {} ({}) blksize={:?} at {}",
        req.local_addr(),
        req.filename(),
        req.mode(),
        req.option("BLKSIZE"),
        site.0
    )
}

#[tokio::test]
async fn extractors_by_type_see_the_request() {
    let app = App::empty().macro_route("who").state(Site("lab"));
    let peer: SocketAddr = "10.1.2.3:40000".parse().unwrap();
    let body = app
        .read("api/who")
        .from(peer)
        .mode(Mode::Netascii)
        .option("blksize", "1428")
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "10.1.2.3:40000 on 127.0.0.1:3942 asked api/who (netascii) blksize=Some(\"1428\") at lab"
    );
    // The user extractor refuses: its code and message reach the client.
    let e = app
        .read("api/who")
        .from("10.1.2.3:69".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::AccessViolation);
    assert_eq!(e.message(), "clients on privileged ports are refused");
    // State that was never registered: a start-up error naming the route
    // and the type, before any client could see it.
    let e = App::empty().macro_route("who").table().unwrap_err();
    assert!(matches!(e, emmer::Error::MissingState { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("route who at ") && msg.contains("api.rs"),
        "{msg}"
    );
    assert!(msg.contains("State<main::it::api::Site>"), "{msg}");
    assert!(msg.contains("App::state"), "{msg}");
}

#[tokio::test]
async fn extractors_over_the_network_see_the_real_peer() {
    let server = TestServer::start(App::empty().macro_route("api::who").state(Site("net"))).await;
    let client = server.client().blksize(1024);
    let body = String::from_utf8(client.get("api/who").await.unwrap()).unwrap();
    assert!(body.starts_with("127.0.0.1:"), "{body}");
    assert!(body.contains(&format!("on {}", server.addr())), "{body}");
    assert!(body.ends_with("blksize=Some(\"1024\") at net"), "{body}");
}

// ---- async and blocking handlers -------------------------------------------

#[route_read(r"api/slow/sync/\d+")]
fn slow_sync() -> &'static str {
    std::thread::sleep(Duration::from_millis(200));
    "sync"
}

#[route_read(r"api/slow/async/\d+")]
async fn slow_async() -> &'static str {
    tokio::time::sleep(Duration::from_millis(200)).await;
    "async"
}

/// 50 handlers that each take 200 ms, 25 blocking and 25 async: run one
/// after another they would take 10 s. They must overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_slow_handlers_do_not_serialise() {
    let server = TestServer::start(api_app()).await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let client = server.client().wait(Duration::from_secs(3));
        let name = if i % 2 == 0 {
            format!("api/slow/sync/{i}")
        } else {
            format!("api/slow/async/{i}")
        };
        tasks.push(tokio::spawn(async move { (i, client.get(&name).await) }));
    }
    for t in tasks {
        let (i, r) = t.await.unwrap();
        let expected: &[u8] = if i % 2 == 0 { b"sync" } else { b"async" };
        assert_eq!(r.unwrap(), expected, "request {i}");
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "50 × 200 ms handlers took {took:?}: they ran one after another"
    );
}

#[route_read(r"api/panic")]
fn panics() -> String {
    panic!("handler bug")
}

#[route_read(r"api/io/(?P<kind>\w+)")]
async fn io_error(kind: String) -> std::io::Result<&'static str> {
    let k = match kind.as_str() {
        "missing" => std::io::ErrorKind::NotFound,
        "denied" => std::io::ErrorKind::PermissionDenied,
        "exists" => std::io::ErrorKind::AlreadyExists,
        _ => std::io::ErrorKind::Other,
    };
    Err(std::io::Error::new(k, "/srv/secret/path: details"))
}

#[tokio::test]
async fn io_errors_map_to_codes_without_leaking_text() {
    let server = TestServer::start(api_app()).await;
    for (kind, code) in [("missing", 1), ("denied", 2), ("exists", 6), ("other", 0)] {
        match server.client().get(&format!("api/io/{kind}")).await {
            Err(ClientError::Server { code: c, message }) => {
                assert_eq!(c, code, "{kind}");
                assert!(!message.contains("/srv"), "{kind}: {message}");
            }
            other => panic!("{kind}: expected an ERROR, got {other:?}"),
        }
    }
    // A panicking async-free handler: ERROR 0, and the server goes on.
    let e = server.client().get("api/panic").await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Undefined));
    assert_eq!(server.client().get("api/unit/1").await.unwrap(), b"small 1");
}

// ---- read bodies --------------------------------------------------------------

fn body_dir() -> &'static TempDir {
    static DIR: std::sync::OnceLock<TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let d = TempDir::new("api-bodies");
        d.write("image.bin", &noise(300_000, 7));
        d
    })
}

#[route_read(r"api/file")]
async fn file_body() -> Result<ReadBody, TftpError> {
    Ok(ReadBody::file(body_dir().join("image.bin")).await?)
}

#[route_read(r"api/stream/(?P<measure>yes|no)")]
fn stream_body(measure: String) -> ReadBody {
    let data: &'static [u8] = b"generated on the fly\n";
    let body = ReadBody::from_reader(data, None);
    if measure == "yes" {
        body.measure_tsize_up_to(1024)
    } else {
        body
    }
}

fn tsize_of(oack: &[(String, String)]) -> Option<u64> {
    oack.iter()
        .find(|(k, _)| k == "tsize")
        .map(|(_, v)| v.parse().unwrap())
}

#[tokio::test]
async fn files_stream_with_tsize_and_streams_without_unless_measured() {
    let server = TestServer::start(api_app()).await;
    let client = server.client().tsize(true).blksize(1428);
    let (data, info) = client.get_with_info("api/file").await.unwrap();
    assert_eq!(data, noise(300_000, 7));
    assert_eq!(tsize_of(&info.oack), Some(300_000));

    let (data, info) = client.get_with_info("api/stream/no").await.unwrap();
    assert_eq!(data, b"generated on the fly\n");
    assert_eq!(
        tsize_of(&info.oack),
        None,
        "unknown size: tsize left out, {:?}",
        info.oack
    );
    assert!(info.oack.iter().any(|(k, _)| k == "blksize"));

    let (data, info) = client.get_with_info("api/stream/yes").await.unwrap();
    assert_eq!(data, b"generated on the fly\n");
    assert_eq!(tsize_of(&info.oack), Some(21));
}

// ---- uploads -------------------------------------------------------------------

#[derive(Clone)]
struct UploadLog {
    dir: Arc<Mutex<Option<PathBuf>>>,
    hints: Arc<Mutex<Vec<Option<u64>>>>,
    calls: Arc<AtomicUsize>,
    gate: Arc<tokio::sync::Semaphore>,
}

#[route_write(r"api/up/(?P<name>[a-z0-9]+)", max_upload = 100000)]
async fn stream_upload(
    name: String,
    upload: Upload,
    State(log): State<UploadLog>,
) -> Result<(), TftpError> {
    log.calls.fetch_add(1, Ordering::SeqCst);
    log.hints.lock().unwrap().push(upload.size_hint());
    if name.starts_with("refuse") {
        return Err(TftpError::access_violation(
            "uploads named refuse* are refused",
        ));
    }
    let dir = log.dir.lock().unwrap().clone().unwrap();
    upload.save_atomic(dir.join(&name)).await?;
    Ok(())
}

/// Reads one chunk, then waits for the test to open the gate per chunk.
#[route_write(r"api/slowup")]
async fn slow_upload(mut upload: Upload, State(log): State<UploadLog>) -> Result<(), TftpError> {
    while upload.chunk().await?.is_some() {
        log.calls.fetch_add(1, Ordering::SeqCst);
        log.gate.acquire().await.unwrap().forget();
    }
    Ok(())
}

impl Default for UploadLog {
    fn default() -> Self {
        Self {
            dir: Arc::default(),
            hints: Arc::default(),
            calls: Arc::default(),
            gate: Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }
}

/// The routes of this module, with the state they take.
fn api_app() -> App {
    App::empty()
        .macro_routes_in(module_path!())
        .state(Site("api"))
        .state(UploadLog::default())
}

fn upload_app(dir: &TempDir) -> (App, UploadLog) {
    let log = UploadLog::default();
    *log.dir.lock().unwrap() = Some(dir.join(""));
    (api_app().state(log.clone()), log)
}

fn files_in(dir: &TempDir) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn streamed_upload_is_committed_whole_and_sees_tsize() {
    let dir = TempDir::new("api-up");
    let (app, log) = upload_app(&dir);
    let server = TestServer::start(app).await;
    let data = noise(50_000, 3);
    server
        .client()
        .tsize(true)
        .windowsize(4)
        .put("api/up/backup", &data)
        .await
        .unwrap();
    assert_eq!(std::fs::read(dir.join("backup")).unwrap(), data);
    assert_eq!(log.hints.lock().unwrap().as_slice(), &[Some(50_000)]);
    assert_eq!(
        files_in(&dir),
        vec!["backup"],
        "no temporary file left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_before_reading_sends_no_ack() {
    let dir = TempDir::new("api-refuse");
    let (app, log) = upload_app(&dir);
    let server = TestServer::start(app).await;
    // A raw WRQ: the first answer must be the ERROR, not ACK 0.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.send_to(b"\x00\x02api/up/refuseme\x00octet\x00", server.addr())
        .unwrap();
    let mut buf = [0u8; 516];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(
        &buf[..4],
        b"\x00\x05\x00\x02",
        "expected ERROR 2 first, got {:?}",
        &buf[..n]
    );
    assert!(String::from_utf8_lossy(&buf[4..n]).contains("refused"));
    assert_eq!(log.calls.load(Ordering::SeqCst), 1);
    assert!(files_in(&dir).is_empty());
}

#[tokio::test]
async fn over_the_route_limit_ends_with_error_3_and_leaves_no_file() {
    let dir = TempDir::new("api-limit");
    let (app, _log) = upload_app(&dir);
    let server = TestServer::start(app).await;
    // Announced too large: refused at once.
    let e = server
        .client()
        .tsize(true)
        .put("api/up/big", &noise(150_000, 1))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::DiskFull), "{e}");
    // Not announced: ends with ERROR 3 when the data runs over.
    let e = server
        .client()
        .put("api/up/big", &noise(150_000, 1))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::DiskFull), "{e}");
    // Give the handler's task a moment to clean up its temporary file.
    for _ in 0..50 {
        if files_in(&dir).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        files_in(&dir).is_empty(),
        "left behind: {:?}",
        files_in(&dir)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_upload_leaves_no_file() {
    let dir = TempDir::new("api-abort");
    let (app, _log) = upload_app(&dir);
    let server = TestServer::start(app).await;
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.send_to(b"\x00\x02api/up/partial\x00octet\x00", server.addr())
        .unwrap();
    let mut buf = [0u8; 516];
    let (n, tid) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"\x00\x04\x00\x00");
    let mut data = vec![0u8, 3, 0, 1];
    data.extend_from_slice(&[b'x'; 512]);
    sock.send_to(&data, tid).unwrap();
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"\x00\x04\x00\x01");
    // The client gives up.
    sock.send_to(b"\x00\x05\x00\x00cancelled\x00", tid).unwrap();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if files_in(&dir).is_empty() {
            break;
        }
    }
    assert!(
        files_in(&dir).is_empty(),
        "left behind: {:?}",
        files_in(&dir)
    );
    assert!(!dir.join("partial").exists());
}

/// The engine acknowledges no faster than the handler reads: with the
/// handler stalled, ACKs stop after the channel's few blocks; released, the
/// transfer completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_have_back_pressure() {
    let dir = TempDir::new("api-bp");
    let (app, log) = upload_app(&dir);
    let server = TestServer::start(app).await;
    let addr = server.addr();
    let acked = tokio::task::spawn_blocking(move || {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(700)))
            .unwrap();
        sock.send_to(b"\x00\x02api/slowup\x00octet\x00", addr)
            .unwrap();
        let mut buf = [0u8; 516];
        let (_, tid) = sock.recv_from(&mut buf).unwrap();
        let mut block = 1u16;
        // Send blocks lock-step until an ACK does not come.
        loop {
            let mut data = vec![0, 3];
            data.extend_from_slice(&block.to_be_bytes());
            data.extend_from_slice(&[b'y'; 512]);
            sock.send_to(&data, tid).unwrap();
            match sock.recv_from(&mut buf) {
                Ok((4, _)) if buf[..4] == [0, 4, (block >> 8) as u8, block as u8] => block += 1,
                Ok((n, _)) => panic!("unexpected answer {:?}", &buf[..n]),
                Err(_) => return (sock, tid, block),
            }
            assert!(
                block < 50,
                "the server kept acknowledging a stalled handler"
            );
        }
    })
    .await
    .unwrap();
    let (sock, tid, stalled_at) = acked;
    // The handler holds one chunk; a few more wait in the channel.
    assert!(
        (2..=6).contains(&stalled_at),
        "ACKs stopped at block {stalled_at}"
    );
    // Release the handler: the pending ACK arrives, then finish with a short block.
    log.gate.add_permits(1000);
    tokio::task::spawn_blocking(move || {
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 516];
        let (n, _) = sock.recv_from(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            &[0, 4, (stalled_at >> 8) as u8, stalled_at as u8]
        );
        let next = stalled_at + 1;
        let mut data = vec![0, 3];
        data.extend_from_slice(&next.to_be_bytes());
        data.extend_from_slice(b"end");
        sock.send_to(&data, tid).unwrap();
        let (n, _) = sock.recv_from(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            &[0, 4, (next >> 8) as u8, next as u8],
            "final ACK"
        );
    })
    .await
    .unwrap();
    assert_eq!(
        log.calls.load(Ordering::SeqCst),
        usize::from(stalled_at) + 1
    );
}

// ---- emmer::testing at the table level ----------------------------------------

#[tokio::test]
async fn table_level_requests_need_no_socket() {
    let app = api_app().state(Site("table"));
    let client: IpAddr = "192.0.2.10".parse().unwrap();
    let body = app
        .read("api/who")
        .from(SocketAddr::new(client, 5000))
        .await
        .unwrap();
    assert!(
        String::from_utf8(body)
            .unwrap()
            .starts_with("192.0.2.10:5000 ")
    );
    let up = Upload::from_bytes("abc");
    let log = UploadLog::default();
    log.gate.add_permits(10);
    assert!(
        slow_upload(up, State(log.clone())).await.is_ok(),
        "a handler is a plain function"
    );
    assert_eq!(log.calls.load(Ordering::SeqCst), 1);
}

// ---- async routes on the builder ------------------------------------------------

#[tokio::test]
async fn builder_async_routes_and_uploads() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let app = App::empty()
        .route_read_async(r"gen/(?P<n>\d+)", |req: Request| async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let n: usize = req.capture("n").unwrap().parse().unwrap();
            vec![b'g'; n]
        })
        .route_upload(r"in/.+", move |req: Request, mut up: Upload| {
            let sink = sink.clone();
            async move {
                if req.filename().ends_with(".exe") {
                    return Err(TftpError::access_violation("no executables"));
                }
                let data = up.to_vec().await?;
                sink.lock().unwrap().push((req.filename().to_owned(), data));
                Ok(())
            }
        });
    let server = TestServer::start(app).await;
    assert_eq!(
        server.client().get("gen/1300").await.unwrap(),
        vec![b'g'; 1300]
    );
    let data = noise(3000, 21);
    server.client().put("in/a.txt", &data).await.unwrap();
    assert_eq!(
        server
            .client()
            .put("in/b.exe", b"MZ")
            .await
            .unwrap_err()
            .code(),
        Some(ErrorCode::AccessViolation)
    );
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        &[("in/a.txt".to_owned(), data)]
    );
}

/// A plain handler streams the upload with blocking reads.
#[route_write(r"api/syncup/(?P<name>[a-z]+)")]
fn sync_upload(
    name: String,
    mut upload: Upload,
    State(log): State<UploadLog>,
) -> std::io::Result<()> {
    use std::io::Read;
    let mut data = Vec::new();
    upload.read_to_end(&mut data)?;
    let dir = log.dir.lock().unwrap().clone().unwrap();
    std::fs::write(dir.join(name), data)
}

#[tokio::test]
async fn a_plain_handler_streams_an_upload_with_blocking_reads() {
    let dir = TempDir::new("api-syncup");
    let (app, _log) = upload_app(&dir);
    let server = TestServer::start(app).await;
    let data = noise(40_000, 8);
    server
        .client()
        .windowsize(8)
        .put("api/syncup/plain", &data)
        .await
        .unwrap();
    assert_eq!(std::fs::read(dir.join("plain")).unwrap(), data);
}

// ---- builder routes: priority and limits ------------------------------------

/// A builder route given a priority goes before a macro route of priority 0;
/// without one it comes after; its limits apply.
#[tokio::test]
async fn builder_routes_take_a_priority_and_limits() {
    use emmer::RoutePattern;
    let after = App::empty()
        .macro_route("small_unit")
        .route_read(r"api/unit/\d+", |_: &Request| "builder");
    assert_eq!(after.read("api/unit/7").await.unwrap(), b"small 7");
    let before = App::empty().macro_route("small_unit").route_read(
        RoutePattern::new(r"api/unit/\d+").priority(1),
        |_: &Request| "builder",
    );
    assert_eq!(before.read("api/unit/7").await.unwrap(), b"builder");

    let limited = App::empty().route_write(
        RoutePattern::new("small/.+").max_upload(1000),
        |_: &Request, _data: Vec<u8>| (),
    );
    let server = TestServer::start(limited).await;
    server
        .client()
        .put("small/a", &noise(1000, 3))
        .await
        .unwrap();
    let e = server
        .client()
        .put("small/b", &noise(1001, 4))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::DiskFull), "{e}");
}

/// A test that blocks its only thread still gets answers: the server runs
/// on a runtime of its own.
#[tokio::test]
async fn a_test_that_blocks_does_not_freeze_its_server() {
    let server = TestServer::start(App::empty().route_read("x", |_: &Request| "x")).await;
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.send_to(b"\0\x01x\0octet\0", server.addr()).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = sock
        .recv_from(&mut buf)
        .expect("DATA 1 while the test blocks");
    assert_eq!(&buf[..n], b"\0\x03\0\x01x");
}

/// Picking routes: by name, by module, and the start-up errors of a name
/// that matches nothing.
#[tokio::test]
async fn a_test_picks_its_macro_routes() {
    let app = App::empty().macro_route("package");
    let routes = app.table().unwrap().routes();
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].name, "package");
    assert!(
        app.read("api/unit/7").await.is_err(),
        "small_unit not taken"
    );
    let e = App::empty()
        .macro_route("no_such_handler")
        .table()
        .unwrap_err();
    assert!(e.to_string().contains("\"no_such_handler\""), "{e}");
    assert!(
        e.to_string().contains("it::api::package"),
        "lists the routes: {e}"
    );
    let e = App::empty()
        .macro_routes_in("main::it::nowhere")
        .table()
        .unwrap_err();
    assert!(e.to_string().contains("main::it::nowhere"), "{e}");
    // The same route twice is one route.
    let twice = App::empty()
        .macro_route("package")
        .macro_route("api::package");
    assert_eq!(twice.table().unwrap().routes().len(), 1);
}

// ---- trace context ----------------------------------------------------------

#[route_read(r"api/trace(?:-.+)?")]
fn traced(trace: Option<emmer::Traceparent>, filename: &str) -> String {
    match trace {
        Some(t) => format!("{} {}", t.trace_id(), t.sampled()),
        None => format!("none {filename}"),
    }
}

#[tokio::test]
async fn a_handler_takes_the_traceparent_of_the_file_name() {
    let app = App::empty().macro_route("traced");
    assert_eq!(app.read("api/trace").await.unwrap(), b"none api/trace");
    let name = "api/trace-00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    assert_eq!(
        app.read(name).await.unwrap(),
        b"4bf92f3577b34da6a3ce929d0e0e4736 false"
    );
    // Not a valid traceparent (zero trace id): none.
    let zero = "api/trace-00-00000000000000000000000000000000-00f067aa0ba902b7-01";
    assert!(app.read(zero).await.unwrap().starts_with(b"none "));
}
