//! The same routes over HTTP (`App::http`), driven by curl and wget: GET,
//! HEAD, ranges, PUT, errors as statuses, upload limits, keep-alive, the
//! bounds on slow and hostile clients, and the same handler answering TFTP
//! and HTTP. The macro routes here start with `http/`.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use emmer::event::TransferEvent;
use emmer::route::{Kind, Transports};
use emmer::testing::TestServer;
use emmer::{
    App, ErrorCode, ReadBody, Request, RoutePattern, State, TftpError, TransferOutcome, Transport,
    Upload, route_read, route_write,
};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::support::{CLIENT_LIMIT, Output, TempDir, assert_bytes_eq, noise, run_async, which};

/// A response as curl saw it.
#[derive(Debug)]
struct Reply {
    status: u16,
    /// The header lines, lowercase names.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Runs curl with `args` (the URL among them), within the client limit.
async fn curl_raw(args: &[&str]) -> Output {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "60"]).args(args);
    run_async(cmd, None, CLIENT_LIMIT).await
}

/// `curl -i`: the last response's status, headers and body.
async fn curl(args: &[&str]) -> Reply {
    let mut all = vec!["-i"];
    all.extend_from_slice(args);
    let out = curl_raw(&all).await;
    out.assert_success();
    parse(&out.stdout)
}

/// Splits `curl -i` output; interim responses (`100 Continue`) are skipped.
fn parse(mut raw: &[u8]) -> Reply {
    loop {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let rest = &raw[end + 4..];
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {head:?}"));
        if status == 100 {
            raw = rest;
            continue;
        }
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        return Reply {
            status,
            headers,
            body: rest.to_vec(),
        };
    }
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}/{path}")
}

/// An app whose events arrive on the returned channel.
fn recorded(app: App) -> (App, UnboundedReceiver<TransferEvent>) {
    let (tx, rx) = unbounded_channel();
    let app = app.on_transfer(move |ev: &TransferEvent| {
        let _ = tx.send(ev.clone());
    });
    (app, rx)
}

async fn next(rx: &mut UnboundedReceiver<TransferEvent>) -> TransferEvent {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an event within 10 s")
        .expect("the server is still there")
}

/// Uploads kept in memory: (name, bytes).
type Stored = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A server over a directory of files, a generated body of unknown size,
/// and uploads kept in memory.
struct Files {
    server: TestServer,
    http: SocketAddr,
    dir: TempDir,
    stored: Stored,
}

async fn files(app: impl FnOnce(App) -> App) -> Files {
    let dir = TempDir::new("http");
    let root = dir.join("");
    let stored = Stored::default();
    let (into, saves) = (stored.clone(), root.clone());
    let base = App::empty()
        .route_read_async(r"files/(?P<name>[a-z0-9.]+)", move |req: Request| {
            let path = root.join(req.capture("name").unwrap());
            async move { Ok::<_, TftpError>(ReadBody::file(path).await?) }
        })
        .route_read(r"gen/(?P<n>\d+)", |req: &Request| {
            let n: usize = req.capture("n").unwrap().parse().unwrap();
            ReadBody::from_reader(std::io::Cursor::new(noise(n, 9)), None)
        })
        .route_write(
            RoutePattern::new(r"mem/.+").max_upload(100_000),
            move |req: &Request, data: Vec<u8>| {
                into.lock().unwrap().push((req.filename().to_owned(), data));
            },
        )
        .route_upload(
            RoutePattern::new(r"disk/(?P<name>[a-z0-9.]+)").max_upload(1_000_000),
            move |req: Request, upload: Upload| {
                let path = saves.join(req.capture("name").unwrap());
                async move { upload.save_atomic(path).fsync(false).await.map(drop) }
            },
        )
        .http(loopback());
    let server = TestServer::start(app(base)).await;
    let http = server.http_addr().expect("the app serves HTTP");
    Files {
        server,
        http,
        dir,
        stored,
    }
}

