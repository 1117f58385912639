//! Errors: [`Error`] for start-up and configuration, [`ErrorCode`] and
//! [`TftpError`] for what a client is told.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;

/// The error codes of TFTP (RFC 1350, with code 8 from RFC 2347).
///
/// # Examples
///
/// ```
/// use emmer::ErrorCode;
/// assert_eq!(ErrorCode::FileNotFound.as_u16(), 1);
/// assert_eq!(ErrorCode::from_u16(8), Some(ErrorCode::OptionRefused));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ErrorCode {
    /// 0: not defined, see the message.
    Undefined = 0,
    /// 1: file not found.
    FileNotFound = 1,
    /// 2: access violation.
    AccessViolation = 2,
    /// 3: disk full or allocation exceeded.
    DiskFull = 3,
    /// 4: illegal TFTP operation.
    IllegalOperation = 4,
    /// 5: unknown transfer ID.
    UnknownTid = 5,
    /// 6: file already exists.
    FileExists = 6,
    /// 7: no such user.
    NoSuchUser = 7,
    /// 8: option negotiation refused (RFC 2347).
    OptionRefused = 8,
}

impl ErrorCode {
    /// The code as it goes on the wire.
    pub const fn as_u16(self) -> u16 {
        self as u16
    }

    /// The code for a number in 0..=8, or `None`.
    pub const fn from_u16(code: u16) -> Option<Self> {
        Some(match code {
            0 => Self::Undefined,
            1 => Self::FileNotFound,
            2 => Self::AccessViolation,
            3 => Self::DiskFull,
            4 => Self::IllegalOperation,
            5 => Self::UnknownTid,
            6 => Self::FileExists,
            7 => Self::NoSuchUser,
            8 => Self::OptionRefused,
            _ => return None,
        })
    }

    /// The standard wording of the code, used when a handler gives no message.
    pub const fn default_message(self) -> &'static str {
        match self {
            Self::Undefined => "error",
            Self::FileNotFound => "file not found",
            Self::AccessViolation => "access violation",
            Self::DiskFull => "disk full or allocation exceeded",
            Self::IllegalOperation => "illegal TFTP operation",
            Self::UnknownTid => "unknown transfer ID",
            Self::FileExists => "file already exists",
            Self::NoSuchUser => "no such user",
            Self::OptionRefused => "option negotiation refused",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.as_u16(), self.default_message())
    }
}

/// A TFTP error sent to a client: a code and a message.
///
/// Handlers return it (or anything that converts into it) to refuse a request.
/// The message goes to the client as written, so say what is wrong and what to
/// do, and keep internals out of it.
///
/// # Examples
///
/// ```
/// use emmer::{ErrorCode, TftpError};
/// let e = TftpError::not_found("no config for this MAC; register it in the inventory");
/// assert_eq!(e.code(), ErrorCode::FileNotFound);
///
/// // An io::Error keeps its kind but not its text, which may name server paths.
/// let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "/srv/secret: EACCES");
/// let e = TftpError::from(io);
/// assert_eq!(e.code(), ErrorCode::AccessViolation);
/// assert!(!e.message().contains("/srv"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TftpError {
    code: ErrorCode,
    message: Cow<'static, str>,
}

impl TftpError {
    /// An error with a code and a message for the client.
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Code 0, not defined: the message says it all.
    pub fn undefined(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::Undefined, message)
    }

    /// Code 1, file not found.
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::FileNotFound, message)
    }

    /// Code 2, access violation.
    pub fn access_violation(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::AccessViolation, message)
    }

    /// Code 3, disk full or allocation exceeded.
    pub fn disk_full(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::DiskFull, message)
    }

    /// Code 4, illegal TFTP operation.
    pub fn illegal_operation(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::IllegalOperation, message)
    }

    /// Code 6, file already exists.
    pub fn file_exists(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::FileExists, message)
    }

    /// Code 7, no such user.
    pub fn no_such_user(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::NoSuchUser, message)
    }

    /// Code 8, option negotiation refused.
    pub fn option_refused(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::OptionRefused, message)
    }

    /// The TFTP error code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message the client sees.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TftpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TFTP error {}: {}", self.code.as_u16(), self.message)
    }
}

impl std::error::Error for TftpError {}

impl From<ErrorCode> for TftpError {
    fn from(code: ErrorCode) -> Self {
        Self::new(code, code.default_message())
    }
}

