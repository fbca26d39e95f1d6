//! `prestage demo`: the newcomer's first command and the admin's rehearsal.
//!
//! A [`Scenario`] is a simulated Mac (a temporary `--root` with the fake macOS tools and world of
//! `host::fake`), the simulated JumpCloud tenant and agent of `sim`, an employee in the directory
//! and a configuration plist written where the real one lives. The demo runs the real engine on
//! it, with the real host adapter and JumpCloud client, and prints each step, the requests made
//! and a summary. Tests and benchmarks build their situations from the same [`Scenario`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;

use crate::config::{self, Identifier, SecretKind};
use crate::engine::state::Step;
use crate::engine::{Engine, Event, Outcome, Timing};
use crate::error::CommandError as CliError;
use crate::host::fake::world::{FakePackage, World};
use crate::host::{Host, MacHost};
use crate::logging::{LogFormat, LogOptions};
use crate::paths::{mac, Root};
use crate::policy::PasswordPolicy;
use crate::sim::{AgentHandle, SimOptions, SimUser, Tenant};
use crate::ui::scripted::{Script, ScriptedIdentity, ScriptedPassword, ScriptedUi};
use crate::ui::strings::Strings;
use crate::ui::Ui;

/// Where the demo's agent package sits on the simulated Mac (installed there by "the MDM").
pub const DEMO_AGENT_PACKAGE: &str = "/Library/Application Support/prestage/jumpcloud-agent.pkg";
/// The LaunchDaemon our package installs (the real file).
const LAUNCH_DAEMON_PLIST: &[u8] = include_bytes!("../launchd/io.prestage.enroll.plist");

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

