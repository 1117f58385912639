//! Transfers over `emmer::testing::SimNet`, a simulated network on tokio's
//! paused clock: seconds of loss recovery run in milliseconds, repeatably.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use emmer::testing::{SimNet, TestServer};
use emmer::{App, Request};

use super::support::noise;

fn app(body: Vec<u8>, stored: Arc<Mutex<Option<Vec<u8>>>>) -> App {
    App::empty()
        .route_read("file", move |_: &Request| body.clone())
        .route_write("up", move |_: &Request, data: Vec<u8>| {
            *stored.lock().unwrap() = Some(data);
        })
}

/// Lock-step and windowed, get and put, at 5% loss with 2% duplication
/// and reordering: every byte arrives, on a few seconds of virtual time.
#[tokio::test(start_paused = true)]
async fn transfers_are_byte_exact_on_a_lossy_reordering_network() {
    let body = noise(300_000, 11);
    for (seed, blksize, windowsize) in [(1, 512, 1), (2, 1428, 8), (3, 8192, 16)] {
        let net = SimNet::new()
            .seed(seed)
            .loss(0.05)
            .duplication(0.02)
            .delay(Duration::from_millis(5))
            .jitter(Duration::from_millis(4));
        let stored = Arc::new(Mutex::new(None));
        let server = TestServer::start_on(app(body.clone(), stored.clone()), &net).await;
        let client = server
            .client()
            .blksize(blksize)
            .windowsize(windowsize)
            .wait(Duration::from_millis(300))
            .retries(20);
        let what = format!("{blksize}/{windowsize}");
        let started = tokio::time::Instant::now();
        assert_eq!(client.get("file").await.unwrap(), body, "get {what}");
        client.put("up", &body).await.unwrap();
        assert_eq!(
            stored.lock().unwrap().as_deref(),
            Some(&body[..]),
            "put {what}"
        );
        let s = net.stats();
        assert!(
            s.lost > 0 && s.duplicated > 0,
            "{what}: the network did its part: {s:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{what}: {:?} of virtual time",
            started.elapsed()
        );
    }
}

/// A scripted loss: the first OACK is lost. The client's repeated request
/// gets it again at once, so recovery costs the client's own wait.
#[tokio::test(start_paused = true)]
async fn a_scripted_lost_oack_costs_the_clients_wait() {
    let mut lost = false;
    let net = SimNet::new().drop_if(move |d| {
        let first_oack = d.bytes.starts_with(&[0, 6]) && !lost;
        lost |= first_oack;
        first_oack
    });
    let stored = Arc::new(Mutex::new(None));
    let server = TestServer::start_on(app(b"tiny".to_vec(), stored), &net).await;
    let client = server
        .client()
        .blksize(1024)
        .wait(Duration::from_millis(300));
    let started = tokio::time::Instant::now();
    assert_eq!(client.get("file").await.unwrap(), b"tiny");
    let took = started.elapsed();
    assert_eq!(net.stats().lost, 1);
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(600),
        "recovered after {took:?}: the client's 300 ms, not the server's 1 s"
    );
}

/// The first DATA of an upload lost: the server sends its OACK again, the
/// client sends DATA 1 again, and every byte is stored, block 1 included.
#[tokio::test(start_paused = true)]
async fn an_upload_whose_first_data_is_lost_is_stored_whole() {
    let mut lost = false;
    let net = SimNet::new().drop_if(move |d| {
        let data_1 = d.bytes.starts_with(&[0, 3, 0, 1]) && !lost;
        lost |= data_1;
        data_1
    });
    let stored = Arc::new(Mutex::new(None));
    let server = TestServer::start_on(app(Vec::new(), stored.clone()), &net).await;
    let body = noise(5000, 3);
    // The server's timer (1 s) fires before the client's (3 s): the OACK
    // goes again, and the client answers it with DATA 1.
    let client = server.client().blksize(512).wait(Duration::from_secs(3));
    client.put("up", &body).await.unwrap();
    assert_eq!(net.stats().lost, 1);
    assert_eq!(stored.lock().unwrap().as_deref(), Some(&body[..]));
}

/// The same with a streaming handler that saves the upload to a file.
#[tokio::test(start_paused = true)]
async fn a_streamed_upload_whose_first_data_is_lost_is_saved_whole() {
    let mut lost = false;
    let net = SimNet::new().drop_if(move |d| {
        let data_1 = d.bytes.starts_with(&[0, 3, 0, 1]) && !lost;
        lost |= data_1;
        data_1
    });
    let dir = super::support::TempDir::new("sim-stream");
    let target = dir.join("up.bin");
    let to = target.clone();
    let app = App::empty().route_upload("up", move |_: Request, up: emmer::Upload| {
        let to = to.clone();
        async move { up.save_atomic(&to).fsync(false).await.map(drop) }
    });
    let server = TestServer::start_on(app, &net).await;
    let body = noise(5000, 4);
    let client = server.client().blksize(512).wait(Duration::from_secs(3));
    client.put("up", &body).await.unwrap();
    assert_eq!(net.stats().lost, 1);
    assert_eq!(std::fs::read(&target).unwrap(), body);
}
