//! The fake tools themselves: one function per tool of SPEC §4, over the shared world.
//!
//! Output texts follow the real tools (man pages and outputs quoted in `tests/fixtures/host/`);
//! where the exact macOS wording is not public (sysadminctl's refusals), the text is modelled
//! on the tool's usual `<date> <time> sysadminctl[pid:tid] ...` log form.

use std::fmt::Write as _;
use std::time::Duration;

use super::world::{self, FakePackage, World, WorldError, AGENT_PACKAGE_ID, DIALOG_PACKAGE_ID};
use super::{arg_path, Reply};
use crate::paths::{mac, Root};

type Outcome = Result<Reply, WorldError>;

/// Reads, ticks (time-based transitions), changes and writes the world.
fn with_world<T>(root: &Root, f: impl FnOnce(&mut World) -> T) -> Result<T, WorldError> {
    World::update(root, |w| {
        w.tick(world::now_ms());
        f(w)
    })
}

/// sysadminctl logs through NSLog: `2024-01-01 12:00:00.123 sysadminctl[123:4567] `.
fn nslog_prefix() -> String {
    let pid = std::process::id();
    format!(
        "{} sysadminctl[{pid}:{}] ",
        chrono::Local::now().format("%Y-%m-%d %H:%M:%S%.3f"),
        pid.wrapping_mul(7).wrapping_add(4000)
    )
}

fn args_are(args: &[String], want: &[&str]) -> bool {
    args.len() == want.len() && args.iter().zip(want).all(|(a, w)| a == w)
}

/// `stat -f %Su /dev/console`: the console user's name (stat(1)).
pub(super) fn stat(root: &Root, args: &[String]) -> Outcome {
    if !args_are(args, &["-f", "%Su", mac::CONSOLE]) {
        return Ok(Reply::with_stderr(
            1,
            "usage: stat [-FLnq] [-f format | -l | -r | -s | -x] [-t timefmt] [file ...]\n",
        ));
    }
    let user = with_world(root, |w| w.console_user.clone())?;
    Ok(Reply::ok(format!("{user}\n")))
}

/// `pgrep -x Finder`: prints Finder's PID and exits 0 while it runs, else exits 1 (pgrep(1)).
pub(super) fn pgrep(root: &Root, args: &[String]) -> Outcome {
    let [flag, name] = args else {
        return Ok(Reply::with_stderr(
            2,
            "usage: pgrep [-Lfilnoqvx] [-d delim] [-F pidfile] [-G gid]\n             [-P ppid] [-U uid] [-g pgrp] [-t tty] [-u euid] pattern ...\n",
        ));
    };
    if flag != "-x" {
        return Ok(Reply::with_stderr(
            2,
            format!("pgrep: illegal option -- {flag}\n"),
        ));
    }
    let running = with_world(root, |w| match name.as_str() {
        "Finder" => w.finder_running,
        // Opened by the JumpCloud agent's installer to ask for Full Disk Access.
        "System Settings" => w.system_settings_running,
        _ => false,
    })?;
    Ok(if running {
        Reply::ok("412\n")
    } else {
        Reply::with_stderr(1, "")
    })
}

/// `id -u NAME`: the UID, or `id: NAME: no such user` and exit 1 (id(1)).
pub(super) fn id(root: &Root, args: &[String]) -> Outcome {
    let [flag, name] = args else {
        return Ok(Reply::with_stderr(1, "usage: id [-Ggnpru] [user]\n"));
    };
    if flag != "-u" {
        return Ok(Reply::with_stderr(1, "usage: id [-Ggnpru] [user]\n"));
    }
    let uid = with_world(root, |w| {
        w.users
            .get(name.as_str())
            .map(|u| u.uid)
            .or_else(|| w.lingering_users.get(name.as_str()).map(|(uid, _)| *uid))
    })?;
    Ok(match uid {
        Some(uid) => Reply::ok(format!("{uid}\n")),
        None if name == "root" => Reply::ok("0\n"),
        None => Reply::with_stderr(1, format!("id: {name}: no such user\n")),
    })
}

