use emmer::route_read;

#[route_read(".*")]
fn echo_port(client_port: String) -> String {
    client_port
}

fn main() {}
