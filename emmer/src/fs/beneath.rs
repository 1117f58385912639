//! Opening files beneath a root directory so that no `..`, absolute name or
//! symbolic link leads out of it.
//!
//! On Linux the kernel resolves the name: `openat2(2)` with
//! `RESOLVE_BENEATH` (Linux 5.6+) refuses, atomically, any resolution that
//! would leave the root (a `..` above it, an absolute symlink, a symlink
//! pointing out), while symlinks that stay inside are followed. It is
//! reached through `rustix`, because the workspace forbids `unsafe` code
//! and std has no `openat`. Where the kernel lacks `openat2` (ENOSYS), and
//! on other systems, the path is resolved with `canonicalize` and checked to
//! lie under the canonical root: the same rule, but a process that changes
//! the tree between the check and the open can race it.
//!
//! Uploads go into a directory handle ([`DirHandle`]): on Linux a
//! descriptor of the directory, opened beneath the root, in which the
//! temporary file is created and renamed (`openat`, `renameat`), so the
//! upload lands in the directory that was checked.

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
#[cfg(target_os = "linux")]
use std::sync::Arc;

/// The marker of an I/O error that means "the name leads out of the root".
#[derive(Debug)]
pub(crate) struct Escape;

impl fmt::Display for Escape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the path leaves the served directory")
    }
}

impl std::error::Error for Escape {}

pub(crate) fn escape() -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, Escape)
}

/// Whether `e` says the name leads out of the root.
pub(crate) fn is_escape(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<Escape>())
}

/// The marker of an I/O error that means "not a regular file".
#[derive(Debug)]
pub(crate) struct NotAFile;

impl fmt::Display for NotAFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a regular file")
    }
}

impl std::error::Error for NotAFile {}

pub(crate) fn is_not_a_file(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<NotAFile>())
}

fn not_a_file() -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, NotAFile)
}

/// A directory a file is created in and renamed into place: see
/// [`Upload::save_atomic`](crate::Upload::save_atomic).
#[derive(Clone)]
pub(crate) enum DirHandle {
    /// By path (`Upload::save_atomic(path)`, and the fallback).
    Path(PathBuf),
    /// An open descriptor of the directory (Linux, beneath a root).
    #[cfg(target_os = "linux")]
    Fd(Arc<rustix::fd::OwnedFd>),
}

impl fmt::Debug for DirHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirHandle::Path(p) => write!(f, "{}", p.display()),
            #[cfg(target_os = "linux")]
            DirHandle::Fd(_) => f.write_str("(directory beneath the served root)"),
        }
    }
}

impl DirHandle {
    /// Creates `name`, which must not exist yet, for writing.
    pub(crate) fn create_new(&self, name: &OsStr) -> io::Result<File> {
        match self {
            DirHandle::Path(dir) => std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(dir.join(name)),
            #[cfg(target_os = "linux")]
            DirHandle::Fd(dir) => {
                use rustix::fs::{Mode, OFlags, openat};
                let flags = OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC;
                Ok(File::from(openat(&**dir, name, flags, Mode::from(0o666))?))
            }
        }
    }

    /// Renames `from` over `to`, both in this directory.
    pub(crate) fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        match self {
            DirHandle::Path(dir) => std::fs::rename(dir.join(from), dir.join(to)),
            #[cfg(target_os = "linux")]
            DirHandle::Fd(dir) => Ok(rustix::fs::renameat(&**dir, from, &**dir, to)?),
        }
    }

    /// Removes `name` from this directory.
    pub(crate) fn remove(&self, name: &OsStr) -> io::Result<()> {
        match self {
            DirHandle::Path(dir) => std::fs::remove_file(dir.join(name)),
            #[cfg(target_os = "linux")]
            DirHandle::Fd(dir) => Ok(rustix::fs::unlinkat(
                &**dir,
                name,
                rustix::fs::AtFlags::empty(),
            )?),
        }
    }

    /// Whether `name` is a directory (a symbolic link is not followed).
    pub(crate) fn is_dir(&self, name: &OsStr) -> io::Result<bool> {
        match self {
            DirHandle::Path(dir) => match std::fs::symlink_metadata(dir.join(name)) {
                Ok(m) => Ok(m.is_dir()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e),
            },
            #[cfg(target_os = "linux")]
            DirHandle::Fd(dir) => {
                use rustix::fs::{AtFlags, FileType, statat};
                match statat(&**dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => Ok(FileType::from_raw_mode(st.st_mode) == FileType::Directory),
                    Err(rustix::io::Errno::NOENT) => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }
}

/// Opens `rel` (relative, without `..`) beneath `root` for reading; it
/// must be a regular file.
pub(crate) fn open_file(root: &Path, rel: &Path) -> io::Result<File> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{Mode, OFlags};
        // NONBLOCK: opening a FIFO someone left in the tree must not hang;
        // it does nothing to a regular file.
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
        if let Some(r) = linux::open_beneath(root, rel, flags, Mode::empty()) {
            let file = File::from(r?);
            return if file.metadata()?.is_file() {
                Ok(file)
            } else {
                Err(not_a_file())
            };
        }
    }
    let path = resolve(root, rel)?;
    if !std::fs::metadata(&path)?.is_file() {
        return Err(not_a_file());
    }
    File::open(path)
}

