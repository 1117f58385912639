//! The README's seed example: unused parameters take a leading underscore,
//! bind the same values, and nothing warns.
#![deny(warnings)]

use std::net::IpAddr;

use emmer::{App, route_read, route_write};

#[route_read(".*")]
fn example_action(_client_host: IpAddr, _client_port: u16, _filename: &str) -> &'static str {
    "example_output"
}

#[route_write(".*")]
fn example_write(
    _client_host: IpAddr,
    _client_port: u16,
    _filename: &str,
    data: Vec<u8>,
) -> std::io::Result<()> {
    std::fs::write(std::env::temp_dir().join("upload.bin"), data)
}

#[route_read(r"echo/(?P<name>\w+)")]
fn echo(name: String, _client_host: String, _mode: &str) -> String {
    name
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let _ = (example_action, example_write);
    let app = App::empty().macro_route("echo");
    let body = app.read("echo/x").from("10.0.0.1:7".parse().unwrap()).await.unwrap();
    assert_eq!(body, b"x");
    assert_eq!(App::new().table().unwrap().routes().len(), 3);
}
