//! Streaming uploads: [`Upload`] hands a write handler the data as blocks
//! arrive, with back-pressure, and [`Upload::save_atomic`] commits it to a
//! file only when the transfer completed.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::future::{Future, IntoFuture};
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::TftpError;
use crate::fs::DirHandle;

/// What travels from the engine to an upload's handler: the data in order,
/// then exactly one end. The end of the upload is said here and nowhere
/// else; a channel that closes without an `End` is an aborted upload.
#[derive(Debug)]
pub(crate) enum Chunk {
    Data(Bytes),
    End(Ending),
}

/// How an upload ended.
#[derive(Debug, Clone)]
pub(crate) enum Ending {
    /// Every block arrived: the handler's verdict decides between the final
    /// ACK and an ERROR.
    Complete,
    /// The transfer stopped first (the client gave up or went silent, the
    /// upload went over its limit, the server is stopping).
    Aborted(TftpError),
}

/// The engine's end of an upload: the data channel, and the signal that the
/// handler started reading.
pub(crate) struct UploadSender {
    pub(crate) tx: mpsc::Sender<Chunk>,
    pub(crate) started: oneshot::Receiver<()>,
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
    size_hint: Option<u64>,
    current: Bytes,
    received: u64,
    /// Once the end has been read: the end of the file, or why not.
    end: Option<Result<(), TftpError>>,
    /// The server's memory for uploads held whole, shared by all transfers.
    budget: Option<Arc<Semaphore>>,
}

/// The memory budget of uploads held whole, in KiB permits.
pub(crate) fn budget(bytes: u64) -> Arc<Semaphore> {
    let kib = usize::try_from(bytes / 1024).unwrap_or(usize::MAX);
    Arc::new(Semaphore::new(kib.min(Semaphore::MAX_PERMITS)))
}

