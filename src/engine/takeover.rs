//! Step 11, `wait_account`: waiting for the JumpCloud agent to create (or take over) the
//! employee's account after the bind.
//!
//! What ends the wait, in order of trust (each also needs `id -u` to find the account):
//! 1. `User updates complete` in the agent's log after our bind: what JumpCloud's scripts have
//!    grepped for since 2019 (MDM-Prestage-User-Enrollment `jumpcloud_bootstrap_template.sh`).
//! 2. `Processing user updates` after our bind, then the log quiet for [`QUIET`]: the line the
//!    same script's last check (3.1.8) greps for. No public excerpt of a current agent's log
//!    confirms either wording, so the wait does not rest on one string (REFERENCE.md).
//!
//! The agent is restarted at most once per wait, after `Timing::agent_silence` of log silence:
//! JumpCloud's script restarts it once, at 90 s of silence (`launchctl stop`, relying on
//! KeepAlive), and `kickstart -k` kills an agent that may be creating the account.

use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};

use super::wait::Pacer;
use super::{clock, Engine, StepError};
use crate::host::{TAKEOVER_DONE, TAKEOVER_PROCESSING};

/// How long the log must stay quiet after `Processing user updates` (with the account there)
/// before the fallback signal counts: the agent may still be setting the account's password
/// and groups. A guess: the agent's real cadence is not documented.
pub const QUIET: Duration = Duration::from_secs(20);

/// What ended the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `User updates complete`.
    Complete,
    /// `Processing user updates`, then a quiet log.
    ProcessingThenQuiet,
}

impl Signal {
    /// How the log and `status` name it.
    pub fn describe(self) -> String {
        match self {
            Signal::Complete => format!("`{TAKEOVER_DONE}` in the agent's log"),
            Signal::ProcessingThenQuiet => format!(
                "`{TAKEOVER_PROCESSING}` in the agent's log, then {} s without a new line (no `{TAKEOVER_DONE}`)",
                QUIET.as_secs()
            ),
        }
    }
}

/// The wait's reading of the agent's log, apart from any I/O (so it is tested on synthetic
/// time).
#[derive(Debug)]
pub struct Watch {
    complete: bool,
    processing: bool,
    last_growth: Instant,
    silence: Duration,
    quiet: Duration,
    /// The one restart of this wait is used up (persisted: it survives a restart of prestage).
    kicked: bool,
}

impl Watch {
    pub fn new(now: Instant, silence: Duration, quiet: Duration, kicked: bool) -> Self {
        Self {
            complete: false,
            processing: false,
            last_growth: now,
            silence,
            quiet,
            kicked,
        }
    }

    /// New log lines seen at `now`; true when they brought `User updates complete` for the
    /// first time (the account is worth a look at once).
    pub fn see(&mut self, lines: &[String], now: Instant) -> bool {
        if lines.is_empty() {
            return false;
        }
        self.last_growth = now;
        self.processing |= lines.iter().any(|l| l.contains(TAKEOVER_PROCESSING));
        let fresh = !self.complete && lines.iter().any(|l| l.contains(TAKEOVER_DONE));
        self.complete |= fresh;
        fresh
    }

    /// The signal that ends the wait once the account exists, if the log has given one.
    pub fn signal(&self, now: Instant) -> Option<Signal> {
        if self.complete {
            Some(Signal::Complete)
        } else if self.processing && now.saturating_duration_since(self.last_growth) >= self.quiet {
            Some(Signal::ProcessingThenQuiet)
        } else {
            None
        }
    }

    /// Whether to restart the agent now: silent long enough, and not restarted yet in this
    /// wait.
    pub fn should_kickstart(&self, now: Instant) -> bool {
        !self.kicked && now.saturating_duration_since(self.last_growth) >= self.silence
    }

    /// The agent was restarted at `now`.
    pub fn kicked(&mut self, now: Instant) {
        self.kicked = true;
        self.last_growth = now;
    }
}

