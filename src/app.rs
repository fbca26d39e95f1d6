//! Wiring: builds the real parts (configuration, host, UI, JumpCloud client) for the commands
//! of SPEC §2. Nothing here decides anything; it connects the parts.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use tracing::{error, warn};

use crate::cli::{CliError, ConfigCommand};
use crate::config::{self, Config, Mode, Sources};
use crate::engine::state::{ErrorRecord, Loaded, State, Step, Store};
use crate::engine::{clock, reference_code, Connect, Credentials, Engine};
use crate::host::{Host, MacHost};
use crate::jumpcloud::client::{Client, ClientOptions, HostClock};
use crate::jumpcloud::signing::SystemIdentity;
use crate::jumpcloud::Directory;
use crate::paths::{mac, Root};
use crate::ui::dialog::DialogUi;
use crate::ui::strings::{self, Strings};
use crate::ui::{
    IdentityAnswer, IdentityPrompt, PasswordAnswer, PasswordPrompt, Progress, Ui, UiError,
};

/// Builds JumpCloud clients for the engine: the real HTTPS client, with `sntp` through the
/// host when JumpCloud rejects our clock.
pub fn connector(host: Arc<dyn Host>, config: &Config) -> Connect {
    let base = ClientOptions::from_config(config);
    let clock = Arc::new(HostClock::new(host, config.ntp_server.clone()));
    Box::new(move |creds: &Credentials| {
        let mut options = base.clone();
        options.base_url = creds.base_url.clone();
        options.api_key.clone_from(&creds.api_key);
        if creds.org_id.is_some() {
            options.org_id.clone_from(&creds.org_id);
        }
        options.clock_sync = Some(clock.clone());
        let mut system_key = None;
        if let Some((key, pem)) = &creds.system {
            if creds.admin_fallback && creds.api_key.is_some() {
                system_key = Some(key.clone());
            } else {
                options.system = Some(SystemIdentity::from_pem(key.clone(), pem)?);
            }
        }
        let client = Client::new(options)?;
        if let Some(key) = system_key {
            client.set_system_key(key);
        }
        Ok(Arc::new(client) as Arc<dyn Directory>)
    })
}

/// The swiftDialog UI, built when first used: by then the setup account is at the console and
/// its language is known.
struct DeferredDialog {
    root: Root,
    config: crate::config::UiConfig,
    host: Arc<dyn Host>,
    inner: Option<DialogUi>,
}

impl DeferredDialog {
    async fn ui(&mut self) -> &mut DialogUi {
        if self.inner.is_none() {
            let languages = match self.host.console_user().await {
                Ok(user) if user != "root" && user != "_mbsetupuser" => {
                    strings::user_languages(&self.root, &user)
                }
                _ => Vec::new(),
            };
            let strings = Strings::from_config(&self.config, &languages);
            self.inner = Some(DialogUi::new(
                self.root.clone(),
                self.config.clone(),
                strings,
                Arc::clone(&self.host),
            ));
        }
        self.inner
            .as_mut()
            .expect("the dialog UI was built just above")
    }
}

#[async_trait]
impl Ui for DeferredDialog {
    async fn progress(&mut self, progress: &Progress) -> Result<(), UiError> {
        self.ui().await.progress(progress).await
    }
    async fn ask_identity(&mut self, prompt: &IdentityPrompt) -> Result<IdentityAnswer, UiError> {
        self.ui().await.ask_identity(prompt).await
    }
    async fn identity_rejected(
        &mut self,
        attempts_left: u32,
        cooldown_seconds: Option<u64>,
    ) -> Result<(), UiError> {
        self.ui()
            .await
            .identity_rejected(attempts_left, cooldown_seconds)
            .await
    }
    async fn ask_password(&mut self, prompt: &PasswordPrompt) -> Result<PasswordAnswer, UiError> {
        self.ui().await.ask_password(prompt).await
    }
    async fn done(&mut self, account: &str) -> Result<(), UiError> {
        self.ui().await.done(account).await
    }
    async fn fatal(&mut self, reference: &str, detail_id: &'static str) -> Result<(), UiError> {
        self.ui().await.fatal(reference, detail_id).await
    }
    async fn close(&mut self) -> Result<(), UiError> {
        match self.inner.as_mut() {
            Some(ui) => ui.close().await,
            None => Ok(()),
        }
    }
}

/// Holds `/var/db/prestage/run.lock` while this process runs: one enrollment at a time.
struct RunLock {
    _file: std::fs::File,
}

