//! The enrollment's persisted progress: one JSON state file written atomically plus an
//! append-only journal of step transitions, both in `/var/db/prestage/` (root only, 0700).
//!
//! Atomic write: temp file in the same directory, `sync_all`, rename over the old file, fsync the
//! directory. A state file that cannot be read (corrupt, or written by an unknown version) is
//! moved aside with a log line and never silently reset. No secret is ever stored here: the
//! API key, the employee's secret and their password stay in memory.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::phases::{
    AgentProgress, BindPhase, CleanupPlan, HandoverProgress, IdentityProgress, NamingProgress,
    OrgFacts, PasswordProgress, RemovalProgress, TakeoverProgress,
};
use super::steps::{StepInfo, STEPS};
use crate::paths::{mac, Root};

/// Version of the state file format. Version 1 (the flat layout of the first releases) is
/// migrated on load ([`super::state_v1`]); a file with another version is moved aside.
pub const STATE_VERSION: u32 = 2;

/// The steps of an enrollment, in order (SPEC; issue "the enrollment engine"); everything
/// about each besides its code is its row in [`STEPS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Preflight,
    WaitDesktop,
    Welcome,
    InstallAgent,
    WaitAgent,
    JoinGroup,
    ReadOrg,
    Identify,
    Password,
    Bind,
    WaitAccount,
    Handover,
    WaitLogin,
    RemoveSetup,
    Cleanup,
    Done,
}

impl Step {
    /// Every step, in order (from [`STEPS`]).
    pub const ALL: [Step; STEPS.len()] = {
        let mut all = [Step::Done; STEPS.len()];
        let mut i = 0;
        while i < STEPS.len() {
            all[i] = STEPS[i].step;
            i += 1;
        }
        all
    };

    /// The step's row in [`STEPS`].
    pub fn info(self) -> &'static StepInfo {
        // STEPS is in the order of the enum (checked at compile time in `steps`).
        &STEPS[self as usize]
    }

    /// 1-based number of the step, its position in [`STEPS`] (Done is the last, 16).
    pub fn number(self) -> usize {
        self as usize + 1
    }

    /// The step after this one.
    #[must_use]
    pub fn next(self) -> Step {
        Step::ALL.get(self.number()).copied().unwrap_or(Step::Done)
    }

    /// How long transient failures of this step are retried before the runner stops with a
    /// reference code (wall time since the step first began, restarts included; launchd's next
    /// start tries once more, so a step that heals later still finishes). `None` for the waits
    /// for a person (the desktop, the identity and password answers, the employee's login),
    /// which keep waiting, cheaply.
    pub fn patience(self) -> Option<std::time::Duration> {
        const MINUTE: u64 = 60;
        self.info()
            .patience_minutes
            .map(|minutes| std::time::Duration::from_secs(minutes * MINUTE))
    }

    /// What to look at when this step ran out of patience.
    pub fn patience_hint(self) -> &'static str {
        self.info().patience_hint
    }

    /// The snake_case name used in logs, the journal and `status`.
    pub fn name(self) -> &'static str {
        self.info().name
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Timing of one step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub started_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u64>,
    #[serde(default)]
    pub attempts: u32,
}

/// The last error, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRecord {
    pub step: Step,
    pub message: String,
    /// Short "contact IT" code shown to the employee (permanent errors only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub permanent: bool,
    pub at_ms: u64,
}

/// The employee as found in the directory (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserFacts {
    pub id: String,
    pub local_name: String,
    /// `activated` was false when found: a pending user with no password.
    pub pending: bool,
    pub staged: bool,
    /// `password_date` when found, to tell later whether a password set took effect.
    #[serde(default)]
    pub password_date: Option<String>,
    /// The JumpCloud `username` (may differ from `local_name`): a new password must not
    /// contain it when the tenant says so. Empty in states saved before it was kept.
    #[serde(default)]
    pub username: String,
}

/// Progress of the password step. The password itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum PasswordPhase {
    /// Not decided yet.
    #[default]
    Unknown,
    /// The user needs no new password.
    NotNeeded,
    /// The `PUT` is about to be or was sent, and its result is not known. `password_date` as read
    /// before the send lets a restart tell whether it took effect.
    Sending {
        before_password_date: Option<String>,
        before_activated: bool,
    },
    /// JumpCloud confirmed the password.
    Set,
}

