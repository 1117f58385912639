//! The modules of the integration-test binary.
//!
//! - [`support`]: temporary directories, servers on ephemeral ports, bounded
//!   child processes, test data.
//! - [`clients`]: how to drive each system TFTP client (curl, tftp-hpa, atftp,
//!   busybox) and what its netascii mode does to the bytes.
//! - [`interop`]: the same transfers run with every system client.
//! - [`serve_dir`]: the `serve_dir` example's path rules, in process and as
//!   the real binary.
//! - [`api`]: the handler API through the macros: typed captures,
//!   extractors, async and blocking handlers, read bodies, the upload
//!   lifecycle, table-level requests.
//! - [`deploy`]: single-port mode, port ranges, replies from the address a
//!   request hit, several addresses, dual stack (on loopback).
//! - [`engine`]: wire rules that need a second party or the OS.
//! - [`policy`]: the request policy with raw packets from one client port:
//!   repeats, superseding requests, lost first packets.
//! - [`hostile`]: garbage dropped unanswered, ERRORs rate-limited, the
//!   memory budget of uploads held whole.
//! - [`sim`]: transfers over the simulated network of `emmer::testing`.
//! - [`examples`]: the example programs as users run them.
//! - [`events`]: transfer events (`App::on_transfer`) for served, refused,
//!   timed-out and superseded requests; slow and panicking callbacks.
//! - [`emmer_client`]: the same ground with `emmer::testing::Client`, plus
//!   the options system clients cannot ask for.
//! - [`netns`]: a server in its own network namespace behind a link that
//!   drops and duplicates datagrams (nftables; root only).
//! - [`loss`]: every client, get and put, lock-step and windowed, through
//!   that link: byte-exact under 5% loss and 2% duplication.
//! - [`shared`]: shared bodies: one handler call for a storm, the same bytes
//!   for a size probe and its download.
//! - [`http`]: the same routes over HTTP with curl and wget: GET, HEAD,
//!   ranges, PUT, statuses, limits, keep-alive, slow clients, one handler
//!   answering both transports.
//! - [`replicas`]: deploying in the kernel's datapath (namespaces, veth,
//!   nftables; root only): two replicas behind a DNAT'd VIP and a stateful
//!   client firewall, a multi-homed server, broadcast requests, dual stack.

mod api;
mod clients;
mod deploy;
mod emmer_client;
mod engine;
mod events;
mod examples;
mod hostile;
mod http;
mod interop;
mod loss;
mod netns;
mod policy;
#[cfg(target_os = "linux")]
mod replicas;
mod serve_dir;
mod shared;
mod sim;
mod support;
