//! Option negotiation: blksize (RFC 2348), timeout and tsize (RFC 2349),
//! windowsize (RFC 7440), on the frame of RFC 2347.

use std::time::Duration;

use super::TransferParams;
use super::packet::MAX_BLKSIZE;

/// What the server accepts. Values a client asks for above a maximum are
/// lowered to it; options switched off are left out of the OACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionLimits {
    /// Largest blksize granted (8..=65464).
    pub max_blksize: u16,
    /// Largest windowsize granted (1..=65535).
    pub max_windowsize: u16,
    /// Answer `blksize`.
    pub blksize: bool,
    /// Answer `windowsize`.
    pub windowsize: bool,
    /// Answer `timeout` and `utimeout`.
    pub timeout: bool,
    /// Answer `tsize`.
    pub tsize: bool,
}

impl Default for OptionLimits {
    fn default() -> Self {
        Self {
            max_blksize: super::packet::MAX_BLKSIZE,
            max_windowsize: 64,
            blksize: true,
            windowsize: true,
            timeout: true,
            tsize: true,
        }
    }
}

/// The options the engine knows, to remember the order a client sent them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OptionKind {
    Blksize,
    Windowsize,
    Timeout,
    Utimeout,
    Tsize,
}

impl OptionKind {
    const ALL: [OptionKind; 5] = [
        OptionKind::Blksize,
        OptionKind::Windowsize,
        OptionKind::Timeout,
        OptionKind::Utimeout,
        OptionKind::Tsize,
    ];

    /// The name as it goes into the OACK: lowercase.
    fn name(self) -> &'static str {
        match self {
            OptionKind::Blksize => "blksize",
            OptionKind::Windowsize => "windowsize",
            OptionKind::Timeout => "timeout",
            OptionKind::Utimeout => "utimeout",
            OptionKind::Tsize => "tsize",
        }
    }

    /// RFC 2347: option names are case-insensitive.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name))
    }
}

/// The options a client asked for, parsed; invalid values are dropped.
#[derive(Debug, Clone, Default, Eq)]
pub struct RequestedOptions {
    /// `blksize`, if valid (8..=65464; larger values are kept as 65464... see `parse`).
    pub blksize: Option<u16>,
    /// `windowsize`, if valid (1..=65535).
    pub windowsize: Option<u16>,
    /// `timeout` in seconds (1..=255), if valid.
    pub timeout: Option<u8>,
    /// `utimeout` in microseconds (as tftp-hpa: 10_000..=255_000_000), if valid.
    pub utimeout: Option<u32>,
    /// `tsize`, if a valid number (0 in a read request).
    pub tsize: Option<u64>,
    /// The order in which the valid options came, so that the OACK follows
    /// it. Options set without `parse` (struct literals) come after these, in
    /// a fixed order. Not part of equality.
    pub(crate) order: [Option<OptionKind>; 5],
}

/// Equality compares the options, not the order they came in.
impl PartialEq for RequestedOptions {
    fn eq(&self, other: &Self) -> bool {
        self.blksize == other.blksize
            && self.windowsize == other.windowsize
            && self.timeout == other.timeout
            && self.utimeout == other.utimeout
            && self.tsize == other.tsize
    }
}

/// A decimal number: ASCII digits only (no sign, no spaces). `Err(true)` when
/// it has only digits but does not fit a `u64`.
fn parse_number(value: &str) -> Result<u64, bool> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(false);
    }
    value.parse::<u64>().map_err(|_| true)
}

