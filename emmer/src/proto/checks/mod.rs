//! Invariants of the protocol core on arbitrary input, shared by the
//! property tests (`proto/props.rs`, run by `cargo test`) and the fuzz
//! targets (`fuzz/`, which compiles these files into the fuzz crate with
//! `#[path]`).
//!
//! Each `check` takes a scenario (plain data: bytes, option lists, event
//! sequences), normalizes it into the ranges the engine can meet, runs it
//! through the public API of `crate::proto` only (the fuzz crate re-exports
//! `emmer::proto` under that name), and panics with a message naming the
//! broken rule. So nothing here needs more than a driver has, and the
//! public API does not grow.
//!
//! In emmer these files exist only under `cfg(test)`; everywhere else they
//! are part of the fuzz crate, where the scenarios derive
//! `arbitrary::Arbitrary` (`cfg_attr(not(test), ...)`).

pub mod netascii;
pub mod options;
pub mod packet;
pub mod read;
pub mod write;

use std::time::Instant;

use crate::proto::Rollover;
use crate::proto::block::to_wire;

/// At most this many events of a scenario are run: long enough for several
/// windows and retry cycles, short enough for many runs a second.
pub const MAX_EVENTS: usize = 400;

/// A block size from a raw number: mostly small (8..=71, many blocks from a
/// short body), sometimes anything in 8..=32767.
pub fn blksize(raw: u16) -> u16 {
    if raw & 1 == 0 {
        8 + (raw >> 1) % 64
    } else {
        (raw >> 1).max(8)
    }
}

/// A window size from a raw number: mostly 1..=8, sometimes up to 32767.
pub fn windowsize(raw: u16) -> u16 {
    if raw & 1 == 0 {
        1 + (raw >> 1) % 8
    } else {
        (raw >> 1).max(1)
    }
}

/// The rollover a flag picks.
pub fn rollover(to_one: bool) -> Rollover {
    if to_one {
        Rollover::ToOne
    } else {
        Rollover::ToZero
    }
}

/// The smallest absolute block `n >= from` whose wire number is `wire`
/// (computed without `block::resolve`, which the machines use), or `None`
/// when no block from `from` on has it (0 with [`Rollover::ToOne`]).
pub fn next_with_wire(from: u64, wire: u16, rollover: Rollover) -> Option<u64> {
    let here = u64::from(to_wire(from, rollover));
    let wire = u64::from(wire);
    let offset = match rollover {
        Rollover::ToZero => (wire + 65536 - here) % 65536,
        Rollover::ToOne if from == 0 => return if wire == 0 { Some(0) } else { Some(wire) },
        Rollover::ToOne if wire == 0 => return None,
        Rollover::ToOne => (wire + 65535 - here) % 65535,
    };
    let n = from + offset;
    assert_eq!(to_wire(n, rollover), wire as u16, "next_with_wire is wrong");
    Some(n)
}

/// A fake clock: the time of the last event. It moves only when a
/// scenario says so.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Now.
    pub now: Instant,
}

impl Clock {
    /// A clock at the current instant.
    pub fn start() -> Self {
        Self {
            now: Instant::now(),
        }
    }
}

/// The deterministic body of a read and the payload bytes of a write: byte
/// `i` of a stream seeded with `seed`.
pub fn byte(seed: u8, i: usize) -> u8 {
    ((i as u32).wrapping_mul(2_654_435_761) >> 24) as u8 ^ seed
}
