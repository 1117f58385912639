use emmer::route_read;

#[route_read(".*")]
fn size(filename: &str) -> usize {
    filename.len()
}

fn main() {}
