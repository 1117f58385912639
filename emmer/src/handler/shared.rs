//! Shared bodies: one handler call and one body for the concurrent requests
//! of a read route that bind the same inputs, kept a short time after.
//!
//! A route with [`Sharing`] gets a [`SharedBodies`] cache, keyed by the
//! requested file name (which decides the route's captures) and the mode.
//! The first request for a key is the *leader*: its bound call runs on a
//! task of its own (the *producer*), so that a leader that is superseded or
//! aborted does not take the body away from the others. Requests that come
//! while it runs wait for the same result on a `watch` channel; requests
//! that come after it finished, within [`Sharing::keep`], get the kept
//! bytes at once.
//!
//! What the producer publishes, once:
//! - the body as [`Bytes`]: a file or a stream is read into memory first,
//!   up to [`Sharing::max_body`];
//! - an error (the handler's, an extractor's, or ERROR 0 for a panic): the
//!   waiting requests get it too, and it is not kept;
//! - "not shared": a file or stream longer than `max_body`, or one that
//!   would take the route over [`Sharing::max_bytes`] while it is read. The
//!   leader gets the body as it came, and every waiting request runs the
//!   handler itself, as on a route without sharing.
//!
//! A waiting request keeps its own bound call (never started while the
//! shared one goes well), so it can fall back to it: on "not shared", and
//! when the producer went away without an answer (the runtime shutting
//! down). Nothing here holds the lock across an `.await` or a user call, so
//! a panicking handler cannot poison the cache.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::call::{ReadCall, verdict};
use super::response::BodyKind;
use super::{ReadBody, Request};
use crate::TftpError;

/// How a read route shares its bodies (see
/// [`RoutePattern::sharing`](crate::RoutePattern::sharing), and
/// `share_for = "2s"` on `#[route_read]`).
///
/// With sharing, concurrent requests for the same file name (and mode) on
/// the route share **one** handler call and **one** body, and the finished
/// body is kept for [`keep`](Self::keep), so that a client that asks twice
/// in a row (UEFI firmware probes the size, then downloads) gets the same
/// bytes, and a boot storm of a thousand clients costs one call.
///
/// "The same file name" decides the route's capture groups, so a shared
/// handler must depend on nothing else that differs between clients: not
/// `client_host`, `client_port`, `Peer`, `SocketAddr` or
/// `Option<Traceparent>` (the macro refuses those on a shared route). A
/// `&Request` it takes is the request of whichever client came first: use
/// it for the name, the captures and the state, not for the peer or the
/// options. Your own extractors must not depend on the client either; the
/// macro cannot see into them. Neither can it see into builder routes,
/// which take a `&Request`: the same rule applies.
///
/// What is shared:
///
/// - a body the handler returns in memory (`String`, `Vec<u8>`, `Bytes`, …)
///   is shared as it is;
/// - a file or a stream is read into memory to be shared, up to
///   [`max_body`](Self::max_body) bytes. A longer one is **not** shared:
///   the request that ran the handler sends it as usual, and the requests
///   that waited run the handler themselves;
/// - an error is shared with the requests that waited for it, and not kept:
///   the next request runs the handler again. So is a panic (ERROR 0), and
///   the route goes on sharing.
///
/// Memory is bounded per route: at most [`max_entries`](Self::max_entries)
/// file names at once, running or kept (beyond, a request runs unshared),
/// and at most [`max_bytes`](Self::max_bytes) of bodies kept or being read
/// into memory (beyond, a body is shared with the requests waiting for it
/// but not kept). A kept body is dropped when its time is up, whether or
/// not another request comes. Bodies are shared before netascii
/// conversion, which each transfer does on its own.
///
/// The cache belongs to the route table a server builds at start-up.
/// [`App::read`](crate::App::read) builds a table for each request, so it
/// shares nothing between calls: test sharing through a
/// [`TestServer`](crate::testing::TestServer), as the example of
/// [`RoutePattern::share_for`](crate::RoutePattern::share_for) does.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use emmer::{App, Request, RoutePattern, Sharing};
///
/// let app = App::empty().route_read(
///     RoutePattern::new(r"ipxe/(?P<mac>[0-9a-f:]{17})\.ipxe").sharing(Sharing {
///         max_body: 64 * 1024,
///         ..Sharing::new(Duration::from_secs(2))
///     }),
///     // Runs once for all the clients that ask for one name at once.
///     |req: &Request| format!("#!ipxe\nchain http://boot/{}\n", req.capture("mac").unwrap()),
/// );
/// # let _ = app;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sharing {
    /// How long a finished body is kept for the next requests of its name
    /// (zero: shared only by the requests that overlap its call).
    pub keep: Duration,
    /// The largest file or stream read into memory to be shared, and the
    /// largest body kept (default [`Sharing::DEFAULT_MAX_BODY`]).
    pub max_body: u64,
    /// The most file names a route shares at once, running or kept
    /// (default [`Sharing::DEFAULT_MAX_ENTRIES`]).
    pub max_entries: usize,
    /// The most bytes a route keeps or reads into memory at once (default
    /// [`Sharing::DEFAULT_MAX_BYTES`]).
    pub max_bytes: u64,
}

