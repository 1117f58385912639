//! Requests through an app's real route table, without a socket:
//! [`App::read`] and [`App::write`].

use std::net::SocketAddr;

use crate::App;
use crate::proto::Mode;

/// A request run through an [`App`]'s real route table and extractors, with
/// no socket: see [`App::read`] and [`App::write`].
#[derive(Debug)]
pub struct TestRequest<'a> {
    app: &'a App,
    kind: crate::route::Kind,
    builder: crate::handler::RequestBuilder,
    data: Vec<u8>,
}

impl App {
    /// Runs a read request through the route table and the handler, without
    /// a socket. The result is the body as the handler produced it (before
    /// netascii conversion), or the TFTP error the client would get.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use emmer::{App, Request};
    /// let app = App::empty().route_read(r"hosts/(?P<name>\w+)", |req: &Request| {
    ///     format!("{} from {}", req.capture("name").unwrap(), req.client_host())
    /// });
    /// let body = app.read("hosts/sw1").from("10.0.0.7:1234".parse().unwrap()).await.unwrap();
    /// assert_eq!(body, b"sw1 from 10.0.0.7");
    /// assert_eq!(app.read("other").await.unwrap_err().code(), emmer::ErrorCode::FileNotFound);
    /// # }
    /// ```
    pub fn read(&self, filename: &str) -> TestRequest<'_> {
        TestRequest {
            app: self,
            kind: crate::route::Kind::Read,
            builder: crate::Request::builder(filename).state_map(self.state_map()),
            data: Vec::new(),
        }
    }

    /// Runs a write request with the given upload through the route table
    /// and the handler, without a socket: `Ok` (with an empty body) is the
    /// final ACK, an error what the client would get instead. Size limits
    /// are the engine's and are not applied here.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use emmer::{App, Request};
    /// let app = App::empty().route_write("cfg/.+", |_: &Request, data: Vec<u8>| !data.is_empty());
    /// assert!(app.write("cfg/a", "x").await.is_ok());
    /// assert_eq!(app.write("cfg/a", "").await.unwrap_err().code(), emmer::ErrorCode::AccessViolation);
    /// # }
    /// ```
    pub fn write(&self, filename: &str, data: impl Into<Vec<u8>>) -> TestRequest<'_> {
        TestRequest {
            app: self,
            kind: crate::route::Kind::Write,
            builder: crate::Request::builder(filename).state_map(self.state_map()),
            data: data.into(),
        }
    }
}

impl<'a> TestRequest<'a> {
    /// The client's address (default 127.0.0.1:50000).
    pub fn from(mut self, peer: SocketAddr) -> Self {
        self.builder = self.builder.peer(peer);
        self
    }

    /// The transfer mode (default octet).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.builder = self.builder.mode(mode);
        self
    }

    /// The transport that carries the request (default TFTP): routes kept
    /// to another transport do not see it.
    pub fn transport(mut self, transport: crate::Transport) -> Self {
        self.builder = self.builder.transport(transport);
        self
    }

    /// An option as the client would send it.
    pub fn option(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.option(name, value);
        self
    }

    async fn run(self) -> Result<Vec<u8>, crate::TftpError> {
        use crate::handler::response::BodyKind;
        use tokio::io::AsyncReadExt;
        let table = self
            .app
            .table()
            .unwrap_or_else(|e| panic!("the app's routes are invalid: {e}"));
        let req = self.builder.build();
        match self.kind {
            crate::route::Kind::Read => {
                let body = table.dispatch_read(&req)?.call.run().await?;
                let mut v = Vec::new();
                match body.kind {
                    BodyKind::Bytes(b) => v.extend_from_slice(&b),
                    BodyKind::File { mut file, .. } => {
                        std::io::Read::read_to_end(&mut file, &mut v)?;
                    }
                    BodyKind::Stream { mut reader, .. } => {
                        reader.read_to_end(&mut v).await?;
                    }
                }
                Ok(v)
            }
            crate::route::Kind::Write => {
                let call = table.dispatch_write(&req)?.call;
                let upload = crate::Upload::from_bytes(self.data);
                crate::handler::call::verdict(call.start(upload).await).map(|()| Vec::new())
            }
        }
    }
}

impl<'a> std::future::IntoFuture for TestRequest<'a> {
    type Output = Result<Vec<u8>, crate::TftpError>;
    type IntoFuture =
        std::pin::Pin<Box<dyn std::future::Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}
