//! Streaming uploads: [`Upload`] hands a write handler the data as blocks
//! arrive, with back-pressure, and [`Upload::save_atomic`] commits it to a
//! file only when the transfer completed.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::sync::{mpsc, oneshot};

use crate::TftpError;

/// What the engine sends down an upload's channel.
pub(crate) type Chunk = Result<Bytes, TftpError>;

/// The engine's end of an upload.
pub(crate) struct UploadSender {
    pub(crate) tx: mpsc::Sender<Chunk>,
    pub(crate) started: oneshot::Receiver<()>,
    /// How the upload ended, set by the engine before it drops `tx`. The
    /// end of the channel counts as the end of the file only when this says
    /// `Ok`: an engine that stops for any other reason, or never says, has
    /// aborted the upload.
    pub(crate) end: Arc<OnceLock<Result<(), TftpError>>>,
}

/// An upload being received, for write handlers that stream.
///
/// The handler is called when the write request arrives, before anything is
/// acknowledged. Returning an error before the first read refuses the
/// transfer at once; the first read lets it start. Reads yield the data in
/// order as it arrives, and the engine acknowledges no faster than the
/// handler reads. The read after the last byte returns the end (`None`, or
/// 0 bytes) only when the whole file has arrived; an aborted transfer (the
/// client gave up or went silent) is an error instead, so a handler can never
/// mistake a partial upload for a complete one. What the handler returns
/// then decides between the final ACK and an ERROR.
///
/// # Examples
///
/// ```no_run
/// use emmer::{route_write, TftpError, Upload};
///
/// #[route_write(r"backups/(?P<host>[a-z0-9-]+)\.cfg")]
/// async fn backup(host: String, upload: Upload) -> Result<(), TftpError> {
///     if upload.size_hint().is_some_and(|n| n > 1 << 20) {
///         return Err(TftpError::disk_full("configs are at most 1 MiB"));
///     }
///     upload.save_atomic(format!("/srv/backups/{host}.cfg")).await?;
///     Ok(())
/// }
/// ```
pub struct Upload {
    rx: mpsc::Receiver<Chunk>,
    started: Option<oneshot::Sender<()>>,
    end: Arc<OnceLock<Result<(), TftpError>>>,
    size_hint: Option<u64>,
    current: Bytes,
    received: u64,
    ended: bool,
}

impl fmt::Debug for Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upload")
            .field("size_hint", &self.size_hint)
            .field("received", &self.received)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Upload {
    /// A connected pair: the engine's sender and the handler's upload.
    /// `depth` chunks may wait in between.
    pub(crate) fn channel(size_hint: Option<u64>, depth: usize) -> (UploadSender, Upload) {
        let (tx, rx) = mpsc::channel(depth.max(1));
        let (start_tx, start_rx) = oneshot::channel();
        let end = Arc::new(OnceLock::new());
        (
            UploadSender {
                tx,
                started: start_rx,
                end: end.clone(),
            },
            Upload {
                rx,
                started: Some(start_tx),
                end,
                size_hint,
                current: Bytes::new(),
                received: 0,
                ended: false,
            },
        )
    }

    /// An upload made of the given bytes, complete, for tests of handlers.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut up = emmer::Upload::from_bytes("hello");
    /// assert_eq!(up.to_vec().await.unwrap(), b"hello");
    /// # }
    /// ```
    pub fn from_bytes(data: impl Into<Bytes>) -> Upload {
        let data = data.into();
        let (tx, up) = Upload::channel(Some(data.len() as u64), 1);
        if !data.is_empty() {
            let _ = tx.tx.try_send(Ok(data));
        }
        let _ = tx.end.set(Ok(()));
        drop(tx);
        up
    }

    /// The size the client announced (`tsize`, RFC 2349), if it did.
    pub fn size_hint(&self) -> Option<u64> {
        self.size_hint
    }

    /// Bytes read so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The channel ended: the end of the file if the engine said the upload
    /// completed, its error otherwise.
    fn closed(&self) -> Result<(), TftpError> {
        match self.end.get() {
            Some(r) => r.clone(),
            None => Err(TftpError::undefined("the upload was aborted")),
        }
    }

    fn start(&mut self) {
        if let Some(s) = self.started.take() {
            let _ = s.send(());
        }
    }

    /// The next piece of data; `Ok(None)` once the whole upload has arrived.
    ///
    /// # Errors
    ///
    /// The transfer was aborted before it completed.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, TftpError> {
        self.start();
        if !self.current.is_empty() {
            let c = std::mem::take(&mut self.current);
            self.received += c.len() as u64;
            return Ok(Some(c));
        }
        if self.ended {
            return Ok(None);
        }
        match self.rx.recv().await {
            Some(Ok(c)) => {
                self.received += c.len() as u64;
                Ok(Some(c))
            }
            Some(Err(e)) => {
                self.ended = true;
                Err(e)
            }
            None => {
                self.ended = true;
                self.closed().map(|()| None)
            }
        }
    }

    /// Reads the whole upload into memory.
    ///
    /// # Errors
    ///
    /// The transfer was aborted.
    pub async fn to_vec(&mut self) -> Result<Vec<u8>, TftpError> {
        let mut v = Vec::with_capacity(self.size_hint.unwrap_or(0).min(1 << 20) as usize);
        while let Some(c) = self.chunk().await? {
            v.extend_from_slice(&c);
        }
        Ok(v)
    }

    /// Streams the upload into `path` atomically: into a temporary file in
    /// the same directory, renamed over `path` only once the whole upload has
    /// arrived. A failed or aborted upload leaves no file behind. Returns the
    /// number of bytes written.
    ///
    /// # Errors
    ///
    /// The transfer was aborted, or the file could not be written (the
    /// client sees the I/O error's TFTP code, e.g. ERROR 3 for a full disk).
    pub async fn save_atomic(mut self, path: impl AsRef<Path>) -> Result<u64, TftpError> {
        let path = path.as_ref();
        let tmp = temp_path(path);
        let result = async {
            let mut file = tokio::fs::File::create(&tmp).await.map_err(|e| {
                tracing::warn!(path = %tmp.display(), error = %e, "cannot create the upload's temporary file");
                TftpError::from(e)
            })?;
            let mut n = 0u64;
            while let Some(c) = self.chunk().await? {
                file.write_all(&c).await?;
                n += c.len() as u64;
            }
            file.sync_all().await?;
            drop(file);
            tokio::fs::rename(&tmp, path).await?;
            Ok(n)
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }
}

