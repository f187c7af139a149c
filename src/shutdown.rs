//! One drain signal for the whole process, passed explicitly to every task.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long connections get to reset themselves once the grace period is over.
const ABORT_WAIT: Duration = Duration::from_secs(1);

/// The stop signal and the set of tasks that must finish before the process exits.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    /// Fires when the grace period is over: connections still open reset themselves.
    abort: CancellationToken,
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

    /// Fires when draining gave up: connections still open must reset (not close) at once.
    pub fn abort_token(&self) -> CancellationToken {
        self.abort.clone()
    }

    /// Stops everything and waits up to `grace` for open connections to finish. Those still
    /// open then are reset, so their clients can tell a cut stream from a finished one.
    /// Returns how many had to be reset.
    pub async fn drain(&self, grace: Duration) -> usize {
        self.trigger();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
        {
            return 0;
        }
        let open = self.tracker.len();
        self.abort.cancel();
        // Resetting is immediate; this only lets the tasks run to do it.
        let _ = tokio::time::timeout(ABORT_WAIT, self.tracker.wait()).await;
        open
    }
}
