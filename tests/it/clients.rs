//! The system TFTP clients: how to run each, what its netascii mode does to
//! the bytes, and how it reports a server's ERROR.
//!
//! | client | get / put | netascii | error report |
//! |---|---|---|---|
//! | curl | `curl --path-as-is -o` / `-T` | `;mode=netascii` in the URL, no conversion: the local file holds the wire bytes | exit 68 (code 1), 69 (code 2), 70 (code 3); 7.88 prints a wrong message |
//! | tftp-hpa | `tftp -m MODE HOST PORT -c get/put` | converts both ways | "Error code N: message"; exit status 0 even then |
//! | atftp | `atftp --get/--put` | only interactively (`mode netascii` on stdin); converts both ways | exit 255, "error received from server <message>" |
//! | busybox | `busybox tftp -g/-p` | none (always octet) | exit 1, "server error: (N) message"; exit 0 when the ERROR answers the last DATA of a put |

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use emmer::Mode;

use super::support::{CLIENT_LIMIT, Output, run, run_async, to_netascii, which};

/// One of the system clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// curl's `tftp://` support.
    Curl,
    /// H. Peter Anvin's `tftp`.
    Hpa,
    /// `atftp`, the advanced TFTP client.
    Atftp,
    /// busybox's `tftp` applet.
    Busybox,
}

/// A client found on this machine.
#[derive(Debug, Clone)]
pub(crate) struct Tool {
    /// Which client.
    pub kind: Kind,
    program: PathBuf,
}

impl Kind {
    /// The program's name on `PATH`.
    pub(crate) fn program(self) -> &'static str {
        match self {
            Kind::Curl => "curl",
            Kind::Hpa => "tftp",
            Kind::Atftp => "atftp",
            Kind::Busybox => "busybox",
        }
    }

    /// The Debian package that provides it.
    pub(crate) fn package(self) -> &'static str {
        match self {
            Kind::Curl => "curl",
            Kind::Hpa => "tftp-hpa",
            Kind::Atftp => "atftp",
            Kind::Busybox => "busybox",
        }
    }

    /// Whether the client can transfer in netascii mode.
    pub(crate) fn has_netascii(self) -> bool {
        self != Kind::Busybox
    }

    /// The client, when it is installed (and, for `tftp` and `busybox`, is
    /// the implementation these tests drive).
    pub(crate) fn find(self) -> Option<Tool> {
        static FOUND: [OnceLock<Option<PathBuf>>; 4] = [const { OnceLock::new() }; 4];
        FOUND[self as usize]
            .get_or_init(|| {
                let program = which(self.program())?;
                let check = |args: &[&str], expect: &str| {
                    let mut cmd = Command::new(&program);
                    cmd.args(args);
                    run(cmd, None, Duration::from_secs(10))
                        .text()
                        .contains(expect)
                };
                let usable = match self {
                    Kind::Hpa => check(&["-V"], "tftp-hpa"),
                    Kind::Busybox => check(&["--list"], "tftp"),
                    Kind::Curl => check(&["--version"], "tftp"),
                    Kind::Atftp => true,
                };
                usable.then_some(program)
            })
            .clone()
            .map(|program| Tool {
                kind: self,
                program,
            })
    }

    /// The client, or `None` after printing why the test is skipped. Under CI
    /// (`CI` set to anything but `false`) a missing client fails the test
    /// instead: the CI script installs them all.
    pub(crate) fn require(self) -> Option<Tool> {
        let tool = self.find();
        if tool.is_none() {
            let why = format!(
                "{} not installed (apt-get install {})",
                self.program(),
                self.package()
            );
            if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
                panic!("{why}; CI must install every client");
            }
            eprintln!("skipped: {why}");
        }
        tool
    }

    /// What the client leaves in its local file after a netascii download of
    /// `body` (the server sends LF as CR LF and CR as CR NUL).
    pub(crate) fn netascii_download(self, body: &[u8]) -> Vec<u8> {
        match self {
            // Converts back to local text.
            Kind::Hpa | Kind::Atftp => body.to_vec(),
            // Asks for netascii but writes the bytes as they arrive.
            Kind::Curl => to_netascii(body),
            Kind::Busybox => unreachable!("busybox has no netascii mode"),
        }
    }

    /// The local file to upload in netascii mode so that the server stores
    /// `body`.
    pub(crate) fn netascii_upload(self, body: &[u8]) -> Vec<u8> {
        match self {
            Kind::Hpa | Kind::Atftp => body.to_vec(),
            Kind::Curl => to_netascii(body),
            Kind::Busybox => unreachable!("busybox has no netascii mode"),
        }
    }
}

