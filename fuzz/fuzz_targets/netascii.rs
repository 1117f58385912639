//! Netascii encoding and decoding round-trip any bytes, the same in any
//! chunking and with output buffers of any size.
#![no_main]

use emmer_fuzz::checks::netascii;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: netascii::Scenario| netascii::check(&s));
