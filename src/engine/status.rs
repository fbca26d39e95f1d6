//! `prestage status`: where the enrollment is, for admins and MDM extension attributes, and the
//! small completion receipt left behind when prestage removes itself.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::clock::rfc3339;
use super::state::{State, Step, Store};
use super::{Engine, StepError};
use crate::paths::{mac, Root};

/// How long one finished step took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepDuration {
    pub step: String,
    pub seconds: f64,
}

/// Where the enrollment is. Serialised as `not_started`, `in_progress`, `failed`, `done` or
/// `unreadable` (README, "prestage status"; MDM extension attributes compare these strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    NotStarted,
    InProgress,
    /// Stopped with an error only an admin can fix (it has a reference code).
    Failed,
    Done,
    /// The state file exists but cannot be read.
    Unreadable,
}

impl Phase {
    /// The name `status` prints, as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::NotStarted => "not_started",
            Phase::InProgress => "in_progress",
            Phase::Failed => "failed",
            Phase::Done => "done",
            Phase::Unreadable => "unreadable",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `status --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub phase: Phase,
    pub step: Option<String>,
    pub step_number: Option<usize>,
    pub step_started_at: Option<String>,
    pub attempts: u32,
    pub runs: u32,
    pub last_error: Option<String>,
    pub reference: Option<String>,
    /// Seconds each finished step took, in step order.
    pub durations: Vec<StepDuration>,
    pub account: Option<String>,
    pub deleted_users: Vec<String>,
    pub kept_users: Vec<String>,
    /// Why each kept setup account was kept, with the fix.
    #[serde(default)]
    pub kept_reasons: BTreeMap<String, String>,
    pub cooldown_until: Option<String>,
    /// What ended the wait for the employee's account (which line of the agent's log).
    #[serde(default)]
    pub takeover_signal: Option<String>,
    /// Things the admin should fix for the next Macs even though this one went on (for
    /// example a missing PPPC profile for the JumpCloud agent).
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl StatusReport {
    fn from_state(state: &State) -> Self {
        let failed = state.last_error.as_ref().is_some_and(|e| e.permanent);
        let phase = if state.step == Step::Done {
            Phase::Done
        } else if failed {
            Phase::Failed
        } else {
            Phase::InProgress
        };
        // `steps` is keyed by `Step`, whose order is the enrollment's.
        let durations = state
            .steps
            .iter()
            .filter_map(|(step, rec)| {
                rec.finished_ms.map(|f| {
                    #[allow(clippy::cast_precision_loss)] // durations are far below 2^52 ms
                    let seconds = f.saturating_sub(rec.started_ms) as f64 / 1000.0;
                    StepDuration {
                        step: step.name().to_owned(),
                        seconds,
                    }
                })
            })
            .collect();
        Self {
            phase,
            step: Some(state.step.name().into()),
            step_number: Some(state.step.number()),
            step_started_at: Some(rfc3339(state.step_started_ms)),
            attempts: state.attempts,
            runs: state.runs,
            last_error: state.last_error.as_ref().map(|e| e.message.clone()),
            reference: state.last_error.as_ref().and_then(|e| e.reference.clone()),
            durations,
            account: state.identity.user.as_ref().map(|u| u.local_name.clone()),
            deleted_users: state.removal.deleted_users.clone(),
            kept_users: state.removal.kept_users.clone(),
            kept_reasons: state.removal.kept_reasons.clone(),
            cooldown_until: state.identity.cooldown_until_ms.map(rfc3339),
            takeover_signal: state.takeover.signal.clone(),
            warnings: warnings(state),
        }
    }

    fn not_started() -> Self {
        Self {
            phase: Phase::NotStarted,
            step: None,
            step_number: None,
            step_started_at: None,
            attempts: 0,
            runs: 0,
            last_error: None,
            reference: None,
            durations: Vec::new(),
            account: None,
            deleted_users: Vec::new(),
            kept_users: Vec::new(),
            kept_reasons: BTreeMap::new(),
            cooldown_until: None,
            takeover_signal: None,
            warnings: Vec::new(),
        }
    }

    /// The state file exists but cannot be read; `why` says what and how to fix it.
    pub fn unreadable(why: String) -> Self {
        Self {
            phase: Phase::Unreadable,
            last_error: Some(why),
            ..Self::not_started()
        }
    }

    /// Human-readable lines.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(out, "phase:    {}", self.phase);
        if self.phase == Phase::Done {
            let _ = writeln!(
                out,
                "finished: {}",
                self.step_started_at.as_deref().unwrap_or("?")
            );
        } else if let (Some(step), Some(n)) = (&self.step, self.step_number) {
            let _ = writeln!(
                out,
                "step:     {n}/{} {step} (since {})",
                super::steps::TOTAL,
                self.step_started_at.as_deref().unwrap_or("?")
            );
            let _ = writeln!(out, "attempts: {} (runs: {})", self.attempts, self.runs);
        }
        if let Some(account) = &self.account {
            let _ = writeln!(out, "account:  {account}");
        }
        if let Some(err) = &self.last_error {
            let _ = writeln!(out, "error:    {err}");
        }
        if let Some(reference) = &self.reference {
            let _ = writeln!(out, "reference: {reference}");
        }
        if let Some(until) = &self.cooldown_until {
            let _ = writeln!(out, "identity cool-down until {until}");
        }
        if !self.deleted_users.is_empty() {
            let _ = writeln!(
                out,
                "deleted setup accounts: {}",
                self.deleted_users.join(", ")
            );
        }
        if !self.kept_users.is_empty() {
            let _ = writeln!(
                out,
                "kept setup accounts: {} (see the log for why)",
                self.kept_users.join(", ")
            );
            for (name, why) in &self.kept_reasons {
                let _ = writeln!(out, "  {name}: {why}");
            }
        }
        if let Some(signal) = &self.takeover_signal {
            let _ = writeln!(out, "account ready: {signal}");
        }
        for warning in &self.warnings {
            let _ = writeln!(out, "warning:  {warning}");
        }
        for d in &self.durations {
            let _ = writeln!(out, "  {:<14} {:>8.1} s", d.step, d.seconds);
        }
        out
    }
}

/// What the admin should fix for the next Macs, from the state.
fn warnings(state: &State) -> Vec<String> {
    let mut out = Vec::new();
    if state.agent.fda_prompt_ms.is_some() {
        out.push(super::agent_install::fda_missing_message());
    }
    out
}

/// Reads the status under `root`: the state file, else the completion receipt. Always answers
/// (SPEC §2: `status` exits 0): what it cannot read is part of the status.
pub fn read(root: &Root) -> StatusReport {
    let store = Store::new(root);
    let (receipt, receipt_problem) = read_receipt(&store.receipt_path());
    let mut report = match receipt {
        Some(report) if !store.state_path().exists() => report,
        _ => read_state(&store),
    };
    report.warnings.extend(receipt_problem);
    report
}

/// The completion receipt, or what is wrong with it (none there is nothing wrong).
fn read_receipt(path: &Path) -> (Option<StatusReport>, Option<String>) {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (None, None),
        Err(e) => return (None, Some(receipt_problem(path, &e))),
    };
    match serde_json::from_slice::<StatusReport>(&bytes) {
        Ok(report) => (Some(report), None),
        Err(e) => (None, Some(receipt_problem(path, &e))),
    }
}

fn receipt_problem(path: &Path, e: &dyn std::fmt::Display) -> String {
    format!(
        "the completion receipt {} cannot be read ({e}), so this Mac may have finished enrolling already; see {} for how the last run ended, and run `prestage status` as root",
        path.display(),
        mac::LOG_FILE
    )
}

fn read_state(store: &Store) -> StatusReport {
    if !store.dir().exists() {
        return StatusReport::not_started();
    }
    // Reading must not move anything aside: peek at the file directly.
    match fs::read(store.state_path()) {
        Ok(bytes) => match serde_json::from_slice::<State>(&bytes) {
            Ok(state) => StatusReport::from_state(&state),
            Err(e) => StatusReport::unreadable(format!("{}: {e}", store.state_path().display())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => StatusReport::not_started(),
        Err(e) => StatusReport::unreadable(format!(
            "{}: {e}; run `prestage status` as root, or `prestage reset` if the file is damaged",
            store.state_path().display()
        )),
    }
}

/// Writes the completion receipt (status of a finished enrollment).
pub fn write_receipt(e: &Engine) -> Result<(), StepError> {
    let mut state = e.state.clone();
    state.step = Step::Done;
    let report = StatusReport::from_state(&state);
    let bytes = serde_json::to_vec_pretty(&report)
        .map_err(|err| StepError::Transient(format!("cannot encode the receipt: {err}")))?;
    super::state::write_atomically(&e.store.receipt_path(), &bytes, 0o644)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `status --json` prints the phases as it did when `phase` was a string.
    #[test]
    fn phases_serialise_as_before() {
        for (phase, text) in [
            (Phase::NotStarted, "not_started"),
            (Phase::InProgress, "in_progress"),
            (Phase::Failed, "failed"),
            (Phase::Done, "done"),
            (Phase::Unreadable, "unreadable"),
        ] {
            let report = StatusReport {
                phase,
                ..StatusReport::not_started()
            };
            let json: serde_json::Value = serde_json::to_value(&report).unwrap();
            assert_eq!(json["phase"], text);
            assert_eq!(phase.to_string(), text);
            assert!(report.to_text().starts_with(&format!("phase:    {text}\n")));
            let back: StatusReport = serde_json::from_value(json).unwrap();
            assert_eq!(back.phase, phase);
        }
    }

    /// A receipt written before `phase` was an enum (a string then) still reads as done.
    #[test]
    fn a_receipt_is_the_status_of_a_finished_mac() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let store = Store::new(&root);
        store.ensure_dir().unwrap();
        let mut receipt = serde_json::to_value(StatusReport::not_started()).unwrap();
        receipt["phase"] = "done".into();
        receipt["account"] = "ada.lovelace".into();
        fs::write(store.receipt_path(), receipt.to_string()).unwrap();
        let report = read(&root);
        assert_eq!(report.phase, Phase::Done);
        assert_eq!(report.account.as_deref(), Some("ada.lovelace"));
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    }

    /// A receipt that does not parse is reported, not ignored: without it the Mac would read
    /// as never enrolled.
    #[test]
    fn a_receipt_that_cannot_be_parsed_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let store = Store::new(&root);
        store.ensure_dir().unwrap();
        fs::write(store.receipt_path(), b"{\"phase\": \"don").unwrap();
        let report = read(&root);
        assert_eq!(report.phase, Phase::NotStarted);
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        let warning = &report.warnings[0];
        assert!(warning.contains("receipt.json"), "{warning}");
        assert!(warning.contains("may have finished enrolling"), "{warning}");
        assert!(report
            .to_text()
            .contains("warning:  the completion receipt"));
    }
}
