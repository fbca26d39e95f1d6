//! The end of an enrollment. Step 15, `cleanup`, plans the finishing touches and leaves the
//! receipt; the finishing touches ([`finish`], retried by [`finish_touches`]) run once Done is
//! persisted, right after the step and again on any later start until they have completed
//! (`lifecycle::resume_finished`), and need no configuration.

use tracing::{info, warn};

use super::phases::CleanupPlan;
use super::state::{JournalEntry, State, Step, Store};
use super::{clock, wait, Engine, StepError, Timing};
use crate::config::keychain::Keychain;
use crate::config::{ApiKeySource, WebhookEvent};
use crate::host::Host;
use crate::paths::{mac, Root};

pub(super) fn cleanup(e: &mut Engine) -> Result<(), StepError> {
    // Decide what the finishing touches remove, then leave the receipt. The removals happen
    // after the state says Done (see `finish`), so a restart in between still has a
    // configuration to start with, and a finished Mac needs none.
    let keychain_service = match &e.config.api_key {
        ApiKeySource::Keychain { service } => Some(service.clone()),
        _ => None,
    };
    // A local configuration holds a secret unless the API key is in the keychain, and always
    // when it holds EnrollmentUserPassword.
    let holds_secret = keychain_service.is_none() || e.config.enrollment_user_password.is_some();
    e.record("effect", "cleanup planned", |s| {
        s.cleanup = Some(CleanupPlan {
            keychain_service,
            remove_local_config: holds_secret,
        });
    })?;
    super::status::write_receipt(e)?;
    super::webhooks::notify(e, WebhookEvent::Finished, Step::Cleanup, None);
    Ok(())
}

/// The finishing touches of a finished enrollment, each idempotent: delete the API key from
/// the System keychain, remove the local configuration when it holds a secret, remove the
/// LaunchDaemon plist, and last `launchctl bootout system/io.prestage.enroll` (launchd may kill
/// us while it runs). Runs right after the cleanup step and again on any later start until it
/// has completed, and needs no configuration.
pub async fn finish(
    root: &Root,
    store: &Store,
    state: &mut State,
    host: &dyn Host,
    keychain: &std::sync::Arc<dyn Keychain>,
) -> Result<(), StepError> {
    // Every start after the last step comes here, even once finished: what this does is
    // idempotent, and the one thing that cannot be persisted after it happened (the bootout
    // ends this process) must be repeated if a crash came between the two.
    let plan = state.cleanup.clone().unwrap_or_default();
    if let Some(service) = &plan.keychain_service {
        // Not done until it is gone: the key must not outlive the enrollment.
        crate::config::keychain::off_thread(keychain, service, |kc, s| kc.delete(s))
            .await
            .map_err(|err| {
                StepError::Transient(format!(
                    "could not delete the API key from the System keychain: {err}"
                ))
            })?;
    }
    // The agent's credentials file too, should an installer and a crash have left it.
    let mut remove = vec![mac::LAUNCH_DAEMON, mac::JC_SECURETOKEN_CREDS];
    if plan.remove_local_config {
        remove.push(mac::LOCAL_CONFIG);
    }
    for path in remove {
        let real = root.resolve(path);
        match std::fs::remove_file(&real) {
            Ok(()) => info!(path, "removed"),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(StepError::Transient(format!(
                    "cannot remove {}: {err}",
                    real.display()
                )))
            }
        }
    }
    // Persisted before the last side effect: bootout may end this process.
    let again = state.finished;
    if !again {
        state.finished = true;
        store.save(state)?;
        store.journal(&JournalEntry {
            at_ms: clock::now_ms(),
            step: state.step,
            event: "effect".into(),
            detail: "bootout".into(),
        })?;
    }
    match host.remove_daemon().await {
        Ok(()) => {}
        // Started by hand, or the bootout before a crash did happen: launchd has no such job.
        Err(err) if again => info!(error = %err, "the LaunchDaemon is not loaded"),
        Err(err) => {
            warn!(error = %err, "could not unload the LaunchDaemon; it will not start again since its plist is gone");
        }
    }
    Ok(())
}

/// The finishing touches, transient failures (a keychain or disk hiccup) retried with backoff
/// like any step's; a permanent one is returned.
pub(crate) async fn finish_touches(
    root: &Root,
    store: &Store,
    state: &mut State,
    host: &dyn Host,
    keychain: &std::sync::Arc<dyn Keychain>,
    timing: &Timing,
) -> Result<(), StepError> {
    let mut backoff = wait::Backoff::new(timing.backoff_base, timing.backoff_cap);
    loop {
        match finish(root, store, state, host, keychain).await {
            Err(e) if e.is_transient() => {
                let delay = backoff.next_delay();
                warn!(reason = %super::chain(&e), "finishing touches will be retried");
                tokio::time::sleep(delay).await;
            }
            other => return other,
        }
    }
}
