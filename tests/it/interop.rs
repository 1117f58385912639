//! The same transfers with every system client: a module per client
//! (`curl`, `tftp_hpa`, `atftp`, `busybox`), each with the same tests.
//!
//! Every test starts its own [`Fixture`] server and compares bytes exactly:
//! what the client wrote locally for a get, what the write route stored for a
//! put. Netascii tests expect what that client's netascii mode produces (see
//! [`Kind::netascii_download`]).

use emmer::Mode;

use super::clients::{Kind, Opts};
use super::support::{BIG, Fixture, TempDir, assert_bytes_eq, noise, read, text_body};

const REMOTE: &str = "f/file.bin";
const UPLOAD: &str = "up/file.bin";

/// Serves `body` and downloads it with `kind`; compares the local file with
/// what that client should have written.
async fn get_case(kind: Kind, body: &[u8], mode: Mode, opts: Opts) {
    let Some(tool) = kind.require() else { return };
    let dir = TempDir::new("get");
    let fx = Fixture::start(&[(REMOTE, body)]).await;
    let local = dir.join("local.bin");
    let out = tool.get_with(fx.addr, REMOTE, &local, mode, opts).await;
    tool.assert_ok(&out);
    let expected = match mode {
        Mode::Netascii => kind.netascii_download(body),
        _ => body.to_vec(),
    };
    assert_bytes_eq(
        &read(&local),
        &expected,
        &format!("{kind:?} get of {} bytes in {mode} mode", body.len()),
    );
}

/// Uploads a file with `kind` so that the server should store `body`;
/// compares what the write route stored.
async fn put_case(kind: Kind, body: &[u8], mode: Mode, opts: Opts) {
    let Some(tool) = kind.require() else { return };
    let dir = TempDir::new("put");
    let fx = Fixture::start(&[]).await;
    let local = match mode {
        Mode::Netascii => dir.write("local.txt", &kind.netascii_upload(body)),
        _ => dir.write("local.bin", body),
    };
    let out = tool.put_with(fx.addr, &local, UPLOAD, mode, opts).await;
    tool.assert_ok(&out);
    let stored = fx
        .uploads
        .stored(UPLOAD)
        .unwrap_or_else(|| panic!("{kind:?} put: nothing stored; client said:\n{}", out.text()));
    assert_bytes_eq(
        &stored,
        body,
        &format!("{kind:?} put of {} bytes in {mode} mode", body.len()),
    );
    assert_eq!(fx.uploads.stored_count(), 1);
}

/// A read no route matches: ERROR 1, and the client says so.
async fn get_unrouted_case(kind: Kind) {
    let Some(tool) = kind.require() else { return };
    let dir = TempDir::new("get-unrouted");
    let fx = Fixture::start(&[(REMOTE, b"exists")]).await;
    let out = tool
        .get(
            fx.addr,
            "no/route/here.bin",
            &dir.join("local"),
            Mode::Octet,
        )
        .await;
    tool.assert_error(&out, 1, "file not found");
}

/// A read the route answers with `None`: ERROR 1 as well.
async fn get_missing_case(kind: Kind) {
    let Some(tool) = kind.require() else { return };
    let dir = TempDir::new("get-missing");
    let fx = Fixture::start(&[(REMOTE, b"exists")]).await;
    let out = tool
        .get(fx.addr, "f/absent.bin", &dir.join("local"), Mode::Octet)
        .await;
    tool.assert_error(&out, 1, "file not found");
}

/// A write no route matches: ERROR 2 at once, nothing stored.
async fn put_unrouted_case(kind: Kind) {
    let Some(tool) = kind.require() else { return };
    let dir = TempDir::new("put-unrouted");
    let fx = Fixture::start(&[]).await;
    let local = dir.write("local.bin", &noise(1500, 3));
    let out = tool
        .put(fx.addr, &local, "elsewhere/file.bin", Mode::Octet)
        .await;
    tool.assert_error(&out, 2, "writing this file is not allowed");
    assert_eq!(fx.uploads.stored_count(), 0);
    assert!(fx.uploads.refused().is_empty());
}

/// A write whose handler returns `false` (ERROR 2) or an `Err` (its code):
/// the handler saw the whole upload, the client gets the ERROR instead of
/// the final ACK, nothing is stored.
async fn put_refused_case(kind: Kind, remote: &str, code: u16, message: &str) {
    let Some(tool) = kind.require() else { return };
    let dir = TempDir::new("put-refused");
    let fx = Fixture::start(&[]).await;
    let body = noise(3000, 4);
    let local = dir.write("local.bin", &body);
    let out = tool.put(fx.addr, &local, remote, Mode::Octet).await;
    tool.assert_final_error(&out, code, message);
    assert_eq!(fx.uploads.stored_count(), 0);
    assert_eq!(fx.uploads.refused(), vec![(remote.to_owned(), body.len())]);
}

