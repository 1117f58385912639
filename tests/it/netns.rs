//! A lossy network in the kernel: the server in its own network namespace,
//! reached from the root namespace through a link namespace whose
//! nftables rules drop and duplicate datagrams.
//!
//! ```text
//!  root namespace            <ns>-link                      <ns>
//!  clients ── elP-N ═══ veth ═══ vroot ─(forward)─ vsrv ═══ veth ═══ eth0 ── server
//!             .1/30             .2/30   nftables   .5/30            .6/30
//! ```
//!
//! Each [`LossyNet`] gets its own pair of namespaces, `emmer-loss-<pid>-<n>`
//! (the server's) and `emmer-loss-<pid>-<n>-link`, and its own /29 in
//! 10.213.0.0/16; the root namespace only gains one veth (and the host route
//! through it, which goes with it). Everything is removed on drop, also when
//! the test fails or panics.
//!
//! # Why a link namespace, not rules in the server's own namespace
//!
//! Two kernel facts, both checked with counters before this was written:
//!
//! - A datagram dropped by an `output` (or `postrouting`) chain fails the
//!   sender's `sendto` with EPERM. Loss on a network is silent; EPERM is
//!   not: tftp-hpa's server aborts the transfer on it, and emmer takes it
//!   as its segmentation offload being refused. A drop on a *forwarding*
//!   hop is silent, as a router's is.
//! - emmer sends a window as one UDP_SEGMENT (GSO) super-packet; veth
//!   carries it whole, so every hook, in any namespace, sees one packet per
//!   window. Rules would drop or duplicate whole windows. The server's
//!   interface therefore has `gso_max_segs 1`: the kernel cuts the
//!   super-packet into datagrams as it leaves the server's namespace (after
//!   the server's own hooks, so only a later hop sees single datagrams), and
//!   the link namespace's `forward` chain judges each datagram alone. The
//!   server still sends with GSO; only the wire is per-datagram.
//!
//! # The rules
//!
//! In the link namespace's `forward` chain, for UDP in each direction: a
//! counter, then `numgen random mod 100 < LOSS drop`, then
//! `numgen random mod 100 < DUP dup to <receiver> device <its side>`, so a
//! datagram is lost with probability LOSS and a delivered one arrives twice
//! with probability DUP (the copy is not subject to loss). [`Loss::first_ack`]
//! adds one chosen loss. Every datagram is traced (`meta nftrace`, read by
//! `nft monitor trace`): [`LossyNet::report`] shows the counters and the
//! end of the trace, decoded to TFTP packets.

use std::fmt;
use std::io::BufRead as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::support::{Output, run, which};

/// How long a setup command (`ip`, `nft`) may take.
pub(crate) const SETUP_LIMIT: Duration = Duration::from_secs(20);

/// The port of the datagrams that check the tracer is listening; the link
/// passes them before any counter or loss rule.
const PROBE_PORT: u16 = 9;

/// Loss and duplication, in percent, each direction, and one chosen loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loss {
    /// Datagrams dropped, per 100.
    pub drop: u8,
    /// Delivered datagrams that arrive twice, per 100.
    pub dup: u8,
    /// Drop the first ACK of this block from the server (an upload's final
    /// ACK, say); later copies pass.
    pub first_ack: Option<u16>,
}

/// Whether failures to set up are fatal: `CI` set to anything but `false`.
pub(crate) fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

/// Says why a namespace test is skipped, or fails with it under CI.
pub(crate) fn skip(why: &str) {
    if under_ci() {
        panic!("{why}; CI runs as root with iproute2 and nftables installed");
    }
    eprintln!("skipped: {why}");
}

/// Why namespaces cannot be built here, or `None` when they can.
pub(crate) fn unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    // "Uid: real effective saved fs"
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned));
    if euid.as_deref() != Some("0") {
        return Some("network namespaces need root (run the tests as root)".into());
    }
    for (program, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        if which(program).is_none() {
            return Some(format!(
                "{program} not installed (apt-get install {package})"
            ));
        }
    }
    None
}

/// The serve_dir example built next to this test binary.
fn serve_dir_binary() -> Result<PathBuf, String> {
    example_binary("serve_dir")
}

/// An example program built next to this test binary.
pub(crate) fn example_binary(name: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("no current executable: {e}"))?;
    // target/<profile>/deps/main-<hash> → target/<profile>/examples/<name>
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("examples").join(name))
        .ok_or("no target directory")?;
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} not built (`cargo test --workspace` builds it; or `cargo build --example {name}`)",
            bin.display()
        ))
    }
}

