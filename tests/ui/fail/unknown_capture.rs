use emmer::route_read;

#[route_read(r"^pxelinux\.cfg/01-(?P<hwaddr>[0-9a-f-]{17})$")]
fn pxe_config(mac: String) -> String {
    mac
}

fn main() {}
