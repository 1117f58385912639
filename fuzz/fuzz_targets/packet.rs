//! `Packet::decode` on any bytes never panics; what decodes re-encodes to
//! bytes that decode to the same packet.
#![no_main]

use emmer_fuzz::checks::packet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| packet::check(bytes));
