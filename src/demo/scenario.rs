//! The [`Scenario`]: a simulated Mac (a temporary `--root` with the fake macOS tools and world
//! of `host::fake`), the simulated JumpCloud tenant and agent of `sim`, an employee in the
//! directory and a configuration plist written where the real one lives. The demo, the tests
//! and the benchmarks build their situations from it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::rehearsal::{self, fill_config, write_plist};
use crate::config::{Identifier, SecretKind};
use crate::engine::{Engine, Timing};
use crate::host::fake::world::{FakePackage, World};
use crate::host::{Host, MacHost};
use crate::paths::{mac, Root};
use crate::policy::PasswordPolicy;
use crate::sim::{AgentHandle, SimOptions, SimUser, Tenant};
use crate::ui::scripted::{Script, ScriptedIdentity, ScriptedPassword, ScriptedUi};
use crate::ui::strings::Strings;
use crate::ui::Ui;

/// Where the demo's agent package sits on the simulated Mac (installed there by "the MDM").
pub const DEMO_AGENT_PACKAGE: &str = "/Library/Application Support/prestage/jumpcloud-agent.pkg";
/// The LaunchDaemon our package installs (the real file).
const LAUNCH_DAEMON_PLIST: &[u8] = include_bytes!("../../launchd/io.prestage.enroll.plist");

/// The MDM-created setup account.
pub const SETUP_ACCOUNT: &str = "welcome";
/// The employee's local account name in every scenario (the directory user's username).
pub const EMPLOYEE_ACCOUNT: &str = "ada.lovelace";

/// Which kind of employee the directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmployeeKind {
    /// `activated: false`: no password yet, must choose one.
    Pending,
    /// Has a password already.
    Active,
    /// `state: STAGED`: activated by prestage.
    Staged,
}

/// How to build a scenario.
#[derive(Debug, Clone)]
pub struct ScenarioOptions {
    pub kind: EmployeeKind,
    pub sim: SimOptions,
    /// The admin's own configuration to rehearse with (tenant-specific keys are replaced).
    pub base_config: Option<plist::Dictionary>,
    /// Milliseconds after the setup account logs out until the employee logs in; `None` =
    /// never.
    pub employee_login_delay_ms: Option<u64>,
    /// macOS grants the employee a Secure Token at first login.
    pub grant_secure_token: bool,
    /// Milliseconds until Setup Assistant hands over to the setup account's desktop.
    pub setup_assistant_ms: u64,
    /// Keep the temporary root after the scenario is dropped.
    pub keep_root: bool,
    /// The fake `launchctl bootout system/io.prestage.enroll` sends SIGTERM to its caller, as
    /// the real one does to the daemon. Off when the engine runs inside the caller (demo).
    pub bootout_kills_caller: bool,
    /// No setup account (SSO during Setup Assistant): Setup Assistant creates the employee's
    /// own account `ada.lovelace` (admin, Secure Token, as the first account gets), which is
    /// at the console from the start; the configuration gets no `EnrollmentUser`.
    pub own_account: bool,
}

impl Default for ScenarioOptions {
    fn default() -> Self {
        Self {
            kind: EmployeeKind::Pending,
            sim: SimOptions {
                password_policy: demo_policy(),
                ..SimOptions::default()
            },
            base_config: None,
            employee_login_delay_ms: Some(300),
            grant_secure_token: true,
            setup_assistant_ms: 200,
            keep_root: false,
            bootout_kills_caller: true,
            own_account: false,
        }
    }
}

/// The tenant's password policy in the demo: 12 characters, upper, lower, number, symbol.
pub fn demo_policy() -> PasswordPolicy {
    PasswordPolicy {
        min_length: 12,
        require_uppercase: true,
        require_lowercase: true,
        require_number: true,
        require_symbol: true,
        ..PasswordPolicy::default()
    }
}

/// What the scripted employee knows.
#[derive(Debug, Clone)]
pub struct Employee {
    /// What they type as their identifier (deliberately in another case than the directory).
    pub identifier: String,
    /// Their secret, when the configuration asks for one.
    pub secret: Option<String>,
    /// The password they choose.
    pub password: String,
    /// Their local account name.
    pub account: String,
}

