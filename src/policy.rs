//! Password policy: the rules an employee's new password must meet, whether they come from the
//! tenant (`GET /api/organizations/{id}` → `settings.passwordPolicy`) or from `Password.Policy`.
//!
//! The engine checks a password locally before sending it, and the UI lists every rule up
//! front and, after a failed try, marks each as met, unmet or "checked by JumpCloud"
//! ([`PasswordPolicy::checklist`]). Some of the tenant's rules cannot be checked here: whether
//! a password is a commonly used one (JumpCloud's list is not published), the password
//! history and the minimum time between changes (JumpCloud keeps both). Those are named up
//! front and left to JumpCloud, whose refusal the employee then reads.

use serde::{Deserialize, Serialize};

/// The rules of a password policy. The first five come from `Password.Policy` too; the rest
/// only from the tenant's `passwordPolicy` (v1.json `organizationsettings.passwordPolicy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordPolicy {
    pub min_length: u32,
    pub require_uppercase: bool,
    pub require_lowercase: bool,
    pub require_number: bool,
    pub require_symbol: bool,
    /// `allowUsernameSubstring: false`: the password must not contain the username.
    #[serde(default)]
    pub forbid_username: bool,
    /// `disallowSequentialOrRepetitiveChars`: see [`has_run`] for the rule as we read it.
    #[serde(default)]
    pub forbid_sequences: bool,
    /// `disallowCommonlyUsedPasswords`: checked by JumpCloud only.
    #[serde(default)]
    pub forbid_common: bool,
    /// `maxHistory` (with `enableMaxHistory`): not one of the last N passwords; 0 = no rule.
    /// Checked by JumpCloud only.
    #[serde(default)]
    pub history: u32,
    /// `minChangePeriodInDays` (with `enableMinChangePeriodInDays`): days before a password
    /// may be changed again; 0 = no rule. Checked by JumpCloud only.
    #[serde(default)]
    pub min_change_days: u32,
}

impl Default for PasswordPolicy {
    /// 8 characters and nothing else: JumpCloud's lowest allowed minimum length ("The minimum
    /// allowable setting is 8 characters"; new organisations start at 12: JumpCloud's "Manage
    /// Password and Security Settings").
    fn default() -> Self {
        Self {
            min_length: 8,
            require_uppercase: false,
            require_lowercase: false,
            require_number: false,
            require_symbol: false,
            forbid_username: false,
            forbid_sequences: false,
            forbid_common: false,
            history: 0,
            min_change_days: 0,
        }
    }
}

/// One rule of a [`PasswordPolicy`], named so the UI can show it and say it was missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", content = "value", rename_all = "snake_case")]
pub enum Rule {
    MinLength(u32),
    Uppercase,
    Lowercase,
    Number,
    Symbol,
    /// Does not contain the username.
    NoUsername,
    /// No run of three repeated or consecutive letters or digits ([`has_run`]).
    NoSequences,
    /// Not a commonly used password (JumpCloud checks).
    NotCommon,
    /// Not one of the last N passwords (JumpCloud checks).
    History(u32),
    /// At least N days since the last change (JumpCloud checks).
    MinAge(u32),
}

/// Where a rule stands for the password last tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleStatus {
    /// Nothing tried yet.
    Unchecked,
    Met,
    Unmet,
    /// Only JumpCloud can tell; it does when the password is set.
    CheckedByDirectory,
}

/// One line of the checklist the password screen shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleCheck {
    pub rule: Rule,
    pub status: RuleStatus,
}

impl PasswordPolicy {
    /// Every rule of this policy, in the order the UI lists them: those checked here first,
    /// then those only JumpCloud checks.
    pub fn rules(&self) -> Vec<Rule> {
        let mut rules = Vec::new();
        if self.min_length > 0 {
            rules.push(Rule::MinLength(self.min_length));
        }
        if self.require_uppercase {
            rules.push(Rule::Uppercase);
        }
        if self.require_lowercase {
            rules.push(Rule::Lowercase);
        }
        if self.require_number {
            rules.push(Rule::Number);
        }
        if self.require_symbol {
            rules.push(Rule::Symbol);
        }
        if self.forbid_username {
            rules.push(Rule::NoUsername);
        }
        if self.forbid_sequences {
            rules.push(Rule::NoSequences);
        }
        if self.forbid_common {
            rules.push(Rule::NotCommon);
        }
        if self.history > 0 {
            rules.push(Rule::History(self.history));
        }
        if self.min_change_days > 0 {
            rules.push(Rule::MinAge(self.min_change_days));
        }
        rules
    }

