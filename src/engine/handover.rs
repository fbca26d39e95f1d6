//! Steps 12 and 13: the handover (tell the employee, hide the setup accounts, log the setup
//! account out; the logout itself is in logout.rs) and the wait for the employee's first
//! login and Secure Token.

use tracing::{info, warn};

use super::identity::{same_account, setup_accounts};
use super::wait::Pacer;
use super::{clock, Engine, StepError};
use crate::host::is_system_user;

// ---------------------------------------------------------------------------------------------
// 12. Hand over

pub(super) async fn handover(e: &mut Engine) -> Result<(), StepError> {
    if super::preset::own_account(e) {
        return super::preset::handover(e).await;
    }
    let user = super::employee(e)?;
    if !e.state.handover.setup_logged_out {
        // Nobody of the setup accounts at the console any more (a crash came right after the
        // logout, or the employee logged it out): the screen is not ours to use.
        let console = e.console_user().await?;
        if is_system_user(&console) || same_account(&console, &user.local_name) {
            e.record(
                "effect",
                format!("the setup account is already logged out (console: {console})"),
                |s| s.handover.setup_logged_out = true,
            )?;
        } else {
            e.ui.done(&user.local_name).await?;
        }
    }
    let setup: Vec<String> = setup_accounts(e).into_iter().map(str::to_owned).collect();
    for name in &setup {
        if e.state.handover.hidden_users.contains(name) || *name == user.local_name {
            continue;
        }
        // Remembered, so the logout below and the removal need not ask `id -u` again.
        if let Some(uid) = e.host.user_id(name).await? {
            e.setup_uids.insert(name.clone(), uid);
            e.host.hide_user(name).await?;
        }
        e.record("effect", format!("hidden {name}"), |s| {
            s.handover.hidden_users.push(name.clone());
        })?;
    }
    if !e.state.handover.setup_logged_out {
        e.ui.close().await?;
        e.window_open = false;
        let console = e.console_user().await?;
        if !same_account(&console, &user.local_name) && !is_system_user(&console) {
            let uid = match e.setup_uids.get(&console).copied() {
                Some(uid) => Some(uid),
                None => e.host.user_id(&console).await?,
            };
            if let Some(uid) = uid {
                e.record("effect", format!("logging out {console}"), |_| {})?;
                super::logout::log_out(e, &console, uid).await?;
            }
        }
        e.record("effect", "setup account logged out", |s| {
            s.handover.setup_logged_out = true;
        })?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 13. Wait for the employee's first login and Secure Token

pub(super) async fn wait_login(e: &mut Engine) -> Result<(), StepError> {
    if super::preset::own_account(e) {
        return super::preset::wait_login(e);
    }
    let user = super::employee(e)?;
    // SecureTokenTimeoutSeconds (simulations may shorten it further).
    let grace = e
        .config
        .secure_token_timeout
        .min(e.timing.secure_token_grace);
    let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
    if e.state.handover.login_seen_ms.is_none() {
        // `/dev/console` is watched without a process; `stat` runs when it changes.
        let mut console = e.console_user().await?;
        if console != user.local_name {
            info!(account = %user.local_name, "waiting for the employee's first login");
        }
        while console != user.local_name {
            console = e.console_change().await?;
        }
        e.record("effect", "employee logged in", |s| {
            s.handover.login_seen_ms = Some(clock::now_ms());
        })?;
    }
    // The employee just arrived: check the Secure Token at once (macOS usually grants it
    // during the login itself); later checks are paced.
    let mut pacer = Pacer::new(e.timing.tool_gap);
    loop {
        pacer.tick().await;
        if e.host.has_secure_token(&user.local_name).await? {
            e.record("effect", "employee holds a Secure Token", |s| {
                s.handover.employee_has_token = true;
            })?;
            return Ok(());
        }
        let seen = e.state.handover.login_seen_ms.unwrap_or(0);
        if clock::now_ms().saturating_sub(seen) >= grace_ms {
            warn!(account = %user.local_name, waited_s = grace.as_secs(), "the employee has no Secure Token SecureTokenTimeoutSeconds after their first login; the setup accounts will be kept");
            return Ok(());
        }
    }
}
