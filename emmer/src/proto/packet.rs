//! TFTP packets: decode from and encode to bytes (RFC 1350, RFC 2347).

use std::borrow::Cow;
use std::fmt;

use crate::ErrorCode;

/// Opcodes (RFC 1350 §5, RFC 2347).
pub mod opcode {
    /// Read request.
    pub const RRQ: u16 = 1;
    /// Write request.
    pub const WRQ: u16 = 2;
    /// Data.
    pub const DATA: u16 = 3;
    /// Acknowledgement.
    pub const ACK: u16 = 4;
    /// Error.
    pub const ERROR: u16 = 5;
    /// Option acknowledgement (RFC 2347).
    pub const OACK: u16 = 6;
}

/// The largest data block (RFC 2348: blksize 8..=65464).
pub const MAX_BLKSIZE: u16 = 65464;
/// The size of the header of a DATA packet.
pub const DATA_HEADER: usize = 4;

/// Transfer mode of a request; names are case-insensitive on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Text: lines end in CR LF, a lone CR is CR NUL.
    Netascii,
    /// Bytes as they are (also spelled "binary" by some old clients).
    Octet,
    /// The obsolete mail mode; the engine refuses it.
    Mail,
}

impl Mode {
    /// The mode's name as RFC 1350 spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Netascii => "netascii",
            Mode::Octet => "octet",
            Mode::Mail => "mail",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A read or write request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPacket<'a> {
    /// The file name as the client sent it.
    pub filename: &'a str,
    /// The transfer mode.
    pub mode: Mode,
    /// Options (RFC 2347) in the order sent, names as sent (compare them
    /// case-insensitively).
    pub options: Vec<(&'a str, &'a str)>,
}

/// A decoded TFTP packet, borrowing from the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// Read request.
    Rrq(RequestPacket<'a>),
    /// Write request.
    Wrq(RequestPacket<'a>),
    /// A block of data.
    Data {
        /// Block number as on the wire.
        block: u16,
        /// The payload, 0..=blksize bytes.
        data: &'a [u8],
    },
    /// Acknowledgement of a block (0 acknowledges a WRQ or an OACK).
    Ack {
        /// Block number as on the wire.
        block: u16,
    },
    /// An error; ends the transfer.
    Error {
        /// The code as sent (clients send codes outside 0..=8 too).
        code: u16,
        /// The message, lossily decoded as UTF-8.
        message: Cow<'a, str>,
    },
    /// Option acknowledgement (RFC 2347).
    Oack {
        /// Acknowledged options.
        options: Vec<(&'a str, &'a str)>,
    },
}

/// Why a datagram is not a valid TFTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketError {
    /// Fewer bytes than the packet's fixed part needs.
    TooShort,
    /// The opcode is not 1..=6.
    UnknownOpcode(u16),
    /// A string field (named) is not terminated by a NUL byte.
    Unterminated(&'static str),
    /// A string field (named) is not valid UTF-8.
    NotUtf8(&'static str),
    /// The file name is empty.
    EmptyFilename,
    /// The mode is not netascii, octet or mail.
    UnknownMode(String),
    /// An option name without a value.
    OptionWithoutValue(String),
    /// A DATA packet longer than the largest block (65464 bytes).
    DataTooLong(usize),
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("malformed packet: ")?;
        match self {
            PacketError::TooShort => {
                f.write_str("the datagram is shorter than its packet type requires")
            }
            PacketError::UnknownOpcode(op) => {
                write!(f, "the opcode {op} is unknown (TFTP opcodes are 1 to 6)")
            }
            PacketError::Unterminated(field) => {
                write!(f, "the {field} is not terminated by a NUL byte")
            }
            PacketError::NotUtf8(field) => write!(f, "the {field} is not valid UTF-8"),
            PacketError::EmptyFilename => f.write_str("the file name is empty"),
            PacketError::UnknownMode(mode) => {
                write!(
                    f,
                    "the mode must be \"octet\" or \"netascii\", not {mode:?}"
                )
            }
            PacketError::OptionWithoutValue(name) => {
                write!(f, "the option {name:?} has no value")
            }
            PacketError::DataTooLong(len) => write!(
                f,
                "the DATA block of {len} bytes is longer than the largest block of {MAX_BLKSIZE} bytes"
            ),
        }
    }
}

impl std::error::Error for PacketError {}

/// Splits `buf` at its first NUL: the string before it (checked as UTF-8) and
/// the rest after it.
fn take_str<'a>(buf: &'a [u8], field: &'static str) -> Result<(&'a str, &'a [u8]), PacketError> {
    let nul = buf
        .iter()
        .position(|&b| b == 0)
        .ok_or(PacketError::Unterminated(field))?;
    let s = std::str::from_utf8(&buf[..nul]).map_err(|_| PacketError::NotUtf8(field))?;
    Ok((s, &buf[nul + 1..]))
}

