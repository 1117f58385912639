//! `WriteTransfer` under any sequence of client packets, timer ticks,
//! repeated requests and verdicts: see `emmer/src/proto/checks/write.rs`
//! for the invariants.
#![no_main]

use emmer_fuzz::checks::write;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: write::Scenario| write::check(&s));
