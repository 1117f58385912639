use std::net::{IpAddr, SocketAddr};

use emmer::{Peer, route_read};

// Every client of one name gets the body of the first: nothing of the
// client may go into it.
#[route_read(r"menu/(?P<site>\w+)", share_for = "2s")]
fn menu(site: String, client_host: IpAddr, _client_port: u16, Peer(p): Peer, a: SocketAddr) -> String {
    format!("{site} {client_host} {p} {a}")
}

fn main() {}
