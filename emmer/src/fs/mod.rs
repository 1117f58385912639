//! Files served from a directory beside the dynamic routes:
//! [`ServeDir`], mounted with [`App::serve_dir`](crate::App::serve_dir).
//!
//! A PXE server is static files (kernels, iPXE and syslinux binaries) and
//! computed ones (a config per MAC address) in one name space:
//!
//! ```no_run
//! use emmer::fs::ServeDir;
//! use emmer::{route_read, App};
//!
//! #[route_read(r"pxelinux\.cfg/01-(?P<mac>[0-9a-f-]{17})")]
//! fn pxe_config(mac: String) -> String {
//!     format!("default local\n# for {mac}\n")
//! }
//!
//! # async fn demo() -> emmer::Result<()> {
//! App::new() // the macro routes
//!     .serve_dir("", ServeDir::new("/srv/tftp")) // everything else, from the disk
//!     .serve().await
//! # }
//! ```
//!
//! # Which names are served
//!
//! The part of the requested name after the mount's prefix is a path
//! relative to the root:
//!
//! - leading slashes are stripped, as tftp-hpa's `-s` does (`/pxelinux.0`
//!   is `pxelinux.0`); empty and `.` parts are ignored;
//! - a `..` part is refused with ERROR 2 (access violation), wherever it is;
//! - a name with a NUL byte, longer than [`MAX_NAME`] bytes or with a part
//!   longer than [`MAX_PART`] bytes is refused with ERROR 2;
//! - symbolic links are followed only while they stay inside the root: one
//!   that leads out (absolute, or up through `..`), in the last part or in
//!   a directory on the way, is ERROR 2. On Linux the kernel enforces this
//!   when it opens the file (`openat2` with `RESOLVE_BENEATH`), so a tree
//!   that changes meanwhile cannot race it;
//! - a missing file is ERROR 1; a directory or other non-regular file is
//!   ERROR 2.
//!
//! Windows clients' habits are options: [`ServeDir::backslash_as_separator`]
//! reads `\` as `/` (`boot\bootmgfw.efi`), [`ServeDir::case_insensitive`]
//! finds `BOOT/BCD` as `Boot/BCD` when no exact match exists.
//!
//! # Reads and writes
//!
//! Reads stream the file ([`ReadBody::from_std_file`]) and announce its size
//! as `tsize`. Writes are off unless [`ServeDir::allow_writes`] turns them
//! on; then an upload goes to a temporary file beside the target and is
//! renamed over it only once complete ([`Upload::save_atomic`]), flushed to
//! stable storage first unless [`ServeDir::fsync`] turns that off. A
//! symbolic link at the target is replaced, never written through;
//! directories are not created (ERROR 1 when the directory is missing).

mod beneath;

use std::ffi::OsString;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

pub(crate) use beneath::DirHandle;

use crate::{ReadBody, TftpError, Upload};

/// The longest name served, in bytes (after the prefix).
pub const MAX_NAME: usize = 1024;
/// The longest part of a name between slashes, in bytes (NAME_MAX on most
/// file systems).
pub const MAX_PART: usize = 255;

/// A directory served over TFTP, mounted under a prefix with
/// [`App::serve_dir`](crate::App::serve_dir): see the [module](self) for
/// which names are served and how.
///
/// Cheap to clone. [`open`](Self::open) and [`store`](Self::store) can also
/// be called from your own handlers.
///
/// # Examples
///
/// ```no_run
/// use emmer::fs::ServeDir;
/// use emmer::App;
///
/// # async fn demo() -> emmer::Result<()> {
/// let app = App::new()
///     // Read-only: kernels and boot loaders.
///     .serve_dir("boot/", ServeDir::new("/srv/tftp/boot"))
///     // Switch config backups: writable, fsynced, Windows-style names too.
///     .serve_dir(
///         "backups/",
///         ServeDir::new("/srv/backups")
///             .allow_writes(true)
///             .backslash_as_separator(true),
///     );
/// app.serve().await
/// # }
/// ```
#[derive(Clone)]
pub struct ServeDir {
    inner: Arc<Settings>,
}

