//! What each employee screen shows, independent of how it is drawn.
//!
//! Every backend builds its screens here, from the same [`Strings`] and `UI.*` branding, so the
//! swiftDialog windows, the terminal prompts and the HTML preview cannot drift apart: swiftDialog
//! turns a [`Screen`] into arguments, the preview into HTML, the terminal into lines.

use crate::config::{Identifier, SecretKind, UiConfig};
use crate::policy::{Rule, RuleCheck, RuleStatus};
use crate::ui::strings::Strings;
use crate::ui::{IdentityPrompt, ItemStatus, PasswordPrompt, Progress};

/// Field names in swiftDialog's `--json` output (`name=` of `--textfield`).
pub mod field {
    pub const IDENTIFIER: &str = "identifier";
    pub const SECRET: &str = "secret";
    pub const PASSWORD: &str = "password";
    pub const CONFIRMATION: &str = "confirmation";
}

/// A loose email check for the company/personal email field. Nothing in it is cut by
/// swiftDialog's `--textfield` parser (no `word=`, no `,required` and the like:
/// `dialog::args`).
/// Spaces around the address are allowed: prestage trims the input, and swiftDialog would
/// otherwise refuse an address typed with a trailing space.
pub const EMAIL_REGEX: &str = r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$";

/// The string id of the identifier field's label for `Identity.Identifier`.
pub fn identifier_label_id(identifier: Identifier) -> &'static str {
    match identifier {
        Identifier::CompanyEmail => "identity.label.company_email",
        Identifier::PersonalEmail => "identity.label.personal_email",
        Identifier::LastName => "identity.label.last_name",
        Identifier::Username => "identity.label.username",
    }
}

/// The string id of the secret field's label for `Identity.Secret` (`None`: no secret asked).
pub fn secret_label_id(secret: &SecretKind) -> Option<&'static str> {
    match secret {
        SecretKind::None => None,
        SecretKind::EmployeeId => Some("identity.secret.employee_id"),
        SecretKind::Attribute(_) => Some("identity.secret.attribute"),
    }
}

/// Which screen of SPEC §6 this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScreenKind {
    Progress,
    Identity,
    IdentityRejected,
    Password,
    Done,
    Error,
}

impl ScreenKind {
    /// A short stable name (file names of the preview, scripted transcripts).
    pub fn name(self) -> &'static str {
        match self {
            ScreenKind::Progress => "progress",
            ScreenKind::Identity => "identity",
            ScreenKind::IdentityRejected => "identity-rejected",
            ScreenKind::Password => "password",
            ScreenKind::Done => "done",
            ScreenKind::Error => "error",
        }
    }
}

/// One text field of a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub label: String,
    /// The key of the value in the `--json` output.
    pub name: &'static str,
    pub secure: bool,
    pub required: bool,
    /// A pattern swiftDialog checks before it lets the window close, and its message.
    pub regex: Option<(String, String)>,
}

/// Everything one screen shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screen {
    pub kind: ScreenKind,
    pub title: String,
    /// Markdown (swiftDialog renders `--message` as markdown); real newlines.
    pub message: String,
    pub fields: Vec<Field>,
    /// The default button's label; `None` for the progress window, which has no button to press.
    pub button1: Option<String>,
    pub progress: Option<u8>,
    pub progress_text: Option<String>,
    pub items: Vec<(String, ItemStatus)>,
}

impl Screen {
    fn question(kind: ScreenKind, title: String, message: String, button: String) -> Self {
        Self {
            kind,
            title,
            message,
            fields: Vec::new(),
            button1: Some(button),
            progress: None,
            progress_text: None,
            items: Vec::new(),
        }
    }
}

/// The status text of a progress update, placeholders filled.
pub fn progress_text(strings: &Strings, progress: &Progress) -> String {
    let args: Vec<(&str, &str)> = progress
        .args
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    strings.format(progress.text_id, &args)
}

/// The long-lived welcome / setting-up window (SPEC §6 screens 1 and 4).
pub fn progress(ui: &UiConfig, strings: &Strings, progress: &Progress) -> Screen {
    let title = ui
        .window_title
        .clone()
        .unwrap_or_else(|| strings.get("window.title").into_owned());
    let welcome_title = ui
        .welcome_title
        .clone()
        .unwrap_or_else(|| strings.get("welcome.title").into_owned());
    let welcome_text = ui
        .welcome_text
        .clone()
        .unwrap_or_else(|| strings.get("welcome.text").into_owned());
    Screen {
        kind: ScreenKind::Progress,
        title,
        message: format!("## {welcome_title}\n\n{welcome_text}"),
        fields: Vec::new(),
        button1: None,
        progress: Some(progress.percent.min(100)),
        progress_text: Some(progress_text(strings, progress)),
        items: progress
            .steps
            .iter()
            .map(|s| (strings.get(s.title_id).into_owned(), s.status))
            .collect(),
    }
}

