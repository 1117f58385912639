use emmer::route_read;

#[route_read(r"^pxelinux\.cfg/(?P<mac>[0-9a-f-]{17}$")]
fn pxe_config(mac: String) -> String {
    mac
}

fn main() {}