/// Step 11: waits for the agent to create the employee's account (see the module docs).
pub(super) async fn wait_account(e: &mut Engine) -> Result<(), StepError> {
    let user = super::employee(e)?;
    // Confirmed by the bind step; a state without it (not one this code writes) waits from now.
    let started = e
        .state
        .bind
        .takeover_started_ms()
        .unwrap_or_else(clock::now_ms);
    let limit_ms = u64::try_from(e.config.agent.takeover_timeout.as_millis()).unwrap_or(u64::MAX);
    let silence = e
        .timing
        .agent_silence
        .min(e.config.agent.takeover_timeout / 2);
    let mut pacer = Pacer::new(e.timing.tool_gap);
    // Only lines written after our bind count.
    let mut log = e.agent.follow_log(e.state.bind.log_offset().unwrap_or(0));
    let mut watch = Watch::new(
        Instant::now(),
        silence,
        QUIET,
        e.state.takeover.kickstarts > 0,
    );
    loop {
        let lines = log.read_new_lines()?;
        let now = Instant::now();
        let fresh = watch.see(&lines, now);
        if let Some(signal) = watch.signal(now) {
            // The log just said the takeover is done: check the account now rather than a gap
            // later; otherwise one `id -u` per gap.
            if fresh {
                pacer.react();
            } else {
                pacer.tick().await;
            }
            if let Some(uid) = e.host.user_id(&user.local_name).await? {
                let how = signal.describe();
                info!(account = %user.local_name, uid, signal = %how, "the agent created the employee's account");
                e.record("effect", format!("account ready: {how}"), |s| {
                    s.takeover.signal = Some(how.clone());
                })?;
                return Ok(());
            }
        }
        if clock::now_ms().saturating_sub(started) >= limit_ms {
            return Err(StepError::permanent(
                "error.takeover_timeout",
                format!(
                    "the JumpCloud agent did not create the account {} within {} s (Agent.TakeoverTimeoutSeconds); check /var/log/jcagent.log and the user's binding in the JumpCloud console",
                    user.local_name,
                    limit_ms / 1000
                ),
            ));
        }
        if watch.should_kickstart(now) {
            warn!(silent_s = silence.as_secs(), "the JumpCloud agent's log is silent; restarting the agent, once for this wait (bash script CHANGELOG 3.1.1)");
            // Counted before: a crash in between must not buy a second restart.
            e.record("effect", "kickstart agent (silent log)", |s| {
                s.takeover.kickstarts += 1;
            })?;
            pacer.tick().await;
            e.host.kickstart_agent().await?;
            watch.kicked(Instant::now());
        }
        tokio::time::sleep(e.timing.file_poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|t| (*t).to_owned()).collect()
    }

    #[allow(non_snake_case)]
    fn S(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn user_updates_complete_ends_the_wait_at_once() {
        let t0 = Instant::now();
        let mut w = Watch::new(t0, S(90), QUIET, false);
        assert_eq!(w.signal(t0), None);
        assert!(!w.see(
            &lines(&["23-01-01 10:00:00 [INFO] Agent check-in complete"]),
            t0
        ));
        assert!(w.see(
            &lines(&[
                "23-01-01 10:00:01 [INFO] Processing user updates",
                "23-01-01 10:00:02 [INFO] User updates complete",
            ]),
            t0 + S(1)
        ));
        assert_eq!(w.signal(t0 + S(1)), Some(Signal::Complete));
        // Only the first sighting is fresh.
        assert!(!w.see(&lines(&["User updates complete"]), t0 + S(2)));
    }

    #[test]
    fn processing_alone_counts_once_the_log_is_quiet() {
        let t0 = Instant::now();
        let mut w = Watch::new(t0, S(90), QUIET, false);
        w.see(&lines(&["[INFO] Processing user updates"]), t0);
        assert_eq!(w.signal(t0 + S(19)), None);
        // Any new line restarts the quiet period.
        w.see(
            &lines(&["[INFO] User ada account management applied"]),
            t0 + S(10),
        );
        assert_eq!(w.signal(t0 + S(29)), None);
        assert_eq!(w.signal(t0 + S(30)), Some(Signal::ProcessingThenQuiet));
        // A quiet log without `Processing user updates` is no signal.
        let quiet = Watch::new(t0, S(90), QUIET, false);
        assert_eq!(quiet.signal(t0 + S(600)), None);
    }

    #[test]
    fn the_agent_is_restarted_at_most_once_per_wait() {
        let t0 = Instant::now();
        let mut w = Watch::new(t0, S(90), QUIET, false);
        assert!(!w.should_kickstart(t0 + S(89)));
        assert!(w.should_kickstart(t0 + S(90)));
        w.kicked(t0 + S(90));
        // The old wait restarted the agent on every 90 s of silence; now never again.
        for t in [180, 270, 600, 6000] {
            assert!(!w.should_kickstart(t0 + S(t)), "at {t} s");
        }
        // A wait resumed after a restart of prestage that already used its kickstart.
        let resumed = Watch::new(t0, S(90), QUIET, true);
        assert!(!resumed.should_kickstart(t0 + S(900)));
    }

    #[test]
    fn signals_name_what_ended_the_wait() {
        assert!(Signal::Complete
            .describe()
            .contains("User updates complete"));
        let fallback = Signal::ProcessingThenQuiet.describe();
        assert!(fallback.contains("Processing user updates"), "{fallback}");
        assert!(fallback.contains("20 s"), "{fallback}");
    }
}
