//! Deploying, proved with the kernel's own datapath: network namespaces
//! joined by veth pairs, nftables for the load balancer and the firewall,
//! `serve_dir` (or `hello`) as the server, every system client and
//! `emmer::testing::Client` (root only; skipped otherwise, failing under
//! `CI`, as [`netns`](super::netns) does).
//!
//! # Replicas behind a service
//!
//! ```text
//!  <lab>-client              <lab>-router                     <lab>-a
//!  eth0 10.0.0.2/24 ═══ c0 10.0.0.1/24   a0 10.0.1.1/24 ═══ eth0 10.0.1.2  serve_dir :69
//!  input: ct state          DNAT 10.96.0.10:69 →              <lab>-b
//!  established,related      numgen inc mod 2 { A, B }  b0 10.0.2.1/24 ═══ eth0 10.0.2.2  serve_dir :69
//!  accept, else drop
//! ```
//!
//! The client reaches the service only at its VIP, 10.96.0.10:69; the
//! router's `prerouting` chain DNATs each new flow to replica A or B in
//! turn, the way kube-proxy's nftables mode balances a Service, and
//! conntrack undoes the translation on the replies. The client's firewall
//! takes only what belongs to a flow it opened. In single-port mode every
//! reply comes back as the VIP's port 69 and passes; in the default mode
//! each transfer answers from a new port of the replica's own address, a
//! flow nobody opened, and the firewall drops it: the transfer fails.
//!
//! # One server, several addresses
//!
//! ```text
//!  <lab>-client                       <lab>-server
//!  eth0 10.0.0.1/24, fd00::1/64 ═══ eth0 10.0.0.2/24, 10.0.0.3/24 (secondary),
//!                                        fd00::2/64, fd00::3/64
//! ```
//!
//! The server is bound to `0.0.0.0` or `::`. A client asking either address
//! gets every DATA from that address (multi-homed); a request to the
//! subnet's broadcast address or to 255.255.255.255 is answered from the
//! interface's address, 10.0.0.2; `hello` on one `::` socket sees an IPv4
//! client as IPv4 (its handler logs `client_host`).
//!
//! Everything but the server runs in the test process: a client runs on a
//! thread that joined the client's namespace (`setns`), and a system client
//! started from that thread is born in it. Every namespace, with its veths,
//! and every server is removed on drop, also when a test fails; names are
//! `emmer-rep-<pid>-<n>-<role>`, and the addresses, private to a lab's
//! namespaces, can be the same in every lab.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use emmer::Mode;
use emmer::testing::{Client, ClientError};
use nix::sched::{CloneFlags, setns};

use super::clients::{Kind, Opts};
use super::netns::{SETUP_LIMIT, example_binary, must, quietly, skip, unavailable, under_ci};
use super::support::{Output, TempDir, assert_bytes_eq, noise, read, run};

/// How long a server may take to start listening.
const READY_LIMIT: Duration = Duration::from_secs(30);

/// How long one client run may take before it is killed.
const CLIENT_LIMIT: Duration = Duration::from_secs(30);

/// Namespaces and the servers in them; see the module docs. Dropping it
/// kills the servers and deletes the namespaces (which takes their veths).
#[derive(Debug)]
struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    servers: Vec<Child>,
    logs: Vec<PathBuf>,
    dir: TempDir,
}

