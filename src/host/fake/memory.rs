//! An in-memory [`Host`] for step-level tests: the fake world's model ([`World`], its users,
//! packages, machine facts) held in a mutex instead of a JSON file, with the behaviours of the
//! process-level fakes ([`super::tools`], [`super::realmac`], [`super::sysinfo`]) that step tests
//! need, and no process at all. Each behaviour below rests on the source its process-level twin
//! cites (named next to it); the model is the same `World`, not a second copy of it, so a test
//! can set up any situation with the world's own helpers (`add_user`, `employee_logs_in`, …).
//!
//! Time-based transitions (`World::tick`) run at [`crate::engine::clock::now_ms`], so under a
//! paused tokio clock scoped to the engine they follow virtual time.
//!
//! Not modelled (use the process-level fakes for them): the `Behaviour` knobs of slow or failing
//! tools (`delete_duration_ms`, `delete_fails_partially`, `logout_ignored_once`, slow installs),
//! the simulated agent (nothing registers the Mac unless the test writes `jcagent.conf`), and the
//! `/dev/console` file.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::world::{FakePackage, World, AGENT_PACKAGE_ID};
use crate::engine::clock;
use crate::host::{Caffeinate, Host, HostError, NameKind, PackageSignature, Power};
use crate::paths::mac;

/// The in-memory Mac.
#[derive(Debug, Default)]
pub struct MemoryHost {
    world: Mutex<World>,
    spawned: AtomicU64,
}

impl MemoryHost {
    pub fn new(world: World) -> Self {
        Self {
            world: Mutex::new(world),
            spawned: AtomicU64::new(0),
        }
    }

    /// A copy of the world as it is now (for assertions).
    pub fn world(&self) -> World {
        self.lock().clone()
    }

    /// Changes the world (set-up in the middle of a test).
    pub fn edit<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        f(&mut self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock is a failed test already; the world is still usable.
        self.world
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One tool process: counts it (as `MacHost` counts every spawn) and applies the world's
    /// time-based transitions first, as every process-level fake does (`tools::with_world`).
    fn tool(&self) -> MutexGuard<'_, World> {
        self.spawned.fetch_add(1, Ordering::SeqCst);
        let mut w = self.lock();
        w.tick(clock::now_ms());
        w
    }
}

fn failed(command: &str, code: i32, stderr: impl Into<String>) -> HostError {
    HostError::Failed {
        command: command.to_owned(),
        code,
        stderr: stderr.into(),
    }
}

fn agent_installed(w: &World) -> bool {
    w.installed_packages.iter().any(|p| p == AGENT_PACKAGE_ID)
}

fn read_package(pkg: &Path) -> Result<FakePackage, HostError> {
    FakePackage::read(pkg).ok().flatten().ok_or_else(|| {
        failed(
            mac::PKGUTIL,
            1,
            format!(
                "Error: Could not open package {}: not a valid package",
                pkg.display()
            ),
        )
    })
}

#[async_trait]
impl Host for MemoryHost {
    /// stat(1): the owner of `/dev/console` (`tools::stat`).
    async fn console_user(&self) -> Result<String, HostError> {
        Ok(self.tool().console_user.clone())
    }

    /// pgrep(1) `-x Finder` (`tools::pgrep`).
    async fn finder_running(&self) -> Result<bool, HostError> {
        Ok(self.tool().finder_running)
    }

    /// id(1): the UID, none for an unknown user, 0 for root; an account `sysadminctl
    /// -deleteUser` removed is still found until its directory lag ends (`tools::id`, JumpCloud's
    /// 30 s wait before `id -u` in its deletion scripts).
    async fn user_id(&self, name: &str) -> Result<Option<u32>, HostError> {
        let w = self.tool();
        if let Some(u) = w.users.get(name) {
            return Ok(Some(u.uid));
        }
        if name == "root" {
            return Ok(Some(0));
        }
        let now = clock::now_ms();
        Ok(w.lingering_users
            .get(name)
            .filter(|(_, until)| now < *until)
            .map(|(uid, _)| *uid))
    }

    /// `sysadminctl -secureTokenStatus` (`tools::sysadminctl`): an unknown user is an error.
    async fn has_secure_token(&self, name: &str) -> Result<bool, HostError> {
        let w = self.tool();
        w.users
            .get(name)
            .map(|u| u.secure_token)
            .ok_or_else(|| failed(mac::SYSADMINCTL, 1, format!("Unknown user {name}")))
    }

    /// `dscl . -create /Users/NAME IsHidden 1`: eDSRecordNotFound (-14136, exit 56) for an
    /// unknown user (`tools::dscl`).
    async fn hide_user(&self, name: &str) -> Result<(), HostError> {
        set_hidden(&mut self.tool(), name, true)
    }

