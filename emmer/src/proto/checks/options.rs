//! `RequestedOptions::parse` and `Negotiated::negotiate` on any option list
//! and any limits: no panic; parsing keeps the first valid occurrence of
//! each option (RFC 2347); what is granted stays within the limits and the
//! RFC ranges and is never more than was asked (RFC 2348, 2349, 7440); the
//! OACK names each granted option once, as the client ordered them, with
//! the granted value, and round-trips through the packet codec.

use std::time::Duration;

use crate::proto::packet::{MAX_BLKSIZE, encode_oack};
use crate::proto::{Negotiated, OptionLimits, Packet, RequestedOptions};

/// The options the engine knows, as they go into an OACK.
const KNOWN: [&str; 5] = ["blksize", "windowsize", "timeout", "utimeout", "tsize"];

/// An option name in a request.
#[derive(Debug, Clone)]
#[cfg_attr(not(test), derive(arbitrary::Arbitrary))]
pub enum Name {
    /// One of the known names; bit `i` of `case` uppercases letter `i`.
    Known { which: u8, case: u16 },
    /// Anything else.
    Other(String),
}

/// An option value in a request.
#[derive(Debug, Clone)]
#[cfg_attr(not(test), derive(arbitrary::Arbitrary))]
pub enum Value {
    /// A decimal number.
    Number(u64),
    /// A number near a range boundary: `edge % 8` picks the boundary
    /// (7, 8, 65464, 65465, 255, 256, 10000, 255000000), `delta` moves it.
    Edge { edge: u8, delta: i8 },
    /// Any text (digits with signs, spaces, huge numbers, junk).
    Text(String),
}

/// Option values set directly on the parsed request, as a caller building
/// `RequestedOptions` by hand may (its fields are public).
#[derive(Debug, Clone)]
#[cfg_attr(not(test), derive(arbitrary::Arbitrary))]
pub struct Overrides {
    pub blksize: Option<Option<u16>>,
    pub windowsize: Option<Option<u16>>,
    pub timeout: Option<Option<u8>>,
    pub utimeout: Option<Option<u32>>,
    pub tsize: Option<Option<u64>>,
}

/// One negotiation.
#[derive(Debug, Clone)]
#[cfg_attr(not(test), derive(arbitrary::Arbitrary))]
pub struct Scenario {
    pub options: Vec<(Name, Value)>,
    pub max_blksize: u16,
    pub max_windowsize: u16,
    pub blksize: bool,
    pub windowsize: bool,
    pub timeout: bool,
    pub tsize: bool,
    pub is_write: bool,
    pub body_size: Option<u64>,
    pub overrides: Option<Overrides>,
}

fn name(n: &Name) -> String {
    match n {
        Name::Known { which, case } => KNOWN[usize::from(*which) % KNOWN.len()]
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if case >> (i % 16) & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect(),
        Name::Other(s) => s.clone(),
    }
}

fn value(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::Edge { edge, delta } => {
            let edges = [7i64, 8, 65464, 65465, 255, 256, 10_000, 255_000_000];
            let n = edges[usize::from(*edge) % edges.len()] + i64::from(*delta);
            n.to_string()
        }
        Value::Text(s) => s.clone(),
    }
}

/// The value of an option the way `parse` must read it: `Ok(n)` for ASCII
/// digits that fit a u64, `Err(true)` for digits that do not, `Err(false)`
/// otherwise.
fn number(v: &str) -> Result<u64, bool> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(false);
    }
    v.parse().map_err(|_| true)
}

/// What `parse` must make of the first occurrence of each option: the
/// reference, written from the RFCs, and the order of the valid ones.
fn reference(pairs: &[(String, String)]) -> (RequestedOptions, Vec<&'static str>) {
    let mut r = RequestedOptions::default();
    let mut order = Vec::new();
    for known in KNOWN {
        let Some((_, v)) = pairs.iter().find(|(n, _)| n.eq_ignore_ascii_case(known)) else {
            continue;
        };
        let n = number(v);
        let valid = match known {
            // RFC 2348: 8..=65464; more is answered with 65464.
            "blksize" => {
                r.blksize = match n {
                    Ok(n) if n >= 8 => Some(n.min(u64::from(MAX_BLKSIZE)) as u16),
                    Err(true) => Some(MAX_BLKSIZE),
                    _ => None,
                };
                r.blksize.is_some()
            }
            // RFC 7440: 1..=65535.
            "windowsize" => {
                r.windowsize = n.ok().filter(|n| (1..=65535).contains(n)).map(|n| n as u16);
                r.windowsize.is_some()
            }
            // RFC 2349: 1..=255 s.
            "timeout" => {
                r.timeout = n.ok().filter(|n| (1..=255).contains(n)).map(|n| n as u8);
                r.timeout.is_some()
            }
            // tftp-hpa: 10 ms..=255 s in µs.
            "utimeout" => {
                r.utimeout = n
                    .ok()
                    .filter(|n| (10_000..=255_000_000).contains(n))
                    .map(|n| n as u32);
                r.utimeout.is_some()
            }
            _ => {
                r.tsize = n.ok();
                r.tsize.is_some()
            }
        };
        if valid {
            let first = pairs
                .iter()
                .position(|(n, _)| n.eq_ignore_ascii_case(known))
                .unwrap_or(usize::MAX);
            order.push((first, known));
        }
    }
    order.sort_unstable();
    (r, order.into_iter().map(|(_, k)| k).collect())
}

