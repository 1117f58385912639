//! The modules of the integration-test binary.
//!
//! - [`support`]: temporary directories, servers on ephemeral ports, bounded
//!   child processes, test data.
//! - [`clients`]: how to drive each system TFTP client (curl, tftp-hpa, atftp,
//!   busybox) and what its netascii mode does to the bytes.
//! - [`interop`]: the same transfers run with every system client.
//! - [`serve_dir`]: the `serve_dir` example's path rules, in process and as
//!   the real binary.
//! - [`emmer_client`]: the same ground with `emmer::testing::Client`, plus
//!   the options system clients cannot ask for.

pub mod api;
pub mod clients;
pub mod emmer_client;
pub mod interop;
pub mod serve_dir;
pub mod support;