impl Lab {
    /// A namespace for each role, loopback up. `None` (after printing why)
    /// when this machine cannot make them; with `CI` set that fails.
    fn create(roles: &[&str]) -> Option<Self> {
        if let Some(why) = unavailable() {
            skip(&why);
            return None;
        }
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("emmer-rep-{}-{n}", std::process::id());
        let mut lab = Self {
            dir: TempDir::new(&format!("rep-{n}")),
            prefix,
            namespaces: Vec::new(),
            servers: Vec::new(),
            logs: Vec::new(),
        };
        for (i, role) in roles.iter().enumerate() {
            let ns = lab.ns(role);
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "add", &ns]);
            let out = run(cmd, None, SETUP_LIMIT);
            if !out.status.success() {
                // The first namespace tells whether this machine allows them.
                assert!(i == 0, "{}", out.text());
                skip(&format!(
                    "cannot create a network namespace ({}): {}",
                    out.status,
                    out.text().trim()
                ));
                return None;
            }
            lab.namespaces.push(ns);
            lab.ip(role, &["link", "set", "lo", "up"]);
        }
        Some(lab)
    }

    /// The namespace of a role.
    fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    /// `ip -n <role's namespace> ARGS`, which must succeed.
    #[track_caller]
    fn ip(&self, role: &str, args: &[&str]) {
        let ns = self.ns(role);
        let mut all = vec!["ip", "-n", &ns];
        all.extend_from_slice(args);
        must(&all, None);
    }

    /// A veth pair from `a`'s `a_dev` to `b`'s `b_dev`, both up.
    fn veth(&self, a: &str, a_dev: &str, b: &str, b_dev: &str) {
        let b_ns = self.ns(b);
        self.ip(
            a,
            &[
                "link", "add", a_dev, "type", "veth", "peer", "name", b_dev, "netns", &b_ns,
            ],
        );
        self.ip(a, &["link", "set", a_dev, "up"]);
        self.ip(b, &["link", "set", b_dev, "up"]);
    }

    /// Loads an nftables ruleset into a role's namespace.
    fn nft(&self, role: &str, rules: &str) {
        must(
            &["ip", "netns", "exec", &self.ns(role), "nft", "-f", "-"],
            Some(rules),
        );
    }

    /// The packets counted by the rule with this comment in a table.
    fn counter(&self, role: &str, table: &[&str], comment: &str) -> u64 {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(role), "nft", "list", "table"])
            .args(table);
        let text = run(cmd, None, SETUP_LIMIT).text();
        let tag = format!("comment \"{comment}\"");
        text.lines()
            .find(|l| l.contains(&tag))
            .and_then(|l| l.split("packets ").nth(1))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no counter {comment:?} in:\n{text}"))
    }

    /// Starts an example in a role's namespace with `args` and `env`, its
    /// log (`RUST_LOG=info` unless `env` says otherwise) in a file, and
    /// waits until it listens. Returns the address it logged and the log's
    /// index for [`log`](Self::log). `None` (after printing why) when the
    /// example is not built; with `CI` set that fails.
    fn spawn(
        &mut self,
        role: &str,
        example: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Option<(SocketAddr, usize)> {
        let bin = match example_binary(example) {
            Ok(b) => b,
            Err(why) if under_ci() => panic!("{why}"),
            Err(why) => {
                eprintln!("skipped: {why}");
                return None;
            }
        };
        let index = self.logs.len();
        let log = self.dir.join(&format!("{role}-{index}-{example}.log"));
        let log_file = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(role)])
            .arg(bin)
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            // hello logs to stdout, serve_dir to stderr.
            .stdout(log_file.try_clone().expect("a second handle on the log"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {example} in {role}: {e}"));
        // Ours from here: Drop kills it.
        self.servers.push(child);
        self.logs.push(log);
        let deadline = Instant::now() + READY_LIMIT;
        loop {
            let text = self.log(index);
            // "INFO emmer::server: emmer listening addr=0.0.0.0:69 ports=..."
            if let Some(addr) = text
                .split("emmer listening addr=")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|a| a.parse().ok())
            {
                return Some((addr, index));
            }
            let exited = self.servers[index].try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                panic!(
                    "{example} in {role} is not listening ({}); its log:\n{text}",
                    exited.map_or("not within 30 s".to_owned(), |s| s.to_string())
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A server's log so far.
    fn log(&self, index: usize) -> String {
        std::fs::read_to_string(&self.logs[index]).unwrap_or_default()
    }

    /// Runs `f` on a thread that joined a role's network namespace: its
    /// sockets, and the processes it starts, live there. Bounded by what
    /// `f` does (every client here has a limit).
    fn in_ns<T: Send>(&self, role: &str, f: impl FnOnce() -> T + Send) -> T {
        let path = Path::new("/run/netns").join(self.ns(role));
        let ns = std::fs::File::open(&path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        std::thread::scope(|s| {
            s.spawn(|| {
                setns(&ns, CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("cannot join {}: {e}", path.display()));
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Runs a system client's command in a role's namespace.
    fn run_in(&self, role: &str, cmd: Command, stdin: Option<Vec<u8>>) -> Output {
        self.in_ns(role, move || run(cmd, stdin, CLIENT_LIMIT))
    }

    /// Runs an `emmer::testing::Client` future in a role's namespace, on a
    /// runtime of its own, for at most [`CLIENT_LIMIT`].
    fn client<T: Send>(
        &self,
        role: &str,
        f: impl AsyncFnOnce() -> Result<T, ClientError> + Send,
    ) -> Result<T, ClientError> {
        self.in_ns(role, move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the client")
                .block_on(async {
                    tokio::time::timeout(CLIENT_LIMIT, f())
                        .await
                        .unwrap_or(Err(ClientError::Timeout))
                })
        })
    }

    /// The tails of every server's log, for failure messages.
    fn report(&self) -> String {
        let mut out = String::new();
        for (i, log) in self.logs.iter().enumerate() {
            let text = self.log(i);
            let lines: Vec<&str> = text.lines().collect();
            let _ = writeln!(
                out,
                "{} (last lines):\n{}",
                log.file_name().unwrap_or_default().to_string_lossy(),
                lines[lines.len().saturating_sub(15)..].join("\n")
            );
        }
        out
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.servers {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}:\n{}", self.prefix, self.report());
        }
        for ns in &self.namespaces {
            quietly(&["ip", "netns", "del", ns]);
        }
    }
}

/// Turns on forwarding in a role's namespace.
fn forward(lab: &Lab, role: &str) {
    must(
        &[
            "ip",
            "netns",
            "exec",
            &lab.ns(role),
            "sh",
            "-c",
            "echo 1 > /proc/sys/net/ipv4/ip_forward",
        ],
        None,
    );
}

// ---------------------------------------------------------------------------
// Replicas behind a service

/// The service's virtual address; its port is 69.
const VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
/// The client's address.
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// Replicas A and B.
const REPLICAS: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 0, 1, 2), Ipv4Addr::new(10, 0, 2, 2)];

/// The router's ruleset: the service's DNAT, as kube-proxy's nftables mode
/// writes it (one endpoint per new flow, in turn).
fn service_rules() -> String {
    let [a, b] = REPLICAS;
    format!(
        r#"table ip emmer_service {{
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr {VIP} udp dport 69 counter dnat to numgen inc mod 2 map {{ 0 : {a}, 1 : {b} }} comment "service"
    }}
}}
"#
    )
}

