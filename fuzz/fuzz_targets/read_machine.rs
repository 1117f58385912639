//! `ReadTransfer` under any sequence of client packets, timer ticks,
//! repeated requests and body feeding: see `emmer/src/proto/checks/read.rs`
//! for the invariants.
#![no_main]

use emmer_fuzz::checks::read;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: read::Scenario| read::check(&s));
