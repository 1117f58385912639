//! Shared helpers: temporary directories, a test server with in-memory files
//! and uploads, bounded child processes, and test data.

use std::collections::HashMap;
use std::io::Read as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use emmer::testing::TestServer;
use emmer::{App, Request, TftpError};

/// How long one client run may take before it is killed and the test fails.
/// The 40 MiB transfers at 512-byte blocks are the slow ones.
pub(crate) const CLIENT_LIMIT: Duration = Duration::from_secs(120);

/// 40 MiB: 81920 blocks of 512 bytes, so block numbers roll over past 65535.
pub(crate) const BIG: usize = 40 * 1024 * 1024;

/// A directory under the system's temporary directory, unique to this
/// process and call, removed on drop.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// Creates `$TMPDIR/emmer-it-<pid>-<n>-<label>`.
    pub(crate) fn new(label: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("emmer-it-{}-{n}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        Self(path)
    }

    /// A path inside the directory.
    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes a file inside the directory and returns its path.
    pub(crate) fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.join(name);
        std::fs::write(&p, data).unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Files the test server serves, by name.
pub(crate) type Files = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// What the test server's write routes received: uploads that were stored,
/// and uploads the rejecting routes saw (name, length) and refused.
#[derive(Debug, Default, Clone)]
pub(crate) struct Uploads {
    stored: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    refused: Arc<Mutex<Vec<(String, usize)>>>,
}

impl Uploads {
    /// The stored upload with this name.
    pub(crate) fn stored(&self, name: &str) -> Option<Vec<u8>> {
        self.stored.lock().unwrap().get(name).cloned()
    }

    /// How many uploads were stored.
    pub(crate) fn stored_count(&self) -> usize {
        self.stored.lock().unwrap().len()
    }

    /// The uploads a rejecting route saw, as (name, length).
    pub(crate) fn refused(&self) -> Vec<(String, usize)> {
        self.refused.lock().unwrap().clone()
    }
}

/// A server with the routes the interoperability tests use:
///
/// | kind | pattern | does |
/// |---|---|---|
/// | read | `f/.+` | serves the entry of [`Files`], ERROR 1 when absent |
/// | write | `up/.+` | stores the upload in [`Uploads`] |
/// | write | `reject/.+` | returns `false`: ERROR 2, nothing stored |
/// | write | `full/.+` | returns `Err(disk_full)`: ERROR 3, nothing stored |
///
/// Any other name matches no route: ERROR 1 for a read, 2 for a write.
/// Stops when dropped.
#[derive(Debug)]
pub(crate) struct Fixture {
    /// Where the server listens.
    pub addr: SocketAddr,
    /// What its write routes received.
    pub uploads: Uploads,
    _server: TestServer,
}

/// Builds the app behind a [`Fixture`].
pub(crate) fn fixture_app(files: Files, uploads: Uploads) -> App {
    let (stored, refused, refused_too) = (
        uploads.stored.clone(),
        uploads.refused.clone(),
        uploads.refused.clone(),
    );
    App::empty()
        .route_read(r"f/.+", move |req: &Request| {
            files.lock().unwrap().get(req.filename()).cloned()
        })
        .route_write(r"up/.+", move |req: &Request, data: Vec<u8>| {
            stored
                .lock()
                .unwrap()
                .insert(req.filename().to_owned(), data);
        })
        .route_write(r"reject/.+", move |req: &Request, data: Vec<u8>| {
            refused
                .lock()
                .unwrap()
                .push((req.filename().to_owned(), data.len()));
            false
        })
        .route_write(r"full/.+", move |req: &Request, data: Vec<u8>| {
            refused_too
                .lock()
                .unwrap()
                .push((req.filename().to_owned(), data.len()));
            Err::<(), _>(TftpError::disk_full("quota exceeded for this test"))
        })
}

impl Fixture {
    /// Starts the server on 127.0.0.1:0 on the current runtime, serving
    /// `files` under their names (which must start with `f/`).
    pub(crate) async fn start(files: &[(&str, &[u8])]) -> Self {
        let files: Files = Arc::new(Mutex::new(
            files
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
                .collect(),
        ));
        let uploads = Uploads::default();
        let app = fixture_app(files, uploads.clone());
        let server = TestServer::start(app).await;
        Self {
            addr: server.addr(),
            uploads,
            _server: server,
        }
    }
}

/// What a finished child process left.
#[derive(Debug)]
pub(crate) struct Output {
    /// The command line, for messages.
    pub command: String,
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
}

impl Output {
    /// stdout and stderr as text, for searching and messages.
    pub(crate) fn text(&self) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&self.stderr)
        )
    }

    /// Panics with the whole output unless the process exited with 0.
    pub(crate) fn assert_success(&self) {
        assert!(
            self.status.success(),
            "{} failed ({}):\n{}",
            self.command,
            self.status,
            self.text()
        );
    }
}