/// `sysadminctl -secureTokenStatus NAME` and `sysadminctl -deleteUser NAME`.
pub(super) fn sysadminctl(root: &Root, args: &[String]) -> Outcome {
    let prefix = nslog_prefix();
    match args {
        [flag, name] if flag == "-secureTokenStatus" => {
            let token = with_world(root, |w| w.users.get(name.as_str()).map(|u| u.secure_token))?;
            Ok(match token {
                Some(on) => {
                    let state = if on { "ENABLED" } else { "DISABLED" };
                    Reply::with_stderr(
                        0,
                        format!("{prefix}Secure token is {state} for user {name}\n"),
                    )
                }
                None => Reply::with_stderr(
                    0,
                    format!("{prefix}### Error:-14136 (eDSRecordNotFound) User {name} not found\n"),
                ),
            })
        }
        [flag, name] if flag == "-deleteUser" => super::realmac::delete_user(root, name, &prefix),
        _ => Ok(Reply::with_stderr(
            1,
            "Usage: sysadminctl\n\t-deleteUser <user name> [-secure || -keepHome] (interactive || -adminUser <administrator user name> -adminPassword <administrator password>)\n\t-secureTokenStatus <user name>\n",
        )),
    }
}

/// `dscl . -create /Users/NAME IsHidden 1`. An unknown user gets the real
/// `<dscl_cmd> DS Error: -14136 (eDSRecordNotFound)` and exit 56 (as observed by scripts that
/// parse dscl).
pub(super) fn dscl(root: &Root, args: &[String]) -> Outcome {
    let [node, cmd, record, key, value] = args else {
        return Ok(Reply::with_stderr(
            64,
            "Usage: dscl [options] [<datasource> [<command>]]\n",
        ));
    };
    let user = record.strip_prefix("/Users/");
    if node != "." || cmd != "-create" || key != "IsHidden" || user.is_none() {
        return Ok(Reply::with_stderr(
            64,
            format!("Unsupported by the fake dscl: {cmd} {record} {key}\n"),
        ));
    }
    let name = user.unwrap_or_default();
    let hidden = value == "1";
    let found = with_world(root, |w| {
        w.users.get_mut(name).map(|u| u.hidden = hidden).is_some()
    })?;
    Ok(if found {
        Reply::ok("")
    } else {
        Reply::with_stderr(56, "<dscl_cmd> DS Error: -14136 (eDSRecordNotFound)\n")
    })
}

/// Whether the system-domain service `label` is loaded in the fake launchd: prestage's daemon
/// per [`World::daemon_loaded`], JumpCloud's agent once its package is installed.
fn service_loaded(w: &World, label: &str) -> bool {
    match label {
        mac::LABEL => w.daemon_loaded,
        mac::JC_AGENT_LABEL => agent_installed(w),
        _ => false,
    }
}

/// What `launchctl print system/LABEL` prints for a loaded job. The real output is a long dump
/// whose layout launchctl(1) says is not API; callers only use the exit code, so this keeps its
/// shape and the few fields an admin looks at (the plist path follows the convention of naming
/// a LaunchDaemon's file after its label).
fn print_service(label: &str) -> String {
    let mut out = format!(
        "system/{label} = {{\n\tactive count = 1\n\tpath = /Library/LaunchDaemons/{label}.plist\n\t\
         type = LaunchDaemon\n\tstate = running\n\n"
    );
    if label == mac::LABEL {
        let _ = writeln!(out, "\tprogram = {}", mac::BINARY);
    }
    out.push_str("\tdomain = system\n\tpid = 4242\n}\n");
    out
}

/// Whether `target` names a service (`system/LABEL`, `gui/UID/LABEL`, `user/UID/LABEL`) rather
/// than a domain (launchctl(1), "SPECIFIERS").
fn is_service_target(target: &str) -> bool {
    let parts: Vec<&str> = target.split('/').collect();
    match parts.as_slice() {
        ["system", label] => !label.is_empty(),
        ["gui" | "user", uid, label] => uid.parse::<u32>().is_ok() && !label.is_empty(),
        _ => false,
    }
}

