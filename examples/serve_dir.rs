//! A plain TFTP server over one directory, like `in.tftpd -s /srv/tftp`.
//!
//! ```text
//! cargo run --release --example serve_dir -- /srv/tftp [--port N] [--host ADDR] [--no-fsync]
//! tftp 127.0.0.1 3942 -m octet -c get pxelinux.0
//! curl -T boot.cfg tftp://127.0.0.1:3942/configs/boot.cfg
//! ```
//!
//! The address comes from `EMMER_HOST` / `EMMER_PORT` (and the other
//! `EMMER_*` variables of [`emmer::Config::from_env`]), then from `--host` and
//! `--port`, which win (`--port 0` picks a free port). Once bound it prints
//! one line, `serve_dir: listening on ADDR`, on stdout; logs go to stderr
//! (`RUST_LOG=debug` shows every transfer).
//!
//! # Which names are served
//!
//! A requested name is a path relative to the root:
//!
//! - Leading slashes are stripped, as tftp-hpa's `-s` does: `/pxelinux.0`
//!   and `pxelinux.0` are the same file (PXE firmware often asks for the
//!   former).
//! - `.` parts and repeated slashes are ignored; a `..` part is refused with
//!   ERROR 2 (access violation), whatever follows it.
//! - Symbolic links are followed only while they stay inside the root: the
//!   resolved path must start with the canonical root, or the request gets
//!   ERROR 2.
//! - A missing file is ERROR 1 (file not found); a directory or other
//!   non-regular file is ERROR 2.
//!
//! Reads stream the file (it is never held in memory whole) and announce its
//! size as `tsize`.
//!
//! Writes create or replace a file in an existing directory (directories are
//! not created: ERROR 1 when the parent is missing). The upload is written to
//! a hidden temporary file in the same directory and renamed over the target
//! once complete, so readers never see half a file and a failed upload
//! leaves nothing behind. An existing symbolic link at the target is replaced
//! by the file, never written through. The file is flushed to stable storage
//! (fsync) before the rename, so an acknowledged upload survives a crash;
//! `--no-fsync` skips that, as servers that never sync do (tftp-hpa), for
//! data that can be sent again.
//!
//! The checks run before each open: a process that can change the tree
//! under the root while the server runs can race them. Serve a directory
//! that only trusted users can write to.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use emmer::{App, Config, ReadBody, Request, TftpError, Upload};

/// The served directory: its canonical path, against which every resolved
/// path is checked.
#[derive(Debug, Clone)]
pub(crate) struct Root {
    canonical: PathBuf,
    /// Flush uploads to stable storage before they are renamed into place.
    fsync: bool,
}

impl Root {
    /// The directory at `path`.
    ///
    /// # Errors
    ///
    /// When `path` does not exist or is not a directory.
    pub(crate) fn new(path: &Path) -> std::io::Result<Self> {
        let canonical = std::fs::canonicalize(path)?;
        if !canonical.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                format!("{} is not a directory", path.display()),
            ));
        }
        Ok(Self {
            canonical,
            fsync: true,
        })
    }

    /// Whether uploads are flushed to stable storage before the rename
    /// (default true).
    pub(crate) fn fsync(mut self, on: bool) -> Self {
        self.fsync = on;
        self
    }

    /// The root's canonical path.
    pub(crate) fn path(&self) -> &Path {
        &self.canonical
    }

    /// The path a request names, before symbolic links are looked at:
    /// leading slashes stripped, `.` dropped, `..` refused.
    ///
    /// # Errors
    ///
    /// ERROR 2 for `..` or an empty name.
    pub(crate) fn join(&self, name: &str) -> Result<PathBuf, TftpError> {
        let relative = name.trim_start_matches('/');
        let mut path = self.canonical.clone();
        let mut parts = 0;
        for c in Path::new(relative).components() {
            match c {
                Component::Normal(part) => {
                    path.push(part);
                    parts += 1;
                }
                Component::CurDir => {}
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                    return Err(refused());
                }
            }
        }
        if parts == 0 {
            return Err(TftpError::access_violation("a file name is required"));
        }
        Ok(path)
    }

    /// Checks that a canonical path lies inside the root.
    fn contains(&self, canonical: &Path) -> Result<(), TftpError> {
        if canonical.starts_with(&self.canonical) && canonical != self.canonical {
            Ok(())
        } else {
            tracing::debug!(path = %canonical.display(), "refused: resolves outside the root");
            Err(refused())
        }
    }

    /// The file to send for a read request.
    ///
    /// # Errors
    ///
    /// ERROR 1 when it does not exist, ERROR 2 when it lies outside the root
    /// or is not a regular file.
    pub(crate) fn resolve_read(&self, name: &str) -> Result<PathBuf, TftpError> {
        let path = self.join(name)?;
        let canonical = std::fs::canonicalize(&path).map_err(io_error)?;
        self.contains(&canonical)?;
        if !canonical.is_file() {
            return Err(TftpError::access_violation("not a regular file"));
        }
        Ok(canonical)
    }

    /// The path to store an upload at: the link-free parent directory (inside
    /// the root) joined with the file name.
    ///
    /// # Errors
    ///
    /// ERROR 1 when the directory does not exist, ERROR 2 when it lies outside
    /// the root or the target is a directory.
    pub(crate) fn resolve_write(&self, name: &str) -> Result<PathBuf, TftpError> {
        let path = self.join(name)?;
        let (Some(parent), Some(file)) = (path.parent(), path.file_name()) else {
            return Err(refused());
        };
        let dir = std::fs::canonicalize(parent).map_err(io_error)?;
        if dir != self.canonical {
            self.contains(&dir)?;
        }
        if !dir.is_dir() {
            return Err(TftpError::not_found("no such directory"));
        }
        let target = dir.join(file);
        match std::fs::symlink_metadata(&target) {
            Ok(m) if m.is_dir() => Err(TftpError::access_violation("a directory has this name")),
            _ => Ok(target),
        }
    }

    /// Opens a file for a read request, to be streamed.
    ///
    /// # Errors
    ///
    /// See [`resolve_read`](Self::resolve_read); an unreadable file is ERROR 2.
    pub(crate) fn open(&self, name: &str) -> Result<ReadBody, TftpError> {
        let path = self.resolve_read(name)?;
        let file = std::fs::File::open(&path).map_err(io_error)?;
        ReadBody::from_std_file(file).map_err(io_error)
    }

    /// Stores an upload as it arrives, atomically: into a temporary file in
    /// the same directory, renamed over the target only once the whole file
    /// has arrived ([`Upload::save_atomic`]). Returns the bytes stored.
    ///
    /// # Errors
    ///
    /// See [`resolve_write`](Self::resolve_write); a failed write is ERROR 3
    /// (disk full) or ERROR 2 (permission denied); an aborted upload leaves
    /// nothing behind.
    pub(crate) async fn store(&self, name: &str, upload: Upload) -> Result<u64, TftpError> {
        let target = self.resolve_write(name)?;
        let bytes = upload.save_atomic(&target).fsync(self.fsync).await?;
        tracing::debug!(path = %target.display(), bytes, "stored");
        Ok(bytes)
    }
}

