//! The bytes of a read body on their way into a [`ReadTransfer`]: from
//! memory, from a file read ahead on the blocking pool, or from a stream;
//! netascii conversion on the way.
//!
//! Nothing here blocks the runtime: a file is read on the blocking pool, a
//! window's worth or more per trip (16 to 256 KiB) and one read ahead of
//! what is being sent, so a page-cache miss delays only its own transfer.
//! [`Source::feed`] moves what is at hand into the transfer without
//! waiting; [`Source::refill`] waits for more and is cancel-safe, so the
//! read loop waits for it as one arm of its `select!`.

use std::io;
use std::pin::Pin;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinHandle;

use crate::handler::ReadBody;
use crate::handler::response::BodyKind;
use crate::proto::ReadTransfer;
use crate::proto::netascii::NetasciiEncoder;

/// The smallest and largest read of a file or stream.
const MIN_CHUNK: usize = 16 * 1024;
const MAX_CHUNK: usize = 1024 * 1024;

/// The bytes of a read body, fed into a transfer block by block.
pub(crate) struct Source {
    input: Input,
    netascii: Option<NetasciiEncoder>,
    /// Read from the input, not yet in the transfer: `buf[pos..]`.
    buf: Vec<u8>,
    pos: usize,
    /// The input has no more bytes (what is staged may still be fed).
    eof: bool,
    /// The transfer knows its last block.
    finished: bool,
}

enum Input {
    /// The whole body, staged from the start.
    Bytes(Bytes),
    File(FileInput),
    Stream(Pin<Box<dyn AsyncRead + Send>>),
}

/// A regular file, read on the blocking pool one chunk ahead.
struct FileInput {
    /// The file, while no read is running.
    file: Option<std::fs::File>,
    /// The buffer the next read fills.
    spare: Vec<u8>,
    chunk: usize,
    running: Option<JoinHandle<FileRead>>,
}

/// What a read on the blocking pool gives back: the file and buffer it
/// borrowed, and how many bytes it read.
type FileRead = (std::fs::File, Vec<u8>, io::Result<usize>);

/// Where [`Source::feed`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fed {
    /// The window is full (or the transfer is over): wait for ACKs.
    WindowFull,
    /// Everything at hand went in: wait for [`Source::refill`].
    NeedInput,
    /// The body ended and the transfer knows its last block.
    Finished,
}

impl Source {
    /// A source for `body`; a file starts being read at once.
    pub(crate) fn new(body: ReadBody, netascii: bool, blksize: usize, windowsize: usize) -> Self {
        let chunk = blksize
            .saturating_mul(windowsize)
            .clamp(MIN_CHUNK, MAX_CHUNK);
        let mut source = Self {
            input: Input::Bytes(Bytes::new()),
            netascii: netascii.then(NetasciiEncoder::new),
            buf: Vec::new(),
            pos: 0,
            eof: false,
            finished: false,
        };
        source.input = match body.kind {
            BodyKind::Bytes(data) => {
                source.eof = true;
                Input::Bytes(data)
            }
            BodyKind::File { file, size } => {
                // One byte more than the file, so its end is read at once.
                let chunk = usize::try_from(size.saturating_add(1))
                    .unwrap_or(usize::MAX)
                    .min(chunk);
                let mut f = FileInput {
                    file: Some(file),
                    spare: Vec::with_capacity(chunk),
                    chunk,
                    running: None,
                };
                f.start();
                Input::File(f)
            }
            BodyKind::Stream { reader, .. } => {
                source.buf = Vec::with_capacity(chunk);
                Input::Stream(reader)
            }
        };
        source
    }

    fn staged(&self) -> &[u8] {
        match &self.input {
            Input::Bytes(b) => &b[self.pos..],
            _ => &self.buf[self.pos..],
        }
    }

    /// Moves what is at hand into the transfer's window, without waiting.
    pub(crate) fn feed(&mut self, t: &mut ReadTransfer) -> Fed {
        loop {
            if self.finished {
                return Fed::Finished;
            }
            let Some(out) = t.fill_buf().filter(|b| !b.is_empty()) else {
                return Fed::WindowFull;
            };
            let input = match &self.input {
                Input::Bytes(b) => &b[self.pos..],
                _ => &self.buf[self.pos..],
            };
            let (used, written) = match &mut self.netascii {
                None => {
                    let n = input.len().min(out.len());
                    out[..n].copy_from_slice(&input[..n]);
                    (n, n)
                }
                Some(enc) if input.is_empty() && self.eof => (0, enc.flush(out)),
                Some(enc) => enc.encode(input, out),
            };
            self.pos += used;
            t.commit(written);
            if used == 0 && written == 0 {
                if !self.eof {
                    return Fed::NeedInput;
                }
                t.finish();
                self.finished = true;
                return Fed::Finished;
            }
        }
    }

