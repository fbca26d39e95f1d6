//! The enrollment engine: a crash-safe state machine from first boot to a clean Mac.
//!
//! The steps are listed, in order, in [`steps::STEPS`] (one row each; the long ones have their
//! own file). This module runs them, showing each step's progress ([`progress`]):
//! it persists progress before and after every side effect ([`state`]), retries transient
//! failures forever with backoff while the screen says what is happening, and stops permanent
//! failures with a "contact IT" reference code shown to the employee, written to the log and
//! kept for `prestage status`.

mod agent_install;
pub mod auth;
pub mod clock;
pub mod connect;
pub mod download;
mod finish;
mod handover;
pub mod identity;
pub mod lifecycle;
mod logout;
pub mod naming;
pub mod password;
pub mod phases;
pub mod preflight;
mod preset;
pub mod progress;
mod removal;
pub mod state;
mod state_v1;
pub mod status;
pub mod steps;
pub mod takeover;
pub mod wait;
mod watch;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tracing::{error, info, warn};

use crate::config::keychain::Keychain;
use crate::config::Config;
use crate::host::{AgentFiles, Host, HostError};
use crate::jumpcloud::{Directory, JcError};
use crate::paths::Root;
use crate::ui::{Ui, UiError};
use state::{ErrorRecord, JournalEntry, Loaded, State, StateError, Step, Store};

pub use connect::Connect;

/// A lower layer's error, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How a step failed. Whether waiting can fix it is decided where the failure is understood:
/// the `From` impls below for each lower layer's errors (one `match` each), or the step that
/// builds a [`StepError::Permanent`]. The runner adds a step's patience on top (see
/// [`state::Step::patience`]): past it, a transient failure stops with a reference code.
#[derive(Debug, Error)]
pub enum StepError {
    /// Time fixes it: network, 5xx, the agent being slow. Retried with backoff.
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
    /// A lower layer's error, kept whole so that its `source()` chain reaches the log.
    #[error(transparent)]
    Caused(Caused),
}

/// A lower layer's error with its verdict: `permanent` names the UI text to show with the
/// reference code when waiting will not help, `None` when it may.
#[derive(Debug)]
pub struct Caused {
    pub permanent: Option<&'static str>,
    pub error: BoxError,
}

impl std::fmt::Display for Caused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Caused {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

impl StepError {
    pub fn permanent(detail_id: &'static str, message: impl Into<String>) -> Self {
        StepError::Permanent {
            message: message.into(),
            detail_id,
        }
    }

    /// `error`, which waiting may fix.
    pub fn transient_from(error: impl Into<BoxError>) -> Self {
        StepError::Caused(Caused {
            permanent: None,
            error: error.into(),
        })
    }

    /// `error`, which only an admin can fix; `detail_id` is the text shown with the code.
    pub fn permanent_from(detail_id: &'static str, error: impl Into<BoxError>) -> Self {
        StepError::Caused(Caused {
            permanent: Some(detail_id),
            error: error.into(),
        })
    }

    /// Whether waiting may fix it (the runner retries these).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StepError::Transient(_)
                | StepError::Caused(Caused {
                    permanent: None,
                    ..
                })
        )
    }
}

/// `error` and every `source()` below it, joined with `: ` (for the log).
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

impl From<JcError> for StepError {
    fn from(e: JcError) -> Self {
        if let JcError::Provider(inner) = e {
            // The engine's own credentials provider failed: its error, as it was.
            return match inner.downcast::<StepError>() {
                Ok(own) => *own,
                Err(other) => StepError::permanent_from("error.directory", other),
            };
        }
        if e.is_transient() {
            StepError::transient_from(e)
        } else {
            StepError::permanent_from("error.directory", e)
        }
    }
}

impl From<HostError> for StepError {
    fn from(e: HostError) -> Self {
        match e {
            // A name macOS will never accept does not get better by waiting.
            HostError::BadName { .. } => StepError::permanent_from("error.directory", e),
            // A tool that fails may work on the next try (a busy opendirectoryd, a slow
            // launchd); the engine retries with backoff and the log names the command.
            other => StepError::transient_from(other),
        }
    }
}

impl From<crate::host::agent::AgentError> for StepError {
    fn from(e: crate::host::agent::AgentError) -> Self {
        match e {
            // A complete jcagent.conf that is not JSON: the agent's install is broken (a file
            // the agent is still writing reads as "not yet", never as this).
            crate::host::agent::AgentError::Malformed { .. } => {
                StepError::permanent_from("error.agent_install", e)
            }
            // An unreadable or empty agent file is usually the agent at work; retry.
            other => StepError::transient_from(other),
        }
    }
}

