//! Runs requests through the routes the macros registered, with the real
//! route table and extractors: the generated code binds what it should.

use std::net::IpAddr;
use std::sync::Arc;

use emmer::{App, ErrorCode, Request, State, TftpError, route_read, route_write};

struct Site {
    name: &'static str,
}

#[route_read(r"^pxelinux\.cfg/01-(?P<mac>[0-9a-f-]{17})$")]
fn pxe_config(client_host: IpAddr, mac: String) -> String {
    format!("# config for {mac} at {client_host}\n")
}

// A unit that does not convert to u8 makes this route not match, and the
// request falls through to `any_unit`.
#[route_read(r"^unit/(?P<n>[0-9]+)(?:\.(?P<ext>[a-z]+))?$")]
fn small_unit(n: u8, ext: Option<&str>, filename: &str, client_port: u16) -> String {
    format!("small {n} {ext:?} {filename} {client_port}")
}

#[route_read(r"unit/(?P<n>\d+)(?:\.(?P<ext>[a-z]+))?", priority = -1)]
async fn any_unit(n: u64, ext: Option<String>, req: &Request) -> String {
    format!("any {n} {ext:?} {}", req.filename())
}

#[route_read(r"^site$")]
fn site(State(site): State<Arc<Site>>, mode: String) -> String {
    format!("{} {mode}", site.name)
}

#[route_read(r"^nothing$")]
fn nothing() -> Option<&'static str> {
    None
}

#[route_write(r"^up/(?P<name>[a-z]+)$")]
fn upload(name: &str, data: String) -> Result<(), TftpError> {
    if data == name {
        Ok(())
    } else {
        Err(TftpError::access_violation("the body must repeat the name"))
    }
}

#[route_write(r"^async/.*$")]
async fn async_upload(data: Vec<u8>, filename: String) -> bool {
    data.len() == filename.len()
}

#[route_write(r"^ignored$")]
fn ignores_body() {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let app = App::new().state(Arc::new(Site { name: "lab" }));
    let peer = "10.0.0.7:1234".parse().unwrap();

    let body = app
        .read("pxelinux.cfg/01-aa-bb-cc-dd-ee-ff")
        .from(peer)
        .await;
    assert_eq!(
        body.unwrap(),
        b"# config for aa-bb-cc-dd-ee-ff at 10.0.0.7\n"
    );

    let body = app.read("unit/7.cfg").from(peer).await.unwrap();
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "small 7 Some(\"cfg\") unit/7.cfg 1234"
    );
    let body = app.read("unit/300").await.unwrap();
    assert_eq!(String::from_utf8(body).unwrap(), "any 300 None unit/300");

    assert_eq!(app.read("site").await.unwrap(), b"lab octet");
    let e = app.read("nothing").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::FileNotFound);

    assert!(app.write("up/abc", "abc").await.is_ok());
    let e = app.write("up/abc", "xyz").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::AccessViolation);
    let e = app.write("up/abc", vec![0xff]).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::IllegalOperation);

    assert!(app.write("async/abc", "123456789").await.is_ok());
    assert!(app.write("async/abc", "1").await.is_err());
    assert!(app.write("ignored", "anything").await.is_ok());

    // Without the state, the app does not start: the error names the route
    // and the type.
    let e = App::new().table().unwrap_err().to_string();
    assert!(e.contains("route site at ") && e.contains("State<alloc::sync::Arc<"), "{e}");

    let names: Vec<String> = app
        .table()
        .unwrap()
        .routes()
        .into_iter()
        .map(|r| r.name)
        .collect();
    let unit = |n: &str| names.iter().position(|x| x == n).unwrap();
    assert!(unit("small_unit") < unit("any_unit"), "{names:?}");
}