/// The client's ruleset: a stateful firewall that takes only the flows the
/// client opened (the datagrams from a replica's own address are counted
/// before they are dropped).
fn client_rules() -> String {
    let [a, b] = REPLICAS;
    format!(
        r#"table inet emmer_client {{
    chain input {{
        type filter hook input priority filter; policy drop;
        ct state established,related accept
        iif "lo" accept
        ip saddr {{ {a}, {b} }} counter comment "from_replicas_dropped"
        counter comment "dropped"
    }}
}}
"#
    )
}

/// Two `serve_dir` replicas behind a VIP; see the module docs.
#[derive(Debug)]
struct Service {
    lab: Lab,
    /// Each replica's served directory.
    roots: [PathBuf; 2],
    /// Each replica's log index.
    logs: [usize; 2],
}

impl Service {
    /// Builds the namespaces, links and rules, and starts both replicas with
    /// `EMMER_PORTS=ports`, each serving `file.bin` = `body`.
    fn create(ports: &str, body: &[u8]) -> Option<Self> {
        let mut lab = Lab::create(&["client", "router", "a", "b"])?;
        lab.veth("router", "c0", "client", "eth0");
        lab.veth("router", "a0", "a", "eth0");
        lab.veth("router", "b0", "b", "eth0");
        lab.ip("router", &["addr", "add", "10.0.0.1/24", "dev", "c0"]);
        lab.ip("router", &["addr", "add", "10.0.1.1/24", "dev", "a0"]);
        lab.ip("router", &["addr", "add", "10.0.2.1/24", "dev", "b0"]);
        forward(&lab, "router");
        for (role, addr, gateway) in [
            ("client", CLIENT, "10.0.0.1"),
            ("a", REPLICAS[0], "10.0.1.1"),
            ("b", REPLICAS[1], "10.0.2.1"),
        ] {
            lab.ip(role, &["addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
            lab.ip(role, &["route", "add", "default", "via", gateway]);
        }
        lab.nft("router", &service_rules());
        lab.nft("client", &client_rules());
        let mut roots = Vec::new();
        let mut logs = Vec::new();
        for role in ["a", "b"] {
            let root = lab.dir.join(&format!("root-{role}"));
            std::fs::create_dir_all(&root).expect("create a replica's directory");
            std::fs::write(root.join("file.bin"), body).expect("write the served file");
            let root_arg = root.to_str().expect("temporary paths are UTF-8").to_owned();
            let (addr, log) = lab.spawn(
                role,
                "serve_dir",
                &[&root_arg, "--host", "0.0.0.0", "--port", "69"],
                &[("EMMER_PORTS", ports)],
            )?;
            assert_eq!(addr.port(), 69);
            roots.push(root);
            logs.push(log);
        }
        Some(Self {
            lab,
            roots: roots.try_into().expect("two replicas"),
            logs: logs.try_into().expect("two replicas"),
        })
    }

    fn vip() -> SocketAddr {
        SocketAddr::from((VIP, 69))
    }

    /// Which replica stored the upload `name`, checked byte-exact against
    /// `body`; waits up to 5 s for it to appear.
    fn stored_by(&self, name: &str, body: &[u8]) -> usize {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found: Vec<usize> = (0..2)
                .filter(|&i| self.roots[i].join(name).is_file())
                .collect();
            match found[..] {
                [i] => {
                    let got = read(&self.roots[i].join(name));
                    assert_bytes_eq(&got, body, &format!("{name} stored by replica {i}"));
                    return i;
                }
                [] if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => panic!("{name}: stored by replicas {found:?}, expected exactly one"),
            }
        }
    }

    /// Completed reads in a replica's log.
    fn reads_served(&self, replica: usize) -> usize {
        self.lab
            .log(self.logs[replica])
            .lines()
            .filter(|l| l.contains("op=\"read\"") && l.contains("outcome=\"complete\""))
            .count()
    }
}

/// Who transfers through the VIP.
#[derive(Debug, Clone, Copy)]
enum Who {
    System(Kind),
    Emmer,
}

/// In single-port mode, behind a DNAT that balances each flow to one of two
/// replicas and a client firewall that takes only established flows, every
/// client gets and puts byte-exact through the VIP, and the transfers land
/// on both replicas.
#[test]
fn single_port_mode_serves_every_client_through_a_service() {
    let body = noise(100_000, 71);
    let Some(svc) = Service::create("single", &body) else {
        return;
    };
    let start = Instant::now();
    let vip = Service::vip();
    let dir = TempDir::new("rep-clients");
    let local = dir.write("local.bin", &body);
    let whos = [
        Who::System(Kind::Curl),
        Who::System(Kind::Hpa),
        Who::System(Kind::Atftp),
        Who::System(Kind::Busybox),
        Who::Emmer,
    ];
    let mut uploads = Vec::new();
    for (i, who) in whos.into_iter().enumerate() {
        // numgen inc gives flows to A and B in turn: half the clients put
        // first, so gets and puts both land on both replicas.
        let put_first = i % 2 == 1;
        for put in [put_first, !put_first] {
            let label = format!("{who:?} {}", if put { "put" } else { "get" });
            let name = format!("up-{i}.bin");
            let out_file = dir.join(&format!("get-{i}.bin"));
            match who {
                Who::System(kind) => {
                    let Some(tool) = kind.require() else { break };
                    // tftp-hpa's client asks for no options.
                    let opts = Opts {
                        blksize: (kind != Kind::Hpa).then_some(1428),
                        ..Opts::default()
                    };
                    let (cmd, stdin) = if put {
                        tool.put_command(vip, &local, &name, Mode::Octet, opts)
                    } else {
                        tool.get_command(vip, "file.bin", &out_file, Mode::Octet, opts)
                    };
                    // On failure the lab's Drop prints the replicas' logs.
                    let out = svc.lab.run_in("client", cmd, stdin);
                    tool.assert_ok(&out);
                }
                Who::Emmer => {
                    let client = Client::new(vip).blksize(1428).windowsize(8);
                    let (name, out_file, body) = (&name, &out_file, &body);
                    let r = svc.lab.client("client", async move || {
                        if put {
                            client.put(name, body).await
                        } else {
                            let got = client.get("file.bin").await?;
                            std::fs::write(out_file, got).map_err(ClientError::Io)
                        }
                    });
                    if let Err(e) = r {
                        panic!("{label} through the VIP: {e}");
                    }
                }
            }
            if put {
                uploads.push((label, svc.stored_by(&name, &body)));
            } else {
                assert_bytes_eq(&read(&out_file), &body, &label);
            }
        }
    }
    let took = start.elapsed();
    let reads = [svc.reads_served(0), svc.reads_served(1)];
    let stored = |r: usize| uploads.iter().filter(|(_, at)| *at == r).count();
    eprintln!(
        "{} transfers through {vip} in {took:.2?}: replica A served {} reads and stored {} uploads, \
         B {} and {}; uploads: {uploads:?}; the service's DNAT counted {} new flows",
        2 * uploads.len(),
        reads[0],
        stored(0),
        reads[1],
        stored(1),
        svc.lab
            .counter("router", &["ip", "emmer_service"], "service"),
    );
    assert!(
        reads[0] > 0 && reads[1] > 0 && stored(0) > 0 && stored(1) > 0,
        "the transfers did not land on both replicas: reads {reads:?}, uploads {uploads:?}"
    );
    // Nothing from a replica's own address reached the client.
    assert_eq!(
        svc.lab
            .counter("client", &["inet", "emmer_client"], "from_replicas_dropped"),
        0
    );
}

/// The same service with the default port policy: each transfer answers
/// from a new port of the replica's own address, which the client's
/// firewall drops, so every client's get and put fails (this is what
/// single-port mode is for). All ten run at once; each system client is
/// given 4 s (`timeout 4`), ours about 1.2 s.
#[test]
fn the_default_mode_fails_behind_a_service() {
    let body = noise(10_000, 72);
    let Some(svc) = Service::create("ephemeral", &body) else {
        return;
    };
    let vip = Service::vip();
    let dir = TempDir::new("rep-default");
    let local = dir.write("local.bin", &body);
    let body: &[u8] = &body;
    let start = Instant::now();
    let kinds = [Kind::Curl, Kind::Hpa, Kind::Atftp, Kind::Busybox];
    let tools: Vec<_> = kinds.iter().filter_map(|k| k.require()).collect();
    let outcomes: Vec<(String, bool, String)> = std::thread::scope(|s| {
        let mut runs = Vec::new();
        for tool in &tools {
            for put in [false, true] {
                let (svc, dir, local) = (&svc, &dir, &local);
                runs.push(s.spawn(move || {
                    let label = format!("{:?} {}", tool.kind, if put { "put" } else { "get" });
                    let name = format!("up-{:?}.bin", tool.kind);
                    let got = dir.join(&format!("got-{:?}.bin", tool.kind));
                    let (cmd, stdin) = if put {
                        tool.put_command(vip, local, &name, Mode::Octet, Opts::default())
                    } else {
                        tool.get_command(vip, "file.bin", &got, Mode::Octet, Opts::default())
                    };
                    let mut bounded = Command::new("timeout");
                    bounded.arg("4").arg(cmd.get_program()).args(cmd.get_args());
                    let out = svc.lab.run_in("client", bounded, stdin);
                    let text = out.text();
                    // tftp-hpa exits with 0 after "Transfer timed out".
                    let failed = !out.status.success() || text.contains("timed out");
                    let arrived = if put {
                        svc.roots.iter().any(|r| r.join(&name).exists())
                    } else {
                        std::fs::read(&got).is_ok_and(|g| g == *body)
                    };
                    (
                        label,
                        failed && !arrived,
                        format!("{}: {}", out.status, text.trim()),
                    )
                }));
            }
        }
        for put in [false, true] {
            let svc = &svc;
            runs.push(s.spawn(move || {
                let client = Client::new(vip).wait(Duration::from_millis(300)).retries(3);
                let r = svc.lab.client("client", async move || {
                    if put {
                        client.put("up-emmer.bin", body).await
                    } else {
                        client.get("file.bin").await.map(drop)
                    }
                });
                let label = format!("emmer::testing::Client {}", if put { "put" } else { "get" });
                (
                    label,
                    matches!(r, Err(ClientError::Timeout)),
                    format!("{r:?}"),
                )
            }));
        }
        runs.into_iter()
            .map(|r| r.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let took = start.elapsed();
    // The replicas did answer: from their own address, dropped.
    let dropped = svc
        .lab
        .counter("client", &["inet", "emmer_client"], "from_replicas_dropped");
    eprintln!(
        "default mode, {} transfers through {vip} at once, all over after {took:.2?}; the client's \
         firewall dropped {dropped} datagrams from the replicas' own addresses:",
        outcomes.len()
    );
    for (label, failed, said) in &outcomes {
        let said = said.lines().last().unwrap_or_default();
        eprintln!(
            "  {label}: {}; {said}",
            if *failed { "failed" } else { "SUCCEEDED" }
        );
    }
    let passed: Vec<&str> = outcomes
        .iter()
        .filter(|(_, failed, _)| !failed)
        .map(|(label, _, _)| label.as_str())
        .collect();
    assert!(
        passed.is_empty(),
        "in the default mode these got through: {passed:?}"
    );
    assert!(
        dropped > 0,
        "the replicas' replies never reached the client's firewall"
    );
}

// ---------------------------------------------------------------------------
// One server, several addresses

/// The client's addresses.
const LAN_CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const LAN_CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
/// The server's addresses: the interface's (primary) and a secondary one.
const LAN_SERVER: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)];
const LAN_SERVER_V6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2),
    Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 3),
];
const LAN_BROADCAST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 255);

