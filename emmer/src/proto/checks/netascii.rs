//! Netascii on any bytes: encoding is LF → CR LF and CR → CR NUL (RFC 764),
//! decoding undoes it, and both give the same result in any chunking, with
//! output buffers of any size.

use crate::proto::netascii::{NetasciiDecoder, NetasciiEncoder};

/// Bytes and the ways to cut them.
#[derive(Debug, Clone)]
#[cfg_attr(not(test), derive(arbitrary::Arbitrary))]
pub struct Scenario {
    /// Local text to encode; also decoded as if it came off the wire.
    pub data: Vec<u8>,
    /// Chunk lengths the input is cut into, in turn (0 is taken as 1); the
    /// last chunk takes the rest.
    pub cuts: Vec<u8>,
    /// Output buffer sizes of the encoder, in turn (0 is tried, then taken
    /// as 1).
    pub caps: Vec<u8>,
}

/// The encoding, one byte at a time.
fn reference(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 2);
    for &b in data {
        match b {
            b'\n' => out.extend_from_slice(b"\r\n"),
            b'\r' => out.extend_from_slice(b"\r\0"),
            _ => out.push(b),
        }
    }
    out
}

/// `input` cut by `cuts`.
fn chunks<'a>(input: &'a [u8], cuts: &[u8]) -> Vec<&'a [u8]> {
    let mut v = Vec::new();
    let mut rest = input;
    for &c in cuts {
        if rest.is_empty() {
            break;
        }
        let (a, b) = rest.split_at(usize::from(c.max(1)).min(rest.len()));
        v.push(a);
        rest = b;
    }
    v.push(rest);
    v
}

fn encode(parts: &[&[u8]], caps: &[u8]) -> Vec<u8> {
    let mut enc = NetasciiEncoder::new();
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    let mut caps = caps.iter().copied().cycle();
    let mut next_cap = || caps.next().map_or(256, usize::from);
    for part in parts {
        let mut rest = *part;
        while !rest.is_empty() || enc.has_pending() {
            let mut cap = next_cap();
            if cap == 0 {
                let took = enc.encode(rest, &mut []);
                assert_eq!(took, (0, 0), "an empty buffer takes nothing");
                cap = 1;
            }
            let (c, w) = enc.encode(rest, &mut buf[..cap]);
            // Any buffer of a byte or more makes progress.
            assert!(c + w > 0, "no progress with a buffer of {cap}");
            assert!(
                c <= rest.len() && w <= cap,
                "({c}, {w}) of {} into {cap}",
                rest.len()
            );
            out.extend_from_slice(&buf[..w]);
            rest = &rest[c..];
        }
    }
    let w = enc.flush(&mut buf);
    assert_eq!(w, 0, "nothing is held once all is written");
    out
}

fn decode(parts: &[&[u8]]) -> Vec<u8> {
    let mut dec = NetasciiDecoder::new();
    let mut out = Vec::new();
    for part in parts {
        dec.decode(part, &mut out);
    }
    dec.finish(&mut out);
    out
}

/// Runs one scenario.
pub fn check(s: &Scenario) {
    let data = &s.data[..];
    let expected = reference(data);
    // In one piece, with room to spare.
    assert_eq!(encode(&[data], &[255]), expected, "encode {data:?}");
    // In chunks, into buffers of any size.
    let parts = chunks(data, &s.cuts);
    assert_eq!(
        encode(&parts, &s.caps),
        expected,
        "encode {data:?} as {parts:?}"
    );
    // Decoding undoes encoding, however the wire bytes are cut.
    assert_eq!(decode(&[&expected]), data, "decode {expected:?}");
    let wire_parts = chunks(&expected, &s.cuts);
    assert_eq!(decode(&wire_parts), data, "decode {wire_parts:?}");
    // Any bytes off the wire decode the same in any chunking, and never
    // grow (each output byte has an input byte).
    let whole = decode(&[data]);
    assert!(whole.len() <= data.len(), "{data:?} decodes to {whole:?}");
    assert_eq!(decode(&parts), whole, "decode {parts:?}");
}
