//! The JumpCloud agent's files under `--root`: its configuration (`/opt/jc/jcagent.conf`), its
//! system key (`/opt/jc/client.key`), the bootstrap file we write before installing it
//! (`/opt/jc/agentBootstrap.json`), and its log (`/var/log/jcagent.log`).
//!
//! Waiting on the agent starts no process: the engine polls every `Timing::file_poll`, reading
//! `jcagent.conf` until the agent registered and, while it waits for the account, only the log
//! bytes added since last time ([`LogFollower`]). [`wait_for_change`] (a file's metadata looked
//! at every 250 ms) is for waits on one file; the engine's own waits do not use it.

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;
use url::Url;

use crate::paths::{mac, Root};

/// The line the agent logs when it has finished creating or taking over local accounts
/// (REFERENCE.md: "account takeover finishes with `User updates complete`").
pub const TAKEOVER_DONE: &str = "User updates complete";

/// The line the agent logs when it starts applying user changes (REFERENCE.md; JumpCloud's
/// bash script 3.1.8 greps for it in its last check). The wait for the account falls back on
/// it, since no public excerpt of a current agent's log confirms either wording.
pub const TAKEOVER_PROCESSING: &str = "Processing user updates";

/// What `/var/run/JumpCloud-SecureToken-Creds.txt` says to the agent's installer.
#[derive(Debug)]
pub enum ServiceAccountCreds<'a> {
    /// `<admin>;<password>` of a Secure Token admin (JumpCloud's prestage `postinstall.sh` uses
    /// the enrollment user): the installer creates the agent's service account with it.
    Admin {
        user: &'a str,
        password: &'a SecretString,
    },
    /// `=skip`: a silent install, no service account now.
    Skip,
}

/// How often [`wait_for_change`] looks at a file: well under the 1 s the engine promises.
pub const CHANGE_POLL: Duration = Duration::from_millis(250);

/// At most this many bytes are read from the log per call (the rest on the next call).
const MAX_READ: u64 = 4 * 1024 * 1024;