/// A simulated Mac, tenant and employee, ready for `prestage run`.
pub struct Scenario {
    dir: Option<tempfile::TempDir>,
    pub root: Root,
    pub tenant: Tenant,
    pub agent: AgentHandle,
    /// macOS's own clock on the simulated Mac (logins happen without a tool running).
    pub loginwindow: crate::sim::loginwindow::LoginWindow,
    pub user_id: String,
    pub group_id: String,
    pub post_group_id: String,
    pub employee: Employee,
    /// The configuration written at `/Library/Preferences/io.prestage.enroll.plist`.
    pub config: plist::Dictionary,
}

/// Scenario set-up failed (test and demo infrastructure).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the simulated Mac: {0}")]
pub struct ScenarioError(pub String);

pub(super) fn err(e: impl std::fmt::Display) -> ScenarioError {
    ScenarioError(e.to_string())
}

impl Scenario {
    /// Builds the scenario. `exe` runs the fake tools: `prestage-fake`, or a `prestage` built
    /// with the `sim` feature (both take `sim-tool <tool path> <args>` from the shim).
    pub async fn new(opts: ScenarioOptions, exe: &Path) -> Result<Scenario, ScenarioError> {
        let dir = tempfile::Builder::new()
            .prefix("prestage-demo-")
            .tempdir()
            .map_err(err)?;
        let root = Root::new(dir.path());
        let tenant = Tenant::start(opts.sim.clone()).await.map_err(err)?;

        let group_id = tenant.add_group("New Macs");
        let post_group_id = tenant.add_group("Enrolled Macs");

        // The Mac: fake tools, the setup account, Setup Assistant finishing soon, the employee.
        crate::host::fake::install_fake_tools(&root, exe).map_err(err)?;
        crate::host::fake::install_fake_dialog(&root, exe).map_err(err)?;
        World::update(&root, |w| {
            if opts.own_account {
                // Setup Assistant creates the employee's own account (its name prefilled by the
                // MDM); the first account gets a Secure Token.
                w.in_setup_assistant(EMPLOYEE_ACCOUNT, opts.setup_assistant_ms);
            } else {
                w.add_user(SETUP_ACCOUNT, true, true);
                w.in_setup_assistant(SETUP_ACCOUNT, opts.setup_assistant_ms);
                if let Some(delay) = opts.employee_login_delay_ms {
                    w.employee_logs_in(EMPLOYEE_ACCOUNT, delay);
                }
            }
            w.edit_behaviour(|b| {
                b.grant_secure_token_at_login = opts.grant_secure_token;
                b.bootout_kills_caller = opts.bootout_kills_caller;
            });
        })
        .map_err(err)?;
        FakePackage::jumpcloud_agent()
            .write(&root.resolve(DEMO_AGENT_PACKAGE))
            .map_err(err)?;
        // What the package installed: the LaunchDaemon, loaded.
        let daemon = root.resolve(mac::LAUNCH_DAEMON);
        if let Some(parent) = daemon.parent() {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
        std::fs::write(&daemon, LAUNCH_DAEMON_PLIST).map_err(err)?;
        World::update(&root, |w| w.daemon_loaded = true).map_err(err)?;
        let agent = tenant.attach_mac(&root);
        let loginwindow = crate::sim::loginwindow::LoginWindow::start(root.clone());

        let mut config = opts.base_config.clone().unwrap_or_default();
        fill_config(&mut config, &tenant, &group_id, &post_group_id);
        if opts.own_account {
            config.remove("EnrollmentUser");
            config.remove("EnrollmentUserPassword");
            // With Identity.Preset, false is the default; without one it must be said.
            let preset = config
                .get("Identity")
                .and_then(plist::Value::as_dictionary)
                .is_some_and(|i| i.contains_key("Preset"));
            if !preset && !config.contains_key("DeleteEnrollmentUsers") {
                config.insert("DeleteEnrollmentUsers".into(), false.into());
            }
        }
        write_plist(&root.resolve(mac::LOCAL_CONFIG), &config)?;
        // How the employee identifies, as the engine will read it: through the validator, so
        // that `Attribute: EnrollmentCode` (a space after the colon) names `EnrollmentCode`
        // here as it does there (design review §3b: a second parser here once disagreed).
        let (identifier, secret) = rehearsal::configured_identity(&root);

        // The directory: one employee with every identifying field filled in.
        let secret_attr = match &secret {
            SecretKind::Attribute(name) => name.clone(),
            _ => "enrollmentCode".to_owned(),
        };
        let user = match opts.kind {
            EmployeeKind::Pending => SimUser::pending("ada.lovelace", "ada.lovelace@example.com"),
            EmployeeKind::Active => SimUser::active("ada.lovelace", "ada.lovelace@example.com"),
            EmployeeKind::Staged => SimUser::staged("ada.lovelace", "ada.lovelace@example.com"),
        }
        .firstname("Ada")
        .lastname("Lovelace")
        .description("ada.private@example.net")
        .employee_id("E-1815")
        .attribute(&secret_attr, "K7Q2-MX9P");
        let user_id = tenant.add_user(user);
        // Someone else, so that a search that is too loose would be caught.
        tenant.add_user(
            SimUser::active("grace.hopper", "grace.hopper@example.com")
                .firstname("Grace")
                .lastname("Hopper")
                .employee_id("E-1906"),
        );

        let identifier_value = match identifier {
            Identifier::CompanyEmail => "Ada.Lovelace@Example.com",
            Identifier::PersonalEmail => "ADA.PRIVATE@example.net",
            Identifier::LastName => "lovelace",
            Identifier::Username => "Ada.Lovelace",
        };
        let secret_value = match secret {
            SecretKind::None => None,
            SecretKind::EmployeeId => Some("E-1815".to_owned()),
            SecretKind::Attribute(_) => Some("K7Q2-MX9P".to_owned()),
        };
        let employee = Employee {
            identifier: identifier_value.to_owned(),
            secret: secret_value,
            password: "Analytical-Engine-1843".to_owned(),
            account: EMPLOYEE_ACCOUNT.to_owned(),
        };
        let mut dir = Some(dir);
        if opts.keep_root {
            if let Some(d) = dir.take() {
                let _ = d.keep();
            }
        }
        Ok(Scenario {
            dir,
            root,
            tenant,
            agent,
            loginwindow,
            user_id,
            group_id,
            post_group_id,
            employee,
            config,
        })
    }

    /// The real path of the simulated Mac's `/`.
    pub fn root_dir(&self) -> &Path {
        self.root.dir()
    }

    /// Keeps the temporary root on disk after the scenario ends (for inspection).
    pub fn keep(&mut self) -> PathBuf {
        if let Some(d) = self.dir.take() {
            return d.keep();
        }
        self.root.dir().to_owned()
    }

    /// The scripted employee: mistypes the secret once (when one is asked), then chooses a
    /// password that first misses a rule.
    pub fn demo_script(&self) -> Script {
        let e = &self.employee;
        let mut identities = Vec::new();
        if e.secret.is_some() {
            identities.push(ScriptedIdentity {
                identifier: e.identifier.clone(),
                secret: Some("E-1816".into()),
            });
        }
        identities.push(ScriptedIdentity {
            identifier: e.identifier.clone(),
            secret: e.secret.clone(),
        });
        Script {
            identities: identities.into(),
            passwords: vec![
                ScriptedPassword {
                    password: "analytical-engine".into(),
                    confirmation: None,
                },
                ScriptedPassword {
                    password: e.password.clone(),
                    confirmation: None,
                },
            ]
            .into(),
        }
    }
}

impl Scenario {
    /// The real engine for this scenario, in this process: the configuration written on the
    /// simulated Mac, the real host adapter and JumpCloud client, the simulated keychain,
    /// `ui` for the employee, and [`simulation_timing`].
    pub fn engine(&self, ui: Box<dyn Ui>) -> Result<Engine, ScenarioError> {
        let cfg = rehearsal::load(&self.root).map_err(err)?.config;
        let host: Arc<dyn Host> = Arc::new(MacHost::new(self.root.clone()));
        let keychain = Box::new(crate::host::fake::keychain::FakeKeychain::for_root(
            &self.root,
        ));
        let connect = crate::engine::connect::connector(Arc::clone(&host), &cfg);
        Ok(
            Engine::new(self.root.clone(), cfg, host, ui, keychain, connect)
                .map_err(err)?
                .with_timing(simulation_timing()),
        )
    }

