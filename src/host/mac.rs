//! `MacHost`: the commands of SPEC §4, each run at its absolute path under `--root`.
//!
//! Every tool runs with stdin closed, stdout and stderr captured, and a time limit (30 s; the
//! installer gets 15 minutes; `sysadminctl -deleteUser` an hour, only against a true hang;
//! `caffeinate` runs in the background and is not waited on). The
//! parsers below are pure functions over the tools' real output, tested on captured samples
//! (each sample says where it comes from).

mod sysinfo;

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tracing::{debug, info, warn};

use super::{Caffeinate, Host, HostError, PackageSignature};
use crate::paths::{mac, Root};

/// Time limit for an ordinary tool.
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);
/// Time limit for `installer` (the agent package runs its own postinstall scripts).
const INSTALL_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Time limit for `sysadminctl -deleteUser`: only against a true hang. A deletion can take long
/// and a killed one can leave a half-deleted account (microsoft/shell-intune-samples issue 33:
/// the admin demoted, the home deleted, the record kept), so it is never stopped early.
const DELETE_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// How long `id -u` may still find an account after `sysadminctl -deleteUser` reported success:
/// JumpCloud's script waits 30 s before its `id -u` check (MDM-Prestage-User-Enrollment,
/// `jumpcloud_bootstrap_template.sh` 3.x, the account removal); here it is a poll with that bound.
const DELETE_SETTLE: Duration = Duration::from_secs(30);
/// Gap between two `id -u` while a deletion settles (at most one tool process every 2 s).
const DELETE_POLL: Duration = Duration::from_millis(2_050);

/// The real host adapter: runs the tools of SPEC §4 under a [`Root`].
#[derive(Debug, Clone)]
pub struct MacHost {
    root: Root,
    spawned: Arc<AtomicU64>,
    tool_timeout: Duration,
    install_timeout: Duration,
    delete_timeout: Duration,
    delete_settle: Duration,
    /// The last console user and `/dev/console`'s stamp then (issue 11).
    console: Arc<super::console::ConsoleCache>,
}

