//! `emmer::fs::ServeDir`: its name rules and every escape a hostile client
//! may try, through the route table and over the network, and the
//! `serve_dir` example built on it, as the real binary when `cargo test`
//! has built it.

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use emmer::fs::ServeDir;
use emmer::testing::{Client, TestServer};
use emmer::{App, ErrorCode, Mode, Request};

use super::clients::Kind;
use super::support::{
    CLIENT_LIMIT, TempDir, assert_bytes_eq, noise, read, run, run_async, text_body,
};

/// A served tree and a secret outside it:
///
/// ```text
/// <tmp>/root/hello.txt            "hello\n"
/// <tmp>/root/text.txt             text_body()
/// <tmp>/root/sub/nested.bin       noise
/// <tmp>/root/Mixed/Case.TXT       "case"
/// <tmp>/root/inside-link   ->     sub/nested.bin
/// <tmp>/root/escape-link   ->     ../outside/secret.txt
/// <tmp>/root/escape-dir    ->     ../outside
/// <tmp>/root/abs-link      ->     <tmp>/outside/secret.txt   (absolute)
/// <tmp>/root/sub/up        ->     ../../outside              (a parent directory)
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
        std::fs::create_dir_all(root.join("Mixed")).unwrap();
        std::fs::create_dir_all(dir.join("outside")).unwrap();
        std::fs::write(root.join("hello.txt"), b"hello\n").unwrap();
        std::fs::write(root.join("text.txt"), text_body()).unwrap();
        std::fs::write(root.join("Mixed/Case.TXT"), b"case").unwrap();
        let nested = noise(70_000, 21);
        std::fs::write(root.join("sub/nested.bin"), &nested).unwrap();
        std::fs::write(dir.join("outside/secret.txt"), b"secret").unwrap();
        let link = |to: &Path, at: &str| std::os::unix::fs::symlink(to, root.join(at)).unwrap();
        link(Path::new("sub/nested.bin"), "inside-link");
        link(Path::new("../outside/secret.txt"), "escape-link");
        link(Path::new("../outside"), "escape-dir");
        link(&dir.join("outside/secret.txt"), "abs-link");
        link(Path::new("../../outside"), "sub/up");
        Self { dir, nested }
    }

    fn root_path(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// The tree, writable, as `serve_dir` serves it.
    fn dir(&self) -> ServeDir {
        ServeDir::new(self.root_path()).allow_writes(true)
    }

    /// An app serving the tree at the top.
    fn app(&self) -> App {
        App::empty().serve_dir("", self.dir())
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

    /// Nothing outside the root changed: the secret is as it was, alone.
    fn assert_outside_untouched(&self) {
        assert_eq!(self.listing("outside"), ["secret.txt"]);
        assert_eq!(read(&self.dir.join("outside/secret.txt")), b"secret");
    }
}

/// The code of the ERROR a transfer ended with.
#[track_caller]
fn err<T: std::fmt::Debug>(r: Result<T, emmer::testing::ClientError>) -> Option<u16> {
    r.unwrap_err().raw_code()
}

/// Reads `name` through the app's route table and expects ERROR `code`.
async fn refused_read(app: &App, name: &str, code: ErrorCode) {
    match app.read(name).await {
        Err(e) => assert_eq!(e.code(), code, "{name:?}: {e}"),
        Ok(v) => panic!(
            "{name:?} was served ({} bytes: {:?}); expected ERROR {}",
            v.len(),
            String::from_utf8_lossy(&v[..v.len().min(20)]),
            code.as_u16()
        ),
    }
}

/// Writes `name` through the app's route table and expects ERROR `code`.
async fn refused_write(app: &App, name: &str, code: ErrorCode) {
    match app.write(name, "planted").await {
        Err(e) => assert_eq!(e.code(), code, "{name:?}: {e}"),
        Ok(_) => panic!("{name:?} was stored; expected ERROR {}", code.as_u16()),
    }
}

#[tokio::test]
async fn names_resolve_inside_the_root() {
    let tree = Tree::new();
    let app = tree.app();
    for name in [
        "hello.txt",
        "/hello.txt",
        "//hello.txt",
        "./hello.txt",
        "/./hello.txt",
    ] {
        assert_eq!(app.read(name).await.unwrap(), b"hello\n", "{name:?}");
    }
    for name in [
        "sub/nested.bin",
        "sub//nested.bin",
        "sub/./nested.bin",
        "inside-link",
    ] {
        assert_bytes_eq(&app.read(name).await.unwrap(), &tree.nested, name);
    }
}

#[tokio::test]
async fn parent_components_are_refused() {
    let tree = Tree::new();
    let app = tree.app();
    for name in [
        "..",
        "../outside/secret.txt",
        "/../outside/secret.txt",
        "sub/../hello.txt",
        "sub/../../outside/secret.txt",
        "./../outside/secret.txt",
    ] {
        refused_read(&app, name, ErrorCode::AccessViolation).await;
        refused_write(&app, name, ErrorCode::AccessViolation).await;
    }
    tree.assert_outside_untouched();
}

/// A link that leads out is refused wherever it is: the last part, a
/// directory on the way, absolute or relative.
#[tokio::test]
async fn symlinks_out_of_the_root_are_refused() {
    let tree = Tree::new();
    let app = tree.app();
    for name in [
        "escape-link",
        "abs-link",
        "escape-dir/secret.txt",
        "/escape-dir/secret.txt",
        "sub/up/secret.txt",
    ] {
        refused_read(&app, name, ErrorCode::AccessViolation).await;
    }
    for name in ["escape-dir/planted.txt", "sub/up/planted.txt"] {
        refused_write(&app, name, ErrorCode::AccessViolation).await;
    }
    tree.assert_outside_untouched();
}

/// An absolute name is a name under the root, never a path of the host.
#[tokio::test]
async fn absolute_names_stay_under_the_root() {
    let tree = Tree::new();
    let app = tree.app();
    let secret = tree.dir.join("outside/secret.txt");
    let absolute = secret.to_str().unwrap();
    assert!(absolute.starts_with('/'));
    refused_read(&app, absolute, ErrorCode::FileNotFound).await;
    // Its directories do not exist under the root: nothing is written.
    refused_write(&app, absolute, ErrorCode::FileNotFound).await;
    refused_read(&app, "/etc/passwd", ErrorCode::FileNotFound).await;
    tree.assert_outside_untouched();
}

#[tokio::test]
async fn nul_bytes_and_over_long_names_are_refused() {
    let tree = Tree::new();
    let app = tree.app();
    let long_part = "a".repeat(emmer::fs::MAX_PART + 1);
    let long_name = format!("{}/x", "d/".repeat(emmer::fs::MAX_NAME / 2));
    for name in [
        "hello.txt\0",
        "hello.txt\0../outside/secret.txt",
        "\0",
        long_part.as_str(),
        long_name.as_str(),
    ] {
        refused_read(&app, name, ErrorCode::AccessViolation).await;
        refused_write(&app, name, ErrorCode::AccessViolation).await;
    }
    // The longest part allowed is a plain missing file.
    let longest = "a".repeat(emmer::fs::MAX_PART);
    refused_read(&app, &longest, ErrorCode::FileNotFound).await;
    assert_eq!(tree.listing("root").len(), 8, "nothing written in the root");
    tree.assert_outside_untouched();
}

/// `\` is a plain character unless the option reads it as `/`; either
/// way `..\` cannot go up.
#[tokio::test]
async fn backslash_names() {
    let tree = Tree::new();
    let plain = tree.app();
    refused_read(&plain, r"..\outside\secret.txt", ErrorCode::FileNotFound).await;
    refused_read(&plain, r"sub\nested.bin", ErrorCode::FileNotFound).await;

    let windows = App::empty().serve_dir("", tree.dir().backslash_as_separator(true));
    assert_bytes_eq(
        &windows.read(r"\sub\nested.bin").await.unwrap(),
        &tree.nested,
        r"\sub\nested.bin",
    );
    for name in [
        r"..\outside\secret.txt",
        r"sub\..\..\outside\secret.txt",
        r"\..\outside\secret.txt",
        r"escape-dir\secret.txt",
        r"sub\up\secret.txt",
    ] {
        refused_read(&windows, name, ErrorCode::AccessViolation).await;
        refused_write(&windows, name, ErrorCode::AccessViolation).await;
    }
    // A Windows drive is a name like any other.
    refused_read(&windows, r"C:\Windows\win.ini", ErrorCode::FileNotFound).await;
    windows.write(r"sub\win.bin", "from windows").await.unwrap();
    assert_eq!(read(&tree.root_path().join("sub/win.bin")), b"from windows");
    tree.assert_outside_untouched();
}

#[tokio::test]
async fn case_insensitive_lookup_is_an_option() {
    let tree = Tree::new();
    refused_read(&tree.app(), "mixed/case.txt", ErrorCode::FileNotFound).await;
    let app = App::empty().serve_dir("", tree.dir().case_insensitive(true));
    for name in ["Mixed/Case.TXT", "mixed/case.txt", "MIXED/CASE.TXT"] {
        assert_eq!(app.read(name).await.unwrap(), b"case", "{name:?}");
    }
    // Folding case never opens a way out.
    for name in ["ESCAPE-LINK", "Escape-Dir/Secret.txt", "SUB/UP/secret.txt"] {
        refused_read(&app, name, ErrorCode::AccessViolation).await;
    }
    // An upload to an existing name in another case replaces that file.
    app.write("MIXED/CASE.txt", "new").await.unwrap();
    assert_eq!(read(&tree.root_path().join("Mixed/Case.TXT")), b"new");
    assert_eq!(tree.listing("root/Mixed"), ["Case.TXT"]);
}

#[tokio::test]
async fn missing_files_directories_and_empty_names() {
    let tree = Tree::new();
    let app = tree.app();
    for name in ["missing.txt", "nodir/x.txt", "hello.txt/x"] {
        refused_read(&app, name, ErrorCode::FileNotFound).await;
    }
    refused_write(&app, "nodir/x.txt", ErrorCode::FileNotFound).await;
    for name in ["sub", "/sub/", "."] {
        refused_read(&app, name, ErrorCode::AccessViolation).await;
    }
    refused_write(&app, "sub", ErrorCode::AccessViolation).await;
    for name in ["", "/", "//", "./"] {
        refused_read(&app, name, ErrorCode::AccessViolation).await;
        refused_write(&app, name, ErrorCode::AccessViolation).await;
    }
}

/// A mount under a prefix beside dynamic routes; writes only when allowed;
/// a missing root stops the server from starting.
#[tokio::test]
async fn a_mount_beside_dynamic_routes() {
    let tree = Tree::new();
    let app = App::empty()
        .route_read(r"boot/cfg/(?P<mac>[0-9a-f]+)", |req: &Request| {
            format!("config for {}", req.capture("mac").unwrap())
        })
        .serve_dir("boot/", ServeDir::new(tree.root_path()));
    assert_eq!(app.read("boot/cfg/0a1b").await.unwrap(), b"config for 0a1b");
    assert_eq!(app.read("boot/hello.txt").await.unwrap(), b"hello\n");
    assert_eq!(app.read("/boot/hello.txt").await.unwrap(), b"hello\n");
    refused_read(&app, "hello.txt", ErrorCode::FileNotFound).await;
    refused_read(
        &app,
        "boot/../outside/secret.txt",
        ErrorCode::AccessViolation,
    )
    .await;
    // Read-only unless allowed.
    refused_write(&app, "boot/new.txt", ErrorCode::AccessViolation).await;
    assert!(!tree.root_path().join("new.txt").exists());
    let routes = app.table().unwrap().routes();
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[1].name, r#"serve_dir "boot/""#);

    let missing = App::empty()
        .serve_dir("", ServeDir::new(tree.dir.join("missing")))
        .bind_to("127.0.0.1:0".parse().unwrap());
    let e = missing.bind().await.unwrap_err().to_string();
    assert!(
        e.contains("App::serve_dir") && e.contains("cannot serve"),
        "{e}"
    );
}

/// Over the network: reads (streamed, with tsize), writes (atomic, no
/// leftovers), and refusals with the right codes.
#[tokio::test]
async fn app_serves_reads_and_writes() {
    let tree = Tree::new();
    let server = TestServer::start(tree.app()).await;
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
    assert_eq!(err(client.get("abs-link").await), Some(2));
    assert_eq!(err(client.get("escape-dir/secret.txt").await), Some(2));
    assert_eq!(err(client.get("sub/up/secret.txt").await), Some(2));

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
        ["nested.bin", "new.bin", "up"],
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
    for name in [
        "../outside/planted.txt",
        "escape-dir/planted.txt",
        "sub/up/planted.txt",
    ] {
        assert_eq!(err(client.put(name, b"x").await), Some(2), "{name}");
    }
    assert_eq!(err(client.put("nodir/planted.txt", b"x").await), Some(1));
    tree.assert_outside_untouched();
}

/// Writing through a symlink replaces the link, not the file it points at.
#[tokio::test]
async fn app_put_replaces_a_symlink_not_its_target() {
    let tree = Tree::new();
    let server = TestServer::start(tree.app()).await;
    let client = server.client().wait(Duration::from_secs(2));
    for name in ["escape-link", "abs-link"] {
        client.put(name, b"new content").await.unwrap();
        let link = tree.root_path().join(name);
        assert!(!std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(read(&link), b"new content");
    }
    tree.assert_outside_untouched();
}

/// Every system client gets and puts files through a ServeDir, as through
/// a plain TFTP server.
#[tokio::test]
async fn system_clients_against_the_app() {
    let tree = Tree::new();
    let server = TestServer::start(tree.app()).await;
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
    /// Where it serves HTTP (`EMMER_HTTP`), if it does.
    http: Option<SocketAddr>,
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
            http: None,
        };
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("serve_dir printed no address within 30 s: {e}"));
        running.addr = line
            .strip_prefix("serve_dir: listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from serve_dir: {line:?}"));
        if env.iter().any(|(k, _)| *k == "EMMER_HTTP") {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|e| panic!("serve_dir printed no HTTP address: {e}"));
            running.http = line
                .strip_prefix("serve_dir: http on ")
                .and_then(|a| a.parse().ok());
            assert!(running.http.is_some(), "unexpected second line: {line:?}");
        }
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
        Some(ErrorCode::AccessViolation)
    );
    assert_eq!(
        client.get("missing").await.unwrap_err().code(),
        Some(ErrorCode::FileNotFound)
    );
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

