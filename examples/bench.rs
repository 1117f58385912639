//! A benchmark client for any TFTP server: large reads and writes, and boot
//! storms of many small reads, every byte checked.
//!
//! ```text
//! cargo build --release --example bench
//! B=target/release/examples/bench
//! $B gen   --dir /tmp/tftp --file big.bin --size 256MiB --seed 1
//! $B read  --server 127.0.0.1:3942 --file big.bin --blksize 1428 --windowsize 16 \
//!          --expect-size 256MiB --seed 1 [--pid PID] [--label emmer]
//! $B write --server 127.0.0.1:3942 --file up.bin --size 64MiB --blksize 65464 \
//!          --windowsize 16 --seed 2 [--verify-path /tmp/tftp/up.bin]
//! $B storm --server 127.0.0.1:3942 --file small.bin --clients 1000 --blksize 1428 \
//!          [--windowsize N] --expect-size 64KiB --seed 1
//! ```
//!
//! # Content
//!
//! Test files are a counter-based pseudo-random stream: the 8 bytes at offset
//! `8 * i` are `splitmix64(seed + (i + 1) * φ)` in little-endian order. Any
//! block can be produced or checked on its own, so a read is verified
//! byte for byte as it arrives (nothing is stored), and a write resends any
//! block without keeping a copy.
//!
//! # Client
//!
//! One UDP socket per transfer; options (`blksize`, `windowsize`) are sent
//! only when they differ from RFC 1350's 512 and 1, so a lock-step run is a
//! plain request.
//!
//! - Reads: an OACK is answered with ACK 0 (RFC 2347); DATA is acknowledged at
//!   the end of each window and at the last block (RFC 7440); a block out of
//!   order is answered once with an ACK of the last block received in order.
//!   Block numbers roll over from 65535 to 0.
//! - Writes: up to `windowsize` blocks are in flight; an ACK moves the window,
//!   an ACK short of the last block sent (the server saw a gap) resends from
//!   the block after it, and a timeout resends the window.
//! - Each wait is bounded (`--timeout-ms`, default 1000; `--retries`, default
//!   5) and so is each run (`--time-limit` seconds), so a broken server fails
//!   the run instead of hanging it.
//!
//! # Output
//!
//! A human line on stderr and one `RESULT key=value ...` line on stdout per
//! run. MB/s is 10^6 bytes per second. With `--pid PID` the server process's
//! CPU seconds (utime + stime, plus those of children it reaped, from
//! `/proc/PID/stat`) and its peak RSS are reported: the peak is reset before
//! the run (`/proc/PID/clear_refs`, which needs root or the same user) and
//! RSS is also sampled every 10 ms over the process and its direct children,
//! so forking servers (in.tftpd) are counted whole.
//!
//! The storm opens one socket per client: raise the open-files limit first
//! (`ulimit -n 20000`).
//!
//! # HTTP
//!
//! `http-get` and `http-storm` do the same over HTTP/1.1 (emmer's `http`
//! feature, or any web server over the same files): one `GET /PATH` per
//! connection (`Connection: close`), the status must be 200 with a
//! `Content-Length`, and the body is checked as it arrives.
//!
//! ```text
//! $B http-get   --server 127.0.0.1:8080 --file big.bin --expect-size 256MiB --seed 1
//! $B http-storm --server 127.0.0.1:8080 --file small.bin --clients 1000 --expect-size 64KiB
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use emmer::proto::Packet;
use emmer::proto::packet::{DATA_HEADER, MAX_BLKSIZE, encode_ack, encode_data_header, opcode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Barrier;
use tokio::time::timeout;

const USAGE: &str = "usage:
  bench gen   --dir DIR --file NAME --size N [--seed S]
  bench read  --server ADDR --file NAME [--blksize B] [--windowsize W]
              [--expect-size N] [--seed S] [COMMON]
  bench write --server ADDR --file NAME --size N [--blksize B] [--windowsize W]
              [--seed S] [--verify-path PATH] [COMMON]
  bench storm --server ADDR --file NAME --clients N [--blksize B] [--windowsize W]
              [--expect-size N] [--seed S] [COMMON]
  bench http-get   --server HTTP_ADDR --file PATH [--expect-size N] [--seed S] [COMMON]
  bench http-storm --server HTTP_ADDR --file PATH --clients N [--expect-size N] [--seed S]
                   [COMMON]
COMMON: [--label NAME] [--pid PID] [--timeout-ms MS] [--retries N] [--time-limit SECS]
Sizes take a suffix: KiB, MiB, GiB (or K, M, G as powers of 1024).";

// ---------------------------------------------------------------------------
// Deterministic content

/// The content of every test file, a function of `seed` and the offset.
#[derive(Debug, Clone, Copy)]
struct Pattern {
    seed: u64,
}

impl Pattern {
    fn word(self, i: u64) -> [u8; 8] {
        // splitmix64's output function over a Weyl sequence: seekable.
        let mut z = self
            .seed
            .wrapping_add(i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)).to_le_bytes()
    }

    /// Fills `buf` with the bytes at `offset..offset + buf.len()`.
    fn fill(self, offset: u64, buf: &mut [u8]) {
        let mut pos = 0;
        let mut word = offset / 8;
        let skip = (offset % 8) as usize;
        if skip != 0 {
            let w = self.word(word);
            let n = (8 - skip).min(buf.len());
            buf[..n].copy_from_slice(&w[skip..skip + n]);
            pos = n;
            word += 1;
        }
        let mut chunks = buf[pos..].chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.word(word));
            word += 1;
        }
        let tail = chunks.into_remainder();
        if !tail.is_empty() {
            let w = self.word(word);
            let n = tail.len();
            tail.copy_from_slice(&w[..n]);
        }
    }

    /// Checks `data` against the bytes at `offset`, using `scratch`.
    fn check(self, offset: u64, data: &[u8], scratch: &mut Vec<u8>) -> Result<(), String> {
        scratch.resize(data.len(), 0);
        self.fill(offset, scratch);
        if data == scratch.as_slice() {
            return Ok(());
        }
        let at = data.iter().zip(scratch.iter()).position(|(a, b)| a != b);
        Err(format!(
            "content differs at byte {} (seed {})",
            offset + at.unwrap_or(0) as u64,
            self.seed
        ))
    }
}

