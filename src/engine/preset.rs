//! The enrollment when the MDM already knows the employee (SPEC §3, `Identity.Preset`): SSO
//! during Setup Assistant, as JumpCloud's README for the bash script ("Future macOS
//! compatibility") says admins are heading.
//!
//! The same steps run; some have nothing to do:
//! - identify: no window. The one JumpCloud user whose `Identity.Identifier` field is the preset
//!   value (case-insensitively, as for typed answers); none or several is a permanent,
//!   admin-facing error: the employee could not fix it by answering anything.
//! - password: unchanged (a pending user still chooses one).
//! - with no setup account (`EnrollmentUser` unset) and the console user at the first login
//!   being the employee's own account (its name prefilled by the MDM): the agent takes that
//!   account over after the bind (it matches local accounts by name: REFERENCE.md, "The agent
//!   takes over an existing local account whose name matches"); handover, wait_login and
//!   remove_setup then log out, hide and delete nothing, and say so in the journal.

use tracing::{info, warn};

use super::state::Step;
use super::{identity, Engine, StepError};
use crate::config::SecretKind;

/// Step 8 with a preset: finds the employee without asking.
pub(super) async fn identify(e: &mut Engine, value: &str) -> Result<(), StepError> {
    let progress =
        super::progress::progress_for(Step::Identify, "progress.finding_account", Vec::new());
    e.ui.progress(&progress).await?;
    e.window_open = true;
    let identifier = e.config.identity.identifier;
    let found = e.dir.find_users(identifier, value).await?;
    let field = identifier.field();
    match identity::judge(&found, &SecretKind::None, None) {
        Ok(user) => {
            info!(preset = %value, field, "employee found from Identity.Preset, without asking");
            let user = user.clone();
            identity::identified(e, &user, "from Identity.Preset")?;
            if e.config.enrollment_user.is_none() {
                if let Some(console) = e.state.identity.setup_user.clone() {
                    if !identity::same_account(&console, user.local_name()) {
                        warn!(console_user = %console, account = %user.local_name(), "no EnrollmentUser, but the account at the console is not the employee's JumpCloud account name: the agent creates a new account, and the console account is handed over like a setup account (logged out and hidden, not deleted); prefill the account name in the MDM with the JumpCloud username (or systemUsername)");
                    }
                }
            }
            Ok(())
        }
        Err(why) => {
            warn!(preset = %value, field, reason = why, "Identity.Preset does not identify one employee");
            Err(StepError::permanent(
                "error.preset",
                format!(
                    "Identity.Preset {value:?}: {why} (JumpCloud field {field}, Identity.Identifier); check that the MDM's value is the user's {field} in JumpCloud, or choose the Identity.Identifier that holds it"
                ),
            ))
        }
    }
}

/// Whether this Mac has no setup account: `EnrollmentUser` unset, and the account at the
/// console when the enrollment began is the employee's own (the agent takes it over).
pub(super) fn own_account(e: &Engine) -> bool {
    if e.config.enrollment_user.is_some() {
        return false;
    }
    match (&e.state.identity.setup_user, &e.state.identity.user) {
        (Some(console), Some(user)) => identity::same_account(console, &user.local_name),
        _ => false,
    }
}

/// Step 12 without a setup account: the Done window says what changed, then the windows
/// close. Nothing is logged out or hidden.
pub(super) async fn handover(e: &mut Engine) -> Result<(), StepError> {
    if e.state.handover.setup_logged_out {
        return Ok(());
    }
    let user = super::employee(e)?;
    // Nobody at the console (the employee logged out meanwhile): no window to show.
    let console = e.host.console_user().await?;
    if !crate::host::is_system_user(&console) {
        e.ui.done_own_account(&user.local_name).await?;
    }
    e.ui.close().await?;
    e.window_open = false;
    e.record(
        "effect",
        format!(
            "nothing to hand over: {} is the employee's own account (no EnrollmentUser); nothing logged out or hidden",
            user.local_name
        ),
        // From here the screen is the employee's desktop: no full-screen window again.
        |s| s.handover.setup_logged_out = true,
    )?;
    Ok(())
}

/// Step 13 without a setup account: the employee is logged in already.
pub(super) fn wait_login(e: &mut Engine) -> Result<(), StepError> {
    if e.state.handover.login_seen_ms.is_some() {
        return Ok(());
    }
    let name = e
        .state
        .identity
        .user
        .as_ref()
        .map(|u| u.local_name.clone())
        .unwrap_or_default();
    e.record(
        "effect",
        format!(
            "nothing to wait for: {name} has been logged in to their own account from the start"
        ),
        |s| s.handover.login_seen_ms = Some(super::clock::now_ms()),
    )
}
