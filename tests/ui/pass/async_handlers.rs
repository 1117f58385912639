use std::net::IpAddr;

use emmer::{Mode, TftpError, route_read, route_write};

#[route_read(r"^async/(?P<name>[a-z]+)$")]
async fn read_async(name: String, filename: &str, mode: Mode) -> Result<String, TftpError> {
    let _ = mode;
    Ok(format!("{name} from {filename}"))
}

#[route_read("async/bytes")]
async fn no_params() -> Vec<u8> {
    vec![1, 2, 3]
}

#[route_write(r"^async/(?P<name>[a-z]+)$")]
async fn write_async(client_host: IpAddr, name: &str, data: String) -> bool {
    let _ = client_host;
    !name.is_empty() && !data.is_empty()
}

#[route_write("async/ignored")]
async fn write_without_data(filename: String) {
    let _ = filename;
}

fn main() {}
