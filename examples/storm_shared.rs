//! A boot storm on a dynamic route, with and without shared bodies: two
//! routes with the same handler, one of them with `share_for`, for
//! `bench storm` to run against each (see `docs/bench.md`).
//!
//! ```text
//! cargo build --release --example storm_shared --example bench
//! target/release/examples/storm_shared --port 6969 [--size 64KiB] [--work-ms 5] &
//! B=target/release/examples/bench
//! $B storm --server 127.0.0.1:6969 --file unshared/menu --clients 1000 --blksize 1428 --expect-size 64KiB
//! $B storm --server 127.0.0.1:6969 --file shared/menu   --clients 1000 --blksize 1428 --expect-size 64KiB
//! ```
//!
//! The handler burns `--work-ms` of CPU (a busy loop, calibrated against
//! the thread's CPU clock at start-up, not a sleep), then builds `--size`
//! bytes of the content `bench` checks (seed 1). `shared/NAME` shares one
//! call among the requests for a name that overlap it and keeps the body
//! for `--keep-ms` (default 2000); `unshared/NAME` calls the handler for
//! every request. When the server stops (SIGTERM, SIGINT) it prints how
//! many calls each route made.
//!
//! The address comes from `EMMER_HOST` / `EMMER_PORT` and the other
//! `EMMER_*` variables, then `--host` and `--port`. Once bound it prints
//! `storm_shared: listening on ADDR` on stdout.

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use emmer::{App, Bytes, Config, Request, RoutePattern};

const USAGE: &str =
    "usage: storm_shared [--host ADDR] [--port N] [--size N] [--work-ms MS] [--keep-ms MS]

Serves shared/NAME (one handler call per name at a time, bodies kept
--keep-ms) and unshared/NAME (a call per request). The handler burns
--work-ms of CPU (default 5), then returns --size bytes (default 64KiB) of
bench's content with seed 1.";

/// What the handler does, the same on both routes.
#[derive(Debug)]
struct Work {
    /// Rounds of the busy loop that take the requested CPU time.
    rounds: u64,
    size: usize,
    calls: AtomicU64,
}

impl Work {
    fn body(&self) -> Bytes {
        self.calls.fetch_add(1, Ordering::Relaxed);
        std::hint::black_box(burn(self.rounds));
        let mut body = vec![0u8; self.size];
        fill(1, &mut body);
        Bytes::from(body)
    }
}

/// A busy loop the optimiser cannot drop.
fn burn(rounds: u64) -> u64 {
    let mut x = 0u64;
    for i in 0..rounds {
        x = mix(std::hint::black_box(x ^ i));
    }
    x
}

/// splitmix64's output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The content of `bench`'s files from offset 0: the 8 bytes at `8 * i`
/// are `mix(seed + (i + 1) * φ)`, little-endian.
fn fill(seed: u64, buf: &mut [u8]) {
    for (i, chunk) in buf.chunks_mut(8).enumerate() {
        let w = mix(seed.wrapping_add((i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)));
        chunk.copy_from_slice(&w.to_le_bytes()[..chunk.len()]);
    }
}

/// The calling thread's CPU time (Linux: `/proc/thread-self/schedstat`).
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Rounds of [`burn`] that take `cpu` of CPU time, measured on the
/// thread's CPU clock where there is one (so that other load on the machine
/// does not shorten the work), else on the wall clock. That clock advances
/// by scheduler ticks, so the probe grows until it takes 200 ms.
fn calibrate(cpu: Duration) -> u64 {
    let mut rounds: u64 = 1 << 16;
    loop {
        let (cpu0, wall0) = (thread_cpu(), Instant::now());
        std::hint::black_box(burn(rounds));
        let took = match (cpu0, thread_cpu()) {
            (Some(a), Some(b)) if b > a => b - a,
            _ => wall0.elapsed(),
        };
        if took >= Duration::from_millis(200) {
            return (rounds as f64 * cpu.as_secs_f64() / took.as_secs_f64()).round() as u64;
        }
        rounds *= 2;
    }
}

fn parse_size(s: &str) -> Option<usize> {
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(digits);
    let mult = match unit.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        _ => return None,
    };
    n.parse::<usize>().ok()?.checked_mul(mult)
}

struct Args {
    host: Option<IpAddr>,
    port: Option<u16>,
    size: usize,
    work: Duration,
    keep: Duration,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut out = Args {
        host: None,
        port: None,
        size: 64 << 10,
        work: Duration::from_millis(5),
        keep: Duration::from_secs(2),
    };
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let v = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("{flag} {v:?} is not valid");
        match flag.as_str() {
            "--host" => out.host = Some(v.parse().map_err(|_| bad())?),
            "--port" => out.port = Some(v.parse().map_err(|_| bad())?),
            "--size" => out.size = parse_size(&v).ok_or_else(bad)?,
            "--work-ms" => out.work = Duration::from_millis(v.parse().map_err(|_| bad())?),
            "--keep-ms" => out.keep = Duration::from_millis(v.parse().map_err(|_| bad())?),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(out)
}

/// SIGTERM or SIGINT.
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("storm_shared: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("storm_shared: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(h) = args.host {
        config.hosts = vec![h];
    }
    if let Some(p) = args.port {
        config.port = p;
    }
    let rounds = calibrate(args.work);
    eprintln!(
        "storm_shared: the handler burns {:?} of CPU ({rounds} rounds), then returns {} bytes",
        args.work, args.size
    );
    let shared = Arc::new(Work {
        rounds,
        size: args.size,
        calls: AtomicU64::new(0),
    });
    let unshared = Arc::new(Work {
        rounds,
        size: args.size,
        calls: AtomicU64::new(0),
    });
    let (s, u) = (shared.clone(), unshared.clone());
    let app = App::empty()
        .route_read(
            RoutePattern::new(r"shared/[A-Za-z0-9._-]+").share_for(args.keep),
            move |_: &Request| s.body(),
        )
        .route_read(r"unshared/[A-Za-z0-9._-]+", move |_: &Request| u.body())
        .config(config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("storm_shared: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(async {
        let server = app.bind().await?;
        println!("storm_shared: listening on {}", server.local_addr());
        let stop = server.shutdown_handle();
        tokio::spawn(async move {
            stopped().await;
            stop.shutdown();
        });
        server.serve().await
    });
    eprintln!(
        "storm_shared: handler calls: shared {}, unshared {}",
        shared.calls.load(Ordering::Relaxed),
        unshared.calls.load(Ordering::Relaxed)
    );
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("storm_shared: {e}");
            ExitCode::FAILURE
        }
    }
}
