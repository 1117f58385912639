use std::time::Duration;

use emmer::{App, Mode, Request, State, Traceparent, route_read};

// A shared route takes what the file name decides, state, and the request.
#[route_read(r"menu/(?P<site>\w+)", share_for = "2s", priority = 1)]
fn menu(site: String, filename: &str, mode: Mode, State(n): State<u32>, req: &Request) -> String {
    format!("{site} {filename} {mode:?} {n} {}", req.filename())
}

#[route_read(r"overlap/.+", share_for = "0s")]
async fn overlap() -> &'static str {
    "x"
}

// Without sharing, the client is fine.
#[route_read(r"hello/(?P<site>\w+)")]
fn hello(site: String, client_host: std::net::IpAddr, t: Option<Traceparent>) -> String {
    format!("{site} {client_host} {t:?}")
}

fn main() {
    let _ = App::new().state(7u32);
    let _ = Duration::ZERO;
}