    /// The rules checked here that `password` does not meet; empty when it passes them.
    /// `usernames` are the names the password must not contain (empty ones are ignored).
    pub fn unmet(&self, password: &str, usernames: &[&str]) -> Vec<Rule> {
        self.rules()
            .into_iter()
            .filter(|rule| rule.check(password, usernames) == RuleStatus::Unmet)
            .collect()
    }

    /// Every rule with its status for `tried` (the password and the usernames), or
    /// [`RuleStatus::Unchecked`] for all rules checked here when nothing was tried yet.
    pub fn checklist(&self, tried: Option<(&str, &[&str])>) -> Vec<RuleCheck> {
        self.rules()
            .into_iter()
            .map(|rule| {
                let status = match tried {
                    _ if !rule.checked_locally() => RuleStatus::CheckedByDirectory,
                    None => RuleStatus::Unchecked,
                    Some((password, usernames)) => rule.check(password, usernames),
                };
                RuleCheck { rule, status }
            })
            .collect()
    }
}

impl Rule {
    /// Whether prestage can check this rule itself (else only JumpCloud can).
    pub fn checked_locally(self) -> bool {
        !matches!(self, Rule::NotCommon | Rule::History(_) | Rule::MinAge(_))
    }

    /// Whether `password` meets this rule; [`RuleStatus::CheckedByDirectory`] for the rules
    /// only JumpCloud can check. Length counts characters, not bytes.
    pub fn check(self, password: &str, usernames: &[&str]) -> RuleStatus {
        let met = match self {
            Rule::MinLength(n) => u32::try_from(password.chars().count()).unwrap_or(u32::MAX) >= n,
            Rule::Uppercase => password.chars().any(char::is_uppercase),
            Rule::Lowercase => password.chars().any(char::is_lowercase),
            Rule::Number => password.chars().any(|c| c.is_ascii_digit()),
            Rule::Symbol => password
                .chars()
                .any(|c| !c.is_alphanumeric() && !c.is_whitespace()),
            Rule::NoUsername => !contains_username(password, usernames),
            Rule::NoSequences => !has_run(password),
            Rule::NotCommon | Rule::History(_) | Rule::MinAge(_) => {
                return RuleStatus::CheckedByDirectory
            }
        };
        if met {
            RuleStatus::Met
        } else {
            RuleStatus::Unmet
        }
    }
}

/// Whether `password` contains one of `usernames`, ignoring case (JumpCloud: "Originality:
/// Prevent the user from inserting their username within the password", Password Complexity
/// Management). Empty names are ignored.
pub fn contains_username(password: &str, usernames: &[&str]) -> bool {
    let password = password.to_lowercase();
    usernames
        .iter()
        .map(|u| u.trim().to_lowercase())
        .any(|u| !u.is_empty() && password.contains(&u))
}