#[tokio::test]
async fn curl_gets_heads_and_asks_for_ranges() {
    let f = files(|a| a).await;
    let data = noise(300_000, 3);
    f.dir.write("kernel", &data);
    let u = url(f.http, "files/kernel");

    let r = curl(&[&u]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("300000"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_bytes_eq(&r.body, &data, "GET");

    // HEAD: the headers of the GET, no body (UEFI HTTP Boot asks this way).
    let r = curl(&["-I", &u]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("300000"));
    assert!(r.body.is_empty());

    for (range, first, last) in [
        ("0-99", 0, 99),
        ("299990-", 299_990, 299_999),
        ("-10", 299_990, 299_999),
        ("150000-199999", 150_000, 199_999),
        ("299000-999999", 299_000, 299_999),
    ] {
        let r = curl(&["-r", range, &u]).await;
        assert_eq!(r.status, 206, "{range}");
        let want = format!("bytes {first}-{last}/300000");
        assert_eq!(r.header("content-range"), Some(want.as_str()), "{range}");
        assert_eq!(r.body, &data[first..=last], "{range}");
    }
    let r = curl(&["-r", "300000-", &u]).await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */300000"));

    // Ranges of bytes in memory too.
    let r = curl(&["-r", "5-9", &url(f.http, "gen/100")]).await;
    assert_eq!(r.status, 200, "a stream of unknown size has no ranges");
    assert_eq!(r.header("accept-ranges"), Some("none"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body, noise(100, 9));

    // An empty file: a length of 0.
    f.dir.write("empty", b"");
    let r = curl(&[&url(f.http, "files/empty")]).await;
    assert_eq!((r.status, r.header("content-length")), (200, Some("0")));
    assert!(r.body.is_empty());
    drop(f.server);
}

/// A stream of unknown size is measured up to the server's limit, as for
/// TFTP's tsize, so a short generated body gets its length; a longer one is
/// sent chunked.
#[tokio::test]
async fn streams_get_a_length_when_measured_and_chunks_otherwise() {
    let f = files(|mut a| {
        a.config_mut().tsize_measure_limit = 1000;
        a
    })
    .await;
    let r = curl(&[&url(f.http, "gen/1000")]).await;
    assert_eq!(r.header("content-length"), Some("1000"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.body, noise(1000, 9));
    let r = curl(&["-r", "10-19", &url(f.http, "gen/1000")]).await;
    assert_eq!((r.status, &r.body[..]), (206, &noise(1000, 9)[10..20]));
    let r = curl(&[&url(f.http, "gen/200000")]).await;
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_bytes_eq(&r.body, &noise(200_000, 9), "chunked");
}

#[tokio::test]
async fn tftp_errors_become_statuses_with_the_message() {
    let app = App::empty()
        .route_read(r"err/(?P<code>\d)", |req: &Request| {
            let code: u16 = req.capture("code").unwrap().parse().unwrap();
            let code = ErrorCode::from_u16(code).unwrap();
            Err::<&str, _>(TftpError::new(
                code,
                format!("refused with {}", code.as_u16()),
            ))
        })
        .route_read("none", |_: &Request| None::<String>)
        .http(loopback());
    let server = TestServer::start(app).await;
    let http = server.http_addr().unwrap();
    for (code, status) in [(1, 404), (2, 403), (3, 507), (6, 409), (0, 500), (4, 500)] {
        let r = curl(&[&url(http, &format!("err/{code}"))]).await;
        assert_eq!(r.status, status, "code {code}");
        assert_eq!(r.body, format!("refused with {code}\n").as_bytes());
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    }
    // A missing file: None, and a name no route takes.
    for path in ["none", "no/such/file"] {
        let r = curl(&[&url(http, path)]).await;
        assert_eq!(
            (r.status, &r.body[..]),
            (404, &b"file not found\n"[..]),
            "{path}"
        );
    }
    // curl -f turns it into its exit code 22, as scripts see it.
    let out = curl_raw(&["-f", "-o", "/dev/null", &url(http, "none")]).await;
    assert_eq!(out.status.code(), Some(22), "{}", out.text());
    // A write to a name no write route takes: 403.
    let r = curl(&["-T", "-", &url(http, "none")]).await;
    assert_eq!(r.status, 403);
    // Other methods: 405.
    let r = curl(&["-X", "DELETE", &url(http, "none")]).await;
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD, PUT")));
}

#[tokio::test]
async fn put_streams_into_upload_and_data_handlers() {
    let f = files(|a| a).await;
    let data = noise(700_000, 4);
    let src = f.dir.write("src.bin", &data);
    let src = src.to_string_lossy().into_owned();
    // Streamed into save_atomic.
    let r = curl(&["-T", &src, &url(f.http, "disk/copy.bin")]).await;
    assert_eq!(r.status, 204, "{:?}", String::from_utf8_lossy(&r.body));
    assert_bytes_eq(
        &std::fs::read(f.dir.join("copy.bin")).unwrap(),
        &data,
        "PUT",
    );
    // Chunked (no length): the same.
    let out = {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-i", "--max-time", "60", "-T", "-"])
            .arg(url(f.http, "disk/chunked.bin"));
        run_async(cmd, Some(data.clone()), CLIENT_LIMIT).await
    };
    out.assert_success();
    assert_eq!(parse(&out.stdout).status, 204);
    assert_bytes_eq(
        &std::fs::read(f.dir.join("chunked.bin")).unwrap(),
        &data,
        "chunked PUT",
    );
    // A `data` handler gets the whole body.
    let small = noise(50_000, 5);
    let path = f.dir.write("small.bin", &small);
    let r = curl(&["-T", &path.to_string_lossy(), &url(f.http, "mem/a.cfg")]).await;
    assert_eq!(r.status, 204);
    let stored = f.stored.lock().unwrap().clone();
    assert_eq!(stored, [("mem/a.cfg".to_owned(), small)]);
}

#[tokio::test]
async fn an_upload_over_the_limit_is_413_and_stores_nothing() {
    let f = files(|a| a).await;
    let big = noise(1_500_000, 6);
    let src = f.dir.write("big.bin", &big).to_string_lossy().into_owned();
    // Announced: refused before the body is sent.
    let r = curl(&["-T", &src, &url(f.http, "disk/big.bin")]).await;
    assert_eq!(r.status, 413);
    assert_eq!(
        r.body,
        b"upload of 1500000 bytes exceeds the limit of 1000000 bytes\n"
    );
    // Chunked: cut off when it goes past the limit; the handler's upload is
    // aborted, so save_atomic leaves no file (nor its temporary file).
    let out = {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-i", "--max-time", "60", "-T", "-"])
            .arg(url(f.http, "disk/big.bin"));
        run_async(cmd, Some(big.clone()), CLIENT_LIMIT).await
    };
    // curl may see the connection close while it still sends.
    if out.status.success() {
        assert_eq!(parse(&out.stdout).status, 413, "{}", out.text());
    }
    // The handler cleans up on its own task: give it a moment.
    for _ in 0..50 {
        if std::fs::read_dir(f.dir.join("")).unwrap().count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left: Vec<_> = std::fs::read_dir(f.dir.join(""))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["big.bin"], "only the source file");
    // A data route's limit (100 000) too.
    let r = curl(&["-T", &src, &url(f.http, "mem/x")]).await;
    assert_eq!(r.status, 413);
    assert!(f.stored.lock().unwrap().is_empty());
}

#[tokio::test]
async fn uploads_held_whole_share_the_memory_budget() {
    let f = files(|mut a| {
        a.config_mut().max_buffered_uploads = 16 * 1024;
        a
    })
    .await;
    let path = f.dir.write("x.bin", &noise(50_000, 7));
    let r = curl(&["-T", &path.to_string_lossy(), &url(f.http, "mem/x")]).await;
    assert_eq!(r.status, 507, "ERROR 3: the budget is spent");
    assert!(f.stored.lock().unwrap().is_empty());
}

#[tokio::test]
async fn connections_are_kept_alive() {
    let f = files(|a| a).await;
    f.dir.write("a", b"first");
    f.dir.write("b", b"second");
    let out = curl_raw(&["-v", &url(f.http, "files/a"), &url(f.http, "files/b")]).await;
    out.assert_success();
    let text = out.text();
    assert!(text.contains("firstsecond"), "{text}");
    assert!(text.contains("Re-using existing connection"), "{text}");
}

#[tokio::test]
async fn the_prefix_holds_the_names() {
    let app = App::empty()
        .route_read(r"boot\.ipxe", |_: &Request| "#!ipxe\n")
        .http(loopback())
        .http_prefix("/tftp/");
    let server = TestServer::start(app).await;
    let http = server.http_addr().unwrap();
    let r = curl(&[&url(http, "tftp/boot.ipxe")]).await;
    assert_eq!((r.status, &r.body[..]), (200, &b"#!ipxe\n"[..]));
    let r = curl(&[&url(http, "boot.ipxe")]).await;
    assert_eq!(r.status, 404);
    // Percent-encoded names are decoded.
    let r = curl(&[&url(http, "tftp/boot%2Eipxe")]).await;
    assert_eq!(r.status, 200);
}

// ---- one handler, two transports -------------------------------------------

/// What `hello` says: the same function over TFTP and HTTP.
#[derive(Debug, Clone)]
struct Greeting(&'static str);

#[route_read(r"http/hello/(?P<name>[a-z]+)")]
fn hello(
    name: String,
    client_host: IpAddr,
    transport: Transport,
    State(g): State<Greeting>,
) -> String {
    format!("{} {name} from {client_host} over {transport}\n", g.0)
}

#[route_read(r"http/only-tftp", transports = "tftp")]
fn only_tftp() -> &'static str {
    "tftp"
}

#[route_read(r"http/either", transports = "tftp")]
fn either_tftp() -> &'static str {
    "by tftp"
}

#[route_read(r"http/either", transports = "http")]
fn either_http() -> &'static str {
    "by http"
}

#[route_write(r"http/up/(?P<name>[a-z]+)")]
fn http_up(
    name: String,
    data: String,
    transport: Transport,
    State(g): State<Arc<Mutex<Vec<String>>>>,
) {
    g.lock().unwrap().push(format!("{name} {transport} {data}"));
}

#[tokio::test]
async fn the_same_handler_answers_tftp_and_http() {
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let app = App::empty()
        .macro_routes_in(module_path!())
        .state(Greeting("hello"))
        .state(log.clone())
        .http(loopback());
    let server = TestServer::start(app).await;
    let http = server.http_addr().unwrap();
    let tftp = server.client().get("http/hello/ada").await.unwrap();
    assert_eq!(tftp, b"hello ada from 127.0.0.1 over tftp\n");
    let r = curl(&[&url(http, "http/hello/ada")]).await;
    assert_eq!(r.body, b"hello ada from 127.0.0.1 over http\n");
    assert_eq!(r.header("content-length"), Some("35"));
    // A capture that does not match is a 404 over HTTP as it is ERROR 1.
    assert_eq!(curl(&[&url(http, "http/hello/ADA")]).await.status, 404);

    // A route kept to TFTP is not seen over HTTP, and one name can have a
    // route per transport.
    assert_eq!(
        server.client().get("http/only-tftp").await.unwrap(),
        b"tftp"
    );
    assert_eq!(curl(&[&url(http, "http/only-tftp")]).await.status, 404);
    assert_eq!(
        server.client().get("http/either").await.unwrap(),
        b"by tftp"
    );
    assert_eq!(curl(&[&url(http, "http/either")]).await.body, b"by http");

    // The same write handler, both ways.
    server.client().put("http/up/a", b"one").await.unwrap();
    let out = {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-i", "--max-time", "60", "-T", "-"])
            .arg(url(http, "http/up/b"));
        run_async(cmd, Some(b"two".to_vec()), CLIENT_LIMIT).await
    };
    assert_eq!(parse(&out.stdout).status, 204, "{}", out.text());
    assert_eq!(*log.lock().unwrap(), ["a tftp one", "b http two"]);

    // Table-level requests can say their transport too.
    let app = App::empty()
        .macro_route("either_tftp")
        .macro_route("either_http")
        .macro_route("only_tftp");
    assert_eq!(
        app.read("http/either")
            .transport(Transport::Http)
            .await
            .unwrap(),
        b"by http"
    );
    let routes = app.table().unwrap().routes();
    let only = routes.iter().find(|r| r.name == "only_tftp").unwrap();
    assert_eq!(only.transports, Transports::TFTP);
}

#[tokio::test]
async fn events_carry_the_transport_and_the_status() {
    let (app, mut rx) = recorded(
        App::empty()
            .route_read("motd", |_: &Request| "hello\n")
            .route_write("up", |_: &Request, _: Vec<u8>| ())
            .http(loopback()),
    );
    let server = TestServer::start(app).await;
    let http = server.http_addr().unwrap();
    curl(&[&url(http, "motd")]).await;
    let ev = next(&mut rx).await;
    assert_eq!(ev.transport, Transport::Http);
    assert_eq!(
        (ev.kind, ev.filename.as_str(), ev.bytes),
        (Kind::Read, "motd", 6)
    );
    assert_eq!(
        (ev.outcome.clone(), ev.status),
        (TransferOutcome::Complete, Some(200))
    );
    assert_eq!(ev.route.as_deref(), Some("read route \"motd\""));
    assert_eq!(ev.local, http);
    assert!(ev.peer.ip().is_loopback());

    curl(&["-I", &url(http, "motd")]).await;
    let ev = next(&mut rx).await;
    assert_eq!(
        (ev.outcome.clone(), ev.bytes),
        (TransferOutcome::SizeProbe, 0)
    );

    curl(&[&url(http, "missing")]).await;
    let ev = next(&mut rx).await;
    assert_eq!(ev.outcome.code(), Some(1));
    assert_eq!(ev.status, Some(404));

    let out = {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-o", "/dev/null", "-T", "-"])
            .arg(url(http, "up"));
        run_async(cmd, Some(vec![7; 1000]), CLIENT_LIMIT).await
    };
    out.assert_success();
    let ev = next(&mut rx).await;
    assert_eq!(
        (ev.kind, ev.bytes, ev.status),
        (Kind::Write, 1000, Some(204))
    );
    assert_eq!(ev.outcome, TransferOutcome::Complete);

    server.client().get("motd").await.unwrap();
    assert_eq!(next(&mut rx).await.transport, Transport::Tftp);
}

// ---- bounds --------------------------------------------------------------

/// Reads what the server sends until it closes, within `limit`.
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> Vec<u8> {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got
}

#[tokio::test]
async fn slow_and_oversized_heads_are_cut_off() {
    let mut app = App::empty()
        .route_read("x", |_: &Request| "x")
        .http(loopback());
    app.config_mut().http.header_timeout = Duration::from_millis(300);
    let server = TestServer::start(app).await;
    let http = server.http_addr().unwrap();
    tokio::task::spawn_blocking(move || {
        // A head that never ends: closed after the header timeout.
        let mut s = TcpStream::connect(http).unwrap();
        s.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n").unwrap();
        let t0 = std::time::Instant::now();
        let got = read_until_closed(&mut s, Duration::from_secs(10));
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "closed after the timeout"
        );
        assert!(
            got.is_empty() || got.starts_with(b"HTTP/1.1 408"),
            "{got:?}"
        );
        // A head larger than the limit: 431.
        let mut s = TcpStream::connect(http).unwrap();
        let big = format!(
            "GET /x HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
            "a".repeat(20_000)
        );
        let _ = s.write_all(big.as_bytes());
        let got = read_until_closed(&mut s, Duration::from_secs(10));
        assert!(
            got.starts_with(b"HTTP/1.1 431"),
            "{:?}",
            String::from_utf8_lossy(&got)
        );
        // An idle kept-alive connection is closed after the same timeout.
        let mut s = TcpStream::connect(http).unwrap();
        s.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        let got = read_until_closed(&mut s, Duration::from_secs(10));
        assert!(got.starts_with(b"HTTP/1.1 200"), "{got:?}");
        assert!(got.ends_with(b"\r\n\r\nx"), "{got:?}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_reported() {
    let big = Arc::new(noise(64 << 20, 8));
    let body = big.clone();
    let (mut app, mut rx) = recorded(
        App::empty()
            .route_read("big", move |_: &Request| {
                emmer::Bytes::from((*body).clone())
            })
            .http(loopback()),
    );
    app.config_mut().http.stall_timeout = Duration::from_millis(500);
    let server = TestServer::start(app).await;
    let http = server.http_addr().unwrap();
    let t0 = std::time::Instant::now();
    let mut s = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(http).unwrap();
        s.write_all(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        // Read a little, then nothing.
        let mut buf = [0u8; 1000];
        s.read_exact(&mut buf).unwrap();
        s
    })
    .await
    .unwrap();
    let ev = next(&mut rx).await;
    assert_eq!(ev.outcome, TransferOutcome::TimedOut);
    assert!(ev.bytes < big.len() as u64);
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    // And the connection is gone.
    tokio::task::spawn_blocking(move || {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut sink = vec![0u8; 1 << 20];
        loop {
            match s.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap();
}

// ---- wget ------------------------------------------------------------------

/// wget, or `None` after saying why the test is skipped (under CI a missing
/// wget fails: the CI script installs it).
fn wget() -> Option<std::path::PathBuf> {
    let found = which("wget");
    if found.is_none() {
        let why = "wget is not installed (apt-get install wget)";
        if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
            panic!("{why}; CI must install it");
        }
        eprintln!("skipped: {why}");
    }
    found
}

#[tokio::test]
async fn wget_fetches_files_and_reports_missing_ones() {
    let Some(wget) = wget() else { return };
    let f = files(|a| a).await;
    let data = noise(1_000_000, 10);
    f.dir.write("initrd.img", &data);
    let out_path = f.dir.join("got.img");
    let mut cmd = Command::new(&wget);
    cmd.args(["-q", "-T", "30", "-O"])
        .arg(&out_path)
        .arg(url(f.http, "files/initrd.img"));
    run_async(cmd, None, CLIENT_LIMIT).await.assert_success();
    assert_bytes_eq(&std::fs::read(&out_path).unwrap(), &data, "wget");
    // Resumed: wget -c asks for the rest with a range.
    std::fs::write(&out_path, &data[..400_000]).unwrap();
    let mut cmd = Command::new(&wget);
    cmd.args(["-q", "-c", "-T", "30", "-O"])
        .arg(&out_path)
        .arg(url(f.http, "files/initrd.img"));
    run_async(cmd, None, CLIENT_LIMIT).await.assert_success();
    assert_bytes_eq(&std::fs::read(&out_path).unwrap(), &data, "wget -c");
    // A missing file: wget's "server error response" exit status, 8.
    let mut cmd = Command::new(&wget);
    cmd.args(["-q", "-T", "30", "-O", "/dev/null"])
        .arg(url(f.http, "files/none"));
    let out = run_async(cmd, None, CLIENT_LIMIT).await;
    assert_eq!(out.status.code(), Some(8), "{}", out.text());
}

/// `[::]` takes IPv4 clients too, as on the TFTP side, and they are IPv4 to
/// handlers.
#[tokio::test]
async fn a_dual_stack_listener_serves_ipv4_clients_as_ipv4() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: no IPv6 on this machine");
        return;
    }
    let app = App::empty()
        .route_read("who", |req: &Request| req.client_host().to_string())
        .http("[::]:0".parse().unwrap());
    let server = TestServer::start(app).await;
    let port = server.http_addr().unwrap().port();
    let r = curl(&[&format!("http://127.0.0.1:{port}/who")]).await;
    assert_eq!(r.body, b"127.0.0.1");
    let r = curl(&[&format!("http://[::1]:{port}/who")]).await;
    assert_eq!(r.body, b"::1");
}

/// On shutdown a download under way finishes within the grace period, and
/// no new connection is taken.
#[tokio::test]
async fn shutdown_lets_a_download_under_way_finish() {
    use tokio::io::AsyncWriteExt;
    let app = App::empty()
        .route_read_async("slow", |_: Request| async {
            // 20 pieces, 50 ms apart: about a second.
            let (mut w, r) = tokio::io::duplex(4096);
            tokio::spawn(async move {
                for i in 0..20u8 {
                    if w.write_all(&[i; 1000]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            });
            ReadBody::from_reader(r, Some(20_000))
        })
        .http(loopback());
    let server = TestServer::start(app).await;
    let http = server.http_addr().unwrap();
    let u = url(http, "slow");
    let download = tokio::spawn(async move { curl(&[&u]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(server);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        TcpStream::connect_timeout(&http, Duration::from_secs(2)).is_err(),
        "no new connection once stopping"
    );
    let r = download.await.unwrap();
    assert_eq!(r.status, 200);
    let want: Vec<u8> = (0..20u8).flat_map(|i| [i; 1000]).collect();
    assert_eq!(r.body, want);
}
