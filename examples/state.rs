//! Application state shared by read and write routes: a request counter and
//! an in-memory key-value store that clients fill with uploads.
//!
//! ```text
//! cargo run --example state
//! curl tftp://127.0.0.1:3942/counter              # 1, then 2, …
//! echo hello > note && curl -T note tftp://127.0.0.1:3942/store/note
//! curl tftp://127.0.0.1:3942/store/note           # hello
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use emmer::{App, State, TftpError, route_read, route_write};

/// Shared by every handler; cloned per request (an `Arc`).
#[derive(Debug, Default)]
struct Store {
    reads: AtomicU64,
    items: Mutex<HashMap<String, Vec<u8>>>,
}

#[route_read("counter")]
fn counter(State(store): State<Arc<Store>>) -> String {
    let n = store.reads.fetch_add(1, Ordering::Relaxed) + 1;
    format!("{n}\n")
}

#[route_read(r"store/(?P<key>[A-Za-z0-9_.-]+)")]
fn get(key: String, State(store): State<Arc<Store>>) -> Option<Vec<u8>> {
    store.items.lock().unwrap().get(&key).cloned()
}

/// Values over 64 KiB are refused with ERROR 3 (the store lives in memory).
#[route_write(r"store/(?P<key>[A-Za-z0-9_.-]+)", max_upload = 65536)]
fn put(key: String, data: Vec<u8>, State(store): State<Arc<Store>>) -> Result<(), TftpError> {
    let mut items = store.items.lock().unwrap();
    if items.len() >= 1000 && !items.contains_key(&key) {
        return Err(TftpError::disk_full(
            "the store holds 1000 items; overwrite one",
        ));
    }
    items.insert(key, data);
    Ok(())
}

fn main() -> emmer::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let app = App::from_env()?.state(Arc::new(Store::default()));
    tokio::runtime::Runtime::new()?.block_on(app.serve())
}