// ---------------------------------------------------------------------------
// Arguments

struct Args {
    map: HashMap<String, String>,
}

impl Args {
    fn parse(args: impl Iterator<Item = String>, known: &[&str]) -> Result<Self, String> {
        let mut map = HashMap::new();
        let mut args = args.peekable();
        while let Some(a) = args.next() {
            let Some(key) = a.strip_prefix("--") else {
                return Err(format!("unexpected argument {a:?}"));
            };
            if !known.contains(&key) {
                return Err(format!("unknown option --{key} for this command"));
            }
            let value = args
                .next()
                .ok_or_else(|| format!("--{key} needs a value"))?;
            map.insert(key.to_owned(), value);
        }
        Ok(Self { map })
    }

    fn str(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    fn required(&self, key: &str) -> Result<&str, String> {
        self.str(key).ok_or_else(|| format!("--{key} is required"))
    }

    fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        match self.str(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{key} {v:?} is not a valid number")),
        }
    }

    fn size(&self, key: &str) -> Result<Option<u64>, String> {
        self.str(key)
            .map(|v| parse_size(v).ok_or_else(|| format!("--{key} {v:?} is not a size")))
            .transpose()
    }
}

/// `123`, `64KiB`, `256MiB`, `1GiB` (K, M, G are powers of 1024 too).
fn parse_size(s: &str) -> Option<u64> {
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(digits);
    let n: u64 = n.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// What every transfer needs to know.
#[derive(Debug, Clone)]
struct Common {
    server: SocketAddr,
    file: String,
    blksize: u16,
    windowsize: u16,
    seed: u64,
    wait: Duration,
    retries: u32,
    limit: Duration,
    label: String,
    pid: Option<u32>,
}

const COMMON_KEYS: &[&str] = &[
    "server",
    "file",
    "blksize",
    "windowsize",
    "seed",
    "timeout-ms",
    "retries",
    "time-limit",
    "label",
    "pid",
];

fn common(a: &Args, default_limit: u64) -> Result<Common, String> {
    let server = a.required("server")?;
    let server: SocketAddr = server
        .parse()
        .map_err(|_| format!("--server {server:?} is not an address such as 127.0.0.1:69"))?;
    let blksize: u16 = a.num("blksize", 512)?;
    // RFC 2348: blksize 8..=65464.
    if !(8..=MAX_BLKSIZE).contains(&blksize) {
        return Err(format!("--blksize {blksize} is outside 8..=65464"));
    }
    let windowsize: u16 = a.num("windowsize", 1)?;
    // RFC 7440: windowsize 1..=65535.
    if windowsize == 0 {
        return Err("--windowsize must be at least 1".into());
    }
    Ok(Common {
        server,
        file: a.required("file")?.to_owned(),
        blksize,
        windowsize,
        seed: a.num("seed", 1)?,
        wait: Duration::from_millis(a.num("timeout-ms", 1000)?),
        retries: a.num("retries", 5)?,
        limit: Duration::from_secs(a.num("time-limit", default_limit)?),
        label: a.str("label").unwrap_or("server").to_owned(),
        pid: a.str("pid").map(str::parse).transpose().map_err(|_| {
            format!(
                "--pid {:?} is not a process id",
                a.str("pid").unwrap_or_default()
            )
        })?,
    })
}

// ---------------------------------------------------------------------------
// Sockets

/// A socket on the server's address family; large windows get large buffers
/// so the client is not the one dropping datagrams.
async fn client_socket(server: SocketAddr, buffer: usize) -> Result<UdpSocket, String> {
    let any = match server.ip() {
        IpAddr::V4(v) if v.is_loopback() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(v) if v.is_loopback() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let sock = UdpSocket::bind(SocketAddr::new(any, 0))
        .await
        .map_err(|e| format!("cannot bind a client socket: {e} (raise `ulimit -n`?)"))?;
    if buffer > 212_992 {
        set_buffers(&sock, buffer);
    }
    Ok(sock)
}

/// SO_RCVBUF and SO_SNDBUF; the kernel caps them (net.core.rmem_max and
/// wmem_max on Linux). Failure leaves the default size, which is only slower.
fn set_buffers(sock: &UdpSocket, bytes: usize) {
    let sock = socket2::SockRef::from(sock);
    let bytes = bytes.min(i32::MAX as usize);
    let _ = sock.set_recv_buffer_size(bytes);
    let _ = sock.set_send_buffer_size(bytes);
}

fn request(op: u16, c: &Common) -> Vec<u8> {
    let mut p = Vec::with_capacity(64 + c.file.len());
    p.extend_from_slice(&op.to_be_bytes());
    for s in [c.file.as_str(), "octet"] {
        p.extend_from_slice(s.as_bytes());
        p.push(0);
    }
    let mut opt = |k: &str, v: u16| {
        p.extend_from_slice(k.as_bytes());
        p.push(0);
        p.extend_from_slice(v.to_string().as_bytes());
        p.push(0);
    };
    // Options only when they differ from RFC 1350's behaviour.
    if c.blksize != 512 {
        opt("blksize", c.blksize);
    }
    if c.windowsize != 1 {
        opt("windowsize", c.windowsize);
    }
    p
}

/// blksize and windowsize from an OACK, each no larger than asked.
fn negotiated(options: &[(&str, &str)], c: &Common) -> Result<(u16, u16), String> {
    let (mut blksize, mut windowsize) = (512u16, 1u16);
    for (k, v) in options {
        let parse = |max: u16| {
            v.parse::<u16>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| format!("OACK {k}={v:?} is not a number in 1..={max}"))
        };
        if k.eq_ignore_ascii_case("blksize") {
            blksize = parse(c.blksize)?;
        } else if k.eq_ignore_ascii_case("windowsize") {
            windowsize = parse(c.windowsize)?;
        }
    }
    Ok((blksize, windowsize))
}

fn server_error(code: u16, message: &str) -> String {
    format!("server sent ERROR {code}: {message}")
}

/// What a transfer did.
#[derive(Debug, Default, Clone, Copy)]
struct Transfer {
    bytes: u64,
    blksize: u16,
    windowsize: u16,
    /// Packets sent again after a timeout or a gap.
    resent: u64,
}

// ---------------------------------------------------------------------------
// Read

async fn read_transfer(c: &Common, expect: Option<u64>) -> Result<Transfer, String> {
    let buffer = usize::from(c.blksize).saturating_mul(usize::from(c.windowsize)) * 2;
    let sock = client_socket(c.server, buffer).await?;
    match timeout(c.limit, read_on(&sock, c, expect)).await {
        Ok(r) => r,
        Err(_) => Err(format!("no complete read within {:?}", c.limit)),
    }
}

async fn read_on(sock: &UdpSocket, c: &Common, expect: Option<u64>) -> Result<Transfer, String> {
    let io = |e: std::io::Error| format!("socket error: {e}");
    let pattern = Pattern { seed: c.seed };
    let mut buf = vec![0u8; DATA_HEADER + usize::from(MAX_BLKSIZE) + 1];
    let mut scratch = Vec::with_capacity(usize::from(c.blksize));
    // The last packet sent: the request, then the latest ACK.
    let mut last = request(opcode::RRQ, c);
    let asked = c.blksize != 512 || c.windowsize != 1;
    let mut t = Transfer {
        blksize: 512,
        windowsize: 1,
        ..Transfer::default()
    };
    let mut connected = false;
    let mut next: u64 = 1; // next block expected
    let mut in_window: u16 = 0;
    let mut gap_acked = false;
    let mut tries = 0;
    sock.send_to(&last, c.server).await.map_err(io)?;
    loop {
        let n = if connected {
            timeout(c.wait, sock.recv(&mut buf)).await
        } else {
            match timeout(c.wait, sock.recv_from(&mut buf)).await {
                Ok(Ok((n, from))) if from.ip() == c.server.ip() => {
                    // The server's transfer ID: from now on only its packets.
                    sock.connect(from).await.map_err(io)?;
                    connected = true;
                    Ok(Ok(n))
                }
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => Ok(Err(e)),
                Err(e) => Err(e),
            }
        };
        let n = match n {
            Ok(r) => r.map_err(io)?,
            Err(_) => {
                tries += 1;
                if tries > c.retries {
                    return Err(format!(
                        "no answer after {} tries of {:?} at block {next}",
                        c.retries + 1,
                        c.wait
                    ));
                }
                t.resent += 1;
                if connected {
                    sock.send(&last).await.map_err(io)?;
                } else {
                    sock.send_to(&last, c.server).await.map_err(io)?;
                }
                continue;
            }
        };
        match Packet::decode(&buf[..n]).map_err(|e| e.to_string())? {
            Packet::Data { block, data } => {
                if block != next as u16 {
                    // A gap or a duplicate: ACK the last block in order, once
                    // until the next one arrives (RFC 7440 §4).
                    if !gap_acked {
                        gap_acked = true;
                        in_window = 0;
                        encode_ack(&mut last, (next - 1) as u16);
                        sock.send(&last).await.map_err(io)?;
                    }
                    continue;
                }
                if data.len() > usize::from(t.blksize) {
                    return Err(format!(
                        "block {next} has {} bytes, more than blksize {}",
                        data.len(),
                        t.blksize
                    ));
                }
                pattern.check(t.bytes, data, &mut scratch)?;
                t.bytes += data.len() as u64;
                tries = 0;
                gap_acked = false;
                in_window += 1;
                let end = data.len() < usize::from(t.blksize);
                if end || in_window >= t.windowsize {
                    in_window = 0;
                    encode_ack(&mut last, next as u16);
                    sock.send(&last).await.map_err(io)?;
                }
                if end {
                    if let Some(want) = expect.filter(|&w| w != t.bytes) {
                        return Err(format!("received {} bytes, expected {want}", t.bytes));
                    }
                    return Ok(t);
                }
                next += 1;
            }
            Packet::Oack { options } if next == 1 => {
                if !asked {
                    return Err("OACK to a request without options".into());
                }
                (t.blksize, t.windowsize) = negotiated(&options, c)?;
                tries = 0;
                encode_ack(&mut last, 0);
                sock.send(&last).await.map_err(io)?;
            }
            // A late copy of the OACK: block 1 has answered it already.
            Packet::Oack { .. } => {}
            Packet::Error { code, message } => return Err(server_error(code, &message)),
            other => return Err(format!("unexpected packet {}", describe(&other))),
        }
    }
}

fn describe(p: &Packet<'_>) -> String {
    match p {
        Packet::Rrq(_) => "RRQ".into(),
        Packet::Wrq(_) => "WRQ".into(),
        Packet::Data { block, data } => format!("DATA {block} ({} bytes)", data.len()),
        Packet::Ack { block } => format!("ACK {block}"),
        Packet::Error { code, .. } => format!("ERROR {code}"),
        Packet::Oack { .. } => "OACK".into(),
    }
}

// ---------------------------------------------------------------------------
// Write

async fn write_transfer(c: &Common, size: u64) -> Result<Transfer, String> {
    let buffer = usize::from(c.blksize).saturating_mul(usize::from(c.windowsize)) * 2;
    let sock = client_socket(c.server, buffer).await?;
    match timeout(c.limit, write_on(&sock, c, size)).await {
        Ok(r) => r,
        Err(_) => Err(format!("no complete write within {:?}", c.limit)),
    }
}

async fn write_on(sock: &UdpSocket, c: &Common, size: u64) -> Result<Transfer, String> {
    let io = |e: std::io::Error| format!("socket error: {e}");
    let pattern = Pattern { seed: c.seed };
    let mut buf = vec![0u8; 65536];
    let mut out = Vec::with_capacity(DATA_HEADER + usize::from(c.blksize));
    let wrq = request(opcode::WRQ, c);
    let asked = c.blksize != 512 || c.windowsize != 1;
    let mut t = Transfer {
        bytes: size,
        blksize: 512,
        windowsize: 1,
        ..Transfer::default()
    };

    // The request, until an OACK or ACK 0 names the server's transfer ID.
    let mut tries = 0;
    sock.send_to(&wrq, c.server).await.map_err(io)?;
    loop {
        match timeout(c.wait, sock.recv_from(&mut buf)).await {
            Err(_) => {
                tries += 1;
                if tries > c.retries {
                    return Err(format!(
                        "no answer to the WRQ after {} tries",
                        c.retries + 1
                    ));
                }
                t.resent += 1;
                sock.send_to(&wrq, c.server).await.map_err(io)?;
            }
            Ok(r) => {
                let (n, from) = r.map_err(io)?;
                if from.ip() != c.server.ip() {
                    continue;
                }
                match Packet::decode(&buf[..n]).map_err(|e| e.to_string())? {
                    Packet::Oack { options } if asked => {
                        (t.blksize, t.windowsize) = negotiated(&options, c)?;
                    }
                    Packet::Ack { block: 0 } => {}
                    Packet::Error { code, message } => return Err(server_error(code, &message)),
                    other => {
                        return Err(format!("unexpected answer {} to WRQ", describe(&other)));
                    }
                }
                sock.connect(from).await.map_err(io)?;
                break;
            }
        }
    }

    let blksize = u64::from(t.blksize);
    // The last block is short, empty when the size is a multiple of blksize.
    let last = size / blksize + 1;
    let mut base: u64 = 1; // oldest block not acknowledged
    let mut next: u64 = 1; // next block to send
    let mut went_back = false;
    tries = 0;
    loop {
        while next <= last && next < base + u64::from(t.windowsize) {
            let offset = (next - 1) * blksize;
            let len = (size - offset).min(blksize) as usize;
            encode_data_header(&mut out, next as u16);
            out.resize(DATA_HEADER + len, 0);
            pattern.fill(offset, &mut out[DATA_HEADER..]);
            sock.send(&out).await.map_err(io)?;
            next += 1;
        }
        if base > last {
            return Ok(t);
        }
        let n = match timeout(c.wait, sock.recv(&mut buf)).await {
            Ok(r) => r.map_err(io)?,
            Err(_) => {
                tries += 1;
                if tries > c.retries {
                    return Err(format!(
                        "no ACK after {} tries of {:?} at block {base}",
                        c.retries + 1,
                        c.wait
                    ));
                }
                t.resent += next - base;
                next = base;
                continue;
            }
        };
        match Packet::decode(&buf[..n]).map_err(|e| e.to_string())? {
            Packet::Ack { block } => {
                // The absolute block in base - 1 ..= next - 1 with this wire number.
                let acked = (base - 1) + u64::from(block.wrapping_sub((base - 1) as u16));
                if acked >= next {
                    continue; // stale or bogus
                }
                if acked >= base {
                    base = acked + 1;
                    tries = 0;
                    went_back = false;
                    if acked + 1 < next {
                        // The server saw a gap after `acked`: go back.
                        t.resent += next - base;
                        next = base;
                    }
                } else if t.windowsize > 1 && next > base && !went_back {
                    // A repeated ACK in a window: the first block was lost.
                    went_back = true;
                    t.resent += next - base;
                    next = base;
                }
            }
            Packet::Error { code, message } => return Err(server_error(code, &message)),
            Packet::Oack { .. } if base == 1 => {} // a repeated OACK: our data answers it
            other => return Err(format!("unexpected packet {}", describe(&other))),
        }
    }
}

/// Waits up to `wait` for `path` to hold exactly the pattern's `size` bytes
/// (servers may rename the upload into place after the last ACK).
fn verify_file(path: &Path, pattern: Pattern, size: u64, wait: Duration) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let r = check_file(path, pattern, size);
        if r.is_ok() || start.elapsed() > wait {
            return r;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn check_file(path: &Path, pattern: Pattern, size: u64) -> Result<(), String> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| format!("cannot open the upload {}: {e}", path.display()))?;
    let mut chunk = vec![0u8; 1 << 20];
    let mut scratch = Vec::new();
    let mut offset = 0u64;
    loop {
        let n = f
            .read(&mut chunk)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        pattern.check(offset, &chunk[..n], &mut scratch)?;
        offset += n as u64;
    }
    if offset != size {
        return Err(format!(
            "{} has {offset} bytes, expected {size}",
            path.display()
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Server process: CPU and memory

/// CPU time and peak memory of the server process over one run.
struct ProcWatch {
    pid: u32,
    cpu_start: (u64, u64),
    stop: Arc<AtomicBool>,
    peak_kib: Arc<AtomicU64>,
    sampler: std::thread::JoinHandle<u64>,
}

/// Clock ticks per second of /proc/PID/stat (USER_HZ, 100 on Linux).
const CLK_TCK: f64 = 100.0;

/// utime + stime of `pid`, and cutime + cstime (children it reaped).
fn proc_cpu_ticks(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the ")" that ends the command name: state is field 3,
    // utime 14, stime 15, cutime 16, cstime 17.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some((get(14)? + get(15)?, get(16)? + get(17)?))
}

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// RSS of `pid` plus that of its direct children (forking servers), and the
/// children's CPU ticks as last seen.
fn sample_tree(pid: u32, child_ticks: &mut HashMap<u32, u64>) -> u64 {
    let mut total = proc_status_kib(pid, "VmRSS:").unwrap_or(0);
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return total;
    };
    for task in tasks.flatten() {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            total += proc_status_kib(child, "VmRSS:").unwrap_or(0);
            if let Some((own, reaped)) = proc_cpu_ticks(child) {
                child_ticks.insert(child, own + reaped);
            }
        }
    }
    total
}

impl ProcWatch {
    fn start(pid: u32) -> Result<Self, String> {
        let cpu_start = proc_cpu_ticks(pid)
            .ok_or_else(|| format!("cannot read /proc/{pid}/stat: is the server running?"))?;
        // Resets VmHWM to the current RSS (Linux 4.0+); ignored when refused.
        let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        let stop = Arc::new(AtomicBool::new(false));
        let mut before = HashMap::new();
        let peak_kib = Arc::new(AtomicU64::new(sample_tree(pid, &mut before)));
        let sampler = {
            let (stop, peak) = (stop.clone(), peak_kib.clone());
            std::thread::spawn(move || {
                let mut seen = HashMap::new();
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(sample_tree(pid, &mut seen), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(10));
                }
                // Children that existed before the run count from then on.
                seen.iter()
                    .map(|(c, t)| t.saturating_sub(before.get(c).copied().unwrap_or(0)))
                    .sum()
            })
        };
        Ok(Self {
            pid,
            cpu_start,
            stop,
            peak_kib,
            sampler,
        })
    }

    /// CPU seconds used and peak RSS in KiB since `start`.
    ///
    /// Children a server does not reap (SIGCHLD ignored, as in.tftpd does)
    /// are counted as last sampled, so their CPU time is a lower bound.
    fn finish(self) -> (f64, u64) {
        // Let forked children exit and be reaped, so their time is counted.
        std::thread::sleep(Duration::from_millis(300));
        self.stop.store(true, Ordering::Relaxed);
        let child_ticks = self.sampler.join().unwrap_or(0);
        let cpu = proc_cpu_ticks(self.pid).map_or(f64::NAN, |(own, reaped)| {
            // Reaped children are in cutime too: count whichever is larger.
            let own = own.saturating_sub(self.cpu_start.0);
            let children = reaped.saturating_sub(self.cpu_start.1).max(child_ticks);
            (own + children) as f64 / CLK_TCK
        });
        let hwm = proc_status_kib(self.pid, "VmHWM:").unwrap_or(0);
        (cpu, hwm.max(self.peak_kib.load(Ordering::Relaxed)))
    }
}

/// What is watched over one run: the server process, if named, and the
/// kernel's count of UDP datagrams dropped for a full receive buffer.
struct Watch {
    server: Option<ProcWatch>,
    drops: Option<u64>,
}

/// `RcvbufErrors` from /proc/net/snmp: datagrams dropped on this machine
/// because a socket's receive buffer was full (any socket, any process).
fn udp_rcvbuf_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let i = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(i)?.parse().ok()
}