    async fn show_user(&self, name: &str) -> Result<(), HostError> {
        set_hidden(&mut self.tool(), name, false)
    }

    /// `sysadminctl -deleteUser` (`realmac::delete_user`): refused for the logged-in user and
    /// for the last Secure Token holder (exit 0 with `### Error: -14120`, as macOS prints it),
    /// else the record goes (lingering for `id -u` as long as the world's directory lag).
    async fn delete_user(&self, name: &str) -> Result<(), HostError> {
        let mut w = self.tool();
        let Some(user) = w.users.get(name).cloned() else {
            return Ok(());
        };
        let not_deleted = |detail: &str| HostError::NotDeleted {
            command: format!("{} -deleteUser {name}", mac::SYSADMINCTL),
            user: name.to_owned(),
            detail: detail.to_owned(),
        };
        if w.console_user == name {
            return Err(not_deleted("the user is logged in"));
        }
        let other_holders = w
            .users
            .iter()
            .filter(|(n, u)| n.as_str() != name && u.secure_token)
            .count();
        if user.secure_token && other_holders == 0 {
            return Err(not_deleted("-14120 the last Secure Token holder"));
        }
        w.users.remove(name);
        w.deleted_users.push(name.to_owned());
        let lag = w.behaviour().directory_lag_ms;
        if lag > 0 {
            let until = clock::now_ms().saturating_add(lag);
            w.lingering_users.insert(name.to_owned(), (user.uid, until));
        }
        Ok(())
    }

    /// `launchctl bootout user/UID` (`tools::launchctl`): `3: No such process` unless UID is
    /// the console user's; munki issue 923's "exits 0 and leaves the session" is the
    /// `logout_never_works` knob.
    async fn log_out(&self, uid: u32) -> Result<(), HostError> {
        log_out(&mut self.tool(), uid)
    }

    async fn log_out_gui(&self, uid: u32) -> Result<(), HostError> {
        log_out(&mut self.tool(), uid)
    }

    async fn system_settings_running(&self) -> Result<bool, HostError> {
        Ok(self.tool().system_settings_running)
    }

    /// fdesetup(8) `status` (`tools::fdesetup`).
    async fn filevault_on(&self) -> Result<Option<bool>, HostError> {
        Ok(Some(self.tool().filevault_on))
    }

    /// `diskutil apfs updatePreboot /`: the unlock list becomes today's token holders.
    async fn update_preboot(&self) -> Result<(), HostError> {
        let mut w = self.tool();
        w.preboot_users = w
            .users
            .iter()
            .filter(|(_, u)| u.secure_token)
            .map(|(n, _)| n.clone())
            .collect();
        Ok(())
    }

    /// `launchctl kickstart -k system/com.jumpcloud.darwin-agent`: counted once the agent's
    /// package is installed, else `Could not find service` and exit 113 (`tools::launchctl`).
    async fn kickstart_agent(&self) -> Result<(), HostError> {
        let mut w = self.tool();
        if agent_installed(&w) {
            w.agent_kickstarts += 1;
            Ok(())
        } else {
            Err(failed(
                mac::LAUNCHCTL,
                113,
                format!(
                    "Could not find service \"{}\" in domain for system",
                    mac::JC_AGENT_LABEL
                ),
            ))
        }
    }

    /// `launchctl bootout system/io.prestage.enroll` (the caller is not killed here).
    async fn remove_daemon(&self) -> Result<(), HostError> {
        let mut w = self.tool();
        if w.daemon_loaded {
            w.daemon_loaded = false;
            Ok(())
        } else {
            Err(failed(
                mac::LAUNCHCTL,
                113,
                format!(
                    "Could not find service \"{}\" in domain for system",
                    mac::LABEL
                ),
            ))
        }
    }

    /// `pkgutil --check-signature` (`tools::pkgutil`, layout in tests/fixtures/host): the
    /// fake package's signer as the leaf of a trusted Developer ID chain, or no signature.
    async fn package_signature(&self, pkg: &Path) -> Result<PackageSignature, HostError> {
        drop(self.tool());
        let package = read_package(pkg)?;
        Ok(match package.signer {
            Some(signer) => PackageSignature {
                status: PackageSignature::TRUSTED_DISTRIBUTION.to_owned(),
                chain: vec![
                    signer,
                    "Developer ID Certification Authority".to_owned(),
                    "Apple Root CA".to_owned(),
                ],
            },
            None => PackageSignature {
                status: "no signature".to_owned(),
                chain: Vec::new(),
            },
        })
    }

    /// `installer -pkg PKG -target /` (`tools::installer`): records the package's identifier.
    async fn install_package(&self, pkg: &Path) -> Result<(), HostError> {
        drop(self.tool());
        let package = read_package(pkg).map_err(|_| {
            failed(
                mac::INSTALLER,
                1,
                format!(
                    "installer: Error - the package path specified was invalid: '{}'.",
                    pkg.display()
                ),
            )
        })?;
        let mut w = self.lock();
        if !w.installed_packages.contains(&package.identifier) {
            w.installed_packages.push(package.identifier);
        }
        Ok(())
    }