impl From<UiError> for StepError {
    fn from(e: UiError) -> Self {
        match e {
            UiError::DialogMissing { .. } | UiError::Unanswerable(_) => {
                StepError::permanent_from("error.generic", e)
            }
            // An admin must change what is installed or what a profile sets.
            UiError::DialogTooOld { .. } | UiError::DialogAuthorisation { .. } => {
                StepError::permanent_from("error.configuration", e)
            }
            other => StepError::transient_from(other),
        }
    }
}

impl From<download::DownloadError> for StepError {
    fn from(e: download::DownloadError) -> Self {
        if e.is_client_error() {
            // 4xx: the URL is wrong or not ours to fetch; asking again will not change it.
            StepError::permanent_from("error.agent_install", e)
        } else {
            StepError::transient_from(e)
        }
    }
}

/// How a run ended (the CLI turns it into SPEC §2's exit code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Enrolled and cleaned up (or stopped by our own final bootout).
    Done,
    /// The enrollment had finished before this start; the finishing touches were repeated.
    AlreadyDone,
    /// Stopped by a permanent failure; the reference code is in the state and the log.
    Failed { reference: String, message: String },
    /// The configuration cannot work; the reference code is in the state and the log.
    ConfigInvalid { reference: String, message: String },
    /// Stopped by the shutdown signal (SIGTERM) before the end; progress is persisted and the
    /// next start resumes.
    Stopped,
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
    /// At most this long is waited for a Secure Token after the employee's first login: the
    /// wait is `SecureTokenTimeoutSeconds`, and simulations shorten it further with this.
    pub secure_token_grace: Duration,
    /// Each step's patience ([`Step::patience`]) is divided by this (1 in production;
    /// rehearsals and tests shorten it like the other pacing).
    pub patience_divisor: u32,
}

impl Timing {
    /// The patience of `step` under this timing.
    pub fn patience(&self, step: Step) -> Option<Duration> {
        step.patience().map(|p| p / self.patience_divisor.max(1))
    }
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            tool_gap: wait::TOOL_GAP,
            file_poll: wait::FILE_POLL,
            agent_silence: Duration::from_secs(90),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
            // No cap: SecureTokenTimeoutSeconds decides (default 300 s: a token that comes
            // through JumpCloud's service account can take longer than a login). Past it the
            // setup accounts are kept (never deleting the last token holder) and the directory
            // is told.
            secure_token_grace: Duration::MAX,
            patience_divisor: 1,
        }
    }
}

/// A callback told about every [`Event`].
pub type Observer = Box<dyn Fn(&Event) + Send + Sync>;