/// Parses `name NUL value NUL` pairs (RFC 2347) up to the end of `buf`.
/// A single trailing NUL (padding some clients add) is tolerated.
fn parse_options(mut buf: &[u8]) -> Result<Vec<(&str, &str)>, PacketError> {
    let mut options = Vec::new();
    while !buf.is_empty() {
        if buf == [0] {
            // Padding: one extra NUL after the last string.
            break;
        }
        let Some(nul) = buf.iter().position(|&b| b == 0) else {
            // Trailing bytes without a NUL: a name whose value never came.
            return Err(PacketError::OptionWithoutValue(
                String::from_utf8_lossy(buf).into_owned(),
            ));
        };
        let name =
            std::str::from_utf8(&buf[..nul]).map_err(|_| PacketError::NotUtf8("option name"))?;
        let rest = &buf[nul + 1..];
        if rest.is_empty() {
            return Err(PacketError::OptionWithoutValue(name.to_owned()));
        }
        let (value, rest) = take_str(rest, "option value")?;
        options.push((name, value));
        buf = rest;
    }
    Ok(options)
}

/// Mode names are case-insensitive (RFC 1350 §5); "binary" is an old alias of
/// "octet".
fn parse_mode(mode: &str) -> Result<Mode, PacketError> {
    if mode.eq_ignore_ascii_case("octet") || mode.eq_ignore_ascii_case("binary") {
        Ok(Mode::Octet)
    } else if mode.eq_ignore_ascii_case("netascii") {
        Ok(Mode::Netascii)
    } else if mode.eq_ignore_ascii_case("mail") {
        Ok(Mode::Mail)
    } else {
        Err(PacketError::UnknownMode(mode.to_owned()))
    }
}

fn parse_request(buf: &[u8]) -> Result<RequestPacket<'_>, PacketError> {
    // RFC 1350 §5: | opcode | filename | 0 | mode | 0 |, RFC 2347 adds
    // | opt1 | 0 | value1 | 0 | ...
    let (filename, rest) = take_str(buf, "file name")?;
    if filename.is_empty() {
        return Err(PacketError::EmptyFilename);
    }
    let (mode, rest) = take_str(rest, "mode")?;
    let mode = parse_mode(mode)?;
    let options = parse_options(rest)?;
    Ok(RequestPacket {
        filename,
        mode,
        options,
    })
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

fn put_request(out: &mut Vec<u8>, op: u16, req: &RequestPacket<'_>) {
    put_u16(out, op);
    put_str(out, req.filename);
    put_str(out, req.mode.as_str());
    for (name, value) in &req.options {
        put_str(out, name);
        put_str(out, value);
    }
}