/// A client and a server namespace on one link; see the module docs.
#[derive(Debug)]
struct Lan {
    lab: Lab,
    /// Whether the IPv6 addresses could be added.
    v6: bool,
    root: PathBuf,
}

/// Three blocks of 512 (the last one short).
const LAN_FILE: usize = 1300;

impl Lan {
    fn create() -> Option<Self> {
        let lab = Lab::create(&["client", "server"])?;
        lab.veth("client", "eth0", "server", "eth0");
        lab.ip(
            "client",
            &["addr", "add", &format!("{LAN_CLIENT}/24"), "dev", "eth0"],
        );
        for a in LAN_SERVER {
            lab.ip(
                "server",
                &["addr", "add", &format!("{a}/24"), "dev", "eth0"],
            );
        }
        // 255.255.255.255 needs a route.
        lab.ip("client", &["route", "add", "default", "dev", "eth0"]);
        // No DAD: the addresses are usable at once.
        let add6 = |role: &str, a: Ipv6Addr| {
            let mut cmd = Command::new("ip");
            cmd.args(["-n", &lab.ns(role), "addr", "add", &format!("{a}/64")])
                .args(["dev", "eth0", "nodad"]);
            let out = run(cmd, None, SETUP_LIMIT);
            if !out.status.success() {
                eprintln!(
                    "no IPv6 here ({}): the IPv6 parts are skipped",
                    out.text().trim()
                );
            }
            out.status.success()
        };
        let v6 = Path::new("/proc/sys/net/ipv6").exists()
            && add6("client", LAN_CLIENT_V6)
            && LAN_SERVER_V6.iter().all(|&a| add6("server", a));
        let root = lab.dir.join("root");
        std::fs::create_dir_all(&root).expect("create the served directory");
        std::fs::write(root.join("file.bin"), noise(LAN_FILE, 73)).expect("write the file");
        Some(Self { lab, v6, root })
    }

