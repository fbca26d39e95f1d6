//! Fake behaviour that real Macs and the real JumpCloud agent show and the first fakes did not
//! (issue "Real Macs, real JumpCloud agent"): slow and half-failing deletions, a directory that
//! still finds a deleted account for a moment, FileVault (`fdesetup`, `diskutil`), and the agent
//! package's installer reading its service-account credentials and asking for Full Disk Access.
//! Each behaviour cites the source it rests on.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use super::world::{self, CredsSeen, World, WorldError};
use super::Reply;
use crate::paths::{mac, Root};

type Outcome = Result<Reply, WorldError>;

fn with_world<T>(root: &Root, f: impl FnOnce(&mut World) -> T) -> Result<T, WorldError> {
    World::update(root, |w| {
        w.tick(world::now_ms());
        f(w)
    })
}

/// What the first, locked part of a deletion decided.
enum Start {
    Answer(Reply),
    /// The deletion runs for this long, the account already half-deleted meanwhile.
    Slow(u64),
}

/// `sysadminctl -deleteUser NAME`.
///
/// - An unknown user, the console user and the last Secure Token holder are refused (the last
///   with exit 0 and the refusal on stderr: sysadminctl's "additional checks ... to ensure the
///   last SecureToken user on a system is not removed", TheJumpCloud/support PR 183).
/// - `delete_fails_partially`: microsoft/shell-intune-samples issue 33, word for word where the
///   issue quotes it: "The admin user gets demoted from admin to standard and the directory is
///   deleted, but the user persists", ending with `### Error:-14120 File:.../DSRecord.m
///   Line:563`. The issue does not give the exit code; 1 here (prestage trusts neither).
/// - `delete_duration_ms`: the deletion takes that long. The account is demoted and its home
///   deleted first, the record removed last, so a deletion killed half-way leaves the state of
///   issue 33. That order is a guess (no public trace of sysadminctl's steps); the end state is
///   the issue's.
/// - `directory_lag_ms`: after the record is gone, `id -u` still finds the account for that
///   long. JumpCloud's own script waits 30 s between `sysadminctl -deleteUser` and its `id -u`
///   check (MDM-Prestage-User-Enrollment 3.x), which is what makes us believe the lag exists;
///   how long it really is, no source says.
pub(super) fn delete_user(root: &Root, name: &str, prefix: &str) -> Outcome {
    let start = with_world(root, |w| {
        let b = w.behaviour();
        let Some(user) = w.users.get(name) else {
            return Start::Answer(Reply::with_stderr(
                1,
                format!("{prefix}### Error:-14136 (eDSRecordNotFound) User {name} not found\n"),
            ));
        };
        if w.console_user == name {
            return Start::Answer(Reply::with_stderr(
                1,
                format!("{prefix}### Error: cannot delete user {name}: the user is logged in\n"),
            ));
        }
        let other_holders = w
            .users
            .iter()
            .filter(|(n, u)| n.as_str() != name && u.secure_token)
            .count();
        if user.secure_token && other_holders == 0 {
            return Start::Answer(Reply::with_stderr(
                0,
                format!(
                    "{prefix}Deleting record for {name}\n{prefix}### Error: -14120 {name} is the last Secure Token holder on this Mac and cannot be deleted\n"
                ),
            ));
        }
        if b.delete_fails_partially || b.delete_duration_ms > 0 {
            half_delete(w, name);
        }
        if b.delete_fails_partially {
            return Start::Answer(Reply::with_stderr(
                1,
                format!(
                    "{prefix}Deleting record for {name}\n{prefix}### Error:-14120 File:/System/Volumes/Data/SWE/macOS/BuildRoots/5b2e67f8af/Library/Caches/com.apple.xbs/Sources/Admin/Admin-911/DSRecord.m Line:563\n"
                ),
            ));
        }
        if b.delete_duration_ms > 0 {
            return Start::Slow(b.delete_duration_ms);
        }
        remove_record(w, name);
        Start::Answer(Reply::with_stderr(
            0,
            format!("{prefix}Deleting record for {name}\n"),
        ))
    })?;
    match start {
        Start::Answer(reply) => Ok(reply),
        Start::Slow(ms) => {
            // Outside the world's lock: the rest of the Mac goes on meanwhile.
            std::thread::sleep(Duration::from_millis(ms));
            with_world(root, |w| remove_record(w, name))?;
            Ok(Reply::with_stderr(
                0,
                format!("{prefix}Deleting record for {name}\n"),
            ))
        }
    }
}

/// What a deletion has done before its record goes: the admin demoted, the home deleted.
fn half_delete(w: &mut World, name: &str) {
    if let Some(u) = w.users.get_mut(name) {
        u.admin = false;
        u.home_deleted = true;
    }
}

fn remove_record(w: &mut World, name: &str) {
    let Some(user) = w.users.remove(name) else {
        return;
    };
    w.deleted_users.push(name.to_owned());
    let lag = w.behaviour().directory_lag_ms;
    if lag > 0 {
        w.lingering_users.insert(
            name.to_owned(),
            (user.uid, world::now_ms().saturating_add(lag)),
        );
    }
}

