//! What handlers return: read bodies and write verdicts.

use std::fmt;
use std::pin::Pin;

use bytes::Bytes;
use tokio::io::AsyncRead;

use crate::TftpError;

/// The content a read route sends.
///
/// Built from what a handler returns (see [`IntoReadResponse`]): a buffer
/// whose size is known, a file (streamed, size known) or any [`AsyncRead`]
/// (streamed, size unknown).
pub struct ReadBody {
    pub(crate) kind: BodyKind,
}

pub(crate) enum BodyKind {
    Bytes(Bytes),
    /// A regular file, read ahead on the blocking pool (see [`ReadBody::file`]).
    File {
        file: std::fs::File,
        size: u64,
    },
    Stream {
        reader: Pin<Box<dyn AsyncRead + Send>>,
        size: Option<u64>,
        /// Buffer up to this many bytes to learn the size for tsize.
        measure: Option<u64>,
    },
}

impl ReadBody {
    /// A body held in memory.
    ///
    /// # Examples
    ///
    /// ```
    /// let body = emmer::ReadBody::from_bytes("hello");
    /// assert_eq!(body.size(), Some(5));
    /// ```
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        Self {
            kind: BodyKind::Bytes(bytes.into()),
        }
    }

    /// A body read as it is sent; `size` is announced as tsize when given.
    pub fn from_reader(reader: impl AsyncRead + Send + 'static, size: Option<u64>) -> Self {
        Self {
            kind: BodyKind::Stream {
                reader: Box::pin(reader),
                size,
                measure: None,
            },
        }
    }

    /// For a stream of unknown size: when the client asks for `tsize`,
    /// read up to `limit` bytes ahead to learn the size (RFC 2349). A stream
    /// that ends within the limit is sent from memory with its size in the
    /// OACK; a longer one is sent as it comes, without tsize. Without this
    /// (or [`Config::tsize_measure_limit`](crate::Config::tsize_measure_limit)),
    /// tsize is left out of the OACK for such a body.
    ///
    /// # Examples
    ///
    /// ```
    /// let generated: &[u8] = b"#!ipxe\nchain http://boot/menu\n";
    /// let body = emmer::ReadBody::from_reader(generated, None).measure_tsize_up_to(64 * 1024);
    /// assert_eq!(body.size(), None); // learned when a client asks for tsize
    /// ```
    pub fn measure_tsize_up_to(mut self, limit: u64) -> Self {
        if let BodyKind::Stream { measure, .. } = &mut self.kind {
            *measure = Some(limit);
        }
        self
    }

    /// A file, streamed as it is sent (never read whole into memory), with
    /// its size announced as tsize.
    ///
    /// The engine reads it on the blocking pool, a window's worth or more
    /// per trip (16 to 256 KiB) and one read ahead of what is being sent, so
    /// a slow disk delays only this transfer, never the others.
    ///
    /// # Errors
    ///
    /// The file cannot be opened (NotFound becomes ERROR 1 when returned
    /// from a handler through `?`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use emmer::{route_read, ReadBody, TftpError};
    ///
    /// #[route_read(r"images/(?P<name>[a-z0-9.-]+)")]
    /// async fn image(name: String) -> Result<ReadBody, TftpError> {
    ///     Ok(ReadBody::file(format!("/srv/images/{name}")).await?)
    /// }
    /// ```
    pub async fn file(path: impl AsRef<std::path::Path>) -> std::io::Result<Self> {
        let file = tokio::fs::File::open(path).await?.into_std().await;
        Self::from_std_file(file)
    }

    /// A file opened with `std::fs::File`, read like [`ReadBody::file`].
    ///
    /// # Errors
    ///
    /// Its size cannot be read.
    pub fn from_std_file(file: std::fs::File) -> std::io::Result<Self> {
        let size = file.metadata()?.len();
        Ok(Self {
            kind: BodyKind::File { file, size },
        })
    }

    /// The size in bytes, when it is known before sending.
    pub fn size(&self) -> Option<u64> {
        match &self.kind {
            BodyKind::Bytes(b) => Some(b.len() as u64),
            BodyKind::File { size, .. } => Some(*size),
            BodyKind::Stream { size, .. } => *size,
        }
    }
}