    /// Starts `serve_dir` on `host` and `port` with `EMMER_PORTS=ports`.
    fn serve_dir(&mut self, host: &str, port: u16, ports: &str) -> Option<SocketAddr> {
        let root = self
            .root
            .to_str()
            .expect("temporary paths are UTF-8")
            .to_owned();
        let port = port.to_string();
        self.lab
            .spawn(
                "server",
                "serve_dir",
                &[&root, "--host", host, "--port", &port],
                &[("EMMER_PORTS", ports)],
            )
            .map(|(addr, _)| addr)
    }
}

/// A lock-step read of `file.bin` with raw packets, from a socket that may
/// broadcast: the body and the source of every DATA (each ACK goes to that
/// source). Every wait is bounded (2 s).
fn raw_get(to: SocketAddr) -> (Vec<u8>, Vec<SocketAddr>) {
    let any: IpAddr = if to.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let s = UdpSocket::bind((any, 0)).expect("a client socket");
    if to.is_ipv4() {
        s.set_broadcast(true).expect("SO_BROADCAST");
    }
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.send_to(b"\x00\x01file.bin\x00octet\x00", to)
        .unwrap_or_else(|e| panic!("RRQ to {to}: {e}"));
    let (mut body, mut sources) = (Vec::new(), Vec::new());
    let mut buf = [0u8; 600];
    loop {
        let (n, src) = s
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("RRQ to {to}: no DATA within 2 s ({e}); got {sources:?}"));
        assert_eq!(&buf[..2], &[0, 3], "DATA from {src}, got {:?}", &buf[..n]);
        sources.push(src);
        body.extend_from_slice(&buf[4..n]);
        s.send_to(&[0, 4, buf[2], buf[3]], src).unwrap();
        if n < 4 + 512 {
            return (body, sources);
        }
    }
}