fn watch(pid: Option<u32>) -> Result<Watch, String> {
    Ok(Watch {
        server: pid.map(ProcWatch::start).transpose()?,
        drops: udp_rcvbuf_errors(),
    })
}

fn server_fields(w: Watch, bytes: u64, line: &mut String) {
    if let (Some(start), Some(end)) = (w.drops, udp_rcvbuf_errors()) {
        let _ = write!(line, " udp_drops={}", end.saturating_sub(start));
    }
    let Some(server) = w.server else { return };
    let (cpu, rss) = server.finish();
    let per_gib = cpu / (bytes as f64 / f64::from(1u32 << 30));
    let _ = write!(
        line,
        " cpu_s={cpu:.2} cpu_s_per_gib={per_gib:.2} rss_kib={rss}"
    );
}

// ---------------------------------------------------------------------------
// Commands

fn gen_file(a: &Args) -> Result<(), String> {
    let dir = PathBuf::from(a.required("dir")?);
    let name = a.required("file")?;
    let size = a.size("size")?.ok_or("--size is required")?;
    let pattern = Pattern {
        seed: a.num("seed", 1)?,
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(name);
    let up_to_date = std::fs::metadata(&path).is_ok_and(|m| m.len() == size)
        && check_file(&path, pattern, size).is_ok();
    if up_to_date {
        eprintln!("{} is up to date", path.display());
        return Ok(());
    }
    let mut w = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?,
    );
    let mut chunk = vec![0u8; 1 << 20];
    let mut offset = 0;
    while offset < size {
        let n = (size - offset).min(chunk.len() as u64) as usize;
        pattern.fill(offset, &mut chunk[..n]);
        std::io::Write::write_all(&mut w, &chunk[..n])
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        offset += n as u64;
    }
    std::io::Write::flush(&mut w).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!(
        "wrote {} ({size} bytes, seed {})",
        path.display(),
        pattern.seed
    );
    Ok(())
}