#[derive(Debug, Clone)]
struct Settings {
    root: PathBuf,
    writes: bool,
    fsync: bool,
    backslash: bool,
    case_insensitive: bool,
    transports: crate::route::Transports,
}

impl fmt::Debug for ServeDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.inner;
        f.debug_struct("ServeDir")
            .field("root", &s.root)
            .field("allow_writes", &s.writes)
            .field("fsync", &s.fsync)
            .field("backslash_as_separator", &s.backslash)
            .field("case_insensitive", &s.case_insensitive)
            .field("transports", &s.transports)
            .finish()
    }
}

impl ServeDir {
    /// The directory at `root`, read-only, with exact names. The directory
    /// is checked when the server starts ([`App::bind`](crate::App::bind)
    /// fails when it is missing); see [`check`](Self::check).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            inner: Arc::new(Settings {
                root: root.into(),
                writes: false,
                fsync: true,
                backslash: false,
                case_insensitive: false,
                transports: crate::route::Transports::ALL,
            }),
        }
    }

    fn with(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(Arc::make_mut(&mut self.inner));
        self
    }

    /// Whether clients may upload into the directory (default false: a
    /// write request gets ERROR 2). Uploads create or replace files, never
    /// directories, and are atomic.
    pub fn allow_writes(self, on: bool) -> Self {
        self.with(|s| s.writes = on)
    }

    /// Whether an upload is flushed to stable storage before it is renamed
    /// into place (default true). Without it, a crash shortly after the
    /// final ACK can lose a file the client was told is stored; turn it off
    /// for data that can be sent again.
    pub fn fsync(self, on: bool) -> Self {
        self.with(|s| s.fsync = on)
    }

    /// Whether `\` separates directories like `/` (default false: on Unix
    /// it is part of a file name). Windows Deployment Services clients ask
    /// for `boot\x64\wdsnbp.com`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use emmer::{App, fs::ServeDir};
    /// let root = std::env::temp_dir().join(format!("emmer-doc-bs-{}", std::process::id()));
    /// std::fs::create_dir_all(root.join("boot")).unwrap();
    /// std::fs::write(root.join("boot/pxeboot.n12"), "nbp").unwrap();
    /// let app = App::empty().serve_dir("", ServeDir::new(&root).backslash_as_separator(true));
    /// assert_eq!(app.read(r"\boot\pxeboot.n12").await.unwrap(), b"nbp");
    /// # std::fs::remove_dir_all(&root).unwrap();
    /// # }
    /// ```
    pub fn backslash_as_separator(self, on: bool) -> Self {
        self.with(|s| s.backslash = on)
    }

    /// Whether a name that matches no entry exactly is looked up ignoring
    /// case, part by part (default false). An exact match always wins;
    /// among several case-insensitive matches the first in byte order does.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use emmer::{App, fs::ServeDir};
    /// let root = std::env::temp_dir().join(format!("emmer-doc-ci-{}", std::process::id()));
    /// std::fs::create_dir_all(root.join("Boot")).unwrap();
    /// std::fs::write(root.join("Boot/BCD"), "bcd").unwrap();
    /// let app = App::empty().serve_dir("", ServeDir::new(&root).case_insensitive(true));
    /// assert_eq!(app.read("boot/bcd").await.unwrap(), b"bcd");
    /// # std::fs::remove_dir_all(&root).unwrap();
    /// # }
    /// ```
    pub fn case_insensitive(self, on: bool) -> Self {
        self.with(|s| s.case_insensitive = on)
    }

    /// The transports the mount serves (default all): a boot loader over
    /// TFTP only, kernels over HTTP only (see
    /// [`Transports`](crate::route::Transports)).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use emmer::{App, Transport, fs::ServeDir, route::Transports};
    /// let root = std::env::temp_dir().join(format!("emmer-doc-tr-{}", std::process::id()));
    /// std::fs::create_dir_all(&root).unwrap();
    /// std::fs::write(root.join("vmlinuz"), "kernel").unwrap();
    /// let app = App::empty().serve_dir("", ServeDir::new(&root).transports(Transports::HTTP));
    /// assert_eq!(app.read("vmlinuz").transport(Transport::Http).await.unwrap(), b"kernel");
    /// assert!(app.read("vmlinuz").await.is_err(), "not over TFTP");
    /// # std::fs::remove_dir_all(&root).unwrap();
    /// # }
    /// ```
    pub fn transports(self, transports: impl Into<crate::route::Transports>) -> Self {
        let t = transports.into();
        self.with(|s| s.transports = t)
    }

    /// The transports the mount serves ([`transports`](Self::transports)).
    pub(crate) fn transports_served(&self) -> crate::route::Transports {
        self.inner.transports
    }

    /// The root directory, as given.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Whether uploads are allowed ([`allow_writes`](Self::allow_writes)).
    pub fn writes_allowed(&self) -> bool {
        self.inner.writes
    }

    /// Checks that the root is a directory.
    ///
    /// # Errors
    ///
    /// It does not exist, cannot be read, or is not a directory.
    pub fn check(&self) -> std::io::Result<()> {
        let root = self.root();
        let meta = std::fs::metadata(root)?;
        if !meta.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        std::fs::read_dir(root).map(drop)
    }

    /// The regex of a mount under `prefix`, with its `path` group.
    pub(crate) fn pattern(&self, prefix: &str) -> String {
        let sep = if self.inner.backslash { r"[/\\]" } else { "/" };
        let mut p = format!("{sep}*");
        if !prefix.is_empty() {
            let escaped: Vec<String> = prefix.split('/').map(regex::escape).collect();
            let prefix = escaped.join(sep);
            if self.inner.case_insensitive {
                p.push_str(&format!("(?i:{prefix})"));
            } else {
                p.push_str(&prefix);
            }
        }
        p.push_str("(?P<path>(?s:.*))");
        p
    }

    /// The path `name` asks for, relative to the root: checked, `\` read as
    /// `/` if asked, leading slashes and `.` parts dropped.
    fn relative(&self, name: &str) -> Result<PathBuf, TftpError> {
        if name.contains('\0') {
            return Err(TftpError::access_violation(
                "a file name cannot contain a NUL byte",
            ));
        }
        if name.len() > MAX_NAME {
            return Err(TftpError::access_violation(format!(
                "the file name is longer than {MAX_NAME} bytes"
            )));
        }
        let name = if self.inner.backslash {
            name.replace('\\', "/")
        } else {
            name.to_owned()
        };
        let mut rel = PathBuf::new();
        for part in name.split('/') {
            if part.len() > MAX_PART {
                return Err(TftpError::access_violation(format!(
                    "a part of the file name is longer than {MAX_PART} bytes"
                )));
            }
            match part {
                "" | "." => {}
                ".." => return Err(refused()),
                _ => {
                    // One normal component, whatever the platform reads
                    // into it (a drive prefix or separator on Windows).
                    let mut c = Path::new(part).components();
                    match (c.next(), c.next()) {
                        (Some(Component::Normal(p)), None) => rel.push(p),
                        _ => return Err(refused()),
                    }
                }
            }
        }
        if rel.as_os_str().is_empty() {
            return Err(TftpError::access_violation("a file name is required"));
        }
        if self.inner.case_insensitive {
            rel = self.fold_case(&rel);
        }
        Ok(rel)
    }

    /// `rel` with each part replaced by the entry that matches it ignoring
    /// case, where no entry matches exactly. Only names are read here; the
    /// open that follows still refuses whatever leaves the root.
    fn fold_case(&self, rel: &Path) -> PathBuf {
        let mut dir = self.root().to_owned();
        let mut out = PathBuf::new();
        for part in rel.iter() {
            let exact = dir.join(part);
            let found = if std::fs::symlink_metadata(&exact).is_ok() {
                None
            } else {
                let want = part.to_string_lossy().to_lowercase();
                std::fs::read_dir(&dir).ok().and_then(|entries| {
                    let mut names: Vec<OsString> = entries
                        .filter_map(|e| e.ok().map(|e| e.file_name()))
                        .filter(|n| n.to_str().is_some_and(|n| n.to_lowercase() == want))
                        .collect();
                    names.sort();
                    names.into_iter().next()
                })
            };
            let part = found.unwrap_or_else(|| part.to_owned());
            dir.push(&part);
            out.push(&part);
        }
        out
    }

    /// Opens the file `name` asks for, to be streamed. Blocks (it opens a
    /// file): call it from a plain handler, which runs on the blocking pool.
    ///
    /// # Errors
    ///
    /// ERROR 1 when it does not exist; ERROR 2 when the name is refused,
    /// leads out of the root or is not a regular file.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use emmer::{route_read, fs::ServeDir, ReadBody, TftpError};
    ///
    /// // A per-host file if there is one, the default otherwise.
    /// #[route_read(r"grub/(?P<host>[a-z0-9-]+)\.cfg")]
    /// fn grub(host: String) -> Result<ReadBody, TftpError> {
    ///     let dir = ServeDir::new("/srv/tftp/grub");
    ///     dir.open(&format!("{host}.cfg")).or_else(|_| dir.open("default.cfg"))
    /// }
    /// ```
    pub fn open(&self, name: &str) -> Result<ReadBody, TftpError> {
        let rel = self.relative(name)?;
        let file = beneath::open_file(self.root(), &rel).map_err(io_error)?;
        ReadBody::from_std_file(file).map_err(io_error)
    }

    /// Stores an upload as the file `name` asks for, atomically (see the
    /// [module](self)); resolves to the bytes stored. Does not look at
    /// [`allow_writes`](Self::allow_writes), which only decides whether
    /// [`App::serve_dir`](crate::App::serve_dir) takes write requests.
    ///
    /// # Errors
    ///
    /// ERROR 2 when the name is refused, leads out of the root or names a
    /// directory; ERROR 1 when its directory does not exist; the upload's
    /// own error when it was aborted; ERROR 3 for a full disk.
    pub async fn store(&self, name: &str, upload: Upload) -> Result<u64, TftpError> {
        let rel = self.relative(name)?;
        let (Some(parent), Some(file)) = (rel.parent(), rel.file_name()) else {
            return Err(refused());
        };
        let (root, parent, file) = (self.root().to_owned(), parent.to_owned(), file.to_owned());
        let target = file.clone();
        let dir = tokio::task::spawn_blocking(move || {
            let dir = beneath::open_dir(&root, &parent)?;
            if dir.is_dir(&target)? {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::IsADirectory,
                    "a directory has this name",
                ));
            }
            Ok(dir)
        })
        .await
        .map_err(|e| TftpError::undefined(format!("internal server error: {e}")))?
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::IsADirectory {
                TftpError::access_violation("a directory has this name")
            } else {
                io_error(e)
            }
        })?;
        let bytes = upload
            .save_atomic_in(dir, file)
            .fsync(self.inner.fsync)
            .await?;
        tracing::debug!(name, bytes, "stored");
        Ok(bytes)
    }
}

fn refused() -> TftpError {
    TftpError::access_violation("access violation: the path leaves the served directory")
}

/// Maps an I/O error to what the client is told (its text, which names
/// server paths, goes to the log only).
fn io_error(e: std::io::Error) -> TftpError {
    tracing::debug!(error = %e, "file system error");
    if beneath::is_escape(&e) {
        return refused();
    }
    if beneath::is_not_a_file(&e) {
        return TftpError::access_violation("not a regular file");
    }
    match e.kind() {
        std::io::ErrorKind::NotADirectory => TftpError::not_found("file not found"),
        _ => TftpError::from(e),
    }
}