/// Checks that every DATA of a read sent to `to` came from `from` (the
/// listening port in single-port mode, another one otherwise).
fn assert_answered_from(lan: &Lan, to: SocketAddr, from: IpAddr, single: bool, what: &str) {
    let (body, sources) = lan.lab.in_ns("client", move || raw_get(to));
    assert_bytes_eq(&body, &noise(LAN_FILE, 73), what);
    assert_eq!(sources.len(), 3, "{what}");
    for s in &sources {
        assert_eq!(s.ip(), from, "{what}: DATA from {sources:?}");
        assert_eq!(
            s.port() == to.port(),
            single,
            "{what}: DATA from {sources:?}"
        );
    }
}

/// Bound to 0.0.0.0 (and to ::), a server with two addresses answers a
/// request to each from that address, in both port modes.
#[test]
fn a_multi_homed_server_answers_from_the_address_asked() {
    let Some(mut lan) = Lan::create() else {
        return;
    };
    let mut hosts = vec!["0.0.0.0"];
    if lan.v6 {
        hosts.push("::");
    }
    let mut checked = Vec::new();
    for (i, host) in hosts.into_iter().enumerate() {
        for (j, ports) in ["ephemeral", "single"].into_iter().enumerate() {
            let port = 6900 + (2 * i + j) as u16;
            let Some(listening) = lan.serve_dir(host, port, ports) else {
                return;
            };
            let mut targets: Vec<IpAddr> = LAN_SERVER.iter().map(|&a| a.into()).collect();
            if host == "::" {
                targets.extend(LAN_SERVER_V6.iter().map(|&a| IpAddr::from(a)));
            }
            for ip in targets {
                let what = format!("{ports} server on {listening}, asked at {ip}");
                assert_answered_from(&lan, (ip, port).into(), ip, ports == "single", &what);
                checked.push(what);
            }
        }
    }
    eprintln!("every DATA from the address asked: {}", checked.join("; "));
}