/// A hidden temporary name beside `path`, unique within the process.
fn temp_path(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "upload".into());
    path.with_file_name(format!(".{name}.emmer-{}-{n}.tmp", std::process::id()))
}

impl AsyncRead for Upload {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.start();
        if this.current.is_empty() && !this.ended {
            match this.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(c))) => this.current = c,
                Poll::Ready(Some(Err(e))) => {
                    this.ended = true;
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionAborted, e)));
                }
                Poll::Ready(None) => {
                    this.ended = true;
                    if let Err(e) = this.closed() {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            e,
                        )));
                    }
                }
            }
        }
        let n = buf.remaining().min(this.current.len());
        buf.put_slice(&this.current.split_to(n));
        this.received += n as u64;
        Poll::Ready(Ok(()))
    }
}

/// Blocking reads, for plain (non-async) handlers, which run where blocking
/// is allowed.
impl io::Read for Upload {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.start();
        if self.current.is_empty() && !self.ended {
            match self.rx.blocking_recv() {
                Some(Ok(c)) => self.current = c,
                Some(Err(e)) => {
                    self.ended = true;
                    return Err(io::Error::new(io::ErrorKind::ConnectionAborted, e));
                }
                None => {
                    self.ended = true;
                    self.closed()
                        .map_err(|e| io::Error::new(io::ErrorKind::ConnectionAborted, e))?;
                }
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current.split_to(n));
        self.received += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_end_of_the_channel_is_the_end_of_the_file_only_when_the_engine_says_so() {
        // Data queued, then the engine stops without a word: an abort.
        let (tx, mut up) = Upload::channel(None, 4);
        tx.tx.send(Ok(Bytes::from_static(b"part"))).await.unwrap();
        drop(tx);
        assert_eq!(up.chunk().await.unwrap().unwrap(), "part");
        assert!(
            up.chunk().await.is_err(),
            "a partial upload must not read as complete"
        );

        // A full queue when the engine aborts: the reason still arrives.
        let (tx, mut up) = Upload::channel(None, 1);
        tx.tx.send(Ok(Bytes::from_static(b"a"))).await.unwrap();
        tx.end
            .set(Err(TftpError::disk_full("over the limit")))
            .unwrap();
        drop(tx);
        assert_eq!(up.chunk().await.unwrap().unwrap(), "a");
        assert_eq!(
            up.chunk().await.unwrap_err().code(),
            crate::ErrorCode::DiskFull
        );

        // Complete.
        let (tx, mut up) = Upload::channel(None, 1);
        tx.tx.send(Ok(Bytes::from_static(b"all"))).await.unwrap();
        tx.end.set(Ok(())).unwrap();
        drop(tx);
        assert_eq!(up.to_vec().await.unwrap(), b"all");
    }

    #[tokio::test]
    async fn an_aborted_upload_leaves_no_file() {
        let dir = std::env::temp_dir().join(format!("emmer-upload-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (tx, up) = Upload::channel(None, 2);
        tx.tx.send(Ok(Bytes::from_static(b"half"))).await.unwrap();
        drop(tx);
        assert!(up.save_atomic(dir.join("cfg")).await.is_err());
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "no file, no temporary file"
        );
        std::fs::remove_dir(&dir).unwrap();
    }
}
