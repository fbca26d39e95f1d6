//! Step 8, `identify`: who the employee is. The window asks for an identifier and a secret,
//! the directory is searched, and [`judge`] decides whether exactly one employee matches; the
//! attempts and the cool-down survive restarts. Also the account-name rules: which names are
//! setup accounts on this Mac ([`setup_accounts`]) and when two names are one account
//! ([`same_account`]).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tracing::{info, warn};

use super::state::{Step, UserFacts};
use super::{clock, Engine, StepError};
use crate::config::{ApiKeySource, SecretKind};
use crate::host::is_system_user;
use crate::jumpcloud::{DirectoryUser, UserState};
use crate::ui::IdentityPrompt;

pub(super) async fn identify(e: &mut Engine) -> Result<(), StepError> {
    if e.state.identity.user.is_some() {
        return Ok(());
    }
    // The MDM already knows the employee: no window, no secret.
    if let Some(preset) = e.config.identity.preset.clone() {
        return super::preset::identify(e, &preset).await;
    }
    super::progress::show_progress(e, Step::Identify).await?;
    let identity = e.config.identity.clone();
    let dir = std::sync::Arc::clone(&e.dir);
    loop {
        if let Some(until) = e.state.identity.cooldown_until_ms {
            let now = clock::now_ms();
            if until > now {
                let left = until - now;
                warn!(
                    seconds = left / 1000,
                    "identity attempts exhausted; cooling down"
                );
                // The message counts down with the cool-down; if the employee closes it early,
                // wait out only what is left.
                e.ui.identity_rejected(0, Some(left.div_ceil(1000))).await?;
                let rest = until.saturating_sub(clock::now_ms());
                tokio::time::sleep(Duration::from_millis(rest)).await;
            }
            e.record("effect", "cool-down over", |s| {
                s.identity.cooldown_until_ms = None;
                s.identity.failures = 0;
            })?;
        }
        let failures = e.state.identity.failures;
        let prompt = IdentityPrompt {
            identifier_label_id: crate::ui::screen::identifier_label_id(identity.identifier),
            secret_label_id: crate::ui::screen::secret_label_id(&identity.secret),
            attempts_left: (failures > 0).then(|| identity.max_attempts.saturating_sub(failures)),
        };
        let answer = e.ui.ask_identity(&prompt).await?;
        let value = answer.identifier.trim().to_owned();
        let found = if value.is_empty() {
            Vec::new()
        } else {
            dir.find_users(identity.identifier, &value).await?
        };
        match judge(&found, &identity.secret, answer.secret.as_ref()) {
            Ok(user) => {
                let user = user.clone();
                return identified(e, &user, "");
            }
            Err(why) => {
                // The employee sees one message for every cause; the admin reads which it was.
                warn!(identifier = %value, reason = why, "identity check failed");
                let max = identity.max_attempts;
                let cooldown_ms = u64::try_from(identity.cooldown.as_millis()).unwrap_or(u64::MAX);
                e.record("effect", format!("identity failed: {why}"), |s| {
                    s.identity.failures += 1;
                    if s.identity.failures >= max {
                        s.identity.cooldown_until_ms =
                            Some(clock::now_ms().saturating_add(cooldown_ms));
                    }
                })?;
                let left = max.saturating_sub(e.state.identity.failures);
                if left > 0 {
                    e.ui.identity_rejected(left, None).await?;
                }
            }
        }
    }
}

/// Records the identified employee (`how` says how, for the journal).
pub(super) fn identified(e: &mut Engine, user: &DirectoryUser, how: &str) -> Result<(), StepError> {
    let facts = UserFacts {
        id: user.id.clone(),
        local_name: user.local_name().to_owned(),
        pending: !user.activated,
        staged: user.state == Some(UserState::Staged),
        password_date: user.password_date.clone(),
        username: user.username.clone(),
    };
    check_local_name(e, &facts.local_name)?;
    info!(user_id = %facts.id, account = %facts.local_name, pending = facts.pending, "employee identified");
    let detail = format!("identified {} {how}", facts.id);
    e.record("effect", detail.trim_end(), |s| {
        s.identity.user = Some(facts);
        s.identity.failures = 0;
    })
}

