//! A UI in the terminal, for `prestage demo --interactive`: screens are printed as text and the
//! answers typed on stdin; secret fields are read with echo turned off (termios, through rustix)
//! so a password never shows on screen.
//!
//! Reading stdin blocks, so every question runs on tokio's blocking pool.

use std::fmt::Write as _;
use std::io::{BufRead, Write};

use async_trait::async_trait;
use secrecy::SecretString;

use crate::config::UiConfig;
use crate::ui::screen::{self, field, Screen};
use crate::ui::strings::Strings;
use crate::ui::{
    IdentityAnswer, IdentityPrompt, ItemStatus, PasswordAnswer, PasswordPrompt, Progress, Ui,
    UiError,
};

/// The terminal UI. See the module docs.
#[derive(Debug)]
pub struct TerminalUi {
    ui: UiConfig,
    strings: Strings,
    last_progress: Option<String>,
}

impl TerminalUi {
    pub fn new(ui: UiConfig, strings: Strings) -> Self {
        Self {
            ui,
            strings,
            last_progress: None,
        }
    }
}

/// Markdown as plain text: `**bold**` markers and `## ` heading marks are dropped.
pub fn plain(markdown: &str) -> String {
    markdown
        .lines()
        .map(|l| l.trim_start_matches('#').trim_start().replace("**", ""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A screen as the lines the terminal prints (without fields).
pub fn render(screen: &Screen) -> String {
    let rule = "─".repeat(60);
    let mut out = format!(
        "{rule}\n  {}\n{rule}\n{}\n",
        screen.title,
        plain(&screen.message)
    );
    if let Some(p) = screen.progress {
        let filled = usize::from(p) * 30 / 100;
        let _ = write!(
            out,
            "\n[{}{}] {p:>3}%  {}\n",
            "#".repeat(filled),
            ".".repeat(30 - filled),
            screen.progress_text.as_deref().unwrap_or("")
        );
    }
    for (title, status) in &screen.items {
        let mark = match status {
            ItemStatus::Pending => "[ ]",
            ItemStatus::Wait => "[…]",
            ItemStatus::Success => "[✓]",
            ItemStatus::Fail => "[✗]",
        };
        let _ = writeln!(out, "  {mark} {title}");
    }
    out
}

/// Reads one line from stdin; with `hidden`, terminal echo is off while it is typed.
fn read_line(prompt: &str, hidden: bool) -> Result<String, UiError> {
    let mut stdout = std::io::stdout();
    write!(stdout, "{prompt}: ")?;
    stdout.flush()?;
    let stdin = std::io::stdin();
    let saved = if hidden && rustix::termios::isatty(&stdin) {
        let saved = rustix::termios::tcgetattr(&stdin).map_err(std::io::Error::from)?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet)
            .map_err(std::io::Error::from)?;
        Some(saved)
    } else {
        None
    };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(saved) = saved {
        // Restore echo even when reading failed.
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &saved);
        writeln!(stdout)?;
    }
    if read? == 0 {
        return Err(UiError::Cancelled { code: 10 });
    }
    let len = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(len);
    Ok(line)
}

/// Prints the screen and asks each field; required fields and patterns are asked again, as
/// swiftDialog would refuse to close.
fn ask_screen(screen: &Screen) -> Result<Vec<(&'static str, String)>, UiError> {
    println!("\n{}", render(screen));
    let mut values = Vec::new();
    for f in &screen.fields {
        loop {
            let value = read_line(&f.label, f.secure)?;
            if f.required && value.trim().is_empty() {
                println!("  (required)");
                continue;
            }
            if let Some((re, msg)) = &f.regex {
                if !regex::Regex::new(re).is_ok_and(|r| r.is_match(value.trim())) {
                    println!("  {msg}");
                    continue;
                }
            }
            values.push((f.name, value));
            break;
        }
    }
    Ok(values)
}

async fn ask_blocking(screen: Screen) -> Result<Vec<(&'static str, String)>, UiError> {
    tokio::task::spawn_blocking(move || ask_screen(&screen))
        .await
        .map_err(|e| UiError::Dialog(format!("terminal prompt failed: {e}")))?
}

fn take(values: &mut Vec<(&'static str, String)>, name: &str) -> String {
    values
        .iter()
        .position(|(k, _)| *k == name)
        .map(|i| values.remove(i).1)
        .unwrap_or_default()
}

#[async_trait]
impl Ui for TerminalUi {
    async fn progress(&mut self, progress: &Progress) -> Result<(), UiError> {
        let s = screen::progress(&self.ui, &self.strings, progress);
        let line = format!(
            "[{:>3}%] {}",
            s.progress.unwrap_or(0),
            s.progress_text.clone().unwrap_or_default()
        );
        if self.last_progress.is_none() {
            println!("\n{}", render(&s));
        } else if self.last_progress.as_deref() != Some(line.as_str()) {
            println!("{line}");
        }
        self.last_progress = Some(line);
        Ok(())
    }

    async fn ask_identity(&mut self, prompt: &IdentityPrompt) -> Result<IdentityAnswer, UiError> {
        let mut values = ask_blocking(screen::identity(&self.strings, prompt)).await?;
        let identifier = take(&mut values, field::IDENTIFIER).trim().to_owned();
        let secret = prompt
            .secret_label_id
            .map(|_| SecretString::from(take(&mut values, field::SECRET)));
        Ok(IdentityAnswer { identifier, secret })
    }

    async fn identity_rejected(
        &mut self,
        attempts_left: u32,
        cooldown_seconds: Option<u64>,
    ) -> Result<(), UiError> {
        let s = screen::identity_rejected(&self.strings, attempts_left, cooldown_seconds);
        println!("\n{}", render(&s));
        Ok(())
    }

    async fn ask_password(&mut self, prompt: &PasswordPrompt) -> Result<PasswordAnswer, UiError> {
        let mut values = ask_blocking(screen::password(&self.strings, prompt)).await?;
        Ok(PasswordAnswer {
            password: SecretString::from(take(&mut values, field::PASSWORD)),
            confirmation: SecretString::from(take(&mut values, field::CONFIRMATION)),
        })
    }

    async fn done(&mut self, account: &str) -> Result<(), UiError> {
        println!("\n{}", render(&screen::done(&self.strings, account)));
        Ok(())
    }

    async fn done_own_account(&mut self, account: &str) -> Result<(), UiError> {
        println!(
            "\n{}",
            render(&screen::done_own_account(&self.strings, account))
        );
        Ok(())
    }

    async fn fatal(&mut self, reference: &str, detail_id: &'static str) -> Result<(), UiError> {
        println!(
            "\n{}",
            render(&screen::fatal(&self.strings, reference, detail_id))
        );
        Ok(())
    }

    async fn close(&mut self) -> Result<(), UiError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_progress_and_steps_as_text() {
        let p = Progress {
            percent: 50,
            text_id: "progress.installing_agent",
            args: vec![],
            steps: vec![
                crate::ui::StepItem {
                    title_id: "steps.prepare",
                    status: ItemStatus::Success,
                },
                crate::ui::StepItem {
                    title_id: "steps.agent",
                    status: ItemStatus::Wait,
                },
            ],
        };
        let text = render(&screen::progress(
            &UiConfig::default(),
            &Strings::default(),
            &p,
        ));
        assert!(
            text.contains(" 50%  Installing the JumpCloud agent"),
            "{text}"
        );
        assert!(text.contains("[✓] Prepare this Mac"), "{text}");
        assert!(text.contains("Welcome to your new Mac"), "{text}");
        assert!(!text.contains("## Welcome"), "{text}");
    }
}