/// `launchctl bootout user/UID | system/LABEL`, `kickstart -k system/LABEL`,
/// `bootstrap system PLIST`, `print system/LABEL`, `enable system/LABEL` (launchctl(1)).
pub(super) fn launchctl(root: &Root, args: &[String]) -> Outcome {
    const NOT_LOADED: &str = "Boot-out failed: 113: Could not find specified service\n";
    match args {
        // A service that is not loaded: `Could not find service "LABEL" in domain for system`
        // on stderr and exit 113, the same answer as `kickstart` of one below.
        [cmd, target] if cmd == "print" => {
            let Some(label) = target.strip_prefix("system/") else {
                return Ok(Reply::with_stderr(
                    64,
                    format!("Unsupported by the fake launchctl: print {target}\n"),
                ));
            };
            let loaded = with_world(root, |w| service_loaded(w, label))?;
            Ok(if loaded {
                Reply::ok(print_service(label))
            } else {
                Reply::with_stderr(
                    113,
                    format!("Could not find service \"{label}\" in domain for system\n"),
                )
            })
        }
        // `enable` only clears a disable override in launchd's database; it succeeds silently
        // whether or not the service is loaded or even exists (launchctl(1)). The fake keeps no
        // override database, so a `disable`d job is not modelled.
        [cmd, target] if cmd == "enable" => {
            Ok(if is_service_target(target) {
                Reply::ok("")
            } else {
                // The same refusal as `bootout` of a malformed target below.
                Reply::with_stderr(1, format!("Unrecognized target specifier: {target}\n"))
            })
        }
        [cmd, target] if cmd == "bootout" => {
            if let Some((domain, uid)) = target
                .strip_prefix("user/")
                .map(|u| ("user", u))
                .or_else(|| target.strip_prefix("gui/").map(|u| ("gui", u)))
            {
                let Ok(uid) = uid.parse::<u32>() else {
                    return Ok(Reply::with_stderr(1, format!("Unrecognized target specifier: {target}\n")));
                };
                return with_world(root, |w| {
                    let logged_in = w
                        .users
                        .get(&w.console_user)
                        .is_some_and(|u| u.uid == uid);
                    if !logged_in {
                        return Reply::with_stderr(3, "Boot-out failed: 3: No such process\n");
                    }
                    // munki issue 923: `bootout gui/` and `user/` "did not seem to" log the user
                    // out (10.13.4), exiting 0 all the same.
                    let b = w.behaviour();
                    if b.logout_never_works {
                        return Reply::ok("");
                    }
                    if domain == "user" && b.logout_ignored_once {
                        w.edit_behaviour(|b| b.logout_ignored_once = false);
                        return Reply::ok("");
                    }
                    w.log_out_console(world::now_ms());
                    Reply::ok("")
                });
            }
            match target.strip_prefix("system/") {
                Some(mac::LABEL) => with_world(root, |w| {
                    if w.daemon_loaded {
                        w.daemon_loaded = false;
                        Reply {
                            kill_caller: w.behaviour().bootout_kills_caller,
                            ..Reply::ok("")
                        }
                    } else {
                        Reply::with_stderr(113, NOT_LOADED)
                    }
                }),
                Some(mac::JC_AGENT_LABEL) => with_world(root, |w| {
                    if agent_installed(w) {
                        Reply::ok("")
                    } else {
                        Reply::with_stderr(113, NOT_LOADED)
                    }
                }),
                _ => Ok(Reply::with_stderr(113, NOT_LOADED)),
            }
        }
        [cmd, flag, target] if cmd == "kickstart" && flag == "-k" => {
            let label = target.strip_prefix("system/").unwrap_or(target);
            with_world(root, |w| {
                if label == mac::JC_AGENT_LABEL && agent_installed(w) {
                    w.agent_kickstarts += 1;
                    Reply::ok("")
                } else {
                    Reply::with_stderr(
                        113,
                        format!("Could not find service \"{label}\" in domain for system\n"),
                    )
                }
            })
        }
        [cmd, domain, plist] if cmd == "bootstrap" && domain == "system" => {
            let path = arg_path(root, plist);
            if !path.is_file() {
                return Ok(Reply::with_stderr(2, "Bootstrap failed: 2: No such file or directory\n"));
            }
            let ours = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy() == format!("{}.plist", mac::LABEL));
            with_world(root, |w| {
                // launchd answers error 5 both for a job that is already loaded and while it is
                // still tearing an old instance down (the `bootstrap_fails` knob).
                if ours && (w.daemon_loaded || w.behaviour().bootstrap_fails) {
                    Reply::with_stderr(5, "Bootstrap failed: 5: Input/output error\n")
                } else {
                    if ours {
                        w.daemon_loaded = true;
                    }
                    Reply::ok("")
                }
            })
        }
        _ => Ok(Reply::with_stderr(
            1,
            format!(
                "Unrecognized subcommand: {}\nUsage: launchctl <subcommand> ... | help [subcommand]\n",
                args.first().map_or("", String::as_str)
            ),
        )),
    }
}

fn agent_installed(w: &World) -> bool {
    w.installed_packages.iter().any(|p| p == AGENT_PACKAGE_ID)
}

fn read_package(root: &Root, arg: &str) -> Result<Option<FakePackage>, WorldError> {
    let path = arg_path(root, arg);
    if !path.is_file() {
        return Ok(None);
    }
    FakePackage::read(&path)
}

fn display_name(arg: &str) -> &str {
    std::path::Path::new(arg)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(arg)
}

