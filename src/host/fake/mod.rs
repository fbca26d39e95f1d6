//! Faithful fakes of the macOS tools of SPEC §4, for tests, the simulator and `prestage demo`
//! (compiled only with the `sim` feature).
//!
//! [`install_fake_tools`] writes one shim, `<root>/.fakemac/shim` (`exec <fakes> sim-tool "$0"
//! "$@"`), and links every tool path under the root (e.g. `<root>/usr/sbin/sysadminctl`, and
//! `/usr/local/bin/dialog`) to it. `<fakes>` is the `prestage-fake` multi-call binary (tests), or
//! a `prestage` built with the `sim` feature (`prestage demo`, whose `cargo run` builds no other
//! binary); both hand the tool's path and arguments to [`run`]. Each fake records its call in
//! `/.fakemac/calls.jsonl`, changes the shared [`world::World`] under its lock, and prints what
//! the real tool prints, with the same exit codes and stdout/stderr split. The shim `exec`s, so
//! a fake keeps the PID its caller started (`caffeinate -w`, `launchctl bootout` rely on it).
//!
//! Fakes only answer for a root that has a `/.fakemac/` folder. They are plain std code: each
//! is a short-lived process.

pub mod keychain;
pub mod memory;
mod realmac;
mod sysinfo;
mod tools;
pub mod world;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::paths::{mac, Root};
use world::{Call, World, WorldError, WORLD_DIR, WORLD_FILE};

/// The tools this module fakes: every tool of SPEC §4 but `dialog` (the fake swiftDialog lives
/// with the UI).
pub fn faked_tools() -> impl Iterator<Item = &'static str> {
    mac::TOOLS.iter().copied().filter(|t| *t != mac::DIALOG)
}

/// The subcommand the shim passes first (`prestage sim-tool PATH ARGS...`).
pub const SHIM_SUBCOMMAND: &str = "sim-tool";

/// Runs the fake that `tool_path` (a tool's path under a fake Mac's root, as the shim's `$0`)
/// stands for: a macOS tool of SPEC §4 or swiftDialog. Returns the exit code; 127 (as a shell
/// says for a missing command) when the path is no faked tool under a root with `/.fakemac/`.
pub fn run(tool_path: &Path, args: &[String]) -> i32 {
    if let Some(code) = dispatch(tool_path, args) {
        return code;
    }
    if let Some(root) = root_of(tool_path, mac::DIALOG) {
        return crate::ui::fake_dialog::run(&root, args);
    }
    if let Some(root) = root_of(tool_path, mac::DIALOG_APP_BINARY) {
        return crate::ui::fake_dialog::run_app(&root, args);
    }
    eprintln!(
        "prestage-fake: {} is not a faked tool under a simulated Mac (no .fakemac folder)",
        tool_path.display()
    );
    127
}

/// The fake Mac's root that `tool_path` is `tool` under, if it has a `/.fakemac/` folder.
fn root_of(tool_path: &Path, tool: &str) -> Option<Root> {
    let text = tool_path.to_str()?;
    let prefix = text.strip_suffix(tool)?;
    let root = Root::new(if prefix.is_empty() { "/" } else { prefix });
    root.resolve(WORLD_DIR).is_dir().then_some(root)
}

/// Runs the fake tool `argv0` stands for, if it is one: `None` unless `argv0` is a tool path of
/// SPEC §4 (other than `dialog`) under some root that has a `/.fakemac/` folder. Returns the
/// exit code.
pub fn dispatch(argv0: &Path, args: &[String]) -> Option<i32> {
    let argv0 = if argv0.is_absolute() {
        argv0.to_owned()
    } else {
        std::env::current_dir().ok()?.join(argv0)
    };
    let text = argv0.to_str()?;
    for tool in faked_tools() {
        let Some(prefix) = text.strip_suffix(tool) else {
            continue;
        };
        let root_dir = if prefix.is_empty() { "/" } else { prefix };
        let root = Root::new(root_dir);
        if !root.resolve(WORLD_DIR).is_dir() {
            return None;
        }
        return Some(run_tool(&root, tool, args));
    }
    None
}

/// What a fake prints and how it exits.
#[derive(Debug, Default)]
pub(crate) struct Reply {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Send SIGTERM to the caller after answering (`launchctl bootout` of the caller's daemon).
    pub kill_caller: bool,
}

impl Reply {
    pub(crate) fn ok(stdout: impl Into<String>) -> Self {
        Self {
            code: 0,
            stdout: stdout.into(),
            ..Self::default()
        }
    }

