//! Integration and interoperability tests, one binary with a module per area
//! (see `it/mod.rs`). Every test starts its own server on `127.0.0.1:0`;
//! every child process and every wait is bounded.

mod it;

/// The `serve_dir` example, compiled into the tests so its path rules can be
/// checked without a separate process (`it::serve_dir` also runs the real
/// binary when `cargo test` has built it).
#[path = "../examples/serve_dir.rs"]
#[allow(dead_code)]
mod serve_dir_example;
