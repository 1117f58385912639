//! The example of the original Python emmer, almost word for word.

use std::net::IpAddr;

use emmer::{route_read, route_write};

#[route_read(".*")]
fn example_read(client_host: IpAddr, client_port: u16, filename: &str) -> &'static str {
    let _ = (client_host, client_port, filename);
    "example_output"
}

#[route_write(".*")]
fn example_write(
    client_host: IpAddr,
    client_port: u16,
    filename: &str,
    data: Vec<u8>,
) -> std::io::Result<()> {
    let _ = (client_host, client_port);
    std::fs::write(std::env::temp_dir().join(filename), data)
}

fn main() {
    // The functions stay plain functions.
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    assert_eq!(example_read(ip, 50000, "x"), "example_output");
    let _ = example_write;
}
