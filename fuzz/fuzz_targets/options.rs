//! Option parsing and negotiation on any option list and limits: no panic,
//! grants within the limits and the RFC ranges, an OACK in the client's
//! order.
#![no_main]

use emmer_fuzz::checks::options;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: options::Scenario| options::check(&s));
