//! Per-MAC boot configs for PXE clients, rendered from an inventory kept in
//! application state, with a fallback menu for machines the inventory does
//! not know.
//!
//! pxelinux asks for `pxelinux.cfg/01-<mac>` first, then for names derived
//! from its IP address, then for `pxelinux.cfg/default`. Known machines get
//! their own config; the others fall through to the default menu.
//!
//! ```text
//! cargo run --example pxe
//! curl tftp://127.0.0.1:3942/pxelinux.cfg/01-52-54-00-12-34-56
//! curl tftp://127.0.0.1:3942/pxelinux.cfg/default
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use emmer::{App, State, route_read};

/// A MAC address as pxelinux writes it: six lowercase hex pairs joined by `-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac([u8; 6]);

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
        if parts.next().is_some() {
            return Err(());
        }
        Ok(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// What the inventory knows of a machine.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub image: String,
}

/// The inventory: MAC address → host. A real server would query a
/// database here.
#[derive(Debug, Default)]
pub struct Inventory {
    hosts: HashMap<Mac, Host>,
}

impl Inventory {
    fn demo() -> Self {
        let mut hosts = HashMap::new();
        hosts.insert(
            "52-54-00-12-34-56".parse().unwrap(),
            Host {
                name: "web-1".into(),
                image: "debian-12".into(),
            },
        );
        hosts.insert(
            "52-54-00-ab-cd-ef".parse().unwrap(),
            Host {
                name: "db-1".into(),
                image: "debian-12-db".into(),
            },
        );
        Self { hosts }
    }
}

/// A config for a known machine; a MAC the inventory does not know gets
/// ERROR 1, and pxelinux goes on to ask for `default`.
#[route_read(r"pxelinux\.cfg/01-(?P<mac>[0-9a-fA-F]{2}(?:-[0-9a-fA-F]{2}){5})")]
fn pxe_config(mac: Mac, client_host: IpAddr, State(inv): State<Arc<Inventory>>) -> Option<String> {
    let host = inv.hosts.get(&mac)?;
    Some(format!(
        "# {name} ({mac}), asked from {client_host}\n\
         DEFAULT install\n\
         LABEL install\n  KERNEL images/{image}/vmlinuz\n  APPEND initrd=images/{image}/initrd.img hostname={name}\n",
        name = host.name,
        image = host.image,
    ))
}

/// The menu for machines the inventory does not know.
#[route_read(r"pxelinux\.cfg/default")]
fn fallback(client_host: IpAddr) -> String {
    format!(
        "# unknown machine at {client_host}: boot from the local disk\n\
         DEFAULT local\nLABEL local\n  LOCALBOOT 0\n"
    )
}

fn main() -> emmer::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let app = App::from_env()?.state(Arc::new(Inventory::demo()));
    tokio::runtime::Runtime::new()?.block_on(app.serve())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parses_pxelinux_form_only() {
        assert_eq!(
            "52-54-00-12-34-56".parse::<Mac>().unwrap().to_string(),
            "52:54:00:12:34:56"
        );
        assert!("52-54-00-12-34".parse::<Mac>().is_err());
        assert!("52:54:00:12:34:56".parse::<Mac>().is_err());
    }

    #[test]
    fn known_and_unknown_machines() {
        let inv = Arc::new(Inventory::demo());
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let known =
            pxe_config("52-54-00-12-34-56".parse().unwrap(), ip, State(inv.clone())).unwrap();
        assert!(
            known.contains("hostname=web-1") && known.contains("10.0.0.9"),
            "{known}"
        );
        assert!(pxe_config("00-00-00-00-00-01".parse().unwrap(), ip, State(inv)).is_none());
    }
}
