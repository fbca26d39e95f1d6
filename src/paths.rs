//! Where things live on a Mac, and how `--root` maps those places onto this machine.
//!
//! SPEC §1: every absolute path prestage reads, writes or executes is resolved under `--root`
//! (default `/`). [`Root`] is the only way the rest of the crate turns a macOS path into a real
//! one, so tests, the simulator and `prestage demo` run the same code against a temporary tree.

use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};

/// Well-known macOS paths, exactly as they are on a Mac (SPEC §1, §4).
pub mod mac {
    pub const BINARY: &str = "/usr/local/libexec/prestage/prestage";
    pub const BINARY_LINK: &str = "/usr/local/bin/prestage";
    pub const LAUNCH_DAEMON: &str = "/Library/LaunchDaemons/io.prestage.enroll.plist";
    pub const MANAGED_CONFIG: &str = "/Library/Managed Preferences/io.prestage.enroll.plist";
    pub const LOCAL_CONFIG: &str = "/Library/Preferences/io.prestage.enroll.plist";
    pub const STATE_DIR: &str = "/var/db/prestage";
    pub const STATE_FILE: &str = "/var/db/prestage/state.json";
    pub const JOURNAL_FILE: &str = "/var/db/prestage/journal.jsonl";
    pub const RECEIPT_FILE: &str = "/var/db/prestage/receipt.json";
    /// The agent package when downloaded from `Agent.PackageURL`.
    pub const AGENT_PACKAGE: &str = "/var/db/prestage/jumpcloud-agent.pkg";
    pub const LOCK_FILE: &str = "/var/db/prestage/run.lock";
    pub const LOG_FILE: &str = "/var/log/prestage.log";
    pub const CONSOLE: &str = "/dev/console";

    pub const JC_AGENT_CONF: &str = "/opt/jc/jcagent.conf";
    pub const JC_CLIENT_KEY: &str = "/opt/jc/client.key";
    pub const JC_BOOTSTRAP: &str = "/opt/jc/agentBootstrap.json";
    pub const JC_AGENT_LOG: &str = "/var/log/jcagent.log";
    pub const JC_AGENT_LABEL: &str = "com.jumpcloud.darwin-agent";
    /// Credentials for the agent's Secure Token service account, read and deleted by the
    /// agent's installer (TheJumpCloud/support `install_agent_and_serviceaccount.sh`).
    pub const JC_SECURETOKEN_CREDS: &str = "/var/run/JumpCloud-SecureToken-Creds.txt";

    pub const LABEL: &str = "io.prestage.enroll";

    // Tools of SPEC §4. Nothing else is ever executed.
    pub const STAT: &str = "/usr/bin/stat";
    pub const PGREP: &str = "/usr/bin/pgrep";
    pub const ID: &str = "/usr/bin/id";
    pub const SYSADMINCTL: &str = "/usr/sbin/sysadminctl";
    pub const DSCL: &str = "/usr/bin/dscl";
    pub const LAUNCHCTL: &str = "/bin/launchctl";
    pub const PKGUTIL: &str = "/usr/sbin/pkgutil";
    pub const INSTALLER: &str = "/usr/sbin/installer";
    pub const SNTP: &str = "/usr/bin/sntp";
    pub const CAFFEINATE: &str = "/usr/bin/caffeinate";
    pub const FDESETUP: &str = "/usr/bin/fdesetup";
    pub const DISKUTIL: &str = "/usr/sbin/diskutil";
    pub const IOREG: &str = "/usr/sbin/ioreg";
    pub const SCUTIL: &str = "/usr/sbin/scutil";
    pub const PMSET: &str = "/usr/bin/pmset";
    pub const DIALOG: &str = "/usr/local/bin/dialog";
    /// swiftDialog's app bundle: its launcher starts the app's binary from here
    /// (`dialogcli/dialogcli.swift`, `dialogAppPath`), and its `Info.plist` holds the version
    /// (SPEC §4, "UI version"). Read, never executed by prestage.
    pub const DIALOG_APP: &str = "/Library/Application Support/Dialog/Dialog.app";
    pub const DIALOG_INFO_PLIST: &str =
        "/Library/Application Support/Dialog/Dialog.app/Contents/Info.plist";
    pub const DIALOG_APP_BINARY: &str =
        "/Library/Application Support/Dialog/Dialog.app/Contents/MacOS/Dialog";
    /// The state-directory file naming the command files of swiftDialog windows that may still
    /// be up (so a later run can close windows a killed run left behind).
    pub const DIALOG_WINDOWS_FILE: &str = "/var/db/prestage/dialog-windows.json";

