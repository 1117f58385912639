use emmer::route_write;

#[route_write(".*")]
fn store(client_hots: std::net::IpAddr, data: Vec<u8>) -> std::io::Result<()> {
    std::fs::write(client_hots.to_string(), data)
}

fn main() {}