/// What a finished tool printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ToolOutput {
    /// Exit code; `None` when a signal ended the tool.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl ToolOutput {
    fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl MacHost {
    /// `dscl . -create /Users/NAME IsHidden 1|0`.
    async fn set_hidden(&self, name: &str, value: &str) -> Result<(), HostError> {
        check_name(name)?;
        let record = format!("/Users/{name}");
        let args = [".", "-create", record.as_str(), "IsHidden", value];
        self.run_ok(mac::DSCL, &args).await.map(drop)
    }

    /// A host whose tools live under `root` (`Root::system()` on a Mac).
    pub fn new(root: Root) -> Self {
        Self {
            console: Arc::new(super::console::ConsoleCache::new(
                root.resolve(mac::CONSOLE),
            )),
            root,
            spawned: Arc::new(AtomicU64::new(0)),
            tool_timeout: TOOL_TIMEOUT,
            install_timeout: INSTALL_TIMEOUT,
            delete_timeout: DELETE_TIMEOUT,
            delete_settle: DELETE_SETTLE,
        }
    }

    /// Overrides the deletion's hang bound and how long `id -u` may still find a deleted
    /// account (tests use short ones).
    #[must_use]
    pub fn with_delete_limits(mut self, hang: Duration, settle: Duration) -> Self {
        self.delete_timeout = hang;
        self.delete_settle = settle;
        self
    }

    /// `id -u NAME` until the account is gone or `settle` has passed: `None` once gone, else
    /// the UID it still has.
    async fn settled_uid(&self, name: &str, settle: Duration) -> Result<Option<u32>, HostError> {
        let deadline = tokio::time::Instant::now() + settle;
        loop {
            let uid = self.user_id(name).await?;
            if uid.is_none() || tokio::time::Instant::now() + DELETE_POLL > deadline {
                return Ok(uid);
            }
            tokio::time::sleep(DELETE_POLL).await;
        }
    }

    /// Overrides the per-tool time limits (tests use short ones).
    #[must_use]
    pub fn with_timeouts(mut self, tool: Duration, install: Duration) -> Self {
        self.tool_timeout = tool;
        self.install_timeout = install;
        self
    }

    /// The root this host runs its tools under.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// Runs `tool` (a macOS path of SPEC §4) with `args` and waits for it, at most `limit`.
    async fn run(
        &self,
        tool: &str,
        args: &[&str],
        limit: Duration,
    ) -> Result<ToolOutput, HostError> {
        let command = command_line(tool, args);
        let mut cmd = tokio::process::Command::new(self.root.tool(tool));
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        self.spawned.fetch_add(1, Ordering::Relaxed);
        debug!(command = %command, "running");
        let child = cmd.spawn().map_err(|source| HostError::Spawn {
            tool: tool.to_owned(),
            source,
        })?;
        // On timeout the future (and with it the child) is dropped: kill_on_drop ends it.
        let output = match tokio::time::timeout(limit, child.wait_with_output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(source)) => {
                return Err(HostError::Spawn {
                    tool: tool.to_owned(),
                    source,
                })
            }
            Err(_) => {
                return Err(HostError::TimedOut {
                    command,
                    seconds: limit.as_secs(),
                })
            }
        };
        let out = ToolOutput {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        debug!(command = %command, code = ?out.code, "finished");
        Ok(out)
    }

    /// Runs a tool that must exit 0.
    async fn run_ok(&self, tool: &str, args: &[&str]) -> Result<ToolOutput, HostError> {
        let out = self.run(tool, args, self.tool_timeout).await?;
        if out.success() {
            Ok(out)
        } else {
            Err(failed(tool, args, &out))
        }
    }

    async fn bootout(&self, target: &str) -> Result<(), HostError> {
        let args = ["bootout", target];
        let out = self.run(mac::LAUNCHCTL, &args, self.tool_timeout).await?;
        if out.success() {
            return Ok(());
        }
        if launchctl_not_loaded(&out) {
            info!(target = %target, "already booted out");
            return Ok(());
        }
        Err(failed(mac::LAUNCHCTL, &args, &out))
    }
}

/// The command as an admin would type it (tool at its macOS path, no `--root`).
fn command_line(tool: &str, args: &[&str]) -> String {
    let mut line = tool.to_owned();
    for arg in args {
        line.push(' ');
        line.push_str(arg);
    }
    line
}

fn failed(tool: &str, args: &[&str], out: &ToolOutput) -> HostError {
    let detail = if out.stderr.trim().is_empty() {
        out.stdout.trim()
    } else {
        out.stderr.trim()
    };
    HostError::Failed {
        command: command_line(tool, args),
        code: out.code.unwrap_or(-1),
        stderr: if out.code.is_none() {
            "ended by a signal".to_owned()
        } else {
            detail.to_owned()
        },
    }
}