    /// Every tool of SPEC §4, for fakes and for the README table.
    pub const TOOLS: &[&str] = &[
        STAT,
        PGREP,
        ID,
        SYSADMINCTL,
        DSCL,
        LAUNCHCTL,
        PKGUTIL,
        INSTALLER,
        SNTP,
        CAFFEINATE,
        FDESETUP,
        DISKUTIL,
        IOREG,
        SCUTIL,
        PMSET,
        DIALOG,
    ];
}

/// The `--root` directory: the folder that stands for `/` of the Mac.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    dir: PathBuf,
}

impl Default for Root {
    fn default() -> Self {
        Self::system()
    }
}

impl Root {
    /// The real root, `/`.
    pub fn system() -> Self {
        Self {
            dir: PathBuf::from("/"),
        }
    }

    /// A root at `dir` (made absolute against the current directory if it is relative).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let dir = if dir.is_absolute() {
            dir
        } else {
            std::env::current_dir()
                .map(|cwd| cwd.join(&dir))
                .unwrap_or(dir)
        };
        Self { dir }
    }

    /// The directory standing for `/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True when this is the Mac's real `/`.
    pub fn is_system(&self) -> bool {
        self.dir == Path::new("/")
    }

    /// Turns a macOS path into the real path under this root.
    ///
    /// Relative inputs are taken as relative to the Mac's `/`. `..` components are dropped
    /// rather than followed, so no input can escape the root.
    pub fn resolve(&self, mac_path: impl AsRef<Path>) -> PathBuf {
        let mut out = self.dir.clone();
        for comp in mac_path.as_ref().components() {
            match comp {
                Component::Normal(part) => out.push(part),
                Component::RootDir
                | Component::CurDir
                | Component::Prefix(_)
                | Component::ParentDir => {}
            }
        }
        out
    }

    /// The inverse of [`Root::resolve`]: the macOS path of a real path under this root, if it
    /// is under it.
    pub fn to_mac(&self, real: &Path) -> Option<PathBuf> {
        let rest = real.strip_prefix(&self.dir).ok()?;
        Some(Path::new("/").join(rest))
    }

    /// The real path of a tool of SPEC §4.
    pub fn tool(&self, mac_path: &str) -> PathBuf {
        self.resolve(mac_path)
    }
}

/// The final component of a path as text, for messages.
pub fn file_name(path: &Path) -> &str {
    path.file_name().and_then(OsStr::to_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything prestage keeps between runs sits in the root-only state directory (0700),
    /// the one place `Store` protects.
    #[test]
    fn the_state_files_live_in_the_state_directory() {
        for file in [
            mac::STATE_FILE,
            mac::JOURNAL_FILE,
            mac::RECEIPT_FILE,
            mac::LOCK_FILE,
            mac::AGENT_PACKAGE,
            mac::DIALOG_WINDOWS_FILE,
        ] {
            assert_eq!(
                Path::new(file).parent(),
                Some(Path::new(mac::STATE_DIR)),
                "{file}"
            );
        }
    }

    #[test]
    fn system_root_is_identity() {
        let root = Root::system();
        assert_eq!(
            root.resolve("/opt/jc/jcagent.conf"),
            PathBuf::from("/opt/jc/jcagent.conf")
        );
        assert!(root.is_system());
    }

    #[test]
    fn temp_root_prefixes() {
        let root = Root::new("/tmp/mac1");
        assert_eq!(
            root.resolve(mac::SYSADMINCTL),
            PathBuf::from("/tmp/mac1/usr/sbin/sysadminctl")
        );
        assert_eq!(
            root.resolve(mac::MANAGED_CONFIG),
            PathBuf::from("/tmp/mac1/Library/Managed Preferences/io.prestage.enroll.plist")
        );
        assert!(!root.is_system());
    }

    #[test]
    fn parent_components_cannot_escape() {
        let root = Root::new("/tmp/mac1");
        assert_eq!(
            root.resolve("/../../etc/passwd"),
            PathBuf::from("/tmp/mac1/etc/passwd")
        );
        assert_eq!(root.resolve("opt/./jc"), PathBuf::from("/tmp/mac1/opt/jc"));
    }

    #[test]
    fn relative_root_becomes_absolute() {
        let root = Root::new("rel/dir");
        assert!(root.dir().is_absolute());
        assert!(root.resolve("/x").ends_with("rel/dir/x"));
    }

    #[test]
    fn to_mac_round_trips() {
        let root = Root::new("/tmp/mac1");
        let real = root.resolve("/var/db/prestage/state.json");
        assert_eq!(
            root.to_mac(&real),
            Some(PathBuf::from("/var/db/prestage/state.json"))
        );
        assert_eq!(root.to_mac(Path::new("/elsewhere")), None);
    }
}
