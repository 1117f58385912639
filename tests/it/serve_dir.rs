//! The `serve_dir` example: its path rules checked directly, over the
//! network in process, and through the real binary when `cargo test` has
//! built it.

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use emmer::testing::{Client, TestServer};
use emmer::{ErrorCode, Mode};

use super::clients::Kind;
use super::support::{TempDir, assert_bytes_eq, noise, read, run, text_body};
use crate::serve_dir_example::{Root, app};

/// A served tree and a secret outside it:
///
/// ```text
/// <tmp>/root/hello.txt            "hello\n"
/// <tmp>/root/text.txt             text_body()
/// <tmp>/root/sub/nested.bin       noise
/// <tmp>/root/inside-link   ->     sub/nested.bin
/// <tmp>/root/escape-link   ->     ../outside/secret.txt
/// <tmp>/root/escape-dir    ->     ../outside
/// <tmp>/outside/secret.txt        "secret"
/// ```
struct Tree {
    dir: TempDir,
    nested: Vec<u8>,
}

impl Tree {
    fn new() -> Self {
        let dir = TempDir::new("serve-dir");
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(dir.join("outside")).unwrap();
        std::fs::write(root.join("hello.txt"), b"hello\n").unwrap();
        std::fs::write(root.join("text.txt"), text_body()).unwrap();
        let nested = noise(70_000, 21);
        std::fs::write(root.join("sub/nested.bin"), &nested).unwrap();
        std::fs::write(dir.join("outside/secret.txt"), b"secret").unwrap();
        std::os::unix::fs::symlink("sub/nested.bin", root.join("inside-link")).unwrap();
        std::os::unix::fs::symlink("../outside/secret.txt", root.join("escape-link")).unwrap();
        std::os::unix::fs::symlink("../outside", root.join("escape-dir")).unwrap();
        Self { dir, nested }
    }

    fn root_path(&self) -> PathBuf {
        self.dir.join("root")
    }

    fn root(&self) -> Root {
        Root::new(&self.root_path()).unwrap()
    }

