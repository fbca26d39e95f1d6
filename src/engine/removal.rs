//! Step 14's side effects on the Mac, each bounded and persisted: the FileVault unlock list
//! refreshed once the employee holds a Secure Token, then each setup account deleted, never
//! retried forever.
//!
//! - FileVault: a user who got a token after FileVault was turned on "may not be included in
//!   the FileVault login window" until `diskutil apfs updatePreboot /` runs (freegeek-pdx/mkuser's
//!   notes), and a hidden setup account still shows there (JumpCloud's bash script CHANGELOG
//!   1.1.0). Deleting the setup account before the refresh could leave the employee unable to
//!   unlock the disk at the next start, so the refresh comes first, and if it keeps failing the
//!   setup accounts are kept.
//! - Deletion: `sysadminctl -deleteUser` can half-fail (microsoft/shell-intune-samples issue 33)
//!   and every try may damage the account further, so after [`MAX_DELETE_TRIES`] the account is
//!   kept, shown at the login window, and reported.

use tracing::{info, warn};

use super::{Engine, StepError};
use crate::host::HostError;

/// `sysadminctl -deleteUser` runs per account before it is kept (counted before each run, so
/// a crash during one counts too).
pub const MAX_DELETE_TRIES: u32 = 3;
/// Failed `diskutil apfs updatePreboot /` runs before the setup accounts are kept.
pub const MAX_PREBOOT_TRIES: u32 = 3;

/// Why a setup account is kept: a few words for the directory's description line, and the
/// whole story (with the fix) for the log and `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keep {
    pub short: String,
    pub detail: String,
}

/// Refreshes the FileVault unlock list when the employee holds a Secure Token and FileVault is
/// on (once; persisted). `Ok(Err(keep))` when it failed [`MAX_PREBOOT_TRIES`] times: the setup
/// accounts must then stay.
pub(super) async fn refresh_preboot(
    e: &mut Engine,
    employee: &str,
) -> Result<Result<(), Keep>, StepError> {
    if e.state.preboot_updated || e.state.filevault_on == Some(false) {
        return Ok(Ok(()));
    }
    if !e.state.employee_has_token {
        // The token may have come after the wait for it ended.
        if !e.host.has_secure_token(employee).await? {
            return Ok(Ok(()));
        }
        e.record("effect", "employee holds a Secure Token", |s| {
            s.employee_has_token = true;
        })?;
    }
    if e.state.filevault_on.is_none() {
        let on = if let Some(on) = e.host.filevault_on().await? {
            on
        } else {
            // Refreshing is harmless when FileVault is off; skipping it is not when it is on.
            warn!("`fdesetup status` printed something unexpected; refreshing the FileVault unlock list anyway");
            true
        };
        e.record("effect", format!("FileVault on: {on}"), |s| {
            s.filevault_on = Some(on);
        })?;
        if !on {
            return Ok(Ok(()));
        }
    }
    e.journal(
        "effect",
        "updating the preboot volume (diskutil apfs updatePreboot /)",
    )?;
    match e.host.update_preboot().await {
        Ok(()) => {
            info!(account = %employee, "the FileVault unlock list now includes the employee");
            e.record("effect", "preboot updated", |s| s.preboot_updated = true)?;
            Ok(Ok(()))
        }
        Err(err) => {
            e.record("effect", format!("preboot update failed: {err}"), |s| {
                s.preboot_failures += 1;
            })?;
            if e.state.preboot_failures < MAX_PREBOOT_TRIES {
                return Err(err.into());
            }
            Ok(Err(Keep {
                short: "FileVault unlock list not refreshed".into(),
                detail: format!(
                    "`diskutil apfs updatePreboot /` failed {} times ({err}); deleting the setup accounts could leave {employee} unable to unlock the disk at the next start: run it by hand, check that {employee} appears in `sudo fdesetup list`, then delete the setup accounts",
                    e.state.preboot_failures
                ),
            }))
        }
    }
}

/// Deletes the setup account `name` (the caller has just checked, with `id -u`, that it exists
/// and that deleting it is safe). `Ok(Ok(()))` once it is gone, `Ok(Err(keep))` when it failed
/// [`MAX_DELETE_TRIES`] times; an `Err` is a failed try that the engine retries.
pub(super) async fn delete_setup_account(
    e: &mut Engine,
    name: &str,
) -> Result<Result<(), Keep>, StepError> {
    let tries = e.state.delete_attempts.get(name).copied().unwrap_or(0);
    let give_up = |tries: u32, why: &str| {
        Keep {
        short: format!("deletion failed {tries} times"),
        detail: format!(
            "`sysadminctl -deleteUser {name}` did not delete it in {tries} tries ({why}); the account may be half-deleted (demoted, home folder gone): check it, then delete it by hand (`sudo sysadminctl -deleteUser {name}`) or keep it"
        ),
    }
    };
    if tries >= MAX_DELETE_TRIES {
        return Ok(Err(give_up(tries, "see /var/log/prestage.log")));
    }
    e.record(
        "effect",
        format!("deleting {name} (try {})", tries + 1),
        |s| {
            *s.delete_attempts.entry(name.to_owned()).or_default() += 1;
        },
    )?;
    match e.host.delete_user(name).await {
        Ok(()) => {
            e.setup_uids.remove(name);
            Ok(Ok(()))
        }
        Err(err @ HostError::NotDeleted { .. }) if tries + 1 >= MAX_DELETE_TRIES => {
            warn!(account = %name, error = %err, "giving up deleting the setup account");
            Ok(Err(give_up(tries + 1, &err.to_string())))
        }
        Err(err) => Err(err.into()),
    }
}
