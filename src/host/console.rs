//! Watching the console user without starting a process.
//!
//! On macOS the owner of `/dev/console` is the user logged in at the console: that owner is
//! what `stat -f %Su /dev/console` prints (stat(1): `%Su` is the owner's name), and JumpCloud's
//! own enrollment script reads the logged-in user from the same owner column:
//! `ACTIVE_USER=$( ls -l /dev/console | awk '{print $3}' )` (TheJumpCloud/
//! MDM-Prestage-User-Enrollment, `jumpcloud_bootstrap_template.sh`, version 3.1.8, in
//! `DEPNotifyReset` and after the Finder wait). loginwindow changes that owner at every login and
//! logout.
//!
//! So [`ConsoleWatch`] reads the file's metadata with `stat(2)` (`std::fs::metadata`, a
//! system call, no process) as often as every poll, and starts the SPEC §4 tool (`stat -f %Su
//! /dev/console`, [`Host::console_user`]) only when that metadata changed, to turn the new
//! owner into a name. Besides the owner's uid it compares the inode and the change and
//! modification times, so a console file whose owner cannot change (a simulated Mac run by a
//! user who may not `chown`) still signals a login. A change of the owner runs the tool at once;
//! a change of the times alone (on a Mac, a write to the console device) at most once per tool
//! gap, so a chatty console cannot turn the watch into a process loop. When the file cannot be
//! read at all, the tool runs once per gap: the pace of a plain poll.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;

use super::{Host, HostError};

/// What is compared between two looks at `/dev/console` (the size too: file times have the
/// kernel's coarse clock resolution, a few milliseconds, so two quick changes may share them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    uid: u32,
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            uid: meta.uid(),
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// The stamp of `path` now, `None` when it cannot be read.
    pub(crate) fn read(path: &std::path::Path) -> Option<Self> {
        std::fs::metadata(path).ok().map(|m| Self::of(&m))
    }
}

/// The host adapter's memory of its last `stat -f %Su /dev/console`: the name, and the file's
/// stamp just before that run. While the stamp is the same, the name is answered without a
/// process, to every caller (the engine, the UI choosing the employee's language).
///
/// It also remembers which UID belongs to which name, from `id -u NAME` answers (the adapter
/// runs those anyway, to find the employee's account and the setup accounts) and UID 0, which is
/// `root` on every Mac (at the login window loginwindow gives `/dev/console` back to root, and
/// `stat -f %Su` prints `root`). When the owner of `/dev/console` changes to a UID it knows,
/// that UID's name is the console user without running `stat`: a login moves the owner to the
/// user who logged in (the module documentation), and a UID names one account. A change of the
/// times alone, or an owner it does not know, still runs the tool (issue 11).
#[derive(Debug)]
pub(crate) struct ConsoleCache {
    path: PathBuf,
    last: std::sync::Mutex<Option<(Stamp, String)>>,
    names: std::sync::Mutex<std::collections::HashMap<u32, String>>,
}

/// UID 0's name on macOS.
const ROOT_UID: u32 = 0;

impl ConsoleCache {
    pub(crate) fn new(console: PathBuf) -> Self {
        Self {
            path: console,
            last: std::sync::Mutex::new(None),
            names: std::sync::Mutex::new(std::iter::once((ROOT_UID, "root".to_owned())).collect()),
        }
    }

    /// The stamp now and, when it is the one of the last run (or its owner changed to a UID
    /// whose name is known), the console user's name.
    pub(crate) fn look(&self) -> (Option<Stamp>, Option<String>) {
        let now = Stamp::read(&self.path);
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let name = match (&*last, now) {
            (Some((seen, name)), Some(now)) if *seen == now => Some(name.clone()),
            (Some((seen, _)), Some(now)) if seen.uid != now.uid => {
                let known = self
                    .names
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(&now.uid)
                    .cloned();
                if let Some(name) = &known {
                    *last = Some((now, name.clone()));
                }
                known
            }
            _ => None,
        };
        (now, name)
    }

    /// Remembers what the tool printed for the file as it was at `stamp`.
    pub(crate) fn remember(&self, stamp: Option<Stamp>, name: &str) {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *last = stamp.map(|s| (s, name.to_owned()));
    }

    /// `id -u NAME` printed `uid`.
    pub(crate) fn learn(&self, name: &str, uid: u32) {
        self.names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(uid, name.to_owned());
    }

