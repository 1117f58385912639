//! The example programs as users run them: each binary is started on a free
//! port (`EMMER_PORT=0`) and driven with `emmer::testing::Client`.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use emmer::testing::{Client, ClientError};

use super::support::{CLIENT_LIMIT, TempDir, noise, run_async};

/// `target/<profile>/examples/<name>`, built by `cargo test --workspace`.
fn binary(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("examples").join(name);
    if bin.is_file() {
        Some(bin)
    } else {
        eprintln!(
            "skipped: {} not built (`cargo test --workspace` builds the examples)",
            bin.display()
        );
        None
    }
}

/// A running example, killed on drop.
struct Example {
    child: Child,
    addr: SocketAddr,
    /// Where it serves HTTP, when `EMMER_HTTP` is set.
    http: Option<SocketAddr>,
}

/// Drops ANSI colour sequences from a log line.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Example {
    /// Starts the example and waits (at most 30 s) for its "emmer listening" line.
    fn start(bin: PathBuf, args: &[String], env: &[(&str, &str)]) -> Example {
        let mut child = Command::new(bin)
            .args(args)
            .env("EMMER_HOST", "127.0.0.1")
            .env("EMMER_PORT", "0")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the example");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(plain(&line));
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let wants_http = env.iter().any(|(k, _)| *k == "EMMER_HTTP");
        let (mut addr, mut http) = (None, None);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("the example printed no listening address within 30 s: {e}");
                }
            };
            let field = |tag: &str| {
                let rest = line.split(tag).nth(1)?;
                rest.split_whitespace().next()?.parse::<SocketAddr>().ok()
            };
            if let Some(a) = field("emmer listening addr=") {
                addr = Some(a);
            }
            if let Some(a) = field("emmer http listening addr=") {
                http = Some(a);
            }
            if let (Some(addr), true) = (addr, http.is_some() || !wants_http) {
                return Example { child, addr, http };
            }
        }
    }

    fn http_url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.http.expect("EMMER_HTTP was set"))
    }

    fn client(&self) -> Client {
        Client::new(self.addr).wait(Duration::from_secs(2))
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(
    name: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
) -> Option<Example> {
    let bin = binary(name)?;
    Some(
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            Example::start(bin, &args, &env)
        })
        .await
        .unwrap(),
    )
}

fn code<T: std::fmt::Debug>(r: Result<T, ClientError>) -> u16 {
    match r {
        Err(e) => e
            .raw_code()
            .unwrap_or_else(|| panic!("expected an ERROR, got {e}")),
        Ok(v) => panic!("expected an ERROR, got {v:?}"),
    }
}

#[tokio::test]
async fn hello_answers_every_read_and_stores_uploads() {
    let Some(ex) = start("hello", vec![], vec![]).await else {
        return;
    };
    assert_eq!(
        ex.client().get("anything").await.unwrap(),
        b"example_output"
    );
    assert_eq!(
        ex.client().get("pxelinux.0").await.unwrap(),
        b"example_output"
    );
    let name = format!("it-{}.bin", std::process::id());
    let data = noise(5000, 11);
    ex.client().put(&name, &data).await.unwrap();
    let stored = std::env::temp_dir().join("emmer-hello").join(&name);
    assert_eq!(std::fs::read(&stored).unwrap(), data);
    let _ = std::fs::remove_file(stored);
    // Names that climb out of the upload directory are refused.
    assert_eq!(code(ex.client().put("../escape.bin", b"x").await), 2);
}