/// Everything the engine must remember across restarts. The top level is what `status` and
/// the runner read; the facts learnt along the way are grouped by phase ([`super::phases`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
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
    /// Secrets, LaunchDaemon and local configuration removed; `launchctl bootout` comes next.
    #[serde(default)]
    pub finished: bool,

    // Facts learnt along the way, by phase.
    #[serde(default)]
    pub agent: AgentProgress,
    #[serde(default)]
    pub org: OrgFacts,
    #[serde(default)]
    pub identity: IdentityProgress,
    #[serde(default)]
    pub password: PasswordProgress,
    #[serde(default)]
    pub bind: BindPhase,
    #[serde(default)]
    pub takeover: TakeoverProgress,
    #[serde(default)]
    pub handover: HandoverProgress,
    #[serde(default)]
    pub removal: RemovalProgress,
    /// Decided at the cleanup step; `None` before.
    #[serde(default)]
    pub cleanup: Option<CleanupPlan>,
    #[serde(default)]
    pub naming: NamingProgress,
}

impl State {
    /// A fresh state at the first step.
    pub fn new(now_ms: u64) -> Self {
        let run_id = format!("{:08x}", rand::random::<u32>());
        Self {
            version: STATE_VERSION,
            run_id,
            step: Step::Preflight,
            step_started_ms: now_ms,
            attempts: 0,
            steps: BTreeMap::new(),
            last_error: None,
            runs: 0,
            finished: false,
            agent: AgentProgress::default(),
            org: OrgFacts::default(),
            identity: IdentityProgress::default(),
            password: PasswordProgress::default(),
            bind: BindPhase::default(),
            takeover: TakeoverProgress::default(),
            handover: HandoverProgress::default(),
            removal: RemovalProgress::default(),
            cleanup: None,
            naming: NamingProgress::default(),
        }
    }
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub at_ms: u64,
    pub step: Step,
    /// `begin`, `effect`, `done`, `retry`, `failed`, `restart`, …
    pub event: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Errors of the state store. They name the file and say what to do.
#[derive(Debug, Error)]
pub enum StateError {
    #[error("{path}: {source}; check that prestage runs as root and the disk is writable")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot encode the state: {source}")]
    Encode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What [`Store::load`] found.
#[derive(Debug)]
pub enum Loaded {
    /// No state yet: a new enrollment.
    Fresh,
    Resumed(Box<State>),
    /// The state file was unreadable and was moved to `moved_to`.
    MovedAside {
        moved_to: PathBuf,
        reason: String,
    },
}

/// The state directory: state file, journal and completion receipt.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    root: Root,
}

impl Store {
    pub fn new(root: &Root) -> Self {
        Self {
            dir: root.resolve(mac::STATE_DIR),
            root: root.clone(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn state_path(&self) -> PathBuf {
        self.root.resolve(mac::STATE_FILE)
    }

    pub fn journal_path(&self) -> PathBuf {
        self.root.resolve(mac::JOURNAL_FILE)
    }

    pub fn receipt_path(&self) -> PathBuf {
        self.root.resolve(mac::RECEIPT_FILE)
    }

    /// `run.lock`: held by the one `prestage run` of this Mac.
    pub fn lock_path(&self) -> PathBuf {
        self.root.resolve(mac::LOCK_FILE)
    }

    /// Creates the directory (0700) and tightens its mode if it already exists.
    pub fn ensure_dir(&self) -> Result<(), StateError> {
        if !self.dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(io(&self.dir))?;
        }
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700)).map_err(io(&self.dir))
    }