    /// `NAME` has no account (any more): its UID may be given to another.
    pub(crate) fn unlearn(&self, name: &str) {
        self.names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|uid, n| *uid == ROOT_UID || !n.eq_ignore_ascii_case(name));
    }
}

/// The console user, known from the last run of the tool for as long as `/dev/console` is
/// unchanged.
#[derive(Debug)]
pub struct ConsoleWatch {
    path: PathBuf,
    /// The file's metadata just before the tool last ran, and the name it printed.
    seen: Option<(Option<Stamp>, String)>,
    /// When the tool last ran.
    last_run: Option<Instant>,
    runs: u64,
}

impl ConsoleWatch {
    /// Watches `console`: `/dev/console` under `--root`.
    pub fn new(console: PathBuf) -> Self {
        Self {
            path: console,
            seen: None,
            last_run: None,
            runs: 0,
        }
    }

    fn stamp(&self) -> Option<Stamp> {
        Stamp::read(&self.path)
    }

    /// How many times the tool ran (for tests).
    pub fn tool_runs(&self) -> u64 {
        self.runs
    }

    /// Forgets the name, so the next look runs the tool (after a restart of a wait whose
    /// caller must see the console as it is now, not as it was cached).
    pub fn forget(&mut self) {
        self.seen = None;
    }

    async fn read(&mut self, host: &dyn Host, stamp: Option<Stamp>) -> Result<String, HostError> {
        self.last_run = Some(Instant::now());
        self.runs += 1;
        let name = host.console_user().await?;
        self.seen = Some((stamp, name.clone()));
        Ok(name)
    }

    /// The console user now: the name last read while `/dev/console` has not changed since (no
    /// process), else the tool's answer.
    pub async fn user(&mut self, host: &dyn Host) -> Result<String, HostError> {
        let now = self.stamp();
        if let Some((Some(seen), name)) = &self.seen {
            if now == Some(*seen) {
                return Ok(name.clone());
            }
        }
        self.read(host, now).await
    }

    /// Waits until the console user may have changed (looking at the file at `pace`, no
    /// process) and returns the console user then. An owner change runs the tool at once; any
    /// other change, or a file that cannot be read, at most once per `pace.gap` (see the module
    /// documentation). The name returned may be the same as before (the times changed, not the
    /// owner's name): callers loop.
    pub async fn next(&mut self, host: &dyn Host, pace: &Pace) -> Result<String, HostError> {
        let began = Instant::now();
        loop {
            let now = self.stamp();
            let seen = self.seen.as_ref().map(|(stamp, _)| *stamp);
            let gap_passed = self.last_run.is_none_or(|t| t.elapsed() >= pace.gap);
            match (now, seen) {
                (_, None) => return self.read(host, now).await,
                (Some(n), Some(Some(s))) if n == s => {}
                (Some(n), Some(Some(s))) if n.uid != s.uid => return self.read(host, now).await,
                _ if gap_passed => return self.read(host, now).await,
                _ => {}
            }
            let poll = if began.elapsed() < pace.slow_after {
                pace.poll
            } else {
                pace.slow_poll
            };
            tokio::time::sleep(poll).await;
        }
    }
}

/// How [`ConsoleWatch::next`] looks at `/dev/console`: every `poll` for the first
/// `slow_after` of a wait (a login often follows a logout within seconds), then every
/// `slow_poll` (a login that takes minutes costs fewer wake-ups); `gap` paces the tool after a
/// change that is not the owner's.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub poll: Duration,
    pub slow_poll: Duration,
    pub slow_after: Duration,
    pub gap: Duration,
}