fn unexpected(tool: &str, args: &[&str], out: &ToolOutput) -> HostError {
    HostError::Unexpected {
        command: command_line(tool, args),
        output: format!(
            "exit {:?}; stdout: {:?}; stderr: {:?}",
            out.code,
            out.stdout.trim(),
            out.stderr.trim()
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Parsers of real output. Each is tested on a captured sample below.

/// `stat -f %Su /dev/console` prints the owner's name and a newline (stat(1), `%Su` = user name
/// of the owner). Empty output is not a name.
pub(crate) fn parse_console_user(stdout: &str) -> Option<String> {
    let name = stdout.trim();
    (!name.is_empty() && !name.contains(char::is_whitespace)).then(|| name.to_owned())
}

/// `pgrep -x NAME`: exit 0 when a process matched, 1 when none did, 2 on a syntax error and 3 on
/// a fatal error (pgrep(1), EXIT STATUS).
pub(crate) fn parse_pgrep(code: Option<i32>) -> Option<bool> {
    match code {
        Some(0) => Some(true),
        Some(1) => Some(false),
        _ => None,
    }
}

/// What `id -u NAME` answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdAnswer {
    Uid(u32),
    NoSuchUser,
}

/// `id -u NAME`: the UID on stdout, exit 0; exit 1 when the account does not exist (id(1);
/// BSD id says `id: NAME: no such user` on stderr). SPEC §4 promises only the exit code, and
/// with the fixed arguments prestage passes exit 1 has no other cause (a usage error needs a
/// bad option), so the message is not required.
pub(crate) fn parse_id(out: &ToolOutput) -> Option<IdAnswer> {
    match out.code {
        Some(0) => out.stdout.trim().parse().ok().map(IdAnswer::Uid),
        Some(1) => Some(IdAnswer::NoSuchUser),
        _ => None,
    }
}

/// `sysadminctl -secureTokenStatus NAME` writes one line to STDERR, e.g.
/// `2021-01-14 19:21:55.854 sysadminctl[14193:181530] Secure token is ENABLED for user ec2-user`.
/// The name at the end is the account's full name when it has one (captured on macOS 26:
/// `... Secure token is ENABLED for user Tuist Runner Operator`), so it cannot be matched against
/// the short name: the status line must be the only one, and its verdict is taken.
pub(crate) fn parse_secure_token(stderr: &str, stdout: &str) -> Option<bool> {
    const MARK: &str = "Secure token is ";
    let mut verdict = None;
    for line in stderr.lines().chain(stdout.lines()) {
        let Some(at) = line.find(MARK) else { continue };
        let rest = &line[at + MARK.len()..];
        let this = if rest.starts_with("ENABLED for user ") {
            true
        } else if rest.starts_with("DISABLED for user ") {
            false
        } else {
            return None;
        };
        if verdict.is_some_and(|v| v != this) {
            return None;
        }
        verdict = Some(this);
    }
    verdict
}

/// `pkgutil --check-signature PKG` (pkgutil(1)); a signed package prints
/// ```text
/// Package "jumpcloud-agent.pkg":
///    Status: signed by a developer certificate issued by Apple for distribution
///    Notarization: trusted by the Apple notary service
///    Signed with a trusted timestamp on: 2024-05-14 17:29:09 +0000
///    Certificate Chain:
///     1. Developer ID Installer: JUMPCLOUD INC. (N985MXSH85)
///        Expires: 2027-02-01 22:12:15 +0000
///        SHA256 Fingerprint:
///            0A 1B ...
///        ------------------------------------------------------------------------
///     2. Developer ID Certification Authority
///        ...
/// ```
/// and an unsigned one `Package "x.pkg":` / `   Status: no signature` with exit 1
/// (apple.stackexchange.com/questions/415713). Returns `None` when there is no `Status:` line.
pub(crate) fn parse_signature(stdout: &str) -> Option<PackageSignature> {
    let mut status = None;
    let mut chain = Vec::new();
    let mut in_chain = false;
    for line in stdout.lines() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("Status:") {
            status = Some(rest.trim().to_owned());
        } else if trimmed == "Certificate Chain:" {
            in_chain = true;
        } else if in_chain {
            // Entries are `N. Common Name`; their details (Expires, fingerprints) are indented
            // further and never start with a number and a dot.
            if let Some((num, name)) = trimmed.split_once(". ") {
                if !num.is_empty() && num.chars().all(|c| c.is_ascii_digit()) {
                    chain.push(name.trim().to_owned());
                }
            }
        }
    }
    status.map(|status| PackageSignature { status, chain })
}

/// `installer -pkg P -target /` ends a good install with `installer: The install was
/// successful.` (installer(8) output as seen in MDM logs); failures print `installer: Error - ...`
/// and exit 1.
pub(crate) fn install_succeeded(out: &ToolOutput) -> bool {
    out.success()
        && !out.stdout.contains("installer: Error")
        && !out.stderr.contains("installer: Error")
}

/// `launchctl bootout` of something that is not loaded: `Boot-out failed: 3: No such process`
/// (exit 3) on older macOS, `Boot-out failed: 113: Could not find specified service` (exit 113)
/// on newer. Either way the service is not running, which is what bootout wants.
pub(crate) fn launchctl_not_loaded(out: &ToolOutput) -> bool {
    let text = format!("{}{}", out.stdout, out.stderr);
    matches!(out.code, Some(3 | 113))
        || text.contains("No such process")
        || text.contains("Could not find specified service")
}

/// `sysadminctl -deleteUser` can exit 0 and still report a failure on stderr (observed on
/// several macOS releases, e.g. for the last Secure Token holder): any `Error` or `failed` on
/// stderr counts as a failure, and deletion is confirmed with `id -u` afterwards.
pub(crate) fn delete_reported_error(stderr: &str) -> bool {
    stderr.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.contains("error") || l.contains("failed") || l.contains("cannot")
    })
}