    /// Waits for more of the body. Cancel-safe: nothing read is lost when
    /// the wait is dropped.
    pub(crate) async fn refill(&mut self) -> io::Result<()> {
        debug_assert!(self.staged().is_empty() && !self.eof);
        match &mut self.input {
            Input::Bytes(_) => self.eof = true,
            Input::File(f) => {
                let done = std::mem::take(&mut self.buf);
                self.pos = 0;
                let (buf, n) = f.next(done).await?;
                self.buf = buf;
                self.pos = 0;
                self.eof = n == 0;
            }
            Input::Stream(reader) => {
                // Staged stays empty (pos at the end) until the read is done.
                let cap = self.buf.capacity();
                self.buf.resize(cap, 0);
                self.pos = cap;
                let n = reader.read(&mut self.buf).await?;
                self.buf.truncate(n);
                self.pos = 0;
                self.eof = n == 0;
            }
        }
        Ok(())
    }
}

impl FileInput {
    /// Starts reading the next chunk on the blocking pool.
    fn start(&mut self) {
        let (Some(mut file), None) = (self.file.take(), &self.running) else {
            return;
        };
        let mut buf = std::mem::take(&mut self.spare);
        let chunk = self.chunk;
        self.running = Some(tokio::task::spawn_blocking(move || {
            buf.resize(chunk, 0);
            let r = read_full(&mut file, &mut buf);
            buf.truncate(*r.as_ref().unwrap_or(&0));
            (file, buf, r)
        }));
    }

    /// The next chunk, read into the returned buffer (`done` is the one
    /// just consumed, reused for the read after); 0 bytes at the end.
    /// Cancel-safe: the running read is kept until it is collected.
    async fn next(&mut self, done: Vec<u8>) -> io::Result<(Vec<u8>, usize)> {
        if self.spare.capacity() == 0 {
            self.spare = done;
        }
        self.start();
        let Some(running) = &mut self.running else {
            return Err(io::Error::other("the file is gone"));
        };
        let (file, buf, r) = running
            .await
            .map_err(|e| io::Error::other(format!("file read task failed: {e}")))?;
        self.running = None;
        self.file = Some(file);
        let n = r?;
        if n > 0 {
            // Read ahead while this chunk is sent.
            self.start();
        }
        Ok((buf, n))
    }
}

/// Reads until `buf` is full or the file ends.
fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::Read;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Learns the size of a streamed body of unknown size by reading up to its
/// (or the server's) measuring limit ahead; see
/// [`ReadBody::measure_tsize_up_to`].
pub(crate) async fn measure(body: ReadBody, default_limit: u64) -> io::Result<ReadBody> {
    let BodyKind::Stream {
        reader,
        size: None,
        measure,
    } = body.kind
    else {
        return Ok(body);
    };
    let limit = measure.unwrap_or(default_limit);
    if limit == 0 {
        return Ok(ReadBody {
            kind: BodyKind::Stream {
                reader,
                size: None,
                measure,
            },
        });
    }
    let mut head = Vec::new();
    let mut limited = reader.take(limit.saturating_add(1));
    limited.read_to_end(&mut head).await?;
    let reader = limited.into_inner();
    if head.len() as u64 <= limit {
        return Ok(ReadBody::from_bytes(head));
    }
    // Longer than the limit: send what was read, then the rest, without tsize.
    let chained = std::io::Cursor::new(head).chain(reader);
    Ok(ReadBody {
        kind: BodyKind::Stream {
            reader: Box::pin(chained),
            size: None,
            measure,
        },
    })
}

