//! The fake Mac's world state: one JSON file under the fake root that every fake tool (separate
//! processes) and the simulated JumpCloud agent (inside the simulator) read and change under an
//! exclusive `flock`, plus an append-only log of every tool call (argv).
//!
//! Layout under the root: `/.fakemac/world.json`, `/.fakemac/world.lock`,
//! `/.fakemac/calls.jsonl`. Nothing in prestage itself reads these: only fakes and tests do.

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
    /// Extra fields the fakes keep (scripted employee behaviour, timers, …).
    #[serde(default, flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
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
        fs::rename(&tmp, &path).map_err(io_err(&path))
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
    /// e.g. `Developer ID Installer: JumpCloud Inc. (N985MXSH85)`.
    pub signer: Option<String>,
}

impl FakePackage {
    /// The JumpCloud agent package as JumpCloud ships it (REFERENCE: pkgutil's chain).
    pub fn jumpcloud_agent() -> Self {
        Self {
            identifier: AGENT_PACKAGE_ID.into(),
            version: "3.2.1".into(),
            signer: Some("Developer ID Installer: JumpCloud Inc. (N985MXSH85)".into()),
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
