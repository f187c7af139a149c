//! One drain signal for the whole process, passed explicitly to every task.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The stop signal and the set of tasks that must finish before the process exits.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Shutdown {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells every task to stop taking new work.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Resolves once [`Shutdown::trigger`] was called.
    pub async fn triggered(&self) {
        self.token.cancelled().await;
    }

    /// A child token: cancelled with the whole process, or on its own.
    pub fn child(&self) -> CancellationToken {
        self.token.child_token()
    }

    /// The tracker that connections register with, so that draining can wait for them.
    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// Stops everything and waits up to `grace` for open connections to finish. Returns
    /// whether they all did.
    pub async fn drain(&self, grace: Duration) -> bool {
        self.trigger();
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}
