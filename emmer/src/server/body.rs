//! Feeding a read body into a [`ReadTransfer`] one block at a time, with
//! netascii conversion on the way.

use std::io;
use std::pin::Pin;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::handler::ReadBody;
use crate::handler::response::BodyKind;
use crate::proto::ReadTransfer;
use crate::proto::netascii::NetasciiEncoder;

/// The bytes of a read body, streamed into blocks.
pub(crate) struct Source {
    input: Input,
    netascii: Option<Netascii>,
    done: bool,
}

enum Input {
    Bytes { data: Bytes, pos: usize },
    File(FileReader),
    Stream(Pin<Box<dyn AsyncRead + Send>>),
}

struct Netascii {
    encoder: NetasciiEncoder,
    /// Raw bytes read from a stream and not yet converted.
    raw: Vec<u8>,
    raw_pos: usize,
}

impl Source {
    pub(crate) fn new(body: ReadBody, netascii: bool, blksize: usize, windowsize: usize) -> Self {
        let input = match body.kind {
            BodyKind::Bytes(data) => Input::Bytes { data, pos: 0 },
            BodyKind::File { file, size } => {
                Input::File(FileReader::new(file, size, blksize, windowsize))
            }
            BodyKind::Stream { reader, .. } => Input::Stream(reader),
        };
        let netascii = netascii.then(|| Netascii {
            encoder: NetasciiEncoder::new(),
            raw: match input {
                Input::Stream(_) | Input::File(_) => Vec::with_capacity(blksize.max(512)),
                Input::Bytes { .. } => Vec::new(),
            },
            raw_pos: 0,
        });
        Self {
            input,
            netascii,
            done: false,
        }
    }

    /// Fills the transfer's window as far as it will take.
    pub(crate) async fn fill(&mut self, t: &mut ReadTransfer) -> io::Result<()> {
        if self.done {
            return Ok(());
        }
        while let Some(buf) = t.fill_buf() {
            if buf.is_empty() {
                break;
            }
            let n = self.read(buf).await?;
            if n == 0 {
                t.finish();
                self.done = true;
                break;
            }
            t.commit(n);
        }
        Ok(())
    }

    /// Reads up to `out.len()` bytes of the (converted) body; 0 at the end.
    async fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match (&mut self.input, &mut self.netascii) {
            (Input::Bytes { data, pos }, None) => {
                let n = out.len().min(data.len() - *pos);
                out[..n].copy_from_slice(&data[*pos..*pos + n]);
                *pos += n;
                Ok(n)
            }
            (Input::Stream(r), None) => r.read(out).await,
            (Input::File(f), None) => f.read(out),
            (Input::Bytes { data, pos }, Some(na)) => {
                let (used, written) = na.encoder.encode(&data[*pos..], out);
                *pos += used;
                if written == 0 && *pos == data.len() {
                    return Ok(na.encoder.flush(out));
                }
                Ok(written)
            }
            (input @ (Input::Stream(_) | Input::File(_)), Some(na)) => {
                let mut written = 0;
                while written < out.len() {
                    if na.raw_pos == na.raw.len() {
                        if na.encoder.has_pending() {
                            written += na.encoder.flush(&mut out[written..]);
                            continue;
                        }
                        if written > 0 {
                            break;
                        }
                        na.raw.clear();
                        na.raw_pos = 0;
                        let cap = na.raw.capacity();
                        na.raw.resize(cap, 0);
                        let n = match input {
                            Input::Stream(r) => r.read(&mut na.raw).await?,
                            Input::File(f) => f.read(&mut na.raw)?,
                            Input::Bytes { .. } => unreachable!("bytes are converted in place"),
                        };
                        na.raw.truncate(n);
                        if n == 0 {
                            break;
                        }
                    }
                    let (used, w) = na
                        .encoder
                        .encode(&na.raw[na.raw_pos..], &mut out[written..]);
                    na.raw_pos += used;
                    written += w;
                    if used == 0 && w == 0 {
                        break;
                    }
                }
                Ok(written)
            }
        }
    }
}

/// A regular file, read with plain reads on the transfer's task: the page
/// cache answers them without blocking in practice, and that saves a trip
/// through the blocking pool per block. Small blocks in a window are read a
/// window at a time (at most 64 KiB ahead), so one system call serves many
/// blocks; large blocks are read straight into the window.
struct FileReader {
    file: std::fs::File,
    ahead: Vec<u8>,
    pos: usize,
}

impl FileReader {
    fn new(file: std::fs::File, size: u64, blksize: usize, windowsize: usize) -> Self {
        let want = blksize.saturating_mul(windowsize).min(64 * 1024);
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let cap = if windowsize > 1 && blksize < 8192 {
            want.min(size.saturating_add(1))
        } else {
            0
        };
        Self {
            file,
            ahead: Vec::with_capacity(cap),
            pos: 0,
        }
    }

    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let drained = self.pos == self.ahead.len();
        if drained && (self.ahead.capacity() == 0 || out.len() >= self.ahead.capacity()) {
            return read_retrying(&mut self.file, out);
        }
        if drained {
            let cap = self.ahead.capacity();
            self.ahead.resize(cap, 0);
            let n = read_retrying(&mut self.file, &mut self.ahead);
            self.ahead.truncate(*n.as_ref().unwrap_or(&0));
            self.pos = 0;
            n?;
        }
        let n = out.len().min(self.ahead.len() - self.pos);
        out[..n].copy_from_slice(&self.ahead[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn read_retrying(f: &mut std::fs::File, out: &mut [u8]) -> io::Result<usize> {
    use std::io::Read;
    loop {
        match f.read(out) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// The size of `data` once converted to netascii (every LF and CR gains a byte).
pub(crate) fn netascii_len(data: &[u8]) -> u64 {
    data.len() as u64 + data.iter().filter(|&&b| b == b'\n' || b == b'\r').count() as u64
}
