//! A UI that answers from a script: used by tests and `prestage demo`.
//!
//! It draws nothing; it records one line per screen (its [`ScriptedUi::transcript`], e.g.
//! `identity: Who are you? (attempts left 4)`), built from the same [`screen`] texts as the
//! real windows, and optionally echoes each line as it happens.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::Path;

use async_trait::async_trait;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::config::UiConfig;
use crate::ui::screen;
use crate::ui::strings::Strings;
use crate::ui::{
    IdentityAnswer, IdentityPrompt, PasswordAnswer, PasswordPrompt, Progress, Ui, UiError,
};

/// One scripted answer to "who are you". `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptedIdentity {
    pub identifier: String,
    #[serde(default)]
    pub secret: Option<String>,
}

/// One scripted new password; the confirmation defaults to the password. `Debug` hides both.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptedPassword {
    pub password: String,
    #[serde(default)]
    pub confirmation: Option<String>,
}

impl std::fmt::Debug for ScriptedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedIdentity")
            .field("identifier", &self.identifier)
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

impl std::fmt::Debug for ScriptedPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScriptedPassword([REDACTED])")
    }
}

/// The answers, in the order they are asked. Test data, not real secrets: kept as plain text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Script {
    #[serde(default)]
    pub identities: VecDeque<ScriptedIdentity>,
    #[serde(default)]
    pub passwords: VecDeque<ScriptedPassword>,
}

/// A script file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("cannot read the answer script {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the answer script {path} is not valid JSON ({{\"identities\": [...], \"passwords\": [...]}}): {source}")]
    Parse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

