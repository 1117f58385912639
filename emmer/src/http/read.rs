//! `GET` and `HEAD`: the read route's body, with `Content-Length` whenever
//! its size is known (UEFI HTTP Boot asks with `HEAD` first), one byte
//! range when asked (RFC 9110 §14: 206, or 416 outside the body), and
//! chunked encoding for a stream of unknown size.
//!
//! A stream of unknown size is first measured as for TFTP's tsize, up to
//! its own or the server's limit ([`ReadBody::measure_tsize_up_to`],
//! [`Config::tsize_measure_limit`](crate::Config::tsize_measure_limit)): a
//! short generated body then goes out with its length.

use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

use super::body::{Body, Tracker};
use super::{AbortOnDrop, Conn, error_response, failure};
use crate::TftpError;
use crate::handler::call::verdict;
use crate::handler::response::BodyKind;
use crate::handler::{ReadBody, Request};
use crate::server::source::measure;

/// Answers a `GET` (or a `HEAD`, with the same headers and no body).
pub(super) async fn serve(
    cx: &Conn,
    req: &hyper::Request<Incoming>,
    request: Request,
    head: bool,
    mut tracker: Tracker,
) -> Response<Body> {
    let shared = &cx.shared;
    let d = match shared.table.dispatch_read(&request) {
        Ok(d) => d,
        Err(e) => return error_response(&e, head, tracker),
    };
    tracker.route(d.route.clone());
    let body = match verdict(AbortOnDrop(d.call.start()).await) {
        Ok(body) => body,
        Err(e) => return error_response(&e, head, tracker),
    };
    let body = match measure(body, shared.config.tsize_measure_limit).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "reading the body to measure its size failed");
            let e = TftpError::undefined("server could not read the file");
            return error_response(&e, head, tracker);
        }
    };
    let size = body.size();
    let range = match (head, size) {
        (false, Some(size)) => range(req.headers(), size),
        _ => None,
    };
    let mut status = StatusCode::OK;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(request.filename())),
    );
    let accept = if size.is_some() { "bytes" } else { "none" };
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static(accept));
    let (start, len) = match (range, size) {
        (Some(Ok((first, last))), Some(size)) => {
            status = StatusCode::PARTIAL_CONTENT;
            let value = format!("bytes {first}-{last}/{size}");
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(header::CONTENT_RANGE, v);
            }
            (first, Some(last - first + 1))
        }
        (Some(Err(())), Some(size)) => {
            let e = TftpError::illegal_operation(format!(
                "the range asked for is outside the body of {size} bytes"
            ));
            let mut r = failure(StatusCode::RANGE_NOT_SATISFIABLE, &e, head, tracker);
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
        _ => (0, size),
    };
    if let Some(len) = len {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    tracker.status(status);
    let body = if head {
        tracker.size_probe();
        Body::empty(tracker)
    } else {
        into_body(body, start, len, tracker)
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    r
}

/// The response body: `len` bytes from `start` (all of it from 0 when the
/// size is unknown).
fn into_body(body: ReadBody, start: u64, len: Option<u64>, tracker: Tracker) -> Body {
    match body.kind {
        BodyKind::Bytes(b) => {
            let start = usize::try_from(start).unwrap_or(b.len()).min(b.len());
            let end = len.map_or(b.len(), |n| {
                start.saturating_add(usize::try_from(n).unwrap_or(usize::MAX))
            });
            Body::bytes(b.slice(start..end.min(b.len())), tracker)
        }
        BodyKind::File { file, size } => Body::file(file, start, len.unwrap_or(size), tracker),
        BodyKind::Stream { reader, .. } => Body::stream(reader, start, len, tracker),
    }
}

/// The one byte range a request asks for, inclusive, in a body of `size`
/// bytes: `None` to send the whole body (no `Range`, several ranges, a
/// syntax we do not take, or an `If-Range`: the bodies have no validator
/// to compare), `Err` when it lies outside the body (416).
fn range(headers: &HeaderMap, size: u64) -> Option<Result<(u64, u64), ()>> {
    if headers.contains_key(header::IF_RANGE) {
        return None;
    }
    let spec = headers.get(header::RANGE)?.to_str().ok()?.trim();
    let (unit, set) = spec.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return None;
    }
    let (first, last) = set.trim().split_once('-')?;
    let number = |s: &str| -> Option<Option<u64>> {
        let s = s.trim();
        if s.is_empty() {
            return Some(None);
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // A number too large for u64 is past any end.
        Some(Some(s.parse().unwrap_or(u64::MAX)))
    };
    match (number(first)?, number(last)?) {
        // bytes=-N: the last N bytes.
        (None, Some(n)) => {
            if n == 0 || size == 0 {
                Some(Err(()))
            } else {
                Some(Ok((size.saturating_sub(n), size - 1)))
            }
        }
        (Some(a), last) => {
            if last.is_some_and(|b| b < a) {
                return None;
            }
            if a >= size {
                return Some(Err(()));
            }
            let b = last.map_or(size - 1, |b| b.min(size - 1));
            Some(Ok((a, b)))
        }
        (None, None) => None,
    }
}

/// The media type a name suggests. UEFI HTTP Boot tells a boot program
/// (`application/efi`) from a disk image by it, or by the extension.
fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    match ext.to_ascii_lowercase().as_str() {
        "efi" => "application/efi",
        "iso" => "application/vnd.efi-iso",
        "img" => "application/vnd.efi-img",
        "ipxe" | "cfg" | "conf" | "txt" | "sh" | "menu" => "text/plain; charset=utf-8",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(spec: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(spec).unwrap());
        range(&h, size)
    }

    #[test]
    fn ranges_as_rfc_9110_says() {
        assert_eq!(r("bytes=0-99", 1000), Some(Ok((0, 99))));
        assert_eq!(r("bytes=900-", 1000), Some(Ok((900, 999))));
        assert_eq!(r("bytes=900-5000", 1000), Some(Ok((900, 999))));
        assert_eq!(r("bytes=-100", 1000), Some(Ok((900, 999))));
        assert_eq!(r("bytes=-5000", 1000), Some(Ok((0, 999))));
        assert_eq!(r("BYTES = 5-5", 1000), Some(Ok((5, 5))));
        // Outside the body: 416.
        assert_eq!(r("bytes=1000-", 1000), Some(Err(())));
        assert_eq!(r("bytes=-0", 1000), Some(Err(())));
        assert_eq!(r("bytes=0-", 0), Some(Err(())));
        assert_eq!(r("bytes=99999999999999999999999-", 10), Some(Err(())));
        // Not taken: the whole body.
        for spec in [
            "bytes=5-4",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=a-b",
            "bytes=-",
            "bytes",
        ] {
            assert_eq!(r(spec, 1000), None, "{spec}");
        }
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_static("bytes=0-1"));
        h.insert(header::IF_RANGE, HeaderValue::from_static("\"x\""));
        assert_eq!(range(&h, 10), None, "no validator can match If-Range");
    }

    #[test]
    fn media_types_by_extension() {
        assert_eq!(content_type("EFI/BOOT/BOOTX64.EFI"), "application/efi");
        assert_eq!(content_type("boot.ipxe"), "text/plain; charset=utf-8");
        assert_eq!(content_type("vmlinuz"), "application/octet-stream");
        assert_eq!(content_type("live.iso"), "application/vnd.efi-iso");
    }
}
