//! The Mac, as the engine sees it: the commands of SPEC §4 and the JumpCloud agent's files.
//!
//! [`Host`] is the engine's interface. `mac::MacHost` runs the real tools, each at its absolute
//! path under `--root`, and parses their real output. `fake` is a faithful simulation of those
//! tools (a world state file plus a multi-call helper) used by tests and `prestage demo`.

pub mod agent;
pub mod console;
#[cfg(feature = "sim")]
pub mod fake;
mod filevault;
pub mod mac;
pub mod staging;
pub mod untrusted;

use std::path::Path;

use async_trait::async_trait;
use thiserror::Error;

pub use agent::{
    kickstart_urls, wait_for_change, wait_for_change_since, AgentConf, AgentError, AgentFiles,
    FileStamp, LogFollower, ServiceAccountCreds, TAKEOVER_DONE, TAKEOVER_PROCESSING,
};
pub use console::ConsoleWatch;
pub use mac::MacHost;

/// A failed host command. Messages name the command so the admin can run it by hand.
#[derive(Debug, Error)]
pub enum HostError {
    #[error("cannot run {tool}: {source}")]
    Spawn {
        tool: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed with exit code {code}: {stderr}")]
    Failed {
        command: String,
        code: i32,
        stderr: String,
    },
    #[error("`{command}` printed something unexpected: {output}")]
    Unexpected { command: String, output: String },
    #[error("`{command}` did not finish within {seconds} s")]
    TimedOut { command: String, seconds: u64 },
    #[error(
        "`{command}` did not delete the account {user}: {detail}; an account that is logged in \
         or holds the Mac's last Secure Token cannot be deleted"
    )]
    NotDeleted {
        command: String,
        user: String,
        detail: String,
    },
    #[error(
        "{name:?} is not a valid macOS account name (letters, digits, `_`, `-` and `.`, not \
         starting with `-`); check the user's local account name in JumpCloud"
    )]
    BadName { name: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Accounts that are never the employee's and never deleted by us: `root` at the login window,
/// `_mbsetupuser` during Setup Assistant (what `stat -f %Su /dev/console` prints then).
const SYSTEM_USERS: [&str; 2] = ["root", "_mbsetupuser"];

/// `root` or `_mbsetupuser` (or nobody) at the console: not a person's session. macOS looks
/// names up without case, so neither do we.
pub fn is_system_user(name: &str) -> bool {
    name.is_empty() || SYSTEM_USERS.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// The leaf name's prefix of an installer package's Developer ID certificate.
const DEVELOPER_ID_INSTALLER: &str = "Developer ID Installer: ";

/// What `pkgutil --check-signature` said about a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSignature {
    /// The `Status:` line, e.g. `signed by a developer certificate issued by Apple for distribution`.
    pub status: String,
    /// The certificate chain, leaf first, e.g. `Developer ID Installer: JUMPCLOUD INC. (N985MXSH85)`.
    pub chain: Vec<String>,
}

impl PackageSignature {
    /// pkgutil's status for a package signed with a Developer ID certificate that it trusts.
    pub const TRUSTED_DISTRIBUTION: &'static str =
        "signed by a developer certificate issued by Apple for distribution";

    /// True when the leaf certificate's name starts with `signer`, compared without case:
    /// JumpCloud's certificate reads `Developer ID Installer: JUMPCLOUD INC. (N985MXSH85)`
    /// (TheJumpCloud/support, Commands Gallery "Mac - Install Remote Assist" greps for exactly
    /// that line), so a case-sensitive `JumpCloud` would refuse the real package.
    pub fn is_signed_by(&self, signer: &str) -> bool {
        self.chain.first().is_some_and(|leaf| {
            leaf.get(..signer.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(signer))
        })
    }

    /// True when pkgutil trusts the signature for distribution (`Status: signed by a developer
    /// certificate issued by Apple for distribution`) and the leaf is a `Developer ID
    /// Installer: <name> (<team_id>)` certificate. The team ID in parentheses decides; the
    /// name is free text (upper case for JumpCloud) and is not compared.
    pub fn is_developer_id_of(&self, team_id: &str) -> bool {
        let trusted = self
            .status
            .trim()
            .eq_ignore_ascii_case(Self::TRUSTED_DISTRIBUTION);
        let leaf = self.leaf().trim();
        let developer_id = leaf
            .get(..DEVELOPER_ID_INSTALLER.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(DEVELOPER_ID_INSTALLER));
        let team = leaf
            .rsplit_once('(')
            .and_then(|(_, rest)| rest.strip_suffix(')'));
        trusted && developer_id && team == Some(team_id)
    }

    /// The leaf certificate's name ("" when unsigned).
    pub fn leaf(&self) -> &str {
        self.chain.first().map_or("", String::as_str)
    }
}

/// A running `caffeinate -dimsu -w <pid>`; dropping it does not stop it (it ends with us).
#[derive(Debug)]
pub struct Caffeinate {
    pub pid: Option<u32>,
}

/// The commands of SPEC §4. Every method is one command at its absolute path under `--root`.
#[async_trait]
pub trait Host: Send + Sync {
    /// `/usr/bin/stat -f %Su /dev/console`: the console user (`root` at the login window,
    /// `_mbsetupuser` in Setup Assistant).
    async fn console_user(&self) -> Result<String, HostError>;
    /// `/usr/bin/pgrep -x Finder`: whether Finder runs.
    async fn finder_running(&self) -> Result<bool, HostError>;
    /// `/usr/bin/id -u NAME`: the UID, `None` when there is no such user.
    async fn user_id(&self, name: &str) -> Result<Option<u32>, HostError>;
    /// `/usr/sbin/sysadminctl -secureTokenStatus NAME`: whether NAME holds a Secure Token.
    async fn has_secure_token(&self, name: &str) -> Result<bool, HostError>;
    /// `/usr/bin/dscl . -create /Users/NAME IsHidden 1`.
    async fn hide_user(&self, name: &str) -> Result<(), HostError>;
    /// `/usr/bin/dscl . -create /Users/NAME IsHidden 0`: shows a hidden user at the login
    /// window again (a setup account we hid and then had to keep).
    async fn show_user(&self, name: &str) -> Result<(), HostError>;
    /// `/usr/sbin/sysadminctl -deleteUser NAME`, never stopped early (a killed deletion can
    /// leave a half-deleted account), then `id -u NAME` until the account is gone (bounded).
    async fn delete_user(&self, name: &str) -> Result<(), HostError>;
    /// `/bin/launchctl bootout user/UID`: logs the user out (JumpCloud's own logout). It can
    /// return 0 and leave the GUI session up (munki issue 923), so callers check the console.
    async fn log_out(&self, uid: u32) -> Result<(), HostError>;
    /// `/bin/launchctl bootout gui/UID`: the fallback logout of SPEC §4 (Jamf Interaction
    /// Toolkit switched to it, issue 21), for a session `bootout user/UID` left up.
    async fn log_out_gui(&self, uid: u32) -> Result<(), HostError>;
    /// `/usr/bin/pgrep -x "System Settings"`: whether System Settings runs (the JumpCloud
    /// agent's installer opens it to ask for Full Disk Access when no PPPC profile grants it).
    async fn system_settings_running(&self) -> Result<bool, HostError>;
    /// `/usr/bin/fdesetup status`: whether FileVault is on; `None` when the answer is not one
    /// prestage knows.
    async fn filevault_on(&self) -> Result<Option<bool>, HostError>;
    /// `/usr/sbin/diskutil apfs updatePreboot /`: refreshes the FileVault unlock list.
    async fn update_preboot(&self) -> Result<(), HostError>;
    /// `/bin/launchctl kickstart -k system/com.jumpcloud.darwin-agent`.
    async fn kickstart_agent(&self) -> Result<(), HostError>;
    /// `/bin/launchctl bootout system/io.prestage.enroll`: the very last thing prestage does.
    async fn remove_daemon(&self) -> Result<(), HostError>;
    /// `/usr/sbin/pkgutil --check-signature PATH`.
    async fn package_signature(&self, pkg: &Path) -> Result<PackageSignature, HostError>;
    /// `/usr/sbin/installer -pkg PATH -target /`.
    async fn install_package(&self, pkg: &Path) -> Result<(), HostError>;
    /// `/usr/bin/sntp -sS SERVER`.
    async fn sync_clock(&self, server: &str) -> Result<(), HostError>;
    /// `/usr/bin/caffeinate -dimsu -w PID`, started in the background.
    async fn keep_awake(&self, pid: u32) -> Result<Caffeinate, HostError>;
    /// Number of tool processes spawned so far (for benchmarks).
    fn processes_spawned(&self) -> u64;
    /// `/usr/sbin/ioreg -rd1 -c IOPlatformExpertDevice`: the serial number.
    async fn serial_number(&self) -> Result<String, HostError> {
        Err(not_supported(mac_paths::IOREG))
    }
    /// `/usr/sbin/scutil --set KIND NAME`.
    async fn set_name(&self, kind: NameKind, name: &str) -> Result<(), HostError> {
        let _ = (kind, name);
        Err(not_supported(mac_paths::SCUTIL))
    }
    /// `/usr/bin/pmset -g batt`: the power source and the battery level.
    async fn power(&self) -> Result<Power, HostError> {
        Err(not_supported(mac_paths::PMSET))
    }
}

use crate::paths::mac as mac_paths;

fn not_supported(tool: &str) -> HostError {
    HostError::Unexpected {
        command: tool.to_owned(),
        output: "not available on this host".to_owned(),
    }
}

/// One of the three names `scutil --set` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// The name people see (Sharing settings).
    ComputerName,
    /// The Bonjour name (`NAME.local`): letters, digits and hyphens.
    LocalHostName,
    /// The host name.
    HostName,
}

impl NameKind {
    pub const ALL: [NameKind; 3] = [
        NameKind::ComputerName,
        NameKind::LocalHostName,
        NameKind::HostName,
    ];

    /// The `scutil --set` preference name.
    pub fn scutil_key(self) -> &'static str {
        match self {
            NameKind::ComputerName => "ComputerName",
            NameKind::LocalHostName => "LocalHostName",
            NameKind::HostName => "HostName",
        }
    }
}

/// What `pmset -g batt` said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Power {
    /// Drawing from the battery (not AC, not a UPS).
    pub on_battery: bool,
    /// The first battery's level; `None` on a Mac without one.
    pub percent: Option<u8>,
}
