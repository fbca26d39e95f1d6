//! How the simulated tenant judges a new password (`PUT /api/systemusers/{id}` with
//! `password`), no kinder than JumpCloud: every rule of the organisation's `passwordPolicy`
//! (v1.json `organizationsettings.passwordPolicy`), including the ones prestage cannot check
//! itself (commonly used passwords, history, minimum age), with a refusal status that tests
//! choose, because JumpCloud's is not on record (the spec lists no 4xx for `User_Set`; audit
//! row 2c). The refusal texts are ours: JumpCloud's are not on record either.

use std::time::{Duration, SystemTime};

use crate::policy::{PasswordPolicy, Rule};

/// A few passwords every breach list ranks near the top (SecLists
/// `Passwords/Common-Credentials/10-million-password-list-top-100.txt` and the like), and
/// corporate patterns of the same kind that still meet a 12-character, four-class policy, so a
/// test can choose a password that passes every rule prestage checks and that only the
/// tenant's list refuses. JumpCloud's own list is not published: `disallowCommonlyUsedPasswords`
/// is all the spec says.
pub const COMMON_PASSWORDS: &[&str] = &[
    "123456",
    "password",
    "12345678",
    "qwerty",
    "123456789",
    "12345",
    "111111",
    "1234567",
    "iloveyou",
    "abc123",
    "password1",
    "qwerty123",
    "letmein",
    "welcome",
    "monkey",
    "dragon",
    "sunshine",
    "princess",
    "Passw0rd!",
    "P@ssw0rd",
    "P@ssw0rd2020!",
    "Welcome@2020",
    "Welcome@2024",
    "Summer@2024!",
];

/// Whether `password` is on [`COMMON_PASSWORDS`], ignoring case.
pub fn is_common(password: &str) -> bool {
    COMMON_PASSWORDS
        .iter()
        .any(|c| c.eq_ignore_ascii_case(password))
}

/// What the tenant knows of the user whose password is set.
pub(crate) struct Subject<'a> {
    pub usernames: &'a [&'a str],
    /// SHA-256 hex of the accepted passwords, oldest first.
    pub history: &'a [String],
    /// When the current password was set (`password_date`), if there is one.
    pub changed_at: Option<SystemTime>,
}

/// The reason the tenant refuses `password` (its hash is `hash`), or `None` when it takes it.
/// `history` is the number of earlier passwords that may not be reused (0 = no rule).
pub(crate) fn refusal(
    policy: &PasswordPolicy,
    history: u32,
    subject: &Subject<'_>,
    password: &str,
    hash: &str,
    now: SystemTime,
) -> Option<String> {
    if let Some(rule) = policy.unmet(password, subject.usernames).first() {
        return Some(rule_message(*rule));
    }
    if policy.forbid_common && is_common(password) {
        return Some("Password is too common: choose a less common password".into());
    }
    let keep = usize::try_from(history).unwrap_or(usize::MAX);
    if keep > 0 && subject.history.iter().rev().take(keep).any(|h| h == hash) {
        return Some(format!(
            "Password has been used recently: it must differ from the last {keep} passwords"
        ));
    }
    let min_age = Duration::from_secs(u64::from(policy.min_change_days) * 86_400);
    if let Some(at) = subject.changed_at.filter(|_| !min_age.is_zero()) {
        if now.duration_since(at).unwrap_or(Duration::ZERO) < min_age {
            return Some(format!(
                "Password was changed too recently: it can be changed again {} day(s) after the last change",
                policy.min_change_days
            ));
        }
    }
    None
}

/// The message JumpCloud-style for an unmet password rule.
fn rule_message(rule: Rule) -> String {
    match rule {
        Rule::MinLength(n) => format!("Password must be at least {n} characters long"),
        Rule::Uppercase => "Password must contain an uppercase letter".into(),
        Rule::Lowercase => "Password must contain a lowercase letter".into(),
        Rule::Number => "Password must contain a number".into(),
        Rule::Symbol => "Password must contain a special character".into(),
        Rule::NoUsername => "Password must not contain the username".into(),
        Rule::NoSequences => "Password must not contain sequential or repetitive characters".into(),
        // Not checked by `unmet`: the tenant's own checks above.
        Rule::NotCommon | Rule::History(_) | Rule::MinAge(_) => "Password is not allowed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(history: &[String], changed_at: Option<SystemTime>) -> Subject<'_> {
        Subject {
            usernames: &["ada.lovelace"],
            history,
            changed_at,
        }
    }

    #[test]
    fn every_rule_of_the_tenant_is_applied() {
        let policy = PasswordPolicy {
            forbid_username: true,
            forbid_sequences: true,
            forbid_common: true,
            min_change_days: 1,
            ..crate::demo::demo_policy()
        };
        let now = SystemTime::now();
        let none: Vec<String> = Vec::new();
        let judge = |pw: &str, s: &Subject<'_>| refusal(&policy, 2, s, pw, pw, now);
        assert!(judge("Welcome@2020", &subject(&none, None))
            .unwrap()
            .contains("too common"));
        assert!(judge("Ada.Lovelace-1843x", &subject(&none, None))
            .unwrap()
            .contains("username"));
        assert!(judge("Lovelace-Engine-123", &subject(&none, None))
            .unwrap()
            .contains("sequential"));
        let used = vec!["Analytical-Engine-1843".to_owned()];
        assert!(judge("Analytical-Engine-1843", &subject(&used, None))
            .unwrap()
            .contains("used recently"));
        let an_hour_ago = now - Duration::from_secs(3600);
        assert!(
            judge("Analytical-Engine-1843", &subject(&none, Some(an_hour_ago)))
                .unwrap()
                .contains("too recently")
        );
        let two_days_ago = now - Duration::from_secs(2 * 86_400);
        assert_eq!(
            judge(
                "Analytical-Engine-1843",
                &subject(&none, Some(two_days_ago))
            ),
            None
        );
    }

    #[test]
    fn the_common_list_has_passwords_that_pass_every_local_rule() {
        let policy = PasswordPolicy {
            forbid_username: true,
            forbid_sequences: true,
            ..crate::demo::demo_policy()
        };
        let passing: Vec<&&str> = COMMON_PASSWORDS
            .iter()
            .filter(|p| policy.unmet(p, &["ada.lovelace"]).is_empty())
            .collect();
        assert!(passing.len() >= 2, "{passing:?}");
        assert!(is_common("welcome@2020"));
    }
}
