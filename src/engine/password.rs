//! Step 9, `password`: the employee's new password, checked against the policy locally,
//! confirmed, set once; a staged user is activated. And whether a password set took effect,
//! told from the user read back after it:
//!
//! A `PUT /api/systemusers/{id}` whose answer was lost (`JcError::Uncertain`) or that a restart
//! interrupted may or may not have changed the password. Sending it again blindly could be
//! refused by the password history rules (SPEC §5), so the engine reads the user back and
//! compares with the facts it persisted before the `PUT`: JumpCloud moves `password_date` on
//! every set, and a pending user becomes activated by its first password.

use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;
use tracing::{info, warn};

use super::state::{PasswordPhase, Step, UserFacts};
use super::{Engine, StepError};
use crate::jumpcloud::{DirectoryUser, JcError, UserState};
use crate::ui::PasswordPrompt;

/// True when `now` (the user read back) shows the set took effect: its `password_date` or its
/// `activated` differ from what was read before the `PUT`.
pub fn password_took_effect(
    before_password_date: Option<&str>,
    before_activated: bool,
    now: &DirectoryUser,
) -> bool {
    now.password_date.as_deref() != before_password_date || now.activated != before_activated
}

// ---------------------------------------------------------------------------------------------
// 9. Password

pub(super) async fn password(e: &mut Engine) -> Result<(), StepError> {
    let user = super::employee(e)?;
    let needed = user.pending || e.config.password.require_for_active_users;
    match e.state.password.phase.clone() {
        PasswordPhase::Unknown if !needed => {
            e.record("effect", "no new password needed", |s| {
                s.password.phase = PasswordPhase::NotNeeded;
            })?;
        }
        PasswordPhase::Unknown => ask_and_set_password(e, &user, true).await?,
        PasswordPhase::Sending {
            before_password_date,
            before_activated,
        } => {
            // A previous run may have set it: read the user back instead of sending the
            // password again (history rules could refuse a repeat; SPEC §5).
            let now = e.dir.user(&user.id).await?;
            if password_took_effect(before_password_date.as_deref(), before_activated, &now) {
                info!("the password set before the restart took effect");
                e.record("effect", "password confirmed after restart", |s| {
                    s.password.phase = PasswordPhase::Set;
                })?;
            } else {
                ask_and_set_password(e, &user, false).await?;
            }
        }
        PasswordPhase::NotNeeded | PasswordPhase::Set => {}
    }
    activate_if_staged(e, &user).await
}

/// Asks for the new password and sets it. `first`: no earlier attempt is in the state, so the
/// user is as identify found them and the facts a restart compares against need no read.
async fn ask_and_set_password(
    e: &mut Engine,
    user: &UserFacts,
    mut first: bool,
) -> Result<(), StepError> {
    super::progress::show_progress(e, Step::Password).await?;
    let policy = e.state.org.policy.clone().unwrap_or_default();
    let dir = std::sync::Arc::clone(&e.dir);
    let mut prompt = PasswordPrompt {
        account: user.local_name.clone(),
        policy: policy.clone(),
        unmet: Vec::new(),
        mismatch: false,
        rejected_by_directory: None,
    };
    loop {
        let answer = e.ui.ask_password(&prompt).await?;
        let unmet = policy.unmet(
            answer.password.expose_secret(),
            &[user.username.as_str(), user.local_name.as_str()],
        );
        let mismatch = !bool::from(
            answer
                .password
                .expose_secret()
                .as_bytes()
                .ct_eq(answer.confirmation.expose_secret().as_bytes()),
        );
        if !unmet.is_empty() || mismatch {
            info!(
                unmet = unmet.len(),
                mismatch, "the new password was not accepted locally"
            );
            prompt.unmet = unmet;
            prompt.mismatch = mismatch;
            prompt.rejected_by_directory = None;
            continue;
        }
        // Persisted before the side effect: a restart reads the user back before resending and
        // compares with these facts. On a first attempt they are identify's (nothing has
        // touched the password since); after an earlier attempt they are read (issue 11).
        let (before_password_date, before_activated) = if first {
            (user.password_date.clone(), !user.pending)
        } else {
            let now = dir.user(&user.id).await?;
            (now.password_date, now.activated)
        };
        first = false;
        e.record("effect", "setting password", |s| {
            s.password.phase = PasswordPhase::Sending {
                before_password_date,
                before_activated,
            };
        })?;
        match dir.set_password(&user.id, &answer.password).await {
            Ok(()) => {
                e.record("effect", "password set", |s| {
                    s.password.phase = PasswordPhase::Set;
                })?;
                return Ok(());
            }
            // Any 4xx that says why (JumpCloud's status for a policy refusal is not on record):
            // the employee reads it and chooses again. Only our key's 401/403 and exhausted
            // retries end the run.
            Err(JcError::PasswordRefused { status, message }) => {
                warn!(status, %message, "JumpCloud refused the new password");
                e.record("effect", format!("password refused ({status})"), |s| {
                    s.password.phase = PasswordPhase::Unknown;
                })?;
                prompt.unmet = Vec::new();
                prompt.mismatch = false;
                prompt.rejected_by_directory = Some(message);
            }
            Err(other) => return Err(other.into()),
        }
    }
}

async fn activate_if_staged(e: &mut Engine, user: &UserFacts) -> Result<(), StepError> {
    if !user.staged || e.state.password.activated {
        return Ok(());
    }
    let now = e.dir.user(&user.id).await?;
    if now.state != Some(UserState::Staged) {
        e.record("effect", "already active", |s| s.password.activated = true)?;
        return Ok(());
    }
    e.dir.activate_user(&user.id).await?;
    e.record("effect", "staged user activated", |s| {
        s.password.activated = true;
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(password_date: Option<&str>, activated: bool) -> DirectoryUser {
        serde_json::from_value(serde_json::json!({
            "_id": "5d0000000000000000000abc",
            "activated": activated,
            "password_date": password_date,
        }))
        .expect("a valid systemuserreturn")
    }

    #[test]
    fn a_moved_password_date_or_a_new_activation_is_proof() {
        let date = Some("2024-01-01T00:00:00.000Z");
        assert!(password_took_effect(
            date,
            true,
            &user(Some("2024-06-01T00:00:00.000Z"), true)
        ));
        assert!(password_took_effect(None, false, &user(None, true)));
        assert!(password_took_effect(None, true, &user(date, true)));
    }

    #[test]
    fn an_unchanged_user_is_no_proof() {
        let date = Some("2024-01-01T00:00:00.000Z");
        assert!(!password_took_effect(date, true, &user(date, true)));
        assert!(!password_took_effect(None, false, &user(None, false)));
    }
}