/// Everything the engine works with.
pub struct Engine {
    pub(crate) root: Root,
    pub(crate) config: Config,
    pub(crate) host: Arc<dyn Host>,
    pub(crate) ui: Box<dyn Ui>,
    /// Called off the runtime thread ([`crate::config::keychain::off_thread`]).
    pub(crate) keychain: Arc<dyn Keychain>,
    /// The run's one JumpCloud client, built in [`Engine::new`] and never rebuilt (its clock
    /// sync, admin fallback and `Retry-After` memory last the whole run).
    pub(crate) dir: Arc<dyn Directory>,
    /// The client's credentials: the API key, the system identity, the admin fallback.
    pub(crate) auth: Arc<auth::EngineAuth>,
    pub(crate) agent: AgentFiles,
    pub(crate) store: Store,
    pub(crate) state: State,
    pub(crate) timing: Timing,
    observer: Option<Observer>,
    /// Whether the progress window was opened by this process.
    pub(crate) window_open: bool,
    /// Messages to the admin's webhook receivers (sent in the background).
    pub(crate) webhooks: webhooks::Outbox,
    /// The console user, watched through `/dev/console`'s metadata (issue 11).
    pub(crate) console: crate::host::ConsoleWatch,
    /// UIDs `id -u` printed for the setup accounts in this process (issue 11: the removal need
    /// not ask again what the handover just read). Never persisted: a restarted run asks
    /// again. A stale entry costs nothing: deleting an account that is already gone succeeds.
    pub(crate) setup_uids: std::collections::BTreeMap<String, u32>,
    /// The clock [`clock::now_ms`] reads while [`Engine::run`] runs (see `clock.rs`).
    clock: Arc<dyn clock::Clock>,
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
                lifecycle::log_moved_aside(&moved_to, &reason);
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
        let webhooks = webhooks::Outbox::open(store.dir(), config.webhooks.clone());
        let keychain: Arc<dyn Keychain> = Arc::from(keychain);
        let agent = AgentFiles::new(root.clone());
        let auth = Arc::new(auth::EngineAuth::new(
            &config,
            Arc::clone(&keychain),
            Arc::clone(&host),
            agent.clone(),
            &state,
        ));
        let dir = connect(Arc::clone(&auth) as Arc<dyn crate::jumpcloud::Auth>).unwrap_or_else(
            // Reported by the first step that calls JumpCloud, with a reference code.
            |err| {
                warn!(error = %err, "the JumpCloud client could not be built");
                Arc::new(connect::Unreachable::new(err))
            },
        );
        Ok(Self {
            webhooks,
            agent,
            console: crate::host::ConsoleWatch::new(root.resolve(crate::paths::mac::CONSOLE)),
            setup_uids: std::collections::BTreeMap::new(),
            root,
            config,
            host,
            ui,
            keychain,
            dir,
            auth,
            store,
            state,
            timing: Timing::default(),
            observer: None,
            window_open: false,
            clock: Arc::new(clock::SystemClock),
        })
    }

    /// Replaces the timing knobs (tests, demo).
    #[must_use]
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// Replaces the clock persisted timestamps read during [`Engine::run`] (tests drive it with
    /// paused tokio time; see `clock.rs`).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn clock::Clock>) -> Self {
        self.clock = clock;
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
        self.sync_auth()?;
        self.save()?;
        self.journal(event, detail)
    }

    /// Hands the state's facts to the credentials provider (the `systemKey`, the org), and
    /// takes into the state the client's decision to use the admin key for system calls (a
    /// system call got 401 while the API key works), persisted once with its journal line, so
    /// a restart starts with it and sends no signed request.
    fn sync_auth(&mut self) -> Result<(), StepError> {
        use crate::jumpcloud::Auth as _;
        self.auth.observe(&self.state);
        if !self.state.org.admin_fallback && self.auth.admin_fallback() {
            info!("system context is refused: the admin key is used for system calls from now on (persisted)");
            self.state.org.admin_fallback = true;
            self.save()?;
            self.journal("effect", "admin fallback")?;
        }
        Ok(())
    }

    /// Runs (or resumes) the enrollment to the end, or until `shutdown` completes (launchd's
    /// SIGTERM: at shutdown, or our own bootout at the very end). Stopping drops the work at
    /// whatever it was waiting for: progress is persisted before and after every side effect,
    /// so that is safe (crash-only), and dropping the UI closes its window.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Outcome {
        // The one injection point of the engine's clock: `clock::now_ms` reads it in this task.
        // Boxed: the scope would otherwise carry the whole run's state machine inline.
        clock::scope(Arc::clone(&self.clock), Box::pin(self.run_scoped(shutdown))).await
    }

    async fn run_scoped(mut self, shutdown: impl std::future::Future<Output = ()>) -> Outcome {
        // `caffeinate -w` ends with this process; every run starts its own.
        if let Err(err) = self.host.keep_awake(std::process::id()).await {
            warn!(error = %err, "could not start caffeinate; the Mac may sleep during enrollment");
        }
        // Messages an earlier run left pending go first; new ones are sent as they come.
        self.webhooks.start();
        let store = self.store.clone();
        tokio::select! {
            outcome = self.drive() => outcome,
            () = shutdown => lifecycle::stopped(&store),
        }
    }

    async fn drive(&mut self) -> Outcome {
        info!(run_id = %self.state.run_id, step = %self.state.step, run = self.state.runs, "prestage run");
        naming::update_help(self);
        let mut backoff = wait::Backoff::new(self.timing.backoff_base, self.timing.backoff_cap);
        loop {
            let step = self.state.step;
            if step == Step::Done {
                return self.finish_touches().await;
            }
            if let Err(e) = self.begin(step) {
                return self.fail(step, e).await;
            }
            let ran = match progress::before(self, step).await {
                Ok(()) => steps::run_step(self, step).await,
                Err(e) => Err(e),
            };
            match ran {
                Ok(()) => {
                    backoff.reset();
                    if let Err(e) = self.finish(step) {
                        return self.fail(step, e).await;
                    }
                    if step == Step::Cleanup {
                        return self.finish_touches().await;
                    }
                }
                Err(e) if e.is_transient() => {
                    let reason = chain(&e);
                    // Past the step's patience, waiting is not fixing it: say so.
                    if let Some(patience) = self.timing.patience(step) {
                        let since = self.state.steps.get(&step).map_or(0, |r| r.started_ms);
                        let waited = clock::now_ms().saturating_sub(since);
                        if u128::from(waited) > patience.as_millis() {
                            let message = format!(
                                "{reason} (still failing after {} s of retries; {})",
                                waited / 1000,
                                step.patience_hint()
                            );
                            return self
                                .fail(step, StepError::permanent("error.generic", message))
                                .await;
                        }
                    }
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
                    progress::show_retrying(self, step).await;
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return self.fail(step, e).await,
            }
        }
    }

    /// The finishing touches (idempotent; the last one is `launchctl bootout`).
    async fn finish_touches(&mut self) -> Outcome {
        // The last touch removes the daemon: no later run would send what is still pending.
        // The employee is at their desktop by now; nobody waits for this.
        self.webhooks.drain(webhooks::DRAIN_LIMIT).await;
        let result = finish::finish_touches(
            &self.root,
            &self.store,
            &mut self.state,
            self.host.as_ref(),
            &self.keychain,
            &self.timing,
        )
        .await;
        match result {
            Ok(()) => Outcome::Done,
            Err(e) => self.fail(Step::Done, e).await,
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
        self.sync_auth()?;
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
        self.sync_auth()?;
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
            StepError::Caused(Caused {
                permanent: Some(detail_id),
                ..
            }) => (chain(&err), *detail_id, false),
            other => (chain(other), "error.generic", false),
        };
        let reference = lifecycle::reference_for(&self.state, step, &message);
        error!(step = %step, reference = %reference, error = %message, "enrollment stopped: an administrator must act");
        let rec = ErrorRecord {
            step,
            message: message.clone(),
            reference: Some(reference.clone()),
            permanent: true,
            at_ms: clock::now_ms(),
        };
        self.state.last_error = Some(rec);
        // Best effort: the failure may be the disk itself, which the log then says.
        if let Err(e) = self.save() {
            warn!(error = %e, "could not record the failure in the state file");
        }
        if let Err(e) = self.journal("failed", format!("{reference}: {message}")) {
            warn!(error = %e, "could not record the failure in the journal");
        }
        webhooks::notify(
            self,
            crate::config::WebhookEvent::Failed,
            step,
            Some(&reference),
        );
        if self.state.handover.setup_logged_out {
            // The employee is at their own desktop (or the login window): what is left is the
            // admin's to fix, and a full-screen error would lock them out of their work.
            info!(reference = %reference, "not shown on screen: the employee already has their account");
        } else if let Err(e) = self.ui.fatal(&reference, detail_id).await {
            warn!(error = %e, "could not show the error to the employee");
        }
        // Sent while the error is on screen; bounded, as the process ends next.
        self.webhooks.drain(webhooks::DRAIN_LIMIT).await;
        if config {
            Outcome::ConfigInvalid { reference, message }
        } else {
            Outcome::Failed { reference, message }
        }
    }
}

/// The employee identified at step 8. Every step after it needs one, so a state without one
/// there is broken (a damaged or hand-edited state file, never one this code writes): waiting
/// cannot fix that, so it stops with a reference code instead of retrying forever.
pub(crate) fn employee(e: &Engine) -> Result<state::UserFacts, StepError> {
    e.state.identity.user.clone().ok_or_else(|| {
        StepError::permanent(
            "error.generic",
            format!(
                "the state file {} is at step {} but names no employee (step {} identifies one): it is damaged; run `prestage reset --yes` to start the enrollment again",
                e.store.state_path().display(),
                e.state.step,
                Step::Identify
            ),
        )
    })
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
            StepError::Caused(Caused {
                permanent: Some("error.directory"),
                ..
            })
        ));
        assert!(crate::host::mac::check_name("ada.lovelace").is_ok());
        let busy = HostError::Io {
            path: "/usr/bin/id".into(),
            source: std::io::Error::from(std::io::ErrorKind::TimedOut),
        };
        let busy = StepError::from(busy);
        assert!(busy.is_transient(), "{busy:?}");
    }
}