/// Directory Services' `eDSRecordNotFound` (-14136), as sysadminctl and dscl report an account
/// that has no record (the code dscl prints as `DS Error: -14136 (eDSRecordNotFound)`).
pub(crate) fn record_not_found(stderr: &str) -> bool {
    stderr.contains("eDSRecordNotFound") || stderr.contains("-14136")
}

/// Account names go into argv and into `/Users/NAME`: only macOS short-name characters are let
/// through, so a name can never be read as an option or a path.
/// Whether `name` can be a macOS short name that is safe to pass to a tool.
///
/// # Errors
/// [`HostError::BadName`] naming it.
pub fn check_name(name: &str) -> Result<(), HostError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('-')
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(HostError::BadName {
            name: name.to_owned(),
        })
    }
}

#[async_trait]
impl Host for MacHost {
    async fn console_user(&self) -> Result<String, HostError> {
        // The owner of /dev/console is the console user: while its stamp is unchanged, so is
        // the name (`host::console`); `stat` runs only after a change.
        let (stamp, known) = self.console.look();
        if let Some(name) = known {
            return Ok(name);
        }
        let args = ["-f", "%Su", mac::CONSOLE];
        let out = self.run_ok(mac::STAT, &args).await?;
        let name =
            parse_console_user(&out.stdout).ok_or_else(|| unexpected(mac::STAT, &args, &out))?;
        self.console.remember(stamp, &name);
        Ok(name)
    }

    async fn finder_running(&self) -> Result<bool, HostError> {
        let args = ["-x", "Finder"];
        let out = self.run(mac::PGREP, &args, self.tool_timeout).await?;
        parse_pgrep(out.code).ok_or_else(|| failed(mac::PGREP, &args, &out))
    }

    async fn user_id(&self, name: &str) -> Result<Option<u32>, HostError> {
        check_name(name)?;
        let args = ["-u", name];
        let out = self.run(mac::ID, &args, self.tool_timeout).await?;
        match parse_id(&out) {
            Some(IdAnswer::Uid(uid)) => {
                self.console.learn(name, uid);
                Ok(Some(uid))
            }
            Some(IdAnswer::NoSuchUser) => {
                self.console.unlearn(name);
                Ok(None)
            }
            None if out.success() => Err(unexpected(mac::ID, &args, &out)),
            None => Err(failed(mac::ID, &args, &out)),
        }
    }

    async fn has_secure_token(&self, name: &str) -> Result<bool, HostError> {
        check_name(name)?;
        let args = ["-secureTokenStatus", name];
        let out = self.run_ok(mac::SYSADMINCTL, &args).await?;
        parse_secure_token(&out.stderr, &out.stdout)
            .ok_or_else(|| unexpected(mac::SYSADMINCTL, &args, &out))
    }

    async fn hide_user(&self, name: &str) -> Result<(), HostError> {
        self.set_hidden(name, "1").await
    }

    async fn show_user(&self, name: &str) -> Result<(), HostError> {
        self.set_hidden(name, "0").await
    }

