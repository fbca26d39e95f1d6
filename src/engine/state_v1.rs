//! The state file of format version 1 (the first releases: one flat list of facts), read so
//! that a Mac mid-enrollment that gets a new package finishes from where it was. Only read,
//! never written: [`StateV1`] becomes a [`State`] of the current format on load.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::phases::{
    AgentProgress, BindPhase, CleanupPlan, HandoverProgress, IdentityProgress, NamingProgress,
    OrgFacts, PasswordProgress, RemovalProgress, TakeoverProgress,
};
use super::state::{ErrorRecord, PasswordPhase, State, Step, StepRecord, UserFacts, STATE_VERSION};

/// The format version this module reads.
pub const VERSION: u32 = 1;

/// A version 1 state file, field for field as version 1 wrote it.
#[derive(Debug, Clone, Deserialize)]
pub struct StateV1 {
    /// Random id of this enrollment, in every log line's context.
    pub run_id: String,
    pub step: Step,
    pub step_started_ms: u64,
    /// Attempts at the current step (1 on the first try).
    pub attempts: u32,
    #[serde(default)]
    pub steps: BTreeMap<Step, StepRecord>,
    #[serde(default)]
    pub last_error: Option<ErrorRecord>,
    /// Times `prestage run` started on this enrollment (restarts + 1).
    #[serde(default)]
    pub runs: u32,

    // Facts learnt along the way.
    /// The setup account the employee started on (console user at the desktop).
    #[serde(default)]
    pub setup_user: Option<String>,
    #[serde(default)]
    pub agent_installed: bool,
    #[serde(default)]
    pub agent_install_started_ms: Option<u64>,
    #[serde(default)]
    pub agent_kickstarted: bool,
    /// When the agent's installer was seen asking for Full Disk Access (System Settings opened
    /// during the install): the PPPC profile for the agent is missing.
    #[serde(default)]
    pub agent_fda_prompt_ms: Option<u64>,
    #[serde(default)]
    pub system_key: Option<String>,
    #[serde(default)]
    pub org_id: Option<String>,
    /// System context was refused: admin key for system calls (SPEC §5 ADE fallback).
    #[serde(default)]
    pub admin_fallback: bool,
    #[serde(default)]
    pub identity_failures: u32,
    #[serde(default)]
    pub cooldown_until_ms: Option<u64>,
    #[serde(default)]
    pub policy: Option<crate::policy::PasswordPolicy>,
    #[serde(default)]
    pub user: Option<UserFacts>,
    #[serde(default)]
    pub password: PasswordPhase,
    #[serde(default)]
    pub activated: bool,
    /// Byte offset of `jcagent.log` when we bound the user: only `User updates complete` after
    /// it counts.
    #[serde(default)]
    pub agent_log_offset: Option<u64>,
    #[serde(default)]
    pub bind_sent: bool,
    #[serde(default)]
    pub bind_confirmed: bool,
    #[serde(default)]
    pub takeover_started_ms: Option<u64>,
    #[serde(default)]
    pub takeover_kickstarts: u32,
    /// Which signal ended the wait for the employee's account (for the log and `status`).
    #[serde(default)]
    pub takeover_signal: Option<String>,
    #[serde(default)]
    pub hidden_users: Vec<String>,
    #[serde(default)]
    pub setup_logged_out: bool,
    /// When the employee was first seen at the console.
    #[serde(default)]
    pub login_seen_ms: Option<u64>,
    #[serde(default)]
    pub employee_has_token: bool,
    /// What `fdesetup status` said once the employee held a token (`None`: not asked yet).
    #[serde(default)]
    pub filevault_on: Option<bool>,
    /// `diskutil apfs updatePreboot /` ran after the employee got a token (FileVault on).
    #[serde(default)]
    pub preboot_updated: bool,
    /// Failed `diskutil apfs updatePreboot /` runs (bounded; then the setup accounts are kept).
    #[serde(default)]
    pub preboot_failures: u32,
    /// `sysadminctl -deleteUser` runs per setup account, counted before each (bounded).
    #[serde(default)]
    pub delete_attempts: BTreeMap<String, u32>,
    /// Why each kept setup account was kept.
    #[serde(default)]
    pub kept_reasons: BTreeMap<String, String>,
    #[serde(default)]
    pub deleted_users: Vec<String>,
    /// Setup accounts kept, and why (e.g. the employee has no Secure Token yet).
    #[serde(default)]
    pub kept_users: Vec<String>,
    #[serde(default)]
    pub groups_moved: bool,
    /// What the finishing touches must remove (decided at the cleanup step, so they need no
    /// configuration: the local configuration file is one of them).
    #[serde(default)]
    pub keychain_service: Option<String>,
    #[serde(default)]
    pub remove_local_config: bool,
    /// Secrets, LaunchDaemon and local configuration removed; `launchctl bootout` comes next.
    #[serde(default)]
    pub finished: bool,
    /// The Mac's serial number (`ioreg`), once read.
    #[serde(default)]
    pub serial: Option<String>,
    /// The name given from `ComputerName`, once decided (before it is set: a restart sets the
    /// same name).
    #[serde(default)]
    pub computer_name: Option<String>,
    /// `scutil` set the three names / JumpCloud has the `displayName`.
    #[serde(default)]
    pub names_set: bool,
    #[serde(default)]
    pub display_name_set: bool,
}