/// Runs a setup command and panics with its output when it fails.
#[track_caller]
pub(crate) fn must(args: &[&str], input: Option<&str>) -> Output {
    let mut cmd = Command::new(args[0]);
    cmd.args(&args[1..]);
    let out = run(cmd, input.map(|s| s.as_bytes().to_vec()), SETUP_LIMIT);
    out.assert_success();
    out
}

/// Runs a clean-up command, ignoring failure, bounded, never panicking (it
/// runs in `Drop`, maybe while a test unwinds).
pub(crate) fn quietly(args: &[&str]) {
    let Ok(mut child) = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return;
    };
    let deadline = Instant::now() + SETUP_LIMIT;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The addresses of one net: a /29 in 10.213.0.0/16.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// The root namespace's end (the clients' address).
    client: Ipv4Addr,
    /// The link namespace, towards the root namespace.
    link_root: Ipv4Addr,
    /// The link namespace, towards the server.
    link_server: Ipv4Addr,
    /// The server's address.
    server: Ipv4Addr,
}

impl Plan {
    fn new(slot: u32) -> Self {
        let base = u32::from(Ipv4Addr::new(10, 213, 0, 0)) + (slot % 8192) * 8;
        Self {
            client: Ipv4Addr::from(base + 1),
            link_root: Ipv4Addr::from(base + 2),
            link_server: Ipv4Addr::from(base + 5),
            server: Ipv4Addr::from(base + 6),
        }
    }
}

/// A server namespace behind a lossy link; see the module docs. Dropping it
/// kills the server and removes both namespaces and the veth.
#[derive(Debug)]
pub(crate) struct LossyNet {
    /// The server's namespace.
    name: String,
    /// The link namespace.
    link: String,
    /// The root namespace's end of the veth.
    veth: String,
    plan: Plan,
    loss: Loss,
    server: Option<Child>,
    log: Option<PathBuf>,
    /// `nft monitor trace` in the link namespace, writing to `trace_file`.
    tracer: Option<Child>,
    trace_file: PathBuf,
}

