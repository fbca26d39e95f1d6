//! The fake Mac's world state: one JSON file under the fake root that every fake tool (separate
//! processes) and the simulated JumpCloud agent (inside the simulator) read and change under an
//! exclusive `flock`, plus an append-only log of every tool call (argv).
//!
//! Layout under the root: `/.fakemac/world.json`, `/.fakemac/world.lock`,
//! `/.fakemac/calls.jsonl` (and the simulated keychain, `/.fakemac/keychain.json`). Nothing in
//! prestage itself reads these: only fakes and tests do.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::paths::Root;

pub const WORLD_DIR: &str = "/.fakemac";
pub const WORLD_FILE: &str = "/.fakemac/world.json";
pub const WORLD_LOCK: &str = "/.fakemac/world.lock";
pub const CALLS_FILE: &str = "/.fakemac/calls.jsonl";
/// The simulated System keychain ([`super::keychain::FakeKeychain`]).
pub const KEYCHAIN_FILE: &str = "/.fakemac/keychain.json";

/// A local account on the fake Mac.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FakeUser {
    pub uid: u32,
    #[serde(default)]
    pub secure_token: bool,
    #[serde(default)]
    pub hidden: bool,
    #[serde(default)]
    pub admin: bool,
    /// Created by the (simulated) JumpCloud agent rather than by the MDM.
    #[serde(default)]
    pub managed_by_jumpcloud: bool,
    /// The home folder was deleted (a deletion that was cut short, or that half-failed).
    #[serde(default)]
    pub home_deleted: bool,
}

/// What the fake `installer` of the agent package found in
/// `/var/run/JumpCloud-SecureToken-Creds.txt` (it reads and deletes the file, as JumpCloud's
/// installer does). Never the password itself: its SHA-256, so tests can check it without the
/// fake writing the secret anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "form", rename_all = "snake_case")]
pub enum CredsSeen {
    /// No file: on a real Mac the agent's Service Account utility would ask later, on screen.
    Missing,
    /// `=skip`.
    Skip { mode: u32 },
    /// `<user>;<password>`.
    Admin {
        user: String,
        password_sha256: String,
        mode: u32,
    },
    /// Anything else (the real installer's reaction is not documented).
    Unreadable { mode: u32 },
}

/// The whole fake Mac. Fields are public so tests can set up any situation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct World {
    /// What `stat -f %Su /dev/console` prints.
    pub console_user: String,
    /// Whether `pgrep -x Finder` finds Finder.
    pub finder_running: bool,
    pub users: BTreeMap<String, FakeUser>,
    /// Next UID handed out (macOS starts local accounts at 501).
    pub next_uid: u32,
    /// Users deleted by `sysadminctl -deleteUser`, in order.
    #[serde(default)]
    pub deleted_users: Vec<String>,
    /// Number of `launchctl kickstart -k system/com.jumpcloud.darwin-agent` calls.
    #[serde(default)]
    pub agent_kickstarts: u32,
    /// Whether `io.prestage.enroll` is loaded in launchd.
    #[serde(default)]
    pub daemon_loaded: bool,
    /// Package identifiers installed by `installer`.
    #[serde(default)]
    pub installed_packages: Vec<String>,
    /// Whether System Settings runs (`pgrep -x "System Settings"`).
    #[serde(default)]
    pub system_settings_running: bool,
    /// Someone allowed the JumpCloud agent Full Disk Access in System Settings.
    #[serde(default)]
    pub fda_approved: bool,
    /// What `fdesetup status` says.
    #[serde(default)]
    pub filevault_on: bool,
    /// The FileVault unlock list on the Preboot volume: the token holders when FileVault was
    /// turned on, refreshed by `diskutil apfs updatePreboot /`.
    #[serde(default)]
    pub preboot_users: Vec<String>,
    /// What the agent's installer read from the credentials file, one entry per install.
    #[serde(default)]
    pub service_account_creds: Vec<CredsSeen>,
    /// Accounts `sysadminctl -deleteUser` removed that `id -u` still finds until a time (unix
    /// ms), with their UID: the directory lag JumpCloud's 30 s wait before `id -u` allows for.
    #[serde(default)]
    pub lingering_users: BTreeMap<String, (u32, u64)>,
    /// Serial number, names and power of the simulated Mac (`ioreg`, `scutil`, `pmset`).
    #[serde(default)]
    pub machine: Machine,
    /// Extra fields the fakes keep (scripted employee behaviour, timers, …).
    #[serde(default, flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// The simulated Mac's hardware facts and names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// What `ioreg -rd1 -c IOPlatformExpertDevice` prints as `IOPlatformSerialNumber`.
    pub serial: String,
    /// The names `scutil --set` last set (a new Mac has only a ComputerName).
    pub computer_name: Option<String>,
    pub local_host_name: Option<String>,
    pub host_name: Option<String>,
    /// Every `scutil --set` that succeeded, as `KIND=NAME`.
    #[serde(default)]
    pub names_set: Vec<String>,
    /// `None`: a desktop Mac (no battery). Otherwise the level in percent.
    pub battery_percent: Option<u8>,
    /// Drawing from the battery.
    pub on_battery: bool,
    /// When (unix ms) someone plugs the charger in; `pmset` reports AC from then on.
    pub charger_at_ms: Option<u64>,
}

