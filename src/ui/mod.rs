//! The employee's screens (SPEC §6).
//!
//! The engine talks to a [`Ui`]; `dialog::DialogUi` drives swiftDialog (2.5.0 or later), `scripted::ScriptedUi`
//! answers from a script (tests, `prestage demo`), `terminal::TerminalUi` asks in the terminal
//! (`demo --interactive`). `strings` holds every text by id with translations; `preview` draws
//! every screen to HTML for admins. `screen` builds what each screen shows, once, for all of
//! them; `fake_dialog` is a stand-in for swiftDialog's `dialog` used by tests and the simulator.

pub mod deferred;
pub mod dialog;
#[cfg(feature = "sim")]
pub mod fake_dialog;
pub mod help;
pub mod preview;
pub mod screen;
#[cfg(feature = "sim")]
pub mod scripted;
pub mod strings;
#[cfg(feature = "sim")]
pub mod terminal;

use async_trait::async_trait;
use secrecy::SecretString;
use thiserror::Error;

use crate::policy::{PasswordPolicy, Rule, RuleCheck, RuleStatus};

/// A UI failure. `Cancelled` is the employee closing a dialog (quit key); the engine asks again.
#[derive(Debug, Error)]
pub enum UiError {
    #[error("swiftDialog is not installed at {path}: {hint}")]
    DialogMissing { path: String, hint: String },
    /// The installed swiftDialog is older than 2.5.0 (`name=` of text fields).
    #[error("swiftDialog {found} is installed, but prestage needs 2.5.0 or later: {hint}")]
    DialogTooOld { found: String, hint: String },
    /// Exit 30: a profile requires an authorisation key prestage does not pass.
    #[error(
        "swiftDialog refused to open any window (exit code 30, key authorisation required): {hint}"
    )]
    DialogAuthorisation { hint: String },
    #[error("swiftDialog failed: {0}")]
    Dialog(String),
    #[error("the dialog was closed without an answer (exit code {code})")]
    Cancelled { code: i32 },
    #[error("nobody is logged in at the console to see the dialog")]
    NoConsoleUser,
    /// No answer can ever come to this question (a rehearsal's script ran out, a terminal
    /// closed): waiting would hang, so the engine stops with a reference code.
    #[error("no answer can come to the question {0:?}")]
    Unanswerable(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The status of one line of the step list in the progress window
/// (swiftDialog `listitem` statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemStatus {
    Pending,
    Wait,
    Success,
    Fail,
}

/// One line of the step list shown on the progress window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepItem {
    /// String id of the line's title (see `strings`).
    pub title_id: &'static str,
    pub status: ItemStatus,
}

/// What the long-lived progress window should show now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// 0..=100.
    pub percent: u8,
    /// String id of the status text, e.g. `progress.installing_agent`.
    pub text_id: &'static str,
    /// Values substituted into `{name}` placeholders of the text.
    pub args: Vec<(&'static str, String)>,
    pub steps: Vec<StepItem>,
}

/// The "who are you" question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityPrompt {
    /// String id of the identifier's label (depends on `Identity.Identifier`).
    pub identifier_label_id: &'static str,
    /// String id of the secret's label, when a secret is asked.
    pub secret_label_id: Option<&'static str>,
    /// Set after a miss: attempts the employee has left.
    pub attempts_left: Option<u32>,
}

/// The employee's answer to [`IdentityPrompt`]. The secret goes straight into a secret type.
#[derive(Debug)]
pub struct IdentityAnswer {
    pub identifier: String,
    pub secret: Option<SecretString>,
}

/// The "choose a password" question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPrompt {
    /// The local account name the password is for (shown to the employee).
    pub account: String,
    pub policy: PasswordPolicy,
    /// After a failed try: the rules the last password did not meet.
    pub unmet: Vec<Rule>,
    /// After a failed try: the confirmation did not match.
    pub mismatch: bool,
    /// After JumpCloud refused the password (e.g. history rules) — its message, shown as is.
    pub rejected_by_directory: Option<String>,
}

impl PasswordPrompt {
    /// Every rule of the policy with where it stands after the last try: met or unmet for the
    /// rules prestage checks (unchecked before the first try), "checked by JumpCloud" for the
    /// others (commonly used passwords, history, minimum age).
    pub fn checklist(&self) -> Vec<RuleCheck> {
        let tried = !self.unmet.is_empty() || self.mismatch || self.rejected_by_directory.is_some();
        self.policy
            .rules()
            .into_iter()
            .map(|rule| {
                let status = if !rule.checked_locally() {
                    RuleStatus::CheckedByDirectory
                } else if !tried {
                    RuleStatus::Unchecked
                } else if self.unmet.contains(&rule) {
                    RuleStatus::Unmet
                } else {
                    RuleStatus::Met
                };
                RuleCheck { rule, status }
            })
            .collect()
    }
}

/// The employee's new password and its confirmation.
#[derive(Debug)]
pub struct PasswordAnswer {
    pub password: SecretString,
    pub confirmation: SecretString,
}

/// The employee's screens. One long-lived progress window plus modal questions.
#[async_trait]
pub trait Ui: Send {
    /// Shows (or updates) the full-screen welcome/progress window.
    async fn progress(&mut self, progress: &Progress) -> Result<(), UiError>;
    /// Asks who the employee is.
    async fn ask_identity(&mut self, prompt: &IdentityPrompt) -> Result<IdentityAnswer, UiError>;
    /// Tells the employee the identity check failed (same message for every cause) and, while
    /// they are locked out, until when.
    async fn identity_rejected(
        &mut self,
        attempts_left: u32,
        cooldown_seconds: Option<u64>,
    ) -> Result<(), UiError>;
    /// Asks for a new password (and its confirmation).
    async fn ask_password(&mut self, prompt: &PasswordPrompt) -> Result<PasswordAnswer, UiError>;
    /// Tells the employee to log in with their JumpCloud account `account`.
    async fn done(&mut self, account: &str) -> Result<(), UiError>;
    /// Done without a setup account: the employee stays logged in to `account`, their own,
    /// which now uses their JumpCloud password. Defaults to [`Ui::done`] for a UI without its
    /// own screen for it.
    async fn done_own_account(&mut self, account: &str) -> Result<(), UiError> {
        self.done(account).await
    }
    /// An error the employee cannot fix: "contact IT" with a reference code.
    async fn fatal(&mut self, reference: &str, detail_id: &'static str) -> Result<(), UiError>;
    /// Closes every window prestage opened.
    async fn close(&mut self) -> Result<(), UiError>;
    /// What `UI.HelpMessage`'s tokens are filled with on the windows from now on.
    fn set_help_facts(&mut self, facts: &help::HelpFacts) {
        let _ = facts;
    }
}