    async fn delete_user(&self, name: &str) -> Result<(), HostError> {
        check_name(name)?;
        let args = ["-deleteUser", name];
        let out = self
            .run(mac::SYSADMINCTL, &args, self.delete_timeout)
            .await?;
        // Neither the exit code nor stderr is trusted (sysadminctl can exit 0 after refusing):
        // the account being gone is what counts, which also makes deleting twice succeed.
        // After a deletion it reported as done, the directory gets a moment (JumpCloud waits
        // 30 s); after a reported failure one look decides.
        let complained = !out.success() || delete_reported_error(&out.stderr);
        // "Record not found" from sysadminctl while `id -u` still finds the account is the
        // directory catching up with an earlier deletion: wait for it as after a success.
        let settle = if complained && !record_not_found(&out.stderr) {
            Duration::ZERO
        } else {
            self.delete_settle
        };
        match self.settled_uid(name, settle).await? {
            None => {
                if complained {
                    debug!(user = %name, stderr = %out.stderr.trim(), "account gone despite a complaint");
                }
                Ok(())
            }
            Some(uid) => {
                warn!(user = %name, uid, code = ?out.code, "the account still exists after sysadminctl -deleteUser");
                let detail = if out.stderr.trim().is_empty() {
                    out.stdout.trim()
                } else {
                    out.stderr.trim()
                };
                Err(HostError::NotDeleted {
                    command: command_line(mac::SYSADMINCTL, &args),
                    user: name.to_owned(),
                    detail: if detail.is_empty() {
                        format!("it still exists (uid {uid})")
                    } else {
                        format!("{detail} (it still exists, uid {uid})")
                    },
                })
            }
        }
    }

    async fn log_out(&self, uid: u32) -> Result<(), HostError> {
        self.bootout(&format!("user/{uid}")).await
    }

    async fn log_out_gui(&self, uid: u32) -> Result<(), HostError> {
        self.bootout(&format!("gui/{uid}")).await
    }

    async fn system_settings_running(&self) -> Result<bool, HostError> {
        // pgrep matches the process name, which macOS keeps to 16 characters (MAXCOMLEN):
        // "System Settings" (macOS 13 and later) fits; macOS 12's "System Preferences" would
        // not match whole and is not looked for.
        let args = ["-x", "System Settings"];
        let out = self.run(mac::PGREP, &args, self.tool_timeout).await?;
        parse_pgrep(out.code).ok_or_else(|| failed(mac::PGREP, &args, &out))
    }

    async fn filevault_on(&self) -> Result<Option<bool>, HostError> {
        let out = self.run_ok(mac::FDESETUP, &["status"]).await?;
        Ok(super::filevault::parse_fdesetup_status(&out.stdout))
    }

    async fn update_preboot(&self) -> Result<(), HostError> {
        let args = ["apfs", "updatePreboot", "/"];
        let out = self.run(mac::DISKUTIL, &args, self.tool_timeout).await?;
        if super::filevault::preboot_updated(out.code, &out.stdout, &out.stderr) {
            info!("FileVault unlock list refreshed (diskutil apfs updatePreboot /)");
            Ok(())
        } else {
            Err(failed(mac::DISKUTIL, &args, &out))
        }
    }

    async fn kickstart_agent(&self) -> Result<(), HostError> {
        let target = format!("system/{}", mac::JC_AGENT_LABEL);
        self.run_ok(mac::LAUNCHCTL, &["kickstart", "-k", &target])
            .await
            .map(drop)
    }

    async fn remove_daemon(&self) -> Result<(), HostError> {
        self.bootout(&format!("system/{}", mac::LABEL)).await
    }

    async fn package_signature(&self, pkg: &Path) -> Result<PackageSignature, HostError> {
        let path = pkg.to_string_lossy();
        let args = ["--check-signature", path.as_ref()];
        let out = self.run(mac::PKGUTIL, &args, self.tool_timeout).await?;
        match parse_signature(&out.stdout) {
            // Exit 1 with `Status: no signature` is a valid answer: not signed.
            Some(sig) if out.success() || !sig.status.starts_with("signed") => Ok(sig),
            // A trusted-looking status with any exit but 0 is not trusted (SPEC §4: "exit 0 and
            // `Developer ID Installer: JumpCloud` in its chain"): the status says so, so no
            // signer check passes and the admin reads why.
            Some(sig) => Ok(PackageSignature {
                status: format!(
                    "pkgutil exited {} ({})",
                    out.code
                        .map_or_else(|| "by a signal".to_owned(), |c| c.to_string()),
                    sig.status
                ),
                chain: sig.chain,
            }),
            None if out.success() => Err(unexpected(mac::PKGUTIL, &args, &out)),
            None => Err(failed(mac::PKGUTIL, &args, &out)),
        }
    }

