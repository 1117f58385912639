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
//! With `EMMER_HTTP=host:port` the same directory is also served over HTTP
//! (`GET`, `HEAD`, ranges, `PUT`), and a second line says where:
//! `serve_dir: http on ADDR`.
//!
//! ```text
//! EMMER_HTTP=127.0.0.1:8080 cargo run --example serve_dir -- /srv/tftp
//! curl -O http://127.0.0.1:8080/vmlinuz
//! ```
//!
//! Everything else is [`emmer::fs::ServeDir`]: which names are served, how
//! `..` and symbolic links out of the directory are refused, and how
//! uploads are stored atomically (fsynced unless `--no-fsync`).

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use emmer::fs::ServeDir;
use emmer::{App, Config};

const USAGE: &str = "usage: serve_dir ROOT [--port N] [--host ADDR] [--no-fsync]

Serves the files under ROOT over TFTP (reads and writes). Uploads are
flushed to disk (fsync) before they are renamed into place; --no-fsync
skips that.
Defaults come from EMMER_HOST / EMMER_PORT (127.0.0.1:3942); the flags win.
EMMER_HTTP=HOST:PORT serves the directory over HTTP as well.";

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
    let dir = ServeDir::new(&root_arg)
        .allow_writes(true)
        .fsync(!args.no_fsync);
    if let Err(e) = dir.check() {
        eprintln!("serve_dir: cannot serve {}: {e}", root_arg.display());
        return ExitCode::from(2);
    }
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
    tracing::info!(root = %root_arg.display(), "serving a directory");
    let app = App::empty().serve_dir("", dir).config(config);
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
        if let Some(http) = server.http_addr() {
            println!("serve_dir: http on {http}");
        }
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
