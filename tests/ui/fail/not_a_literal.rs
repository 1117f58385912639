use emmer::route_read;

const PATTERN: &str = ".*";

#[route_read(PATTERN)]
fn everything() -> &'static str {
    ""
}

fn main() {}
