//! The simulated JumpCloud agent of one fake Mac (a `--root` folder with a fake world, see
//! `crate::host::fake::world`).
//!
//! It polls the fake world and behaves like the real agent as the bash script and its
//! CHANGELOG describe it (REFERENCE.md):
//! 1. once the agent package is installed (`AGENT_PACKAGE_ID` in `installed_packages`), it
//!    reads `/opt/jc/agentBootstrap.json`; with the tenant's connect key it registers the
//!    system, writes `/opt/jc/client.key` (0600) and then, atomically and last,
//!    `/opt/jc/jcagent.conf` (prestage waits for `systemKey` in it); a wrong key is logged and
//!    the agent never registers;
//! 2. for every user newly bound to the system it logs `Processing user updates`, creates the
//!    local account (or takes over an existing one of that name: the real agent matches by
//!    name) and logs `User updates complete`. No Secure Token: macOS grants one at first login.
//!
//! Log lines start with `YY-MM-DD HH:MM:SS` (the format since late 2022, bash script
//! CHANGELOG 3.1.6).

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::keys::SystemKey;
use super::Tenant;
use crate::host::fake::world::{World, AGENT_PACKAGE_ID};
use crate::paths::{mac, Root};

/// How the agent misbehaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentMode {
    Normal,
    /// Every delay is longer by `extra`.
    Slow {
        extra: Duration,
    },
    /// Registers, then never logs nor creates accounts again.
    Silent,
    /// After registering, goes quiet until `world.agent_kickstarts` increases (the agent log
    /// stall of bash script CHANGELOG 3.1.1), then proceeds.
    StallUntilKickstart,
    /// Installs and reads its bootstrap file but never registers.
    NeverRegisters,
    /// Takes accounts over but logs only `Processing user updates` for it, never `User
    /// updates complete`: no public excerpt of a current agent's log confirms the wording
    /// JumpCloud's scripts grep for (REFERENCE.md), so prestage must not depend on it alone.
    ProcessingOnly,
}

/// The agent's timing and misbehaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentBehaviour {
    pub mode: AgentMode,
    /// From "package installed" to "system registered".
    pub register_delay: Duration,
    /// From "user bound" to "User updates complete".
    pub takeover_delay: Duration,
    /// How often the fake world is read.
    pub poll_interval: Duration,
    /// Reuse one RSA key for every Mac of the tenant (fleets: generating 2048-bit keys is slow).
    pub shared_key: bool,
    /// Write `client.key` as PKCS#8 `PRIVATE KEY` instead of PKCS#1 `RSA PRIVATE KEY`.
    pub pkcs8_key: bool,
    /// Leave `userMgmt.ldap_domain` (the org id) out of `jcagent.conf` (bash script issue #21).
    pub omit_org: bool,
    /// How often a registered, healthy agent logs an unrelated check-in line (the real log is
    /// busy: prestage must find its line among others). `None`: never.
    pub heartbeat: Option<Duration>,
    /// Hostname to register (default: `world.extra["hostname"]`, else the root folder's name).
    pub hostname: Option<String>,
}

impl Default for AgentBehaviour {
    fn default() -> Self {
        Self {
            mode: AgentMode::Normal,
            register_delay: Duration::from_millis(200),
            takeover_delay: Duration::from_millis(300),
            poll_interval: Duration::from_millis(100),
            shared_key: false,
            pkcs8_key: false,
            omit_org: false,
            heartbeat: Some(Duration::from_secs(60)),
            hostname: None,
        }
    }
}

#[derive(Debug, Default)]
struct Status {
    system_id: Option<String>,
    taken_over: Vec<String>,
}

/// A running simulated agent. Dropping the handle stops the agent.
#[derive(Debug)]
pub struct AgentHandle {
    task: JoinHandle<()>,
    status: Arc<Mutex<Status>>,
}

impl AgentHandle {
    /// The system id once the agent registered.
    pub fn system_id(&self) -> Option<String> {
        self.lock().system_id.clone()
    }

    /// Local account names the agent created or took over, in order.
    pub fn taken_over(&self) -> Vec<String> {
        self.lock().taken_over.clone()
    }

