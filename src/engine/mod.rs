//! The enrollment engine: a crash-safe state machine from first boot to a clean Mac.
//!
//! The steps are listed, in order, in [`steps`] (one function each). This module runs them:
//! it persists progress before and after every side effect ([`state`]), retries transient
//! failures forever with backoff while the screen says what is happening, and stops permanent
//! failures with a "contact IT" reference code shown to the employee, written to the log and
//! kept for `prestage status`.

pub mod clock;
pub mod download;
pub mod state;
pub mod status;
pub mod steps;
pub mod wait;

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use thiserror::Error;
use tracing::{error, info, warn};
use url::Url;

use crate::config::keychain::Keychain;
use crate::config::Config;
use crate::host::{AgentFiles, Host, HostError};
use crate::jumpcloud::{Directory, JcError};
use crate::paths::Root;
use crate::ui::{Ui, UiError};
use state::{ErrorRecord, JournalEntry, Loaded, State, StateError, Step, Store};

/// What the engine needs to talk to JumpCloud at a given moment.
#[derive(Clone)]
pub struct Credentials {
    pub base_url: Url,
    pub api_key: Option<SecretString>,
    pub org_id: Option<String>,
    /// `systemKey` and the PEM of `/opt/jc/client.key`.
    pub system: Option<(String, SecretString)>,
    /// System context refused earlier in this enrollment: use the admin key for system calls.
    pub admin_fallback: bool,
}

/// Builds a JumpCloud client for the current credentials.
pub type Connect =
    Box<dyn Fn(&Credentials) -> Result<Arc<dyn Directory>, JcError> + Send + Sync + 'static>;

/// How a step failed.
#[derive(Debug, Error)]
pub enum StepError {
    /// Time fixes it: network, 5xx, the agent being slow. Retried forever with backoff.
    #[error("{0}")]
    Transient(String),
    /// An admin must act. `detail_id` is the UI string shown with the reference code.
    #[error("{message}")]
    Permanent {
        message: String,
        detail_id: &'static str,
    },
    /// The configuration cannot work (exit 78).
    #[error("{0}")]
    Config(String),
    /// The state could not be persisted: nothing is safe to do.
    #[error(transparent)]
    State(#[from] StateError),
}

impl StepError {
    pub fn permanent(detail_id: &'static str, message: impl Into<String>) -> Self {
        StepError::Permanent {
            message: message.into(),
            detail_id,
        }
    }
}

impl From<JcError> for StepError {
    fn from(e: JcError) -> Self {
        if e.is_transient() {
            StepError::Transient(e.to_string())
        } else {
            StepError::permanent("error.directory", e.to_string())
        }
    }
}

impl From<HostError> for StepError {
    fn from(e: HostError) -> Self {
        match e {
            // A name macOS will never accept does not get better by waiting.
            HostError::BadName { .. } => StepError::permanent("error.directory", e.to_string()),
            // A tool that fails may work on the next try (a busy opendirectoryd, a slow
            // launchd); the engine retries with backoff and the log names the command.
            other => StepError::Transient(other.to_string()),
        }
    }
}

impl From<crate::host::agent::AgentError> for StepError {
    fn from(e: crate::host::agent::AgentError) -> Self {
        // A half-written or unreadable agent file is usually the agent at work; retry.
        StepError::Transient(e.to_string())
    }
}

impl From<UiError> for StepError {
    fn from(e: UiError) -> Self {
        match e {
            UiError::DialogMissing { .. } => StepError::permanent("error.generic", e.to_string()),
            // An admin must change what is installed or what a profile sets.
            UiError::DialogTooOld { .. } | UiError::DialogAuthorisation { .. } => {
                StepError::permanent("error.configuration", e.to_string())
            }
            other => StepError::Transient(other.to_string()),
        }
    }
}

/// How `run` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Enrolled and cleaned up.
    Done,
    /// Stopped by a permanent failure; the reference code is in the state and the log.
    Failed { reference: String, message: String },
    /// The configuration cannot work.
    ConfigInvalid(String),
}

impl Outcome {
    /// The process exit code of SPEC §2.
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Done => 0,
            Outcome::Failed { .. } => 1,
            Outcome::ConfigInvalid(_) => 78,
        }
    }
}

/// Something the engine did, for `prestage demo`'s narration and tests.
#[derive(Debug, Clone)]
pub enum Event {
    StepStarted(Step),
    StepFinished {
        step: Step,
        took: Duration,
    },
    Retrying {
        step: Step,
        reason: String,
        wait: Duration,
    },
    Note(String),
}