/// `pkgutil [--volume VOL] --forget ID` (pkgutil(1)): removes the receipt of package ID from
/// the volume's receipt database, `Forgot package 'ID' on 'VOL'.`; without such a receipt
/// `No receipt for 'ID' found at 'VOL'.` and exit 1 (wording as pkgutil prints it: the first in
/// rdar://23022827, the second for `--pkg-info` in VMware's Workspace ONE receipts guide). The fake world's receipts are
/// [`World::installed_packages`] of the boot volume (the root); other volumes hold none.
fn pkgutil_forget(root: &Root, volume: Option<&str>, id: &str) -> Outcome {
    let shown = volume.unwrap_or("/");
    let boot = volume.is_none_or(|v| arg_path(root, v) == root.resolve("/"));
    let forgot = boot
        && with_world(root, |w| {
            let before = w.installed_packages.len();
            w.installed_packages.retain(|p| p != id);
            w.installed_packages.len() != before
        })?;
    Ok(if forgot {
        Reply::ok(format!("Forgot package '{id}' on '{shown}'.\n"))
    } else {
        Reply::with_stderr(1, format!("No receipt for '{id}' found at '{shown}'.\n"))
    })
}

/// `pkgutil --check-signature PKG` (pkgutil(1); layout in tests/fixtures/host/pkgutil-*.txt)
/// and `pkgutil [--volume VOL] --forget ID`.
pub(super) fn pkgutil(root: &Root, args: &[String]) -> Outcome {
    match args {
        [flag, id] if flag == "--forget" => return pkgutil_forget(root, None, id),
        [vol_flag, volume, flag, id] if vol_flag == "--volume" && flag == "--forget" => {
            return pkgutil_forget(root, Some(volume), id);
        }
        _ => {}
    }
    let [flag, pkg] = args else {
        return Ok(Reply::with_stderr(
            1,
            "Usage: pkgutil [OPTIONS] [COMMANDS] ...\n",
        ));
    };
    if flag != "--check-signature" {
        return Ok(Reply::with_stderr(
            1,
            format!("Error: unknown option {flag}\n"),
        ));
    }
    let name = display_name(pkg);
    let Some(package) = read_package(root, pkg)? else {
        return Ok(Reply::with_stderr(
            1,
            format!("Error: Could not open package {pkg}: not a valid package\n"),
        ));
    };
    let mut out = format!("Package \"{name}\":\n");
    let Some(signer) = package.signer else {
        out.push_str("   Status: no signature\n");
        return Ok(Reply {
            code: 1,
            stdout: out,
            ..Reply::default()
        });
    };
    out.push_str(
        "   Status: signed by a developer certificate issued by Apple for distribution\n\
         \x20  Notarization: trusted by the Apple notary service\n\
         \x20  Signed with a trusted timestamp on: 2024-05-14 17:29:09 +0000\n\
         \x20  Certificate Chain:\n",
    );
    for (i, cn) in [
        signer.as_str(),
        "Developer ID Certification Authority",
        "Apple Root CA",
    ]
    .iter()
    .enumerate()
    {
        let _ = write!(
            out,
            "    {}. {cn}\n       Expires: 2030-02-01 22:12:15 +0000\n       SHA256 Fingerprint:\n           0A 1B 2C 3D 4E 5F 60 71 82 93 A4 B5 C6 D7 E8 F9 0A 1B 2C 3D 4E 5F\n           60 71 82 93 A4 B5 C6 D7 E8 F9\n       ------------------------------------------------------------------------\n",
            i + 1
        );
    }
    out.push('\n');
    Ok(Reply::ok(out))
}

