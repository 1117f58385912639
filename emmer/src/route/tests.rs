use super::*;
use crate::ErrorCode;

fn def(
    kind: Kind,
    pattern: &'static str,
    priority: i32,
    file: &'static str,
    line: u32,
) -> RouteSpec {
    fn read(_: &Request) -> Result<ReadCall, NoMatch> {
        Ok(ReadCall::reject(TftpError::undefined("test")))
    }
    fn write(_: &Request) -> Result<WriteCall, NoMatch> {
        Ok(WriteCall::reject(TftpError::undefined("test")))
    }
    RouteSpec::from_def(Box::leak(Box::new(RouteDef {
        pattern,
        priority,
        limits: RouteLimits::default(),
        sharing: None,
        transports: Transports::ALL,
        name: "handler",
        location: Location::new(file, line, 1),
        module: "tests",
        needs: &[],
        handler: match kind {
            Kind::Read => RouteFn::Read(read),
            Kind::Write => RouteFn::Write(write),
        },
    })))
}

fn never() -> Handler {
    Handler::Read(Arc::new(|_: &Request| Err(NoMatch)))
}

fn order(table: &RouteTable) -> Vec<String> {
    table
        .routes()
        .into_iter()
        .map(|r| format!("{} {}", r.kind.as_str(), r.pattern))
        .collect()
}

/// A small deterministic shuffle (xorshift), so the test needs no crate.
fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

#[test]
fn order_is_priority_then_file_then_line_whatever_the_input_order() {
    let specs = vec![
        def(Kind::Read, "a", 0, "src/b.rs", 10),
        def(Kind::Read, "b", 0, "src/a.rs", 20),
        def(Kind::Read, "c", 0, "src/a.rs", 5),
        def(Kind::Read, "d", 5, "src/z.rs", 1),
        def(Kind::Read, "e", -1, "src/a.rs", 1),
        def(Kind::Write, "f", 0, "src/a.rs", 30),
        RouteSpec::builder("g".into(), 0, 0, never()),
        RouteSpec::builder("h".into(), 0, 1, never()),
    ];
    let expected = vec![
        "read d", "read c", "read b", "read a", "read g", "read h", "read e", "write f",
    ];
    for seed in 1..50u64 {
        let mut s = specs.clone();
        shuffle(&mut s, seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let table = RouteTable::build(s).unwrap();
        assert_eq!(order(&table), expected, "seed {seed}");
    }
}

#[test]
fn duplicate_route_names_both_places() {
    let err = RouteTable::build(vec![
        def(Kind::Read, "x.*", 0, "src/one.rs", 3),
        def(Kind::Write, "x.*", 0, "src/one.rs", 4),
        def(Kind::Read, "x.*", 0, "src/two.rs", 9),
    ])
    .expect_err("duplicate read routes must be refused");
    let msg = err.to_string();
    assert!(
        msg.contains("src/one.rs:3:1") && msg.contains("src/two.rs:9:1"),
        "{msg}"
    );
    assert!(msg.contains("read") && msg.contains("\"x.*\""), "{msg}");
}

#[test]
fn invalid_builder_pattern_is_a_startup_error() {
    let err = RouteTable::build(vec![RouteSpec::builder("(".into(), 0, 0, never())])
        .expect_err("an invalid regex must be refused");
    assert!(err.to_string().contains("App builder route #1"), "{err}");
}

/// A route that answers with an error carrying `tag`, so a test can
/// see which route took a request.
fn tagged(kind: Kind, pattern: &str, tag: &'static str, index: usize) -> RouteSpec {
    // A capture named `n` must be a number, or the route does not match.
    fn numeric(req: &Request) -> Result<(), NoMatch> {
        match req.capture("n") {
            Some(n) => n.parse::<u32>().map(drop).map_err(|_| NoMatch),
            None => Ok(()),
        }
    }
    let handler = match kind {
        Kind::Read => Handler::Read(Arc::new(move |req: &Request| {
            numeric(req)?;
            Ok(ReadCall::reject(TftpError::undefined(tag)))
        })),
        Kind::Write => Handler::Write(Arc::new(move |req: &Request| {
            numeric(req)?;
            Ok(WriteCall::reject(TftpError::undefined(tag)))
        })),
    };
    RouteSpec::builder(pattern.into(), 0, index, handler)
}

async fn read_tag(table: &RouteTable, name: &str) -> Result<String, TftpError> {
    let d = table.dispatch_read(&Request::builder(name).build())?;
    Ok(d.call.run().await.unwrap_err().message().to_owned())
}

async fn write_tag(table: &RouteTable, name: &str) -> Result<String, TftpError> {
    let d = table.dispatch_write(&Request::builder(name).build())?;
    let verdict = d.call.start(crate::Upload::from_bytes("")).await.unwrap();
    Ok(verdict.unwrap_err().message().to_owned())
}

#[tokio::test]
async fn patterns_match_the_whole_name_and_failed_captures_fall_through() {
    let table = RouteTable::build(vec![
        tagged(Kind::Read, r"boot/(?P<n>\w+)\.cfg", "numbered", 0),
        tagged(Kind::Read, r"boot/.*", "any", 1),
        tagged(Kind::Write, r"up/.*", "upload", 2),
    ])
    .unwrap();
    assert_eq!(read_tag(&table, "boot/7.cfg").await.unwrap(), "numbered");
    // The capture does not parse as u32: the next route takes it.
    assert_eq!(read_tag(&table, "boot/x.cfg").await.unwrap(), "any");
    // Not anchored at the start or the end: no match.
    let e = read_tag(&table, "x/boot/7.cfg").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::FileNotFound);
    assert_eq!(read_tag(&table, "boot/7.cfg.bak").await.unwrap(), "any");
    let e = read_tag(&table, "up/a").await.unwrap_err();
    assert_eq!(
        e.code(),
        ErrorCode::FileNotFound,
        "a write route does not serve reads"
    );
    let e = write_tag(&table, "boot/7.cfg").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::AccessViolation);
    assert!(
        !e.message().contains("127.0.0.1"),
        "no client address in {e}"
    );
    assert_eq!(write_tag(&table, "up/a").await.unwrap(), "upload");
}