/// `EMMER_HTTP` serves the same directory over HTTP: reads with their
/// length, ranges, uploads stored atomically, and the same refusals.
#[tokio::test]
async fn binary_serves_the_directory_over_http_with_emmer_http() {
    let Some(bin) = example_binary() else { return };
    let tree = Tree::new();
    let root = tree.root_path();
    let root = root.to_str().unwrap().to_owned();
    let running = tokio::task::spawn_blocking(move || {
        Running::start(
            &bin,
            &[&root, "--no-fsync"],
            &[
                ("EMMER_HOST", "127.0.0.1"),
                ("EMMER_PORT", "0"),
                ("EMMER_HTTP", "127.0.0.1:0"),
            ],
        )
    })
    .await
    .unwrap();
    let http = running.http.unwrap();
    let curl = |args: Vec<String>| async move {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "30", "-o", "-", "-w", "\n%{http_code}"])
            .args(args);
        let out = run_async(cmd, None, CLIENT_LIMIT).await;
        out.assert_success();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.to_owned(), body.to_owned())
    };
    let (code, body) = curl(vec![format!("http://{http}/hello.txt")]).await;
    assert_eq!((code.as_str(), body.as_str()), ("200", "hello\n"));
    let (code, body) = curl(vec![
        "-r".into(),
        "1-3".into(),
        format!("http://{http}/hello.txt"),
    ])
    .await;
    assert_eq!((code.as_str(), body.as_str()), ("206", "ell"));
    let (code, _) = curl(vec![
        "--path-as-is".into(),
        format!("http://{http}/../etc/passwd"),
    ])
    .await;
    assert_eq!(code, "403");
    let (code, _) = curl(vec![format!("http://{http}/none")]).await;
    assert_eq!(code, "404");
    let src = tree.root_path().join("hello.txt");
    let (code, _) = curl(vec![
        "-T".into(),
        src.to_string_lossy().into_owned(),
        format!("http://{http}/sub/copy.txt"),
    ])
    .await;
    assert_eq!(code, "204");
    assert_eq!(read(&tree.root_path().join("sub/copy.txt")), b"hello\n");
    // TFTP still answers beside it.
    let client = Client::new(running.addr).wait(Duration::from_secs(2));
    assert_eq!(client.get("sub/copy.txt").await.unwrap(), b"hello\n");
}