/// Who are you (SPEC §6 screen 2). After a miss the message says so and how many tries are left.
pub fn identity(strings: &Strings, prompt: &IdentityPrompt) -> Screen {
    let mut message = strings.get("identity.message").into_owned();
    if let Some(left) = prompt.attempts_left {
        message = format!(
            "**{}**\n\n{}\n\n{message}",
            strings.get("identity.retry"),
            strings.format("identity.attempts_left", &[("attempts", &left.to_string())]),
        );
    }
    let mut screen = Screen::question(
        ScreenKind::Identity,
        strings.get("identity.title").into_owned(),
        message,
        strings.get("button.continue").into_owned(),
    );
    let is_email = matches!(
        prompt.identifier_label_id,
        "identity.label.company_email" | "identity.label.personal_email"
    );
    screen.fields.push(Field {
        label: strings.get(prompt.identifier_label_id).into_owned(),
        name: field::IDENTIFIER,
        secure: false,
        required: true,
        regex: is_email.then(|| {
            (
                EMAIL_REGEX.to_owned(),
                strings.get("identity.invalid_email").into_owned(),
            )
        }),
    });
    if let Some(secret) = prompt.secret_label_id {
        screen.fields.push(Field {
            label: strings.get(secret).into_owned(),
            name: field::SECRET,
            secure: true,
            required: true,
            regex: None,
        });
    }
    screen
}

/// The identity check failed: the same words for every cause; with a cool-down, until when.
pub fn identity_rejected(
    strings: &Strings,
    attempts_left: u32,
    cooldown_seconds: Option<u64>,
) -> Screen {
    let message = match cooldown_seconds {
        Some(secs) => strings.format(
            "identity.locked",
            &[("minutes", &secs.div_ceil(60).max(1).to_string())],
        ),
        None => format!(
            "{}\n\n{}",
            strings.get("identity.retry"),
            strings.format(
                "identity.attempts_left",
                &[("attempts", &attempts_left.to_string())]
            )
        ),
    };
    Screen::question(
        ScreenKind::IdentityRejected,
        strings.get("identity.rejected.title").into_owned(),
        message,
        strings.get("button.ok").into_owned(),
    )
}

/// The text of one password rule (the texts live with the other strings).
pub fn rule_text(strings: &Strings, rule: Rule) -> String {
    crate::ui::strings::rule_text(strings, rule)
}

/// Choose a password (SPEC §6 screen 3): the policy up front; after a failed try, what went
/// wrong, and the policy as a checklist of what the last try met.
pub fn password(strings: &Strings, prompt: &PasswordPrompt) -> Screen {
    let mut parts = Vec::new();
    if prompt.mismatch {
        parts.push(format!("**{}**", strings.get("password.mismatch")));
    }
    if !prompt.unmet.is_empty() {
        parts.push(format!("**{}**", strings.get("password.unmet")));
    }
    if let Some(reason) = &prompt.rejected_by_directory {
        parts.push(format!(
            "**{}**",
            strings.format("password.rejected", &[("reason", reason)])
        ));
    }
    parts.push(strings.format("password.message", &[("account", &prompt.account)]));
    // One checklist: every rule of the policy once, marked met or not after a try (the rules
    // only JumpCloud checks say so), plus any rule a try missed that the policy does not list.
    let mut checks = prompt.checklist();
    for rule in &prompt.unmet {
        if !checks.iter().any(|c| c.rule == *rule) {
            checks.push(RuleCheck {
                rule: *rule,
                status: RuleStatus::Unmet,
            });
        }
    }
    if !checks.is_empty() {
        let lines: Vec<String> = checks
            .iter()
            .map(|c| {
                let text = crate::ui::strings::rule_line(strings, *c);
                let line = match c.status {
                    RuleStatus::Met => strings.format("password.rule.met", &[("rule", &text)]),
                    RuleStatus::Unmet => strings.format("password.rule.unmet", &[("rule", &text)]),
                    RuleStatus::Unchecked | RuleStatus::CheckedByDirectory => text,
                };
                format!("- {line}")
            })
            .collect();
        parts.push(format!(
            "{}\n{}",
            strings.get("password.rules"),
            lines.join("\n")
        ));
    }
    let mut screen = Screen::question(
        ScreenKind::Password,
        strings.get("password.title").into_owned(),
        parts.join("\n\n"),
        strings.get("button.continue").into_owned(),
    );
    for (label, name) in [
        ("password.label", field::PASSWORD),
        ("password.confirm_label", field::CONFIRMATION),
    ] {
        screen.fields.push(Field {
            label: strings.get(label).into_owned(),
            name,
            secure: true,
            required: true,
            regex: None,
        });
    }
    screen
}