/// The tests every client runs, in a module named after the client.
macro_rules! client_tests {
    ($module:ident, $kind:expr) => {
        mod $module {
            use super::*;

            /// A 3000-byte file (six blocks, the last one short).
            #[tokio::test]
            async fn get_octet() {
                get_case($kind, &noise(3000, 1), Mode::Octet, Opts::default()).await;
            }

            #[tokio::test]
            async fn put_octet() {
                put_case($kind, &noise(3000, 2), Mode::Octet, Opts::default()).await;
            }

            /// 81920 blocks of 512 bytes: block numbers roll over past 65535,
            /// and the last block is empty.
            #[tokio::test]
            async fn get_40mib() {
                get_case($kind, &noise(BIG, 5), Mode::Octet, Opts::default()).await;
            }

            #[tokio::test]
            async fn put_40mib() {
                put_case($kind, &noise(BIG, 6), Mode::Octet, Opts::default()).await;
            }

            /// One empty DATA block.
            #[tokio::test]
            async fn get_empty() {
                get_case($kind, b"", Mode::Octet, empty_get_opts($kind)).await;
            }

            #[tokio::test]
            async fn put_empty() {
                put_case($kind, b"", Mode::Octet, Opts::default()).await;
            }

            /// A full block, then an empty one to end the transfer.
            #[tokio::test]
            async fn get_512() {
                get_case($kind, &noise(512, 7), Mode::Octet, Opts::default()).await;
            }

            #[tokio::test]
            async fn put_512() {
                put_case($kind, &noise(512, 8), Mode::Octet, Opts::default()).await;
            }

            #[tokio::test]
            async fn get_unrouted() {
                get_unrouted_case($kind).await;
            }

            #[tokio::test]
            async fn get_missing() {
                get_missing_case($kind).await;
            }

            #[tokio::test]
            async fn put_unrouted() {
                put_unrouted_case($kind).await;
            }

            #[tokio::test]
            async fn put_rejected() {
                put_refused_case($kind, "reject/file.bin", 2, "upload rejected by the server")
                    .await;
            }

            #[tokio::test]
            async fn put_handler_error() {
                put_refused_case($kind, "full/file.bin", 3, "quota exceeded for this test").await;
            }
        }
    };
}

/// Netascii tests, for the clients that have the mode.
macro_rules! netascii_tests {
    ($module:ident, $kind:expr) => {
        mod $module {
            use super::*;

            /// LF, CR LF, lone CR, NUL, with CR NUL and CR LF pairs split by
            /// block boundaries.
            #[tokio::test]
            async fn get_netascii() {
                get_case($kind, &text_body(), Mode::Netascii, Opts::default()).await;
            }

            #[tokio::test]
            async fn put_netascii() {
                put_case($kind, &text_body(), Mode::Netascii, Opts::default()).await;
            }
        }
    };
}

/// curl 7.88 refuses an OACK whose `tsize` is 0 ("invalid tsize -:0:- value
/// in OACK packet", exit 71), and it asks for tsize on every download; so it
/// cannot fetch an empty file from a server that reports the true size. The
/// empty download is tested with `--tftp-no-options`.
fn empty_get_opts(kind: Kind) -> Opts {
    Opts {
        no_options: kind == Kind::Curl,
        ..Opts::default()
    }
}

client_tests!(curl, Kind::Curl);
client_tests!(tftp_hpa, Kind::Hpa);
client_tests!(atftp, Kind::Atftp);
client_tests!(busybox, Kind::Busybox);

/// Netascii transfers (busybox has no netascii mode).
mod netascii {
    use super::*;

    netascii_tests!(curl, Kind::Curl);
    netascii_tests!(tftp_hpa, Kind::Hpa);
    netascii_tests!(atftp, Kind::Atftp);
}

/// Options the clients can ask for: blksize, windowsize.
mod options {
    use super::*;

    #[tokio::test]
    async fn curl_blksize_1024() {
        let opts = Opts {
            blksize: Some(1024),
            ..Opts::default()
        };
        get_case(Kind::Curl, &noise(100_000, 9), Mode::Octet, opts).await;
        put_case(Kind::Curl, &noise(100_000, 10), Mode::Octet, opts).await;
    }

    #[tokio::test]
    async fn atftp_blksize_1428_windowsize_4() {
        let opts = Opts {
            blksize: Some(1428),
            windowsize: Some(4),
            ..Opts::default()
        };
        get_case(Kind::Atftp, &noise(1_000_000, 11), Mode::Octet, opts).await;
        put_case(Kind::Atftp, &noise(1_000_000, 12), Mode::Octet, opts).await;
    }

    /// The options netboot clients ask for together: tsize, a 1428-byte
    /// block and a window of 16, both ways, over a file past the block
    /// number rollover at 1428 bytes (65536 × 1428 ≈ 89 MiB would be slow in
    /// a debug build, so 6 MiB: 4406 blocks, 276 windows).
    #[tokio::test]
    async fn atftp_tsize_blksize_1428_windowsize_16() {
        let opts = Opts {
            blksize: Some(1428),
            windowsize: Some(16),
            tsize: true,
            ..Opts::default()
        };
        get_case(Kind::Atftp, &noise(6 << 20, 16), Mode::Octet, opts).await;
        put_case(Kind::Atftp, &noise(6 << 20, 17), Mode::Octet, opts).await;
    }

    /// A large blksize: 4 MiB in 65464-byte blocks (the last one short).
    #[tokio::test]
    async fn atftp_blksize_65464() {
        let opts = Opts {
            blksize: Some(65464),
            ..Opts::default()
        };
        get_case(Kind::Atftp, &noise(4 << 20, 13), Mode::Octet, opts).await;
    }

    #[tokio::test]
    async fn busybox_blksize_1024() {
        let opts = Opts {
            blksize: Some(1024),
            ..Opts::default()
        };
        get_case(Kind::Busybox, &noise(100_000, 14), Mode::Octet, opts).await;
        put_case(Kind::Busybox, &noise(100_000, 15), Mode::Octet, opts).await;
    }

    /// Netascii and a blksize together: the conversion happens across the
    /// larger blocks.
    #[tokio::test]
    async fn atftp_netascii_blksize_1428() {
        let opts = Opts {
            blksize: Some(1428),
            ..Opts::default()
        };
        let body = text_body().repeat(5);
        get_case(Kind::Atftp, &body, Mode::Netascii, opts).await;
        put_case(Kind::Atftp, &body, Mode::Netascii, opts).await;
    }
}