/// Runs a command with stdin from `input` (or nothing), stdout and stderr
/// captured, for at most `limit`: past it the process is killed and the test
/// fails. Blocking: call from `spawn_blocking` (see [`run_async`]).
pub(crate) fn run(mut cmd: Command, input: Option<Vec<u8>>, limit: Duration) -> Output {
    let command = format!("{cmd:?}");
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
    let stdin = child.stdin.take().zip(input).map(|(mut pipe, data)| {
        std::thread::spawn(move || {
            use std::io::Write as _;
            let _ = pipe.write_all(&data);
        })
    });
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                let out = String::from_utf8_lossy(&stdout.join().unwrap_or_default()).into_owned();
                let err = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
                panic!(
                    "{command} did not finish within {limit:?}; killed.\nstdout:\n{out}\nstderr:\n{err}"
                );
            }
            Err(e) => panic!("waiting for {command}: {e}"),
        }
    };
    if let Some(t) = stdin {
        let _ = t.join();
    }
    Output {
        command,
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// [`run`] on the blocking pool, so the server keeps running on the test's
/// runtime meanwhile.
pub(crate) async fn run_async(cmd: Command, input: Option<Vec<u8>>, limit: Duration) -> Output {
    match tokio::task::spawn_blocking(move || run(cmd, input, limit)).await {
        Ok(out) => out,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The path of a program found on `PATH`.
pub(crate) fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Reads a file the test expects to exist.
pub(crate) fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Asserts two byte strings are equal without printing megabytes: the
/// lengths and the first difference.
#[track_caller]
pub(crate) fn assert_bytes_eq(actual: &[u8], expected: &[u8], what: &str) {
    if actual == expected {
        return;
    }
    let at = actual
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(actual.len().min(expected.len()));
    let show = |b: &[u8]| {
        let end = (at + 16).min(b.len());
        format!(
            "{:?}",
            String::from_utf8_lossy(&b[at.saturating_sub(16)..end])
        )
    };
    panic!(
        "{what}: {} bytes, expected {}; first difference at byte {at} (block {} at 512): got …{}…, expected …{}…",
        actual.len(),
        expected.len(),
        at / 512 + 1,
        show(actual),
        show(expected)
    );
}

/// `len` bytes of deterministic noise (xorshift), so a lost, repeated or
/// reordered block shows up as a difference.
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A text body for netascii tests: LF line ends, a CR LF, lone CRs, a NUL,
/// a tab, no final newline; longer than two blocks, with one CR and one LF
/// placed so their two-byte netascii forms straddle the 512 and 1024 block
/// boundaries.
pub(crate) fn text_body() -> Vec<u8> {
    let mut t = Vec::new();
    // Wire bytes 0..=510 are 'a', the CR goes out as CR (511) NUL (512).
    t.extend(std::iter::repeat_n(b'a', 511));
    t.push(b'\r');
    // Wire 513..=1022 are 'b', the LF goes out as CR (1023) LF (1024).
    t.extend(std::iter::repeat_n(b'b', 510));
    t.push(b'\n');
    for i in 0..40 {
        t.extend_from_slice(format!("line {i}: some text").as_bytes());
        t.extend_from_slice(match i % 5 {
            0 => b"\r\n".as_slice(),
            1 => b"\rlone carriage return\n",
            2 => b"\n\n",
            3 => b"\ttab\x00nul\n",
            _ => b"\n",
        });
    }
    t.extend_from_slice(b"last line without a newline");
    assert_eq!(to_netascii(&t)[511..513], *b"\r\0");
    assert_eq!(to_netascii(&t)[1023..1025], *b"\r\n");
    t
}

/// The netascii form of `data` (RFC 764): LF → CR LF, CR → CR NUL. Written
/// here independently of the server's encoder.
pub(crate) fn to_netascii(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 2);
    for &b in data {
        match b {
            b'\n' => out.extend_from_slice(b"\r\n"),
            b'\r' => out.extend_from_slice(b"\r\0"),
            _ => out.push(b),
        }
    }
    out
}