/// The size of `data` once converted to netascii (every LF and CR gains a byte).
pub(crate) fn netascii_len(data: &[u8]) -> u64 {
    data.len() as u64 + data.iter().filter(|&&b| b == b'\n' || b == b'\r').count() as u64
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Instant;

    use super::*;
    use crate::proto::{Negotiated, Packet, TransferConfig, TransferParams};

    /// Runs a whole read of `body` through a transfer, a client acking the
    /// last block of every window at once: the bytes the client got.
    async fn drain(body: ReadBody, netascii: bool, blksize: u16, windowsize: u16) -> Vec<u8> {
        let neg = Negotiated {
            params: TransferParams {
                blksize,
                windowsize,
            },
            timeout: None,
            tsize: None,
            oack: Vec::new(),
        };
        let now = Instant::now();
        let mut t = ReadTransfer::new(now, &neg, &TransferConfig::default());
        let mut source = Source::new(body, netascii, blksize.into(), windowsize.into());
        let (mut out, mut got) = (Vec::new(), Vec::new());
        for _ in 0..100_000 {
            if source.feed(&mut t) == Fed::NeedInput {
                source.refill().await.unwrap();
                continue;
            }
            let mut last = None;
            out.clear();
            while let Some(len) = t.poll_transmit(now, &mut out) {
                let p = &out[out.len() - len..];
                let Ok(Packet::Data { block, data }) = Packet::decode(p) else {
                    panic!("not DATA: {p:?}")
                };
                got.extend_from_slice(data);
                last = Some(block);
            }
            if let Some(block) = last {
                t.handle_packet(now, &Packet::Ack { block });
            }
            if t.is_finished() {
                assert_eq!(t.outcome(), Some(&crate::proto::Outcome::Complete));
                return got;
            }
        }
        panic!("the transfer did not end");
    }

    fn noise(len: usize) -> Vec<u8> {
        let mut x = 0x9E37_79B9_u32;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                // Now and then a line end, for netascii.
                if x % 29 == 0 { b'\n' } else { x as u8 }
            })
            .collect()
    }

    fn file_with(data: &[u8]) -> std::fs::File {
        let path = std::env::temp_dir().join(format!(
            "emmer-source-{}-{}",
            std::process::id(),
            data.len()
        ));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(data)
            .unwrap();
        let file = std::fs::File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }

    #[tokio::test]
    async fn files_streams_and_bytes_give_the_same_blocks() {
        // Empty, one short block, exactly two blocks, and more than two
        // read-ahead chunks (256 KiB each at most).
        for len in [0, 100, 1024, 700_001] {
            let data = noise(len);
            for (blksize, windowsize) in [(512, 1), (1428, 16), (65464, 4)] {
                let what = format!("{len} bytes at {blksize}/{windowsize}");
                let file = ReadBody::from_std_file(file_with(&data)).unwrap();
                assert_eq!(
                    drain(file, false, blksize, windowsize).await,
                    data,
                    "file, {what}"
                );
                let stream = ReadBody::from_reader(std::io::Cursor::new(data.clone()), None);
                assert_eq!(
                    drain(stream, false, blksize, windowsize).await,
                    data,
                    "stream, {what}"
                );
                let bytes = ReadBody::from_bytes(data.clone());
                assert_eq!(
                    drain(bytes, false, blksize, windowsize).await,
                    data,
                    "bytes, {what}"
                );
            }
        }
    }

    #[tokio::test]
    async fn netascii_is_converted_on_the_way_from_any_input() {
        let data = noise(300_000);
        let mut want = Vec::new();
        let mut enc = NetasciiEncoder::new();
        let mut out = vec![0u8; 2 * data.len() + 2];
        let (used, n) = enc.encode(&data, &mut out);
        assert_eq!(used, data.len());
        let tail = enc.flush(&mut out[n..]);
        want.extend_from_slice(&out[..n + tail]);
        assert_eq!(want.len() as u64, netascii_len(&data));
        let file = ReadBody::from_std_file(file_with(&data)).unwrap();
        assert_eq!(drain(file, true, 512, 1).await, want, "file");
        let stream = ReadBody::from_reader(std::io::Cursor::new(data.clone()), None);
        assert_eq!(drain(stream, true, 1428, 8).await, want, "stream");
        assert_eq!(
            drain(ReadBody::from_bytes(data), true, 512, 4).await,
            want,
            "bytes"
        );
    }

    #[tokio::test]
    async fn a_file_is_read_ahead_in_chunks_not_blocks() {
        let data = noise(200_000);
        let mut source = Source::new(
            ReadBody::from_std_file(file_with(&data)).unwrap(),
            false,
            512,
            1,
        );
        source.refill().await.unwrap();
        // One trip to the blocking pool brings a whole chunk, many blocks.
        assert_eq!(source.staged().len(), MIN_CHUNK);
    }

    #[tokio::test]
    async fn tsize_of_a_stream_is_measured_up_to_the_limit() {
        let short = ReadBody::from_reader(&b"0123456789"[..], None);
        assert_eq!(measure(short, 64).await.unwrap().size(), Some(10));
        let long = ReadBody::from_reader(&b"0123456789"[..], None);
        let long = measure(long, 4).await.unwrap();
        assert_eq!(long.size(), None, "longer than the limit: no size");
        let body = drain(long, false, 512, 1).await;
        assert_eq!(body, b"0123456789", "and no byte is lost");
    }
}
