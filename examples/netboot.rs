//! Netboot as it is done today: TFTP for the first stage, HTTP for the
//! rest, from one route table.
//!
//! ```text
//! DIR/
//!   tftp/ipxe.efi                 boot programs (any file under tftp/),
//!   tftp/undionly.kpxe            over TFTP only, at the top: ipxe.efi
//!   images/<image>/vmlinuz        kernels and initrds, over HTTP only,
//!   images/<image>/initrd.img     under images/
//!
//! EMMER_HTTP=0.0.0.0:8080 EMMER_HOST=0.0.0.0 EMMER_PORT=69 \
//!     cargo run --example netboot -- DIR
//! ```
//!
//! 1. The firmware's PXE ROM gets `ipxe.efi` (or `undionly.kpxe`) over TFTP
//!    (DHCP's `filename`, `next-server` this host).
//! 2. iPXE, given no script by DHCP, asks the same TFTP server for
//!    `autoexec.ipxe`; it says to chain the machine's own script over
//!    HTTP, by MAC address, or the default one.
//! 3. `boot/<mac>.ipxe` is rendered from the inventory in application
//!    state: the host's name and image. It names the kernel and initrd by
//!    URL (the address the client reached, and the HTTP port).
//! 4. The kernel and initrd stream over HTTP from `DIR/images`, with
//!    their lengths (and ranges, for clients that resume).
//!
//! `EMMER_HTTP` must be set (the scripts point at it); the other `EMMER_*`
//! variables apply as everywhere. Once bound it says where it serves:
//! `netboot: tftp on ADDR` and `netboot: http on ADDR`, after the log
//! lines (on stdout too; `RUST_LOG=debug` shows every transfer).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use emmer::fs::ServeDir;
use emmer::route::Transports;
use emmer::{App, Request, State, route_read};

/// A MAC address as iPXE's `${mac:hexhyp}` writes it: six lowercase hex
/// pairs joined by `-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Mac([u8; 6]);

impl FromStr for Mac {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let mut out = [0u8; 6];
        let mut parts = s.split('-');
        for b in &mut out {
            let p = parts.next().ok_or(())?;
            if p.len() != 2 {
                return Err(());
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| ())?;
        }
        match parts.next() {
            Some(_) => Err(()),
            None => Ok(Mac(out)),
        }
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// What the inventory knows of a machine: its name and the image it boots.
#[derive(Debug, Clone)]
struct Host {
    name: String,
    image: String,
}

/// MAC address → host. A real deployment would ask its inventory service.
#[derive(Debug, Default)]
struct Inventory {
    hosts: std::collections::HashMap<Mac, Host>,
}

impl Inventory {
    fn demo() -> Self {
        let mut hosts = std::collections::HashMap::new();
        for (mac, name, image) in [
            ("52-54-00-12-34-56", "web-1", "debian-12"),
            ("52-54-00-ab-cd-ef", "db-1", "debian-12"),
        ] {
            let host = Host {
                name: name.into(),
                image: image.into(),
            };
            hosts.insert(mac.parse().expect("a valid MAC"), host);
        }
        Self { hosts }
    }
}

/// The HTTP port, known once the server is bound (port 0 picks one).
#[derive(Debug, Clone, Default)]
struct HttpPort(Arc<OnceLock<u16>>);

/// The base URL of the HTTP side as this client reaches it: the address
/// its request hit, and the HTTP port.
fn base_url(req: &Request, port: &HttpPort) -> String {
    let port = port.0.get().copied().unwrap_or(80);
    format!("http://{}", SocketAddr::new(req.local_addr().ip(), port))
}

/// Step 2: what iPXE runs when DHCP gave it no script. TFTP only: over
/// HTTP the client already knows where it is.
#[route_read(r"autoexec\.ipxe", transports = "tftp")]
fn autoexec(req: &Request, State(port): State<HttpPort>) -> String {
    let base = base_url(req, &port);
    format!(
        "#!ipxe\n\
         dhcp\n\
         chain {base}/boot/${{mac:hexhyp}}.ipxe || chain {base}/boot/default.ipxe\n"
    )
}

/// Step 3: a known machine's script, rendered from the inventory (over
/// HTTP, where iPXE chains it, and over TFTP alike). An unknown MAC gets a
/// 404 (ERROR 1), and iPXE goes on to `default.ipxe`.
#[route_read(r"boot/(?P<mac>[0-9a-f]{2}(?:-[0-9a-f]{2}){5})\.ipxe")]
fn machine_script(
    mac: Mac,
    req: &Request,
    State(inv): State<Arc<Inventory>>,
    State(port): State<HttpPort>,
) -> Option<String> {
    let host = inv.hosts.get(&mac)?;
    let base = base_url(req, &port);
    let image = format!("{base}/images/{}", host.image);
    Some(format!(
        "#!ipxe\n\
         # {name} ({mac}), asked from {client} over {transport}\n\
         kernel {image}/vmlinuz initrd=initrd.img hostname={name}\n\
         initrd {image}/initrd.img\n\
         boot\n",
        name = host.name,
        client = req.client_host(),
        transport = req.transport(),
    ))
}

/// Machines the inventory does not know boot from their disk.
#[route_read(r"boot/default\.ipxe")]
fn default_script() -> &'static str {
    "#!ipxe\necho unknown machine ${mac}: booting from the local disk\nexit\n"
}