impl RequestedOptions {
    /// Parses the options of a request. Names are case-insensitive; unknown
    /// options, duplicates after the first, and values that are not numbers or
    /// out of range are ignored (RFC 2347: an option the server does not
    /// accept is left out of the OACK). A blksize above 65464 is taken as
    /// 65464 (RFC 2348 allows the server to answer a smaller value).
    pub fn parse(options: &[(&str, &str)]) -> Self {
        let mut parsed = Self::default();
        let mut seen = [false; 5];
        let mut len = 0;
        for &(name, value) in options {
            let Some(kind) = OptionKind::from_name(name) else {
                continue; // RFC 2347: unknown options are ignored.
            };
            // The first occurrence of a name decides, valid or not.
            let idx = kind as usize;
            if std::mem::replace(&mut seen[idx], true) {
                continue;
            }
            let number = parse_number(value);
            let valid = match kind {
                // RFC 2348: blksize 8..=65464; a larger value is answered
                // with a smaller one, so it is taken as 65464.
                OptionKind::Blksize => match number {
                    Ok(n) if n < 8 => false,
                    Ok(n) => {
                        parsed.blksize = Some(n.min(u64::from(MAX_BLKSIZE)) as u16);
                        true
                    }
                    Err(true) => {
                        parsed.blksize = Some(MAX_BLKSIZE);
                        true
                    }
                    Err(false) => false,
                },
                // RFC 7440: windowsize 1..=65535.
                OptionKind::Windowsize => match number {
                    Ok(n @ 1..=65535) => {
                        parsed.windowsize = Some(n as u16);
                        true
                    }
                    _ => false,
                },
                // RFC 2349: timeout 1..=255 seconds.
                OptionKind::Timeout => match number {
                    Ok(n @ 1..=255) => {
                        parsed.timeout = Some(n as u8);
                        true
                    }
                    _ => false,
                },
                // tftp-hpa's utimeout: microseconds, 10 ms..=255 s.
                OptionKind::Utimeout => match number {
                    Ok(n @ 10_000..=255_000_000) => {
                        parsed.utimeout = Some(n as u32);
                        true
                    }
                    _ => false,
                },
                // RFC 2349: tsize is any size (0 in a read request).
                OptionKind::Tsize => match number {
                    Ok(n) => {
                        parsed.tsize = Some(n);
                        true
                    }
                    _ => false,
                },
            };
            if valid {
                parsed.order[len] = Some(kind);
                len += 1;
            }
        }
        parsed
    }

    /// The requested options in the order the client sent them, then any set
    /// otherwise.
    fn in_order(&self) -> impl Iterator<Item = OptionKind> + '_ {
        let listed = self.order.iter().flatten().copied();
        let rest = OptionKind::ALL
            .into_iter()
            .filter(|k| !self.order.contains(&Some(*k)));
        listed.chain(rest).filter(|k| match k {
            OptionKind::Blksize => self.blksize.is_some(),
            OptionKind::Windowsize => self.windowsize.is_some(),
            OptionKind::Timeout => self.timeout.is_some(),
            OptionKind::Utimeout => self.utimeout.is_some(),
            OptionKind::Tsize => self.tsize.is_some(),
        })
    }
}

/// The result of negotiation: the parameters of the transfer and the OACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// blksize and windowsize of the transfer.
    pub params: TransferParams,
    /// The retransmission timeout the client asked for and was granted.
    pub timeout: Option<Duration>,
    /// The size announced in the OACK (read) or by the client (write).
    pub tsize: Option<u64>,
    /// The OACK to send, in the order the client asked; empty means send no
    /// OACK (RFC 2347: a request without accepted options is answered as in
    /// RFC 1350).
    pub oack: Vec<(&'static str, String)>,
}

