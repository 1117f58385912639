//! Items used by the code `#[route_read]` and `#[route_write]` generate.
//! Not part of the public API: names and signatures change without notice.

use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

pub use inventory;

pub use crate::handler::call::{ReadCall, WriteCall};
use crate::handler::{IntoReadResponse, IntoWriteResponse, Request};
use crate::proto::Mode;
pub use crate::route::RouteLimits;
use crate::{FromRequest, TftpError};

/// A route's pattern matched but one of its captures did not convert to the
/// parameter's type: the route table tries the next route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoMatch;

/// Binds a request to a read handler.
pub type ReadPrepare = fn(&Request) -> Result<ReadCall, NoMatch>;
/// Binds a request to a write handler.
pub type WritePrepare = fn(&Request) -> Result<WriteCall, NoMatch>;

/// A route's handler as the macros submit it; the variant is its kind.
#[derive(Debug, Clone, Copy)]
pub enum RouteFn {
    /// A read route.
    Read(ReadPrepare),
    /// A write route.
    Write(WritePrepare),
}

/// A route as `#[route_read]` / `#[route_write]` submit it.
#[derive(Debug)]
pub struct RouteDef {
    /// The regex, as written.
    pub pattern: &'static str,
    /// Higher is tried first.
    pub priority: i32,
    /// Limits of this route.
    pub limits: RouteLimits,
    /// Whether a read route shares its bodies (`share_for`).
    pub sharing: Option<crate::Sharing>,
    /// The transports it serves.
    pub transports: crate::route::Transports,
    /// The handler's name.
    pub name: &'static str,
    /// Where the route was declared.
    pub location: Location,
    /// The module the function is declared in (`module_path!()`).
    pub module: &'static str,
    /// What the handler's extractors need from the app (`FromRequest::__needs`
    /// of each), checked when the route table is built.
    pub needs: &'static [fn() -> Option<Need>],
    /// Binds a request to the handler.
    pub handler: RouteFn,
}

/// Something an extractor needs from the app to work: application state of
/// a type, registered with `App::state`.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    pub(crate) type_id: std::any::TypeId,
    pub(crate) type_name: &'static str,
}

impl Need {
    /// State of type `T`.
    pub fn state<T: 'static>() -> Self {
        Self {
            type_id: std::any::TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
        }
    }
}

inventory::collect!(RouteDef);

/// Where a route was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Source file, as `file!()` gives it.
    pub file: &'static str,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
}

impl Location {
    /// A location, as the macros build it from `file!()`, `line!()`, `column!()`.
    pub const fn new(file: &'static str, line: u32, column: u32) -> Self {
        Self { file, line, column }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// `client_host` by name.
#[diagnostic::on_unimplemented(
    message = "`client_host` binds the client's address: take it as IpAddr or String, not `{Self}`"
)]
pub trait FromClientHost {
    /// Converts the address.
    fn from_client_host(ip: IpAddr) -> Self;
}
impl FromClientHost for IpAddr {
    fn from_client_host(ip: IpAddr) -> Self {
        ip
    }
}
impl FromClientHost for String {
    fn from_client_host(ip: IpAddr) -> Self {
        ip.to_string()
    }
}

/// `client_port` by name.
#[diagnostic::on_unimplemented(
    message = "`client_port` binds the client's port: take it as u16, not `{Self}`"
)]
pub trait FromClientPort {
    /// Converts the port.
    fn from_client_port(port: u16) -> Self;
}
impl FromClientPort for u16 {
    fn from_client_port(port: u16) -> Self {
        port
    }
}

/// `filename` by name.
#[diagnostic::on_unimplemented(
    message = "`filename` binds the requested file name: take it as &str, String or PathBuf, not `{Self}`"
)]
pub trait FromFilename<'a> {
    /// Converts the name.
    fn from_filename(name: &'a str) -> Self;
}
impl<'a> FromFilename<'a> for &'a str {
    fn from_filename(name: &'a str) -> Self {
        name
    }
}
impl FromFilename<'_> for String {
    fn from_filename(name: &str) -> Self {
        name.to_owned()
    }
}
impl FromFilename<'_> for PathBuf {
    fn from_filename(name: &str) -> Self {
        PathBuf::from(name)
    }
}

