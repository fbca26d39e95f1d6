//! Wiring for `prestage run`: builds the real parts (configuration, host, UI, JumpCloud client)
//! and hands them to the engine. It decides nothing and prints nothing: the engine owns the
//! run's life ([`crate::engine::lifecycle`]) and the CLI reports how it ended.

use std::fs::OpenOptions;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tracing::warn;

use crate::config::keychain::Keychain;
use crate::config::{self, Mode, Sources};
use crate::engine::lifecycle::{self, Start};
use crate::engine::state::{StateError, Store};
use crate::engine::{connect, Engine, Outcome, Timing};
use crate::host::{Host, MacHost};
use crate::paths::Root;
use crate::ui::deferred::DeferredDialog;
use crate::ui::strings;

/// Why `prestage run` could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("another prestage run is already enrolling this Mac; see `prestage status`")]
    AlreadyRunning,
    #[error("cannot lock the state directory: {0}; prestage run must run as root")]
    Lock(String),
    #[error("cannot use the state directory: {0}; prestage run must run as root")]
    State(#[from] StateError),
}

/// Holds `/var/db/prestage/run.lock` while this process runs: one enrollment at a time.
struct RunLock {
    _file: std::fs::File,
}

fn lock(store: &Store) -> Result<RunLock, RunError> {
    store.ensure_dir()?;
    let path = store.lock_path();
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| RunError::Lock(format!("{}: {e}", path.display())))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(RunLock { _file: file }),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(RunError::AlreadyRunning),
        Err(e) => Err(RunError::Lock(format!("{}: {e}", path.display()))),
    }
}

/// `prestage run`: one enrollment at a time under `root`, with the configuration of
/// `config_path` (else the managed and local ones), the API key's keychain, until the end or
/// until `shutdown` (launchd's SIGTERM) completes.
pub async fn run(
    root: Root,
    config_path: Option<PathBuf>,
    keychain: Box<dyn Keychain>,
    shutdown: impl Future<Output = ()>,
) -> Result<Outcome, RunError> {
    let store = Store::new(&root);
    let _lock = lock(&store)?;
    let host: Arc<dyn Host> = Arc::new(MacHost::new(root.clone()));
    let sources = match config_path {
        Some(path) => Sources::single(path),
        None => Sources::for_root(&root),
    };
    if let Start::Finished(state) = lifecycle::start(&store)? {
        let keychain: Arc<dyn Keychain> = Arc::from(keychain);
        // Only the webhook receivers matter now; a configuration removed by the finishing
        // touches (or broken since) has none to offer, which is no error on a finished Mac.
        let webhooks = config::load(&sources, Mode::Run, &strings::is_known_id)
            .map(|loaded| loaded.config.webhooks)
            .unwrap_or_default();
        return Ok(lifecycle::resume_finished(
            &root,
            *state,
            host.as_ref(),
            &keychain,
            &Timing::default(),
            webhooks,
            shutdown,
        )
        .await);
    }
    let loaded = match config::load(&sources, Mode::Run, &strings::is_known_id) {
        Ok(loaded) => loaded,
        Err(e) => {
            // Default texts: the admin's own could not be read.
            let mut ui =
                DeferredDialog::new(root.clone(), config::UiConfig::default(), Arc::clone(&host));
            return Ok(lifecycle::record_config_failure(
                &root,
                host.as_ref(),
                &mut ui,
                &e.to_string(),
            )
            .await);
        }
    };
    for warning in &loaded.warnings {
        warn!(%warning, "configuration");
    }
    let config = loaded.config;
    let ui = Box::new(DeferredDialog::new(
        root.clone(),
        config.ui.clone(),
        Arc::clone(&host),
    ));
    let connect = connect::connector(Arc::clone(&host), &config);
    let engine = Engine::new(root, config, host, ui, keychain, connect)?;
    Ok(engine.run(shutdown).await)
}