/// Runs one scenario.
pub fn check(s: &Scenario) {
    let pairs: Vec<(String, String)> = s.options.iter().map(|(n, v)| (name(n), value(v))).collect();
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let mut requested = RequestedOptions::parse(&refs);
    let (expected, order) = reference(&pairs);
    assert_eq!(requested, expected, "parse {refs:?}");

    let limits = OptionLimits {
        max_blksize: s.max_blksize,
        max_windowsize: s.max_windowsize,
        blksize: s.blksize,
        windowsize: s.windowsize,
        timeout: s.timeout,
        tsize: s.tsize,
    };
    if let Some(o) = &s.overrides {
        requested.blksize = o.blksize.unwrap_or(requested.blksize);
        requested.windowsize = o.windowsize.unwrap_or(requested.windowsize);
        requested.timeout = o.timeout.unwrap_or(requested.timeout);
        requested.utimeout = o.utimeout.unwrap_or(requested.utimeout);
        requested.tsize = o.tsize.unwrap_or(requested.tsize);
    }
    let n = Negotiated::negotiate(&requested, &limits, s.is_write, s.body_size);
    let ctx = format!("{requested:?} with {limits:?}, write {}: {n:?}", s.is_write);
    let granted = |name: &str| n.oack.iter().find(|(k, _)| *k == name).map(|(_, v)| v);

    // Each OACK entry is a known option, once, lowercase, with a number.
    for (i, (k, v)) in n.oack.iter().enumerate() {
        assert!(KNOWN.contains(k), "unknown {k} in the OACK: {ctx}");
        assert!(
            !n.oack[..i].iter().any(|(k2, _)| k2 == k),
            "{k} twice: {ctx}"
        );
        assert_eq!(
            v.parse::<u64>().map(|x| x.to_string()).as_ref(),
            Ok(v),
            "{ctx}"
        );
    }

    // RFC 2348: blksize 8..=65464, at most what was asked and the limit.
    match granted("blksize") {
        Some(v) => {
            let b = n.params.blksize;
            assert!(s.blksize, "blksize granted while switched off: {ctx}");
            assert_eq!(v, &b.to_string(), "{ctx}");
            assert!((8..=MAX_BLKSIZE).contains(&b), "blksize {b}: {ctx}");
            assert!(
                b <= s.max_blksize.max(8),
                "blksize {b} over the limit: {ctx}"
            );
            let asked = requested.blksize.expect("granted unasked");
            assert!(b <= asked, "blksize {b} granted for {asked}: {ctx}");
        }
        None => assert_eq!(n.params.blksize, 512, "{ctx}"),
    }
    // RFC 7440: windowsize 1..=65535, at most what was asked and the limit.
    match granted("windowsize") {
        Some(v) => {
            let w = n.params.windowsize;
            assert!(s.windowsize, "windowsize granted while switched off: {ctx}");
            assert_eq!(v, &w.to_string(), "{ctx}");
            assert!(w >= 1, "windowsize 0: {ctx}");
            assert!(
                w <= s.max_windowsize.max(1),
                "windowsize {w} over the limit: {ctx}"
            );
            let asked = requested.windowsize.expect("granted unasked");
            assert!(w <= asked, "windowsize {w} granted for {asked}: {ctx}");
        }
        None => assert_eq!(n.params.windowsize, 1, "{ctx}"),
    }
    // RFC 2349: timeout 1..=255 s, echoed as asked; utimeout 10 ms..=255 s.
    let timeout = granted("timeout").map(|v| {
        assert!(s.timeout, "timeout granted while switched off: {ctx}");
        let t: u64 = v.parse().unwrap_or(0);
        assert!((1..=255).contains(&t), "timeout {t} s granted: {ctx}");
        assert_eq!(Some(t), requested.timeout.map(u64::from), "{ctx}");
        Duration::from_secs(t)
    });
    let utimeout = granted("utimeout").map(|v| {
        assert!(s.timeout, "utimeout granted while switched off: {ctx}");
        let t: u64 = v.parse().unwrap_or(0);
        assert!(
            (10_000..=255_000_000).contains(&t),
            "utimeout {t} µs granted: {ctx}"
        );
        assert_eq!(Some(t), requested.utimeout.map(u64::from), "{ctx}");
        Duration::from_micros(t)
    });
    assert_eq!(n.timeout, utimeout.or(timeout), "the timeout used: {ctx}");
    // RFC 2349: tsize answered with the size on a read, echoed on a write.
    let tsize = if !s.tsize || requested.tsize.is_none() {
        None
    } else if s.is_write {
        requested.tsize
    } else {
        s.body_size
    };
    assert_eq!(n.tsize, tsize, "{ctx}");
    assert_eq!(
        granted("tsize").cloned(),
        tsize.map(|t| t.to_string()),
        "{ctx}"
    );

    // Parsed options are answered in the order the client sent them.
    if s.overrides.is_none() {
        let names: Vec<&str> = n.oack.iter().map(|(k, _)| *k).collect();
        let listed: Vec<&str> = order.into_iter().filter(|k| names.contains(k)).collect();
        assert_eq!(names, listed, "not in the client's order: {ctx}");
    }

    // The OACK goes on the wire and comes back the same.
    let mut wire = Vec::new();
    encode_oack(&mut wire, &n.oack);
    match Packet::decode(&wire) {
        Ok(Packet::Oack { options }) => {
            let back: Vec<(&str, &str)> = n.oack.iter().map(|(k, v)| (*k, v.as_str())).collect();
            assert_eq!(options, back, "{ctx}");
        }
        other => panic!("the OACK decodes as {other:?}: {ctx}"),
    }
}
