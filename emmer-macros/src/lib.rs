//! The `#[route_read]` and `#[route_write]` attribute macros of
//! [emmer](https://docs.rs/emmer), re-exported as `emmer::route_read` and
//! `emmer::route_write`. Use them through `emmer`: the code they generate
//! names `::emmer`, so the crate must be a dependency under that name.
//!
//! The examples live in emmer's documentation, where they are compiled and
//! tested; this crate describes the rules.

use proc_macro::TokenStream;

mod check;
mod expand;
mod parse;
mod route;
mod share;

/// Serves a function's return value for the read requests (RRQ) whose file
/// name matches a regex.
///
/// ```text
/// #[route_read(r"pxelinux\.cfg/01-(?P<mac>[0-9a-f-]{17})")]
/// fn pxe_config(client_host: IpAddr, mac: String) -> String { … }
/// ```
///
/// # Arguments
///
/// - The pattern, a string literal (raw strings welcome). It must match the
///   whole file name. The macro compiles it and rejects an invalid regex at
///   compile time, on the literal.
/// - `priority = <integer>` (optional, default 0, may be negative): routes
///   with a higher priority are tried first. Among equal priorities, routes
///   are tried in declaration order (source file, then line and column). The
///   runtime sorts the routes; the macro only records the priority and where
///   the function is declared.
/// - `share_for = "2s"` (optional; `"500ms"`, `"0s"`): concurrent requests
///   for the same file name share one call of the handler and one body, and
///   the body is kept that long for the next requests of the name (a UEFI
///   size probe and its download get the same bytes; a boot storm costs one
///   call). The handler must then not depend on the client: `client_host`,
///   `client_port`, `Peer`, `SocketAddr` and `Option<Traceparent>` are
///   compile errors on a shared route, and a `&Request` is the first
///   client's. See `emmer::Sharing` for the bounds and what a file or a
///   stream body does.
/// - `max_blksize`, `max_windowsize` (and `max_upload` on write routes):
///   limits of this route, tighter than the server's.
/// - `transports = "tftp"` or `"http"` (optional, default both): the route
///   serves only that transport; a request over the other does not see it
///   and goes on to the next route. (HTTP needs emmer's `http` feature and
///   `App::http`.)
///
/// # Parameters
///
/// The function stays exactly as written, so a unit test can call it. Each
/// parameter is bound in this order of precedence:
///
/// 1. **By reserved name**: `client_host` (`IpAddr` or `String`),
///    `client_port` (`u16`), `filename` (`&str`, `String` or `PathBuf`),
///    `mode` (`emmer::Mode`, `String` or `&str`). A reserved name wins over a
///    capture group of the same name. `data` is reserved for
///    [`route_write`] and an error on a read route.
///
///    A leading underscore binds the same value (`_client_host`,
///    `_filename`, `_mac` for a group `mac`), so a parameter the handler
///    does not use need not warn, as rustc suggests; a group whose own name
///    starts with `_` keeps it.
/// 2. **By capture name**: a named group of the pattern (`(?P<mac>…)` or
///    `(?<mac>…)`), converted with `FromStr`. A value that does not convert
///    (say `"abc"` for a `u32`) means *this route does not match*, and the
///    next matching route is tried. Take an `Option<T>` for a group that may
///    not take part in the match (`None` then); a plain `T` for such a group
///    also means "does not match". `&str` and `Option<&str>` borrow the text
///    without converting it.
/// 3. **`&Request`**: the whole request (peer, file name, mode, options,
///    captures). (And, on write routes, `Upload`: see [`route_write`].)
/// 4. **By type**, anything that implements `emmer::FromRequest`: `Peer`,
///    `SocketAddr`, `Request`, `State<T>`, `Option<Traceparent>`, your own
///    extractors. A pattern
///    may destructure such a parameter (`State(inv): State<Arc<Inventory>>`)
///    or ignore its name (`_: Peer`). If the extractor refuses, the client
///    gets its error and no other route is tried.
///
/// # Running
///
/// A plain `fn` runs on tokio's blocking pool, so it may block (read files,
/// call a database driver); an `async fn` runs on its own task. A panic
/// becomes ERROR 0 for the client.
///
/// # Return value
///
/// Anything that implements `emmer::IntoReadResponse`: `&'static str`,
/// `String`, `Vec<u8>`, `&'static [u8]`, `Bytes`, `ReadBody`, `Option<T>`
/// (`None` answers File not found) and `Result<T, E>` with
/// `E: Into<TftpError>`.
///
/// # Compile errors
///
/// The macro reports, on the token at fault: a pattern that is not a string
/// literal or not a valid regex; an unknown option or a priority that is not
/// an integer literal fitting in an `i32`; a `share_for` that is not a
/// string such as `"2s"`, or a shared handler that takes the client's
/// address, port or trace context; generics, `impl Trait`
/// parameters, a `self` receiver, an `unsafe fn`; `data` on a read route;
/// a parameter pattern other than a name, `mut name`, `_` or a destructured
/// struct (tuples, `ref`, `@` bindings); and a parameter with a plain value type (`String`, `&str`,
/// numbers, `bool`, `char`, `IpAddr`, `PathBuf`, or an `Option` of one) whose name is
/// neither reserved nor a capture group of the pattern. The compiler then
/// checks the types: a wrong type for a reserved name, a capture type
/// without `FromStr`, or a parameter that is not an extractor errors on the
/// parameter's type.
#[proc_macro_attribute]
pub fn route_read(attr: TokenStream, item: TokenStream) -> TokenStream {
    route::expand(route::Kind::Read, attr.into(), item.into()).into()
}

/// Calls a function with the uploaded file of the write requests (WRQ) whose
/// file name matches a regex, once the whole upload has arrived.
///
/// ```text
/// #[route_write(r"backups/(?P<host>[a-z0-9-]+)\.cfg")]
/// fn backup(host: String, data: Vec<u8>) -> std::io::Result<()> { … }
/// ```
///
/// Arguments, parameters and compile errors are those of [`route_read`]
/// (but a write route has no body to share: no `share_for`), plus two ways to take the body (at most one per handler):
///
/// - `data`, a reserved name: the whole upload, as `Vec<u8>`, `Bytes` or
///   `String` (an upload that is not UTF-8 is then refused with an error to
///   the client). The handler is called once the whole file has arrived.
/// - a parameter of type `Upload` (by type, any name): the handler is
///   called when the write request arrives, before the first ACK, and reads
///   the blocks as they come (an `async fn` with `AsyncRead` or
///   `Upload::chunk`, a plain one with blocking `std::io::Read` on the
///   blocking pool). Returning an error before reading refuses the transfer
///   at once.
///
/// A handler with neither ignores the body.
///
/// # Return value
///
/// Anything that implements `emmer::IntoWriteResponse`: `()` accepts the
/// upload, `bool` accepts it when `true`, and `Result<T, E>` with
/// `E: Into<TftpError>` refuses it with the error. The client gets the final
/// ACK only once the handler has accepted the upload, and an ERROR packet
/// otherwise.
#[proc_macro_attribute]
pub fn route_write(attr: TokenStream, item: TokenStream) -> TokenStream {
    route::expand(route::Kind::Write, attr.into(), item.into()).into()
}