/// `mode` by name.
#[diagnostic::on_unimplemented(
    message = "`mode` binds the transfer mode: take it as emmer::Mode, String or &str, not `{Self}`"
)]
pub trait FromMode {
    /// Converts the mode.
    fn from_mode(mode: Mode) -> Self;
}
impl FromMode for Mode {
    fn from_mode(mode: Mode) -> Self {
        mode
    }
}
impl FromMode for String {
    fn from_mode(mode: Mode) -> Self {
        mode.as_str().to_owned()
    }
}
impl FromMode for &'static str {
    fn from_mode(mode: Mode) -> Self {
        mode.as_str()
    }
}

/// `data` by name: the whole upload.
#[diagnostic::on_unimplemented(
    message = "`data` binds the uploaded bytes: take it as Vec<u8>, Bytes or String, not `{Self}`"
)]
pub trait FromBody: Sized {
    /// Converts the upload.
    ///
    /// # Errors
    ///
    /// When the bytes do not fit the type (a `String` that is not UTF-8).
    fn from_body(data: Vec<u8>) -> Result<Self, TftpError>;
}
impl FromBody for Vec<u8> {
    fn from_body(data: Vec<u8>) -> Result<Self, TftpError> {
        Ok(data)
    }
}
impl FromBody for bytes::Bytes {
    fn from_body(data: Vec<u8>) -> Result<Self, TftpError> {
        Ok(bytes::Bytes::from(data))
    }
}
impl FromBody for String {
    fn from_body(data: Vec<u8>) -> Result<Self, TftpError> {
        String::from_utf8(data)
            .map_err(|_| TftpError::illegal_operation("the upload is not UTF-8 text"))
    }
}

/// A required capture group, converted with `FromStr`; a failed conversion
/// (or a group that did not take part) means the route does not match.
pub fn capture<T: FromStr>(req: &Request, name: &str) -> Result<T, NoMatch> {
    req.capture(name)
        .ok_or(NoMatch)?
        .parse()
        .map_err(|_| NoMatch)
}

/// An optional capture group: `None` when it did not take part in the match;
/// a value that does not convert means the route does not match.
pub fn capture_opt<T: FromStr>(req: &Request, name: &str) -> Result<Option<T>, NoMatch> {
    match req.capture(name) {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| NoMatch),
    }
}

/// A parameter bound by type.
pub fn extract<T: FromRequest>(req: &Request) -> Result<T, TftpError> {
    T::from_request(req).map_err(Into::into)
}

/// Runs a plain read handler on the blocking pool.
pub fn read_blocking<R, F>(f: F) -> ReadCall
where
    F: FnOnce() -> R + Send + 'static,
    R: IntoReadResponse,
{
    ReadCall::blocking(f)
}

/// Runs an async read handler on its own task.
pub fn read_async<R, Fut>(fut: Fut) -> ReadCall
where
    Fut: Future<Output = R> + Send + 'static,
    R: IntoReadResponse,
{
    ReadCall::asynchronous(fut)
}

/// Runs a plain write handler on the blocking pool once the upload is complete.
pub fn write_blocking<R, F>(f: F) -> WriteCall
where
    F: FnOnce(Vec<u8>) -> Result<R, TftpError> + Send + 'static,
    R: IntoWriteResponse,
{
    WriteCall::whole_blocking(f)
}

/// Runs an async write handler on its own task once the upload is complete.
pub fn write_async<R, F, Fut>(f: F) -> WriteCall
where
    F: FnOnce(Vec<u8>) -> Result<Fut, TftpError> + Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoWriteResponse,
{
    WriteCall::whole(f)
}

/// Runs an async write handler that streams the upload ([`crate::Upload`]) on
/// its own task, from the moment the request arrives.
pub fn write_streaming<R, F, Fut>(f: F) -> WriteCall
where
    F: FnOnce(crate::Upload) -> Fut + Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoWriteResponse,
{
    WriteCall::streaming(f)
}

/// Runs a plain write handler that streams the upload on the blocking pool,
/// from the moment the request arrives; it reads with `std::io::Read`.
pub fn write_streaming_blocking<R, F>(f: F) -> WriteCall
where
    F: FnOnce(crate::Upload) -> R + Send + 'static,
    R: IntoWriteResponse,
{
    WriteCall::streaming_blocking(f)
}

/// Binding failed: the client gets the error.
pub fn reject<C: Reject>(e: TftpError) -> C {
    C::reject(e)
}

/// A call that can stand for a refused request.
pub trait Reject {
    /// The call that answers with `e`.
    fn reject(e: TftpError) -> Self;
}

impl Reject for ReadCall {
    fn reject(e: TftpError) -> Self {
        ReadCall::reject(e)
    }
}

impl Reject for WriteCall {
    fn reject(e: TftpError) -> Self {
        WriteCall::reject(e)
    }
}
