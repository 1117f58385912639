//! Netascii (RFC 764 via RFC 1350): LF is sent as CR LF, a lone CR as CR NUL.
//!
//! Both directions are streaming: a CR at the end of one chunk is carried to
//! the next, so blocks can be converted one at a time.

/// Converts local text to netascii: LF → CR LF, CR → CR NUL.
#[derive(Debug, Default, Clone)]
pub struct NetasciiEncoder {
    pending: Option<u8>,
}

impl NetasciiEncoder {
    /// A new encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Converts as much of `input` as fits into `out`; returns
    /// `(consumed, written)`. An expansion that does not fit whole is kept and
    /// written first on the next call. `out` of length ≥ 2 always makes
    /// progress while input remains.
    pub fn encode(&mut self, input: &[u8], out: &mut [u8]) -> (usize, usize) {
        let mut written = self.flush(out);
        if self.pending.is_some() {
            return (0, written);
        }
        let mut consumed = 0;
        for &b in input {
            if written == out.len() {
                break;
            }
            // RFC 764: end of line is CR LF; a bare CR is CR NUL.
            let second = match b {
                b'\n' => Some(b'\n'),
                b'\r' => Some(0),
                _ => None,
            };
            consumed += 1;
            match second {
                None => {
                    out[written] = b;
                    written += 1;
                }
                Some(second) => {
                    out[written] = b'\r';
                    written += 1;
                    if written < out.len() {
                        out[written] = second;
                        written += 1;
                    } else {
                        // The second half goes first on the next call.
                        self.pending = Some(second);
                        break;
                    }
                }
            }
        }
        (consumed, written)
    }

    /// True when a converted byte is still held back for the next call.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Writes held-back bytes into `out`; returns how many were written.
    pub fn flush(&mut self, out: &mut [u8]) -> usize {
        match (self.pending, out.first_mut()) {
            (Some(b), Some(slot)) => {
                *slot = b;
                self.pending = None;
                1
            }
            _ => 0,
        }
    }
}

/// Converts netascii to local text: CR LF → LF, CR NUL → CR.
#[derive(Debug, Default, Clone)]
pub struct NetasciiDecoder {
    cr: bool,
}