impl Script {
    /// Reads a JSON script: `{"identities": [{"identifier": "...", "secret": "..."}],
    /// "passwords": [{"password": "...", "confirmation": "..."}]}`.
    pub fn load(path: &Path) -> Result<Self, ScriptError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScriptError::Read {
            path: path.display().to_string(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ScriptError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    /// A script with one identity and one password.
    pub fn simple(identifier: &str, secret: Option<&str>, password: &str) -> Self {
        Self {
            identities: VecDeque::from([ScriptedIdentity {
                identifier: identifier.to_owned(),
                secret: secret.map(str::to_owned),
            }]),
            passwords: VecDeque::from([ScriptedPassword {
                password: password.to_owned(),
                confirmation: None,
            }]),
        }
    }
}

/// The scripted UI. See the module docs.
#[derive(Debug)]
pub struct ScriptedUi {
    script: Script,
    ui: UiConfig,
    strings: Strings,
    transcript: Vec<String>,
    echo: bool,
    last_progress: Option<String>,
}

impl ScriptedUi {
    pub fn new(script: Script, ui: UiConfig, strings: Strings) -> Self {
        Self {
            script,
            ui,
            strings,
            transcript: Vec::new(),
            echo: false,
            last_progress: None,
        }
    }

    /// Also prints every line to stdout as it is recorded (for `prestage demo`).
    #[must_use]
    pub fn with_echo(mut self, echo: bool) -> Self {
        self.echo = echo;
        self
    }

    /// One line per screen shown, in order.
    pub fn transcript(&self) -> &[String] {
        &self.transcript
    }

    /// What is left of the script.
    pub fn remaining(&self) -> &Script {
        &self.script
    }

    fn record(&mut self, line: String) {
        if self.echo {
            println!("screen: {line}");
        }
        self.transcript.push(line);
    }
}

#[async_trait]
impl Ui for ScriptedUi {
    async fn progress(&mut self, progress: &Progress) -> Result<(), UiError> {
        let s = screen::progress(&self.ui, &self.strings, progress);
        let line = format!(
            "progress {}%: {}",
            s.progress.unwrap_or(0),
            s.progress_text.unwrap_or_default()
        );
        // Repeated identical updates (polling loops) are one line.
        if self.last_progress.as_deref() != Some(line.as_str()) {
            self.last_progress = Some(line.clone());
            self.record(line);
        }
        Ok(())
    }

    async fn ask_identity(&mut self, prompt: &IdentityPrompt) -> Result<IdentityAnswer, UiError> {
        let s = screen::identity(&self.strings, prompt);
        let fields: Vec<&str> = s.fields.iter().map(|f| f.label.as_str()).collect();
        let mut line = format!("identity: {} [{}]", s.title, fields.join(" | "));
        if let Some(left) = prompt.attempts_left {
            let _ = write!(line, " (attempts left {left})");
        }
        self.record(line);
        let answer = self.script.identities.pop_front().ok_or_else(|| {
            UiError::Unanswerable("who are you (the scripted answers ran out)".into())
        })?;
        Ok(IdentityAnswer {
            identifier: answer.identifier.trim().to_owned(),
            secret: if prompt.secret_label_id.is_some() {
                Some(SecretString::from(answer.secret.unwrap_or_default()))
            } else {
                None
            },
        })
    }

    async fn identity_rejected(
        &mut self,
        attempts_left: u32,
        cooldown_seconds: Option<u64>,
    ) -> Result<(), UiError> {
        let s = screen::identity_rejected(&self.strings, attempts_left, cooldown_seconds);
        let line = match cooldown_seconds {
            Some(secs) => format!("identity rejected: {} (locked for {secs} s)", s.title),
            None => format!(
                "identity rejected: {} (attempts left {attempts_left})",
                s.title
            ),
        };
        self.record(line);
        Ok(())
    }

    async fn ask_password(&mut self, prompt: &PasswordPrompt) -> Result<PasswordAnswer, UiError> {
        let s = screen::password(&self.strings, prompt);
        let mut line = format!("password: {} for {}", s.title, prompt.account);
        if prompt.mismatch {
            line.push_str(" (confirmation did not match)");
        }
        if !prompt.unmet.is_empty() {
            let unmet: Vec<String> = prompt
                .unmet
                .iter()
                .map(|r| screen::rule_text(&self.strings, *r))
                .collect();
            let _ = write!(line, " (missing: {})", unmet.join(", "));
        }
        if let Some(reason) = &prompt.rejected_by_directory {
            let _ = write!(line, " (directory said: {reason})");
        }
        self.record(line);
        let answer = self.script.passwords.pop_front().ok_or_else(|| {
            UiError::Unanswerable("choose a password (the scripted answers ran out)".into())
        })?;
        let confirmation = answer
            .confirmation
            .unwrap_or_else(|| answer.password.clone());
        Ok(PasswordAnswer {
            password: SecretString::from(answer.password),
            confirmation: SecretString::from(confirmation),
        })
    }

    async fn done(&mut self, account: &str) -> Result<(), UiError> {
        let s = screen::done(&self.strings, account);
        self.record(format!("done: {} (log in as {account})", s.title));
        Ok(())
    }

    async fn done_own_account(&mut self, account: &str) -> Result<(), UiError> {
        let s = screen::done_own_account(&self.strings, account);
        self.record(format!(
            "done: {} (stays logged in as {account}, JumpCloud password from now on)",
            s.title
        ));
        Ok(())
    }

    async fn fatal(&mut self, reference: &str, detail_id: &'static str) -> Result<(), UiError> {
        let s = screen::fatal(&self.strings, reference, detail_id);
        let detail = self.strings.get(detail_id).into_owned();
        self.record(format!("error {reference}: {} — {detail}", s.title));
        Ok(())
    }

    async fn close(&mut self) -> Result<(), UiError> {
        self.record("closed".into());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{PasswordPolicy, Rule};
    use secrecy::ExposeSecret;

    #[tokio::test]
    async fn answers_in_order_and_records_screens() {
        let mut script = Script::simple(" ada@example.com ", Some("E-1"), "Correct-Horse-7");
        script.passwords.push_front(ScriptedPassword {
            password: "short".into(),
            confirmation: Some("other".into()),
        });
        let mut ui = ScriptedUi::new(script, UiConfig::default(), Strings::default());
        let debug = format!("{ui:?}");
        assert!(
            !debug.contains("Correct-Horse") && !debug.contains("E-1"),
            "{debug}"
        );
        let a = ui
            .ask_identity(&IdentityPrompt {
                identifier_label_id: "identity.label.company_email",
                secret_label_id: Some("identity.secret.employee_id"),
                attempts_left: Some(4),
            })
            .await
            .unwrap();
        assert_eq!(a.identifier, "ada@example.com");
        assert_eq!(a.secret.unwrap().expose_secret(), "E-1");
        let prompt = PasswordPrompt {
            account: "ada".into(),
            policy: PasswordPolicy::default(),
            unmet: vec![Rule::MinLength(8), Rule::Number],
            mismatch: true,
            rejected_by_directory: None,
        };
        let p = ui.ask_password(&prompt).await.unwrap();
        assert_eq!(p.password.expose_secret(), "short");
        assert_eq!(p.confirmation.expose_secret(), "other");
        let p = ui.ask_password(&prompt).await.unwrap();
        assert_eq!(p.confirmation.expose_secret(), "Correct-Horse-7");
        assert!(matches!(
            ui.ask_password(&prompt).await,
            Err(UiError::Unanswerable(_))
        ));
        let t = ui.transcript();
        assert!(t[0].contains("(attempts left 4)"), "{t:?}");
        assert!(
            t[1].contains("missing: at least 8 characters, a number"),
            "{t:?}"
        );
        assert!(t[1].contains("did not match"), "{t:?}");
    }
}