async fn read_cmd(a: &Args) -> Result<(), String> {
    let c = common(a, 300)?;
    let expect = a.size("expect-size")?;
    let w = watch(c.pid)?;
    let start = Instant::now();
    let t = read_transfer(&c, expect).await?;
    let secs = start.elapsed().as_secs_f64();
    report_bulk("read", &c, t, secs, w, "yes");
    Ok(())
}

async fn write_cmd(a: &Args) -> Result<(), String> {
    let c = common(a, 300)?;
    let size = a.size("size")?.ok_or("--size is required")?;
    let w = watch(c.pid)?;
    let start = Instant::now();
    let t = write_transfer(&c, size).await?;
    let secs = start.elapsed().as_secs_f64();
    let verified = match a.str("verify-path") {
        None => "skipped",
        Some(p) => {
            verify_file(
                Path::new(p),
                Pattern { seed: c.seed },
                size,
                Duration::from_secs(10),
            )?;
            "yes"
        }
    };
    report_bulk("write", &c, t, secs, w, verified);
    Ok(())
}

fn report_bulk(op: &str, c: &Common, t: Transfer, secs: f64, w: Watch, verified: &str) {
    let mbps = t.bytes as f64 / secs / 1e6;
    eprintln!(
        "{}: {op} {} bytes at blksize {} windowsize {} in {secs:.3} s: {mbps:.1} MB/s, {} resent",
        c.label, t.bytes, t.blksize, t.windowsize, t.resent
    );
    let mut line = format!(
        "RESULT server={} op={op} file={} blksize={} windowsize={} asked_blksize={} \
         asked_windowsize={} bytes={} secs={secs:.3} mbps={mbps:.1} resent={} verified={verified}",
        c.label, c.file, t.blksize, t.windowsize, c.blksize, c.windowsize, t.bytes, t.resent
    );
    server_fields(w, t.bytes, &mut line);
    println!("{line}");
}