/// `fdesetup status` (fdesetup(8)): `FileVault is On.` or `FileVault is Off.` on stdout.
pub(super) fn fdesetup(root: &Root, args: &[String]) -> Outcome {
    if args.len() != 1 || args[0] != "status" {
        return Ok(Reply::with_stderr(1, "Usage: fdesetup <verb> <options>\n"));
    }
    let on = with_world(root, |w| w.filevault_on)?;
    Ok(Reply::ok(if on {
        "FileVault is On.\n"
    } else {
        "FileVault is Off.\n"
    }))
}

/// `diskutil apfs updatePreboot /`: the FileVault unlock list becomes the Secure Token holders
/// of now (a user who got a token after FileVault was turned on "may not be included in the
/// FileVault login window" until it runs: freegeek-pdx/mkuser's notes). The output ends as
/// freegeek-pdx's `fg-snapshot-reset` expects it:
/// `UpdatePreboot: Exiting Update Preboot operation with overall error=(ZeroMeansSuccess)=0`,
/// then `Finished APFS operation`; the lines before are a shortened run.
pub(super) fn diskutil(root: &Root, args: &[String]) -> Outcome {
    let ok = args.len() == 3 && args[0] == "apfs" && args[1] == "updatePreboot" && args[2] == "/";
    if !ok {
        return Ok(Reply::with_stderr(
            1,
            "Usage:  diskutil apfs updatePreboot <volumeDevice | mountPoint>\n",
        ));
    }
    with_world(root, |w| {
        w.preboot_users = w
            .users
            .iter()
            .filter(|(_, u)| u.secure_token)
            .map(|(n, _)| n.clone())
            .collect();
    })?;
    Ok(Reply::ok(
        "Started APFS operation on disk3s1 Macintosh HD\n\
         UpdatePreboot: Commencing operation on volume disk3s1\n\
         UpdatePreboot: Releasing flock hold on Preboot Volume Subject Dir\n\
         UpdatePreboot: Restoring mount state of Preboot Volume\n\
         UpdatePreboot: Exiting Update Preboot operation with overall error=(ZeroMeansSuccess)=0\n\
         Finished APFS operation\n",
    ))
}

/// What the JumpCloud agent package's installer does before it installs: it reads
/// `/var/run/JumpCloud-SecureToken-Creds.txt` and deletes it ("The file
/// JumpCloud-SecureToken-Creds.txt IS DELETED during the agent install process",
/// TheJumpCloud/support `install_agent_and_serviceaccount.sh`, which writes `$USER;$PASSWORD` or
/// `=skip` right before `installer`). Recorded as [`CredsSeen`], never the password.
pub(super) fn agent_installer_reads_creds(root: &Root) -> Result<(), WorldError> {
    let path = root.resolve(mac::JC_SECURETOKEN_CREDS);
    let seen = match std::fs::symlink_metadata(&path) {
        Err(_) => CredsSeen::Missing,
        Ok(meta) if !meta.is_file() => CredsSeen::Unreadable {
            mode: meta.mode() & 0o7777,
        },
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o7777;
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let line = text.strip_suffix('\n').unwrap_or(&text);
            if line == "=skip" {
                CredsSeen::Skip { mode }
            } else if let Some((user, password)) = line.split_once(';') {
                let digest =
                    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, password.as_bytes());
                CredsSeen::Admin {
                    user: user.to_owned(),
                    password_sha256: digest.as_ref().iter().fold(String::new(), |mut s, b| {
                        use std::fmt::Write as _;
                        let _ = write!(s, "{b:02x}");
                        s
                    }),
                    mode,
                }
            } else {
                CredsSeen::Unreadable { mode }
            }
        }
    };
    let keep = with_world(root, |w| {
        w.service_account_creds.push(seen);
        w.behaviour().installer_keeps_creds_file
    })?;
    if !keep {
        let _ = std::fs::remove_file(&path);
    }
    Ok(())
}

/// Without a PPPC profile granting the agent Full Disk Access, its installer opens System
/// Settings and waits for someone to allow it, "within 5 minutes to successfully complete the
/// installation" (TheJumpCloud/support `install_agent_and_serviceaccount.sh`). `Some(reply)`
/// when the install fails for it. The failure text is installer(8)'s usual one for a package
/// script that failed; what the agent's script prints is not public.
pub(super) fn agent_installer_waits_for_fda(
    root: &Root,
    package: &str,
) -> Result<Option<Reply>, WorldError> {
    let (needed, timeout) = with_world(root, |w| {
        let b = w.behaviour();
        let needed = b.agent_needs_fda_approval && !w.fda_approved;
        if needed {
            w.system_settings_running = true;
        }
        (needed, b.fda_prompt_timeout_ms)
    })?;
    if !needed {
        return Ok(None);
    }
    let deadline = world::now_ms().saturating_add(timeout);
    let approved = loop {
        if with_world(root, |w| w.fda_approved)? {
            break true;
        }
        if world::now_ms() >= deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    with_world(root, |w| w.system_settings_running = false)?;
    if approved {
        return Ok(None);
    }
    let error = format!(
        "installer: Error - The install failed. (The Installer encountered an error that caused the installation to fail. Contact the software manufacturer for assistance. An error occurred while running scripts from the package \u{201c}{package}\u{201d}.)\n"
    );
    Ok(Some(Reply {
        code: 1,
        stdout: error.clone(),
        stderr: error,
        ..Reply::default()
    }))
}