fn err(e: impl std::fmt::Display) -> ScenarioError {
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

        // The directory: one employee with every identifying field filled in.
        let secret_attr = match opts.base_config.as_ref().map(identity_of) {
            Some((_, SecretKind::Attribute(name))) => name,
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
        let (identifier, secret) = identity_of(&config);
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
        let sources = config::Sources::single(self.root.resolve(mac::LOCAL_CONFIG));
        let cfg = config::load(
            &sources,
            config::Mode::Run,
            &crate::ui::strings::is_known_id,
        )
        .map_err(err)?
        .config;
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
        let sources = config::Sources::single(self.root.resolve(mac::LOCAL_CONFIG));
        let cfg = config::load(
            &sources,
            config::Mode::Run,
            &crate::ui::strings::is_known_id,
        )
        .map_err(err)?
        .config;
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

/// `Identity.Identifier` and `Identity.Secret` of a configuration dictionary (defaults when
/// absent or unreadable: the real validation happens when the engine loads the file).
fn identity_of(config: &plist::Dictionary) -> (Identifier, SecretKind) {
    let identity = config.get("Identity").and_then(plist::Value::as_dictionary);
    let identifier = match identity
        .and_then(|d| d.get("Identifier"))
        .and_then(plist::Value::as_string)
    {
        Some("PersonalEmail") => Identifier::PersonalEmail,
        Some("LastName") => Identifier::LastName,
        Some("Username") => Identifier::Username,
        _ => Identifier::CompanyEmail,
    };
    let secret = match identity
        .and_then(|d| d.get("Secret"))
        .and_then(plist::Value::as_string)
    {
        Some("None") => SecretKind::None,
        // As `config::validate` reads it: a space after the colon is allowed.
        Some(s) if s.starts_with("Attribute:") => {
            SecretKind::Attribute(s.trim_start_matches("Attribute:").trim().to_owned())
        }
        Some(_) => SecretKind::EmployeeId,
        None if identity.is_none() => SecretKind::EmployeeId,
        None => SecretKind::None,
    };
    (identifier, secret)
}

/// The kickstart hosts named in a tenant connect key's payload (JumpCloud's US hosts when it has
/// none or does not decode).
fn tenant_key_hosts(key: &str) -> (String, String) {
    let us = crate::host::agent::kickstart_urls(
        &url::Url::parse(crate::config::DEFAULT_API_BASE_URL).expect("the default URL parses"),
    );
    let Ok(crate::config::ConnectKey::Tenant { bootstrap, .. }) =
        crate::config::ConnectKey::parse(key)
    else {
        return us;
    };
    let payload: serde_json::Value =
        serde_json::from_str(bootstrap.expose_secret()).unwrap_or_default();
    let host = |name: &str, default: String| {
        payload
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map_or(default, str::to_owned)
    };
    (
        host("publicKickstartUrl", us.0.clone()),
        host("privateKickstartUrl", us.1.clone()),
    )
}

/// `config` with `Identity.Preset` set to `value` and no secret asked (the MDM authenticated
/// the employee).
fn with_preset(mut config: plist::Dictionary, value: &str) -> plist::Dictionary {
    let mut identity = config
        .get("Identity")
        .and_then(plist::Value::as_dictionary)
        .cloned()
        .unwrap_or_default();
    if !identity.contains_key("Identifier") {
        identity.insert("Identifier".into(), "CompanyEmail".into());
    }
    identity.insert("Secret".into(), "None".into());
    identity.insert("Preset".into(), value.to_owned().into());
    config.insert("Identity".into(), identity.into());
    config
}

/// Points a configuration at the simulated tenant: replaces every tenant-specific key and
/// fills in what a rehearsal needs, keeping the admin's texts and identity settings.
fn fill_config(config: &mut plist::Dictionary, tenant: &Tenant, group: &str, post_group: &str) {
    for key in [
        "APIKey",
        "APIKeyKeychainService",
        "EncryptedAPIKey",
        "DecryptUser",
        "OrgID",
    ] {
        config.remove(key);
    }
    // A tenant connect key (jcc_) is rehearsed as one: the simulated tenant issues its own,
    // with the kickstart hosts of the admin's payload, and its agent then registers only when
    // agentBootstrap.json is exactly that payload.
    let connect_key = match config.get("ConnectKey").and_then(plist::Value::as_string) {
        Some(key) if key.starts_with(crate::config::connect_key::TENANT_KEY_PREFIX) => {
            let (public, private) = tenant_key_hosts(key);
            tenant.tenant_connect_key(&public, &private)
        }
        _ => tenant.connect_key(),
    };
    config.insert("ConnectKey".into(), connect_key.into());
    config.insert(
        "APIKey".into(),
        tenant.api_key().expose_secret().to_owned().into(),
    );
    config.insert(
        "APIBaseURL".into(),
        tenant
            .url()
            .as_str()
            .trim_end_matches('/')
            .to_owned()
            .into(),
    );
    config.insert("EnrollmentGroupID".into(), group.to_owned().into());
    config.insert("PostEnrollmentGroupID".into(), post_group.to_owned().into());
    config.insert("EnrollmentUser".into(), SETUP_ACCOUNT.into());
    if !config.contains_key("Identity") {
        let mut identity = plist::Dictionary::new();
        identity.insert("Identifier".into(), "CompanyEmail".into());
        identity.insert("Secret".into(), "EmployeeID".into());
        config.insert("Identity".into(), identity.into());
    }
    let mut agent = config
        .get("Agent")
        .and_then(plist::Value::as_dictionary)
        .cloned()
        .unwrap_or_default();
    agent.remove("PackageURL");
    agent.insert("PackagePath".into(), DEMO_AGENT_PACKAGE.into());
    for key in ["InstallTimeoutSeconds", "TakeoverTimeoutSeconds"] {
        if !agent.contains_key(key) {
            agent.insert(key.into(), 60.into());
        }
    }
    config.insert("Agent".into(), agent.into());
    if !config.contains_key("UI") {
        let mut ui = plist::Dictionary::new();
        ui.insert("WindowTitle".into(), "Welcome to Example Org".into());
        ui.insert("WelcomeTitle".into(), "Let's set up your Mac".into());
        ui.insert(
            "WelcomeText".into(),
            "This takes a few minutes. Please keep your Mac connected to power and Wi-Fi.".into(),
        );
        config.insert("UI".into(), ui.into());
    }
}

/// Writes a configuration plist (XML, 0600).
pub fn write_plist(path: &Path, config: &plist::Dictionary) -> Result<(), ScenarioError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    plist::Value::Dictionary(config.clone())
        .to_file_xml(path)
        .map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)
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

/// Options of `prestage demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub interactive: bool,
    /// `--preset VALUE`: `Identity.Preset` as the MDM would have substituted it; the simulated
    /// Mac then starts with the employee's own account at the console and no setup account.
    pub preset: Option<String>,
    pub config: Option<PathBuf>,
    pub verbosity: u8,
    pub log_format: LogFormat,
}