    async fn install_package(&self, pkg: &Path) -> Result<(), HostError> {
        let path = pkg.to_string_lossy();
        let args = ["-pkg", path.as_ref(), "-target", "/"];
        let out = self
            .run(mac::INSTALLER, &args, self.install_timeout)
            .await?;
        if install_succeeded(&out) {
            info!(package = %path, "installed");
            Ok(())
        } else {
            let mut err = failed(mac::INSTALLER, &args, &out);
            if let HostError::Failed { stderr, .. } = &mut err {
                // installer prints its `Error -` lines on stdout as well as stderr.
                if let Some(line) = out
                    .stdout
                    .lines()
                    .chain(out.stderr.lines())
                    .find(|l| l.contains("installer: Error"))
                {
                    line.trim().clone_into(stderr);
                }
            }
            Err(err)
        }
    }

    async fn sync_clock(&self, server: &str) -> Result<(), HostError> {
        if server.is_empty() || server.starts_with('-') || server.contains(char::is_whitespace) {
            return Err(HostError::Unexpected {
                command: command_line(mac::SNTP, &["-sS", server]),
                output: "the NTP server name is not a host name; check NTPServer".to_owned(),
            });
        }
        self.run_ok(mac::SNTP, &["-sS", server]).await.map(drop)
    }

    async fn keep_awake(&self, pid: u32) -> Result<Caffeinate, HostError> {
        let pid_text = pid.to_string();
        let mut cmd = tokio::process::Command::new(self.root.tool(mac::CAFFEINATE));
        cmd.args(["-dimsu", "-w", &pid_text])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(false);
        self.spawned.fetch_add(1, Ordering::Relaxed);
        let mut child = cmd.spawn().map_err(|source| HostError::Spawn {
            tool: mac::CAFFEINATE.to_owned(),
            source,
        })?;
        let child_pid = child.id();
        // Reap it when it ends (with `pid`); nobody waits for it otherwise.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        info!(pid, caffeinate = ?child_pid, "keeping the Mac awake");
        Ok(Caffeinate { pid: child_pid })
    }

    async fn serial_number(&self) -> Result<String, HostError> {
        self.read_serial().await
    }

    async fn set_name(&self, kind: crate::host::NameKind, name: &str) -> Result<(), HostError> {
        self.write_name(kind, name).await
    }

    async fn power(&self) -> Result<crate::host::Power, HostError> {
        self.read_power().await
    }