/// Timing knobs. Defaults are the production values; tests shorten them.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Gap between tool processes while waiting.
    pub tool_gap: Duration,
    /// How often files are polled while waiting.
    pub file_poll: Duration,
    /// Kickstart the agent when its log has been silent this long during the takeover (at most
    /// half of `Agent.TakeoverTimeoutSeconds`, so a short limit still gets its kickstart).
    pub agent_silence: Duration,
    /// Retry backoff base and cap.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// How long to wait for a Secure Token after the employee's first login before deciding.
    pub secure_token_grace: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            tool_gap: wait::TOOL_GAP,
            file_poll: wait::FILE_POLL,
            agent_silence: Duration::from_secs(90),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
            // macOS grants the token during the first login itself; the grace covers the
            // moment between the console changing hands and the grant being visible. Past it
            // the setup accounts are kept (never deleting the last token holder) and the
            // directory is told.
            secure_token_grace: Duration::from_secs(30),
        }
    }
}

/// A callback told about every [`Event`].
pub type Observer = Box<dyn Fn(&Event) + Send + Sync>;

/// What a cached JumpCloud client was built with: a new key or fallback builds a new one, a
/// new org is handed to the existing one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BuiltFor {
    /// The admin API key was known.
    have_key: bool,
    /// System calls go with the admin key.
    fallback: bool,
    /// The org ID sent as `x-org-id` (`OrgID`, else the org read from the agent or the system).
    org_id: Option<String>,
}

/// Everything the engine works with.
pub struct Engine {
    pub(crate) root: Root,
    pub(crate) config: Config,
    pub(crate) host: Arc<dyn Host>,
    pub(crate) ui: Box<dyn Ui>,
    pub(crate) keychain: Box<dyn Keychain>,
    pub(crate) connect: Connect,
    pub(crate) agent: AgentFiles,
    pub(crate) store: Store,
    pub(crate) state: State,
    pub(crate) timing: Timing,
    /// The API key once resolved (never persisted).
    pub(crate) api_key: Option<SecretString>,
    /// The current client and the credentials it was built for.
    directory: Option<(Arc<dyn Directory>, BuiltFor)>,
    observer: Option<Observer>,
    /// Whether the progress window was opened by this process.
    pub(crate) window_open: bool,
}

impl Engine {
    /// Loads (or starts) the enrollment's state. A corrupt state file is moved aside with a clear
    /// log line and the enrollment starts over (steps are idempotent, so nothing is done twice
    /// that matters).
    pub fn new(
        root: Root,
        config: Config,
        host: Arc<dyn Host>,
        ui: Box<dyn Ui>,
        keychain: Box<dyn Keychain>,
        connect: Connect,
    ) -> Result<Self, StateError> {
        let store = Store::new(&root);
        store.ensure_dir()?;
        let mut state = match store.load()? {
            Loaded::Fresh => State::new(clock::now_ms()),
            Loaded::Resumed(state) => *state,
            Loaded::MovedAside { moved_to, reason } => {
                error!(
                    moved_to = %moved_to.display(),
                    %reason,
                    "the state file could not be read and was moved aside; starting over (every step checks what is already done)"
                );
                State::new(clock::now_ms())
            }
        };
        state.runs += 1;
        store.save(&state)?;
        store.journal(&JournalEntry {
            at_ms: clock::now_ms(),
            step: state.step,
            event: if state.runs == 1 { "start" } else { "restart" }.into(),
            detail: format!("run {}", state.runs),
        })?;
        Ok(Self {
            agent: AgentFiles::new(root.clone()),
            root,
            config,
            host,
            ui,
            keychain,
            connect,
            store,
            state,
            timing: Timing::default(),
            api_key: None,
            directory: None,
            observer: None,
            window_open: false,
        })
    }

