//! A command file per window, and the record of the windows that may still be up.
//!
//! Every swiftDialog window reads a command file, a question too: without `--commandfile` the
//! 3.x launcher (and the app) use the shared `/var/tmp/dialog.log` (`dialogcli/dialogcli.swift`,
//! `defaultCommandFile`; `DialogUpdatableContent.init`), where another tool's `quit:` would
//! close our window. So each window gets its own file: a fresh random name in `/var/tmp`,
//! created by prestage (root) with `O_EXCL | O_NOFOLLOW`, mode 0644 (the launcher, as root,
//! checks that the employee can read it: `sudo -u USER test -r`), removed when its window is
//! gone. `/var/tmp` is sticky, so the employee's window can neither replace nor empty it
//! (`killCommandFile`, `createCommandFile` in `DialogUpdatableContent.swift`).
//!
//! Each update opens the file, appends and closes it again: the app watches the file with a
//! `FileHandle` notification, which should see any append, but an integration reports that
//! writes through a held-open descriptor were missed (fleetdm/fleet
//! `orbit/pkg/swiftdialog/run.go`, `sendCommand`; source audit row 16). Before each write the
//! file is checked to be the one we made (device and inode).
//!
//! A window outlives a killed prestage (`AbandonProcessGroup` in the LaunchDaemon; the 3.x app
//! watches its launcher, not us). So the command file of every window that may still be up is
//! listed in `/var/db/prestage/dialog-windows.json` before the window starts, and taken off
//! once the window is gone; a new run first sends `quit:` to every file listed.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rustix::fs::{Mode, OFlags};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::paths::{mac, Root};
use crate::ui::UiError;

/// Opens `path` without following a symbolic link, close-on-exec.
fn open(path: &Path, flags: OFlags, mode: Mode) -> std::io::Result<File> {
    rustix::fs::open(path, flags | OFlags::NOFOLLOW | OFlags::CLOEXEC, mode)
        .map(File::from)
        .map_err(std::io::Error::from)
}

/// The folder and name prefix of prestage's command files.
pub const COMMAND_FILE_DIR: &str = "/var/tmp";
pub const COMMAND_FILE_PREFIX: &str = "prestage-dialog.";

/// One window's command file.
#[derive(Debug)]
pub struct CommandFile {
    /// As the window is given it (a macOS path).
    mac_path: PathBuf,
    real: PathBuf,
    /// Device and inode of the file we made.
    id: (u64, u64),
}

