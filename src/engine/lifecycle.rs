//! A run's life from the engine's side: what a start finds, the finished Mac, the configuration
//! that cannot work, and how a stop by SIGTERM ends. The wiring (`app`) builds the parts and
//! hands them here; only the CLI prints and chooses exit codes.

use std::future::Future;

use tracing::{error, info, warn};

use super::state::{ErrorRecord, Loaded, State, StateError, Step, Store};
use super::{clock, reference_code, Outcome, Timing};
use crate::config::keychain::Keychain;
use crate::host::Host;
use crate::paths::Root;
use crate::ui::Ui;

/// What a start of `prestage run` finds in the state directory.
#[derive(Debug)]
pub enum Start {
    /// The enrollment finished earlier: only the finishing touches are repeated, no
    /// configuration needed.
    Finished(Box<State>),
    /// Enroll (or resume): build the engine.
    Enroll,
}

/// Reads the state once: a finished enrollment stays finished, even once its configuration is
/// gone (an MDM may reinstall the package or reboot the Mac; nothing is done twice). A state
/// file that cannot be read is moved aside, said once in the log, and the enrollment starts
/// over.
pub fn start(store: &Store) -> Result<Start, StateError> {
    match store.load()? {
        Loaded::Resumed(state) if state.step == Step::Done => Ok(Start::Finished(state)),
        Loaded::Resumed(_) | Loaded::Fresh => Ok(Start::Enroll),
        Loaded::MovedAside { moved_to, reason } => {
            log_moved_aside(&moved_to, &reason);
            Ok(Start::Enroll)
        }
    }
}

/// The one log line for a state file that was moved aside.
pub(crate) fn log_moved_aside(moved_to: &std::path::Path, reason: &str) {
    error!(
        moved_to = %moved_to.display(),
        %reason,
        "the state file could not be read and was moved aside; starting over (every step checks what is already done)"
    );
}

/// A start after the last step: sends the webhook messages still pending (a run killed while
/// it drained them before its bootout left them; `webhooks` are the receivers of the
/// configuration, if one can still be read), then repeats the idempotent finishing touches
/// (keychain item, secret-holding local config, LaunchDaemon, then the bootout that ends this
/// process). A crash may have come between persisting them and the bootout, and a package the
/// MDM pushed again leaves a LaunchDaemon behind. SIGTERM (our own bootout) ends it as done.
pub async fn resume_finished(
    root: &Root,
    mut state: State,
    host: &dyn Host,
    keychain: &std::sync::Arc<dyn Keychain>,
    timing: &Timing,
    webhooks: Vec<crate::config::WebhookConfig>,
    shutdown: impl Future<Output = ()>,
) -> Outcome {
    let store = Store::new(root);
    let outbox = super::webhooks::Outbox::open(store.dir(), webhooks);
    let touches = async {
        // The last touch removes the daemon: no later start would send them.
        if outbox.pending() > 0 {
            outbox.start();
            outbox.drain(super::webhooks::DRAIN_LIMIT).await;
        }
        super::finish::finish_touches(root, &store, &mut state, host, keychain, timing).await
    };
    tokio::select! {
        result = touches => match result {
            Ok(()) => Outcome::AlreadyDone,
            Err(e) => {
                let message = e.to_string();
                let reference = reference_for(&state, Step::Done, &message);
                error!(reference = %reference, error = %message, "the finishing touches failed; the next start tries again");
                Outcome::Failed { reference, message }
            }
        },
        () = shutdown => Outcome::Done,
    }
}

/// The reference code of a permanent failure: the same failure again (launchd restarts us every
/// minute) keeps its code, so the employee and IT talk about one code.
pub(crate) fn reference_for(state: &State, step: Step, message: &str) -> String {
    match &state.last_error {
        Some(prev) if prev.permanent && prev.step == step && prev.message == message => prev
            .reference
            .clone()
            .unwrap_or_else(|| reference_code(step, &state.run_id)),
        _ => reference_code(step, &state.run_id),
    }
}

/// The configuration cannot work: the state, the log and (when someone sits at the Mac) the
/// screen say so, with a reference code that stays the same across launchd's restarts.
pub async fn record_config_failure(
    root: &Root,
    host: &dyn Host,
    ui: &mut dyn Ui,
    message: &str,
) -> Outcome {
    let store = Store::new(root);
    let mut state = match store.load() {
        Ok(Loaded::Resumed(state)) => *state,
        Ok(Loaded::MovedAside { moved_to, reason }) => {
            log_moved_aside(&moved_to, &reason);
            State::new(clock::now_ms())
        }
        Ok(Loaded::Fresh) => State::new(clock::now_ms()),
        Err(e) => {
            warn!(error = %e, "cannot read the state to record the configuration error");
            State::new(clock::now_ms())
        }
    };
    let recorded = format!("configuration invalid: {message}");
    let reference = reference_for(&state, state.step, &recorded);
    error!(reference = %reference, error = %message, "the configuration is invalid; fix it with the MDM (see `prestage config check`)");
    state.last_error = Some(ErrorRecord {
        step: state.step,
        message: recorded,
        reference: Some(reference.clone()),
        permanent: true,
        at_ms: clock::now_ms(),
    });
    if let Err(e) = store.ensure_dir().and_then(|()| store.save(&state)) {
        warn!(error = %e, "could not record the configuration error in the state file");
    }
    // Show it to whoever sits at the Mac, if anyone does and it is not the employee's own
    // desktop already.
    let person_at_console = match host.console_user().await {
        Ok(user) => !crate::host::is_system_user(&user),
        Err(e) => {
            warn!(error = %e, "cannot tell who is at the console");
            false
        }
    };
    if person_at_console && !state.handover.setup_logged_out {
        if let Err(e) = ui.fatal(&reference, "error.configuration").await {
            warn!(error = %e, "could not show the configuration error on screen");
        }
    } else {
        info!(reference = %reference, "the configuration error is not shown on screen: nobody to show it to");
    }
    Outcome::ConfigInvalid {
        reference,
        message: message.to_owned(),
    }
}

/// How a run stopped by SIGTERM ends: done when the enrollment had finished (the SIGTERM is
/// our own final bootout), else stopped; the next start resumes where this one stopped.
pub(crate) fn stopped(store: &Store) -> Outcome {
    match store.load() {
        Ok(Loaded::Resumed(state)) if state.step == Step::Done => Outcome::Done,
        _ => {
            warn!("SIGTERM: stopping; the next start resumes where this one stopped");
            Outcome::Stopped
        }
    }
}