const USAGE: &str = "usage: netboot DIR

Serves DIR/tftp (boot programs) over TFTP, DIR/images over HTTP, and
per-MAC iPXE scripts over both. Needs EMMER_HTTP=HOST:PORT; EMMER_HOST and
EMMER_PORT place TFTP (127.0.0.1:3942 by default).";

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next().map(PathBuf::from), args.next()) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let app = match App::from_env() {
        Ok(app) => app,
        Err(e) => {
            eprintln!("netboot: {e}");
            return ExitCode::from(2);
        }
    };
    let mut app = app;
    if app.config_mut().http.addr.is_none() {
        eprintln!("netboot: set EMMER_HTTP=HOST:PORT (such as 0.0.0.0:8080)\n\n{USAGE}");
        return ExitCode::from(2);
    }
    let port = HttpPort::default();
    let app = app
        .state(Arc::new(Inventory::demo()))
        .state(port.clone())
        // Step 1: the boot programs, over TFTP (the macro routes come first).
        .serve_dir(
            "",
            ServeDir::new(dir.join("tftp")).transports(Transports::TFTP),
        )
        // Step 4: kernels and initrds, over HTTP.
        .serve_dir(
            "images/",
            ServeDir::new(dir.join("images")).transports(Transports::HTTP),
        );
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("netboot: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(async {
        let server = app.bind().await?;
        let http = server.http_addr().expect("EMMER_HTTP is set");
        let _ = port.0.set(http.port());
        println!("netboot: tftp on {}", server.local_addr());
        println!("netboot: http on {http}");
        server.serve().await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netboot: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_name_the_kernel_by_url() {
        let port = HttpPort::default();
        port.0.set(8080).unwrap();
        let req = Request::builder("boot/52-54-00-12-34-56.ipxe")
            .local_addr("10.0.0.1:8080".parse().unwrap())
            .transport(emmer::Transport::Http)
            .build();
        let inv = Arc::new(Inventory::demo());
        let mac = "52-54-00-12-34-56".parse().unwrap();
        let script = machine_script(mac, &req, State(inv.clone()), State(port.clone())).unwrap();
        assert!(
            script.contains("kernel http://10.0.0.1:8080/images/debian-12/vmlinuz"),
            "{script}"
        );
        assert!(script.contains("over http"), "{script}");
        let unknown = "00-00-00-00-00-01".parse().unwrap();
        assert!(machine_script(unknown, &req, State(inv), State(port.clone())).is_none());
        let auto = autoexec(&req, State(port));
        assert!(auto.contains("chain http://10.0.0.1:8080/boot/${mac:hexhyp}.ipxe"));
    }
}