impl CommandFile {
    /// Creates a fresh command file.
    pub fn create(root: &Root) -> Result<Self, UiError> {
        let dir = root.resolve(COMMAND_FILE_DIR);
        fs::create_dir_all(&dir)?;
        let mut attempts = 0;
        loop {
            let name = format!("{COMMAND_FILE_PREFIX}{:016x}.log", rand::random::<u64>());
            let mac_path = Path::new(COMMAND_FILE_DIR).join(&name);
            let real = dir.join(&name);
            match open(
                &real,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL,
                Mode::from_raw_mode(0o644),
            ) {
                Ok(file) => {
                    // The mode above is filtered through the umask; set it exactly.
                    file.set_permissions(fs::Permissions::from_mode(0o644))?;
                    let meta = file.metadata()?;
                    return Ok(Self {
                        mac_path,
                        real,
                        id: (meta.dev(), meta.ino()),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempts < 5 => {
                    attempts += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A command file a previous run listed, if it is still there and still ours: one of our
    /// names, a regular file, owned by us (root).
    pub fn left_behind(root: &Root, mac_path: &str) -> Option<Self> {
        let path = Path::new(mac_path);
        let ours = path.parent() == Some(Path::new(COMMAND_FILE_DIR))
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(COMMAND_FILE_PREFIX) && !n.contains('/'));
        if !ours {
            warn!(path = mac_path, "not a prestage command file; left alone");
            return None;
        }
        let real = root.resolve(path);
        let meta = fs::symlink_metadata(&real).ok()?;
        if !meta.file_type().is_file() || meta.uid() != rustix::process::geteuid().as_raw() {
            warn!(
                path = mac_path,
                "command file is not ours any more; left alone"
            );
            return None;
        }
        Some(Self {
            mac_path: path.to_owned(),
            real,
            id: (meta.dev(), meta.ino()),
        })
    }

    /// The path the window is given.
    pub fn mac_path(&self) -> &Path {
        &self.mac_path
    }

    /// Appends `lines`: open, append, close.
    pub fn append(&self, lines: &[String]) -> std::io::Result<()> {
        let mut buf = String::new();
        for line in lines {
            buf.push_str(line);
            buf.push('\n');
        }
        let mut file = open(&self.real, OFlags::WRONLY | OFlags::APPEND, Mode::empty())?;
        let meta = file.metadata()?;
        if (meta.dev(), meta.ino()) != self.id {
            return Err(std::io::Error::other(format!(
                "{} was replaced by another file",
                self.mac_path.display()
            )));
        }
        file.write_all(buf.as_bytes())
    }

    /// Asks its window to quit (best effort).
    pub fn quit(&self) {
        match self.append(&["quit:".to_owned()]) {
            Ok(()) => {}
            // Removed already: its window is gone.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                warn!(path = %self.mac_path.display(), error = %e, "could not write quit: to a swiftDialog command file");
            }
        }
    }

    /// Removes the file (when it is still the one we made).
    pub fn remove(&self) {
        let same = fs::symlink_metadata(&self.real).is_ok_and(|m| (m.dev(), m.ino()) == self.id);
        if same {
            if let Err(e) = fs::remove_file(&self.real) {
                warn!(path = %self.mac_path.display(), error = %e, "could not remove a swiftDialog command file");
            }
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct LedgerFile {
    /// Command files (macOS paths) of windows that may be up.
    windows: Vec<String>,
}

/// The persisted list of windows that may be up (see the module docs).
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    /// What the file listed when this process started.
    left_behind: Vec<String>,
    entries: Mutex<Vec<String>>,
}

impl Ledger {
    pub fn load(root: &Root) -> Self {
        let path = root.resolve(mac::DIALOG_WINDOWS_FILE);
        let listed = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<LedgerFile>(&b).ok())
            .map(|f| f.windows)
            .unwrap_or_default();
        Self {
            path,
            left_behind: listed.clone(),
            entries: Mutex::new(listed),
        }
    }

    /// The windows a previous run listed.
    pub fn left_behind(&self) -> &[String] {
        &self.left_behind
    }

    /// Lists a window's command file (before the window starts).
    pub fn add(&self, file: &CommandFile) -> Result<(), UiError> {
        let mut entries = self
            .entries
            .lock()
            .expect("the ledger lock is never poisoned");
        entries.push(file.mac_path.display().to_string());
        self.save(&entries).map_err(UiError::from)
    }

    /// Takes a window off the list (once it is gone).
    pub fn remove(&self, mac_path: &Path) {
        let mut entries = self
            .entries
            .lock()
            .expect("the ledger lock is never poisoned");
        let text = mac_path.display().to_string();
        let before = entries.len();
        entries.retain(|e| *e != text);
        if entries.len() != before {
            if let Err(e) = self.save(&entries) {
                warn!(error = %e, path = %self.path.display(), "could not update the list of swiftDialog windows");
            }
        }
    }

    /// Atomic write in the root-only state directory.
    fn save(&self, entries: &[String]) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            if !dir.exists() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)?;
            }
        }
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(&LedgerFile {
            windows: entries.to_vec(),
        })?;
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_files_are_fresh_private_names_and_checked_before_each_write() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let a = CommandFile::create(&root).unwrap();
        let b = CommandFile::create(&root).unwrap();
        assert_ne!(a.mac_path(), b.mac_path());
        assert!(a.mac_path().starts_with(COMMAND_FILE_DIR));
        let real = root.resolve(a.mac_path());
        assert_eq!(
            fs::metadata(&real).unwrap().permissions().mode() & 0o777,
            0o644
        );
        a.append(&["progress: 1".into()]).unwrap();
        a.append(&["quit:".into()]).unwrap();
        assert_eq!(fs::read_to_string(&real).unwrap(), "progress: 1\nquit:\n");
        // Replaced behind our back: not written. (The old inode is kept open so the new file
        // cannot get its number.)
        let _keep = File::open(&real).unwrap();
        fs::remove_file(&real).unwrap();
        fs::write(&real, b"").unwrap();
        assert!(a.append(&["quit:".into()]).is_err());
        assert_eq!(fs::read_to_string(&real).unwrap(), "");
        a.remove();
        assert!(real.exists(), "someone else's file is not removed");
        b.remove();
        assert!(!root.resolve(b.mac_path()).exists());
    }

    #[test]
    fn the_ledger_survives_the_process_and_only_names_our_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let ledger = Ledger::load(&root);
        assert!(ledger.left_behind().is_empty());
        let a = CommandFile::create(&root).unwrap();
        let b = CommandFile::create(&root).unwrap();
        ledger.add(&a).unwrap();
        ledger.add(&b).unwrap();
        ledger.remove(b.mac_path());
        let next = Ledger::load(&root);
        assert_eq!(next.left_behind(), [a.mac_path().display().to_string()]);
        let mode = fs::metadata(root.resolve(mac::DIALOG_WINDOWS_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(CommandFile::left_behind(&root, &next.left_behind()[0]).is_some());
        assert!(CommandFile::left_behind(&root, "/etc/passwd").is_none());
        assert!(CommandFile::left_behind(&root, "/var/tmp/dialog.log").is_none());
    }
}
