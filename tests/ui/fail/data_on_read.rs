use emmer::route_read;

#[route_read("upload.bin")]
fn upload(filename: &str, data: Vec<u8>) -> Vec<u8> {
    let _ = filename;
    data
}

fn main() {}