impl Default for Machine {
    fn default() -> Self {
        Self {
            serial: "C02XK1JHJG5J".into(),
            computer_name: Some("MacBook Air".into()),
            local_host_name: None,
            host_name: None,
            names_set: Vec::new(),
            battery_percent: Some(80),
            on_battery: false,
            charger_at_ms: None,
        }
    }
}

impl Default for World {
    fn default() -> Self {
        Self {
            console_user: "root".into(),
            finder_running: false,
            users: BTreeMap::new(),
            next_uid: 501,
            deleted_users: Vec::new(),
            agent_kickstarts: 0,
            daemon_loaded: false,
            installed_packages: Vec::new(),
            system_settings_running: false,
            fda_approved: false,
            filevault_on: false,
            preboot_users: Vec::new(),
            service_account_creds: Vec::new(),
            lingering_users: BTreeMap::new(),
            machine: Machine::default(),
            extra: BTreeMap::new(),
        }
    }
}

/// Errors of the fake world (test infrastructure: plain messages).
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: corrupt fake world: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> WorldError + '_ {
    move |source| WorldError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Holds the world's lock while alive.
struct Locked {
    _file: File,
}

fn lock(root: &Root) -> Result<Locked, WorldError> {
    let path = root.resolve(WORLD_LOCK);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| io_err(&path)(e.into()))?;
    Ok(Locked { _file: file })
}

impl World {
    /// Reads the world (a default one if none was written yet).
    pub fn load(root: &Root) -> Result<World, WorldError> {
        let _guard = lock(root)?;
        Self::read_unlocked(root)
    }