    /// The scripted employee of [`Scenario::demo_script`] as a UI for [`Scenario::engine`].
    pub fn scripted_ui(&self, script: Script) -> Result<Box<dyn Ui>, ScenarioError> {
        let cfg = rehearsal::load(&self.root).map_err(err)?.config;
        let strings = Strings::from_config(&cfg.ui, &[]);
        Ok(Box::new(ScriptedUi::new(script, cfg.ui.clone(), strings)))
    }

    /// Queues `script`'s answers for the fake swiftDialog (used when `prestage run` runs as
    /// its own process and talks to `dialog`): identities first, then passwords, in the order
    /// the engine asks.
    pub fn write_dialog_script(&self, script: &Script) -> Result<(), ScenarioError> {
        use crate::ui::fake_dialog::{write_script, ScriptedAnswer};
        use crate::ui::screen::field;
        let mut answers = Vec::new();
        for id in &script.identities {
            let mut values = std::collections::BTreeMap::new();
            values.insert(field::IDENTIFIER.to_owned(), id.identifier.clone());
            if let Some(secret) = &id.secret {
                values.insert(field::SECRET.to_owned(), secret.clone());
            }
            answers.push(ScriptedAnswer { values, exit: 0 });
        }
        for pw in &script.passwords {
            let mut values = std::collections::BTreeMap::new();
            values.insert(field::PASSWORD.to_owned(), pw.password.clone());
            values.insert(
                field::CONFIRMATION.to_owned(),
                pw.confirmation
                    .clone()
                    .unwrap_or_else(|| pw.password.clone()),
            );
            answers.push(ScriptedAnswer { values, exit: 0 });
        }
        write_script(&self.root, &answers).map_err(err)
    }
}

/// Engine timing for simulations: the production pacing divided by ten, so a rehearsal takes
/// seconds, not minutes. The logic is the same.
pub fn simulation_timing() -> Timing {
    Timing {
        tool_gap: Duration::from_millis(100),
        file_poll: Duration::from_millis(50),
        agent_silence: Duration::from_secs(3),
        backoff_base: Duration::from_millis(100),
        backoff_cap: Duration::from_secs(2),
        secure_token_grace: Duration::from_secs(2),
        patience_divisor: 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Design review §3b: the simulated employee carries the attribute the engine will look up,
    /// for every form of `Identity.Secret` that validation accepts (a space after the colon
    /// included), because the scenario reads `Identity` through the validator.
    #[tokio::test]
    async fn the_employee_matches_identity_as_the_validator_reads_it() {
        for (secret, attribute, typed) in [
            (
                "Attribute: EnrollmentCode",
                "EnrollmentCode",
                Some("K7Q2-MX9P"),
            ),
            ("Attribute:Code", "Code", Some("K7Q2-MX9P")),
            ("EmployeeID", "enrollmentCode", Some("E-1815")),
            ("None", "enrollmentCode", None),
        ] {
            let mut identity = plist::Dictionary::new();
            identity.insert("Identifier".into(), "LastName".into());
            identity.insert("Secret".into(), secret.into());
            let mut base = plist::Dictionary::new();
            base.insert("Identity".into(), identity.into());
            let scenario = Scenario::new(
                ScenarioOptions {
                    base_config: Some(base),
                    employee_login_delay_ms: None,
                    ..ScenarioOptions::default()
                },
                Path::new("/nonexistent/prestage-fake"),
            )
            .await
            .expect("a scenario builds without running any tool");
            let user = scenario
                .tenant
                .user(&scenario.user_id)
                .expect("the scenario's employee is in the tenant");
            assert!(
                user.user
                    .attributes
                    .iter()
                    .any(|(name, value)| name == attribute && value == "K7Q2-MX9P"),
                "{secret}: {:?}",
                user.user.attributes
            );
            assert_eq!(scenario.employee.secret.as_deref(), typed, "{secret}");
            assert_eq!(scenario.employee.identifier, "lovelace", "{secret}");
        }
    }
}
