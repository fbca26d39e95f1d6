//! Password policy: the rules an employee's new password must meet, whether they come from the
//! tenant (`GET /api/organizations/{id}` → `settings.passwordPolicy`) or from `Password.Policy`.
//!
//! The engine checks a password locally before sending it, and the UI lists the rules up front
//! and names every unmet one after a failed try.

use serde::{Deserialize, Serialize};

/// The rules prestage enforces locally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordPolicy {
    pub min_length: u32,
    pub require_uppercase: bool,
    pub require_lowercase: bool,
    pub require_number: bool,
    pub require_symbol: bool,
}

impl Default for PasswordPolicy {
    /// JumpCloud's default policy for new organisations: 8 characters, no class rules.
    fn default() -> Self {
        Self {
            min_length: 8,
            require_uppercase: false,
            require_lowercase: false,
            require_number: false,
            require_symbol: false,
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
}

impl PasswordPolicy {
    /// Every rule of this policy, in the order the UI lists them.
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
        rules
    }

    /// The rules `password` does not meet; empty when it passes.
    pub fn unmet(&self, password: &str) -> Vec<Rule> {
        self.rules()
            .into_iter()
            .filter(|rule| !rule.is_met(password))
            .collect()
    }
}

impl Rule {
    /// Whether `password` meets this rule. Length counts characters, not bytes.
    pub fn is_met(self, password: &str) -> bool {
        match self {
            Rule::MinLength(n) => u32::try_from(password.chars().count()).unwrap_or(u32::MAX) >= n,
            Rule::Uppercase => password.chars().any(char::is_uppercase),
            Rule::Lowercase => password.chars().any(char::is_lowercase),
            Rule::Number => password.chars().any(|c| c.is_ascii_digit()),
            Rule::Symbol => password
                .chars()
                .any(|c| !c.is_alphanumeric() && !c.is_whitespace()),
        }
    }
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
        }
    }

    #[test]
    fn names_every_unmet_rule() {
        assert_eq!(
            strict().unmet("short"),
            vec![
                Rule::MinLength(12),
                Rule::Uppercase,
                Rule::Number,
                Rule::Symbol
            ]
        );
        assert!(strict().unmet("Correct-Horse-7-Battery").is_empty());
    }

    #[test]
    fn length_counts_characters() {
        let p = PasswordPolicy {
            min_length: 4,
            ..PasswordPolicy::default()
        };
        assert!(p.unmet("äöüß").is_empty());
        assert_eq!(p.unmet("äöü"), vec![Rule::MinLength(4)]);
    }
}