async fn storm_cmd(a: &Args) -> Result<(), String> {
    let c = Arc::new(common(a, 120)?);
    let clients: usize = a.num("clients", 100)?;
    let expect = a.size("expect-size")?;
    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (c, barrier) = (c.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            // Sockets are opened before the start, so only transfers are timed.
            let buffer = usize::from(c.blksize) * usize::from(c.windowsize) * 2;
            let sock = match client_socket(c.server, buffer).await {
                Ok(s) => s,
                Err(e) => {
                    barrier.wait().await;
                    return (Duration::ZERO, Err(e));
                }
            };
            barrier.wait().await;
            let start = Instant::now();
            let r = match timeout(c.limit, read_on(&sock, &c, expect)).await {
                Ok(r) => r,
                Err(_) => Err(format!("no complete read within {:?}", c.limit)),
            };
            (start.elapsed(), r)
        }));
    }
    let w = watch(c.pid)?;
    barrier.wait().await;
    let start = Instant::now();
    let mut latencies = Vec::with_capacity(clients);
    let mut failures: Vec<String> = Vec::new();
    let mut bytes = 0u64;
    let mut resent = 0u64;
    for task in tasks {
        match task.await {
            Ok((lat, Ok(t))) => {
                latencies.push(lat);
                bytes += t.bytes;
                resent += t.resent;
            }
            Ok((_, Err(e))) => failures.push(e),
            Err(e) => failures.push(format!("client task failed: {e}")),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1e3
    };
    let (p50, p99, max) = (pct(0.50), pct(0.99), pct(1.0));
    let tps = latencies.len() as f64 / secs;
    eprintln!(
        "{}: storm of {clients} × {} at blksize {} windowsize {}: {} ok, {} failed in {secs:.3} s: \
         {tps:.0} transfers/s, p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms, {resent} resent",
        c.label,
        c.file,
        c.blksize,
        c.windowsize,
        latencies.len(),
        failures.len()
    );
    let mut counts: Vec<(String, usize)> = Vec::new();
    for f in &failures {
        match counts.iter_mut().find(|(m, _)| m == f) {
            Some((_, n)) => *n += 1,
            None => counts.push((f.clone(), 1)),
        }
    }
    for (msg, n) in counts.iter().take(5) {
        eprintln!("  {n} × {msg}");
    }
    let mut line = format!(
        "RESULT server={} op=storm file={} clients={clients} blksize={} windowsize={} ok={} \
         failures={} secs={secs:.3} tps={tps:.0} p50_ms={p50:.1} p99_ms={p99:.1} max_ms={max:.1} \
         resent={resent} verified=yes",
        c.label,
        c.file,
        c.blksize,
        c.windowsize,
        latencies.len(),
        failures.len()
    );
    server_fields(w, bytes.max(1), &mut line);
    println!("{line}");
    Ok(())
}

