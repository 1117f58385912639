use emmer::{Upload, route_write};

#[route_write(".*")]
fn store(upload: Upload) -> bool {
    upload.size_hint().is_some()
}

fn main() {}
