use emmer::route_write;

#[route_write(".*", prio = 1)]
fn everything(data: Vec<u8>) -> bool {
    !data.is_empty()
}

fn main() {}