    /// Replaces the timing knobs (tests, demo).
    #[must_use]
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// Calls `f` for every [`Event`].
    #[must_use]
    pub fn with_observer(mut self, f: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.observer = Some(Box::new(f));
        self
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub(crate) fn emit(&self, event: &Event) {
        if let Some(f) = &self.observer {
            f(event);
        }
    }

    /// Persists the state (before and after every side effect).
    pub(crate) fn save(&self) -> Result<(), StepError> {
        self.store.save(&self.state).map_err(StepError::from)
    }

    /// Appends to the journal.
    pub(crate) fn journal(&self, event: &str, detail: impl Into<String>) -> Result<(), StepError> {
        self.store
            .journal(&JournalEntry {
                at_ms: clock::now_ms(),
                step: self.state.step,
                event: event.into(),
                detail: detail.into(),
            })
            .map_err(StepError::from)
    }

    /// Changes the state with `f` and persists it, journaling `event`.
    pub(crate) fn record(
        &mut self,
        event: &str,
        detail: impl Into<String>,
        f: impl FnOnce(&mut State),
    ) -> Result<(), StepError> {
        f(&mut self.state);
        self.save()?;
        self.journal(event, detail)
    }

    /// The JumpCloud client for the current credentials (rebuilt when the API key or the
    /// admin fallback changes).
    pub(crate) fn directory(&mut self) -> Result<Arc<dyn Directory>, StepError> {
        let have_key = self.api_key.is_some();
        let fallback = self.state.admin_fallback;
        // `OrgID`, else the org read from the agent or from `GET /api/systems/{sys}`: a client
        // built before the org was known is told it, so every later admin call sends it.
        let org_id = self
            .config
            .org_id
            .as_ref()
            .map(|o| o.as_str().to_owned())
            .or_else(|| self.state.org_id.clone());
        let built_for = BuiltFor {
            have_key,
            fallback,
            org_id: org_id.clone(),
        };
        if let Some((dir, was)) = &mut self.directory {
            if was.have_key == have_key && was.fallback == fallback {
                // Only the org is new: tell the client rather than build another, which would
                // forget its clock sync ("one sntp", SPEC §5), admin fallback and Retry-After.
                if was.org_id != org_id {
                    if let Some(org) = &org_id {
                        dir.set_org_id(org);
                    }
                    was.org_id = org_id;
                }
                return Ok(Arc::clone(dir));
            }
        }
        let system = match &self.state.system_key {
            Some(key) => Some((key.clone(), self.agent.read_client_key()?)),
            None => None,
        };
        let creds = Credentials {
            base_url: self.config.api_base_url.clone(),
            api_key: self.api_key.clone(),
            org_id,
            system,
            admin_fallback: fallback,
        };
        let dir = (self.connect)(&creds)?;
        self.directory = Some((Arc::clone(&dir), built_for));
        Ok(dir)
    }

    /// Runs (or resumes) the enrollment to the end.
    pub async fn run(mut self) -> Outcome {
        info!(run_id = %self.state.run_id, step = %self.state.step, run = self.state.runs, "prestage run");
        let mut backoff = wait::Backoff::new(self.timing.backoff_base, self.timing.backoff_cap);
        loop {
            let step = self.state.step;
            if step == Step::Done {
                return self.finish_touches().await;
            }
            if let Err(e) = self.begin(step) {
                return self.fail(step, e).await;
            }
            match steps::run_step(&mut self, step).await {
                Ok(()) => {
                    backoff.reset();
                    if let Err(e) = self.finish(step) {
                        return self.fail(step, e).await;
                    }
                    if step == Step::Cleanup {
                        return self.finish_touches().await;
                    }
                }
                Err(StepError::Transient(reason)) => {
                    let delay = backoff.next_delay();
                    warn!(step = %step, %reason, wait_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), "will retry");
                    let recorded = self.record("retry", reason.clone(), |s| {
                        s.last_error = Some(ErrorRecord {
                            step,
                            message: reason.clone(),
                            reference: None,
                            permanent: false,
                            at_ms: clock::now_ms(),
                        });
                    });
                    if let Err(e) = recorded {
                        return self.fail(step, e).await;
                    }
                    self.emit(&Event::Retrying {
                        step,
                        reason,
                        wait: delay,
                    });
                    steps::show_retrying(&mut self, step).await;
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return self.fail(step, e).await,
            }
        }
    }

    /// The finishing touches (idempotent; the last one is `launchctl bootout`). Transient
    /// failures (a keychain or disk hiccup) are retried with backoff, like any step's.
    async fn finish_touches(&mut self) -> Outcome {
        let mut backoff = wait::Backoff::new(self.timing.backoff_base, self.timing.backoff_cap);
        loop {
            let result = steps::finish(
                &self.root,
                &self.store,
                &mut self.state,
                self.host.as_ref(),
                self.keychain.as_ref(),
            )
            .await;
            match result {
                Ok(()) => return Outcome::Done,
                Err(StepError::Transient(reason)) => {
                    let delay = backoff.next_delay();
                    warn!(%reason, "finishing touches will be retried");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return self.fail(Step::Done, e).await,
            }
        }
    }

    fn begin(&mut self, step: Step) -> Result<(), StepError> {
        let now = clock::now_ms();
        let first = !self.state.steps.contains_key(&step);
        let record = self.state.steps.entry(step).or_default();
        if first {
            record.started_ms = now;
            self.state.step_started_ms = now;
            self.state.attempts = 0;
        }
        record.attempts += 1;
        self.state.attempts += 1;
        self.save()?;
        self.journal("begin", format!("attempt {}", self.state.attempts))?;
        if first || self.state.attempts == 1 {
            info!(step = %step, number = step.number(), "step started");
        }
        self.emit(&Event::StepStarted(step));
        Ok(())
    }

    fn finish(&mut self, step: Step) -> Result<(), StepError> {
        let now = clock::now_ms();
        let started = self.state.steps.get(&step).map_or(now, |r| r.started_ms);
        if let Some(record) = self.state.steps.get_mut(&step) {
            record.finished_ms = Some(now);
        }
        self.state.step = step.next();
        self.state.step_started_ms = now;
        self.state.attempts = 0;
        if self
            .state
            .last_error
            .as_ref()
            .is_some_and(|e| e.step == step)
        {
            self.state.last_error = None;
        }
        self.save()?;
        self.journal("done", format!("{step} finished"))?;
        let took = Duration::from_millis(now.saturating_sub(started));
        info!(step = %step, took_ms = now.saturating_sub(started), "step finished");
        self.emit(&Event::StepFinished { step, took });
        Ok(())
    }

    /// Stops on a permanent failure: reference code in the state, the log and on screen.
    async fn fail(&mut self, step: Step, err: StepError) -> Outcome {
        let (message, detail_id, config) = match &err {
            StepError::Permanent { message, detail_id } => (message.clone(), *detail_id, false),
            StepError::Config(m) => (m.clone(), "error.configuration", true),
            other => (other.to_string(), "error.generic", false),
        };
        // The same failure again (launchd restarts us every minute) keeps its reference code,
        // so the employee and IT talk about one code.
        let reference = match &self.state.last_error {
            Some(prev) if prev.permanent && prev.step == step && prev.message == message => prev
                .reference
                .clone()
                .unwrap_or_else(|| reference_code(step, &self.state.run_id)),
            _ => reference_code(step, &self.state.run_id),
        };
        error!(step = %step, reference = %reference, error = %message, "enrollment stopped: an administrator must act");
        let rec = ErrorRecord {
            step,
            message: message.clone(),
            reference: Some(reference.clone()),
            permanent: true,
            at_ms: clock::now_ms(),
        };
        self.state.last_error = Some(rec);
        // Best effort: the failure may be the disk itself.
        let _ = self.save();
        let _ = self.journal("failed", format!("{reference}: {message}"));
        if self.state.setup_logged_out {
            // The employee is at their own desktop (or the login window): what is left is the
            // admin's to fix, and a full-screen error would lock them out of their work.
            info!(reference = %reference, "not shown on screen: the employee already has their account");
        } else if let Err(e) = self.ui.fatal(&reference, detail_id).await {
            warn!(error = %e, "could not show the error to the employee");
        }
        if config {
            Outcome::ConfigInvalid(message)
        } else {
            Outcome::Failed { reference, message }
        }
    }
}

/// A short code the employee reads to IT and the admin finds in the log: `PS-<step>-<4 hex>`.
pub fn reference_code(step: Step, run_id: &str) -> String {
    let salt: u16 = rand::random();
    let tail: String = run_id.chars().take(2).collect();
    format!(
        "PS-{:02}-{}{:04X}",
        step.number(),
        tail.to_uppercase(),
        salt
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_codes_name_the_step() {
        let code = reference_code(Step::WaitAccount, "ab12cd34");
        assert!(code.starts_with("PS-11-AB"), "{code}");
        assert_eq!(code.len(), "PS-11-AB1234".len());
    }

    #[test]
    fn a_name_macos_cannot_have_is_permanent_a_busy_tool_is_not() {
        let bad = crate::host::mac::check_name("ada lovelace").unwrap_err();
        assert!(matches!(
            StepError::from(bad),
            StepError::Permanent {
                detail_id: "error.directory",
                ..
            }
        ));
        assert!(crate::host::mac::check_name("ada.lovelace").is_ok());
        let busy = HostError::Io {
            path: "/usr/bin/id".into(),
            source: std::io::Error::from(std::io::ErrorKind::TimedOut),
        };
        assert!(matches!(StepError::from(busy), StepError::Transient(_)));
    }

    #[test]
    fn exit_codes_follow_spec() {
        assert_eq!(Outcome::Done.exit_code(), 0);
        assert_eq!(Outcome::ConfigInvalid(String::new()).exit_code(), 78);
        assert_eq!(
            Outcome::Failed {
                reference: String::new(),
                message: String::new()
            }
            .exit_code(),
            1
        );
    }
}