#[tokio::test]
async fn pxe_renders_known_machines_and_falls_back() {
    let Some(ex) = start("pxe", vec![], vec![]).await else {
        return;
    };
    let known = String::from_utf8(
        ex.client()
            .get("pxelinux.cfg/01-52-54-00-12-34-56")
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(known.contains("hostname=web-1"), "{known}");
    assert!(known.contains("52:54:00:12:34:56"), "{known}");
    // Unknown MAC: ERROR 1, so pxelinux moves on to `default`.
    assert_eq!(
        code(ex.client().get("pxelinux.cfg/01-00-00-00-00-00-01").await),
        1
    );
    let menu = String::from_utf8(ex.client().get("pxelinux.cfg/default").await.unwrap()).unwrap();
    assert!(menu.contains("LOCALBOOT"), "{menu}");
    assert_eq!(code(ex.client().get("pxelinux.cfg/01-zz").await), 1);
}

#[tokio::test]
async fn state_is_shared_by_read_and_write_routes() {
    let Some(ex) = start("state", vec![], vec![]).await else {
        return;
    };
    assert_eq!(ex.client().get("counter").await.unwrap(), b"1\n");
    assert_eq!(ex.client().get("counter").await.unwrap(), b"2\n");
    assert_eq!(code(ex.client().get("store/note").await), 1);
    ex.client().put("store/note", b"hello\n").await.unwrap();
    assert_eq!(ex.client().get("store/note").await.unwrap(), b"hello\n");
    // Over the route's 64 KiB limit: ERROR 3, the old value stays.
    assert_eq!(
        code(ex.client().put("store/note", &noise(70_000, 2)).await),
        3
    );
    assert_eq!(ex.client().get("store/note").await.unwrap(), b"hello\n");
}

#[tokio::test]
async fn uploads_stores_backups_of_known_switches_only() {
    let dir = TempDir::new("example-uploads");
    let root = dir.join("").to_string_lossy().into_owned();
    let Some(ex) = start(
        "uploads",
        vec![root.clone()],
        vec![("BACKUP_CLIENTS", "127.0.0.1".into())],
    )
    .await
    else {
        return;
    };
    let cfg = b"hostname sw-core-1\ninterface ge-0/0/1\n".repeat(100);
    ex.client()
        .tsize(true)
        .put("backups/sw-core-1.cfg", &cfg)
        .await
        .unwrap();
    assert_eq!(std::fs::read(dir.join("sw-core-1.cfg")).unwrap(), cfg);
    // Too large: refused from the announced size, the old backup stays whole.
    let big = noise(2 << 20, 5);
    assert_eq!(
        code(
            ex.client()
                .tsize(true)
                .put("backups/sw-core-1.cfg", &big)
                .await
        ),
        3
    );
    assert_eq!(
        code(ex.client().put("backups/sw-core-1.cfg", &big).await),
        3
    );
    assert_eq!(std::fs::read(dir.join("sw-core-1.cfg")).unwrap(), cfg);
    // Not a backup name: no route.
    assert_eq!(code(ex.client().put("other.cfg", b"x").await), 2);
    drop(ex);

    // A switch that is not on the list is refused.
    let Some(ex) = start(
        "uploads",
        vec![root],
        vec![("BACKUP_CLIENTS", "192.0.2.1".into())],
    )
    .await
    else {
        return;
    };
    assert_eq!(code(ex.client().put("backups/sw-2.cfg", b"x").await), 2);
    assert!(!dir.join("sw-2.cfg").exists());
}

/// `EMMER_HTTP` reaches `emmer::run()`: the hello example answers over
/// HTTP too, with the same handlers.
#[tokio::test]
async fn run_serves_http_when_emmer_http_is_set() {
    let Some(ex) = start("hello", vec![], vec![("EMMER_HTTP", "127.0.0.1:0".into())]).await else {
        return;
    };
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "30", "-i"])
        .arg(ex.http_url("anything"));
    let out = run_async(cmd, None, CLIENT_LIMIT).await;
    out.assert_success();
    let text = out.text();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("content-length: 14"), "{text}");
    assert!(text.ends_with("\r\n\r\nexample_output"), "{text}");
    assert_eq!(ex.client().get("x").await.unwrap(), b"example_output");
}