/// Options a transfer may ask for, where the client can.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Opts {
    /// Ask for this blksize (curl, atftp, busybox).
    pub blksize: Option<u16>,
    /// Ask for this windowsize (atftp).
    pub windowsize: Option<u16>,
    /// Ask for no options at all (curl's `--tftp-no-options`).
    pub no_options: bool,
    /// Ask for tsize (atftp `--option "tsize 0"`; curl always does unless
    /// `no_options`).
    pub tsize: bool,
    /// The client's own retransmission timeout in seconds (tftp-hpa's
    /// `rexmt` command, default 5; atftp `--tftp-timeout`, default 5).
    pub rexmt: Option<u8>,
}

impl Tool {
    /// The command that downloads `remote` into `local`, and its stdin.
    pub(crate) fn get_command(
        &self,
        server: SocketAddr,
        remote: &str,
        local: &Path,
        mode: Mode,
        opts: Opts,
    ) -> (Command, Option<Vec<u8>>) {
        self.command(server, false, remote, local, mode, opts)
    }

    /// The command that uploads `local` as `remote`, and its stdin.
    pub(crate) fn put_command(
        &self,
        server: SocketAddr,
        local: &Path,
        remote: &str,
        mode: Mode,
        opts: Opts,
    ) -> (Command, Option<Vec<u8>>) {
        self.command(server, true, remote, local, mode, opts)
    }

    fn command(
        &self,
        server: SocketAddr,
        put: bool,
        remote: &str,
        local: &Path,
        mode: Mode,
        opts: Opts,
    ) -> (Command, Option<Vec<u8>>) {
        let netascii = match mode {
            Mode::Octet => false,
            Mode::Netascii => {
                assert!(
                    self.kind.has_netascii(),
                    "{:?} has no netascii mode",
                    self.kind
                );
                true
            }
            other => panic!("clients do not speak {other:?} mode"),
        };
        let host = server.ip().to_string();
        let port = server.port().to_string();
        let mut cmd = Command::new(&self.program);
        let mut stdin = None;
        match self.kind {
            Kind::Curl => {
                let url = format!(
                    "tftp://{server}/{remote}{}",
                    if netascii { ";mode=netascii" } else { "" }
                );
                // --path-as-is: send names like "../x" as written.
                assert!(opts.rexmt.is_none(), "curl has no retransmission timeout");
                cmd.args([
                    "--silent",
                    "--show-error",
                    "--path-as-is",
                    "--max-time",
                    "100",
                ]);
                if let Some(b) = opts.blksize {
                    cmd.args(["--tftp-blksize", &b.to_string()]);
                }
                if opts.no_options {
                    cmd.arg("--tftp-no-options");
                }
                if put {
                    cmd.arg("--upload-file").arg(local);
                } else {
                    cmd.arg("--output").arg(local);
                }
                cmd.arg(url);
            }
            Kind::Hpa => {
                assert!(
                    opts.blksize.is_none()
                        && opts.windowsize.is_none()
                        && !opts.no_options
                        && !opts.tsize,
                    "tftp-hpa's client asks for no options"
                );
                let local = local.to_str().expect("temporary paths are UTF-8");
                let line = if put {
                    format!("put {local} {remote}")
                } else {
                    format!("get {remote} {local}")
                };
                cmd.args(["-v", "-m", if netascii { "netascii" } else { "octet" }])
                    .args([&host, &port]);
                match opts.rexmt {
                    // `rexmt` is only a command: read the commands from stdin.
                    Some(secs) => {
                        stdin = Some(format!("rexmt {secs}\n{line}\nquit\n").into_bytes())
                    }
                    None => {
                        cmd.arg("-c").args(line.split(' '));
                    }
                }
            }
            Kind::Atftp => {
                assert!(!opts.no_options);
                let mut options = Vec::new();
                if let Some(b) = opts.blksize {
                    options.push(format!("blksize {b}"));
                }
                if let Some(w) = opts.windowsize {
                    options.push(format!("windowsize {w}"));
                }
                if opts.tsize {
                    options.push("tsize 0".to_owned());
                }
                if let Some(secs) = opts.rexmt {
                    cmd.args(["--tftp-timeout", &secs.to_string()]);
                }
                let local = local.to_str().expect("temporary paths are UTF-8");
                if netascii {
                    // The mode can only be set interactively.
                    let mut script = String::from("mode netascii\n");
                    for o in &options {
                        script.push_str(&format!("option {o}\n"));
                    }
                    script.push_str(&if put {
                        format!("put {local} {remote}\n")
                    } else {
                        format!("get {remote} {local}\n")
                    });
                    script.push_str("quit\n");
                    stdin = Some(script.into_bytes());
                } else {
                    cmd.arg(if put { "--put" } else { "--get" })
                        .args(["-r", remote, "-l", local]);
                    for o in &options {
                        cmd.args(["--option", o]);
                    }
                }
                cmd.args([&host, &port]);
            }
            Kind::Busybox => {
                assert!(
                    opts.windowsize.is_none()
                        && !opts.no_options
                        && !opts.tsize
                        && opts.rexmt.is_none()
                );
                cmd.arg("tftp")
                    .arg(if put { "-p" } else { "-g" })
                    .args(["-r", remote])
                    .arg("-l")
                    .arg(local);
                if let Some(b) = opts.blksize {
                    cmd.args(["-b", &b.to_string()]);
                }
                cmd.args([&host, &port]);
            }
        }
        (cmd, stdin)
    }