/// Runs the demo and prints what happens.
pub async fn run(opts: &DemoOptions) -> Result<u8, CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::new(1, format!("cannot find the prestage binary: {e}")))?;
    let base_config = match &opts.config {
        Some(path) => Some(
            plist::Value::from_file(path)
                .map_err(|e| {
                    CliError::new(
                        1,
                        format!("{}: {e}; pass an XML or binary plist", path.display()),
                    )
                })?
                .into_dictionary()
                .ok_or_else(|| {
                    CliError::new(
                        1,
                        format!("{}: the top level is not a dictionary", path.display()),
                    )
                })?,
        ),
        None => None,
    };
    let own_account = opts.preset.is_some();
    let base_config = match &opts.preset {
        Some(value) => Some(with_preset(base_config.unwrap_or_default(), value)),
        None => base_config,
    };
    let started = Instant::now();
    let scenario = Scenario::new(
        ScenarioOptions {
            base_config,
            keep_root: true,
            bootout_kills_caller: false,
            own_account,
            ..ScenarioOptions::default()
        },
        &exe,
    )
    .await
    .map_err(|e| CliError::new(1, e.to_string()))?;
    crate::logging::init(&LogOptions {
        format: opts.log_format,
        verbosity: opts.verbosity,
        file_root: Some(scenario.root.clone()),
        quiet_stderr_when_piped: false,
    });

    println!(
        "prestage demo: a full enrollment on a simulated Mac against a simulated JumpCloud tenant"
    );
    println!(
        "  simulated Mac     {}  (fake macOS tools; world in .fakemac/)",
        scenario.root_dir().display()
    );
    println!(
        "  simulated tenant  {}  (org {})",
        scenario.tenant.url(),
        scenario.tenant.org_id()
    );
    let setup = if own_account {
        format!(
            "no setup account: `{EMPLOYEE_ACCOUNT}` (their own) at the console, Identity.Preset {:?}",
            opts.preset.as_deref().unwrap_or_default()
        )
    } else {
        format!("setup account `{SETUP_ACCOUNT}`")
    };
    println!(
        "  employee          {} ({}), {setup}",
        scenario.employee.identifier,
        match ScenarioOptions::default().kind {
            EmployeeKind::Pending => "pending: no password yet",
            EmployeeKind::Active => "active",
            EmployeeKind::Staged => "staged",
        }
    );
    println!();

    let receiver = demo_webhooks(&scenario)
        .await
        .map_err(|e| CliError::new(1, e.to_string()))?;

    let sources = config::Sources::single(scenario.root.resolve(mac::LOCAL_CONFIG));
    let loaded = config::load(
        &sources,
        config::Mode::Run,
        &crate::ui::strings::is_known_id,
    )
    .map_err(|e| CliError::new(1, format!("the configuration does not work: {e}")))?;
    for w in &loaded.warnings {
        println!("  config warning: {w}");
    }
    let cfg = loaded.config;
    let strings = Strings::from_config(&cfg.ui, &[]);
    let host: Arc<dyn Host> = Arc::new(MacHost::new(scenario.root.clone()));
    let ui: Box<dyn Ui> = if opts.interactive {
        println!(
            "  (interactive: you are the employee; the directory knows {} with secret {:?} )",
            scenario.employee.identifier,
            scenario.employee.secret.as_deref().unwrap_or("-")
        );
        Box::new(crate::ui::terminal::TerminalUi::new(
            cfg.ui.clone(),
            strings,
        ))
    } else {
        Box::new(ScriptedUi::new(scenario.demo_script(), cfg.ui.clone(), strings).with_echo(true))
    };
    let keychain = Box::new(crate::host::fake::keychain::FakeKeychain::for_root(
        &scenario.root,
    ));
    let connect = crate::engine::connect::connector(Arc::clone(&host), &cfg);
    let engine = Engine::new(scenario.root.clone(), cfg, host, ui, keychain, connect)
        .map_err(|e| CliError::new(1, e.to_string()))?
        .with_timing(simulation_timing());
    let durations: Arc<Mutex<Vec<(Step, Duration)>>> = Arc::default();
    let seen = Arc::clone(&durations);
    let engine = engine.with_observer(move |event| match event {
        Event::StepFinished { step, took } => {
            println!(
                "  ✓ {:>2}/{} {:<14} {:>6.2} s",
                step.number(),
                crate::engine::steps::TOTAL,
                step.name(),
                took.as_secs_f64()
            );
            if let Ok(mut d) = seen.lock() {
                d.push((*step, *took));
            }
        }
        Event::Retrying { step, reason, wait } => {
            println!(
                "  ↻ {:>2}/{} {:<14} retry in {:.1} s: {reason}",
                step.number(),
                crate::engine::steps::TOTAL,
                step.name(),
                wait.as_secs_f64()
            );
        }
        Event::Note(note) => println!("  • {note}"),
        Event::StepStarted(_) => {}
    });
    let outcome = engine.run(std::future::pending::<()>()).await;
    let took = started.elapsed();
    summary(&scenario, &outcome, took);
    webhook_summary(&receiver);
    Ok(match outcome {
        Outcome::Done | Outcome::AlreadyDone => 0,
        Outcome::ConfigInvalid { .. } => 78,
        Outcome::Failed { .. } | Outcome::Stopped => 1,
    })
}

