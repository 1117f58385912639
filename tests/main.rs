//! Integration and interoperability tests, one binary with a module per area
//! (see `it/mod.rs`). Every test starts its own server on `127.0.0.1:0`;
//! every child process and every wait is bounded.

mod it;