/// Whether `password` has a run of three repeated or consecutive letters or digits.
///
/// JumpCloud does not define `disallowSequentialOrRepetitiveChars` in its spec or docs. The
/// one wording on record is a JumpCloud customer's copy of the tenant's rules (ECTS,
/// "JumpCloud Minimum Password Requirements": "Must not include repeated or sequential
/// patterns of 3 or more alpha-numeric characters"). Our reading, precisely: three characters
/// in a row, all ASCII digits or all ASCII letters (compared ignoring case), where each is the
/// same as the one before (`aaa`, `111`) or each is one more (`abc`, `123`) or each one less
/// (`cba`, `321`) than the one before. No wrap-around (`yza`, `901` pass); symbols and other
/// letters never form a run. JumpCloud may read its rule more strictly: it still has the last
/// word, and its refusal reaches the employee.
pub fn has_run(password: &str) -> bool {
    let chars: Vec<char> = password.chars().collect();
    chars.windows(3).any(|w| {
        let kind = |c: char| {
            if c.is_ascii_digit() {
                Some((0, c as i32))
            } else if c.is_ascii_alphabetic() {
                Some((1, c.to_ascii_lowercase() as i32))
            } else {
                None
            }
        };
        let (Some((k0, a)), Some((k1, b)), Some((k2, c))) = (kind(w[0]), kind(w[1]), kind(w[2]))
        else {
            return false;
        };
        k0 == k1 && k1 == k2 && b - a == c - b && (b - a).abs() <= 1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> PasswordPolicy {
        PasswordPolicy {
            min_length: 12,
            require_uppercase: true,
            require_lowercase: true,
            require_number: true,
            require_symbol: true,
            ..PasswordPolicy::default()
        }
    }

    #[test]
    fn names_every_unmet_rule() {
        assert_eq!(
            strict().unmet("short", &[]),
            vec![
                Rule::MinLength(12),
                Rule::Uppercase,
                Rule::Number,
                Rule::Symbol
            ]
        );
        assert!(strict().unmet("Correct-Horse-7-Battery", &[]).is_empty());
    }

    #[test]
    fn length_counts_characters() {
        let p = PasswordPolicy {
            min_length: 4,
            ..PasswordPolicy::default()
        };
        assert!(p.unmet("äöüß", &[]).is_empty());
        assert_eq!(p.unmet("äöü", &[]), vec![Rule::MinLength(4)]);
    }

    #[test]
    fn runs_of_three_as_we_read_the_rule() {
        for bad in [
            "xaaax", "x111x", "abc", "CBA", "aBc", "x123", "987x", "ZZZ", "xyz",
        ] {
            assert!(has_run(bad), "{bad}");
        }
        for good in [
            "aab",
            "ab-c",
            "a1b2c3",
            "yza",
            "901",
            "!!!",
            "1a2",
            "ääää",
            "acegik",
            "Ab9",
            "Correct-Horse-7-Battery",
            "Analytical-Engine-1843",
        ] {
            assert!(!has_run(good), "{good}");
        }
    }

    #[test]
    fn username_anywhere_in_any_case() {
        assert!(contains_username("xxAda.Lxx", &["", "ada.l"]));
        assert!(!contains_username("Adal", &["ada.l"]));
        assert!(!contains_username("anything", &["", "  "]));
    }

    #[test]
    fn the_tenants_extra_rules_are_listed_after_the_local_ones_and_marked() {
        let p = PasswordPolicy {
            forbid_username: true,
            forbid_sequences: true,
            forbid_common: true,
            history: 5,
            min_change_days: 1,
            ..strict()
        };
        assert_eq!(
            p.rules()[5..],
            [
                Rule::NoUsername,
                Rule::NoSequences,
                Rule::NotCommon,
                Rule::History(5),
                Rule::MinAge(1)
            ]
        );
        assert_eq!(
            p.unmet("Ada.Lovelace-1234x", &["ada.lovelace"]),
            vec![Rule::NoUsername, Rule::NoSequences]
        );
        let before = p.checklist(None);
        assert!(before[..7]
            .iter()
            .all(|c| c.status == RuleStatus::Unchecked));
        assert!(before[7..]
            .iter()
            .all(|c| c.status == RuleStatus::CheckedByDirectory));
        let after = p.checklist(Some(("Ada.Lovelace-1234x", &["ada.lovelace"])));
        let status = |r: Rule| after.iter().find(|c| c.rule == r).unwrap().status;
        assert_eq!(status(Rule::MinLength(12)), RuleStatus::Met);
        assert_eq!(status(Rule::NoUsername), RuleStatus::Unmet);
        assert_eq!(status(Rule::NoSequences), RuleStatus::Unmet);
        assert_eq!(status(Rule::NotCommon), RuleStatus::CheckedByDirectory);
    }

    #[test]
    fn a_policy_saved_before_the_extra_rules_still_loads() {
        let old = r#"{"min_length":12,"require_uppercase":true,"require_lowercase":false,"require_number":true,"require_symbol":false}"#;
        let p: PasswordPolicy = serde_json::from_str(old).unwrap();
        assert_eq!(p.min_length, 12);
        assert!(!p.forbid_common && p.history == 0);
    }
}