fn lock(store: &Store) -> Result<Option<RunLock>, String> {
    store.ensure_dir().map_err(|e| e.to_string())?;
    let path = store.dir().join("run.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(RunLock { _file: file })),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// `prestage run`.
pub async fn run(root: Root, config_path: Option<PathBuf>) -> u8 {
    let store = Store::new(&root);
    let _lock = match lock(&store) {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            eprintln!(
                "error: another prestage run is already enrolling this Mac; see `prestage status`"
            );
            return 1;
        }
        Err(e) => {
            eprintln!("error: cannot lock the state directory: {e}; prestage run must run as root");
            return 1;
        }
    };
    // launchd stops us with SIGTERM: at the very end because we asked it to (bootout of our
    // own job), or at shutdown.
    let mut sigterm = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot listen for SIGTERM: {e}");
            return 1;
        }
    };
    // A finished enrollment stays finished, even once its configuration is gone (an MDM may
    // reinstall the package or reboot the Mac; nothing is done twice). Only the finishing
    // touches are repeated (they are idempotent): a crash may have come between persisting
    // them and the bootout, and a reinstalled package leaves a LaunchDaemon behind.
    match store.load() {
        Ok(Loaded::Resumed(mut state)) if state.step == Step::Done => {
            let host = MacHost::new(root.clone());
            let keychain = config::keychain::for_root(&root);
            tokio::select! {
                finished = crate::engine::steps::finish(
                    &root,
                    &store,
                    &mut state,
                    &host,
                    keychain.as_ref(),
                ) => {
                    if let Err(e) = finished {
                        error!(error = %e, "the finishing touches failed; the next start tries again");
                        return 1;
                    }
                }
                // Our own bootout.
                _ = sigterm.recv() => return 0,
            }
            eprintln!("this Mac is already enrolled; see `prestage status`");
            return 0;
        }
        Ok(Loaded::MovedAside { moved_to, reason }) => error!(
            moved_to = %moved_to.display(),
            %reason,
            "the state file could not be read and was moved aside; starting over (every step checks what is already done)"
        ),
        _ => {}
    }
    let sources = match config_path {
        Some(path) => Sources::single(path),
        None => Sources::for_root(&root),
    };
    let loaded = match config::load(&sources, Mode::Run, &strings::is_known_id) {
        Ok(loaded) => loaded,
        Err(e) => return config_failure(&root, &store, &e.to_string()).await,
    };
    for warning in &loaded.warnings {
        warn!(%warning, "configuration");
    }
    let config = loaded.config;
    let host: Arc<dyn Host> = Arc::new(MacHost::new(root.clone()));
    let ui = Box::new(DeferredDialog {
        root: root.clone(),
        config: config.ui.clone(),
        host: Arc::clone(&host),
        inner: None,
    });
    let keychain = config::keychain::for_root(&root);
    let connect = connector(Arc::clone(&host), &config);
    let engine = match Engine::new(
        root.clone(),
        config,
        Arc::clone(&host),
        ui,
        keychain,
        connect,
    ) {
        Ok(engine) => engine,
        Err(e) => {
            error!(error = %e, "cannot use the state directory");
            eprintln!("error: {e}");
            return 1;
        }
    };
    crate::engine::steps::keep_awake(&engine).await;
    tokio::select! {
        outcome = engine.run() => {
            if let crate::engine::Outcome::Failed { reference, message } = &outcome {
                eprintln!("error: {} (reference {reference}); fix it, then `prestage reset` if needed; launchd will retry", crate::cli::one_line(message));
            }
            outcome.exit_code()
        }
        _ = sigterm.recv() => {
            // The state is persisted after every side effect, and dropping the engine closes
            // the dialog.
            match Store::new(&root).load() {
                Ok(Loaded::Resumed(state)) if state.step == Step::Done => 0,
                _ => {
                    warn!("SIGTERM: stopping; the next start resumes where this one stopped");
                    143
                }
            }
        }
    }
}

/// The configuration cannot work: say so in the log, in `status`, and on screen; exit 78.
async fn config_failure(root: &Root, store: &Store, message: &str) -> u8 {
    let mut state = match store.load() {
        Ok(Loaded::Resumed(state)) => *state,
        _ => State::new(clock::now_ms()),
    };
    let reference = reference_code(state.step, &state.run_id);
    error!(reference = %reference, error = %message, "the configuration is invalid; fix it with the MDM (see `prestage config check`)");
    state.last_error = Some(ErrorRecord {
        step: state.step,
        message: format!("configuration invalid: {message}"),
        reference: Some(reference.clone()),
        permanent: true,
        at_ms: clock::now_ms(),
    });
    let _ = store.save(&state);
    // Show it to whoever sits at the Mac, if anyone does (best effort, default texts).
    let host: Arc<dyn Host> = Arc::new(MacHost::new(root.clone()));
    if let Ok(user) = host.console_user().await {
        if user != "root" && user != "_mbsetupuser" {
            let config = crate::config::UiConfig::default();
            let strings = Strings::from_config(&config, &strings::user_languages(root, &user));
            let mut ui = DialogUi::new(root.clone(), config, strings, host);
            if let Err(e) = ui.fatal(&reference, "error.configuration").await {
                warn!(error = %e, "could not show the configuration error on screen");
            }
        }
    }
    eprintln!(
        "error: the configuration is invalid (reference {reference}): {}; fix it with your MDM or package (`prestage config check FILE` lists every problem), launchd starts prestage again within a minute",
        crate::cli::one_line(message)
    );
    78
}