impl Sharing {
    /// 4 MiB: configs and scripts fit; boot images belong in a
    /// [`ServeDir`](crate::fs::ServeDir).
    pub const DEFAULT_MAX_BODY: u64 = 4 << 20;
    /// 4096, the default transfer limit.
    pub const DEFAULT_MAX_ENTRIES: usize = 4096;
    /// 64 MiB.
    pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

    /// Sharing that keeps finished bodies for `keep`, with the default
    /// bounds.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = emmer::Sharing::new(Duration::from_secs(2));
    /// assert_eq!(s.max_body, emmer::Sharing::DEFAULT_MAX_BODY);
    /// ```
    pub const fn new(keep: Duration) -> Self {
        Self {
            keep,
            max_body: Self::DEFAULT_MAX_BODY,
            max_entries: Self::DEFAULT_MAX_ENTRIES,
            max_bytes: Self::DEFAULT_MAX_BYTES,
        }
    }
}

/// What the requests of one key share: the file name and the mode's name.
type Key = (Box<str>, &'static str);

/// The one result of a shared call.
#[derive(Debug, Clone)]
enum Outcome {
    Body(Bytes),
    Failed(TftpError),
    /// Too large to share: each request runs the handler itself.
    Unshared,
}

enum Entry {
    /// The handler runs; its result comes on the channel.
    Running {
        id: u64,
        result: watch::Receiver<Option<Outcome>>,
    },
    /// The body, kept until `expires`.
    Kept {
        id: u64,
        body: Bytes,
        expires: Instant,
    },
}

impl Entry {
    fn id(&self) -> u64 {
        match self {
            Entry::Running { id, .. } | Entry::Kept { id, .. } => *id,
        }
    }
}

#[derive(Default)]
struct Cache {
    entries: HashMap<Key, Entry>,
    /// Bytes of kept bodies and of bodies being read into memory.
    held: u64,
    /// Tells entries apart, so that a late producer or timer never removes
    /// the entry that replaced its own.
    next_id: u64,
}

impl Cache {
    fn remove(&mut self, key: &Key) {
        if let Some(Entry::Kept { body, .. }) = self.entries.remove(key) {
            self.held -= body.len() as u64;
        }
    }

    /// Drops the kept bodies whose time is up.
    fn purge(&mut self, now: Instant) {
        let mut freed = 0;
        self.entries.retain(|_, e| match e {
            Entry::Kept { body, expires, .. } if *expires <= now => {
                freed += body.len() as u64;
                false
            }
            _ => true,
        });
        self.held -= freed;
    }
}

/// The shared bodies of one read route.
pub(crate) struct SharedBodies {
    sharing: Sharing,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for SharedBodies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = self.lock();
        f.debug_struct("SharedBodies")
            .field("sharing", &self.sharing)
            .field("entries", &c.entries.len())
            .field("held", &c.held)
            .finish()
    }
}