impl Negotiated {
    /// Negotiates a request. `body_size` is the size of the file on a read,
    /// when it is known; on a write it is ignored and the client's tsize is
    /// echoed back (RFC 2349).
    ///
    /// - blksize: granted as `min(requested, max_blksize)`.
    /// - windowsize: `min(requested, max_windowsize)`.
    /// - timeout / utimeout: granted as asked, echoed in the same option.
    /// - tsize: on a read, answered with `body_size` when known, left out
    ///   otherwise; on a write, echoed.
    pub fn negotiate(
        requested: &RequestedOptions,
        limits: &OptionLimits,
        is_write: bool,
        body_size: Option<u64>,
    ) -> Self {
        let mut params = TransferParams::default();
        let mut timeout = None;
        let mut utimeout = None;
        let mut tsize = None;
        let mut oack = Vec::new();
        // The fields are public, so a request may be built by hand with
        // values `parse` drops: those are not granted either (RFC 2347: an
        // option the server does not accept is left out of the OACK), since
        // a server may answer a smaller blksize or windowsize but never a
        // larger one, and a timeout of 0 would retransmit in a busy loop.
        for kind in requested.in_order() {
            let granted: Option<u64> = match kind {
                // RFC 2348: blksize 8..=65464; the server may answer a
                // smaller one (a request above 65464 is taken as 65464).
                OptionKind::Blksize if limits.blksize => {
                    requested.blksize.filter(|&b| b >= 8).map(|b| {
                        let b = b.min(limits.max_blksize).clamp(8, MAX_BLKSIZE);
                        params.blksize = b;
                        u64::from(b)
                    })
                }
                // RFC 7440: windowsize 1..=65535; the server may answer a
                // smaller one.
                OptionKind::Windowsize if limits.windowsize => {
                    requested.windowsize.filter(|&w| w >= 1).map(|w| {
                        let w = w.min(limits.max_windowsize).max(1);
                        params.windowsize = w;
                        u64::from(w)
                    })
                }
                // RFC 2349: timeout 1..=255 s; the server answers the
                // timeout it accepts, as asked.
                OptionKind::Timeout if limits.timeout => {
                    requested.timeout.filter(|&t| t >= 1).map(|t| {
                        timeout = Some(Duration::from_secs(u64::from(t)));
                        u64::from(t)
                    })
                }
                // tftp-hpa: utimeout 10_000..=255_000_000 µs.
                OptionKind::Utimeout if limits.timeout => requested
                    .utimeout
                    .filter(|u| (10_000..=255_000_000).contains(u))
                    .map(|u| {
                        utimeout = Some(Duration::from_micros(u64::from(u)));
                        u64::from(u)
                    }),
                // RFC 2349: on a write the client's size is echoed; on a read
                // the server answers the size, if it knows it.
                OptionKind::Tsize if limits.tsize => {
                    let size = if is_write { requested.tsize } else { body_size };
                    tsize = size;
                    size
                }
                _ => None,
            };
            if let Some(value) = granted {
                oack.push((kind.name(), value.to_string()));
            }
        }
        Negotiated {
            params,
            // The finer utimeout wins when a client sends both.
            timeout: utimeout.or(timeout),
            tsize,
            oack,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(opts: &[(&str, &str)]) -> RequestedOptions {
        RequestedOptions::parse(opts)
    }

    #[test]
    fn parse_table() {
        let none = RequestedOptions::default();
        let cases: Vec<(&[(&str, &str)], RequestedOptions)> = vec![
            (&[], none.clone()),
            // blksize: RFC 2348 8..=65464, larger taken as 65464.
            (
                &[("blksize", "1468")],
                RequestedOptions {
                    blksize: Some(1468),
                    ..none.clone()
                },
            ),
            (
                &[("blksize", "8")],
                RequestedOptions {
                    blksize: Some(8),
                    ..none.clone()
                },
            ),
            (&[("blksize", "7")], none.clone()),
            (&[("blksize", "0")], none.clone()),
            (
                &[("blksize", "65464")],
                RequestedOptions {
                    blksize: Some(65464),
                    ..none.clone()
                },
            ),
            (
                &[("blksize", "65465")],
                RequestedOptions {
                    blksize: Some(65464),
                    ..none.clone()
                },
            ),
            (
                &[("blksize", "99999999999999999999999")],
                RequestedOptions {
                    blksize: Some(65464),
                    ..none.clone()
                },
            ),
            (&[("blksize", "abc")], none.clone()),
            (&[("blksize", "")], none.clone()),
            (&[("blksize", "-512")], none.clone()),
            (&[("blksize", "+512")], none.clone()),
            (&[("blksize", " 512")], none.clone()),
            (&[("blksize", "1e3")], none.clone()),
            // windowsize: RFC 7440 1..=65535.
            (
                &[("windowsize", "1")],
                RequestedOptions {
                    windowsize: Some(1),
                    ..none.clone()
                },
            ),
            (
                &[("windowsize", "65535")],
                RequestedOptions {
                    windowsize: Some(65535),
                    ..none.clone()
                },
            ),
            (&[("windowsize", "0")], none.clone()),
            (&[("windowsize", "65536")], none.clone()),
            // timeout: RFC 2349 1..=255 seconds.
            (
                &[("timeout", "1")],
                RequestedOptions {
                    timeout: Some(1),
                    ..none.clone()
                },
            ),
            (
                &[("timeout", "255")],
                RequestedOptions {
                    timeout: Some(255),
                    ..none.clone()
                },
            ),
            (&[("timeout", "0")], none.clone()),
            (&[("timeout", "256")], none.clone()),
            // utimeout (tftp-hpa): 10_000..=255_000_000 µs.
            (
                &[("utimeout", "10000")],
                RequestedOptions {
                    utimeout: Some(10_000),
                    ..none.clone()
                },
            ),
            (
                &[("utimeout", "255000000")],
                RequestedOptions {
                    utimeout: Some(255_000_000),
                    ..none.clone()
                },
            ),
            (&[("utimeout", "9999")], none.clone()),
            (&[("utimeout", "255000001")], none.clone()),
            // tsize: any u64.
            (
                &[("tsize", "0")],
                RequestedOptions {
                    tsize: Some(0),
                    ..none.clone()
                },
            ),
            (
                &[("tsize", "18446744073709551615")],
                RequestedOptions {
                    tsize: Some(u64::MAX),
                    ..none.clone()
                },
            ),
            (&[("tsize", "18446744073709551616")], none.clone()),
            (&[("tsize", "x")], none.clone()),
            // Names are case-insensitive; unknown options are ignored.
            (
                &[
                    ("BLKSIZE", "1024"),
                    ("WindowSize", "8"),
                    ("TSize", "0"),
                    ("multicast", ""),
                ],
                RequestedOptions {
                    blksize: Some(1024),
                    windowsize: Some(8),
                    tsize: Some(0),
                    ..none.clone()
                },
            ),
            // The first occurrence wins, even when a later one is valid.
            (
                &[("blksize", "1024"), ("BLKSIZE", "2048")],
                RequestedOptions {
                    blksize: Some(1024),
                    ..none.clone()
                },
            ),
            (&[("blksize", "junk"), ("blksize", "2048")], none.clone()),
        ];
        for (opts, expected) in cases {
            assert_eq!(parse(opts), expected, "{opts:?}");
        }
    }

    #[test]
    fn negotiate_defaults_without_options() {
        let n = Negotiated::negotiate(&parse(&[]), &OptionLimits::default(), false, Some(10));
        assert_eq!(
            n.params,
            TransferParams {
                blksize: 512,
                windowsize: 1
            }
        );
        assert!(n.oack.is_empty());
        assert_eq!(n.timeout, None);
        assert_eq!(n.tsize, None);
    }

    #[test]
    fn negotiate_follows_client_order_with_lowercase_names() {
        let req = parse(&[
            ("TSIZE", "0"),
            ("WindowSize", "4"),
            ("bogus", "1"),
            ("BlkSize", "1428"),
            ("Timeout", "3"),
        ]);
        let n = Negotiated::negotiate(&req, &OptionLimits::default(), false, Some(12345));
        assert_eq!(
            n.oack,
            vec![
                ("tsize", "12345".to_string()),
                ("windowsize", "4".to_string()),
                ("blksize", "1428".to_string()),
                ("timeout", "3".to_string()),
            ]
        );
        assert_eq!(
            n.params,
            TransferParams {
                blksize: 1428,
                windowsize: 4
            }
        );
        assert_eq!(n.timeout, Some(Duration::from_secs(3)));
        assert_eq!(n.tsize, Some(12345));
    }

    #[test]
    fn negotiate_clamps_to_limits() {
        let limits = OptionLimits {
            max_blksize: 1024,
            max_windowsize: 16,
            ..OptionLimits::default()
        };
        let cases = [
            (("4096", "64"), (1024, 16)),
            (("512", "8"), (512, 8)),
            (("1024", "16"), (1024, 16)),
            (("70000", "65535"), (1024, 16)),
        ];
        for ((b, w), (gb, gw)) in cases {
            let n = Negotiated::negotiate(
                &parse(&[("blksize", b), ("windowsize", w)]),
                &limits,
                false,
                None,
            );
            assert_eq!(
                n.params,
                TransferParams {
                    blksize: gb,
                    windowsize: gw
                }
            );
            assert_eq!(
                n.oack,
                vec![("blksize", gb.to_string()), ("windowsize", gw.to_string())]
            );
        }
        // Unlimited: a blksize above 65464 is granted as 65464.
        let n = Negotiated::negotiate(
            &parse(&[("blksize", "65535")]),
            &OptionLimits::default(),
            false,
            None,
        );
        assert_eq!(n.params.blksize, 65464);
        assert_eq!(n.oack, vec![("blksize", "65464".to_string())]);
    }

    #[test]
    fn disabled_options_are_left_out_and_not_applied() {
        let req = parse(&[
            ("blksize", "1024"),
            ("windowsize", "8"),
            ("timeout", "5"),
            ("utimeout", "50000"),
            ("tsize", "0"),
        ]);
        let all_off = OptionLimits {
            blksize: false,
            windowsize: false,
            timeout: false,
            tsize: false,
            ..OptionLimits::default()
        };
        let n = Negotiated::negotiate(&req, &all_off, false, Some(99));
        assert!(n.oack.is_empty());
        assert_eq!(n.params, TransferParams::default());
        assert_eq!(n.timeout, None);
        assert_eq!(n.tsize, None);

        let only_tsize = OptionLimits {
            tsize: true,
            ..all_off
        };
        let n = Negotiated::negotiate(&req, &only_tsize, false, Some(99));
        assert_eq!(n.oack, vec![("tsize", "99".to_string())]);
        assert_eq!(n.params, TransferParams::default());
    }

    #[test]
    fn timeout_and_utimeout() {
        let limits = OptionLimits::default();
        let n = Negotiated::negotiate(&parse(&[("timeout", "7")]), &limits, false, None);
        assert_eq!(n.timeout, Some(Duration::from_secs(7)));
        assert_eq!(n.oack, vec![("timeout", "7".to_string())]);

        let n = Negotiated::negotiate(&parse(&[("utimeout", "250000")]), &limits, true, None);
        assert_eq!(n.timeout, Some(Duration::from_millis(250)));
        assert_eq!(n.oack, vec![("utimeout", "250000".to_string())]);

        // Both: each is answered, the utimeout is used.
        let n = Negotiated::negotiate(
            &parse(&[("timeout", "2"), ("utimeout", "20000")]),
            &limits,
            false,
            None,
        );
        assert_eq!(n.timeout, Some(Duration::from_millis(20)));
        assert_eq!(
            n.oack,
            vec![
                ("timeout", "2".to_string()),
                ("utimeout", "20000".to_string())
            ]
        );
        // An invalid timeout is not answered (RFC 2349).
        let n = Negotiated::negotiate(&parse(&[("timeout", "0")]), &limits, false, None);
        assert!(n.oack.is_empty());
        assert_eq!(n.timeout, None);
    }

    #[test]
    fn tsize_on_read_and_write() {
        let limits = OptionLimits::default();
        // Read, size known: answered with the size (RFC 2349).
        let n = Negotiated::negotiate(&parse(&[("tsize", "0")]), &limits, false, Some(4096));
        assert_eq!(n.oack, vec![("tsize", "4096".to_string())]);
        assert_eq!(n.tsize, Some(4096));
        // Read, size unknown: left out.
        let n = Negotiated::negotiate(&parse(&[("tsize", "0")]), &limits, false, None);
        assert!(n.oack.is_empty());
        assert_eq!(n.tsize, None);
        // Read, not asked: not announced even when known.
        let n = Negotiated::negotiate(&parse(&[]), &limits, false, Some(4096));
        assert!(n.oack.is_empty());
        assert_eq!(n.tsize, None);
        // Write: echoed, body_size ignored.
        let n = Negotiated::negotiate(&parse(&[("tsize", "777")]), &limits, true, Some(1));
        assert_eq!(n.oack, vec![("tsize", "777".to_string())]);
        assert_eq!(n.tsize, Some(777));
        // Write, garbage value: ignored.
        let n = Negotiated::negotiate(&parse(&[("tsize", "lots")]), &limits, true, None);
        assert!(n.oack.is_empty());
        assert_eq!(n.tsize, None);
    }

    /// Found by the property tests (`proto/props.rs`): values outside the
    /// RFC ranges, set by hand on the public fields, were granted as they
    /// were (a timeout of 0 s, utimeout 5 µs) or raised (blksize 3 answered
    /// with 8, more than asked). They are now left out, as `parse` would.
    #[test]
    fn hand_built_values_out_of_range_are_not_granted() {
        let limits = OptionLimits::default();
        let cases = [
            RequestedOptions {
                blksize: Some(3),
                ..RequestedOptions::default()
            },
            RequestedOptions {
                windowsize: Some(0),
                ..RequestedOptions::default()
            },
            RequestedOptions {
                timeout: Some(0),
                ..RequestedOptions::default()
            },
            RequestedOptions {
                utimeout: Some(5),
                ..RequestedOptions::default()
            },
            RequestedOptions {
                utimeout: Some(255_000_001),
                ..RequestedOptions::default()
            },
        ];
        for req in cases {
            let n = Negotiated::negotiate(&req, &limits, false, None);
            assert!(n.oack.is_empty(), "{req:?}: {:?}", n.oack);
            assert_eq!(n.params, TransferParams::default(), "{req:?}");
            assert_eq!(n.timeout, None, "{req:?}");
        }
        // A blksize above 65464 is still taken as 65464, as parse does.
        let req = RequestedOptions {
            blksize: Some(65535),
            ..RequestedOptions::default()
        };
        let n = Negotiated::negotiate(&req, &limits, false, None);
        assert_eq!(n.oack, vec![("blksize", "65464".to_string())]);
    }

    #[test]
    fn literal_requested_options_negotiate_in_fixed_order() {
        let req = RequestedOptions {
            tsize: Some(0),
            blksize: Some(1024),
            ..RequestedOptions::default()
        };
        let n = Negotiated::negotiate(&req, &OptionLimits::default(), false, Some(5));
        assert_eq!(
            n.oack,
            vec![("blksize", "1024".to_string()), ("tsize", "5".to_string())]
        );
    }
}