impl<'a> Packet<'a> {
    /// Decodes one datagram.
    ///
    /// # Errors
    ///
    /// [`PacketError`] when the bytes are not a well-formed packet.
    pub fn decode(buf: &'a [u8]) -> Result<Packet<'a>, PacketError> {
        if buf.len() < 2 {
            return Err(PacketError::TooShort);
        }
        let op = u16::from_be_bytes([buf[0], buf[1]]);
        let body = &buf[2..];
        match op {
            opcode::RRQ => Ok(Packet::Rrq(parse_request(body)?)),
            opcode::WRQ => Ok(Packet::Wrq(parse_request(body)?)),
            opcode::DATA => {
                // RFC 1350 §5: | 03 | block # | data (0..=blksize) |
                if body.len() < 2 {
                    return Err(PacketError::TooShort);
                }
                let data = &body[2..];
                // RFC 2348: blksize 8..=65464, so no block is longer.
                if data.len() > usize::from(MAX_BLKSIZE) {
                    return Err(PacketError::DataTooLong(data.len()));
                }
                Ok(Packet::Data {
                    block: u16::from_be_bytes([body[0], body[1]]),
                    data,
                })
            }
            opcode::ACK => {
                // RFC 1350 §5: | 04 | block # |; trailing bytes are ignored.
                if body.len() < 2 {
                    return Err(PacketError::TooShort);
                }
                Ok(Packet::Ack {
                    block: u16::from_be_bytes([body[0], body[1]]),
                })
            }
            opcode::ERROR => {
                // RFC 1350 §5: | 05 | code | message | 0 |; a missing final
                // NUL is tolerated (some clients forget it).
                if body.len() < 2 {
                    return Err(PacketError::TooShort);
                }
                let code = u16::from_be_bytes([body[0], body[1]]);
                let msg = &body[2..];
                let end = msg.iter().position(|&b| b == 0).unwrap_or(msg.len());
                Ok(Packet::Error {
                    code,
                    message: String::from_utf8_lossy(&msg[..end]),
                })
            }
            opcode::OACK => Ok(Packet::Oack {
                // RFC 2347: | 06 | opt1 | 0 | value1 | 0 | ...
                options: parse_options(body)?,
            }),
            other => Err(PacketError::UnknownOpcode(other)),
        }
    }

    /// Appends the encoded packet to `out` (which is not cleared).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Packet::Rrq(req) => put_request(out, opcode::RRQ, req),
            Packet::Wrq(req) => put_request(out, opcode::WRQ, req),
            Packet::Data { block, data } => {
                put_u16(out, opcode::DATA);
                put_u16(out, *block);
                out.extend_from_slice(data);
            }
            Packet::Ack { block } => {
                put_u16(out, opcode::ACK);
                put_u16(out, *block);
            }
            Packet::Error { code, message } => {
                put_u16(out, opcode::ERROR);
                put_u16(out, *code);
                put_str(out, message);
            }
            Packet::Oack { options } => {
                put_u16(out, opcode::OACK);
                for (name, value) in options {
                    put_str(out, name);
                    put_str(out, value);
                }
            }
        }
    }
}

/// Clears `out` and writes the 4-byte header of DATA block `block`; the caller
/// appends the payload. No allocation once `out` has grown.
pub fn encode_data_header(out: &mut Vec<u8>, block: u16) {
    out.clear();
    put_u16(out, opcode::DATA);
    put_u16(out, block);
}

/// Clears `out` and writes ACK `block`.
pub fn encode_ack(out: &mut Vec<u8>, block: u16) {
    out.clear();
    append_ack(out, block);
}

/// Appends ACK `block` to `out` (which is not cleared).
pub(crate) fn append_ack(out: &mut Vec<u8>, block: u16) {
    put_u16(out, opcode::ACK);
    put_u16(out, block);
}

/// Clears `out` and writes an ERROR packet.
pub fn encode_error(out: &mut Vec<u8>, code: ErrorCode, message: &str) {
    out.clear();
    append_error(out, code, message);
}

/// Appends an ERROR packet to `out` (which is not cleared).
pub(crate) fn append_error(out: &mut Vec<u8>, code: ErrorCode, message: &str) {
    put_u16(out, opcode::ERROR);
    put_u16(out, code.as_u16());
    // The message is a NUL-terminated string: an embedded NUL would cut it.
    let msg = message.split('\0').next().unwrap_or("");
    put_str(out, msg);
}

