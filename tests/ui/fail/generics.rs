use emmer::route_read;

#[route_read("x")]
fn any<T: Default + ToString>(filename: &str) -> String {
    let _ = filename;
    T::default().to_string()
}

fn main() {}