fn refused() -> TftpError {
    TftpError::access_violation("access violation: the path leaves the served directory")
}

/// Logs an I/O error (its text names server paths) and maps its kind to a
/// TFTP error.
fn io_error(e: std::io::Error) -> TftpError {
    tracing::debug!(error = %e, "file system error");
    match e.kind() {
        std::io::ErrorKind::NotADirectory => TftpError::not_found("file not found"),
        _ => TftpError::from(e),
    }
}

/// The app: every read and every write goes to the directory.
pub(crate) fn app(root: Root) -> App {
    let reads = root.clone();
    App::empty()
        .route_read(".*", move |req: &Request| reads.open(req.filename()))
        .route_upload(".*", move |req: Request, upload: Upload| {
            let root = root.clone();
            async move { root.store(req.filename(), upload).await.map(|_| ()) }
        })
}

const USAGE: &str = "usage: serve_dir ROOT [--port N] [--host ADDR] [--no-fsync]

Serves the files under ROOT over TFTP (reads and writes). Uploads are
flushed to disk (fsync) before they are renamed into place; --no-fsync
skips that.
Defaults come from EMMER_HOST / EMMER_PORT (127.0.0.1:3942); the flags win.";

/// Command-line arguments.
#[derive(Debug, Default)]
struct Args {
    root: Option<PathBuf>,
    port: Option<u16>,
    host: Option<IpAddr>,
    no_fsync: bool,
}

fn parse_args(mut args: impl Iterator<Item = OsString>) -> Result<Args, String> {
    let mut out = Args::default();
    while let Some(arg) = args.next() {
        let text = arg.to_str().unwrap_or("");
        let (flag, inline) = match text.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (text, None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next().and_then(|v| v.into_string().ok()))
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag {
            "-h" | "--help" => return Err(String::new()),
            "--no-fsync" => out.no_fsync = true,
            "--port" | "-p" => {
                let v = value("--port")?;
                out.port = Some(
                    v.parse()
                        .map_err(|_| format!("--port {v:?} is not a port number 0..=65535"))?,
                );
            }
            "--host" => {
                let v = value("--host")?;
                out.host = Some(v.parse().map_err(|_| {
                    format!("--host {v:?} is not an IP address such as 0.0.0.0 or ::")
                })?);
            }
            _ if text.starts_with('-') && text.len() > 1 => {
                return Err(format!("unknown option {text}"));
            }
            _ if out.root.is_none() => out.root = Some(PathBuf::from(arg)),
            _ => return Err(format!("unexpected argument {text:?}: only one ROOT")),
        }
    }
    Ok(out)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = match parse_args(std::env::args_os().skip(1)) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("serve_dir: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let Some(root_arg) = args.root else {
        eprintln!("serve_dir: the directory to serve is missing\n\n{USAGE}");
        return ExitCode::from(2);
    };
    let root = match Root::new(&root_arg) {
        Ok(r) => r.fsync(!args.no_fsync),
        Err(e) => {
            eprintln!("serve_dir: cannot serve {}: {e}", root_arg.display());
            return ExitCode::from(2);
        }
    };
    let mut config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("serve_dir: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(h) = args.host {
        config.hosts = vec![h];
    }
    if let Some(p) = args.port {
        config.port = p;
    }
    tracing::info!(root = %root.path().display(), "serving a directory");
    let app = app(root).config(config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("serve_dir: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(async {
        let server = app.bind().await?;
        // One plain line on stdout, for scripts (and the tests) that bind port 0.
        println!("serve_dir: listening on {}", server.local_addr());
        server.serve().await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serve_dir: {e}");
            ExitCode::FAILURE
        }
    }
}