/// Clears `out` and writes an OACK with the given options.
pub fn encode_oack<K: AsRef<str>, V: AsRef<str>>(out: &mut Vec<u8>, options: &[(K, V)]) {
    out.clear();
    put_u16(out, opcode::OACK);
    for (name, value) in options {
        put_str(out, name.as_ref());
        put_str(out, value.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(filename: &'a str, mode: Mode, options: &[(&'a str, &'a str)]) -> RequestPacket<'a> {
        RequestPacket {
            filename,
            mode,
            options: options.to_vec(),
        }
    }

    #[test]
    fn round_trip_table() {
        let big = vec![0xa5u8; usize::from(MAX_BLKSIZE)];
        let cases: Vec<(Packet<'_>, Vec<u8>)> = vec![
            (
                Packet::Rrq(req("boot.img", Mode::Octet, &[])),
                b"\x00\x01boot.img\x00octet\x00".to_vec(),
            ),
            (
                Packet::Wrq(req("up/load.txt", Mode::Netascii, &[])),
                b"\x00\x02up/load.txt\x00netascii\x00".to_vec(),
            ),
            (
                Packet::Rrq(req(
                    "pxelinux.0",
                    Mode::Octet,
                    &[("blksize", "1468"), ("tsize", "0")],
                )),
                b"\x00\x01pxelinux.0\x00octet\x00blksize\x001468\x00tsize\x000\x00".to_vec(),
            ),
            (
                Packet::Wrq(req("m", Mode::Mail, &[("x", "")])),
                b"\x00\x02m\x00mail\x00x\x00\x00".to_vec(),
            ),
            (
                Packet::Data {
                    block: 0x1234,
                    data: b"hello",
                },
                b"\x00\x03\x12\x34hello".to_vec(),
            ),
            (
                Packet::Data {
                    block: 65535,
                    data: b"",
                },
                b"\x00\x03\xff\xff".to_vec(),
            ),
            (Packet::Ack { block: 0 }, b"\x00\x04\x00\x00".to_vec()),
            (Packet::Ack { block: 513 }, b"\x00\x04\x02\x01".to_vec()),
            (
                Packet::Error {
                    code: 1,
                    message: Cow::Borrowed("not here"),
                },
                b"\x00\x05\x00\x01not here\x00".to_vec(),
            ),
            (
                Packet::Error {
                    code: 99,
                    message: Cow::Borrowed(""),
                },
                b"\x00\x05\x00\x63\x00".to_vec(),
            ),
            (
                Packet::Oack {
                    options: vec![("blksize", "1024"), ("windowsize", "4")],
                },
                b"\x00\x06blksize\x001024\x00windowsize\x004\x00".to_vec(),
            ),
            (Packet::Oack { options: vec![] }, b"\x00\x06".to_vec()),
        ];
        for (packet, wire) in &cases {
            let mut out = Vec::new();
            packet.encode(&mut out);
            assert_eq!(&out, wire, "encode {packet:?}");
            assert_eq!(&Packet::decode(wire).unwrap(), packet, "decode {wire:?}");
        }
        // The largest block round-trips too.
        let mut out = Vec::new();
        Packet::Data {
            block: 1,
            data: &big,
        }
        .encode(&mut out);
        assert_eq!(
            Packet::decode(&out).unwrap(),
            Packet::Data {
                block: 1,
                data: &big
            }
        );
    }

    #[test]
    fn modes_are_case_insensitive_and_binary_is_octet() {
        let cases = [
            ("octet", Mode::Octet),
            ("OCTET", Mode::Octet),
            ("Binary", Mode::Octet),
            ("binary", Mode::Octet),
            ("NetAscii", Mode::Netascii),
            ("netascii", Mode::Netascii),
            ("MAIL", Mode::Mail),
        ];
        for (name, mode) in cases {
            let wire = [b"\x00\x01f\x00".as_slice(), name.as_bytes(), b"\x00"].concat();
            match Packet::decode(&wire).unwrap() {
                Packet::Rrq(r) => assert_eq!(r.mode, mode, "{name}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn options_keep_order_and_names_as_sent() {
        let wire = b"\x00\x01f\x00octet\x00TSIZE\x000\x00BlkSize\x00512\x00";
        let Packet::Rrq(r) = Packet::decode(wire).unwrap() else {
            panic!()
        };
        assert_eq!(r.options, vec![("TSIZE", "0"), ("BlkSize", "512")]);
    }

    #[test]
    fn single_trailing_nul_padding_is_tolerated() {
        let cases: [&[u8]; 2] = [
            b"\x00\x01f\x00octet\x00\x00",
            b"\x00\x02f\x00octet\x00blksize\x00512\x00\x00",
        ];
        for wire in cases {
            let p = Packet::decode(wire).unwrap();
            let (Packet::Rrq(r) | Packet::Wrq(r)) = p else {
                panic!()
            };
            assert_eq!(r.filename, "f");
            assert!(r.options.len() <= 1);
        }
    }

    #[test]
    fn malformed_table() {
        let cases: &[(&[u8], PacketError)] = &[
            (b"", PacketError::TooShort),
            (b"\x00", PacketError::TooShort),
            (b"\x00\x03\x00", PacketError::TooShort),
            (b"\x00\x04\x01", PacketError::TooShort),
            (b"\x00\x05\x00", PacketError::TooShort),
            (b"\x00\x00", PacketError::UnknownOpcode(0)),
            (b"\x00\x07abc", PacketError::UnknownOpcode(7)),
            (b"\x01\x01", PacketError::UnknownOpcode(257)),
            (b"\x00\x01", PacketError::Unterminated("file name")),
            (b"\x00\x01file", PacketError::Unterminated("file name")),
            (b"\x00\x01file\x00octet", PacketError::Unterminated("mode")),
            (b"\x00\x02file\x00", PacketError::Unterminated("mode")),
            (b"\x00\x01\x00octet\x00", PacketError::EmptyFilename),
            (
                b"\x00\x01f\xff\x00octet\x00",
                PacketError::NotUtf8("file name"),
            ),
            (b"\x00\x01f\x00oct\xc3\x00", PacketError::NotUtf8("mode")),
            (
                b"\x00\x01f\x00octet\x00bl\xff\x00512\x00",
                PacketError::NotUtf8("option name"),
            ),
            (
                b"\x00\x01f\x00octet\x00blksize\x005\xff\x00",
                PacketError::NotUtf8("option value"),
            ),
            (
                b"\x00\x01f\x00foo\x00",
                PacketError::UnknownMode("foo".into()),
            ),
            (
                b"\x00\x01f\x00\x00",
                PacketError::UnknownMode(String::new()),
            ),
            (
                b"\x00\x01f\x00octet\x00blksize\x00",
                PacketError::OptionWithoutValue("blksize".into()),
            ),
            (
                b"\x00\x01f\x00octet\x00blksize",
                PacketError::OptionWithoutValue("blksize".into()),
            ),
            (
                b"\x00\x01f\x00octet\x00garbage",
                PacketError::OptionWithoutValue("garbage".into()),
            ),
            (
                b"\x00\x01f\x00octet\x00blksize\x00512",
                PacketError::Unterminated("option value"),
            ),
            (
                b"\x00\x06tsize\x00",
                PacketError::OptionWithoutValue("tsize".into()),
            ),
        ];
        for (wire, err) in cases {
            assert_eq!(Packet::decode(wire).as_ref(), Err(err), "{wire:?}");
        }
        let mut long = vec![0, 3, 0, 1];
        long.resize(4 + usize::from(MAX_BLKSIZE) + 1, 7);
        assert_eq!(
            Packet::decode(&long),
            Err(PacketError::DataTooLong(usize::from(MAX_BLKSIZE) + 1))
        );
    }

    #[test]
    fn error_without_final_nul_is_accepted() {
        let p = Packet::decode(b"\x00\x05\x00\x08no options").unwrap();
        assert_eq!(
            p,
            Packet::Error {
                code: 8,
                message: Cow::Borrowed("no options")
            }
        );
        // Invalid UTF-8 in the message is replaced, not refused.
        let Packet::Error { message, .. } = Packet::decode(b"\x00\x05\x00\x00a\xffb\x00").unwrap()
        else {
            panic!()
        };
        assert_eq!(message, "a\u{fffd}b");
    }

    #[test]
    fn display_is_one_sentence_per_variant() {
        let cases = [
            (PacketError::TooShort, "shorter"),
            (PacketError::UnknownOpcode(9), "opcode 9"),
            (
                PacketError::Unterminated("mode"),
                "the mode is not terminated",
            ),
            (
                PacketError::NotUtf8("file name"),
                "file name is not valid UTF-8",
            ),
            (PacketError::EmptyFilename, "file name is empty"),
            (
                PacketError::UnknownMode("foo".into()),
                r#"the mode must be "octet" or "netascii", not "foo""#,
            ),
            (
                PacketError::OptionWithoutValue("blksize".into()),
                r#"option "blksize" has no value"#,
            ),
            (PacketError::DataTooLong(70000), "70000 bytes"),
        ];
        for (err, part) in cases {
            let s = err.to_string();
            assert!(s.starts_with("malformed packet: "), "{s}");
            assert!(s.contains(part), "{s} lacks {part}");
            assert!(!s.contains('\n'));
        }
    }

    #[test]
    fn encode_helpers_clear_and_do_not_reallocate() {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(b"old junk");
        let ptr = out.as_ptr();
        encode_ack(&mut out, 7);
        assert_eq!(out, b"\x00\x04\x00\x07");
        encode_data_header(&mut out, 0xfffe);
        assert_eq!(out, b"\x00\x03\xff\xfe");
        encode_error(&mut out, ErrorCode::DiskFull, "full");
        assert_eq!(out, b"\x00\x05\x00\x03full\x00");
        encode_error(&mut out, ErrorCode::Undefined, "a\0b");
        assert_eq!(out, b"\x00\x05\x00\x00a\x00");
        encode_oack(&mut out, &[("blksize", "1024".to_string())]);
        assert_eq!(out, b"\x00\x06blksize\x001024\x00");
        encode_oack::<&str, &str>(&mut out, &[]);
        assert_eq!(out, b"\x00\x06");
        assert_eq!(out.as_ptr(), ptr, "no reallocation");
    }
}