/// Decides whether the search results and the typed secret identify exactly one employee.
/// The error says which check failed (for the admin's log only).
pub fn judge<'a>(
    found: &'a [DirectoryUser],
    secret: &SecretKind,
    typed: Option<&SecretString>,
) -> Result<&'a DirectoryUser, &'static str> {
    let user = match found {
        [] => return Err("no user matches the identifier"),
        [one] => one,
        _ => return Err("several users match the identifier"),
    };
    if user.state == Some(UserState::Suspended) {
        return Err("the matching user is suspended");
    }
    let expected = match secret {
        SecretKind::None => return Ok(user),
        SecretKind::EmployeeId => user.employee_identifier.as_deref(),
        SecretKind::Attribute(name) => user.attribute(name),
    };
    let Some(expected) = expected.filter(|v| !v.is_empty()) else {
        return Err("the matching user has no value for the configured secret");
    };
    let typed = typed.map_or("", |t| t.expose_secret().trim());
    if bool::from(expected.as_bytes().ct_eq(typed.as_bytes())) {
        Ok(user)
    } else {
        Err("the secret does not match")
    }
}

/// Refuses an employee whose local account would be one of the setup accounts: the agent would
/// take it over and we would then delete it.
fn check_local_name(e: &Engine, name: &str) -> Result<(), StepError> {
    crate::host::mac::check_name(name)?;
    let mut setup: Vec<&str> = setup_accounts(e);
    // No EnrollmentUser: the account at the console may be the employee's own (Setup
    // Assistant created it with the name the MDM prefilled); the agent takes it over.
    if e.config.enrollment_user.is_none() {
        let console = e.state.identity.setup_user.as_deref();
        setup.retain(|s| Some(*s) != console);
    }
    if is_system_user(name) || setup.iter().any(|s| same_account(s, name)) {
        return Err(StepError::permanent(
            "error.directory",
            format!("the employee's local account name {name:?} is a setup or system account on this Mac: give the user another username or systemUsername in JumpCloud"),
        ));
    }
    Ok(())
}

pub(super) fn setup_accounts(e: &Engine) -> Vec<&str> {
    let mut names = Vec::new();
    if let Some(u) = e.config.enrollment_user.as_deref() {
        names.push(u);
    }
    if let ApiKeySource::Legacy { decrypt_user, .. } = &e.config.api_key {
        names.push(decrypt_user.as_str());
    }
    if let Some(u) = e.state.identity.setup_user.as_deref() {
        if !names.contains(&u) {
            names.push(u);
        }
    }
    names
}

/// Whether two short names may be the same account: macOS looks record names up without
/// regard to case (`id -u Welcome` finds `welcome`), so the safety checks do too (they err on
/// the side of refusing).
pub(super) fn same_account(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jumpcloud::types::UserAttribute;

    fn user(id: &str) -> DirectoryUser {
        DirectoryUser {
            id: id.into(),
            username: "ada".into(),
            system_username: None,
            email: "ada@example.com".into(),
            lastname: "Lovelace".into(),
            description: String::new(),
            employee_identifier: Some("E-1815".into()),
            activated: false,
            state: Some(UserState::Activated),
            attributes: vec![UserAttribute {
                name: "enrollmentCode".into(),
                value: "K7-Q2".into(),
            }],
            password_date: None,
        }
    }

    #[test]
    fn judge_needs_exactly_one_match() {
        let none: Vec<DirectoryUser> = Vec::new();
        assert!(judge(&none, &SecretKind::None, None).is_err());
        let two = vec![user("a"), user("b")];
        assert_eq!(
            judge(&two, &SecretKind::None, None).unwrap_err(),
            "several users match the identifier"
        );
        let one = vec![user("a")];
        assert_eq!(judge(&one, &SecretKind::None, None).unwrap().id, "a");
    }

    #[test]
    fn judge_checks_the_secret() {
        let one = vec![user("a")];
        let right = SecretString::from("E-1815");
        let wrong = SecretString::from("E-1816");
        assert!(judge(&one, &SecretKind::EmployeeId, Some(&right)).is_ok());
        assert_eq!(
            judge(&one, &SecretKind::EmployeeId, Some(&wrong)).unwrap_err(),
            "the secret does not match"
        );
        assert!(judge(&one, &SecretKind::EmployeeId, None).is_err());
        let code = SecretString::from(" K7-Q2 ");
        assert!(judge(
            &one,
            &SecretKind::Attribute("enrollmentCode".into()),
            Some(&code)
        )
        .is_ok());
        assert!(judge(&one, &SecretKind::Attribute("other".into()), Some(&code)).is_err());
    }

    #[test]
    fn judge_refuses_suspended_users() {
        let mut u = user("a");
        u.state = Some(UserState::Suspended);
        assert!(judge(&[u], &SecretKind::None, None).is_err());
    }
}
