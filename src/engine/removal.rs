//! Step 14, `remove_setup`: move the groups, then the side effects on the Mac, each bounded
//! and persisted: the FileVault unlock list refreshed once the employee holds a Secure Token,
//! then each setup account deleted (when [`safe_to_delete`] says so), never retried forever;
//! last the report to the directory.
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

use std::fmt::Write as _;

use tracing::{info, warn};

use super::identity::same_account;
use super::state::Step;
use super::steps::{group_error, report};
use super::{clock, Engine, Event, StepError};
use crate::config::{ApiKeySource, WebhookEvent};
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
    if e.state.removal.preboot_updated || e.state.removal.filevault_on == Some(false) {
        return Ok(Ok(()));
    }
    if !e.state.handover.employee_has_token {
        // The token may have come after the wait for it ended.
        if !e.host.has_secure_token(employee).await? {
            return Ok(Ok(()));
        }
        e.record("effect", "employee holds a Secure Token", |s| {
            s.handover.employee_has_token = true;
        })?;
    }
    if e.state.removal.filevault_on.is_none() {
        let on = if let Some(on) = e.host.filevault_on().await? {
            on
        } else {
            // Refreshing is harmless when FileVault is off; skipping it is not when it is on.
            warn!("`fdesetup status` printed something unexpected; refreshing the FileVault unlock list anyway");
            true
        };
        e.record("effect", format!("FileVault on: {on}"), |s| {
            s.removal.filevault_on = Some(on);
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
            e.record("effect", "preboot updated", |s| {
                s.removal.preboot_updated = true;
            })?;
            Ok(Ok(()))
        }
        Err(err) => {
            e.record("effect", format!("preboot update failed: {err}"), |s| {
                s.removal.preboot_failures += 1;
            })?;
            if e.state.removal.preboot_failures < MAX_PREBOOT_TRIES {
                return Err(err.into());
            }
            Ok(Err(Keep {
                short: "FileVault unlock list not refreshed".into(),
                detail: format!(
                    "`diskutil apfs updatePreboot /` failed {} times ({err}); deleting the setup accounts could leave {employee} unable to unlock the disk at the next start: run it by hand, check that {employee} appears in `sudo fdesetup list`, then delete the setup accounts",
                    e.state.removal.preboot_failures
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
    let tries = e
        .state
        .removal
        .delete_attempts
        .get(name)
        .copied()
        .unwrap_or(0);
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
            *s.removal
                .delete_attempts
                .entry(name.to_owned())
                .or_default() += 1;
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

// ---------------------------------------------------------------------------------------------
// 14. Remove the setup accounts, move groups, report

pub(super) async fn remove_setup(e: &mut Engine) -> Result<(), StepError> {
    let user = super::employee(e)?;
    let mut kept_short: Vec<String> = Vec::new();
    // The groups first: they may need the API key, and the legacy key's DecryptUser is one of
    // the accounts deleted below.
    if !e.state.removal.groups_moved {
        if let Some(group) = e.config.enrollment_group_id.clone() {
            e.dir
                .remove_system_from_group(&group)
                .await
                .map_err(|err| group_error(err, "EnrollmentGroupID", &group))?;
        }
        if let Some(group) = e.config.post_enrollment_group_id.clone() {
            e.dir
                .add_system_to_group(&group)
                .await
                .map_err(|err| group_error(err, "PostEnrollmentGroupID", &group))?;
        }
        e.record("effect", "groups moved", |s| s.removal.groups_moved = true)?;
    }
    // The FileVault unlock list before any deletion: the employee must be able to unlock the
    // disk at the next start once the setup account is gone. Without a setup account there is
    // nothing to delete (DeleteEnrollmentUsers needs EnrollmentUser).
    let own = super::preset::own_account(e);
    let preboot = if own {
        e.journal(
            "effect",
            format!(
                "nothing to delete: {} is the employee's own account (no EnrollmentUser)",
                user.local_name
            ),
        )?;
        Ok(())
    } else {
        refresh_preboot(e, &user.local_name).await?
    };
    if e.config.delete_enrollment_users && !own {
        let mut candidates: Vec<String> = Vec::new();
        if let Some(u) = &e.config.enrollment_user {
            candidates.push(u.clone());
        }
        if let ApiKeySource::Legacy { decrypt_user, .. } = &e.config.api_key {
            candidates.push(decrypt_user.clone());
        }
        for name in candidates {
            if e.state.removal.deleted_users.contains(&name)
                || e.state.removal.kept_users.contains(&name)
            {
                continue;
            }
            let verdict = match safe_to_delete(e, &name, &user.local_name).await? {
                // Gone already (a deletion before a crash, or by hand).
                Ok(None) => Ok(()),
                Ok(Some(_)) => match &preboot {
                    Err(keep) => Err(keep.clone()),
                    Ok(()) => delete_setup_account(e, &name).await?,
                },
                Err(keep) => Err(keep),
            };
            match verdict {
                Ok(()) => {
                    info!(account = %name, "setup account deleted");
                    e.record("effect", format!("deleted {name}"), |s| {
                        s.removal.deleted_users.push(name.clone());
                    })?;
                }
                Err(keep) => {
                    warn!(account = %name, reason = %keep.detail, "setup account kept");
                    e.emit(&Event::Note(format!("kept {name}: {}", keep.detail)));
                    // We hid it at the handover; kept, it is how IT gets into this Mac (often
                    // the only Secure Token holder): show it at the login window again.
                    if e.state.handover.hidden_users.contains(&name)
                        && e.host.user_id(&name).await?.is_some()
                    {
                        e.host.show_user(&name).await?;
                    }
                    e.record("effect", format!("kept {name}: {}", keep.detail), |s| {
                        s.removal.kept_users.push(name.clone());
                        s.removal
                            .kept_reasons
                            .insert(name.clone(), keep.detail.clone());
                        s.handover.hidden_users.retain(|h| *h != name);
                    })?;
                    kept_short.push(format!("{name} ({})", keep.short));
                }
            }
        }
    }
    let mut line = format!(
        "prestage: enrolled {} on {}",
        user.local_name,
        clock::rfc3339(clock::now_ms())
    );
    if !e.state.removal.kept_users.is_empty() {
        // The admin reads this in the JumpCloud console: the Mac needs a hand.
        if kept_short.is_empty() {
            // Kept in an earlier run: the reasons are in `status` and the log.
            kept_short.clone_from(&e.state.removal.kept_users);
        }
        let _ = write!(line, "; setup account kept: {}", kept_short.join(", "));
        super::webhooks::notify(e, WebhookEvent::AccountKept, Step::RemoveSetup, None);
    }
    report(e, &line).await;
    Ok(())
}

/// Whether deleting `name` is safe: never the employee, never the console user, and only
/// when the employee holds a Secure Token (so the setup account is not the last holder:
/// bash script issue #17). `Ok(None)`: there is no such account (any more); `Ok(Some(uid))`:
/// it exists and may go.
async fn safe_to_delete(
    e: &mut Engine,
    name: &str,
    employee: &str,
) -> Result<Result<Option<u32>, Keep>, StepError> {
    let keep = |short: String, detail: String| Ok(Err(Keep { short, detail }));
    if same_account(name, employee) {
        let why = "it is the employee's own account".to_owned();
        return keep(why.clone(), why);
    }
    // The handover of this process read it a moment ago; if it went since, deleting it
    // again succeeds (`MacHost::delete_user` checks that it is gone, not what sysadminctl said).
    let uid = match e.setup_uids.get(name).copied() {
        Some(uid) => uid,
        None => match e.host.user_id(name).await? {
            Some(uid) => uid,
            None => return Ok(Ok(None)),
        },
    };
    // wait_login read the token a moment ago (a definite answer, kept in the state): only a
    // run that has no such answer asks again (issue 11).
    if !e.state.handover.employee_has_token && !e.host.has_secure_token(employee).await? {
        return keep(
            format!("no Secure Token for {employee}"),
            format!(
                "{employee} holds no Secure Token yet, so {name} may be the last Secure Token holder; grant {employee} a token (sysadminctl -secureTokenOn {employee} -password - -adminUser {name} -adminPassword -), then delete {name}"
            ),
        );
    }
    if same_account(&e.console_user().await?, name) {
        let why = format!("{name} is logged in at the console");
        return keep(why.clone(), why);
    }
    Ok(Ok(Some(uid)))
}
