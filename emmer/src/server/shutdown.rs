//! Stopping a server: no new transfers, a grace period for running ones,
//! then an abort.

use std::sync::Arc;

use tokio::sync::watch;

/// Where a server is in its shutdown, on a watch channel every transfer
/// holds a receiver of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    Running,
    /// No new transfers; running ones may finish.
    Stopping,
    /// The grace period is over: running transfers end now.
    Abort,
}

/// Stops a [`Server`](crate::Server): no new transfers are accepted, running
/// ones get [`Config::shutdown_grace`](crate::Config::shutdown_grace) to
/// finish.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> emmer::Result<()> {
/// let server = emmer::App::new().bind().await?;
/// let stop = server.shutdown_handle();
/// tokio::spawn(async move {
///     tokio::time::sleep(std::time::Duration::from_secs(60)).await;
///     stop.shutdown();
/// });
/// server.serve().await
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ShutdownHandle(pub(crate) Arc<watch::Sender<Phase>>);

impl ShutdownHandle {
    /// Asks the server to stop.
    pub fn shutdown(&self) {
        self.0.send_if_modified(|p| {
            let was = *p;
            *p = (*p).max(Phase::Stopping);
            was != *p
        });
    }
}

/// Resolves once the server is stopping (or gone).
pub(crate) async fn stopping(stop: &mut watch::Receiver<Phase>) {
    let _ = stop.wait_for(|p| *p >= Phase::Stopping).await;
}

/// Resolves when running transfers must end (the grace period is over, or
/// the server is gone). Created once per transfer and kept pinned, so it
/// registers with the channel once rather than on every packet.
pub(crate) async fn aborted(mut stop: watch::Receiver<Phase>) {
    let _ = stop.wait_for(|p| *p >= Phase::Abort).await;
}
