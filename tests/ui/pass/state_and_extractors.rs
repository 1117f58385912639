use std::net::SocketAddr;
use std::sync::Arc;

use emmer::{Peer, Request, State, route_read, route_write};

struct Inventory {
    site: String,
}

#[route_read("site.txt")]
fn site(st: State<Arc<Inventory>>) -> String {
    st.0.site.clone()
}

#[route_read("destructured.txt")]
fn destructured(State(inv): State<Arc<Inventory>>, _: Peer, addr: SocketAddr) -> String {
    format!("{} {addr}", inv.site)
}

#[route_read("request.txt")]
fn whole_request(req: &Request, owned: Request) -> String {
    format!("{} {}", req.filename(), owned.client_port())
}

#[route_write(r"^up/(?P<id>[0-9]+)$")]
async fn upload(
    State(inv): State<Arc<Inventory>>,
    req: &emmer::Request,
    id: u64,
    data: emmer::Bytes,
) {
    let _ = (inv, req, id, data);
}

fn main() {}