/// Opens the directory `rel` (relative, without `..`; empty for the root
/// itself) beneath `root`, to store an upload in.
pub(crate) fn open_dir(root: &Path, rel: &Path) -> io::Result<DirHandle> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{Mode, OFlags};
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        if let Some(r) = linux::open_beneath(root, rel, flags, Mode::empty()) {
            return Ok(DirHandle::Fd(Arc::new(r?)));
        }
    }
    let path = resolve(root, rel)?;
    if !std::fs::metadata(&path)?.is_dir() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "not a directory"));
    }
    Ok(DirHandle::Path(path))
}

/// The fallback: `rel` resolved (symbolic links followed) and checked to
/// lie under the canonical root.
fn resolve(root: &Path, rel: &Path) -> io::Result<PathBuf> {
    let root = std::fs::canonicalize(root)?;
    let path = std::fs::canonicalize(root.join(rel))?;
    if path.starts_with(&root) {
        Ok(path)
    } else {
        tracing::debug!(path = %path.display(), "refused: resolves outside the root");
        Err(escape())
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};

    use rustix::fd::OwnedFd;
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    use rustix::io::Errno;

    /// Set once the kernel said it has no `openat2`.
    static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

    /// `openat2(root, rel, RESOLVE_BENEATH)`; `None` when the kernel does
    /// not have it (the caller falls back).
    pub(super) fn open_beneath(
        root: &Path,
        rel: &Path,
        flags: OFlags,
        mode: Mode,
    ) -> Option<io::Result<OwnedFd>> {
        if NO_OPENAT2.load(Ordering::Relaxed) {
            return None;
        }
        let dir = match rustix::fs::open(
            root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(d) => d,
            Err(e) => return Some(Err(e.into())),
        };
        let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        // EAGAIN: a rename elsewhere raced the resolution; try again.
        for _ in 0..8 {
            return match rustix::fs::openat2(&dir, rel, flags, mode, resolve) {
                Ok(fd) => Some(Ok(fd)),
                Err(Errno::AGAIN) => continue,
                Err(Errno::NOSYS) => {
                    NO_OPENAT2.store(true, Ordering::Relaxed);
                    None
                }
                // EXDEV: the resolution would leave the root; ELOOP: too
                // many links (or a magic link).
                Err(Errno::XDEV | Errno::LOOP) => {
                    tracing::debug!(path = %rel.display(), "refused: resolves outside the root");
                    Some(Err(super::escape()))
                }
                Err(e) => Some(Err(e.into())),
            };
        }
        Some(Err(io::Error::new(
            io::ErrorKind::ResourceBusy,
            "the served tree kept changing during the lookup",
        )))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// `<tmp>/root/{f, in -> f, out -> ../secret, sub/up -> ../..}`, `<tmp>/secret`.
    fn tree(label: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("emmer-beneath-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("f"), "f").unwrap();
        std::fs::write(dir.join("secret"), "secret").unwrap();
        std::os::unix::fs::symlink("f", root.join("in")).unwrap();
        std::os::unix::fs::symlink("../secret", root.join("out")).unwrap();
        std::os::unix::fs::symlink("../..", root.join("sub/up")).unwrap();
        dir
    }

    /// The kernel's rule (Linux) and the fallback's agree on each name.
    #[test]
    fn both_resolutions_refuse_the_same_escapes() {
        let dir = tree("rules");
        let root = dir.join("root");
        for (name, inside) in [
            ("f", true),
            ("in", true),
            ("out", false),
            ("sub/up/secret", false),
        ] {
            let rel = Path::new(name);
            let opened = open_file(&root, rel);
            let resolved = resolve(&root, rel);
            if inside {
                assert!(opened.is_ok(), "{name}: {opened:?}");
                assert!(resolved.is_ok(), "{name}: {resolved:?}");
            } else {
                assert!(opened.as_ref().is_err_and(is_escape), "{name}: {opened:?}");
                assert!(
                    resolved.as_ref().is_err_and(is_escape),
                    "{name}: {resolved:?}"
                );
            }
        }
        // Out and back in: the kernel refuses the step out; the fallback
        // judges where the path ends, inside. Neither reads outside.
        let back_in = Path::new("sub/up/root/f");
        #[cfg(target_os = "linux")]
        assert!(open_file(&root, back_in).is_err_and(|e| is_escape(&e)));
        assert!(resolve(&root, back_in).is_ok_and(|p| p.ends_with("root/f")));
        assert!(open_file(&root, Path::new("sub")).is_err_and(|e| is_not_a_file(&e)));
        assert!(open_dir(&root, Path::new("sub/up")).is_err_and(|e| is_escape(&e)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