impl LossyNet {
    /// Builds the namespaces, links and rules. `None` (after printing why)
    /// when this machine cannot: not root, `ip` or `nft` missing, or network
    /// namespaces refused (a container without CAP_SYS_ADMIN). With `CI` set
    /// that is a failure instead, like a missing client.
    ///
    /// # Panics
    ///
    /// When a later setup command fails: the machine can make namespaces,
    /// so that is a bug here.
    pub(crate) fn create(loss: Loss) -> Option<Self> {
        if let Some(why) = unavailable() {
            skip(&why);
            return None;
        }
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let name = format!("emmer-loss-{pid}-{n}");
        // At most 15 bytes: "el" + 7 digits + "-" + the count.
        let veth = format!("el{pid}-{n}");
        // A slot no other net on this machine uses: the /29's first address
        // is on a root-namespace veth while a net lives.
        let plan = (0..64)
            .map(|attempt| Plan::new(pid.wrapping_mul(97).wrapping_add(n * 131 + attempt)))
            .find(|p| {
                let mut cmd = Command::new("ip");
                cmd.args(["-o", "addr", "show", "to", &format!("{}/29", p.client)]);
                run(cmd, None, SETUP_LIMIT).stdout.is_empty()
            })
            .expect("no free /29 in 10.213.0.0/16");
        let mut net = Self {
            link: format!("{name}-link"),
            name,
            veth,
            plan,
            loss,
            server: None,
            log: None,
            tracer: None,
            trace_file: std::env::temp_dir().join(format!("emmer-loss-{pid}-{n}.trace")),
        };
        // The first namespace tells whether this machine allows them.
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "add", &net.name]);
        let out = run(cmd, None, SETUP_LIMIT);
        if !out.status.success() {
            skip(&format!(
                "cannot create a network namespace ({}): {}",
                out.status,
                out.text().trim()
            ));
            return None;
        }
        net.build();
        net.start_trace();
        Some(net)
    }

    /// Everything after the server's namespace.
    fn build(&mut self) {
        let (s, l, v) = (self.name.as_str(), self.link.as_str(), self.veth.as_str());
        let p = self.plan;
        let cidr = |a: Ipv4Addr| format!("{a}/30");
        must(&["ip", "netns", "add", l], None);
        // Root ⇄ link.
        must(
            &[
                "ip", "link", "add", v, "type", "veth", "peer", "name", "vroot", "netns", l,
            ],
            None,
        );
        must(&["ip", "addr", "add", &cidr(p.client), "dev", v], None);
        must(&["ip", "link", "set", v, "up"], None);
        must(
            &[
                "ip",
                "route",
                "add",
                &format!("{}/32", p.server),
                "via",
                &p.link_root.to_string(),
                "dev",
                v,
            ],
            None,
        );
        // Link ⇄ server.
        must(
            &[
                "ip", "-n", l, "link", "add", "vsrv", "type", "veth", "peer", "name", "eth0",
                "netns", s,
            ],
            None,
        );
        must(
            &[
                "ip",
                "-n",
                l,
                "addr",
                "add",
                &cidr(p.link_root),
                "dev",
                "vroot",
            ],
            None,
        );
        must(
            &[
                "ip",
                "-n",
                l,
                "addr",
                "add",
                &cidr(p.link_server),
                "dev",
                "vsrv",
            ],
            None,
        );
        for dev in ["lo", "vroot", "vsrv"] {
            must(&["ip", "-n", l, "link", "set", dev, "up"], None);
        }
        must(
            &[
                "ip",
                "netns",
                "exec",
                l,
                "sh",
                "-c",
                "echo 1 > /proc/sys/net/ipv4/ip_forward",
            ],
            None,
        );
        must(
            &["ip", "-n", s, "addr", "add", &cidr(p.server), "dev", "eth0"],
            None,
        );
        // Cut emmer's GSO super-packets into datagrams on the way out, so
        // the link judges each one (see the module docs).
        must(
            &["ip", "-n", s, "link", "set", "eth0", "gso_max_segs", "1"],
            None,
        );
        for dev in ["lo", "eth0"] {
            must(&["ip", "-n", s, "link", "set", dev, "up"], None);
        }
        must(
            &[
                "ip",
                "-n",
                s,
                "route",
                "add",
                "default",
                "via",
                &p.link_server.to_string(),
            ],
            None,
        );
        must(
            &["ip", "netns", "exec", l, "nft", "-f", "-"],
            Some(&self.rules()),
        );
    }

    /// The link namespace's ruleset.
    fn rules(&self) -> String {
        let Loss {
            drop,
            dup,
            first_ack,
        } = self.loss;
        let p = self.plan;
        // `numgen inc` counts the datagrams that reach it: only the first
        // matching one sees 0.
        let first_ack = first_ack.map_or(String::new(), |block| {
            format!(
                "iifname \"vsrv\" meta l4proto udp @th,64,32 0x0004{block:04x} \
                 numgen inc mod 65536 0 counter drop comment \"to_client_ack_dropped\""
            )
        });
        format!(
            r#"table ip emmer_loss {{
    chain forward {{
        type filter hook forward priority 0; policy accept;
        meta l4proto udp meta nftrace set 1
        udp dport {PROBE_PORT} accept comment "probe"
        iifname "vroot" meta l4proto udp counter comment "to_server"
        iifname "vsrv" meta l4proto udp counter comment "to_client"
        {first_ack}
        iifname "vroot" meta l4proto udp numgen random mod 100 < {drop} counter drop comment "to_server_dropped"
        iifname "vsrv" meta l4proto udp numgen random mod 100 < {drop} counter drop comment "to_client_dropped"
        iifname "vroot" meta l4proto udp numgen random mod 100 < {dup} counter dup to {server} device "vsrv" comment "to_server_duplicated"
        iifname "vsrv" meta l4proto udp numgen random mod 100 < {dup} counter dup to {client} device "vroot" comment "to_client_duplicated"
    }}
}}
"#,
            server = p.server,
            client = p.client,
        )
    }

    /// Starts `nft monitor trace` in the link namespace and waits (at most
    /// 5 s) until it sees a probe datagram, so it records the whole test.
    /// Without it the test goes on, with a note in the report.
    fn start_trace(&mut self) {
        let Ok(mut file) = std::fs::File::create(&self.trace_file) else {
            return;
        };
        // nft block-buffers a pipe: stdbuf makes it write each line at once,
        // so the times below are the datagrams' own.
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.link]);
        if which("stdbuf").is_some() {
            cmd.args(["stdbuf", "-oL"]);
        }
        let Ok(mut child) = cmd
            .args(["nft", "monitor", "trace"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        else {
            return;
        };
        // Each line gets the time since the net was built; the thread ends
        // when Drop kills the monitor.
        let stdout = child.stdout.take().expect("piped stdout");
        let start = Instant::now();
        std::thread::spawn(move || {
            use std::io::Write as _;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let t = start.elapsed().as_secs_f64();
                if writeln!(file, "{t:9.3} {line}").is_err() {
                    break;
                }
            }
        });
        self.tracer = Some(child);
        let Ok(probe) = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)) else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let _ = probe.send_to(b"probe", (self.plan.server, PROBE_PORT));
            std::thread::sleep(Duration::from_millis(20));
            let seen = std::fs::read_to_string(&self.trace_file).unwrap_or_default();
            if seen.contains("packet:") {
                return;
            }
        }
        eprintln!("{}: nft monitor trace saw no probe within 5 s", self.name);
    }

    /// The link's trace, one line per datagram: seconds since the net was
    /// built, direction, ports, packet, and what the link did with it
    /// (probes left out).
    pub(crate) fn trace(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.trace_file).unwrap_or_default();
        // Trace ids are reused (they come from the packet's address): a
        // `packet:` line starts a new datagram, later lines belong to the
        // latest datagram with their id.
        let mut packets: Vec<(String, Vec<&str>)> = Vec::new();
        let mut latest: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for line in text.lines() {
            let (time, line) = line.trim_start().split_once(' ').unwrap_or(("", line));
            let Some(rest) = line.strip_prefix("trace id ") else {
                continue;
            };
            let Some((id, event)) = rest.split_once(' ') else {
                continue;
            };
            if let Some((_, packet)) = event.split_once("packet: ") {
                latest.insert(id, packets.len());
                packets.push((
                    format!("{time:>9}s  {}", describe_packet(packet)),
                    Vec::new(),
                ));
            } else if let Some(&i) = latest.get(id) {
                let marks = &mut packets[i].1;
                if event.contains("(verdict drop)") {
                    marks.push("DROPPED");
                } else if event.contains(" dup to ") {
                    marks.push("DUPLICATED");
                } else if event.contains("comment \"probe\"") {
                    marks.push("probe");
                }
            }
        }
        packets
            .into_iter()
            .filter(|(_, marks)| !marks.contains(&"probe"))
            .map(|(packet, marks)| {
                if marks.is_empty() {
                    packet
                } else {
                    format!("{packet}  [{}]", marks.join(", "))
                }
            })
            .collect()
    }

    /// Starts the `serve_dir` example over `root` inside the server's
    /// namespace on a free port, with extra environment (`EMMER_*`), its log
    /// (`RUST_LOG=info`) going to `log`; returns its address. `None` (after
    /// printing why) when the example is not built; with `CI` set that fails
    /// instead.
    ///
    /// # Panics
    ///
    /// When the server does not print its address within 30 s.
    pub(crate) fn serve_dir(
        &mut self,
        root: &Path,
        log: &Path,
        env: &[(&str, &str)],
    ) -> Option<SocketAddr> {
        let bin = match serve_dir_binary() {
            Ok(b) => b,
            Err(why) if under_ci() => panic!("{why}"),
            Err(why) => {
                eprintln!("skipped: {why}");
                return None;
            }
        };
        let log_file = std::fs::File::create(log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .arg(bin)
            .arg(root)
            .args(["--host", &self.plan.server.to_string(), "--port", "0"])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start serve_dir in {}: {e}", self.name));
        let stdout = child.stdout.take().expect("piped stdout");
        // The process is ours from here: Drop kills it.
        self.server = Some(child);
        self.log = Some(log.to_owned());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Keep draining, so the server never writes into a closed pipe.
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| {
                panic!(
                    "serve_dir printed no address within 30 s ({e}); its log:\n{}",
                    self.log_tail(40)
                )
            });
        let addr = line
            .strip_prefix("serve_dir: listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from serve_dir: {line:?}"));
        Some(addr)
    }

    /// The last `lines` lines of the server's log.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let Some(log) = &self.log else {
            return String::new();
        };
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// What the link's counters say so far.
    pub(crate) fn counters(&self) -> Counters {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &self.link,
            "nft",
            "list",
            "table",
            "ip",
            "emmer_loss",
        ]);
        let text = run(cmd, None, SETUP_LIMIT).text();
        let get = |comment: &str| -> u64 {
            let tag = format!("comment \"{comment}\"");
            text.lines()
                .find(|l| l.contains(&tag))
                .and_then(|l| l.split("packets ").nth(1))
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Counters {
            to_server: Direction {
                seen: get("to_server"),
                dropped: get("to_server_dropped"),
                duplicated: get("to_server_duplicated"),
            },
            to_client: Direction {
                seen: get("to_client"),
                dropped: get("to_client_dropped") + get("to_client_ack_dropped"),
                duplicated: get("to_client_duplicated"),
            },
        }
    }

    /// The counters, the end of the link's trace and the end of the
    /// server's log, for failure messages.
    pub(crate) fn report(&self) -> String {
        let trace = self.trace();
        let shown = &trace[trace.len().saturating_sub(TRACE_SHOWN)..];
        format!(
            "{} with {}% loss and {}% duplication: {}\n\
             link trace (last {} of {} datagrams; all of it in {}, kept if the test fails):\n{}\n\
             serve_dir log (last lines):\n{}",
            self.name,
            self.loss.drop,
            self.loss.dup,
            self.counters(),
            shown.len(),
            trace.len(),
            self.trace_file.display(),
            shown.join("\n"),
            self.log_tail(30)
        )
    }
}

