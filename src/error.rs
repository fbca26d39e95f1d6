//! What a command reports to the admin when it fails: one line (`error: <what>; <how to fix>`,
//! SPEC §2) and the exit code. Built by the commands, printed only by the CLI.

/// An error for the admin: what happened and how to fix it, plus the exit code.
#[derive(Debug)]
pub struct CommandError {
    pub message: String,
    pub code: u8,
}

impl CommandError {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code,
        }
    }
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&one_line(&self.message))
    }
}

impl std::error::Error for CommandError {}

/// Errors for the admin are one line (SPEC §2): a message made of several lines (every problem
/// of a configuration) keeps them all, separated by ` | `.
pub fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}