    pub(crate) fn with_stderr(code: i32, stderr: impl Into<String>) -> Self {
        Self {
            code,
            stderr: stderr.into(),
            ..Self::default()
        }
    }
}

fn run_tool(root: &Root, tool: &str, args: &[String]) -> i32 {
    let call = Call {
        tool: tool.to_owned(),
        args: args.to_vec(),
        at_ms: world::now_ms(),
    };
    if let Err(e) = world::record_call(root, &call) {
        eprintln!("fake {tool}: {e}");
        return 70;
    }
    let outcome = match tool {
        mac::STAT => tools::stat(root, args),
        mac::PGREP => tools::pgrep(root, args),
        mac::ID => tools::id(root, args),
        mac::SYSADMINCTL => tools::sysadminctl(root, args),
        mac::DSCL => tools::dscl(root, args),
        mac::LAUNCHCTL => tools::launchctl(root, args),
        mac::PKGUTIL => tools::pkgutil(root, args),
        mac::INSTALLER => tools::installer(root, args),
        mac::SNTP => tools::sntp(root, args),
        mac::CAFFEINATE => Ok(tools::caffeinate(args)),
        mac::FDESETUP => realmac::fdesetup(root, args),
        mac::DISKUTIL => realmac::diskutil(root, args),
        mac::IOREG => sysinfo::ioreg(root, args),
        mac::SCUTIL => sysinfo::scutil(root, args),
        mac::PMSET => sysinfo::pmset(root, args),
        _ => Ok(Reply::with_stderr(70, format!("fake {tool}: not faked\n"))),
    };
    let reply = outcome.unwrap_or_else(|e| Reply::with_stderr(70, format!("fake {tool}: {e}\n")));
    let _ = std::io::stdout().write_all(reply.stdout.as_bytes());
    let _ = std::io::stderr().write_all(reply.stderr.as_bytes());
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    if reply.kill_caller {
        tools::kill_caller();
    }
    reply.code
}

/// Writes the shim that runs the fakes with `exe` (`prestage-fake`, or a `prestage` built with
/// the `sim` feature), links every faked tool under `root` to it, creates the folders and files
/// a Mac has (`/dev/console`, `/var/log`, `/var/tmp`, `/var/db`, `/Library/LaunchDaemons`) and,
/// unless one exists, writes an initial world: login window, no users, prestage's daemon
/// loaded.
pub fn install_fake_tools(root: &Root, exe: &Path) -> Result<(), WorldError> {
    let shim = write_shim(root, exe)?;
    for tool in faked_tools() {
        link(&root.tool(tool), &shim)?;
    }
    for dir in [
        "/dev",
        "/var/log",
        "/var/tmp",
        "/var/db",
        "/Library/LaunchDaemons",
        "/Library/Preferences",
        WORLD_DIR,
    ] {
        let path = root.resolve(dir);
        fs::create_dir_all(&path).map_err(io(&path))?;
    }
    let console = root.resolve(mac::CONSOLE);
    if !console.exists() {
        fs::write(&console, b"").map_err(io(&console))?;
    }
    if !root.resolve(WORLD_FILE).exists() {
        let mut world = World {
            daemon_loaded: true,
            ..World::default()
        };
        world.set_behaviour(&world::Behaviour::default());
        world.save(root)?;
    }
    // Writes `/dev/console` to match the world's console user.
    World::update(root, |_| ())
}

/// The swiftDialog version a fake Mac has unless a test says otherwise: the newest stable
/// release at the time of the source audit (tag v3.0.1).
pub const FAKE_DIALOG_VERSION: &str = "3.0.1";

/// Installs swiftDialog `version` on the fake Mac, as its package does: the launcher
/// `/usr/local/bin/dialog` and the app's binary (both links to the shim, written for `exe` if
/// it is not there yet), and the app's `Info.plist`. The plist carries what a real one does
/// for prestage: `CFBundleShortVersionString` (e.g. `3.0.1`), `CFBundleVersion` (the build),
/// `CFBundleIdentifier` `au.csiro.dialog` and `LSMinimumSystemVersion`, which swiftDialog takes
/// from its deployment target: 15.0 for 3.x, 12.0 for 2.5.x (`dialog.xcodeproj/project.pbxproj`,
/// `dialog/Info.plist`; swiftDialog source audit row 1).
pub fn install_swiftdialog(root: &Root, exe: &Path, version: &str) -> Result<(), WorldError> {
    let shim = root.resolve(SHIM);
    let shim = if shim.is_file() {
        shim
    } else {
        write_shim(root, exe)?
    };
    link(&root.tool(mac::DIALOG), &shim)?;
    link(&root.resolve(mac::DIALOG_APP_BINARY), &shim)?;
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    let minimum = if major.is_some_and(|major| major >= 3) {
        "15.0"
    } else {
        "12.0"
    };
    let mut info = plist::Dictionary::new();
    info.insert("CFBundleIdentifier".into(), "au.csiro.dialog".into());
    info.insert("CFBundleName".into(), "Dialog".into());
    info.insert("CFBundleShortVersionString".into(), version.into());
    info.insert("CFBundleVersion".into(), "4805".into());
    info.insert("LSMinimumSystemVersion".into(), minimum.into());
    let path = root.resolve(mac::DIALOG_INFO_PLIST);
    plist::Value::Dictionary(info)
        .to_file_xml(&path)
        .map_err(|e| io(&path)(std::io::Error::other(e)))
}

/// Installs the fake swiftDialog ([`FAKE_DIALOG_VERSION`]) for tests whose Mac already has it.
/// Returns the launcher's path.
pub fn install_fake_dialog(root: &Root, exe: &Path) -> Result<PathBuf, WorldError> {
    install_swiftdialog(root, exe, FAKE_DIALOG_VERSION)?;
    Ok(root.tool(mac::DIALOG))
}

/// The shim every fake tool path links to.
pub const SHIM: &str = "/.fakemac/shim";

/// Writes `<root>/.fakemac/shim`: `exec '<exe>' sim-tool "$0" "$@"` (0755).
fn write_shim(root: &Root, exe: &Path) -> Result<PathBuf, WorldError> {
    use std::os::unix::fs::PermissionsExt;
    let path = root.resolve(SHIM);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    // Single quotes keep every byte of the path but `'`, written as '\''.
    let quoted = exe.to_string_lossy().replace('\'', "'\\''");
    let text = format!("#!/bin/sh\nexec '{quoted}' {SHIM_SUBCOMMAND} \"$0\" \"$@\"\n");
    fs::write(&path, text).map_err(io(&path))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).map_err(io(&path))?;
    Ok(path)
}