/// `installer -pkg PKG -target /` (installer(8)): installs the fake package's identifier.
pub(super) fn installer(root: &Root, args: &[String]) -> Outcome {
    let [pkg_flag, pkg, target_flag, target] = args else {
        return Ok(Reply::with_stderr(
            1,
            "Usage: installer [-help] [-dominfo] [-volinfo] [-pkginfo] [-allowUntrusted] [-dumplog]\n                 [-verbose | -verboseR] [-vers] [-config] [-plist]\n                 [-file <pathToFile>] [-lang <ISOLanguageCode>]\n                 [-listiso] [-showChoicesXML] [-applyChoiceChangesXML <pathToFile>]\n                 [-showChoicesAfterApplyingChangesXML <pathToFile>]\n                 -pkg <pathToPackage>\n                 -target <[DomainKey|MountPoint|DMG|DEVICE]>\n",
        ));
    };
    if pkg_flag != "-pkg" || target_flag != "-target" || target != "/" {
        return Ok(Reply::with_stderr(
            1,
            "installer: Error - the target specified was invalid.\n",
        ));
    }
    let Some(package) = read_package(root, pkg)? else {
        let line = format!("installer: Error - the package path specified was invalid: '{pkg}'.\n");
        return Ok(Reply {
            code: 1,
            stdout: line.clone(),
            stderr: line,
            ..Reply::default()
        });
    };
    // A real install takes its time: JumpCloud's agent installer waits up to about five
    // minutes for Full Disk Access when no PPPC profile grants it (REFERENCE, JumpCloud's
    // `install_agent_and_serviceaccount.sh` lines 193-202). Tests set how long.
    let delay = World::load(root)?.behaviour().install_delay_ms;
    if delay > 0 && package.identifier == AGENT_PACKAGE_ID {
        std::thread::sleep(Duration::from_millis(delay));
    }
    if package.identifier == AGENT_PACKAGE_ID {
        super::realmac::agent_installer_reads_creds(root)?;
        if let Some(reply) = super::realmac::agent_installer_waits_for_fda(root, display_name(pkg))?
        {
            return Ok(reply);
        }
    }
    let failure = with_world(root, |w| {
        if let Some(error) = w.behaviour().install_error {
            return Some(error);
        }
        if !w.installed_packages.contains(&package.identifier) {
            w.installed_packages.push(package.identifier.clone());
        }
        None
    })?;
    if let Some(error) = failure {
        return Ok(Reply {
            code: 1,
            stdout: format!(
                "installer: Package name is {}\ninstaller: Installing at base path /\ninstaller: Error - {error}\n",
                package.identifier
            ),
            stderr: format!("installer: Error - {error}\n"),
            ..Reply::default()
        });
    }
    if package.identifier == DIALOG_PACKAGE_ID {
        // swiftDialog's package installs the app (with its Info.plist and version) and the
        // `dialog` launcher, running through the same shim as every fake tool.
        super::install_swiftdialog(root, std::path::Path::new(""), &package.version)?;
    }
    Ok(Reply::ok(format!(
        "installer: Package name is {}\ninstaller: Installing at base path /\ninstaller: The install was successful.\n",
        package.identifier
    )))
}

/// `sntp -sS SERVER` (sntp(1)): prints the offset it applied, `+0.012345 +/- 0.021000 SERVER
/// ADDRESS`.
pub(super) fn sntp(root: &Root, args: &[String]) -> Outcome {
    let [flag, server] = args else {
        return Ok(Reply::with_stderr(
            1,
            "usage: sntp [-debug] [-S] [-s] [-t timeout] server\n",
        ));
    };
    if flag != "-sS" {
        return Ok(Reply::with_stderr(
            1,
            "usage: sntp [-debug] [-S] [-s] [-t timeout] server\n",
        ));
    }
    let unreachable = with_world(root, |w| w.behaviour().sntp_unreachable)?;
    Ok(if unreachable {
        Reply::with_stderr(1, format!("sntp: Exchange failed: {server}: timed out\n"))
    } else {
        Reply::ok(format!("+0.012345 +/- 0.021000 {server} 17.253.52.125\n"))
    })
}

/// `caffeinate -dimsu -w PID` (caffeinate(8)): returns once PID has exited, looking every
/// 200 ms (one `kill(pid, 0)`, no process).
pub(super) fn caffeinate(args: &[String]) -> Reply {
    let mut pid = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "-w" {
            pid = it.next().and_then(|p| p.parse::<i32>().ok());
        } else if !(arg.starts_with('-') && arg[1..].chars().all(|c| "dimsu".contains(c))) {
            return Reply::with_stderr(
                1,
                "usage: caffeinate [-disu] [-t timeout] [-w pid] [utility arguments...]\n",
            );
        }
    }
    let Some(pid) = pid.and_then(rustix::process::Pid::from_raw) else {
        return Reply::with_stderr(
            1,
            "usage: caffeinate [-disu] [-t timeout] [-w pid] [utility arguments...]\n",
        );
    };
    while alive(pid) {
        std::thread::sleep(Duration::from_millis(200));
    }
    Reply::ok("")
}

/// Whether `pid` still runs (a zombie, exited but not yet reaped, does not).
fn alive(pid: rustix::process::Pid) -> bool {
    if rustix::process::test_kill_process(pid).is_err() {
        return false;
    }
    // On Linux a zombie still answers kill(0); its state in /proc says it has exited.
    match std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero())) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state != "Z" && state != "X"),
        Err(_) => true,
    }
}

/// Sends SIGTERM to the process that ran this fake (what `launchctl bootout` does to the daemon
/// being removed).
pub(super) fn kill_caller() {
    let parent = std::os::unix::process::parent_id();
    // Orphaned (the caller already ended): never signal init.
    if parent <= 1 {
        return;
    }
    if let Some(pid) = i32::try_from(parent)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
}
