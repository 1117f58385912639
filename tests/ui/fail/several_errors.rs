use emmer::route_read;

#[route_read(r"^(?P<mac>[0-9a-f]{12})$")]
fn config(mca: String, data: Vec<u8>, filname: &str) -> String {
    let _ = (data, filname);
    mca
}

fn main() {}