    fn read_unlocked(root: &Root) -> Result<World, WorldError> {
        let path = root.resolve(WORLD_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| WorldError::Corrupt { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(World::default()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    fn write_unlocked(&self, root: &Root) -> Result<(), WorldError> {
        let path = root.resolve(WORLD_FILE);
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(self).map_err(|source| WorldError::Corrupt {
            path: path.clone(),
            source,
        })?;
        fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        self.sync_console(root)
    }

    /// On a Mac the owner of `/dev/console` is the console user: what `stat -f %Su
    /// /dev/console` prints, and the owner column JumpCloud's own enrollment script reads
    /// (`ACTIVE_USER=$( ls -l /dev/console | awk '{print $3}' )`, TheJumpCloud/
    /// MDM-Prestage-User-Enrollment `jumpcloud_bootstrap_template.sh` 3.1.8). So here a change
    /// of the console user writes the fake console file (its content is the name, its
    /// modification time moves) and, when the fakes run as root, chowns it to that user's UID,
    /// so a watcher of `/dev/console`'s metadata sees logins as it would on a Mac, without
    /// running `stat`.
    fn sync_console(&self, root: &Root) -> Result<(), WorldError> {
        let console = root.resolve(crate::paths::mac::CONSOLE);
        let Some(dir) = console.parent() else {
            return Ok(());
        };
        if !dir.is_dir() {
            return Ok(());
        }
        let want = format!("{}\n", self.console_user);
        if fs::read(&console).ok().as_deref() != Some(want.as_bytes()) {
            fs::write(&console, want).map_err(io_err(&console))?;
            if rustix::process::geteuid().is_root() {
                let uid = self.console_uid();
                rustix::fs::chown(&console, Some(rustix::fs::Uid::from_raw(uid)), None)
                    .map_err(|e| io_err(&console)(e.into()))?;
            }
        }
        Ok(())
    }

    /// The UID owning `/dev/console`: the console user's, `root`'s 0 at the login window. The
    /// Setup Assistant user gets 248 (the UID `_mbsetupuser` has on macOS as far as we know;
    /// only that it differs from the others matters here).
    fn console_uid(&self) -> u32 {
        match self.console_user.as_str() {
            "_mbsetupuser" => 248,
            name => self.users.get(name).map_or(0, |u| u.uid),
        }
    }

    /// Applies the time-based transitions due now (a login at the login window, Setup
    /// Assistant ending) and writes the world only if they changed it: what macOS does on its
    /// own, without anyone running a tool. Does nothing on a root without a world.
    pub fn advance(root: &Root) -> Result<bool, WorldError> {
        let _guard = lock(root)?;
        if !root.resolve(WORLD_FILE).exists() {
            return Ok(false);
        }
        let mut world = Self::read_unlocked(root)?;
        let before = world.clone();
        world.tick(now_ms());
        if world == before {
            return Ok(false);
        }
        world.write_unlocked(root)?;
        Ok(true)
    }

    /// Writes the world (replacing whatever was there).
    pub fn save(&self, root: &Root) -> Result<(), WorldError> {
        let _guard = lock(root)?;
        self.write_unlocked(root)
    }

    /// Reads, changes and writes the world under the lock; returns what `f` returns.
    pub fn update<T>(root: &Root, f: impl FnOnce(&mut World) -> T) -> Result<T, WorldError> {
        let _guard = lock(root)?;
        let mut world = Self::read_unlocked(root)?;
        let out = f(&mut world);
        world.write_unlocked(root)?;
        Ok(out)
    }

    /// Adds a local account with the next UID; returns the UID.
    pub fn add_user(&mut self, name: &str, secure_token: bool, admin: bool) -> u32 {
        let uid = self.next_uid;
        self.next_uid += 1;
        self.users.insert(
            name.to_owned(),
            FakeUser {
                uid,
                secure_token,
                hidden: false,
                admin,
                managed_by_jumpcloud: false,
                home_deleted: false,
            },
        );
        uid
    }
}

/// One recorded tool call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// The macOS path of the tool, e.g. `/usr/sbin/sysadminctl`.
    pub tool: String,
    pub args: Vec<String>,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// Appends a call to `calls.jsonl` (one JSON object a line).
pub fn record_call(root: &Root, call: &Call) -> Result<(), WorldError> {
    let path = root.resolve(CALLS_FILE);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let mut line = serde_json::to_vec(call).map_err(|source| WorldError::Corrupt {
        path: path.clone(),
        source,
    })?;
    line.push(b'\n');
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io_err(&path))?;
    file.write_all(&line).map_err(io_err(&path))
}

/// Every call recorded so far.
pub fn calls(root: &Root) -> Result<Vec<Call>, WorldError> {
    let path = root.resolve(CALLS_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&path)(e)),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).map_err(|source| WorldError::Corrupt {
                path: path.clone(),
                source,
            })
        })
        .collect()
}

/// Package identifier of the JumpCloud agent package in the fake world: the fake `installer`
/// records it in [`World::installed_packages`]; the simulated agent (`crate::sim`) starts when it
/// appears.
pub const AGENT_PACKAGE_ID: &str = "com.jumpcloud.pkg.JumpCloudAgent";
/// Package identifier of swiftDialog's package.
pub const DIALOG_PACKAGE_ID: &str = "au.csiro.dialogcli";

/// A fake `.pkg`: the file holds this JSON instead of a xar archive. The fake `pkgutil` reports
/// `signer` as the leaf of the certificate chain (unsigned when `None`); the fake `installer`
/// installs `identifier`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FakePackage {
    pub identifier: String,
    pub version: String,
    /// e.g. `Developer ID Installer: JUMPCLOUD INC. (N985MXSH85)`.
    pub signer: Option<String>,
}

impl FakePackage {
    /// The JumpCloud agent package as JumpCloud ships it (REFERENCE: pkgutil's chain).
    pub fn jumpcloud_agent() -> Self {
        Self {
            identifier: AGENT_PACKAGE_ID.into(),
            version: "3.2.1".into(),
            signer: Some("Developer ID Installer: JUMPCLOUD INC. (N985MXSH85)".into()),
        }
    }