    /// The names in a directory, sorted (to spot leftover temporary files).
    fn listing(&self, sub: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// The code of the ERROR a transfer ended with.
#[track_caller]
fn err<T: std::fmt::Debug>(r: Result<T, emmer::testing::ClientError>) -> Option<u16> {
    r.unwrap_err().code()
}

#[track_caller]
fn assert_code<T: std::fmt::Debug>(r: Result<T, emmer::TftpError>, code: ErrorCode, name: &str) {
    match r {
        Err(e) => assert_eq!(e.code(), code, "{name:?}: {e}"),
        Ok(v) => panic!(
            "{name:?} resolved to {v:?}; expected ERROR {}",
            code.as_u16()
        ),
    }
}

#[test]
fn names_resolve_inside_the_root() {
    let tree = Tree::new();
    let root = tree.root();
    let hello = root.path().join("hello.txt");
    for name in [
        "hello.txt",
        "/hello.txt",
        "//hello.txt",
        "./hello.txt",
        "/./hello.txt",
    ] {
        assert_eq!(root.resolve_read(name).unwrap(), hello, "{name:?}");
    }
    let nested = root.path().join("sub/nested.bin");
    for name in [
        "sub/nested.bin",
        "sub//nested.bin",
        "sub/./nested.bin",
        "inside-link",
    ] {
        assert_eq!(root.resolve_read(name).unwrap(), nested, "{name:?}");
    }
}

#[test]
fn parent_components_are_refused() {
    let tree = Tree::new();
    let root = tree.root();
    for name in [
        "..",
        "../outside/secret.txt",
        "/../outside/secret.txt",
        "sub/../hello.txt",
        "sub/../../outside/secret.txt",
        "./../outside/secret.txt",
    ] {
        assert_code(root.resolve_read(name), ErrorCode::AccessViolation, name);
        assert_code(root.resolve_write(name), ErrorCode::AccessViolation, name);
    }
}

#[test]
fn symlinks_out_of_the_root_are_refused() {
    let tree = Tree::new();
    let root = tree.root();
    for name in [
        "escape-link",
        "escape-dir/secret.txt",
        "/escape-dir/secret.txt",
    ] {
        assert_code(root.resolve_read(name), ErrorCode::AccessViolation, name);
    }
    assert_code(
        root.resolve_write("escape-dir/planted.txt"),
        ErrorCode::AccessViolation,
        "escape-dir/planted.txt",
    );
}

#[test]
fn missing_files_directories_and_empty_names() {
    let tree = Tree::new();
    let root = tree.root();
    assert_code(
        root.resolve_read("missing.txt"),
        ErrorCode::FileNotFound,
        "missing.txt",
    );
    assert_code(
        root.resolve_read("nodir/x.txt"),
        ErrorCode::FileNotFound,
        "nodir/x.txt",
    );
    assert_code(
        root.resolve_read("hello.txt/x"),
        ErrorCode::FileNotFound,
        "hello.txt/x",
    );
    assert_code(
        root.resolve_write("nodir/x.txt"),
        ErrorCode::FileNotFound,
        "nodir/x.txt",
    );
    for name in ["sub", "/sub/", "."] {
        assert_code(root.resolve_read(name), ErrorCode::AccessViolation, name);
    }
    assert_code(root.resolve_write("sub"), ErrorCode::AccessViolation, "sub");
    for name in ["", "/", "//", "./"] {
        assert_code(root.resolve_read(name), ErrorCode::AccessViolation, name);
        assert_code(root.resolve_write(name), ErrorCode::AccessViolation, name);
    }
}

/// The example's app over the network: reads (streamed, with tsize), writes
/// (atomic, no leftovers), and refusals with the right codes.
#[tokio::test]
async fn app_serves_reads_and_writes() {
    let tree = Tree::new();
    let server = TestServer::start(app(tree.root())).await;
    let client = server.client().wait(Duration::from_secs(2));

    assert_eq!(client.get("hello.txt").await.unwrap(), b"hello\n");
    assert_eq!(client.get("/hello.txt").await.unwrap(), b"hello\n");
    let (data, info) = server
        .client()
        .tsize(true)
        .blksize(1428)
        .get_with_info("sub/nested.bin")
        .await
        .unwrap();
    assert_bytes_eq(&data, &tree.nested, "sub/nested.bin");
    assert!(
        info.oack
            .iter()
            .any(|(k, v)| k == "tsize" && *v == tree.nested.len().to_string()),
        "a streamed file announces its size: {:?}",
        info.oack
    );
    // Netascii from a streamed file: the client decodes back to the file.
    let text = client
        .clone()
        .mode(Mode::Netascii)
        .get("text.txt")
        .await
        .unwrap();
    assert_bytes_eq(&text, &text_body(), "text.txt in netascii");

    assert_eq!(err(client.get("missing.txt").await), Some(1));
    assert_eq!(err(client.get("../outside/secret.txt").await), Some(2));
    assert_eq!(err(client.get("escape-link").await), Some(2));
    assert_eq!(err(client.get("escape-dir/secret.txt").await), Some(2));

    // A new file, then a replacement: whole content, no temporary files left.
    let upload = noise(5000, 22);
    client.put("sub/new.bin", &upload).await.unwrap();
    assert_bytes_eq(
        &read(&tree.root_path().join("sub/new.bin")),
        &upload,
        "sub/new.bin",
    );
    client.put("/hello.txt", b"replaced").await.unwrap();
    assert_eq!(read(&tree.root_path().join("hello.txt")), b"replaced");
    assert_eq!(
        tree.listing("root/sub"),
        ["nested.bin", "new.bin"],
        "temporary files left behind"
    );
    // An upload in netascii is stored as local text.
    client
        .clone()
        .mode(Mode::Netascii)
        .put("uploaded.txt", &text_body())
        .await
        .unwrap();
    assert_bytes_eq(
        &read(&tree.root_path().join("uploaded.txt")),
        &text_body(),
        "uploaded.txt",
    );

    // Refused writes change nothing outside the root.
    assert_eq!(
        err(client.put("../outside/planted.txt", b"x").await),
        Some(2)
    );
    assert_eq!(
        err(client.put("escape-dir/planted.txt", b"x").await),
        Some(2)
    );
    assert_eq!(err(client.put("nodir/planted.txt", b"x").await), Some(1));
    assert_eq!(tree.listing("outside"), ["secret.txt"]);
    assert_eq!(read(&tree.dir.join("outside/secret.txt")), b"secret");
}

/// Writing through a symlink replaces the link, not the file it points at.
#[tokio::test]
async fn app_put_replaces_a_symlink_not_its_target() {
    let tree = Tree::new();
    let server = TestServer::start(app(tree.root())).await;
    let client = server.client().wait(Duration::from_secs(2));
    client.put("escape-link", b"new content").await.unwrap();
    assert_eq!(read(&tree.dir.join("outside/secret.txt")), b"secret");
    let link = tree.root_path().join("escape-link");
    assert!(!std::fs::symlink_metadata(&link).unwrap().is_symlink());
    assert_eq!(read(&link), b"new content");
}

/// Every system client gets and puts files through the example's app, as
/// through a plain TFTP server.
#[tokio::test]
async fn system_clients_against_the_app() {
    let tree = Tree::new();
    let server = TestServer::start(app(tree.root())).await;
    let local = TempDir::new("serve-dir-clients");
    for kind in [Kind::Curl, Kind::Hpa, Kind::Atftp, Kind::Busybox] {
        let Some(tool) = kind.require() else { continue };
        let name = format!("{kind:?}").to_lowercase();
        let got = local.join(&format!("{name}.got"));
        let out = tool
            .get(server.addr(), "/sub/nested.bin", &got, Mode::Octet)
            .await;
        tool.assert_ok(&out);
        assert_bytes_eq(&read(&got), &tree.nested, &format!("{kind:?} get"));

        let body = noise(30_000, name.len() as u64);
        let src = local.write(&format!("{name}.put"), &body);
        let remote = format!("sub/{name}.bin");
        let out = tool.put(server.addr(), &src, &remote, Mode::Octet).await;
        tool.assert_ok(&out);
        assert_bytes_eq(
            &read(&tree.root_path().join(&remote)),
            &body,
            &format!("{kind:?} put"),
        );

        let out = tool
            .get(
                server.addr(),
                "../outside/secret.txt",
                &local.join("x"),
                Mode::Octet,
            )
            .await;
        tool.assert_error(
            &out,
            2,
            "access violation: the path leaves the served directory",
        );
    }
}

/// The example binary next to this test binary (`cargo test` builds the
/// examples into `target/<profile>/examples/`), or `None` after saying why.
fn example_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/deps/main-<hash> → target/<profile>/examples/serve_dir
    let bin = exe.parent()?.parent()?.join("examples").join("serve_dir");
    if bin.is_file() {
        Some(bin)
    } else {
        eprintln!(
            "skipped: {} not built (`cargo test --workspace` builds it; or run `cargo build --example serve_dir`)",
            bin.display()
        );
        None
    }
}

/// A running `serve_dir` process, killed on drop.
struct Running {
    child: Child,
    addr: SocketAddr,
}

impl Running {
    fn start(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start serve_dir");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Keep draining after the first line, so the server never
                // writes into a closed pipe.
                let _ = tx.send(line);
            }
        });
        let mut running = Self {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("serve_dir printed no address within 30 s: {e}"));
        running.addr = line
            .strip_prefix("serve_dir: listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from serve_dir: {line:?}"));
        running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real binary: flags win over EMMER_* variables, reads and writes work,
