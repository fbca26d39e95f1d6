//! The fake `/usr/local/bin/dialog`: the 3.x launcher (`dialogcli/dialogcli.swift`, `run()`),
//! step by step. Started as root (prestage is a LaunchDaemon), it:
//! 1. exits 255 when the app's binary is missing (`Cannot find swiftDialog binary`);
//! 2. takes the path after the first `--commandfile` whose next argument does not start with
//!    `--`, else the shared default `/var/tmp/dialog.log`;
//! 3. exits 1 when that path is a symbolic link *to a directory* (`destinationOfSymbolicLinkSafe`
//!    asks `fileExists(atPath:isDirectory:)`, which follows the link, so a link to a regular
//!    file passes), and creates the file when it is missing;
//! 4. exits 1 unless the console user is not empty and not uid 0 (`Unable to determine current
//!    GUI user`), or `--loginwindow` is given;
//! 5. drops whitespace-only arguments, moves options without a value to the end
//!    (`reorderArguments`) and puts `--pid <its own pid> --commandfile <path>` first;
//! 6. as root, exits 1 unless the user can read the command file (`sudo -u USER test -r`);
//! 7. runs the app as the user (`launchctl asuser UID sudo -H -u USER <app> ...`; the fake
//!    starts the app's binary directly) and forwards its stdout, stderr and exit status, or
//!    exits 255 when it cannot start it.
//!
//! Not modelled: SIGINT to the launcher (it sends SIGTERM to the app and exits 40).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{record_call, DEFAULT_COMMAND_FILE};
use crate::host::fake::world::World;
use crate::paths::{mac, Root};
use crate::ui::dialog::DialogExit;

/// Runs the launcher with `args` (without argv[0]); returns its exit code.
pub fn run(root: &Root, args: &[String]) -> i32 {
    record_call(root, args);
    let app = root.resolve(mac::DIALOG_APP_BINARY);
    if !app.exists() {
        eprintln!(
            "ERROR: Cannot find swiftDialog binary at {}",
            mac::DIALOG_APP_BINARY
        );
        return DialogExit::AppMissing.code();
    }
    let command_file = args
        .windows(2)
        .find(|w| w[0] == "--commandfile" && !w[1].starts_with("--"))
        .map_or(DEFAULT_COMMAND_FILE, |w| w[1].as_str())
        .to_owned();
    let real = root.resolve(&command_file);
    let is_link = std::fs::symlink_metadata(&real).is_ok_and(|m| m.file_type().is_symlink());
    if is_link && real.is_dir() {
        eprintln!("ERROR: {command_file} is a symbolic link - aborting");
        return DialogExit::LauncherRefused.code();
    }
    if !real.exists() {
        // `FileManager.createFile(atPath:contents:nil)`: owned by the launcher (root), 0644.
        if let Some(dir) = real.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if std::fs::write(&real, b"").is_ok() {
            let _ = std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o644));
        }
    }
    let world = World::load(root).unwrap_or_default();
    let user = world.console_user.clone();
    // `SCDynamicStoreCopyConsoleUser`: root at the login window is uid 0; every account of the
    // fake world has its uid, and a system account we do not list (`_mbsetupuser`, 248) is not 0.
    let uid = if user == "root" || user.is_empty() {
        0
    } else {
        world.users.get(&user).map_or(248, |u| u.uid)
    };
    let loginwindow = args.iter().any(|a| a == "--loginwindow");
    if !((!user.is_empty() && uid != 0) || loginwindow) {
        eprintln!("ERROR: Unable to determine current GUI user");
        return DialogExit::LauncherRefused.code();
    }
    let filtered: Vec<String> = args
        .iter()
        .filter(|a| !a.trim().is_empty())
        .cloned()
        .collect();
    let mut reordered = vec![
        "--pid".to_owned(),
        std::process::id().to_string(),
        "--commandfile".to_owned(),
        command_file.clone(),
    ];
    let Some(rest) = reorder_arguments(&filtered) else {
        eprintln!("fake dialog: a stray one-character argument: the real launcher loops forever");
        return super::EXIT_SCRIPT;
    };
    reordered.extend(rest);
    // As root for a logged-in user: `canUserReadFile` runs `sudo -u USER test -r FILE`. The
    // user is never the owner of a file made by root (the fake's files stand for root's), so
    // the "other" read bit decides.
    if uid != 0 && !user_can_read(&real) {
        eprintln!("ERROR: {command_file} is not readable by user {user}");
        return DialogExit::LauncherRefused.code();
    }
    let output = Command::new(&app)
        .args(&reordered)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output();
    match output {
        Ok(out) => {
            let _ = std::io::stdout().write_all(&out.stdout);
            let _ = std::io::stdout().flush();
            out.status.code().unwrap_or(DialogExit::AppMissing.code())
        }
        Err(e) => {
            eprintln!("Failed to run process: {e}");
            DialogExit::AppMissing.code()
        }
    }
}

/// Whether the (non-root) console user may read `path`.
pub(super) fn user_can_read(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}

/// `reorderArguments`: an argument starting with `-` that is last or followed by another
/// argument starting with `-` is a flag and moves to the end; anything else that starts with
/// `-` takes the next argument as its value; a stray argument longer than one character is
/// kept in place. A stray one-character argument never advances the real loop (its `index`
/// is only incremented inside the `if`): `None` here.
pub fn reorder_arguments(args: &[String]) -> Option<Vec<String>> {
    let mut reordered = Vec::new();
    let mut flags = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg.starts_with('-') {
            if args.get(i + 1).is_none_or(|next| next.starts_with('-')) {
                flags.push(arg.clone());
                i += 1;
            } else {
                reordered.push(arg.clone());
                reordered.push(args[i + 1].clone());
                i += 2;
            }
        } else if !arg.trim().is_empty() && arg.chars().count() > 1 {
            reordered.push(arg.clone());
            i += 1;
        } else {
            return None;
        }
    }
    reordered.extend(flags);
    Some(reordered)
}
