//! Shared bodies: a storm of clients on a shared route runs its handler
//! once; a UEFI size probe and the download after it get the same bytes;
//! the body goes when its time is up.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use emmer::testing::TestServer;
use emmer::{App, Request, RoutePattern, route_read};

static STORM_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Slow enough that every client of the storm asks while it runs.
#[route_read(r"shared/menu-(?P<site>[a-z]+)\.ipxe", share_for = "5s")]
fn shared_menu(site: String) -> String {
    let n = STORM_CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    std::thread::sleep(Duration::from_millis(300));
    format!("#!ipxe\necho {site} call {n}\n{}", "x".repeat(3000))
}

/// Many clients at once, each from its own port, on a macro route with
/// `share_for`: one call of the handler, the same body for all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_on_a_shared_route_runs_the_handler_once() {
    let server = TestServer::start(App::empty().macro_route("shared_menu")).await;
    let clients: Vec<_> = (0..64)
        .map(|_| {
            let client = server.client().blksize(1428).tsize(true);
            tokio::spawn(async move { client.get("shared/menu-lab.ipxe").await })
        })
        .collect();
    let mut bodies = Vec::new();
    for c in clients {
        bodies.push(c.await.unwrap().expect("every client gets the file"));
    }
    assert_eq!(
        STORM_CALLS.load(Ordering::SeqCst),
        1,
        "one call for 64 clients"
    );
    assert!(bodies[0].starts_with(b"#!ipxe\necho lab call 1\n"));
    assert!(bodies.iter().all(|b| *b == bodies[0]));
    // Another name is another call.
    let other = server.client().get("shared/menu-dc.ipxe").await.unwrap();
    assert!(other.starts_with(b"#!ipxe\necho dc call 2\n"));
}

/// UEFI firmware asks for the size alone, answers the OACK with ERROR 8,
/// then downloads: both see one body, whatever the handler would give the
/// second time. Once the body's time is up, the handler runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_size_probe_and_its_download_see_the_same_bytes() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let app = App::empty().route_read(
        RoutePattern::new(r"grub/(?P<mac>[0-9a-f]{12})\.cfg").share_for(Duration::from_millis(800)),
        |req: &Request| {
            // A body that differs at each call (a timestamp, a token...).
            let n = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
            format!(
                "set mac={}\n{}",
                req.capture("mac").unwrap(),
                "#".repeat(n * 100)
            )
        },
    );
    let server = TestServer::start(app).await;
    let name = "grub/0123456789ab.cfg";
    let addr = server.addr();
    let probed = tokio::task::spawn_blocking(move || {
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let rrq = format!("\0\x01{name}\0octet\0tsize\x000\0");
        client.send_to(rrq.as_bytes(), addr).unwrap();
        let mut buf = [0u8; 512];
        let (n, tid) = client.recv_from(&mut buf).expect("an OACK within 5 s");
        client.send_to(b"\0\x05\0\x08size probe\0", tid).unwrap();
        buf[..n].to_vec()
    })
    .await
    .unwrap();
    let head = "set mac=0123456789ab\n".len();
    let size = head + 100;
    assert_eq!(probed, format!("\0\x06tsize\0{size}\0").as_bytes());
    let (body, info) = server
        .client()
        .tsize(true)
        .get_with_info(name)
        .await
        .unwrap();
    assert_eq!(info.option("tsize"), Some(size.to_string().as_str()));
    assert_eq!(body.len(), size);
    assert_eq!(
        CALLS.load(Ordering::SeqCst),
        1,
        "the download used the probe's body"
    );
    // Its time is up: computed again.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let again = server.client().get(name).await.unwrap();
    assert_eq!(again.len(), head + 200);
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);
}