    /// Stops the agent.
    pub fn stop(self) {
        self.task.abort();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for AgentHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) fn spawn(tenant: Tenant, root: Root, behaviour: AgentBehaviour) -> AgentHandle {
    let status = Arc::new(Mutex::new(Status::default()));
    let task = tokio::spawn(run(tenant, root, behaviour, Arc::clone(&status)));
    AgentHandle { task, status }
}

/// Appends a line to `/var/log/jcagent.log`.
fn log(root: &Root, level: &str, msg: &str) {
    let path = root.resolve(mac::JC_AGENT_LOG);
    let ts = chrono::Local::now().format("%y-%m-%d %H:%M:%S");
    let line = format!("{ts} [{level}] {msg}\n");
    let result = path
        .parent()
        .map_or(Ok(()), fs::create_dir_all)
        .and_then(|()| OpenOptions::new().create(true).append(true).open(&path))
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = result {
        tracing::warn!(path = %path.display(), error = %e, "simulated agent could not write its log");
    }
}

fn world(root: &Root) -> Option<World> {
    match World::load(root) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "simulated agent could not read the fake world");
            None
        }
    }
}

/// What `/opt/jc/agentBootstrap.json` holds, if the file is there and readable: its bytes and
/// its `connectKey`.
fn bootstrap(root: &Root) -> Option<(Vec<u8>, String)> {
    let bytes = fs::read(root.resolve(mac::JC_BOOTSTRAP)).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let key = v.get("connectKey")?.as_str()?.to_owned();
    Some((bytes, key))
}

/// Whether the tenant accepts this bootstrap file: once tenant connect keys (`jcc_`) were handed
/// out, only a file that is exactly one of their payloads (JumpCloud's installer writes the
/// decoded payload as the file: TheJumpCloud/support `install_agent_and_serviceaccount.sh`);
/// before that, a file whose `connectKey` is the tenant's classic key.
fn bootstrap_accepted(tenant: &Tenant, bytes: &[u8], key: &str) -> bool {
    let payloads = tenant
        .inner
        .tenant_key_payloads
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if payloads.is_empty() {
        key == tenant.connect_key()
    } else {
        payloads.iter().any(|p| p.as_slice() == bytes)
    }
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("sim-tmp");
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

async fn generate_key() -> Option<SystemKey> {
    match tokio::task::spawn_blocking(SystemKey::generate).await {
        Ok(Ok(k)) => Some(k),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "simulated agent could not make a key");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "simulated agent key task failed");
            None
        }
    }
}

async fn key_for(tenant: &Tenant, shared: bool) -> Option<SystemKey> {
    if shared {
        tenant
            .inner
            .shared_key
            .get_or_try_init(|| async { generate_key().await.ok_or(()) })
            .await
            .ok()
            .cloned()
    } else {
        generate_key().await
    }
}

/// Writes the agent's files: the key first, `jcagent.conf` last (prestage waits for it).
fn write_registration(
    root: &Root,
    tenant: &Tenant,
    b: &AgentBehaviour,
    id: &str,
    key: &SystemKey,
) -> std::io::Result<()> {
    let pem = if b.pkcs8_key {
        key.private_pem_pkcs8()
    } else {
        key.private_pem()
    };
    write_file(&root.resolve(mac::JC_CLIENT_KEY), pem.as_bytes(), 0o600)?;
    // Compact JSON like the real file (sample in karlrink/jumpcloud's README).
    let mut conf = json!({
        "agentServerHost": "agent.jumpcloud.com",
        "agentServerPort": "443",
        "caCrt": "/opt/jc/ca.crt",
        "clientCrt": "/opt/jc/client.crt",
        "clientKey": "/opt/jc/client.key",
        "osPlugin": "osx",
        "systemKey": id,
        "systemToken": format!("{id}-token"),
    });
    if !b.omit_org {
        conf["userMgmt"] = json!({ "ldap_domain": format!("{}.jumpcloud.com", tenant.org_id()) });
    }
    let bytes = serde_json::to_vec(&conf).map_err(std::io::Error::other)?;
    write_file(&root.resolve(mac::JC_AGENT_CONF), &bytes, 0o644)
}

/// The `systemKey` of an existing `jcagent.conf`, when the tenant knows that system.
fn registered_id(root: &Root, tenant: &Tenant) -> Option<String> {
    let bytes = fs::read(root.resolve(mac::JC_AGENT_CONF)).ok()?;
    let conf: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let id = conf.get("systemKey")?.as_str()?;
    tenant
        .inner
        .lock()
        .system_rec(id)
        .is_some()
        .then(|| id.to_owned())
}

fn hostname(root: &Root, b: &AgentBehaviour, w: &World) -> String {
    b.hostname
        .clone()
        .or_else(|| {
            w.extra
                .get("hostname")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| crate::paths::file_name(root.dir()).to_owned())
}

/// Creates (or takes over) the local account of a bound user.
fn take_over(root: &Root, name: &str, admin: bool) -> bool {
    let result = World::update(root, |w| {
        if !w.users.contains_key(name) {
            w.add_user(name, false, admin);
        }
        if let Some(u) = w.users.get_mut(name) {
            u.managed_by_jumpcloud = true;
            u.admin |= admin;
        }
    });
    match result {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "simulated agent could not create the account");
            false
        }
    }
}