    /// Downloads `remote` into `local`.
    pub(crate) async fn get(
        &self,
        server: SocketAddr,
        remote: &str,
        local: &Path,
        mode: Mode,
    ) -> Output {
        self.get_with(server, remote, local, mode, Opts::default())
            .await
    }

    /// Downloads `remote` into `local`, asking for options.
    pub(crate) async fn get_with(
        &self,
        server: SocketAddr,
        remote: &str,
        local: &Path,
        mode: Mode,
        opts: Opts,
    ) -> Output {
        let (cmd, stdin) = self.get_command(server, remote, local, mode, opts);
        run_async(cmd, stdin, CLIENT_LIMIT).await
    }

    /// Uploads `local` as `remote`.
    pub(crate) async fn put(
        &self,
        server: SocketAddr,
        local: &Path,
        remote: &str,
        mode: Mode,
    ) -> Output {
        self.put_with(server, local, remote, mode, Opts::default())
            .await
    }

    /// Uploads `local` as `remote`, asking for options.
    pub(crate) async fn put_with(
        &self,
        server: SocketAddr,
        local: &Path,
        remote: &str,
        mode: Mode,
        opts: Opts,
    ) -> Output {
        let (cmd, stdin) = self.put_command(server, local, remote, mode, opts);
        run_async(cmd, stdin, CLIENT_LIMIT).await
    }

    /// Asserts the transfer succeeded as far as the client can tell: exit
    /// status 0 and no error report (tftp-hpa and interactive atftp exit
    /// with 0 even after an ERROR), and no retransmission either (atftp
    /// reports each one): on loopback nothing is lost.
    #[track_caller]
    pub(crate) fn assert_ok(&self, out: &Output) {
        self.assert_completed(out);
        let text = out.text();
        let retried = self.kind == Kind::Atftp && text.contains("timeout");
        assert!(!retried, "{} had to retransmit:\n{text}", out.command);
    }

    /// Asserts the transfer completed as far as the client can tell, maybe
    /// after retransmissions (on a lossy link): exit status 0 and no error
    /// report.
    #[track_caller]
    pub(crate) fn assert_completed(&self, out: &Output) {
        out.assert_success();
        let text = out.text();
        let complaint = match self.kind {
            Kind::Hpa => text.contains("Error code") || text.contains("Transfer timed out"),
            // "timeout: retrying ..." is a retransmission, "tftp: aborting"
            // the end.
            Kind::Atftp => text.contains("error") || text.contains("aborting"),
            Kind::Curl | Kind::Busybox => false,
        };
        assert!(!complaint, "{} reported a problem:\n{text}", out.command);
    }

    /// Asserts the client reported the server's ERROR `code` with `message`
    /// (curl's message is garbled in 7.88, so only its exit status is
    /// checked).
    #[track_caller]
    pub(crate) fn assert_error(&self, out: &Output, code: u16, message: &str) {
        self.check_error(out, code, message, true);
    }

    /// [`assert_error`](Self::assert_error) for an ERROR that answers the
    /// last DATA block of an upload (a write handler's verdict): busybox 1.35
    /// prints it but exits with 0 then, so only its message is checked.
    #[track_caller]
    pub(crate) fn assert_final_error(&self, out: &Output, code: u16, message: &str) {
        self.check_error(out, code, message, self.kind != Kind::Busybox);
    }

    #[track_caller]
    fn check_error(&self, out: &Output, code: u16, message: &str, status_fails: bool) {
        let text = out.text();
        let ctx = || format!("{} ({}):\n{text}", out.command, out.status);
        match self.kind {
            Kind::Curl => {
                // CURLE_TFTP_NOTFOUND, CURLE_TFTP_PERM, CURLE_REMOTE_DISK_FULL.
                let expected = match code {
                    1 => 68,
                    2 => 69,
                    3 => 70,
                    _ => panic!("no curl exit code for TFTP error {code}"),
                };
                assert_eq!(out.status.code(), Some(expected), "{}", ctx());
            }
            Kind::Hpa => {
                let line = format!("Error code {code}: {message}");
                assert!(text.contains(&line), "expected {line:?} from {}", ctx());
            }
            Kind::Atftp => {
                assert!(!out.status.success(), "expected a failure: {}", ctx());
                let line = format!("error received from server <{message}>");
                assert!(text.contains(&line), "expected {line:?} from {}", ctx());
            }
            Kind::Busybox => {
                if status_fails {
                    assert!(!out.status.success(), "expected a failure: {}", ctx());
                }
                let line = format!("server error: ({code}) {message}");
                assert!(text.contains(&line), "expected {line:?} from {}", ctx());
            }
        }
    }
}