impl Pace {
    /// Every `poll`, for ever; `gap` between tools.
    pub fn steady(poll: Duration, gap: Duration) -> Self {
        Self {
            poll,
            slow_poll: poll,
            slow_after: Duration::ZERO,
            gap,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;

    /// A host whose only command is `stat`, answering from a shared name.
    struct Console {
        name: Mutex<String>,
        calls: AtomicU64,
    }

    #[async_trait::async_trait]
    impl Host for Console {
        async fn console_user(&self) -> Result<String, HostError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(self.name.lock().unwrap().clone())
        }
        async fn finder_running(&self) -> Result<bool, HostError> {
            unreachable!()
        }
        async fn user_id(&self, _: &str) -> Result<Option<u32>, HostError> {
            unreachable!()
        }
        async fn has_secure_token(&self, _: &str) -> Result<bool, HostError> {
            unreachable!()
        }
        async fn hide_user(&self, _: &str) -> Result<(), HostError> {
            unreachable!()
        }
        async fn show_user(&self, _: &str) -> Result<(), HostError> {
            unreachable!()
        }
        async fn delete_user(&self, _: &str) -> Result<(), HostError> {
            unreachable!()
        }
        async fn log_out(&self, _: u32) -> Result<(), HostError> {
            unreachable!()
        }
        async fn log_out_gui(&self, _: u32) -> Result<(), HostError> {
            unreachable!()
        }
        async fn system_settings_running(&self) -> Result<bool, HostError> {
            unreachable!()
        }
        async fn filevault_on(&self) -> Result<Option<bool>, HostError> {
            unreachable!()
        }
        async fn update_preboot(&self) -> Result<(), HostError> {
            unreachable!()
        }
        async fn kickstart_agent(&self) -> Result<(), HostError> {
            unreachable!()
        }
        async fn remove_daemon(&self) -> Result<(), HostError> {
            unreachable!()
        }
        async fn package_signature(
            &self,
            _: &std::path::Path,
        ) -> Result<super::super::PackageSignature, HostError> {
            unreachable!()
        }
        async fn install_package(&self, _: &std::path::Path) -> Result<(), HostError> {
            unreachable!()
        }
        async fn sync_clock(&self, _: &str) -> Result<(), HostError> {
            unreachable!()
        }
        async fn keep_awake(&self, _: u32) -> Result<super::super::Caffeinate, HostError> {
            unreachable!()
        }
        fn processes_spawned(&self) -> u64 {
            self.calls.load(Ordering::SeqCst)
        }
    }

    fn console(name: &str) -> Console {
        Console {
            name: Mutex::new(name.into()),
            calls: AtomicU64::new(0),
        }
    }

    /// Sets the console file's modification time `secs` seconds after the epoch (what a login
    /// does to the fake Mac's console besides the owner).
    fn touch(path: &std::path::Path, secs: u64) {
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    }

    #[tokio::test]
    async fn an_unchanged_console_is_answered_without_the_tool() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console");
        std::fs::write(&path, b"").unwrap();
        touch(&path, 1_000);
        let host = console("ada");
        let mut w = ConsoleWatch::new(path.clone());
        assert_eq!(w.user(&host).await.unwrap(), "ada");
        for _ in 0..10 {
            assert_eq!(w.user(&host).await.unwrap(), "ada");
        }
        assert_eq!(host.calls.load(Ordering::SeqCst), 1);
        // The file changes: the next look runs the tool again.
        *host.name.lock().unwrap() = "root".into();
        touch(&path, 2_000);
        assert_eq!(w.user(&host).await.unwrap(), "root");
        assert_eq!(host.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn next_waits_for_a_change_without_the_tool() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console");
        std::fs::write(&path, b"").unwrap();
        touch(&path, 1_000);
        let host = console("root");
        let mut w = ConsoleWatch::new(path.clone());
        assert_eq!(w.user(&host).await.unwrap(), "root");
        // Nothing changes for a while: no process.
        let waited = tokio::time::timeout(
            Duration::from_millis(300),
            w.next(
                &host,
                &Pace::steady(Duration::from_millis(10), Duration::from_secs(3600)),
            ),
        )
        .await;
        assert!(waited.is_err(), "next returned without a change");
        assert_eq!(host.calls.load(Ordering::SeqCst), 1);
        // A login: the times change (a user who may not chown cannot change the owner).
        *host.name.lock().unwrap() = "ada".into();
        touch(&path, 2_000);
        let name = w
            .next(
                &host,
                &Pace::steady(Duration::from_millis(10), Duration::ZERO),
            )
            .await
            .unwrap();
        assert_eq!(name, "ada");
        assert_eq!(host.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_missing_console_file_falls_back_to_the_tool() {
        let dir = tempfile::tempdir().unwrap();
        let host = console("ada");
        let mut w = ConsoleWatch::new(dir.path().join("no-console"));
        assert_eq!(w.user(&host).await.unwrap(), "ada");
        assert_eq!(w.user(&host).await.unwrap(), "ada");
        assert_eq!(host.calls.load(Ordering::SeqCst), 2);
    }
}
