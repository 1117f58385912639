use emmer::route_read;

#[route_read(r"^(?P<mac>[0-9a-f]{12})$")]
fn config(mac: Vec<u8>) -> Vec<u8> {
    mac
}

fn main() {}