/// Errors reading or writing the agent's files.
#[derive(Debug, Error)]
pub enum AgentError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not valid JSON ({source}); reinstall the JumpCloud agent or remove the file so \
         the agent writes it again"
    )]
    Malformed {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{path} is empty; the JumpCloud agent did not register this Mac (check its connect key)"
    )]
    EmptyKey { path: PathBuf },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AgentError + '_ {
    move |source| AgentError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Parsed `/opt/jc/jcagent.conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConf {
    pub system_key: String,
    pub org_id: Option<String>,
}

/// Reads and writes the agent's files under a root.
#[derive(Debug, Clone)]
pub struct AgentFiles {
    root: Root,
}

impl AgentFiles {
    pub fn new(root: Root) -> Self {
        Self { root }
    }

    /// The agent's configuration once it has registered this Mac.
    ///
    /// `Ok(None)` while it does not exist yet, is still being written (a JSON prefix), or has no
    /// `systemKey` yet. A complete file that is not JSON is an error.
    pub fn read_conf(&self) -> Result<Option<AgentConf>, AgentError> {
        let path = self.root.resolve(mac::JC_AGENT_CONF);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        parse_conf(&bytes).map_err(|source| AgentError::Malformed { path, source })
    }

    /// The PEM private key the agent generated (`/opt/jc/client.key`), for system-context calls.
    pub fn read_client_key(&self) -> Result<SecretString, AgentError> {
        let path = self.root.resolve(mac::JC_CLIENT_KEY);
        let text = fs::read_to_string(&path).map_err(io(&path))?;
        if text.trim().is_empty() {
            return Err(AgentError::EmptyKey { path });
        }
        Ok(SecretString::from(text))
    }

    /// Writes `/opt/jc/agentBootstrap.json` atomically (temporary file, then rename) with mode
    /// 0600, since it holds the connect key. `body` is the whole file
    /// ([`crate::config::ConnectKey::bootstrap_json`]): a tenant key's payload byte for byte.
    pub fn write_bootstrap(&self, body: &SecretString) -> Result<(), AgentError> {
        let path = self.root.resolve(mac::JC_BOOTSTRAP);
        let dir = path
            .parent()
            .expect("JC_BOOTSTRAP is an absolute path with a parent")
            .to_owned();
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let tmp = dir.join(format!(".agentBootstrap.json.{}.tmp", std::process::id()));
        write_private(&tmp, &path, |file| {
            file.write_all(body.expose_secret().as_bytes())
        })
    }

    /// Writes `/var/run/JumpCloud-SecureToken-Creds.txt` for the agent's installer, as
    /// JumpCloud's own installers do right before `installer` (TheJumpCloud/support
    /// `install_agent_and_serviceaccount.sh`: `$USER;$PASSWORD` or `=skip`, each a heredoc line
    /// ending in a newline). Mode 0600 (owned by root, as prestage runs), written to a new
    /// temporary file opened with `O_NOFOLLOW` and renamed over the name, so a link planted at
    /// either path is never followed; the password is in no argv, log or other file.
    pub fn write_service_account_creds(
        &self,
        creds: &ServiceAccountCreds<'_>,
    ) -> Result<(), AgentError> {
        let path = self.root.resolve(mac::JC_SECURETOKEN_CREDS);
        let dir = path
            .parent()
            .expect("JC_SECURETOKEN_CREDS is an absolute path with a parent")
            .to_owned();
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        remove_stale_creds_tmp(&dir);
        let tmp = dir.join(format!("{CREDS_TMP_PREFIX}{}.tmp", std::process::id()));
        write_private(&tmp, &path, |file| match creds {
            ServiceAccountCreds::Admin { user, password } => {
                // The name is a checked short name (no `;`, no line break); the password
                // goes from the secret straight into the file.
                file.write_all(user.as_bytes())?;
                file.write_all(b";")?;
                file.write_all(password.expose_secret().as_bytes())?;
                file.write_all(b"\n")
            }
            ServiceAccountCreds::Skip => file.write_all(b"=skip\n"),
        })
    }

    /// Removes the credentials file if the installer left it (its installer deletes it:
    /// "The file JumpCloud-SecureToken-Creds.txt IS DELETED during the agent install process",
    /// same script). `true` when there was one to remove.
    pub fn remove_service_account_creds(&self) -> Result<bool, AgentError> {
        let path = self.root.resolve(mac::JC_SECURETOKEN_CREDS);
        // A run killed between writing the temporary file and renaming it left the password
        // in `.JumpCloud-SecureToken-Creds.<pid>.tmp`; a later run has another pid.
        if let Some(dir) = path.parent() {
            remove_stale_creds_tmp(dir);
        }
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// A follower of `/var/log/jcagent.log` from byte `offset` (0 = the beginning; persist
    /// [`LogFollower::offset`] to resume after a restart).
    pub fn follow_log(&self, offset: u64) -> LogFollower {
        LogFollower::from_offset(self.root.resolve(mac::JC_AGENT_LOG), offset)
    }

    /// When `/var/log/jcagent.log` last changed (its modification time), if it exists.
    pub fn log_last_written(&self) -> Option<SystemTime> {
        fs::metadata(self.root.resolve(mac::JC_AGENT_LOG))
            .and_then(|m| m.modified())
            .ok()
    }
}

/// The temporary name the credentials file is written under (then `<pid>.tmp`).
const CREDS_TMP_PREFIX: &str = ".JumpCloud-SecureToken-Creds.";

/// Removes temporary credentials files a run killed between writing and renaming left behind
/// (they hold the setup account's password, and the next run has another pid). Best effort.
/// Writes a file that holds a secret: `write` writes into a new temporary file `tmp` (mode
/// 0600, `O_NOFOLLOW`, created exclusively, so a link planted there is never followed), which
/// is synced and renamed over `path`; on failure the temporary file is removed.
fn write_private(
    tmp: &Path,
    path: &Path,
    write: impl FnOnce(&mut fs::File) -> std::io::Result<()>,
) -> Result<(), AgentError> {
    let _ = fs::remove_file(tmp);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(
                i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits())
                    .expect("O_NOFOLLOW fits in a C int"),
            )
            .open(tmp)?;
        write(&mut file)?;
        file.sync_all()?;
        fs::rename(tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(tmp);
        return Err(io(path)(e));
    }
    Ok(())
}

fn remove_stale_creds_tmp(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(CREDS_TMP_PREFIX) && name.ends_with(".tmp") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Parses jcagent.conf's bytes: `Ok(None)` for an incomplete file or no `systemKey`.
fn parse_conf(bytes: &[u8]) -> Result<Option<AgentConf>, serde_json::Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        // A prefix of a JSON document: the agent is still writing it.
        Err(e) if e.is_eof() => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(system_key) = value
        .get("systemKey")
        .and_then(serde_json::Value::as_str)
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric()))
    else {
        return Ok(None);
    };
    let ldap_domain = value
        .get("ldap_domain")
        .or_else(|| value.get("userMgmt").and_then(|u| u.get("ldap_domain")))
        .and_then(serde_json::Value::as_str);
    Ok(Some(AgentConf {
        system_key: system_key.to_owned(),
        org_id: ldap_domain.and_then(org_from_ldap_domain),
    }))
}

/// The org ID in `ldap_domain` = `<orgId>.jumpcloud.com` (REFERENCE.md, karlrink/jumpcloud
/// README sample): the leading label when it is 24 hex digits.
fn org_from_ldap_domain(domain: &str) -> Option<String> {
    let label = domain.trim().split('.').next()?;
    (label.len() == 24 && label.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| label.to_ascii_lowercase())
}

/// The agent's kickstart URLs for the region of `api_base`: EU tenants
/// (`console.eu.jumpcloud.com`) use `kickstart.eu.jumpcloud.com` (JumpCloud's EU install
/// command fetches `https://kickstart.eu.jumpcloud.com/Kickstart`), everyone else the US hosts
/// the bash script writes into agentBootstrap.json.
pub fn kickstart_urls(api_base: &Url) -> (String, String) {
    let eu = api_base.host_str().is_some_and(|h| {
        h.eq_ignore_ascii_case("eu.jumpcloud.com") || h.ends_with(".eu.jumpcloud.com")
    });
    if eu {
        (
            "https://kickstart.eu.jumpcloud.com:443".to_owned(),
            "https://private-kickstart.eu.jumpcloud.com:443".to_owned(),
        )
    } else {
        (
            "https://kickstart.jumpcloud.com:443".to_owned(),
            "https://private-kickstart.jumpcloud.com:443".to_owned(),
        )
    }
}

