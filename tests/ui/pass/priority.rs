use emmer::{route_read, route_write};

#[route_read(".*", priority = -3)]
fn fallback() -> &'static str {
    "fallback"
}

#[route_read(r"^special$", priority = 10)]
fn special() -> &'static [u8] {
    b"special"
}

#[route_read(r"^zero$", priority = 0)]
fn zero() -> Option<&'static str> {
    None
}

#[route_write(".*", priority = -2147483648)]
fn refuse_everything() -> bool {
    false
}

fn main() {}