/// SIGTERM (a rolling update) and SIGINT stop `emmer::run()` cleanly: the
/// process exits 0 within the grace period.
#[tokio::test]
async fn run_stops_cleanly_on_sigterm_and_sigint() {
    for signal in ["TERM", "INT"] {
        let Some(mut ex) = start("hello", vec![], vec![]).await else {
            return;
        };
        // It serves, then it is told to stop.
        assert_eq!(ex.client().get("x").await.unwrap(), b"example_output");
        let pid = ex.child.id().to_string();
        let killed = Command::new("kill")
            .args([format!("-{signal}"), pid])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(status) = ex.child.try_wait().unwrap() {
                    return status;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "still running 10 s after SIG{signal}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        })
        .await
        .unwrap();
        assert!(status.success(), "SIG{signal}: exit {status}");
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released for the example).
fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The metrics example after real transfers: curl scrapes the Prometheus
/// text and finds each number the transfers should have made.
#[tokio::test]
async fn metrics_are_scraped_with_curl() {
    let metrics = format!("127.0.0.1:{}", free_tcp_port());
    let env = vec![("EMMER_METRICS_ADDR", metrics.clone())];
    let Some(ex) = start("metrics", vec![], env).await else {
        return;
    };
    for _ in 0..3 {
        assert_eq!(
            ex.client().get("motd").await.unwrap(),
            b"welcome to the lab\n"
        );
    }
    assert_eq!(code(ex.client().get("nothing").await), 1);
    ex.client().put("uploads/a.txt", b"hello").await.unwrap();
    assert_eq!(code(ex.client().put("uploads/b.txt", b"").await), 2);

    let want = [
        r#"emmer_transfers_total{route="motd",op="read",outcome="complete"} 3"#,
        r#"emmer_transfer_bytes_total{route="motd",op="read",outcome="complete"} 57"#,
        r#"emmer_transfer_duration_seconds_count{route="motd",op="read"} 3"#,
        r#"emmer_retransmits_total{route="motd",op="read"} 0"#,
        r#"emmer_transfers_total{route="-",op="read",outcome="error"} 1"#,
        r#"emmer_refused_requests_total{reason="no-route"} 1"#,
        r#"emmer_transfers_total{route="upload",op="write",outcome="complete"} 1"#,
        r#"emmer_transfer_bytes_total{route="upload",op="write",outcome="complete"} 5"#,
        r#"emmer_transfers_total{route="upload",op="write",outcome="error"} 1"#,
        r#"emmer_active_transfers{op="read"} 0"#,
    ];
    // A transfer is counted when the server sees its end, which may come
    // just after the client is done: scrape until every line is there.
    let url = format!("http://{metrics}/metrics");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut curl = Command::new("curl");
        curl.args(["-sS", "--max-time", "5", &url]);
        let out = super::support::run_async(curl, None, Duration::from_secs(10)).await;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let missing: Vec<&str> = want
            .iter()
            .copied()
            .filter(|w| !text.lines().any(|l| l == *w))
            .collect();
        if missing.is_empty() {
            // File names never become labels.
            assert!(
                !text.contains("nothing") && !text.contains("a.txt"),
                "{text}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "missing from the scrape: {missing:#?}\n{}\n{text}",
            out.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The netboot walk-through as a program: the boot program over TFTP only,
/// `autoexec.ipxe` pointing at HTTP, a per-MAC script rendered from the
/// inventory over HTTP (and TFTP), the kernel streamed over HTTP only.
#[tokio::test]
async fn netboot_serves_each_stage_over_its_transport() {
    let dir = TempDir::new("example-netboot");
    std::fs::create_dir_all(dir.join("tftp")).unwrap();
    std::fs::create_dir_all(dir.join("images/debian-12")).unwrap();
    let ipxe = noise(200_000, 31);
    let kernel = noise(3 << 20, 32);
    std::fs::write(dir.join("tftp/ipxe.efi"), &ipxe).unwrap();
    std::fs::write(dir.join("images/debian-12/vmlinuz"), &kernel).unwrap();
    std::fs::write(dir.join("images/debian-12/initrd.img"), b"initrd").unwrap();
    let root = dir.join("").to_string_lossy().into_owned();
    let Some(ex) = start(
        "netboot",
        vec![root],
        vec![("EMMER_HTTP", "127.0.0.1:0".into())],
    )
    .await
    else {
        return;
    };
    let http = ex.http.unwrap();
    let curl = |args: Vec<String>| async move {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "30", "-i"]).args(args);
        let out = run_async(cmd, None, CLIENT_LIMIT).await;
        out.assert_success();
        out.stdout
    };
    let split = |raw: Vec<u8>| {
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        (head, raw[end + 4..].to_vec())
    };

    // 1. The boot program, over TFTP only.
    let got = ex
        .client()
        .tsize(true)
        .blksize(1428)
        .get("ipxe.efi")
        .await
        .unwrap();
    assert_eq!(got, ipxe);
    let (head, _) = split(curl(vec![ex.http_url("ipxe.efi")]).await);
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    // 2. autoexec.ipxe over TFTP points at the HTTP side.
    let auto = String::from_utf8(ex.client().get("autoexec.ipxe").await.unwrap()).unwrap();
    let chain = format!("chain http://{http}/boot/${{mac:hexhyp}}.ipxe");
    assert!(auto.contains(&chain), "{auto}");

    // 3. The machine's script, rendered from the inventory.
    let (head, body) = split(curl(vec![ex.http_url("boot/52-54-00-12-34-56.ipxe")]).await);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let script = String::from_utf8(body).unwrap();
    assert!(script.starts_with("#!ipxe\n"), "{script}");
    assert!(script.contains("hostname=web-1"), "{script}");
    let kernel_url = format!("http://{http}/images/debian-12/vmlinuz");
    assert!(
        script.contains(&format!("kernel {kernel_url} ")),
        "{script}"
    );
    let over_tftp = ex
        .client()
        .get("boot/52-54-00-12-34-56.ipxe")
        .await
        .unwrap();
    assert!(String::from_utf8(over_tftp).unwrap().contains("over tftp"));
    let (head, _) = split(curl(vec![ex.http_url("boot/00-00-00-00-00-01.ipxe")]).await);
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let (_, body) = split(curl(vec![ex.http_url("boot/default.ipxe")]).await);
    assert!(String::from_utf8(body).unwrap().ends_with("exit\n"));

    // 4. The kernel, over HTTP with its length (HEAD first, as UEFI does),
    //    a range, and not over TFTP.
    let (head, body) = split(curl(vec!["-I".into(), kernel_url.clone()]).await);
    assert!(
        head.contains(&format!("content-length: {}", kernel.len())),
        "{head}"
    );
    assert!(body.is_empty());
    let (_, body) = split(curl(vec![kernel_url.clone()]).await);
    assert!(body == kernel, "the kernel arrived whole");
    let (head, body) = split(curl(vec!["-r".into(), "1000-1999".into(), kernel_url]).await);
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert_eq!(body, &kernel[1000..2000]);
    assert_eq!(code(ex.client().get("images/debian-12/vmlinuz").await), 1);
}