/// Follows a growing log file by byte offset.
///
/// Only complete lines are returned, and [`LogFollower::offset`] is the end of the last one, so
/// a line the agent is half-way through writing is read whole next time, and a persisted offset
/// resumes exactly. When the file shrinks below the offset or is replaced by a new file
/// (rotation), reading starts again from its beginning.
#[derive(Debug, Clone)]
pub struct LogFollower {
    path: PathBuf,
    offset: u64,
    inode: Option<(u64, u64)>,
    last_growth: Option<SystemTime>,
}

impl LogFollower {
    /// Follows `path` from byte `offset`.
    pub fn from_offset(path: impl Into<PathBuf>, offset: u64) -> Self {
        Self {
            path: path.into(),
            offset,
            inode: None,
            last_growth: None,
        }
    }

    /// Follows `path` from its current end: only lines written from now on count.
    pub fn at_end(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let (offset, inode) = match fs::metadata(&path) {
            Ok(m) => (m.len(), Some((m.dev(), m.ino()))),
            Err(_) => (0, None),
        };
        Self {
            path,
            offset,
            inode,
            last_growth: None,
        }
    }

    /// The byte offset just after the last complete line returned: persist it to resume.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The file followed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// When the log was last seen to grow (its modification time then), if it has since this
    /// follower started.
    pub fn last_growth(&self) -> Option<SystemTime> {
        self.last_growth
    }

    /// The complete lines added since the last call (without their newlines). A missing file
    /// has no lines yet.
    pub fn read_new_lines(&mut self) -> Result<Vec<String>, AgentError> {
        let mut file = match fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.path)(e)),
        };
        let meta = file.metadata().map_err(io(&self.path))?;
        let identity = (meta.dev(), meta.ino());
        let replaced = self.inode.is_some_and(|known| known != identity);
        if replaced || meta.len() < self.offset {
            tracing::info!(path = %self.path.display(), "log rotated or truncated; reading it from the start");
            self.offset = 0;
        }
        self.inode = Some(identity);
        if meta.len() == self.offset {
            return Ok(Vec::new());
        }
        self.last_growth = Some(meta.modified().unwrap_or_else(|_| SystemTime::now()));
        file.seek(SeekFrom::Start(self.offset))
            .map_err(io(&self.path))?;
        let mut buf = Vec::new();
        file.take(MAX_READ)
            .read_to_end(&mut buf)
            .map_err(io(&self.path))?;
        let end = match buf.iter().rposition(|&b| b == b'\n') {
            Some(end) => end,
            // A "line" longer than a whole read: take it as it is rather than stall on it.
            None if buf.len() as u64 == MAX_READ => buf.len() - 1,
            None => return Ok(Vec::new()),
        };
        let complete = &buf[..=end];
        self.offset += complete.len() as u64;
        Ok(complete
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| String::from_utf8_lossy(l).trim_end_matches('\r').to_owned())
            .collect())
    }
}

/// What a file looked like: enough to notice it was created, written, replaced, removed or
/// changed owner (`/dev/console` changes owner when someone logs in: its ctime and uid move).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp(Option<Stamp>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    dev: u64,
    ino: u64,
    uid: u32,
    mtime: SystemTime,
    ctime: (i64, i64),
}