/// An RRQ to the subnet's broadcast address, or to 255.255.255.255, is
/// answered from the interface's address, in both port modes.
#[test]
fn a_broadcast_request_is_answered_from_the_interface_address() {
    let Some(mut lan) = Lan::create() else {
        return;
    };
    let mut hosts = vec!["0.0.0.0"];
    if lan.v6 {
        hosts.push("::");
    }
    for (i, host) in hosts.into_iter().enumerate() {
        for (j, ports) in ["ephemeral", "single"].into_iter().enumerate() {
            let port = 6900 + (2 * i + j) as u16;
            let Some(listening) = lan.serve_dir(host, port, ports) else {
                return;
            };
            for to in [LAN_BROADCAST, Ipv4Addr::BROADCAST] {
                let what = format!("{ports} server on {listening}, RRQ to {to}");
                let from = IpAddr::from(LAN_SERVER[0]);
                assert_answered_from(&lan, (to, port).into(), from, ports == "single", &what);
            }
        }
    }
}

/// One `::` socket: an IPv4 client's handler sees an IPv4 `client_host`
/// (and an IPv6 client's, its IPv6 address), in both port modes. The
/// `hello` example's read handler logs `client_host`.
#[test]
fn a_dual_stack_socket_shows_ipv4_clients_as_ipv4() {
    let Some(mut lan) = Lan::create() else {
        return;
    };
    if !lan.v6 {
        skip("no IPv6 in network namespaces here: no dual-stack socket");
        return;
    }
    for (port, ports) in [(69u16, "single"), (70, "ephemeral")] {
        let env = [
            ("EMMER_HOST", "::"),
            ("EMMER_PORT", &port.to_string()),
            ("EMMER_PORTS", ports),
            ("RUST_LOG", "info,hello=debug"),
        ];
        let Some((listening, log)) = lan.lab.spawn("server", "hello", &[], &env) else {
            return;
        };
        assert_eq!(listening, SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)));
        for (server, client) in [
            (IpAddr::from(LAN_SERVER[0]), IpAddr::from(LAN_CLIENT)),
            (LAN_SERVER_V6[0].into(), LAN_CLIENT_V6.into()),
        ] {
            let to = SocketAddr::new(server, port);
            let got = lan
                .lab
                .client("client", async move || Client::new(to).get("who").await)
                .unwrap_or_else(|e| panic!("{ports}: get from {to}: {e}"));
            assert_eq!(got, b"example_output");
            let text = lan.lab.log(log);
            let seen = format!("client_host={client} ");
            assert!(
                text.contains(&seen),
                "{ports}: the handler did not log {seen:?} for a client at {client}:\n{text}"
            );
        }
        let text = lan.lab.log(log);
        assert!(
            !text.contains("::ffff:"),
            "{ports}: a mapped address in:\n{text}"
        );
    }
}
