//! The shared error-building helpers of validation: the dictionary being read ([`Level`]), how
//! a problem becomes a [`Diagnostic`], unknown keys with their "did you mean" suggestion.

use plist::{Dictionary, Value};

use super::Validator;
use crate::config::read::kind;
use crate::config::{Diagnostic, Mode, Severity};

/// The closest candidate to `input`, if one is close enough to be a likely typo.
pub(super) fn suggest<'c>(input: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let lower = input.to_ascii_lowercase();
    if let Some(exact) = candidates.iter().find(|c| c.to_ascii_lowercase() == lower) {
        return Some(exact);
    }
    // Close by Jaro-Winkler (good at shared prefixes), or within a few edits (good at swapped
    // letters in short keys).
    let max_edits = (lower.len() / 3).max(1);
    candidates
        .iter()
        .map(|c| {
            let c_lower = c.to_ascii_lowercase();
            let jw = strsim::jaro_winkler(&lower, &c_lower);
            let close = strsim::damerau_levenshtein(&lower, &c_lower) <= max_edits;
            (jw, close, *c)
        })
        .filter(|(jw, close, _)| *jw >= 0.8 || *close)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, _, c)| c)
}

/// One dictionary being read, and the keys asked of it so far.
pub(super) struct Level<'d> {
    pub(super) prefix: String,
    pub(super) dict: Option<&'d Dictionary>,
    pub(super) asked: Vec<&'static str>,
}

impl<'d> Level<'d> {
    pub(super) fn new(prefix: &str, dict: Option<&'d Dictionary>) -> Self {
        Self {
            prefix: prefix.to_owned(),
            dict,
            asked: Vec::new(),
        }
    }

    pub(super) fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    pub(super) fn get(&mut self, key: &'static str) -> Option<&'d Value> {
        self.asked.push(key);
        self.dict.and_then(|d| d.get(key))
    }

    pub(super) fn has(&self, key: &str) -> bool {
        self.dict.is_some_and(|d| d.contains_key(key))
    }
}

impl Validator<'_> {
    pub(super) fn push(
        &mut self,
        path: &str,
        severity: Severity,
        message: String,
        fix: Option<String>,
    ) {
        self.diags.push(Diagnostic {
            file: self.raw.file_for(path).to_path_buf(),
            key: path.to_owned(),
            message,
            fix,
            severity,
        });
    }

    pub(super) fn err(&mut self, path: &str, message: impl Into<String>, fix: impl Into<String>) {
        self.push(path, Severity::Error, message.into(), Some(fix.into()));
    }

    /// Errors in `config check`, warnings in `run`.
    pub(super) fn strictness(&self) -> Severity {
        match self.mode {
            Mode::Run => Severity::Warning,
            Mode::Check { .. } => Severity::Error,
        }
    }

    pub(super) fn wrong_type(&mut self, path: &str, expected: &str, found: &Value) {
        let example = match expected {
            "a boolean" => "<true/> or <false/>",
            "an integer" => "<integer>600</integer>",
            "a dictionary" => "<dict>...</dict> (see docs/configuration.md)",
            "a string" => "<string>...</string>",
            _ => "described in docs/configuration.md",
        };
        self.err(
            path,
            format!("expected {expected}, found {}", kind(found)),
            format!("write it as {example}"),
        );
    }

    /// Reports the keys of `level` nobody asked for, and records the asked ones.
    pub(super) fn close(&mut self, level: &Level<'_>) {
        for key in &level.asked {
            self.asked.insert(level.path(key));
        }
        let Some(dict) = level.dict else { return };
        let severity = self.strictness();
        for key in dict.keys() {
            if level.asked.contains(&key.as_str()) {
                continue;
            }
            let path = level.path(key);
            let fix = if let Some(s) = suggest(key, &level.asked) {
                format!("did you mean `{}`?", level.path(s))
            } else {
                format!("remove it; valid keys here are {}", level.asked.join(", "))
            };
            self.push(&path, severity, "unknown key".to_owned(), Some(fix));
        }
    }
}
