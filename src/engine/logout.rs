//! Logging the setup account out at the handover (step 12), confirmed at the console.
//!
//! `launchctl bootout user/UID` is JumpCloud's own logout, but it can return 0 and leave the GUI
//! session up (munki issue 923: "`launchctl bootout gui/$(id -u <username>)` and `user/` did not
//! seem to" work on 10.13.4). So the console is always watched afterwards; if the account is
//! still there, the fallback row of SPEC §4, `launchctl bootout gui/UID` (what Jamf's
//! Interaction Toolkit switched to, its issue 21); if it is still there after that, a clear
//! error.

use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};

use super::{Engine, StepError};
use crate::host::HostError;

/// How long a logout may take to clear the console: apps are torn down, not asked (a guess; no
/// source gives a figure).
pub const LOGOUT_GRACE: Duration = Duration::from_secs(20);

/// Whether `account` leaves the console within `grace`: `/dev/console` is watched without a
/// process, and `stat` runs when it changed.
async fn leaves_console(e: &mut Engine, account: &str, grace: Duration) -> Result<bool, StepError> {
    let deadline = Instant::now() + grace;
    let mut console = e.console_user().await?;
    loop {
        if !super::identity::same_account(&console, account) {
            return Ok(true);
        }
        match tokio::time::timeout_at(deadline, e.console_change()).await {
            Ok(now) => console = now?,
            Err(_) => return Ok(false),
        }
    }
}

fn outcome(result: &Result<(), HostError>) -> String {
    match result {
        Ok(()) => "exit 0".to_owned(),
        Err(err) => err.to_string(),
    }
}

/// Logs `account` (UID `uid`, at the console) out and confirms it has left the console.
pub(super) async fn log_out(e: &mut Engine, account: &str, uid: u32) -> Result<(), StepError> {
    let first = e.host.log_out(uid).await;
    if leaves_console(e, account, LOGOUT_GRACE).await? {
        if let Err(err) = &first {
            // `launchctl bootout user/UID` may report an error for a session it did end.
            info!(error = %err, account, "launchctl reported an error, but the account has left the console");
        }
        return Ok(());
    }
    warn!(account, uid, result = %outcome(&first), "`launchctl bootout user/UID` left the session up (munki issue 923); trying `launchctl bootout gui/UID`");
    e.journal(
        "effect",
        format!("logging out {account} with bootout gui/{uid}"),
    )?;
    let second = e.host.log_out_gui(uid).await;
    if leaves_console(e, account, LOGOUT_GRACE).await? {
        info!(account, "logged out with `launchctl bootout gui/UID`");
        return Ok(());
    }
    Err(StepError::permanent(
        "error.generic",
        format!(
            "the setup account {account} is still logged in after `launchctl bootout user/{uid}` ({}) and `launchctl bootout gui/{uid}` ({}); log it out from the Apple menu or restart the Mac, and prestage goes on at its next start once {account} has left the console",
            outcome(&first),
            outcome(&second)
        ),
    ))
}
