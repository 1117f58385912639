//! [`Traceparent`]: a W3C trace context appended to a requested file name,
//! as Tinkerbell's boot services do, so that a boot can be followed across
//! DHCP, TFTP and HTTP.

use std::fmt;

use super::{FromRequest, Request};

/// A W3C `traceparent` (Trace Context, level 1) found at the end of the
/// requested file name, after a `-`:
///
/// ```text
/// ipxe.efi-00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
/// ^^^^^^^^ ^^ ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ ^^^^^^^^^^^^^^^^ ^^
/// the file  version        trace id             parent id     flags
/// ```
///
/// Every transfer whose name carries one has its trace id on its `tracing`
/// span (`trace_id`) and its [`TransferEvent`](crate::TransferEvent)
/// (`traceparent`). A handler takes it as `Option<Traceparent>` (`None` when
/// the name has none). With
/// [`App::strip_traceparent`](crate::App::strip_traceparent), routes and
/// handlers see the name without it (`ipxe.efi`).
///
/// # Examples
///
/// ```
/// use emmer::{route_read, Traceparent};
///
/// #[route_read(r"ipxe\.efi")]
/// fn ipxe(trace: Option<Traceparent>) -> String {
///     match trace {
///         Some(t) => format!("#!ipxe\nset trace {}\n", t.trace_id()),
///         None => "#!ipxe\n".to_owned(),
///     }
/// }
///
/// let name = "ipxe.efi-00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
/// let (file, trace) = Traceparent::split_filename(name);
/// assert_eq!(file, "ipxe.efi");
/// let trace = trace.unwrap();
/// assert_eq!(trace.trace_id(), "0af7651916cd43dd8448eb211c80319c");
/// assert_eq!(trace.parent_id(), "b7ad6b7169203331");
/// assert!(trace.sampled());
/// assert_eq!(trace.to_string(), &name[9..]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Traceparent {
    /// `vv-tttt…-pppp…-ff`, lowercase, validated.
    text: String,
}

/// `00-` + 32 + `-` + 16 + `-` + 2.
const LEN: usize = 55;

impl Traceparent {
    /// Parses a `traceparent` value: version (not `ff`), a trace id of 32
    /// lowercase hex digits and a parent id of 16, neither all zeros, and
    /// the flags. A later version may append fields after another `-`;
    /// they are ignored, as the W3C rules say.
    pub fn parse(s: &str) -> Option<Self> {
        let head = s.get(..LEN)?;
        let rest = &s[LEN..];
        let parts: Vec<&str> = head.split('-').collect();
        let [version, trace, parent, flags] = parts[..] else {
            return None;
        };
        let hex = |p: &str, n: usize| {
            p.len() == n
                && p.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let zero = |p: &str| p.bytes().all(|b| b == b'0');
        let valid = hex(version, 2)
            && version != "ff"
            && hex(trace, 32)
            && !zero(trace)
            && hex(parent, 16)
            && !zero(parent)
            && hex(flags, 2)
            // Version 00 has exactly these fields.
            && (rest.is_empty() || (version != "00" && rest.starts_with('-')));
        valid.then(|| Self {
            text: head.to_owned(),
        })
    }

    /// Splits a file name into the name and the `traceparent` appended to
    /// it after a `-`, if there is one.
    pub fn split_filename(name: &str) -> (&str, Option<Self>) {
        let Some(at) = name.len().checked_sub(LEN + 1) else {
            return (name, None);
        };
        if !name.is_char_boundary(at) || name.as_bytes()[at] != b'-' {
            return (name, None);
        }
        match Self::parse(&name[at + 1..]) {
            Some(t) => (&name[..at], Some(t)),
            None => (name, None),
        }
    }

    /// The trace id: 32 hex digits.
    pub fn trace_id(&self) -> &str {
        &self.text[3..35]
    }

    /// The parent (span) id: 16 hex digits.
    pub fn parent_id(&self) -> &str {
        &self.text[36..52]
    }

    /// The trace flags.
    pub fn flags(&self) -> u8 {
        u8::from_str_radix(&self.text[53..55], 16).unwrap_or(0)
    }

    /// Whether the caller sampled the trace (flag bit 0).
    pub fn sampled(&self) -> bool {
        self.flags() & 1 == 1
    }
}

impl fmt::Display for Traceparent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The `traceparent` of the request's file name; `None` when it has none.
impl FromRequest for Option<Traceparent> {
    type Rejection = std::convert::Infallible;
    fn from_request(req: &Request) -> Result<Self, Self::Rejection> {
        Ok(req.traceparent().cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn valid_and_invalid_values() {
        assert!(Traceparent::parse(TP).is_some());
        let t = Traceparent::parse("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-x");
        assert_eq!(t.unwrap().flags(), 0, "a later version may add fields");
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",
            "00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01",
            "00-0af7651916cd43dd8448eb211c8031-9c-b7ad6b7169203331-01",
        ] {
            assert_eq!(Traceparent::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn split_off_a_file_name() {
        let name = format!("snp.efi-{TP}");
        let (file, t) = Traceparent::split_filename(&name);
        assert_eq!((file, t.unwrap().to_string().as_str()), ("snp.efi", TP));
        let bare = format!("-{TP}");
        let (file, t) = Traceparent::split_filename(&bare);
        assert_eq!((file, t.is_some()), ("", true));
        let glued = format!("x{TP}");
        for plain in ["snp.efi", TP, "a-b-c", "é", &glued] {
            assert_eq!(
                Traceparent::split_filename(plain),
                (plain, None),
                "{plain:?}"
            );
        }
    }
}