    fn processes_spawned(&self) -> u64 {
        self.spawned.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(code: i32, stdout: &str, stderr: &str) -> ToolOutput {
        ToolOutput {
            code: Some(code),
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn console_user_is_trimmed() {
        assert_eq!(parse_console_user("ada\n").as_deref(), Some("ada"));
        assert_eq!(
            parse_console_user("_mbsetupuser\n").as_deref(),
            Some("_mbsetupuser")
        );
        assert_eq!(parse_console_user("\n"), None);
        assert_eq!(parse_console_user("two words\n"), None);
    }

    #[test]
    fn pgrep_exit_codes() {
        assert_eq!(parse_pgrep(Some(0)), Some(true));
        assert_eq!(parse_pgrep(Some(1)), Some(false));
        assert_eq!(parse_pgrep(Some(2)), None);
        assert_eq!(parse_pgrep(Some(3)), None);
        assert_eq!(parse_pgrep(None), None);
    }

    #[test]
    fn id_outputs() {
        assert_eq!(parse_id(&out(0, "501\n", "")), Some(IdAnswer::Uid(501)));
        assert_eq!(
            parse_id(&out(1, "", "id: nobody2: no such user\n")),
            Some(IdAnswer::NoSuchUser)
        );
        // Exit 1 alone means "no such user" (SPEC §4), whatever stderr says.
        assert_eq!(parse_id(&out(1, "", "")), Some(IdAnswer::NoSuchUser));
        assert_eq!(parse_id(&out(0, "abc\n", "")), None);
        assert_eq!(parse_id(&out(2, "", "")), None);
    }

    #[test]
    fn secure_token_samples() {
        let text = include_str!("../../tests/fixtures/host/sysadminctl-securetoken.txt");
        let mut checked = 0;
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (want, sample) = line.split_once('|').unwrap();
            let want = match want {
                "on" => Some(true),
                "off" => Some(false),
                _ => None,
            };
            assert_eq!(parse_secure_token(sample, ""), want, "{sample}");
            checked += 1;
        }
        assert!(checked >= 5);
        // Both verdicts at once is not an answer.
        assert_eq!(
            parse_secure_token(
                "x Secure token is ENABLED for user a\nx Secure token is DISABLED for user a\n",
                ""
            ),
            None
        );
    }

    #[test]
    fn signature_of_a_signed_package() {
        let text = include_str!("../../tests/fixtures/host/pkgutil-signed.txt");
        let sig = parse_signature(text).unwrap();
        assert_eq!(
            sig.status,
            "signed by a developer certificate issued by Apple for distribution"
        );
        assert_eq!(
            sig.chain,
            vec![
                "Developer ID Installer: JUMPCLOUD INC. (N985MXSH85)",
                "Developer ID Certification Authority",
                "Apple Root CA",
            ]
        );
        assert!(sig.is_signed_by("Developer ID Installer: JumpCloud"));
    }

    #[test]
    fn signature_of_an_unsigned_package() {
        let text = include_str!("../../tests/fixtures/host/pkgutil-unsigned.txt");
        let sig = parse_signature(text).unwrap();
        assert_eq!(sig.status, "no signature");
        assert!(sig.chain.is_empty());
        assert!(!sig.is_signed_by("Developer ID Installer: JumpCloud"));
        assert_eq!(parse_signature("Error: not a package\n"), None);
    }

    #[test]
    fn installer_outputs() {
        let ok = include_str!("../../tests/fixtures/host/installer-success.txt");
        assert!(install_succeeded(&out(0, ok, "")));
        let bad = "installer: Error - the package path specified was invalid: '/tmp/x.pkg'.\n";
        assert!(!install_succeeded(&out(1, bad, "")));
        assert!(!install_succeeded(&out(0, bad, "")));
    }

    #[test]
    fn bootout_not_loaded_is_done() {
        assert!(launchctl_not_loaded(&out(
            3,
            "",
            "Boot-out failed: 3: No such process\n"
        )));
        assert!(launchctl_not_loaded(&out(
            113,
            "",
            "Boot-out failed: 113: Could not find specified service\n"
        )));
        assert!(!launchctl_not_loaded(&out(
            1,
            "",
            "Boot-out failed: 1: Operation not permitted\n"
        )));
    }

    #[test]
    fn delete_errors_on_stderr() {
        assert!(delete_reported_error(
            "2024-01-01 12:00:00.123 sysadminctl[1:2] ### Error:-14120 File:/x.m Line:1\n"
        ));
        assert!(!delete_reported_error(
            "2024-01-01 12:00:00.123 sysadminctl[1:2] Deleting record for welcome\n"
        ));
    }

    #[test]
    fn account_names() {
        for good in ["ada", "ada.lovelace", "a_b-c", "welcome2", "_mbsetupuser"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "..", "a/b", "a b", "ada\n", "é"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn command_lines_use_mac_paths() {
        assert_eq!(
            command_line(mac::ID, &["-u", "ada"]),
            "/usr/bin/id -u ada".to_owned()
        );
    }
}