/// `prestage config check|import|schema`.
pub fn config_command(cmd: &ConfigCommand) -> Result<u8, CliError> {
    let mut out = std::io::stdout().lock();
    match cmd {
        ConfigCommand::Check {
            file,
            online,
            allow_secret_in_profile,
        } => {
            let code = config::check_command(
                file,
                *allow_secret_in_profile,
                &strings::is_known_id,
                &mut out,
            );
            if code != 0 || !online {
                return Ok(u8::try_from(code).unwrap_or(1));
            }
            online_check(file, &mut out)
        }
        ConfigCommand::Import { script, output } => {
            let text = std::fs::read(script).map_err(|e| {
                CliError::new(
                    1,
                    format!(
                        "{}: {e}; pass the path of your filled-in jumpcloud_bootstrap_template.sh",
                        script.display()
                    ),
                )
            })?;
            let report = config::import::import(&String::from_utf8_lossy(&text));
            match output {
                Some(path) => {
                    write_private(path, &report.plist_xml)?;
                    let _ = writeln!(out, "wrote {}", path.display());
                }
                None => {
                    let _ = out.write_all(&report.plist_xml);
                }
            }
            eprint!("{}", report.summary());
            Ok(0)
        }
        ConfigCommand::Schema => {
            let schema = config::schema::json_schema();
            let text = serde_json::to_string_pretty(&schema)
                .map_err(|e| CliError::new(1, e.to_string()))?;
            let _ = writeln!(out, "{text}");
            Ok(0)
        }
    }
}

/// Writes a file that may hold a secret: 0600.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| {
        CliError::new(
            1,
            format!(
                "cannot write {}: {e}; choose a writable path for -o, or leave -o out to print the plist",
                path.display()
            ),
        )
    };
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    file.write_all(bytes).map_err(fail)
}

/// `config check --online`: read-only checks against the tenant, a line per check.
fn online_check(file: &Path, out: &mut dyn Write) -> Result<u8, CliError> {
    let loaded = config::load(
        &Sources::for_check(file.to_owned()),
        Mode::Check {
            allow_secret_in_profile: true,
        },
        &strings::is_known_id,
    )
    .map_err(|e| CliError::new(1, e.to_string()))?;
    let config = loaded.config;
    let key = match &config.api_key {
        config::ApiKeySource::Plain(key) => key.clone(),
        config::ApiKeySource::Keychain { service } => {
            match config::keychain::for_root(&Root::system()).read(service) {
                Ok(Some(key)) => key,
                _ => {
                    return Err(CliError::new(1, format!("--online needs the API key: the System keychain has no item {service:?} on this machine; run the check where the key is stored, or with a copy of the configuration holding APIKey")));
                }
            }
        }
        config::ApiKeySource::Legacy { .. } => {
            return Err(CliError::new(1, "--online cannot decrypt EncryptedAPIKey off the target Mac (it needs the UID of DecryptUser there); check with a copy of the configuration holding APIKey"));
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(1, e.to_string()))?;
    let lines = rt.block_on(crate::jumpcloud::online::online_check(&config, &key));
    for line in &lines {
        let _ = writeln!(out, "{line}");
    }
    Ok(u8::from(!crate::jumpcloud::online::all_ok(&lines)))
}

/// `prestage ui preview`.
pub fn ui_preview(config_file: Option<&Path>, out_dir: &Path) -> Result<u8, CliError> {
    let ui = match config_file {
        Some(file) => {
            config::load(
                &Sources::single(file.to_owned()),
                Mode::Run,
                &strings::is_known_id,
            )
            .map_err(|e| CliError::new(1, e.to_string()))?
            .config
            .ui
        }
        None => crate::config::UiConfig::default(),
    };
    let strings = Strings::from_config(&ui, &[]);
    let files = crate::ui::preview::render(&ui, &strings, out_dir)
        .map_err(|e| CliError::new(1, e.to_string()))?;
    for f in files {
        println!("{}", f.display());
    }
    Ok(0)
}

#[doc(hidden)]
pub const _LOCAL_CONFIG: &str = mac::LOCAL_CONFIG;
