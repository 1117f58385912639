//! A `#[cfg]` on the handler applies to its route too.

use emmer::route_read;

#[route_read("never")]
#[cfg(any())]
fn never() -> &'static str {
    "never"
}

fn main() {
    let table = emmer::App::new().table().unwrap();
    assert!(table.routes().is_empty());
}
