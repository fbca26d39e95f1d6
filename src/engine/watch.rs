//! The engine's side of waking on change (issue 11): the console user through
//! [`crate::host::ConsoleWatch`], at [`CONSOLE_POLL`], no process unless `/dev/console` changed.

use std::time::Duration;

use super::{Engine, StepError};

/// How often `/dev/console`'s metadata is read in the first [`CONSOLE_FAST_FOR`] of a wait for
/// a login or logout: a `stat(2)` system call, no process, so a login is noticed within about
/// 0.1 s. Later, every `Timing::file_poll` (250 ms): fewer wake-ups while nobody comes.
pub const CONSOLE_POLL: Duration = Duration::from_millis(100);
pub const CONSOLE_FAST_FOR: Duration = Duration::from_secs(10);

impl Engine {
    /// The console user now (runs `stat -f %Su /dev/console` only when `/dev/console` changed
    /// since the last look).
    pub(crate) async fn console_user(&mut self) -> Result<String, StepError> {
        let host = std::sync::Arc::clone(&self.host);
        Ok(self.console.user(host.as_ref()).await?)
    }

    /// Waits for `/dev/console` to change and returns the console user then (which may be the
    /// same name: callers loop until the one they wait for).
    pub(crate) async fn console_change(&mut self) -> Result<String, StepError> {
        let host = std::sync::Arc::clone(&self.host);
        let pace = crate::host::console::Pace {
            poll: self.timing.file_poll.min(CONSOLE_POLL),
            slow_poll: self.timing.file_poll,
            slow_after: CONSOLE_FAST_FOR,
            gap: self.timing.tool_gap,
        };
        Ok(self.console.next(host.as_ref(), &pace).await?)
    }
}