impl Drop for LossyNet {
    fn drop(&mut self) {
        for child in [self.server.take(), self.tracer.take()]
            .into_iter()
            .flatten()
        {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            // Evidence for the failure: the raw trace stays, decoded beside it.
            let decoded = self.trace_file.with_extension("txt");
            let _ = std::fs::write(&decoded, self.trace().join("\n") + "\n");
            eprintln!(
                "{}: link trace kept in {} (decoded: {})",
                self.name,
                self.trace_file.display(),
                decoded.display()
            );
        } else {
            let _ = std::fs::remove_file(&self.trace_file);
        }
        // Deleting the root end removes the pair (and the host route) at
        // once, even if a namespace outlives its deletion for a while.
        quietly(&["ip", "link", "del", &self.veth]);
        quietly(&["ip", "netns", "del", &self.name]);
        quietly(&["ip", "netns", "del", &self.link]);
    }
}

/// How many datagrams of the trace a report shows.
const TRACE_SHOWN: usize = 40;

/// One traced datagram as `to server  43025 → 50516  ACK 4`, from the
/// `packet:` part of an `nft monitor trace` line, which ends with the first
/// bytes of the UDP payload as `@th,64,BITS 0xHEX` (leading zeros dropped).
fn describe_packet(packet: &str) -> String {
    let field = |name: &str| {
        packet
            .split(name)
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or("?")
            .trim_matches('"')
            .to_owned()
    };
    let direction = match field("iif ").as_str() {
        "vroot" => "to server",
        "vsrv" => "to client",
        _ => "?",
    };
    let length: usize = field("udp length ").parse().unwrap_or(8);
    let payload = packet.split("@th,64,").nth(1).and_then(|r| {
        let (bits, hex) = r.split_once(' ')?;
        let bits: usize = bits.parse().ok()?;
        let hex = hex.split_whitespace().next()?.trim_start_matches("0x");
        let padded = format!("{hex:0>width$}", width = bits / 4);
        let byte = |i: usize| u8::from_str_radix(padded.get(2 * i..2 * i + 2)?, 16).ok();
        let bytes: Vec<u8> = (0..bits / 8).map_while(byte).collect();
        Some(bytes)
    });
    let what = match payload.as_deref() {
        Some([0, op, b1, b2, ..]) => {
            let block = u16::from_be_bytes([*b1, *b2]);
            match op {
                1 => "RRQ".to_owned(),
                2 => "WRQ".to_owned(),
                3 => format!("DATA {block} ({} bytes)", length.saturating_sub(12)),
                4 => format!("ACK {block}"),
                5 => format!("ERROR {block}"),
                6 => "OACK".to_owned(),
                _ => format!("opcode {op}"),
            }
        }
        Some([0, 6, ..]) => "OACK".to_owned(),
        _ => format!("{length} bytes"),
    };
    format!(
        "{direction}  {} → {}  {what}",
        field("udp sport "),
        field("udp dport ")
    )
}

/// Datagrams through the link in one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Direction {
    /// UDP datagrams that reached the link.
    pub seen: u64,
    /// Of those, dropped.
    pub dropped: u64,
    /// Of the rest, sent on twice.
    pub duplicated: u64,
}

/// The link's counters, both directions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// From the clients to the server.
    pub to_server: Direction,
    /// From the server to the clients.
    pub to_client: Direction,
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |d: Direction| {
            format!(
                "{} datagrams, {} dropped, {} duplicated",
                d.seen, d.dropped, d.duplicated
            )
        };
        write!(
            f,
            "to the server {}; to the client {}",
            d(self.to_server),
            d(self.to_client)
        )
    }
}