impl fmt::Debug for ReadBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            BodyKind::Bytes(b) => write!(f, "ReadBody::Bytes({} bytes)", b.len()),
            BodyKind::File { size, .. } => write!(f, "ReadBody::File({size} bytes)"),
            BodyKind::Stream { size, .. } => write!(f, "ReadBody::Stream(size {size:?})"),
        }
    }
}

/// What a read handler may return.
///
/// | returned | sent |
/// |---|---|
/// | `&'static str`, `String`, `Vec<u8>`, `&'static [u8]`, `Bytes` | the bytes |
/// | [`ReadBody`] | the body (buffer or stream) |
/// | `Option<T>` | `T`, or ERROR 1 (file not found) for `None` |
/// | `Result<T, E>` with `E: Into<TftpError>` | `T`, or the error |
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned by a read handler",
    note = "a read handler returns &'static str, String, Vec<u8>, &'static [u8], Bytes, emmer::ReadBody, Option<T> or Result<T, E> where E: Into<emmer::TftpError>"
)]
pub trait IntoReadResponse {
    /// The body, or the error for the client.
    ///
    /// # Errors
    ///
    /// The TFTP error the client gets instead of the file.
    fn into_read_response(self) -> Result<ReadBody, TftpError>;
}

impl IntoReadResponse for ReadBody {
    fn into_read_response(self) -> Result<ReadBody, TftpError> {
        Ok(self)
    }
}

macro_rules! bytes_body {
    ($($t:ty),*) => {$(
        impl IntoReadResponse for $t {
            fn into_read_response(self) -> Result<ReadBody, TftpError> {
                Ok(ReadBody::from_bytes(self))
            }
        }
    )*};
}
bytes_body!(&'static str, String, Vec<u8>, &'static [u8], Bytes);

/// A file, streamed, its size known: the same as [`ReadBody::from_std_file`].
impl IntoReadResponse for std::fs::File {
    fn into_read_response(self) -> Result<ReadBody, TftpError> {
        Ok(ReadBody::from_std_file(self)?)
    }
}

/// A file, streamed, its size known.
impl IntoReadResponse for tokio::fs::File {
    fn into_read_response(self) -> Result<ReadBody, TftpError> {
        match self.try_into_std() {
            Ok(f) => f.into_read_response(),
            Err(f) => Ok(ReadBody::from_reader(f, None)),
        }
    }
}

impl<T: IntoReadResponse> IntoReadResponse for Option<T> {
    fn into_read_response(self) -> Result<ReadBody, TftpError> {
        match self {
            Some(v) => v.into_read_response(),
            None => Err(TftpError::not_found("file not found")),
        }
    }
}

impl<T: IntoReadResponse, E: Into<TftpError>> IntoReadResponse for Result<T, E> {
    fn into_read_response(self) -> Result<ReadBody, TftpError> {
        self.map_err(Into::into)?.into_read_response()
    }
}

/// What a write handler may return: `()` accepts the upload, `false`
/// rejects it (ERROR 2, access violation), `Err(e)` rejects it with `e`.
///
/// A rejection goes to the client as an ERROR instead of the final ACK, so
/// the client knows the upload failed.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned by a write handler",
    note = "a write handler returns (), bool (false rejects the upload) or Result<T, E> where T is one of these and E: Into<emmer::TftpError>"
)]
pub trait IntoWriteResponse {
    /// `Ok` accepts the upload.
    ///
    /// # Errors
    ///
    /// The TFTP error the client gets instead of the final ACK.
    fn into_write_response(self) -> Result<(), TftpError>;
}

impl IntoWriteResponse for () {
    fn into_write_response(self) -> Result<(), TftpError> {
        Ok(())
    }
}

impl IntoWriteResponse for bool {
    fn into_write_response(self) -> Result<(), TftpError> {
        if self {
            Ok(())
        } else {
            Err(TftpError::access_violation("upload rejected by the server"))
        }
    }
}

impl<T: IntoWriteResponse, E: Into<TftpError>> IntoWriteResponse for Result<T, E> {
    fn into_write_response(self) -> Result<(), TftpError> {
        self.map_err(Into::into)?.into_write_response()
    }
}