    /// Reads the state. A corrupt or unknown-version file is moved aside, never reset silently.
    pub fn load(&self) -> Result<Loaded, StateError> {
        let path = self.state_path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::Fresh),
            Err(e) => return Err(io(&path)(e)),
        };
        let reason = match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Err(e) => format!("not valid JSON ({e})"),
            Ok(value) => {
                let version = value.get("version").and_then(serde_json::Value::as_u64);
                if version == Some(u64::from(STATE_VERSION)) {
                    match serde_json::from_value::<State>(value) {
                        Ok(state) => return Ok(Loaded::Resumed(Box::new(state))),
                        Err(e) => format!("unreadable state ({e})"),
                    }
                } else if version == Some(u64::from(super::state_v1::VERSION)) {
                    // A Mac mid-enrollment that got a new package: carry on from the old file
                    // (saved in the new format at the next change).
                    match serde_json::from_value::<super::state_v1::StateV1>(value) {
                        Ok(old) => return Ok(Loaded::Resumed(Box::new(old.into()))),
                        Err(e) => format!("unreadable state of format version 1 ({e})"),
                    }
                } else {
                    format!(
                        "written by an unknown format version {}",
                        version.map_or_else(|| "(none)".to_owned(), |v| v.to_string())
                    )
                }
            }
        };
        let moved_to = PathBuf::from(format!("{}.bad-{}", path.display(), super::clock::now_ms()));
        fs::rename(&path, &moved_to).map_err(io(&path))?;
        Ok(Loaded::MovedAside { moved_to, reason })
    }

    /// Writes the state atomically: temp file, `sync_all`, rename, fsync of the directory.
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let path = self.state_path();
        let bytes = serde_json::to_vec_pretty(state).map_err(|source| StateError::Encode {
            path: path.clone(),
            source,
        })?;
        write_atomically(&path, &bytes, 0o600)
    }

    /// Appends one line to the journal and syncs it.
    pub fn journal(&self, entry: &JournalEntry) -> Result<(), StateError> {
        let path = self.journal_path();
        let mut line = serde_json::to_vec(entry).map_err(|source| StateError::Encode {
            path: path.clone(),
            source,
        })?;
        line.push(b'\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        file.write_all(&line).map_err(io(&path))?;
        file.sync_data().map_err(io(&path))
    }

    /// Every journal entry; a torn last line (crash mid-write) is skipped.
    pub fn read_journal(&self) -> Result<Vec<JournalEntry>, StateError> {
        let path = self.journal_path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&path)(e)),
        };
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    /// Forgets progress: moves the state and journal aside (kept for the record).
    pub fn reset(&self) -> Result<Vec<PathBuf>, StateError> {
        let stamp = super::clock::now_ms();
        let mut moved = Vec::new();
        // The webhook outbox too: a new enrollment tells the receivers again.
        let outbox = self.dir.join(super::webhooks::OUTBOX_FILE);
        for path in [
            self.state_path(),
            self.journal_path(),
            self.receipt_path(),
            outbox,
        ] {
            if path.exists() {
                let to = PathBuf::from(format!("{}.reset-{stamp}", path.display()));
                fs::rename(&path, &to).map_err(io(&path))?;
                moved.push(to);
            }
        }
        Ok(moved)
    }
}

/// Writes `bytes` to `path` atomically with `mode`.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("/"));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        crate::paths::file_name(path),
        std::process::id()
    ));
    {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io(&tmp))?;
        file.write_all(bytes).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io(path))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(&Root::new(dir.path()));
        store.ensure_dir().unwrap();
        (dir, store)
    }

    #[test]
    fn round_trips_and_is_private() {
        let (_d, store) = store();
        assert!(matches!(store.load().unwrap(), Loaded::Fresh));
        let mut state = State::new(1);
        state.step = Step::Bind;
        state.identity.user = Some(UserFacts {
            id: "a".repeat(24),
            local_name: "ada".into(),
            pending: true,
            staged: false,
            password_date: None,
            username: "ada.l".into(),
        });
        store.save(&state).unwrap();
        match store.load().unwrap() {
            Loaded::Resumed(back) => assert_eq!(*back, state),
            other => panic!("expected resumed, got {other:?}"),
        }
        let mode = fs::metadata(store.state_path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = fs::metadata(store.dir()).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }

    #[test]
    fn corrupt_state_is_moved_aside_not_reset() {
        let (_d, store) = store();
        fs::write(store.state_path(), b"{\"version\":1, trunc").unwrap();
        match store.load().unwrap() {
            Loaded::MovedAside { moved_to, reason } => {
                assert!(moved_to.exists());
                assert!(reason.contains("JSON"), "{reason}");
                assert_eq!(fs::read(&moved_to).unwrap(), b"{\"version\":1, trunc");
            }
            other => panic!("expected moved aside, got {other:?}"),
        }
        assert!(!store.state_path().exists());
    }

    #[test]
    fn unknown_version_is_moved_aside() {
        let (_d, store) = store();
        fs::write(store.state_path(), b"{\"version\":99}").unwrap();
        match store.load().unwrap() {
            Loaded::MovedAside { reason, .. } => assert!(reason.contains("99"), "{reason}"),
            other => panic!("expected moved aside, got {other:?}"),
        }
    }

    #[test]
    fn journal_skips_torn_last_line() {
        let (_d, store) = store();
        let entry = JournalEntry {
            at_ms: 5,
            step: Step::Bind,
            event: "begin".into(),
            detail: String::new(),
        };
        store.journal(&entry).unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(store.journal_path())
            .unwrap();
        f.write_all(b"{\"at_ms\":6,\"st").unwrap();
        assert_eq!(store.read_journal().unwrap(), vec![entry]);
    }

    #[test]
    fn steps_are_ordered_and_numbered() {
        assert_eq!(Step::Preflight.number(), 1);
        assert_eq!(Step::Cleanup.number(), super::super::steps::TOTAL);
        assert_eq!(Step::Done.number(), Step::ALL.len());
        assert_eq!(Step::Bind.next(), Step::WaitAccount);
        assert_eq!(Step::Done.next(), Step::Done);
        let names: std::collections::HashSet<_> = Step::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names.len(), Step::ALL.len());
    }
}