fn summary(scenario: &Scenario, outcome: &Outcome, took: Duration) {
    use std::collections::BTreeMap;
    let requests = scenario.tenant.requests();
    let mut by_call: BTreeMap<String, usize> = BTreeMap::new();
    for r in &requests {
        *by_call
            .entry(format!("{} {}", r.method, generic_path(&r.path)))
            .or_default() += 1;
    }
    let calls = crate::host::fake::world::calls(&scenario.root).unwrap_or_default();
    let world = World::load(&scenario.root).ok();
    let user = scenario.tenant.user(&scenario.user_id);
    println!();
    match outcome {
        Outcome::Done => println!(
            "enrolled `{}` in {:.1} s",
            scenario.employee.account,
            took.as_secs_f64()
        ),
        Outcome::AlreadyDone => println!("the simulated Mac was enrolled already"),
        Outcome::Failed { reference, message } => println!(
            "FAILED ({reference}) after {:.1} s: {message}",
            took.as_secs_f64()
        ),
        Outcome::ConfigInvalid { reference, message } => {
            println!("configuration invalid ({reference}): {message}");
        }
        Outcome::Stopped => println!("stopped"),
    }
    println!(
        "  requests to JumpCloud: {} (the bash script needs about 16)",
        requests.len()
    );
    for (call, n) in &by_call {
        println!("    {n:>3}  {call}");
    }
    println!("  macOS tool calls: {}", calls.len());
    if let Some(user) = user {
        println!(
            "  password set {} time(s); user activated: {}",
            user.password_sets, user.activated
        );
    }
    if let Some(world) = world {
        println!(
            "  local accounts now: {}",
            world.users.keys().cloned().collect::<Vec<_>>().join(", ")
        );
        println!(
            "  deleted: {}",
            if world.deleted_users.is_empty() {
                "none".into()
            } else {
                world.deleted_users.join(", ")
            }
        );
        println!("  console user: {}", world.console_user);
    }
    println!("  log: {}", scenario.root.resolve(mac::LOG_FILE).display());
    println!(
        "  the simulated Mac stays in {} for a look around (`prestage status --root {}`); delete it when done",
        scenario.root_dir().display(),
        scenario.root_dir().display()
    );
}

/// The demo's webhook receiver: the admin's `Webhooks` (from `--config`) keep their kinds and
/// events but post to a local receiver instead of their real URLs; without any, one receiver
/// of each kind shows what prestage would send.
async fn demo_webhooks(scenario: &Scenario) -> Result<crate::sim::WebhookReceiver, ScenarioError> {
    let receiver = crate::sim::WebhookReceiver::start(false)
        .await
        .map_err(err)?;
    let path = scenario.root.resolve(mac::LOCAL_CONFIG);
    let mut config: plist::Dictionary = plist::from_file(&path).map_err(err)?;
    let mut hooks: Vec<plist::Dictionary> = config
        .get("Webhooks")
        .and_then(plist::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_dictionary().cloned())
                .collect()
        })
        .unwrap_or_default();
    if hooks.is_empty() {
        for kind in ["Generic", "Slack", "Teams"] {
            let mut d = plist::Dictionary::new();
            d.insert("Kind".into(), kind.into());
            hooks.push(d);
        }
    }
    for (i, hook) in hooks.iter_mut().enumerate() {
        let kind = hook
            .get("Kind")
            .and_then(plist::Value::as_string)
            .unwrap_or("Generic")
            .to_ascii_lowercase();
        hook.insert(
            "URL".into(),
            receiver
                .url(&format!("webhooks/{i}-{kind}"))
                .to_string()
                .into(),
        );
    }
    config.insert(
        "Webhooks".into(),
        plist::Value::Array(hooks.into_iter().map(plist::Value::Dictionary).collect()),
    );
    write_plist(&path, &config)?;
    Ok(receiver)
}

fn webhook_summary(receiver: &crate::sim::WebhookReceiver) {
    let got = receiver.received();
    println!(
        "  webhook messages ({}; Webhooks URLs replaced by a local receiver):",
        got.len()
    );
    for r in got {
        let body = serde_json::to_string(&r.body).unwrap_or_default();
        println!("    {}  {body}", r.path.trim_start_matches("/webhooks/"));
    }
}

/// `/api/systemusers/5f…` → `/api/systemusers/{id}` for the request summary.
fn generic_path(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if crate::config::ObjectId::parse(seg).is_some() {
                "{id}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}
