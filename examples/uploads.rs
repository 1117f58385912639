//! Config backups from network switches, streamed to disk.
//!
//! Each switch uploads `backups/<hostname>.cfg`. Only known switches may
//! upload (others are refused before anything is acknowledged), uploads over
//! 1 MiB are refused (from the announced tsize at once, or with ERROR 3 when
//! the data runs over), and a backup replaces the previous one only when it
//! arrived whole: a failed or aborted upload leaves the old file as it was.
//!
//! ```text
//! cargo run --example uploads -- /tmp/backups
//! curl -T running.cfg tftp://127.0.0.1:3942/backups/sw-core-1.cfg
//! ```

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use emmer::{App, State, TftpError, Upload, route_write};

/// Where backups go and who may send them.
#[derive(Debug)]
struct Backups {
    dir: PathBuf,
    switches: HashSet<IpAddr>,
}

#[route_write(r"backups/(?P<host>[a-z0-9-]{1,63})\.cfg", max_upload = 1048576)]
async fn backup(
    host: String,
    client_host: IpAddr,
    State(cfg): State<Arc<Backups>>,
    upload: Upload,
) -> Result<(), TftpError> {
    if !cfg.switches.contains(&client_host) {
        // Refused before the first ACK: the client is told at once.
        return Err(TftpError::access_violation(
            "this address may not upload backups",
        ));
    }
    let path = cfg.dir.join(format!("{host}.cfg"));
    let bytes = upload.save_atomic(&path).await?;
    tracing::info!(%host, bytes, path = %path.display(), "backup stored");
    Ok(())
}

fn main() -> emmer::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("emmer-backups"));
    std::fs::create_dir_all(&dir)?;
    // The switches allowed to upload; loopback for trying it out.
    let switches = std::env::var("BACKUP_CLIENTS")
        .unwrap_or_else(|_| "127.0.0.1,::1".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let app = App::from_env()?.state(Arc::new(Backups { dir, switches }));
    tokio::runtime::Runtime::new()?.block_on(app.serve())
}