impl From<StateV1> for State {
    fn from(old: StateV1) -> Self {
        // The bind as the flags told it: the offset is recorded first, then `bind_sent`, then
        // the confirmation with the start of the wait for the account.
        let bind = match (old.agent_log_offset, old.bind_sent, old.bind_confirmed) {
            (None, ..) => BindPhase::NotSent,
            (Some(log_offset), _, true) => BindPhase::Confirmed {
                log_offset,
                takeover_started_ms: old.takeover_started_ms.unwrap_or(old.step_started_ms),
            },
            (Some(log_offset), true, false) => BindPhase::Sent { log_offset },
            (Some(log_offset), false, false) => BindPhase::LogMarked { log_offset },
        };
        let cleanup =
            (old.step > Step::Cleanup || old.keychain_service.is_some() || old.remove_local_config)
                .then_some(CleanupPlan {
                    keychain_service: old.keychain_service,
                    remove_local_config: old.remove_local_config,
                });
        State {
            version: STATE_VERSION,
            run_id: old.run_id,
            step: old.step,
            step_started_ms: old.step_started_ms,
            attempts: old.attempts,
            steps: old.steps,
            last_error: old.last_error,
            runs: old.runs,
            finished: old.finished,
            agent: AgentProgress {
                installed: old.agent_installed,
                install_started_ms: old.agent_install_started_ms,
                kickstarted: old.agent_kickstarted,
                fda_prompt_ms: old.agent_fda_prompt_ms,
                system_key: old.system_key,
            },
            org: OrgFacts {
                id: old.org_id,
                admin_fallback: old.admin_fallback,
                policy: old.policy,
            },
            identity: IdentityProgress {
                setup_user: old.setup_user,
                user: old.user,
                failures: old.identity_failures,
                cooldown_until_ms: old.cooldown_until_ms,
            },
            password: PasswordProgress {
                phase: old.password,
                activated: old.activated,
            },
            bind,
            takeover: TakeoverProgress {
                kickstarts: old.takeover_kickstarts,
                signal: old.takeover_signal,
            },
            handover: HandoverProgress {
                hidden_users: old.hidden_users,
                setup_logged_out: old.setup_logged_out,
                login_seen_ms: old.login_seen_ms,
                employee_has_token: old.employee_has_token,
            },
            removal: RemovalProgress {
                groups_moved: old.groups_moved,
                filevault_on: old.filevault_on,
                preboot_updated: old.preboot_updated,
                preboot_failures: old.preboot_failures,
                delete_attempts: old.delete_attempts,
                deleted_users: old.deleted_users,
                kept_users: old.kept_users,
                kept_reasons: old.kept_reasons,
            },
            cleanup,
            naming: NamingProgress {
                serial: old.serial,
                computer_name: old.computer_name,
                names_set: old.names_set,
                display_name_set: old.display_name_set,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1(extra: &serde_json::Value) -> State {
        let mut value = serde_json::json!({
            "version": 1, "run_id": "0badcafe", "step": "bind", "step_started_ms": 7,
            "attempts": 1, "runs": 1
        });
        for (k, v) in extra.as_object().expect("an object") {
            value[k] = v.clone();
        }
        serde_json::from_value::<StateV1>(value)
            .expect("a version 1 state")
            .into()
    }

    #[test]
    fn the_bind_flags_become_one_phase() {
        assert_eq!(v1(&serde_json::json!({})).bind, BindPhase::NotSent);
        assert_eq!(
            v1(&serde_json::json!({"agent_log_offset": 5})).bind,
            BindPhase::LogMarked { log_offset: 5 }
        );
        assert_eq!(
            v1(&serde_json::json!({"agent_log_offset": 5, "bind_sent": true})).bind,
            BindPhase::Sent { log_offset: 5 }
        );
        assert_eq!(
            v1(
                &serde_json::json!({"agent_log_offset": 5, "bind_sent": true,
                "bind_confirmed": true, "takeover_started_ms": 9})
            )
            .bind,
            BindPhase::Confirmed {
                log_offset: 5,
                takeover_started_ms: 9
            }
        );
    }

    #[test]
    fn the_cleanup_plan_and_the_other_facts_keep_their_values() {
        let st = v1(&serde_json::json!({
            "step": "done", "keychain_service": "io.prestage.key", "remove_local_config": true,
            "kept_users": ["welcome"], "employee_has_token": true, "serial": "C02X",
            "admin_fallback": true, "identity_failures": 2, "takeover_kickstarts": 1
        }));
        assert_eq!(st.version, STATE_VERSION);
        let plan = st.cleanup.expect("a plan");
        assert_eq!(plan.keychain_service.as_deref(), Some("io.prestage.key"));
        assert!(plan.remove_local_config);
        assert_eq!(st.removal.kept_users, ["welcome"]);
        assert!(st.handover.employee_has_token);
        assert_eq!(st.naming.serial.as_deref(), Some("C02X"));
        assert!(st.org.admin_fallback);
        assert_eq!(st.identity.failures, 2);
        assert_eq!(st.takeover.kickstarts, 1);
        assert_eq!(v1(&serde_json::json!({})).cleanup, None);
    }
}