impl NetasciiDecoder {
    /// A new decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the decoded form of `input` to `out`. A CR at the end of
    /// `input` is held until the next call or [`finish`](Self::finish). A CR
    /// followed by any other byte is kept as CR followed by that byte.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + 1);
        for &b in input {
            if std::mem::take(&mut self.cr) {
                match b {
                    // RFC 764: CR LF is the end of a line.
                    b'\n' => {
                        out.push(b'\n');
                        continue;
                    }
                    // CR NUL is a bare CR.
                    0 => {
                        out.push(b'\r');
                        continue;
                    }
                    // Not valid netascii: keep the CR, then handle `b`.
                    _ => out.push(b'\r'),
                }
            }
            if b == b'\r' {
                self.cr = true;
            } else {
                out.push(b);
            }
        }
    }

    /// Ends the stream: a held CR is appended as it is.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.cr) {
            out.push(b'\r');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference encoding, one byte at a time.
    fn encode_ref(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in input {
            match b {
                b'\n' => out.extend_from_slice(b"\r\n"),
                b'\r' => out.extend_from_slice(b"\r\0"),
                _ => out.push(b),
            }
        }
        out
    }

    /// Encodes `input` split at `split`, with an output buffer of `cap` bytes.
    fn encode_chunked(input: &[u8], split: usize, cap: usize) -> Vec<u8> {
        let mut enc = NetasciiEncoder::new();
        let mut out = Vec::new();
        let mut buf = vec![0u8; cap];
        for part in [&input[..split], &input[split..]] {
            let mut rest = part;
            while !rest.is_empty() {
                let (c, w) = enc.encode(rest, &mut buf);
                assert!(c + w > 0, "no progress with a buffer of {cap}");
                out.extend_from_slice(&buf[..w]);
                rest = &rest[c..];
            }
        }
        while enc.has_pending() {
            let w = enc.flush(&mut buf);
            out.extend_from_slice(&buf[..w]);
        }
        out
    }

    fn decode_chunked(input: &[u8], split: usize) -> Vec<u8> {
        let mut dec = NetasciiDecoder::new();
        let mut out = Vec::new();
        dec.decode(&input[..split], &mut out);
        dec.decode(&input[split..], &mut out);
        dec.finish(&mut out);
        out
    }

    /// Deterministic pseudo-random text heavy in CR, LF and NUL.
    fn samples() -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"\r".to_vec(),
            b"\n".to_vec(),
            b"\r\n".to_vec(),
            b"\n\r".to_vec(),
            b"\r\r\n\n\0".to_vec(),
            b"line one\nline two\r\nend\r".to_vec(),
        ];
        let mut x: u32 = 0x1234_5678;
        for len in [5usize, 17, 40] {
            for _ in 0..8 {
                let s = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        [b'\r', b'\n', 0, b'a', b'z'][(x % 5) as usize]
                    })
                    .collect();
                v.push(s);
            }
        }
        v
    }

    #[test]
    fn encoder_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"abc", b"abc"),
            (b"a\nb", b"a\r\nb"),
            (b"a\rb", b"a\r\0b"),
            (b"\r\n", b"\r\0\r\n"),
            (b"\0", b"\0"),
        ];
        for (input, expected) in cases {
            assert_eq!(encode_chunked(input, 0, 64), *expected);
        }
    }

    #[test]
    fn decoder_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"a\r\nb", b"a\nb"),
            (b"a\r\0b", b"a\rb"),
            (b"a\rb", b"a\rb"),
            (b"\r\r\n", b"\r\n"),
            (b"x\r", b"x\r"),
            (b"\n", b"\n"),
        ];
        for (input, expected) in cases {
            assert_eq!(decode_chunked(input, 0), *expected, "{input:?}");
        }
    }

    #[test]
    fn encoder_with_one_byte_buffer_carries_the_pending_byte() {
        let mut enc = NetasciiEncoder::new();
        let mut b = [0u8; 1];
        assert_eq!(enc.encode(b"\nx", &mut b), (1, 1));
        assert_eq!(b[0], b'\r');
        assert!(enc.has_pending());
        // The pending LF comes first, and nothing is consumed meanwhile.
        assert_eq!(enc.encode(b"x", &mut b), (0, 1));
        assert_eq!(b[0], b'\n');
        assert!(!enc.has_pending());
        assert_eq!(enc.encode(b"x", &mut b), (1, 1));
        assert_eq!(b[0], b'x');
        assert_eq!(enc.encode(b"x", &mut []), (0, 0));
        assert_eq!(enc.flush(&mut b), 0);
    }

    #[test]
    fn decoder_holds_a_trailing_cr_until_the_next_call() {
        let mut dec = NetasciiDecoder::new();
        let mut out = Vec::new();
        dec.decode(b"ab\r", &mut out);
        assert_eq!(out, b"ab");
        dec.decode(b"\nc\r", &mut out);
        assert_eq!(out, b"ab\nc");
        dec.decode(b"\0", &mut out);
        assert_eq!(out, b"ab\nc\r");
        dec.decode(b"\r", &mut out);
        dec.finish(&mut out);
        assert_eq!(out, b"ab\nc\r\r");
    }

    #[test]
    fn round_trip_split_everywhere_with_small_buffers() {
        for input in samples() {
            let expected = encode_ref(&input);
            for split in 0..=input.len() {
                for cap in [1usize, 2, 3, 7, 100] {
                    let encoded = encode_chunked(&input, split, cap);
                    assert_eq!(
                        encoded, expected,
                        "encode {input:?} split {split} cap {cap}"
                    );
                }
            }
            for split in 0..=expected.len() {
                assert_eq!(
                    decode_chunked(&expected, split),
                    input,
                    "decode split {split}"
                );
            }
        }
    }
}