#[tokio::test]
async fn a_shared_route_binds_each_request_and_calls_once_per_name() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let handler = Handler::Read(Arc::new(move |req: &Request| {
        // Captures still decide whether the route matches.
        let n: u32 = req.capture("n").unwrap().parse().map_err(|_| NoMatch)?;
        let runs = counted.clone();
        Ok(ReadCall::asynchronous(async move {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            format!("n={n}")
        }))
    }));
    let mut spec = RouteSpec::builder(r"(?P<n>\w+)".into(), 0, 0, handler);
    spec.sharing = Some(Sharing::new(Duration::from_secs(5)));
    let table = RouteTable::build(vec![spec]).unwrap();
    let mut calls = Vec::new();
    for (i, name) in ["7", "7", "8", "7", "8"].iter().enumerate() {
        let peer = std::net::SocketAddr::from(([10, 0, 0, i as u8], 1000 + i as u16));
        let req = Request::builder(*name).peer(peer).build();
        calls.push(table.dispatch_read(&req).unwrap().call.start());
    }
    let mut bodies = Vec::new();
    for c in calls {
        let body = crate::handler::call::verdict(c.await).unwrap();
        let crate::handler::response::BodyKind::Bytes(b) = body.kind else {
            panic!("a shared body is bytes")
        };
        bodies.push(b);
    }
    assert_eq!(bodies, ["n=7", "n=7", "n=8", "n=7", "n=8"]);
    assert_eq!(runs.load(Ordering::SeqCst), 2, "one call per name");
    let e = table.dispatch_read(&Request::builder("x").build()).err();
    assert_eq!(
        e.map(|e| e.code()),
        Some(ErrorCode::FileNotFound),
        "x is no number"
    );
}

#[test]
fn a_write_route_cannot_share() {
    let handler = Handler::Write(Arc::new(|_: &Request| Err(NoMatch)));
    let mut spec = RouteSpec::builder("up/.+".into(), 0, 0, handler);
    spec.sharing = Some(Sharing::new(Duration::from_secs(1)));
    let err = RouteTable::build(vec![spec]).unwrap_err().to_string();
    assert!(
        err.contains("\"up/.+\"") && err.contains("only read routes"),
        "{err}"
    );
}

#[tokio::test]
async fn the_request_a_route_sees_has_its_captures_and_shares_the_rest() {
    let pattern = r"(?P<dir>\w+)/(?P<n>\d+)(?P<ext>\.cfg)?";
    let seen = Handler::Read(Arc::new(|req: &Request| {
        let req = req.clone();
        Ok(ReadCall::blocking(move || {
            let caps: Vec<String> = req
                .captures()
                .map(|(k, v)| format!("{k}={}", v.unwrap_or("-")))
                .collect();
            format!(
                "{} {}",
                caps.join(","),
                req.option("BLKSIZE").unwrap_or("?")
            )
        }))
    }));
    let table = RouteTable::build(vec![RouteSpec::builder(pattern.into(), 0, 0, seen)]).unwrap();
    let req = Request::builder("boot/42")
        .option("blksize", "1428")
        .build();
    let d = table.dispatch_read(&req).unwrap();
    assert_eq!(*d.route.name, format!("read route {pattern:?}"));
    assert_eq!(*d.route.pattern, *pattern);
    let body = d.call.run().await.unwrap();
    let crate::handler::response::BodyKind::Bytes(b) = body.kind else {
        panic!("a string body is bytes")
    };
    assert_eq!(&b[..], b"dir=boot,n=42,ext=- 1428");
}

#[test]
fn one_pattern_may_have_a_route_per_transport() {
    let with = |t: Transports| {
        let mut r = RouteSpec::builder("x".into(), 0, 0, never());
        r.transports = t;
        r
    };
    assert!(RouteTable::build(vec![with(Transports::TFTP), with(Transports::HTTP)]).is_ok());
    for (a, b) in [
        (Transports::ALL, Transports::HTTP),
        (Transports::TFTP, Transports::TFTP),
    ] {
        let err = RouteTable::build(vec![with(a), with(b)]).err();
        assert!(
            matches!(err, Some(Error::DuplicateRoute { .. })),
            "{a} and {b}"
        );
    }
}

#[tokio::test]
async fn a_route_kept_to_one_transport_is_not_seen_by_the_other() {
    let mut tftp = tagged(Kind::Read, "boot/.*", "tftp only", 0);
    tftp.transports = Transports::TFTP;
    let table = RouteTable::build(vec![tftp, tagged(Kind::Read, ".*", "any", 1)]).unwrap();
    let tag = |t: Transport| {
        let d = table.dispatch_read(&Request::builder("boot/x").transport(t).build());
        async move {
            d.unwrap()
                .call
                .run()
                .await
                .unwrap_err()
                .message()
                .to_owned()
        }
    };
    assert_eq!(tag(Transport::Tftp).await, "tftp only");
    assert_eq!(
        tag(Transport::Http).await,
        "any",
        "falls through to the next route"
    );
}
