//! The simulated Mac's own clock: what macOS does without anyone running a tool.
//!
//! The fake world's time-based transitions (Setup Assistant ending and the setup account
//! logging in, the employee logging in at the login window some time after a logout) used to
//! happen only when a fake tool ran and looked at the clock. On a Mac, loginwindow does them on
//! its own and changes the owner of `/dev/console` as it does (see
//! `host::fake::world::World::sync_console`), whether or not anything runs `stat`. This task
//! applies them every [`TICK`], so an engine that watches `/dev/console` instead of running
//! `stat` sees logins as it would on a Mac.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::host::fake::world::World;
use crate::paths::Root;

/// How often the simulated Mac applies its due transitions (a login is visible in
/// `/dev/console` at most this late).
pub const TICK: Duration = Duration::from_millis(10);

/// The running clock of one simulated Mac; dropping it stops the clock.
#[derive(Debug)]
pub struct LoginWindow {
    task: JoinHandle<()>,
}

impl LoginWindow {
    /// Starts the clock for the fake Mac at `root` (a task on the current tokio runtime).
    #[must_use = "the clock stops when its handle is dropped"]
    pub fn start(root: Root) -> Self {
        let task = tokio::spawn(async move {
            loop {
                if let Err(e) = World::advance(&root) {
                    tracing::warn!(error = %e, "the simulated Mac could not advance its world");
                }
                tokio::time::sleep(TICK).await;
            }
        });
        Self { task }
    }
}

impl Drop for LoginWindow {
    fn drop(&mut self) {
        self.task.abort();
    }
}