/// `..` is refused.
#[tokio::test]
async fn binary_serves_a_directory() {
    let Some(bin) = example_binary() else { return };
    let tree = Tree::new();
    let root = tree.root_path();
    let root = root.to_str().unwrap();
    let running = tokio::task::spawn_blocking({
        let (bin, root) = (bin.clone(), root.to_owned());
        move || {
            Running::start(
                &bin,
                &[&root, "--port", "0", "--host", "127.0.0.1"],
                &[("EMMER_HOST", "0.0.0.0"), ("EMMER_PORT", "69")],
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(
        running.addr.ip().to_string(),
        "127.0.0.1",
        "--host wins over EMMER_HOST"
    );
    assert_ne!(running.addr.port(), 69, "--port wins over EMMER_PORT");

    let client = Client::new(running.addr).wait(Duration::from_secs(2));
    assert_eq!(client.get("/hello.txt").await.unwrap(), b"hello\n");
    assert_bytes_eq(
        &client.get("inside-link").await.unwrap(),
        &tree.nested,
        "inside-link",
    );
    assert_eq!(
        client
            .get("../outside/secret.txt")
            .await
            .unwrap_err()
            .code(),
        Some(2)
    );
    assert_eq!(client.get("missing").await.unwrap_err().code(), Some(1));
    client.put("sub/put.bin", b"from the test").await.unwrap();
    assert_eq!(
        read(&tree.root_path().join("sub/put.bin")),
        b"from the test"
    );
    drop(running);

    // Without flags, EMMER_HOST / EMMER_PORT are used.
    let running = tokio::task::spawn_blocking({
        let root = root.to_owned();
        move || {
            Running::start(
                &bin,
                &[&root],
                &[("EMMER_HOST", "127.0.0.1"), ("EMMER_PORT", "0")],
            )
        }
    })
    .await
    .unwrap();
    let client = Client::new(running.addr).wait(Duration::from_secs(2));
    assert_eq!(client.get("hello.txt").await.unwrap(), b"hello\n");
}

/// Bad command lines exit with status 2 and say why; `--help` exits 0.
#[test]
fn binary_rejects_bad_arguments() {
    let Some(bin) = example_binary() else { return };
    let tree = Tree::new();
    let root = tree.root_path();
    let root = root.to_str().unwrap();
    let missing = tree.dir.join("missing");
    let missing = missing.to_str().unwrap();
    let hello = tree.root_path().join("hello.txt");
    let hello = hello.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&[], "the directory to serve is missing"),
        (&[missing], "cannot serve"),
        (&[hello], "not a directory"),
        (&[root, "--port", "http"], "is not a port number"),
        (&[root, "--host", "localhost"], "is not an IP address"),
        (&[root, "--port"], "--port needs a value"),
        (&[root, "--bogus"], "unknown option --bogus"),
        (&[root, root], "only one ROOT"),
    ];
    for (args, expected) in cases {
        let mut cmd = Command::new(&bin);
        cmd.args(*args).env("EMMER_PORT", "0");
        let out = run(cmd, None, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(2), "{args:?}:\n{}", out.text());
        assert!(
            out.text().contains(expected),
            "{args:?}: expected {expected:?} in:\n{}",
            out.text()
        );
    }
    let mut cmd = Command::new(&bin);
    cmd.arg("--help");
    let out = run(cmd, None, Duration::from_secs(30));
    out.assert_success();
    assert!(
        out.text().contains("usage: serve_dir ROOT"),
        "{}",
        out.text()
    );
}
