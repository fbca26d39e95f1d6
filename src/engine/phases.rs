//! The facts of [`super::state::State`], grouped by the phase of the enrollment that learns
//! them (format version 2). Each group is persisted whole in the state file under its own key;
//! none holds a secret.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::state::UserFacts;

/// Steps 4 and 5: the JumpCloud agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentProgress {
    pub installed: bool,
    pub install_started_ms: Option<u64>,
    /// The one kickstart half-way through `Agent.InstallTimeoutSeconds` happened.
    pub kickstarted: bool,
    /// When the agent's installer was seen asking for Full Disk Access (System Settings opened
    /// during the install): the PPPC profile for the agent is missing.
    pub fda_prompt_ms: Option<u64>,
    /// The agent's `systemKey`, once it registered this Mac.
    pub system_key: Option<String>,
}

/// Steps 5 to 7: what the organisation says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrgFacts {
    pub id: Option<String>,
    /// System context was refused: admin key for system calls (SPEC §5 ADE fallback).
    pub admin_fallback: bool,
    pub policy: Option<crate::policy::PasswordPolicy>,
}

/// Steps 2 and 8: the setup account and the employee.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IdentityProgress {
    /// The setup account the employee started on (console user at the desktop).
    pub setup_user: Option<String>,
    /// The employee, once identified (read it with [`super::employee`]).
    pub user: Option<UserFacts>,
    /// Failed identity checks since the last success or cool-down.
    pub failures: u32,
    pub cooldown_until_ms: Option<u64>,
}

/// Step 10, the bind, and when the wait for the account (step 11) began.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum BindPhase {
    /// Nothing done yet.
    #[default]
    NotSent,
    /// `jcagent.log`'s size before the bind is recorded: only `User updates complete` after it
    /// counts.
    LogMarked { log_offset: u64 },
    /// The bind is about to be or was sent and its answer is not known: a restart reads the
    /// bindings back before sending again.
    Sent { log_offset: u64 },
    /// JumpCloud confirmed the bind; the wait for the account counts from `takeover_started_ms`.
    Confirmed {
        log_offset: u64,
        takeover_started_ms: u64,
    },
}

impl BindPhase {
    /// The log offset recorded before the bind.
    pub fn log_offset(&self) -> Option<u64> {
        match self {
            BindPhase::NotSent => None,
            BindPhase::LogMarked { log_offset }
            | BindPhase::Sent { log_offset }
            | BindPhase::Confirmed { log_offset, .. } => Some(*log_offset),
        }
    }

    /// When the bind was confirmed.
    pub fn takeover_started_ms(&self) -> Option<u64> {
        match self {
            BindPhase::Confirmed {
                takeover_started_ms,
                ..
            } => Some(*takeover_started_ms),
            _ => None,
        }
    }
}

/// Step 11: the agent creating the employee's account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TakeoverProgress {
    /// Agent restarts during the wait (at most one).
    pub kickstarts: u32,
    /// Which signal ended the wait (for the log and `status`).
    pub signal: Option<String>,
}

/// Steps 12 and 13: the handover and the employee's first login.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HandoverProgress {
    pub hidden_users: Vec<String>,
    pub setup_logged_out: bool,
    /// When the employee was first seen at the console.
    pub login_seen_ms: Option<u64>,
    /// The employee holds a Secure Token (a definite answer: the removal need not ask again).
    pub employee_has_token: bool,
}

/// Step 14: groups, the FileVault unlock list and the setup accounts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RemovalProgress {
    pub groups_moved: bool,
    /// What `fdesetup status` said once the employee held a token (`None`: not asked yet).
    pub filevault_on: Option<bool>,
    /// `diskutil apfs updatePreboot /` ran after the employee got a token (FileVault on).
    pub preboot_updated: bool,
    /// Failed `diskutil apfs updatePreboot /` runs (bounded; then the setup accounts are kept).
    pub preboot_failures: u32,
    /// `sysadminctl -deleteUser` runs per setup account, counted before each (bounded).
    pub delete_attempts: BTreeMap<String, u32>,
    pub deleted_users: Vec<String>,
    /// Setup accounts kept (e.g. the employee has no Secure Token yet).
    pub kept_users: Vec<String>,
    /// Why each kept setup account was kept.
    pub kept_reasons: BTreeMap<String, String>,
}

/// Step 15's plan of what the finishing touches remove (decided then, so they need no
/// configuration: the local configuration file is one of them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CleanupPlan {
    pub keychain_service: Option<String>,
    pub remove_local_config: bool,
}

/// The Mac's names (`ComputerName`) and its serial number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NamingProgress {
    /// The Mac's serial number (`ioreg`), once read.
    pub serial: Option<String>,
    /// The name given from `ComputerName`, once decided (before it is set: a restart sets the
    /// same name).
    pub computer_name: Option<String>,
    /// `scutil` set the three names / JumpCloud has the `displayName`.
    pub names_set: bool,
    pub display_name_set: bool,
}

/// Step 9's progress besides the phase: the staged user's activation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PasswordProgress {
    pub phase: super::state::PasswordPhase,
    pub activated: bool,
}