/// Done (SPEC §6 screen 5).
pub fn done(strings: &Strings, account: &str) -> Screen {
    Screen::question(
        ScreenKind::Done,
        strings.get("done.title").into_owned(),
        strings.format("done.message", &[("account", account)]),
        strings.get("button.log_out").into_owned(),
    )
}

/// An error the employee cannot fix, with the reference code that is also in the log.
pub fn fatal(strings: &Strings, reference: &str, detail_id: &str) -> Screen {
    let detail = strings.get(detail_id);
    Screen::question(
        ScreenKind::Error,
        strings.get("error.title").into_owned(),
        strings.format(
            "error.message",
            &[("detail", &detail), ("reference", reference)],
        ),
        strings.get("button.ok").into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PasswordPolicy;

    fn prompt(unmet: Vec<Rule>, mismatch: bool) -> PasswordPrompt {
        PasswordPrompt {
            account: "ada".into(),
            policy: PasswordPolicy {
                min_length: 12,
                require_uppercase: true,
                require_lowercase: false,
                require_number: true,
                require_symbol: false,
                ..PasswordPolicy::default()
            },
            unmet,
            mismatch,
            rejected_by_directory: None,
        }
    }

    #[test]
    fn password_lists_policy_up_front_then_one_checklist_after_a_miss() {
        let s = Strings::default();
        let first = password(&s, &prompt(vec![], false));
        assert!(first.message.contains("- at least 12 characters"));
        assert!(first.message.contains("- an upper-case letter"));
        assert!(!first.message.contains('✓') && !first.message.contains('✗'));
        let again = password(&s, &prompt(vec![Rule::MinLength(12), Rule::Number], false));
        let rule_lines: Vec<&str> = again
            .message
            .lines()
            .filter(|l| l.starts_with("- "))
            .collect();
        // Every rule once, each marked: no second list.
        assert_eq!(
            rule_lines,
            vec![
                "- ✗ **at least 12 characters**",
                "- ✓ an upper-case letter (A–Z)",
                "- ✗ **a number (0–9)**"
            ],
            "{}",
            again.message
        );
        assert_eq!(again.message.matches("at least 12 characters").count(), 1);
        assert_eq!(again.fields.len(), 2);
        assert!(again.fields.iter().all(|f| f.secure && f.required));
        // A missed rule the policy does not list still shows, as missed.
        let extra = password(&s, &prompt(vec![Rule::Symbol], false));
        assert!(
            extra.message.contains("- ✗ **a symbol"),
            "{}",
            extra.message
        );
    }

    #[test]
    fn identity_shows_attempts_left_and_secret_only_when_asked() {
        let s = Strings::default();
        let p = IdentityPrompt {
            identifier_label_id: "identity.label.company_email",
            secret_label_id: None,
            attempts_left: None,
        };
        let first = identity(&s, &p);
        assert_eq!(first.fields.len(), 1);
        assert!(first.fields[0].regex.is_some());
        assert!(!first.message.contains("Attempts left"));
        let again = identity(
            &s,
            &IdentityPrompt {
                identifier_label_id: "identity.label.last_name",
                secret_label_id: Some("identity.secret.employee_id"),
                attempts_left: Some(3),
            },
        );
        assert!(again.message.contains("Attempts left: 3"));
        assert_eq!(again.fields[1].label, "Your employee ID");
        assert!(again.fields[1].secure);
        assert!(again.fields[0].regex.is_none());
    }

    #[test]
    fn label_ids_exist() {
        for i in [
            Identifier::CompanyEmail,
            Identifier::PersonalEmail,
            Identifier::LastName,
            Identifier::Username,
        ] {
            assert!(crate::ui::strings::is_known_id(identifier_label_id(i)));
        }
        for k in [SecretKind::EmployeeId, SecretKind::Attribute("code".into())] {
            assert!(crate::ui::strings::is_known_id(
                secret_label_id(&k).unwrap()
            ));
        }
        assert_eq!(secret_label_id(&SecretKind::None), None);
    }

    #[test]
    fn email_regex_has_no_comma() {
        assert!(!EMAIL_REGEX.contains(','));
        let re = regex::Regex::new(EMAIL_REGEX).unwrap();
        assert!(re.is_match("ada@example.com"));
        assert!(re.is_match(" ada@example.com "));
        assert!(!re.is_match("ada lovelace"));
        assert!(!re.is_match("ada @example.com"));
    }
}