    async fn sync_clock(&self, _server: &str) -> Result<(), HostError> {
        drop(self.tool());
        Ok(())
    }

    /// `caffeinate -dimsu -w PID`, started in the background: one process.
    async fn keep_awake(&self, _pid: u32) -> Result<Caffeinate, HostError> {
        drop(self.tool());
        Ok(Caffeinate { pid: None })
    }

    fn processes_spawned(&self) -> u64 {
        self.spawned.load(Ordering::SeqCst)
    }

    /// `ioreg -rd1 -c IOPlatformExpertDevice` (`sysinfo`): the machine's serial.
    async fn serial_number(&self) -> Result<String, HostError> {
        Ok(self.tool().machine.serial.clone())
    }

    /// `scutil --set KIND NAME` (`sysinfo`): records the name and `KIND=NAME`.
    async fn set_name(&self, kind: NameKind, name: &str) -> Result<(), HostError> {
        let mut w = self.tool();
        let m = &mut w.machine;
        let slot = match kind {
            NameKind::ComputerName => &mut m.computer_name,
            NameKind::LocalHostName => &mut m.local_host_name,
            NameKind::HostName => &mut m.host_name,
        };
        *slot = Some(name.to_owned());
        m.names_set.push(format!("{}={name}", kind.scutil_key()));
        Ok(())
    }

    /// `pmset -g batt` (`sysinfo`): AC from `charger_at_ms` on.
    async fn power(&self) -> Result<Power, HostError> {
        let w = self.tool();
        let m = &w.machine;
        let charged = m.charger_at_ms.is_some_and(|at| clock::now_ms() >= at);
        Ok(Power {
            on_battery: m.on_battery && !charged,
            percent: m.battery_percent,
        })
    }
}

fn set_hidden(w: &mut World, name: &str, hidden: bool) -> Result<(), HostError> {
    match w.users.get_mut(name) {
        Some(u) => {
            u.hidden = hidden;
            Ok(())
        }
        None => Err(failed(
            mac::DSCL,
            56,
            "<dscl_cmd> DS Error: -14136 (eDSRecordNotFound)",
        )),
    }
}

fn log_out(w: &mut World, uid: u32) -> Result<(), HostError> {
    let logged_in = w.users.get(&w.console_user).is_some_and(|u| u.uid == uid);
    if !logged_in {
        return Err(failed(
            mac::LAUNCHCTL,
            3,
            "Boot-out failed: 3: No such process",
        ));
    }
    if !w.behaviour().logout_never_works {
        w.log_out_console(clock::now_ms());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn users_tokens_and_deletion_follow_the_process_level_fakes() {
        let mut world = World::default();
        world.add_user("setup", true, true);
        let ada = world.add_user("ada", false, false);
        world.console_user = "setup".into();
        let host = MemoryHost::new(world);
        assert_eq!(host.user_id("ada").await.unwrap(), Some(ada));
        assert_eq!(host.user_id("root").await.unwrap(), Some(0));
        assert_eq!(host.user_id("nobody").await.unwrap(), None);
        assert!(host.has_secure_token("setup").await.unwrap());
        assert!(host.has_secure_token("nobody").await.is_err());
        // The logged-in user and the last token holder cannot be deleted.
        assert!(matches!(
            host.delete_user("setup").await,
            Err(HostError::NotDeleted { .. })
        ));
        host.edit(|w| w.console_user = "ada".into());
        assert!(matches!(
            host.delete_user("setup").await,
            Err(HostError::NotDeleted { .. })
        ));
        host.edit(|w| w.users.get_mut("ada").unwrap().secure_token = true);
        host.edit(|w| w.console_user = "root".into());
        host.delete_user("setup").await.unwrap();
        assert_eq!(host.world().deleted_users, vec!["setup".to_owned()]);
        assert!(host.hide_user("setup").await.is_err());
        host.hide_user("ada").await.unwrap();
        assert!(host.world().users["ada"].hidden);
    }

    #[tokio::test]
    async fn kickstart_needs_the_agent_and_every_call_is_a_process() {
        let host = MemoryHost::default();
        assert!(host.kickstart_agent().await.is_err());
        host.edit(|w| w.installed_packages.push(AGENT_PACKAGE_ID.into()));
        host.kickstart_agent().await.unwrap();
        assert_eq!(host.world().agent_kickstarts, 1);
        assert_eq!(host.processes_spawned(), 2);
        let _ = host.console_user().await.unwrap();
        assert_eq!(host.processes_spawned(), 3);
    }
}