impl FileStamp {
    /// The stamp of `path` now (a missing file has a stamp too).
    pub fn of(path: &Path) -> Self {
        Self(fs::metadata(path).ok().map(|m| Stamp {
            len: m.len(),
            dev: m.dev(),
            ino: m.ino(),
            uid: m.uid(),
            mtime: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            ctime: (m.ctime(), m.ctime_nsec()),
        }))
    }

    /// Whether the file exists.
    pub fn exists(&self) -> bool {
        self.0.is_some()
    }
}

/// Waits until `path` changes (created, written, replaced or removed) or `deadline` passes;
/// true when it changed. Looks at metadata every [`CHANGE_POLL`]: no process is started.
pub async fn wait_for_change(path: &Path, deadline: tokio::time::Instant) -> bool {
    wait_for_change_since(path, FileStamp::of(path), deadline).await
}

/// Like [`wait_for_change`], against a stamp taken earlier (so a change between reading the file
/// and starting to wait is not missed).
pub async fn wait_for_change_since(
    path: &Path,
    since: FileStamp,
    deadline: tokio::time::Instant,
) -> bool {
    loop {
        if FileStamp::of(path) != since {
            return true;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return false;
        }
        tokio::time::sleep_until(deadline.min(now + CHANGE_POLL)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "5f1a2b3c4d5e6f7a8b9c0d1e";

    #[test]
    fn conf_nested_and_top_level() {
        let nested = format!(
            r#"{{"systemKey":"63a1b2c3d4e5f60718293a4b","agentServerHost":"agent.jumpcloud.com","userMgmt":{{"ldap_domain":"{ORG}.jumpcloud.com"}}}}"#
        );
        let conf = parse_conf(nested.as_bytes()).unwrap().unwrap();
        assert_eq!(conf.system_key, "63a1b2c3d4e5f60718293a4b");
        assert_eq!(conf.org_id.as_deref(), Some(ORG));
        let top = format!(r#"{{"systemKey":"abc123","ldap_domain":"{ORG}.jumpcloud.com"}}"#);
        assert_eq!(
            parse_conf(top.as_bytes())
                .unwrap()
                .unwrap()
                .org_id
                .as_deref(),
            Some(ORG)
        );
    }

    #[test]
    fn conf_without_org_or_key() {
        let no_org = parse_conf(br#"{"systemKey":"abc123"}"#).unwrap().unwrap();
        assert_eq!(no_org.org_id, None);
        let bad_org = parse_conf(br#"{"systemKey":"abc","ldap_domain":"jumpcloud.com"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(bad_org.org_id, None);
        assert_eq!(parse_conf(br#"{"agentServerHost":"x"}"#).unwrap(), None);
        assert_eq!(parse_conf(br#"{"systemKey":""}"#).unwrap(), None);
    }

    #[test]
    fn a_temporary_credentials_file_of_a_killed_run_is_removed() {
        // kill -9 between writing `.JumpCloud-SecureToken-Creds.<pid>.tmp` and renaming it
        // left the password there; the next run (another pid) removes it with the file.
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let path = root.resolve(mac::JC_SECURETOKEN_CREDS);
        let run = path.parent().unwrap().to_owned();
        fs::create_dir_all(&run).unwrap();
        let stale = run.join(".JumpCloud-SecureToken-Creds.4242.tmp");
        fs::write(&stale, "welcome;secret\n").unwrap();
        let other = run.join("unrelated.tmp");
        fs::write(&other, "x").unwrap();
        let files = AgentFiles::new(root);
        assert!(!files.remove_service_account_creds().unwrap());
        assert!(!stale.exists(), "the stale temporary file is gone");
        assert!(other.exists(), "nothing else is touched");
    }

    #[test]
    fn half_written_conf_is_not_yet() {
        assert_eq!(parse_conf(br#"{"systemKey":"abc12"#).unwrap(), None);
        assert_eq!(parse_conf(b"").unwrap(), None);
        assert!(parse_conf(b"not json at all").is_err());
    }

    #[test]
    fn regions() {
        let eu = kickstart_urls(&Url::parse("https://console.eu.jumpcloud.com").unwrap());
        assert_eq!(eu.0, "https://kickstart.eu.jumpcloud.com:443");
        assert_eq!(eu.1, "https://private-kickstart.eu.jumpcloud.com:443");
        let us = kickstart_urls(&Url::parse("https://console.jumpcloud.com/").unwrap());
        assert_eq!(us.0, "https://kickstart.jumpcloud.com:443");
        assert_eq!(us.1, "https://private-kickstart.jumpcloud.com:443");
        let local = kickstart_urls(&Url::parse("http://127.0.0.1:8080").unwrap());
        assert_eq!(local.0, "https://kickstart.jumpcloud.com:443");
    }
}
