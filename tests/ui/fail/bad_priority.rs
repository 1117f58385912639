use emmer::route_read;

#[route_read(".*", priority = "high")]
fn everything() -> &'static str {
    ""
}

fn main() {}
