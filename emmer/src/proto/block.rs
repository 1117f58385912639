//! Block numbers: transfers count blocks from 1 as `u64`; the wire carries
//! 16 bits that roll over past 65535 (to 0 by default, or to 1).

use super::Rollover;

/// Wire numbers repeat every `PERIOD_ZERO` blocks with [`Rollover::ToZero`].
const PERIOD_ZERO: u64 = 65536;
/// With [`Rollover::ToOne`] the numbers 1..=65535 repeat (0 is only block 0).
const PERIOD_ONE: u64 = 65535;

/// The wire number of absolute block `n` (block 0 is the WRQ/OACK ack).
pub fn to_wire(n: u64, rollover: Rollover) -> u16 {
    match rollover {
        // RFC 1350 gives 16 bits; most implementations wrap 65535 → 0.
        Rollover::ToZero => (n % PERIOD_ZERO) as u16,
        // Old clients wrap 65535 → 1: block 0 exists only before DATA 1.
        Rollover::ToOne => {
            if n == 0 {
                0
            } else {
                ((n - 1) % PERIOD_ONE + 1) as u16
            }
        }
    }
}

/// The absolute block in `first..first + count` whose wire number is `wire`,
/// if any. `count` must be at most 65535, so the answer is unique.
pub fn resolve(wire: u16, first: u64, count: u64, rollover: Rollover) -> Option<u64> {
    debug_assert!(count <= 65535, "block range of {count} is ambiguous");
    if count == 0 {
        return None;
    }
    let end = first.saturating_add(count); // exclusive
    let wire = u64::from(wire);
    // The smallest n >= first with to_wire(n) == wire.
    let n = match rollover {
        Rollover::ToZero => {
            let offset = (wire + PERIOD_ZERO - first % PERIOD_ZERO) % PERIOD_ZERO;
            first.checked_add(offset)?
        }
        Rollover::ToOne => {
            if wire == 0 {
                // Only block 0 itself is 0 on the wire.
                0
            } else {
                let start = first.max(1);
                let offset = (wire - 1 + PERIOD_ONE - (start - 1) % PERIOD_ONE) % PERIOD_ONE;
                start.checked_add(offset)?
            }
        }
    };
    (n >= first && n < end).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_wire_table() {
        let cases: &[(u64, u16, u16)] = &[
            // n, ToZero, ToOne
            (0, 0, 0),
            (1, 1, 1),
            (2, 2, 2),
            (65534, 65534, 65534),
            (65535, 65535, 65535),
            (65536, 0, 1),
            (65537, 1, 2),
            (131070, 65534, 65535),
            (131071, 65535, 1),
            (131072, 0, 2),
            (u64::MAX, 65535, ((u64::MAX - 1) % 65535 + 1) as u16),
        ];
        for &(n, zero, one) in cases {
            assert_eq!(to_wire(n, Rollover::ToZero), zero, "ToZero {n}");
            assert_eq!(to_wire(n, Rollover::ToOne), one, "ToOne {n}");
        }
    }

    /// `resolve` agrees with a brute-force search over the range.
    #[test]
    fn resolve_matches_brute_force_around_the_wrap() {
        let firsts = [
            0u64, 1, 2, 100, 65000, 65530, 65534, 65535, 65536, 65537, 131069, 131070, 131071,
            131072,
        ];
        let counts = [0u64, 1, 2, 7, 64, 65535];
        let wires = [0u16, 1, 2, 3, 5, 100, 65000, 65533, 65534, 65535];
        for rollover in [Rollover::ToZero, Rollover::ToOne] {
            for &first in &firsts {
                for &count in &counts {
                    for &wire in &wires {
                        let expected =
                            (first..first + count).find(|&n| to_wire(n, rollover) == wire);
                        assert_eq!(
                            resolve(wire, first, count, rollover),
                            expected,
                            "{rollover:?} wire {wire} in {first}+{count}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn resolve_window_spanning_the_wrap() {
        // Window 65534..65538: ToZero wires 65534, 65535, 0, 1; ToOne 65534, 65535, 1, 2.
        assert_eq!(resolve(0, 65534, 4, Rollover::ToZero), Some(65536));
        assert_eq!(resolve(1, 65534, 4, Rollover::ToZero), Some(65537));
        assert_eq!(resolve(2, 65534, 4, Rollover::ToZero), None);
        assert_eq!(resolve(1, 65534, 4, Rollover::ToOne), Some(65536));
        assert_eq!(resolve(2, 65534, 4, Rollover::ToOne), Some(65537));
        assert_eq!(resolve(0, 65534, 4, Rollover::ToOne), None);
        // Stale wire numbers from before the window are not in it.
        assert_eq!(resolve(65533, 65534, 4, Rollover::ToZero), None);
        // Block 0 (ACK of an OACK) resolves only when the range starts at 0.
        assert_eq!(resolve(0, 0, 1, Rollover::ToOne), Some(0));
        assert_eq!(resolve(0, 0, 1, Rollover::ToZero), Some(0));
        assert_eq!(resolve(0, 1, 65535, Rollover::ToOne), None);
        // Huge absolute numbers do not overflow.
        assert_eq!(resolve(0, u64::MAX - 2, 2, Rollover::ToZero), None);
    }
}