impl fmt::Debug for Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upload")
            .field("size_hint", &self.size_hint)
            .field("received", &self.received)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl Upload {
    /// A connected pair: the engine's sender and the handler's upload.
    /// `depth` chunks may wait in between.
    pub(crate) fn channel(size_hint: Option<u64>, depth: usize) -> (UploadSender, Upload) {
        let (tx, rx) = mpsc::channel(depth.max(1));
        let (start_tx, start_rx) = oneshot::channel();
        (
            UploadSender {
                tx,
                started: start_rx,
            },
            Upload {
                rx,
                started: Some(start_tx),
                size_hint,
                current: Bytes::new(),
                received: 0,
                end: None,
                budget: None,
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
        let (tx, up) = Upload::channel(Some(data.len() as u64), 2);
        if !data.is_empty() {
            let _ = tx.tx.try_send(Chunk::Data(data));
        }
        let _ = tx.tx.try_send(Chunk::End(Ending::Complete));
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

    /// Takes the next message off the channel: data, or the end (which is
    /// remembered, so every later read says the same).
    fn on_message(&mut self, message: Option<Chunk>) -> Result<Option<Bytes>, TftpError> {
        let end = match message {
            Some(Chunk::Data(c)) => return Ok(Some(c)),
            Some(Chunk::End(Ending::Complete)) => Ok(()),
            Some(Chunk::End(Ending::Aborted(e))) => Err(e),
            // The engine went away without saying the upload was complete.
            None => Err(TftpError::undefined("the upload was aborted")),
        };
        self.end = Some(end.clone());
        end.map(|()| None)
    }

    /// The end, once it has been read.
    fn ended(&self) -> Option<Result<Option<Bytes>, TftpError>> {
        self.end.as_ref().map(|e| e.clone().map(|()| None))
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
        let c = if !self.current.is_empty() {
            Some(std::mem::take(&mut self.current))
        } else if let Some(end) = self.ended() {
            return end;
        } else {
            let message = self.rx.recv().await;
            self.on_message(message)?
        };
        if let Some(c) = &c {
            self.received += c.len() as u64;
        }
        Ok(c)
    }

    /// The next piece of data if one has arrived; `Ok(None)` if none is
    /// waiting (or the upload is complete).
    fn try_chunk(&mut self) -> Result<Option<Bytes>, TftpError> {
        let c = if !self.current.is_empty() {
            Some(std::mem::take(&mut self.current))
        } else if let Some(end) = self.ended() {
            return end;
        } else {
            match self.rx.try_recv() {
                Ok(m) => self.on_message(Some(m))?,
                Err(mpsc::error::TryRecvError::Empty) => None,
                Err(mpsc::error::TryRecvError::Disconnected) => self.on_message(None)?,
            }
        };
        if let Some(c) = &c {
            self.received += c.len() as u64;
        }
        Ok(c)
    }

    /// Draws on `budget` when the upload is read whole for a `data` handler.
    pub(crate) fn within(mut self, budget: Arc<Semaphore>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Reads the whole upload into memory for a `data` handler, within the
    /// server's budget for uploads held whole: the memory stays counted
    /// until the returned permit is dropped (after the handler).
    ///
    /// # Errors
    ///
    /// The transfer was aborted, or the budget is spent (ERROR 3: the
    /// client may try again later).
    pub(crate) async fn read_whole_counted(
        &mut self,
    ) -> Result<(Vec<u8>, Option<OwnedSemaphorePermit>), TftpError> {
        let mut v = Vec::with_capacity(self.size_hint.unwrap_or(0).min(1 << 20) as usize);
        let mut held: Option<OwnedSemaphorePermit> = None;
        while let Some(c) = self.chunk().await? {
            v.extend_from_slice(&c);
            let Some(budget) = &self.budget else { continue };
            let need = v.len().div_ceil(1024);
            let have = held.as_ref().map_or(0, OwnedSemaphorePermit::num_permits);
            if need > have {
                let more = u32::try_from(need - have).unwrap_or(u32::MAX);
                let permit = budget.clone().try_acquire_many_owned(more).map_err(|_| {
                    tracing::warn!(
                        bytes = v.len(),
                        "uploads held in memory reached EMMER_MAX_BUFFERED_UPLOADS; refusing this one"
                    );
                    TftpError::disk_full(
                        "the server holds too many uploads in memory; try again later",
                    )
                })?;
                match &mut held {
                    Some(h) => h.merge(permit),
                    None => held = Some(permit),
                }
            }
        }
        Ok((v, held))
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
    /// arrived and (unless [`SaveAtomic::fsync`] turns it off) has been
    /// flushed to stable storage. A failed or aborted upload leaves no file
    /// behind. Resolves to the number of bytes written.
    ///
    /// Writes go to the blocking pool in batches (what has arrived since the
    /// last write, up to 1 MiB), not one trip per block.
    ///
    /// # Errors
    ///
    /// The transfer was aborted, or the file could not be written (the
    /// client sees the I/O error's TFTP code, e.g. ERROR 3 for a full disk).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(upload: emmer::Upload) -> Result<(), emmer::TftpError> {
    /// // Durable: fsync before the rename (the default).
    /// upload.save_atomic("/srv/backups/sw1.cfg").await?;
    /// # Ok(()) }
    /// # async fn demo2(upload: emmer::Upload) -> Result<(), emmer::TftpError> {
    /// // Faster, for data that can be fetched again: no fsync.
    /// upload.save_atomic("/srv/cache/image.bin").fsync(false).await?;
    /// # Ok(()) }
    /// ```
    pub fn save_atomic(self, path: impl AsRef<Path>) -> SaveAtomic {
        let path = path.as_ref();
        let dir = path.parent().unwrap_or(Path::new("")).to_owned();
        SaveAtomic {
            upload: self,
            dir: DirHandle::Path(dir),
            name: path.file_name().map(OsStr::to_owned),
            fsync: true,
        }
    }

    /// [`save_atomic`](Self::save_atomic) into a directory already opened
    /// (by [`ServeDir`](crate::fs::ServeDir), beneath its root).
    pub(crate) fn save_atomic_in(self, dir: DirHandle, name: OsString) -> SaveAtomic {
        SaveAtomic {
            upload: self,
            dir,
            name: Some(name),
            fsync: true,
        }
    }
}

/// The most bytes one blocking write of [`Upload::save_atomic`] takes.
const SAVE_BATCH: usize = 1 << 20;

/// An upload being saved to a file: see [`Upload::save_atomic`]. Await it
/// (it implements [`IntoFuture`]).
#[must_use = "the upload is saved only when this is awaited"]
#[derive(Debug)]
pub struct SaveAtomic {
    upload: Upload,
    /// The directory of the file, and its name there (`None`: the path had
    /// no file name, an error when awaited).
    dir: DirHandle,
    name: Option<OsString>,
    fsync: bool,
}

impl SaveAtomic {
    /// Whether to flush the file to stable storage before renaming it into
    /// place (default true). Without it a crash shortly after the final ACK
    /// can lose an upload the client was told is stored.
    pub fn fsync(mut self, on: bool) -> Self {
        self.fsync = on;
        self
    }

    async fn run(self) -> Result<u64, TftpError> {
        let SaveAtomic {
            mut upload,
            dir,
            name,
            fsync,
        } = self;
        let Some(name) = name else {
            tracing::warn!("save_atomic was given a path without a file name");
            return Err(TftpError::undefined("internal server error"));
        };
        let tmp = temp_name(&name);
        let result = async {
            let (d, t) = (dir.clone(), tmp.clone());
            let mut file = blocking(move || d.create_new(&t)).await.map_err(|e| {
                tracing::warn!(dir = ?dir, file = ?tmp, error = %e, "cannot create the upload's temporary file");
                TftpError::from(e)
            })?;
            let mut n = 0u64;
            // Wait for data, then take whatever else has arrived, and write
            // it in one trip to the blocking pool.
            while let Some(first) = upload.chunk().await? {
                let mut size = first.len();
                let mut batch = vec![first];
                while size < SAVE_BATCH {
                    match upload.try_chunk()? {
                        Some(c) => {
                            size += c.len();
                            batch.push(c);
                        }
                        None => break,
                    }
                }
                n += size as u64;
                file = blocking(move || {
                    use std::io::Write;
                    for c in &batch {
                        file.write_all(c)?;
                    }
                    Ok(file)
                })
                .await?;
            }
            let (d, t, name) = (dir.clone(), tmp.clone(), name.clone());
            blocking(move || {
                if fsync {
                    file.sync_all()?;
                }
                drop(file);
                d.rename(&t, &name)
            })
            .await?;
            Ok(n)
        }
        .await;
        if result.is_err() {
            let _ = blocking(move || dir.remove(&tmp)).await;
        }
        result
    }
}

impl IntoFuture for SaveAtomic {
    type Output = Result<u64, TftpError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// Runs file I/O on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(format!("file write task failed: {e}"))))
}

/// A hidden temporary name beside `name`, unique within the process.
fn temp_name(name: &OsStr) -> OsString {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // Short enough that the temporary name fits where the name does.
    let name: String = name.to_string_lossy().chars().take(64).collect();
    format!(".{name}.emmer-{}-{n}.tmp", std::process::id()).into()
}

fn aborted(e: TftpError) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, e)
}

impl AsyncRead for Upload {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.start();
        if this.current.is_empty() {
            if let Some(end) = this.ended() {
                return Poll::Ready(end.map(drop).map_err(aborted));
            }
            let message = std::task::ready!(this.rx.poll_recv(cx));
            match this.on_message(message) {
                Ok(Some(c)) => this.current = c,
                Ok(None) => return Poll::Ready(Ok(())),
                Err(e) => return Poll::Ready(Err(aborted(e))),
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
        if self.current.is_empty() {
            if let Some(end) = self.ended() {
                return end.map(|_| 0).map_err(aborted);
            }
            let message = self.rx.blocking_recv();
            match self.on_message(message).map_err(aborted)? {
                Some(c) => self.current = c,
                None => return Ok(0),
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

    fn data(s: &'static str) -> Chunk {
        Chunk::Data(Bytes::from_static(s.as_bytes()))
    }

    #[tokio::test]
    async fn the_end_of_the_channel_is_the_end_of_the_file_only_when_the_engine_says_so() {
        // Data queued, then the engine goes away without a word: an abort.
        let (tx, mut up) = Upload::channel(None, 4);
        tx.tx.send(data("part")).await.unwrap();
        drop(tx);
        assert_eq!(up.chunk().await.unwrap().unwrap(), "part");
        assert!(
            up.chunk().await.is_err(),
            "a partial upload must not read as complete"
        );
        assert!(up.chunk().await.is_err(), "and it stays an error");

        // The engine says why it aborted: the reason reaches the handler.
        let (tx, mut up) = Upload::channel(None, 2);
        tx.tx.send(data("a")).await.unwrap();
        let over = TftpError::disk_full("over the limit");
        tx.tx.send(Chunk::End(Ending::Aborted(over))).await.unwrap();
        assert_eq!(up.chunk().await.unwrap().unwrap(), "a");
        assert_eq!(
            up.chunk().await.unwrap_err().code(),
            crate::ErrorCode::DiskFull
        );

        // Complete, even if the engine is gone by the time it is read.
        let (tx, mut up) = Upload::channel(None, 2);
        tx.tx.send(data("all")).await.unwrap();
        tx.tx.send(Chunk::End(Ending::Complete)).await.unwrap();
        drop(tx);
        assert_eq!(up.to_vec().await.unwrap(), b"all");
        assert_eq!(
            up.chunk().await.unwrap(),
            None,
            "the end reads as the end again"
        );
    }

    #[tokio::test]
    async fn reading_is_what_starts_the_transfer() {
        let (mut tx, mut up) = Upload::channel(None, 2);
        assert!(tx.started.try_recv().is_err(), "not started before a read");
        tx.tx.send(data("x")).await.unwrap();
        up.chunk().await.unwrap();
        assert!(tx.started.try_recv().is_ok());
    }

    #[tokio::test]
    async fn save_atomic_writes_every_chunk_in_order() {
        let dir = std::env::temp_dir().join(format!("emmer-upload-save-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (tx, up) = Upload::channel(None, 64);
        let mut want = Vec::new();
        for i in 0..40u8 {
            let block = vec![i; 1000 + usize::from(i)];
            want.extend_from_slice(&block);
            tx.tx.send(Chunk::Data(block.into())).await.unwrap();
        }
        tx.tx.send(Chunk::End(Ending::Complete)).await.unwrap();
        let n = up.save_atomic(dir.join("f")).fsync(false).await.unwrap();
        assert_eq!(n, want.len() as u64);
        assert_eq!(std::fs::read(dir.join("f")).unwrap(), want);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn an_aborted_upload_leaves_no_file() {
        let dir = std::env::temp_dir().join(format!("emmer-upload-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (tx, up) = Upload::channel(None, 2);
        tx.tx.send(data("half")).await.unwrap();
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