impl SharedBodies {
    pub(crate) fn new(sharing: Sharing) -> Arc<Self> {
        Arc::new(Self {
            sharing,
            cache: Mutex::new(Cache::default()),
        })
    }

    /// Only map operations run under the lock; a poisoned one is as good.
    fn lock(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The call for `req`, bound to the route as `call`: the kept body, a
    /// wait for the running call of the same name, or `call` run for all.
    pub(crate) fn call(self: &Arc<Self>, req: &Request, call: ReadCall) -> ReadCall {
        let key: Key = (req.filename().into(), req.mode().as_str());
        let now = Instant::now();
        let mut cache = self.lock();
        match cache.entries.get(&key) {
            Some(Entry::Kept { body, expires, .. }) if now < *expires => {
                let body = body.clone();
                drop(cache);
                tracing::debug!("shared body: kept");
                return ReadCall::asynchronous(async move { ReadBody::from_bytes(body) });
            }
            Some(Entry::Running { result, .. }) => {
                let result = result.clone();
                drop(cache);
                tracing::debug!("shared body: waiting for the running call");
                return ReadCall::asynchronous(wait(result, Role::Follower(call)));
            }
            Some(Entry::Kept { .. }) => cache.remove(&key),
            None => {}
        }
        if cache.entries.len() >= self.sharing.max_entries {
            cache.purge(now);
            if cache.entries.len() >= self.sharing.max_entries {
                drop(cache);
                tracing::debug!("shared body: the route shares too many names; not shared");
                return call;
            }
        }
        let id = cache.next_id;
        cache.next_id += 1;
        let (tx, rx) = watch::channel(None);
        let entry = Entry::Running {
            id,
            result: rx.clone(),
        };
        cache.entries.insert(key.clone(), entry);
        drop(cache);
        let (leader, own) = oneshot::channel();
        let producer = Producer {
            bodies: self.clone(),
            key,
            id,
            tx,
            call: Some(call),
            leader: Some(leader),
            done: false,
        };
        ReadCall::asynchronous(async move {
            // Started from the leader's task, so from inside the runtime; if
            // this future is dropped unpolled, the producer's drop clears
            // the entry and the followers run their own calls.
            tokio::spawn(producer.run());
            wait(rx, Role::Leader(own)).await
        })
    }

    /// Holds `n` more bytes if the route stays within `max_bytes`.
    fn try_hold(&self, n: u64) -> bool {
        let mut cache = self.lock();
        if cache.held + n > self.sharing.max_bytes {
            cache.purge(Instant::now());
        }
        if cache.held + n > self.sharing.max_bytes {
            return false;
        }
        cache.held += n;
        true
    }

    fn release(&self, n: u64) {
        self.lock().held -= n;
    }

    /// The body in memory, if it can be shared.
    async fn buffer(&self, body: ReadBody) -> Buffered {
        let max = self.sharing.max_body;
        let (reader, size, measure): (std::pin::Pin<Box<dyn AsyncRead + Send>>, _, _) =
            match body.kind {
                BodyKind::Bytes(b) => return Buffered::Bytes(b),
                BodyKind::File { size, .. }
                | BodyKind::Stream {
                    size: Some(size), ..
                } if size > max => {
                    return Buffered::TooLarge(body);
                }
                BodyKind::File { file, size } => {
                    (Box::pin(tokio::fs::File::from_std(file)), Some(size), None)
                }
                BodyKind::Stream {
                    reader,
                    size,
                    measure,
                } => (reader, size, measure),
            };
        // What is read is held against the route's bytes until it is kept
        // or dropped: a known size, else the most that may be read.
        let hold = size.unwrap_or(max).min(max);
        let as_it_was = |reader| ReadBody {
            kind: BodyKind::Stream {
                reader,
                size,
                measure,
            },
        };
        if !self.try_hold(hold) {
            return Buffered::TooLarge(as_it_was(reader));
        }
        let read = read_up_to(reader, max).await;
        self.release(hold);
        match read {
            Ok(Read::Whole(bytes)) => Buffered::Bytes(bytes.into()),
            // Grown past its size, or a stream without one: what was read,
            // then the rest.
            Ok(Read::Longer(head, rest)) => {
                Buffered::TooLarge(as_it_was(Box::pin(io::Cursor::new(head).chain(rest))))
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the body to share it failed");
                Buffered::Failed(TftpError::undefined("server could not read the file"))
            }
        }
    }

    /// Records the result of call `id`; the time its body is kept until.
    fn finish(&self, key: &Key, id: u64, outcome: &Outcome) -> Option<Instant> {
        let s = &self.sharing;
        let mut cache = self.lock();
        if cache.entries.get(key).map(Entry::id) != Some(id) {
            return None;
        }
        cache.entries.remove(key);
        let Outcome::Body(body) = outcome else {
            return None;
        };
        let len = body.len() as u64;
        if s.keep.is_zero() || len > s.max_body {
            return None;
        }
        let now = Instant::now();
        if cache.held + len > s.max_bytes {
            cache.purge(now);
            if cache.held + len > s.max_bytes {
                tracing::debug!("shared body: the route keeps too many bytes; not kept");
                return None;
            }
        }
        // A keep beyond a year is a year (and no overflow).
        let expires = now + s.keep.min(Duration::from_secs(365 * 24 * 3600));
        cache.held += len;
        let body = body.clone();
        cache
            .entries
            .insert(key.clone(), Entry::Kept { id, body, expires });
        Some(expires)
    }

    /// Drops entry `id` of `key`, if it is still there.
    fn forget(&self, key: &Key, id: u64) {
        let mut cache = self.lock();
        if cache.entries.get(key).map(Entry::id) == Some(id) {
            cache.remove(key);
        }
    }
}

enum Buffered {
    Bytes(Bytes),
    TooLarge(ReadBody),
    Failed(TftpError),
}

enum Read {
    Whole(Vec<u8>),
    Longer(Vec<u8>, std::pin::Pin<Box<dyn AsyncRead + Send>>),
}

/// Reads `reader` to its end if that is within `max` bytes.
async fn read_up_to(
    mut reader: std::pin::Pin<Box<dyn AsyncRead + Send>>,
    max: u64,
) -> io::Result<Read> {
    let mut head = Vec::new();
    (&mut reader).take(max + 1).read_to_end(&mut head).await?;
    if head.len() as u64 > max {
        Ok(Read::Longer(head, reader))
    } else {
        Ok(Read::Whole(head))
    }
}

/// Runs the leader's call for everyone, publishes its result, and drops
/// the kept body when its time is up.
struct Producer {
    bodies: Arc<SharedBodies>,
    key: Key,
    id: u64,
    tx: watch::Sender<Option<Outcome>>,
    call: Option<ReadCall>,
    /// The leader's body, when it cannot be shared.
    leader: Option<oneshot::Sender<ReadBody>>,
    done: bool,
}

impl Producer {
    async fn run(mut self) {
        let Some(call) = self.call.take() else {
            return;
        };
        let outcome = match verdict(call.start().await) {
            Err(e) => Outcome::Failed(e),
            Ok(body) => match self.bodies.buffer(body).await {
                Buffered::Bytes(b) => Outcome::Body(b),
                Buffered::Failed(e) => Outcome::Failed(e),
                Buffered::TooLarge(body) => {
                    tracing::debug!(
                        "shared body: too large to share; each request runs its own call"
                    );
                    if let Some(leader) = self.leader.take() {
                        let _ = leader.send(body);
                    }
                    Outcome::Unshared
                }
            },
        };
        let expires = self.bodies.finish(&self.key, self.id, &outcome);
        self.done = true;
        self.tx.send_replace(Some(outcome));
        if let Some(at) = expires {
            tokio::time::sleep_until(at).await;
            self.bodies.forget(&self.key, self.id);
        }
    }
}

impl Drop for Producer {
    /// Gone without a result (never started, or its runtime stopped): the
    /// entry goes, and the followers, whose channel closes, run their own
    /// calls.
    fn drop(&mut self) {
        if !self.done {
            self.bodies.forget(&self.key, self.id);
        }
    }
}

/// Who waits for a shared call.
enum Role {
    /// Ran it: gets its own body back when it cannot be shared.
    Leader(oneshot::Receiver<ReadBody>),
    /// Came while it ran, with a call of its own to fall back on.
    Follower(ReadCall),
}

async fn wait(
    mut result: watch::Receiver<Option<Outcome>>,
    role: Role,
) -> Result<ReadBody, TftpError> {
    let outcome = match result.wait_for(Option::is_some).await {
        Ok(v) => v.clone(),
        Err(_) => None,
    };
    match (outcome, role) {
        (Some(Outcome::Body(b)), _) => Ok(ReadBody::from_bytes(b)),
        (Some(Outcome::Failed(e)), _) => Err(e),
        (Some(Outcome::Unshared) | None, Role::Follower(own)) => own.run().await,
        (Some(Outcome::Unshared) | None, Role::Leader(own)) => own
            .await
            .map_err(|_| TftpError::undefined("internal server error")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::{ErrorCode, Mode};

    /// A route's handler as the table binds it: counts its runs, takes
    /// `delay`, then answers with what `answer` gives for the run number.
    struct Handler {
        runs: Arc<AtomicUsize>,
        delay: Duration,
        answer: fn(usize) -> Result<ReadBody, TftpError>,
    }

    impl Handler {
        fn new(delay: Duration, answer: fn(usize) -> Result<ReadBody, TftpError>) -> Self {
            Self {
                runs: Arc::default(),
                delay,
                answer,
            }
        }

        fn bind(&self) -> ReadCall {
            let (runs, delay, answer) = (self.runs.clone(), self.delay, self.answer);
            ReadCall::asynchronous(async move {
                let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(delay).await;
                answer(n)
            })
        }

        fn runs(&self) -> usize {
            self.runs.load(Ordering::SeqCst)
        }
    }

    fn numbered(n: usize) -> Result<ReadBody, TftpError> {
        Ok(ReadBody::from_bytes(format!("body {n}")))
    }

    fn req(name: &str) -> Request {
        Request::builder(name).build()
    }

    /// The body of a call, read whole.
    async fn get(call: ReadCall) -> Result<Vec<u8>, TftpError> {
        let body = call.run().await?;
        let mut v = Vec::new();
        match body.kind {
            BodyKind::Bytes(b) => v.extend_from_slice(&b),
            BodyKind::File { mut file, .. } => {
                std::io::Read::read_to_end(&mut file, &mut v).unwrap();
            }
            BodyKind::Stream { mut reader, .. } => {
                reader.read_to_end(&mut v).await.unwrap();
            }
        }
        Ok(v)
    }

    /// `n` requests for `name` at once, each started like the engine does.
    async fn storm(
        shared: &Arc<SharedBodies>,
        h: &Handler,
        name: &str,
        n: usize,
    ) -> Vec<Result<Vec<u8>, TftpError>> {
        let calls: Vec<ReadCall> = (0..n).map(|_| shared.call(&req(name), h.bind())).collect();
        let tasks: Vec<_> = calls.into_iter().map(|c| tokio::spawn(get(c))).collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    fn entries(shared: &SharedBodies) -> usize {
        shared.lock().entries.len()
    }

    const KEEP: Duration = Duration::from_secs(2);

    #[tokio::test(start_paused = true)]
    async fn concurrent_calls_run_the_handler_once() {
        let shared = SharedBodies::new(Sharing::new(KEEP));
        let h = Handler::new(Duration::from_millis(50), numbered);
        let bodies = storm(&shared, &h, "boot.cfg", 100).await;
        assert_eq!(h.runs(), 1);
        assert!(bodies.iter().all(|b| b.as_deref() == Ok(&b"body 1"[..])));
    }

    #[tokio::test(start_paused = true)]
    async fn the_body_is_kept_for_its_time_then_computed_again() {
        let shared = SharedBodies::new(Sharing::new(KEEP));
        let h = Handler::new(Duration::from_millis(10), numbered);
        assert_eq!(
            get(shared.call(&req("a"), h.bind())).await.unwrap(),
            b"body 1"
        );
        tokio::time::advance(KEEP - Duration::from_millis(100)).await;
        // The size probe's fetch: the same bytes, no second call.
        assert_eq!(
            get(shared.call(&req("a"), h.bind())).await.unwrap(),
            b"body 1"
        );
        assert_eq!(h.runs(), 1);
        assert_eq!(shared.lock().held, 6);
        // Its time is up: gone, with no request to notice.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!((entries(&shared), shared.lock().held), (0, 0));
        assert_eq!(
            get(shared.call(&req("a"), h.bind())).await.unwrap(),
            b"body 2"
        );
        assert_eq!(h.runs(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn without_keep_only_overlapping_requests_share() {
        let shared = SharedBodies::new(Sharing::new(Duration::ZERO));
        let h = Handler::new(Duration::from_millis(10), numbered);
        let bodies = storm(&shared, &h, "a", 10).await;
        assert!(bodies.iter().all(|b| b.as_deref() == Ok(&b"body 1"[..])));
        assert_eq!(entries(&shared), 0);
        assert_eq!(
            get(shared.call(&req("a"), h.bind())).await.unwrap(),
            b"body 2"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn different_names_and_modes_do_not_share() {
        let shared = SharedBodies::new(Sharing::new(KEEP));
        let h = Handler::new(Duration::from_millis(10), numbered);
        let a = shared.call(&req("a"), h.bind());
        let b = shared.call(&req("b"), h.bind());
        let netascii = Request::builder("a").mode(Mode::Netascii).build();
        let c = shared.call(&netascii, h.bind());
        let mut got = vec![
            get(a).await.unwrap(),
            get(b).await.unwrap(),
            get(c).await.unwrap(),
        ];
        got.sort();
        assert_eq!(got, [&b"body 1"[..], b"body 2", b"body 3"]);
        assert_eq!(h.runs(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn errors_are_shared_but_not_kept() {
        let shared = SharedBodies::new(Sharing::new(KEEP));
        let h = Handler::new(Duration::from_millis(10), |n| match n {
            1 => Err(TftpError::not_found("not yet")),
            n => numbered(n),
        });
        for r in storm(&shared, &h, "a", 20).await {
            assert_eq!(r.unwrap_err(), TftpError::not_found("not yet"));
        }
        assert_eq!((h.runs(), entries(&shared)), (1, 0));
        assert_eq!(
            get(shared.call(&req("a"), h.bind())).await.unwrap(),
            b"body 2"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_handler_does_not_poison_the_route() {
        let shared = SharedBodies::new(Sharing::new(KEEP));
        let h = Handler::new(Duration::from_millis(10), |n| match n {
            1 => panic!("handler bug"),
            n => numbered(n),
        });
        for r in storm(&shared, &h, "a", 20).await {
            assert_eq!(r.unwrap_err().code(), ErrorCode::Undefined);
        }
        assert_eq!((h.runs(), entries(&shared)), (1, 0));
        let bodies = storm(&shared, &h, "a", 20).await;
        assert!(bodies.iter().all(|b| b.as_deref() == Ok(&b"body 2"[..])));
        assert_eq!(h.runs(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_aborted_leader_does_not_take_the_body_away() {
        let shared = SharedBodies::new(Sharing::new(KEEP));
        let h = Handler::new(Duration::from_millis(50), numbered);
        let leader = shared.call(&req("a"), h.bind()).start();
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(h.runs(), 1, "the leader's call runs");
        let follower = shared.call(&req("a"), h.bind());
        leader.abort();
        assert_eq!(get(follower).await.unwrap(), b"body 1");
        assert_eq!(h.runs(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_dropped_unstarted_lets_the_followers_run_their_own() {
        let shared = SharedBodies::new(Sharing::new(KEEP));
        let h = Handler::new(Duration::from_millis(10), numbered);
        let leader = shared.call(&req("a"), h.bind());
        let follower = shared.call(&req("a"), h.bind());
        drop(leader);
        assert_eq!(entries(&shared), 0);
        assert_eq!(get(follower).await.unwrap(), b"body 1");
        assert_eq!(h.runs(), 1);
    }

    fn stream(n: usize) -> Result<ReadBody, TftpError> {
        let data = vec![b'x'; 100 + n];
        Ok(ReadBody::from_reader(io::Cursor::new(data), None))
    }

    #[tokio::test(start_paused = true)]
    async fn streams_are_read_to_be_shared_up_to_max_body() {
        let sharing = Sharing {
            max_body: 101,
            ..Sharing::new(KEEP)
        };
        let shared = SharedBodies::new(sharing);
        let h = Handler::new(Duration::from_millis(10), stream);
        // 101 bytes: read whole, shared and kept.
        for b in storm(&shared, &h, "a", 10).await {
            assert_eq!(b.unwrap(), vec![b'x'; 101]);
        }
        assert_eq!(h.runs(), 1);
        assert_eq!(shared.lock().held, 101);
        // 102 bytes and more: the leader sends its own whole, every other
        // request runs the handler itself.
        let bodies = storm(&shared, &h, "b", 10).await;
        assert_eq!(h.runs(), 11);
        assert_eq!(bodies[0].as_ref().unwrap().len(), 102);
        assert!(bodies.iter().all(|b| b.as_ref().unwrap().len() > 101));
        assert_eq!(entries(&shared), 1, "only `a` is kept");
    }

    #[tokio::test(start_paused = true)]
    async fn files_are_shared_from_memory() {
        let path = std::env::temp_dir().join(format!("emmer-shared-{}", std::process::id()));
        std::fs::write(&path, b"from the disk").unwrap();
        let shared = SharedBodies::new(Sharing::new(KEEP));
        let runs = Arc::new(AtomicUsize::new(0));
        let bind = || {
            let (runs, path) = (runs.clone(), path.clone());
            ReadCall::asynchronous(async move {
                runs.fetch_add(1, Ordering::SeqCst);
                ReadBody::from_std_file(std::fs::File::open(path)?)
            })
        };
        let calls: Vec<_> = (0..5).map(|_| shared.call(&req("f"), bind())).collect();
        for c in calls {
            assert_eq!(get(c).await.unwrap(), b"from the disk");
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        std::fs::remove_file(&path).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn entries_and_bytes_are_bounded() {
        let sharing = Sharing {
            max_entries: 2,
            max_bytes: 12,
            ..Sharing::new(KEEP)
        };
        let shared = SharedBodies::new(sharing);
        let h = Handler::new(Duration::from_millis(10), numbered);
        get(shared.call(&req("a"), h.bind())).await.unwrap();
        get(shared.call(&req("b"), h.bind())).await.unwrap();
        // Two names kept (12 bytes): a third runs unshared, and is not kept.
        assert_eq!(
            get(shared.call(&req("c"), h.bind())).await.unwrap(),
            b"body 3"
        );
        assert_eq!(
            get(shared.call(&req("c"), h.bind())).await.unwrap(),
            b"body 4"
        );
        assert_eq!(
            get(shared.call(&req("a"), h.bind())).await.unwrap(),
            b"body 1"
        );
        // Once they expire there is room again.
        tokio::time::sleep(KEEP).await;
        get(shared.call(&req("c"), h.bind())).await.unwrap();
        assert_eq!(
            get(shared.call(&req("c"), h.bind())).await.unwrap(),
            b"body 5"
        );
        // A body over the byte budget is shared but not kept.
        let sharing = Sharing {
            max_bytes: 5,
            ..Sharing::new(KEEP)
        };
        let shared = SharedBodies::new(sharing);
        let bodies = storm(&shared, &h, "a", 5).await;
        assert!(bodies.iter().all(|b| b.as_deref() == Ok(&b"body 6"[..])));
        assert_eq!((entries(&shared), shared.lock().held), (0, 0));
    }
}