/// Makes `path` a symbolic link to `target`, replacing whatever was there.
pub(crate) fn link(path: &Path, target: &Path) -> Result<(), WorldError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(path)(e)),
    }
    std::os::unix::fs::symlink(target, path).map_err(io(path))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WorldError + '_ {
    move |source| WorldError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The real path of a path argument given to a fake: arguments are macOS paths (SPEC §1: not
/// rewritten), but a caller may also pass a real path that is already under the root.
pub(crate) fn arg_path(root: &Root, arg: &str) -> PathBuf {
    let path = Path::new(arg);
    let path = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir().map_or_else(|_| path.to_owned(), |cwd| cwd.join(path))
    };
    if !root.is_system() && path.starts_with(root.dir()) {
        path
    } else {
        root.resolve(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_ignores_other_programs_and_real_macs() {
        assert_eq!(dispatch(Path::new("/usr/local/bin/prestage"), &[]), None);
        // `/` has no `.fakemac`: a real Mac never runs the fakes.
        assert_eq!(dispatch(Path::new("/usr/bin/id"), &["-u".into()]), None);
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("usr/bin/id");
        assert_eq!(dispatch(&tool, &[]), None);
        // dialog is the UI's fake, not ours.
        fs::create_dir_all(dir.path().join(".fakemac")).unwrap();
        assert_eq!(
            dispatch(&dir.path().join("usr/local/bin/dialog"), &[]),
            None
        );
    }

    #[test]
    fn arg_paths_resolve_under_the_root() {
        let root = Root::new("/tmp/mac1");
        assert_eq!(
            arg_path(&root, "/var/tmp/a.pkg"),
            PathBuf::from("/tmp/mac1/var/tmp/a.pkg")
        );
        assert_eq!(
            arg_path(&root, "/tmp/mac1/var/tmp/a.pkg"),
            PathBuf::from("/tmp/mac1/var/tmp/a.pkg")
        );
    }
}