async fn run(tenant: Tenant, root: Root, b: AgentBehaviour, status: Arc<Mutex<Status>>) {
    let extra = match b.mode {
        AgentMode::Slow { extra } => extra,
        _ => Duration::ZERO,
    };
    let set = |f: &dyn Fn(&mut Status)| {
        f(&mut status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    };

    // 1. Wait for the package, then for a readable bootstrap file.
    let world_now = loop {
        if let Some(w) = world(&root) {
            if w.installed_packages.iter().any(|p| p == AGENT_PACKAGE_ID) {
                break w;
            }
        }
        tokio::time::sleep(b.poll_interval).await;
    };
    log(&root, "INFO", "JumpCloud agent starting");
    let mut warned = false;
    let (bootstrap_bytes, connect_key) = loop {
        if let Some(found) = bootstrap(&root) {
            break found;
        }
        if !warned {
            log(
                &root,
                "ERROR",
                "Unable to read /opt/jc/agentBootstrap.json; waiting for a connect key",
            );
            warned = true;
        }
        tokio::time::sleep(b.poll_interval).await;
    };
    if !bootstrap_accepted(&tenant, &bootstrap_bytes, &connect_key) {
        log(
            &root,
            "ERROR",
            "Failed to register system: the connect key was rejected (401)",
        );
        return;
    }
    if b.mode == AgentMode::NeverRegisters {
        log(&root, "INFO", "Registering system");
        std::future::pending::<()>().await;
    }

    // 2. Register, unless this Mac already is (an agent restarted after a reboot keeps its
    // systemKey).
    let id = if let Some(id) = registered_id(&root, &tenant) {
        log(
            &root,
            "INFO",
            &format!("Using existing registration, systemKey={id}"),
        );
        id
    } else {
        tokio::time::sleep(b.register_delay + extra).await;
        let Some(key) = key_for(&tenant, b.shared_key).await else {
            log(&root, "ERROR", "Failed to generate the system key");
            return;
        };
        let id = tenant.register_system(&hostname(&root, &b, &world_now), &key.public_der());
        if let Err(e) = write_registration(&root, &tenant, &b, &id, &key) {
            tracing::warn!(error = %e, "simulated agent could not write its files");
            return;
        }
        log(&root, "INFO", &format!("System registered, systemKey={id}"));
        id
    };
    set(&|s| s.system_id = Some(id.clone()));
    if b.mode == AgentMode::Silent {
        std::future::pending::<()>().await;
    }
    let mut stalled_at = (b.mode == AgentMode::StallUntilKickstart)
        .then(|| world(&root).map_or(0, |w| w.agent_kickstarts));

    // 3. Take over bound users.
    let mut seen = HashSet::new();
    let mut due: Vec<(Instant, String, bool)> = Vec::new();
    let mut last_beat = Instant::now();
    loop {
        tokio::time::sleep(b.poll_interval).await;
        for (user, sudo) in tenant.bindings(&id) {
            if seen.insert(user.clone()) {
                due.push((Instant::now() + b.takeover_delay + extra, user, sudo));
            }
        }
        if let Some(base) = stalled_at {
            match world(&root) {
                Some(w) if w.agent_kickstarts > base => {
                    log(&root, "INFO", "JumpCloud agent starting");
                    stalled_at = None;
                }
                _ => continue,
            }
        }
        let now = Instant::now();
        if b.heartbeat
            .is_some_and(|every| now.duration_since(last_beat) >= every)
        {
            log(&root, "INFO", "Agent check-in complete");
            last_beat = now;
        }
        let (ready, later): (Vec<_>, Vec<_>) = due.drain(..).partition(|(at, _, _)| *at <= now);
        due = later;
        for (_, user, sudo) in ready {
            let Some(view) = tenant.user(&user) else {
                continue;
            };
            let name = view
                .user
                .system_username
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or(view.user.username.clone());
            log(&root, "INFO", "Processing user updates");
            if take_over(&root, &name, sudo) {
                if b.mode != AgentMode::ProcessingOnly {
                    log(
                        &root,
                        "INFO",
                        &format!("User {name} account management applied"),
                    );
                    log(&root, "INFO", "User updates complete");
                }
                set(&|s| s.taken_over.push(name.clone()));
            }
        }
    }
}
