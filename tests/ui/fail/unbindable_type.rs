use emmer::route_read;

#[route_read("hosts.txt")]
fn hosts(client: Vec<u32>) -> String {
    format!("{client:?}")
}

fn main() {}