    /// Writes the package file at `path` (a real path).
    pub fn write(&self, path: &Path) -> Result<(), WorldError> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let bytes = serde_json::to_vec(self).map_err(|source| WorldError::Corrupt {
            path: path.to_owned(),
            source,
        })?;
        fs::write(path, bytes).map_err(io_err(path))
    }

    /// Reads a package file; `None` when it is not a fake package (e.g. junk or truncated).
    pub fn read(path: &Path) -> Result<Option<Self>, WorldError> {
        let bytes = fs::read(path).map_err(io_err(path))?;
        Ok(serde_json::from_slice(&bytes).ok())
    }
}

/// Key of [`Behaviour`] in [`World::extra`].
pub const BEHAVIOUR_KEY: &str = "behaviour";

/// Scripted behaviour of the fake Mac, kept in [`World::extra`] under [`BEHAVIOUR_KEY`] so the
/// world file stays one document. Time-based changes are applied lazily by [`World::tick`],
/// which every fake tool calls (under the lock) before it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Behaviour {
    /// `launchctl bootout system/io.prestage.enroll` sends SIGTERM to its caller, as the real
    /// one does to the daemon being removed (so tests prove prestage does it last).
    pub bootout_kills_caller: bool,
    /// macOS gives an account a Secure Token at its first login when some account already holds
    /// one.
    pub grant_secure_token_at_login: bool,
    /// Setup Assistant: while the console user is `_mbsetupuser`, at this time (unix ms) the
    /// setup account `setup_account` logs in and Finder starts.
    pub setup_done_at_ms: Option<u64>,
    pub setup_account: Option<String>,
    /// The employee: this long after the console user was logged out, `account` logs in at the
    /// login window (once the account exists).
    pub employee_account: Option<String>,
    pub employee_login_delay_ms: u64,
    /// A Mac where the employee never logs in.
    pub employee_never_logs_in: bool,
    /// When the console user was last logged out (set by `launchctl bootout user/UID`).
    pub logged_out_at_ms: Option<u64>,
    /// When set, `sntp` fails as if the server could not be reached.
    pub sntp_unreachable: bool,
    /// When set, `installer` fails with this `installer: Error - ...` text.
    pub install_error: Option<String>,
    /// How long `installer` takes to install the JumpCloud agent's package (milliseconds).
    pub install_delay_ms: u64,
    /// When set, `launchctl bootstrap system` of prestage's daemon fails with launchd's
    /// `Bootstrap failed: 5: Input/output error`, as right after a bootout of the old job.
    pub bootstrap_fails: bool,
    /// The next `launchctl bootout user/UID` returns 0 and leaves the session up (munki issue
    /// 923: `bootout gui/` and `user/` "did not seem to" log the user out on 10.13.4); cleared
    /// once used.
    pub logout_ignored_once: bool,
    /// Every `launchctl bootout user/UID` and `gui/UID` returns 0 and leaves the session up
    /// (the same munki report, for both domains).
    pub logout_never_works: bool,
    /// How long `sysadminctl -deleteUser` takes. Killed before it is done, the account is left
    /// half-deleted (see `delete_half_done`). 0: at once.
    pub delete_duration_ms: u64,
    /// Every deletion half-fails as microsoft/shell-intune-samples issue 33 reports it for a
    /// `sysadminctl -deleteUser` run from an MDM agent's context: the admin demoted to
    /// standard, the home folder deleted, the record kept, `### Error:-14120 ... DSRecord.m`.
    pub delete_fails_partially: bool,
    /// How long `id -u` still finds a deleted account (ms).
    pub directory_lag_ms: u64,
    /// No PPPC profile grants the JumpCloud agent Full Disk Access: its installer opens System
    /// Settings and waits for someone to allow it, for `fda_prompt_timeout_ms`, then fails
    /// (TheJumpCloud/support `install_agent_and_serviceaccount.sh`: "System Preferences will
    /// open, and Full Disk Access will need to be manually allowed within 5 minutes to
    /// successfully complete the installation").
    pub agent_needs_fda_approval: bool,
    pub fda_prompt_timeout_ms: u64,
    /// The agent's installer leaves the credentials file behind (to prove prestage removes it).
    pub installer_keeps_creds_file: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            bootout_kills_caller: true,
            grant_secure_token_at_login: true,
            setup_done_at_ms: None,
            setup_account: None,
            employee_account: None,
            employee_login_delay_ms: 0,
            employee_never_logs_in: false,
            logged_out_at_ms: None,
            sntp_unreachable: false,
            install_error: None,
            install_delay_ms: 0,
            bootstrap_fails: false,
            logout_ignored_once: false,
            logout_never_works: false,
            delete_duration_ms: 0,
            delete_fails_partially: false,
            directory_lag_ms: 0,
            agent_needs_fda_approval: false,
            fda_prompt_timeout_ms: 5 * 60 * 1000,
            installer_keeps_creds_file: false,
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl World {
    /// The scripted behaviour (defaults when none was set or it does not parse).
    pub fn behaviour(&self) -> Behaviour {
        self.extra
            .get(BEHAVIOUR_KEY)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }

    /// Replaces the scripted behaviour.
    pub fn set_behaviour(&mut self, behaviour: &Behaviour) {
        let value = serde_json::to_value(behaviour).expect("Behaviour serialises to JSON");
        self.extra.insert(BEHAVIOUR_KEY.to_owned(), value);
    }

    /// Changes the scripted behaviour in place.
    pub fn edit_behaviour(&mut self, f: impl FnOnce(&mut Behaviour)) {
        let mut b = self.behaviour();
        f(&mut b);
        self.set_behaviour(&b);
    }

    /// A Mac in Setup Assistant whose setup account `account` (created by the MDM, holding the
    /// first Secure Token) logs in after `delay_ms`.
    pub fn in_setup_assistant(&mut self, account: &str, delay_ms: u64) {
        if !self.users.contains_key(account) {
            self.add_user(account, true, true);
        }
        self.console_user = "_mbsetupuser".into();
        self.finder_running = false;
        let at = now_ms().saturating_add(delay_ms);
        self.edit_behaviour(|b| {
            b.setup_done_at_ms = Some(at);
            b.setup_account = Some(account.to_owned());
        });
    }

    /// The employee logs in as `account` `delay_ms` after the setup account is logged out.
    pub fn employee_logs_in(&mut self, account: &str, delay_ms: u64) {
        self.edit_behaviour(|b| {
            b.employee_account = Some(account.to_owned());
            b.employee_login_delay_ms = delay_ms;
            b.employee_never_logs_in = false;
        });
    }

    /// Applies the time-based transitions due at `now_ms`.
    pub fn tick(&mut self, now_ms: u64) {
        self.lingering_users.retain(|_, (_, until)| *until > now_ms);
        let b = self.behaviour();
        if self.console_user == "_mbsetupuser" {
            if let (Some(at), Some(account)) = (b.setup_done_at_ms, &b.setup_account) {
                if now_ms >= at && self.users.contains_key(account) {
                    self.console_user.clone_from(account);
                    self.finder_running = true;
                }
            }
        }
        if self.console_user == "root" && !b.employee_never_logs_in {
            if let (Some(out_at), Some(account)) = (b.logged_out_at_ms, &b.employee_account) {
                if now_ms >= out_at.saturating_add(b.employee_login_delay_ms) {
                    let someone_has_token = self
                        .users
                        .iter()
                        .any(|(name, u)| name != account && u.secure_token);
                    if let Some(user) = self.users.get_mut(account) {
                        if b.grant_secure_token_at_login && someone_has_token {
                            user.secure_token = true;
                        }
                        self.console_user.clone_from(account);
                        self.finder_running = true;
                    }
                }
            }
        }
    }

    /// Turns FileVault on now: the unlock list is the Secure Token holders of this moment
    /// (enabling FileVault adds every token holder; later ones need `updatePreboot`).
    pub fn turn_filevault_on(&mut self) {
        self.filevault_on = true;
        self.preboot_users = self
            .users
            .iter()
            .filter(|(_, u)| u.secure_token)
            .map(|(n, _)| n.clone())
            .collect();
    }

    /// Logs the console user out (what `launchctl bootout user/UID` does to the GUI session).
    pub fn log_out_console(&mut self, now_ms: u64) {
        self.console_user = "root".into();
        self.finder_running = false;
        self.edit_behaviour(|b| b.logged_out_at_ms = Some(now_ms));
    }
}
