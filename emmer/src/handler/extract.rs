//! Extractors: handler parameters bound by type.

use std::net::SocketAddr;

use super::Request;
use crate::TftpError;

/// A handler parameter bound by its type.
///
/// Implement it for your own types to take them as handler parameters. A
/// rejection goes to the client as a TFTP error.
///
/// # Examples
///
/// ```
/// use emmer::{FromRequest, Request, TftpError};
///
/// /// The last byte of the client's IPv4 address.
/// struct HostByte(u8);
///
/// impl FromRequest for HostByte {
///     type Rejection = TftpError;
///     fn from_request(req: &Request) -> Result<Self, TftpError> {
///         match req.client_host() {
///             std::net::IpAddr::V4(v4) => Ok(HostByte(v4.octets()[3])),
///             _ => Err(TftpError::access_violation("IPv4 clients only")),
///         }
///     }
/// }
/// let req = Request::builder("x").build();
/// assert_eq!(HostByte::from_request(&req).unwrap().0, 1);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be bound as a handler parameter",
    label = "not bindable",
    note = "by name, a handler can take: client_host (IpAddr), client_port (u16), filename (&str, String, PathBuf), mode, data (write routes), and the named capture groups of its pattern (any FromStr type)",
    note = "by type, a handler can take: Peer, SocketAddr, &Request / Request, State<T>, Option<Traceparent>, Transport, Upload (write routes), and any type that implements emmer::FromRequest"
)]
pub trait FromRequest: Sized {
    /// What the client is told when binding fails.
    type Rejection: Into<TftpError>;

    /// Binds the parameter from the request.
    ///
    /// # Errors
    ///
    /// The rejection, when the request does not allow this parameter.
    fn from_request(req: &Request) -> Result<Self, Self::Rejection>;

    /// What this extractor needs registered on the app; the route table
    /// checks it at start-up. Not part of the public API.
    #[doc(hidden)]
    fn __needs() -> Option<crate::__private::Need> {
        None
    }
}

/// The client's socket address.
///
/// # Examples
///
/// ```
/// use emmer::{FromRequest, Peer, Request};
/// let Peer(addr) = Peer::from_request(&Request::builder("x").build()).unwrap();
/// assert_eq!(addr.port(), 50000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer(pub SocketAddr);

impl FromRequest for Peer {
    type Rejection = std::convert::Infallible;
    fn from_request(req: &Request) -> Result<Self, Self::Rejection> {
        Ok(Peer(req.peer()))
    }
}

impl FromRequest for SocketAddr {
    type Rejection = std::convert::Infallible;
    fn from_request(req: &Request) -> Result<Self, Self::Rejection> {
        Ok(req.peer())
    }
}

/// The protocol that carried the request.
impl FromRequest for super::Transport {
    type Rejection = std::convert::Infallible;
    fn from_request(req: &Request) -> Result<Self, Self::Rejection> {
        Ok(req.transport())
    }
}

impl FromRequest for Request {
    type Rejection = std::convert::Infallible;
    fn from_request(req: &Request) -> Result<Self, Self::Rejection> {
        Ok(req.clone())
    }
}

/// Application state registered with [`App::state`](crate::App::state),
/// cloned out for each request (wrap large state in an `Arc`).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use emmer::{route_read, State};
///
/// struct Inventory { site: String }
///
/// #[route_read("site.txt")]
/// fn site(State(inv): State<Arc<Inventory>>) -> String {
///     inv.site.clone()
/// }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct State<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromRequest for State<T> {
    type Rejection = TftpError;

    fn __needs() -> Option<crate::__private::Need> {
        Some(crate::__private::Need::state::<T>())
    }

    fn from_request(req: &Request) -> Result<Self, TftpError> {
        match req.state::<T>() {
            Some(v) => Ok(State(v.clone())),
            None => {
                tracing::error!(
                    state = std::any::type_name::<T>(),
                    "a handler takes State<{}> but none was registered; add it with App::state",
                    std::any::type_name::<T>()
                );
                Err(TftpError::undefined("server misconfigured"))
            }
        }
    }
}
