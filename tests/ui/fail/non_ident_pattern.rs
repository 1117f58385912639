use emmer::route_read;

#[route_read(r"^(?P<a>[a-z]+)/(?P<b>[a-z]+)$")]
fn pair((a, b): (String, String)) -> String {
    a + &b
}

fn main() {}