/// Maps the kind of an I/O error to a TFTP code. The error's own text stays on
/// the server (it is logged), because it often names paths the client should
/// not see.
impl From<std::io::Error> for TftpError {
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let code = match e.kind() {
            K::NotFound => ErrorCode::FileNotFound,
            K::PermissionDenied => ErrorCode::AccessViolation,
            K::StorageFull | K::QuotaExceeded | K::FileTooLarge => ErrorCode::DiskFull,
            K::AlreadyExists => ErrorCode::FileExists,
            K::InvalidInput | K::InvalidData | K::Unsupported => ErrorCode::IllegalOperation,
            _ => ErrorCode::Undefined,
        };
        tracing::debug!(error = %e, code = code.as_u16(), "handler I/O error mapped to a TFTP error");
        let message = match code {
            ErrorCode::Undefined => "internal server error",
            other => other.default_message(),
        };
        Self::new(code, message)
    }
}

impl From<std::convert::Infallible> for TftpError {
    fn from(e: std::convert::Infallible) -> Self {
        match e {}
    }
}

/// An error that stops a server: configuration, binding, start-up.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The server could not bind its socket.
    Bind {
        /// The address it tried.
        addr: SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The server could not bind its HTTP listener
    /// ([`HttpConfig::addr`](crate::HttpConfig::addr), `EMMER_HTTP`).
    BindHttp {
        /// The address it tried.
        addr: SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A configuration value (an `EMMER_*` variable, a builder call or a
    /// [`Config`](crate::Config) field) is wrong: see
    /// [`Config::validate`](crate::Config::validate).
    Config {
        /// Which setting: what it is, its builder method and its variable,
        /// as in "largest blksize (App::max_blksize / EMMER_MAX_BLKSIZE)".
        setting: String,
        /// What is wrong with it and what to do.
        message: String,
    },
    /// A route's pattern is not a valid regular expression.
    Pattern {
        /// The pattern.
        pattern: String,
        /// Where the route was declared, or "builder".
        location: String,
        /// The regex error.
        message: String,
    },
    /// Two routes of the same kind have the same pattern.
    DuplicateRoute {
        /// "read" or "write".
        kind: &'static str,
        /// The pattern.
        pattern: String,
        /// Where the first one was declared.
        first: String,
        /// Where the second one was declared.
        second: String,
    },
    /// A route takes `State<T>` but the app has no state of type `T`
    /// (register it with [`App::state`](crate::App::state)).
    MissingState {
        /// The route's handler.
        route: String,
        /// Where the route was declared.
        location: String,
        /// The state's type, as `std::any::type_name` spells it.
        type_name: &'static str,
    },
    /// Any other I/O error of the server itself (not of a transfer).
    Io(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Bind { addr, source } => {
                write!(f, "cannot bind {addr}: {source}")?;
                let hint = match source.kind() {
                    std::io::ErrorKind::PermissionDenied => {
                        " (ports below 1024 need privileges; set EMMER_PORT to a higher port or grant CAP_NET_BIND_SERVICE)"
                    }
                    std::io::ErrorKind::AddrInUse => {
                        " (another process serves this port; stop it or set EMMER_PORT to a free port)"
                    }
                    std::io::ErrorKind::AddrNotAvailable => {
                        " (no interface has this address; set EMMER_HOST to one of this machine's addresses)"
                    }
                    _ => "",
                };
                f.write_str(hint)
            }
            Error::BindHttp { addr, source } => {
                write!(f, "cannot bind the HTTP listener to {addr}: {source}")?;
                let hint = match source.kind() {
                    std::io::ErrorKind::PermissionDenied => {
                        " (ports below 1024 need privileges; set EMMER_HTTP to a higher port or grant CAP_NET_BIND_SERVICE)"
                    }
                    std::io::ErrorKind::AddrInUse => {
                        " (another process serves this port; stop it or set EMMER_HTTP to a free port)"
                    }
                    std::io::ErrorKind::AddrNotAvailable => {
                        " (no interface has this address; set EMMER_HTTP to one of this machine's addresses)"
                    }
                    _ => "",
                };
                f.write_str(hint)
            }
            Error::Config { setting, message } => write!(f, "invalid {setting}: {message}"),
            Error::Pattern {
                pattern,
                location,
                message,
            } => write!(
                f,
                "route pattern {pattern:?} at {location} is not a valid regex: {message}"
            ),
            Error::DuplicateRoute {
                kind,
                pattern,
                first,
                second,
            } => write!(
                f,
                "duplicate {kind} route {pattern:?}: declared at {first} and again at {second}; remove one or change its pattern"
            ),
            Error::MissingState {
                route,
                location,
                type_name,
            } => write!(
                f,
                "route {route} at {location} takes State<{type_name}>, but no state of that type was registered; add it with App::state(value) before starting the server"
            ),
            Error::Io(e) => write!(f, "server I/O error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Bind { source, .. } | Error::BindHttp { source, .. } => Some(source),
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

/// The result of [`run`](crate::run) and the other start-up calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;