// ---------------------------------------------------------------------------
// HTTP

/// One `GET /<file>` on `s`, the body checked against the pattern as it
/// arrives: the number of body bytes.
async fn http_get_on(s: &mut TcpStream, c: &Common, expect: Option<u64>) -> Result<u64, String> {
    let request = format!(
        "GET /{} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        c.file, c.server
    );
    s.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    let pattern = Pattern { seed: c.seed };
    let mut buf = vec![0u8; 256 * 1024];
    let mut head = Vec::new();
    let end = loop {
        let n = s
            .read(&mut buf)
            .await
            .map_err(|e| format!("reading the response head: {e}"))?;
        if n == 0 {
            return Err("the connection closed before the response head ended".into());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(p) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        if head.len() > 64 * 1024 {
            return Err("the response head is over 64 KiB".into());
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let status = text.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        let line = text.lines().next().unwrap_or("");
        return Err(format!("status {line:?}"));
    }
    let length: u64 = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .ok_or("the response has no Content-Length")?;
    if let Some(want) = expect.filter(|&w| w != length) {
        return Err(format!("Content-Length {length}, expected {want}"));
    }
    let mut scratch = Vec::new();
    let first = &head[end + 4..];
    pattern.check(0, first, &mut scratch)?;
    let mut got = first.len() as u64;
    while got < length {
        let n = s
            .read(&mut buf)
            .await
            .map_err(|e| format!("reading the body at byte {got}: {e}"))?;
        if n == 0 {
            return Err(format!("the body ended at byte {got} of {length}"));
        }
        pattern.check(got, &buf[..n], &mut scratch)?;
        got += n as u64;
    }
    if got > length {
        return Err(format!("{got} bytes for a Content-Length of {length}"));
    }
    Ok(got)
}

async fn http_connect(server: SocketAddr) -> Result<TcpStream, String> {
    TcpStream::connect(server)
        .await
        .map_err(|e| format!("cannot connect to {server}: {e}"))
}

async fn http_get_cmd(a: &Args) -> Result<(), String> {
    let c = common(a, 300)?;
    let expect = a.size("expect-size")?;
    let mut s = http_connect(c.server).await?;
    let w = watch(c.pid)?;
    let start = Instant::now();
    let bytes = match timeout(c.limit, http_get_on(&mut s, &c, expect)).await {
        Ok(r) => r?,
        Err(_) => return Err(format!("no complete GET within {:?}", c.limit)),
    };
    let secs = start.elapsed().as_secs_f64();
    let mbps = bytes as f64 / secs / 1e6;
    eprintln!(
        "{}: GET {} over HTTP: {bytes} bytes in {secs:.3} s, {mbps:.1} MB/s, every byte checked",
        c.label, c.file
    );
    let mut line = format!(
        "RESULT server={} op=http-get file={} bytes={bytes} secs={secs:.3} mbps={mbps:.1} verified=yes",
        c.label, c.file
    );
    server_fields(w, bytes, &mut line);
    println!("{line}");
    Ok(())
}

async fn http_storm_cmd(a: &Args) -> Result<(), String> {
    let c = Arc::new(common(a, 120)?);
    let clients: usize = a.num("clients", 100)?;
    let expect = a.size("expect-size")?;
    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (c, barrier) = (c.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            // Connecting is part of each transfer: a storm of new clients.
            let start = Instant::now();
            let r = timeout(c.limit, async {
                let mut s = http_connect(c.server).await?;
                http_get_on(&mut s, &c, expect).await
            })
            .await
            .unwrap_or_else(|_| Err(format!("no complete GET within {:?}", c.limit)));
            (start.elapsed(), r)
        }));
    }
    let w = watch(c.pid)?;
    barrier.wait().await;
    let start = Instant::now();
    let mut latencies = Vec::with_capacity(clients);
    let mut failures: Vec<String> = Vec::new();
    let mut bytes = 0u64;
    for task in tasks {
        match task.await {
            Ok((lat, Ok(n))) => {
                latencies.push(lat);
                bytes += n;
            }
            Ok((_, Err(e))) => failures.push(e),
            Err(e) => failures.push(format!("client task failed: {e}")),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1e3
    };
    let (p50, p99, max) = (pct(0.50), pct(0.99), pct(1.0));
    let tps = latencies.len() as f64 / secs;
    eprintln!(
        "{}: HTTP storm of {clients} × GET {}: {} ok, {} failed in {secs:.3} s: {tps:.0} \
         transfers/s, p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
        c.label,
        c.file,
        latencies.len(),
        failures.len()
    );
    let mut counts: Vec<(String, usize)> = Vec::new();
    for f in &failures {
        match counts.iter_mut().find(|(m, _)| m == f) {
            Some((_, n)) => *n += 1,
            None => counts.push((f.clone(), 1)),
        }
    }
    for (msg, n) in counts.iter().take(5) {
        eprintln!("  {n} × {msg}");
    }
    let mut line = format!(
        "RESULT server={} op=http-storm file={} clients={clients} ok={} failures={} \
         secs={secs:.3} tps={tps:.0} p50_ms={p50:.1} p99_ms={p99:.1} max_ms={max:.1} verified=yes",
        c.label,
        c.file,
        latencies.len(),
        failures.len()
    );
    server_fields(w, bytes.max(1), &mut line);
    println!("{line}");
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().unwrap_or_default();
    let keys = |extra: &[&'static str]| [COMMON_KEYS, extra].concat();
    let parsed = match cmd.as_str() {
        "gen" => Args::parse(args, &["dir", "file", "size", "seed"]),
        "read" => Args::parse(args, &keys(&["expect-size"])),
        "write" => Args::parse(args, &keys(&["size", "verify-path"])),
        "storm" => Args::parse(args, &keys(&["clients", "expect-size"])),
        "http-get" => Args::parse(args, &keys(&["expect-size"])),
        "http-storm" => Args::parse(args, &keys(&["clients", "expect-size"])),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => Err(format!("unknown command {cmd:?}")),
    };
    let a = match parsed {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = if cmd == "gen" {
        gen_file(&a)
    } else {
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("bench: cannot start the runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        rt.block_on(async {
            match cmd.as_str() {
                "read" => read_cmd(&a).await,
                "write" => write_cmd(&a).await,
                "http-get" => http_get_cmd(&a).await,
                "http-storm" => http_storm_cmd(&a).await,
                _ => storm_cmd(&a).await,
            }
        })
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            // A failed run still gives a machine-readable line.
            println!("RESULT op={cmd} error={e:?}");
            ExitCode::FAILURE
        }
    }
}
