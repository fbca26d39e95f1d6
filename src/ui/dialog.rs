//! The swiftDialog backend (swiftDialog 2.5.0 or later; SPEC §4 and §6): one long-lived
//! progress window driven through its command file, and one `dialog --json` run per question.
//!
//! What swiftDialog does, from its source (github swiftDialog/swiftDialog; the evidence is in
//! the source audit, `shared/audits/swiftdialog.md`), and what prestage does about it:
//! - `/usr/local/bin/dialog` is a launcher: started as root it runs the app as the console
//!   user and forwards its output and exit code (`dialogcli/dialogcli.swift`);
//! - every window reads a command file, the shared `/var/tmp/dialog.log` unless it is given
//!   one: each window here gets its own ([`command_file`]), and a run first closes the windows
//!   a killed run left behind;
//! - lines written to a command file before the window is up are ignored (its modification
//!   time against the app's launch time, `DialogUpdatableContent.swift`, `processCommands`),
//!   and prestage cannot see when the window is up: the full state is written again on a
//!   schedule after the window starts ([`RESEND_AFTER_MS`]);
//! - `--textfield`, `--listitem` and values starting with `-` have parsing traps: [`args`];
//! - exit codes: [`exit`]; the version floor and installing swiftDialog: [`install`].
//!
//! The employee's password comes back on the modal's stdout pipe and goes straight into a
//! [`SecretString`]; it never appears in argv, a file or the log.

mod args;
mod command_file;
mod exit;
mod install;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::zeroize::Zeroize;
use secrecy::SecretString;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

pub use args::{
    message_value, modal_args, progress_lines, progress_window_args, textfield_arg, textfield_text,
    NO_QUIT_KEY,
};
pub use command_file::{CommandFile, COMMAND_FILE_DIR, COMMAND_FILE_PREFIX};
pub use exit::{DialogExit, AUTH_KEY_HINT};
pub use install::{
    installed, parse_version, Installed, MINIMUM_VERSION, SWIFTDIALOG_TEAM_ID, WHICH_SWIFTDIALOG,
};

use crate::config::UiConfig;
use crate::host::Host;
use crate::paths::Root;
use crate::ui::screen::{self, field, Screen};
use crate::ui::strings::Strings;
use crate::ui::{
    IdentityAnswer, IdentityPrompt, PasswordAnswer, PasswordPrompt, Progress, Ui, UiError,
};
use command_file::Ledger;

/// How long a "contact IT" window stays up: just under the LaunchDaemon's `ThrottleInterval`.
pub const FATAL_WINDOW_SECONDS: u64 = 55;

/// How long the done screen stays before prestage logs the setup account out anyway.
const DONE_TIMER_SECONDS: u64 = 60;
/// How long to wait for the progress window to go after `quit:` before killing it.
const QUIT_GRACE: Duration = Duration::from_secs(5);
/// How often `quit:` is repeated while waiting.
const QUIT_RETRY: Duration = Duration::from_millis(500);
/// When (after its start) the progress window is sent its full state again, and every 30 s
/// after the last: a window is up within a second or two, slower on a first launch (an
/// integration waits 500 ms after start before its first command: fleetdm/fleet
/// `orbit/pkg/swiftdialog/run.go`). The lines set state, so repeating them changes nothing.
pub const RESEND_AFTER_MS: &[u64] = &[250, 500, 1_000, 2_000, 4_000, 8_000, 15_000, 30_000];
/// When `quit:` is sent again to the windows a killed run left behind (one that was still
/// starting ignores the first), before their command files are removed.
const REAP_AGAIN_AFTER_MS: &[u64] = &[500, 1_000, 2_000, 4_000];

/// The live progress window.
struct Window {
    child: Child,
    file: Arc<CommandFile>,
    /// The last state written (the lines), shared with the re-sender.
    state: Arc<Mutex<Vec<String>>>,
    resender: JoinHandle<()>,
}

/// Closing the windows a previous run left behind.
struct Reaper {
    files: Arc<Vec<CommandFile>>,
    task: JoinHandle<()>,
}

/// A listed question window's command file: taken off the list once the window is gone. If the
/// wait for the window is dropped, the window is asked to quit and stays listed for the next
/// run.
struct Listed {
    file: CommandFile,
    ledger: Arc<Ledger>,
    gone: bool,
}

impl Listed {
    fn gone(mut self) {
        self.file.remove();
        self.ledger.remove(self.file.mac_path());
        self.gone = true;
    }
}

impl Drop for Listed {
    fn drop(&mut self) {
        if !self.gone {
            self.file.quit();
        }
    }
}

/// The swiftDialog UI. See the module docs.
pub struct DialogUi {
    root: Root,
    ui: UiConfig,
    strings: Strings,
    host: Arc<dyn Host>,
    window: Option<Window>,
    ledger: Arc<Ledger>,
    /// A usable swiftDialog was found (or installed).
    ready: bool,
    /// The windows a previous run left behind were asked to quit.
    reaped: bool,
    reaper: Option<Reaper>,
    /// `UI.HelpMessage` as configured (`ui.help_message` holds it filled in).
    help_template: Option<String>,
    help_facts: crate::ui::help::HelpFacts,
}

impl std::fmt::Debug for DialogUi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DialogUi")
            .field("root", &self.root)
            .field("language", &self.strings.language())
            .field("window_open", &self.window.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for DialogUi {
    /// A dropped UI still asks its window to go (the 3.x app also quits once `kill_on_drop`
    /// has ended its launcher). Its command file stays listed: the next run makes sure.
    fn drop(&mut self) {
        if let Some(w) = &self.window {
            w.resender.abort();
            w.file.quit();
        }
        if let Some(r) = &self.reaper {
            r.task.abort();
        }
    }
}

impl DialogUi {
    pub fn new(root: Root, ui_config: UiConfig, strings: Strings, host: Arc<dyn Host>) -> Self {
        let ledger = Arc::new(Ledger::load(&root));
        let help_template = ui_config.help_message.clone();
        let mut me = Self {
            root,
            ui: ui_config,
            strings,
            host,
            window: None,
            ledger,
            ready: false,
            reaped: false,
            reaper: None,
            help_template,
            help_facts: crate::ui::help::HelpFacts::default(),
        };
        me.fill_help();
        me
    }

    /// Fills `UI.HelpMessage`'s tokens for the windows to come.
    fn fill_help(&mut self) {
        let f = &self.help_facts;
        self.ui.help_message = self
            .help_template
            .as_deref()
            .map(|t| crate::ui::help::fill(t, f.serial.as_deref(), f.reference.as_deref()));
    }

    /// The real path of the `dialog` launcher.
    pub fn dialog_binary(&self) -> PathBuf {
        self.root.resolve(&self.ui.dialog_path)
    }

    /// Before the first window: close what a previous run left behind, and make sure a usable
    /// swiftDialog is installed (installing `UI.DialogPackagePath` when needed).
    pub async fn ensure_dialog(&mut self) -> Result<(), UiError> {
        self.reap_left_behind();
        if !self.ready {
            install::ensure(&self.root, &self.ui, self.host.as_ref()).await?;
            self.ready = true;
        }
        Ok(())
    }

    /// Sends `quit:` to every window a previous run listed, now and a few times more, then
    /// removes their command files.
    fn reap_left_behind(&mut self) {
        if self.reaped {
            return;
        }
        self.reaped = true;
        let files: Vec<CommandFile> = self
            .ledger
            .left_behind()
            .iter()
            .filter_map(|p| CommandFile::left_behind(&self.root, p))
            .collect();
        for listed in self.ledger.left_behind() {
            if !files.iter().any(|f| f.mac_path() == Path::new(listed)) {
                self.ledger.remove(Path::new(listed));
            }
        }
        if files.is_empty() {
            return;
        }
        info!(
            windows = files.len(),
            "asking the swiftDialog windows a previous run left behind to quit"
        );
        for f in &files {
            f.quit();
        }
        let files = Arc::new(files);
        let ledger = Arc::clone(&self.ledger);
        let task = tokio::spawn({
            let files = Arc::clone(&files);
            async move {
                for ms in REAP_AGAIN_AFTER_MS {
                    tokio::time::sleep(Duration::from_millis(*ms)).await;
                    for f in files.iter() {
                        f.quit();
                    }
                }
                for f in files.iter() {
                    f.remove();
                    ledger.remove(f.mac_path());
                }
            }
        });
        self.reaper = Some(Reaper { files, task });
    }

    /// Finishes closing the windows left behind now (they have been told to quit already).
    fn finish_reaping(&mut self) {
        if let Some(r) = self.reaper.take() {
            if !r.task.is_finished() {
                r.task.abort();
                for f in r.files.iter() {
                    f.quit();
                    f.remove();
                    self.ledger.remove(f.mac_path());
                }
            }
        }
    }

    /// Whether the progress window's process is still running.
    fn window_alive(&mut self) -> bool {
        match &mut self.window {
            Some(w) => matches!(w.child.try_wait(), Ok(None)),
            None => false,
        }
    }

    fn open_window(&mut self, screen: &Screen) -> Result<(), UiError> {
        let file = Arc::new(CommandFile::create(&self.root)?);
        self.ledger.add(&file)?;
        let args = args::progress_window_args(&self.root, &self.ui, screen, file.mac_path());
        debug!(args = ?args, "starting the swiftDialog progress window");
        let spawned = Command::new(self.dialog_binary())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                file.remove();
                self.ledger.remove(file.mac_path());
                return Err(UiError::Dialog(format!(
                    "cannot start {}: {e}",
                    self.dialog_binary().display()
                )));
            }
        };
        let state = Arc::new(Mutex::new(Vec::new()));
        let resender = tokio::spawn(resend(Arc::clone(&file), Arc::clone(&state)));
        self.window = Some(Window {
            child,
            file,
            state,
            resender,
        });
        Ok(())
    }

    /// Runs one modal window and returns its exit and stdout (the stdout buffer is the
    /// caller's to wipe: it may hold a password).
    async fn run_modal(
        &mut self,
        screen: &Screen,
        timer: Option<u64>,
    ) -> Result<(DialogExit, Vec<u8>, String), UiError> {
        self.ensure_dialog().await?;
        let file = CommandFile::create(&self.root)?;
        self.ledger.add(&file)?;
        let listed = Listed {
            file,
            ledger: Arc::clone(&self.ledger),
            gone: false,
        };
        let command_file = listed.file.mac_path().display().to_string();
        let args = args::modal_args(&self.root, &self.ui, screen, timer, listed.file.mac_path());
        debug!(screen = screen.kind.name(), args = ?args, "asking through swiftDialog");
        let output = Command::new(self.dialog_binary())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output()
            .await;
        listed.gone();
        let output = output.map_err(|e| {
            UiError::Dialog(format!(
                "cannot start {}: {e}",
                self.dialog_binary().display()
            ))
        })?;
        let code = output.status.code().unwrap_or(-1);
        let exit = DialogExit::from_code(code);
        debug!(screen = screen.kind.name(), code, "swiftDialog closed");
        Ok((exit, output.stdout, command_file))
    }

    /// The error for an exit that is not an answer; exit 1 says which of its causes it was.
    async fn exit_error(&self, exit: DialogExit, command_file: &str) -> UiError {
        let user = self.host.console_user().await.unwrap_or_default();
        if exit == DialogExit::LauncherRefused && (user.is_empty() || user == "root") {
            // The launcher's `Unable to determine current GUI user` (uid 0 or nobody).
            return UiError::NoConsoleUser;
        }
        let err = exit::exit_error(exit, &user, command_file);
        warn!(error = %err, "swiftDialog did not show the window");
        err
    }

    /// Runs a question and returns its `--json` values, each straight into a secret.
    async fn ask(&mut self, screen: &Screen) -> Result<BTreeMap<String, SecretString>, UiError> {
        let (exit, mut stdout, command_file) = self.run_modal(screen, None).await?;
        let result = if exit == DialogExit::Button1 {
            parse_json_output(&stdout)
        } else if exit.is_closed_without_answer() {
            Err(UiError::Cancelled { code: exit.code() })
        } else {
            Err(self.exit_error(exit, &command_file).await)
        };
        stdout.zeroize();
        result
    }

    /// Shows a message with one button; every way a person closes it is fine.
    async fn tell(&mut self, screen: &Screen, timer: Option<u64>) -> Result<(), UiError> {
        let (exit, mut stdout, command_file) = self.run_modal(screen, timer).await?;
        stdout.zeroize();
        if exit == DialogExit::Button1 || exit.is_closed_without_answer() {
            Ok(())
        } else {
            Err(self.exit_error(exit, &command_file).await)
        }
    }

    async fn close_window(&mut self) -> Result<(), UiError> {
        let Some(mut w) = self.window.take() else {
            return Ok(());
        };
        w.resender.abort();
        // A `quit:` written while the window was still starting is not seen, so it is
        // repeated until the window goes.
        let deadline = tokio::time::Instant::now() + QUIT_GRACE;
        loop {
            if !matches!(w.child.try_wait(), Ok(None)) {
                w.file.remove();
                self.ledger.remove(w.file.mac_path());
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            w.file.quit();
            let _ = tokio::time::timeout(QUIT_RETRY, w.child.wait()).await;
        }
        // The 3.x app quits within a second once its launcher is gone; a 2.x app may not, so
        // its command file stays listed for the next run.
        warn!("the swiftDialog progress window ignored quit:; stopping its launcher");
        let _ = w.child.kill().await;
        Ok(())
    }
}

/// Writes the window's full state again on the [`RESEND_AFTER_MS`] schedule, then every 30 s.
async fn resend(file: Arc<CommandFile>, state: Arc<Mutex<Vec<String>>>) {
    let mut waited = 0;
    let mut schedule = RESEND_AFTER_MS.iter().copied();
    loop {
        let at = schedule.next().unwrap_or(waited + 30_000);
        tokio::time::sleep(Duration::from_millis(at - waited)).await;
        waited = at;
        let lines = state
            .lock()
            .expect("the window state lock is never poisoned")
            .clone();
        if !lines.is_empty() {
            if let Err(e) = file.append(&lines) {
                debug!(error = %e, "could not send the progress window its state again");
            }
        }
    }
}

/// Parses swiftDialog's `--json` output into secrets. Values that are not strings are skipped.
pub fn parse_json_output(stdout: &[u8]) -> Result<BTreeMap<String, SecretString>, UiError> {
    let text = std::str::from_utf8(stdout)
        .map_err(|_| UiError::Dialog("swiftDialog printed output that is not UTF-8".into()))?;
    // Only the JSON object: a launcher may print other lines around it.
    let start = text.find('{');
    let end = text.rfind('}');
    let (Some(start), Some(end)) = (start, end) else {
        return Err(UiError::Dialog("swiftDialog printed no JSON answer".into()));
    };
    let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(&text[start..=end])
        .map_err(|e| {
            // The serde error names a position only, never the value.
            UiError::Dialog(format!("swiftDialog printed JSON we cannot read: {e}"))
        })?;
    Ok(map
        .into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k, SecretString::from(s))),
            _ => None,
        })
        .collect())
}

fn take(values: &mut BTreeMap<String, SecretString>, name: &str) -> Result<SecretString, UiError> {
    values.remove(name).ok_or_else(|| {
        UiError::Dialog(format!(
            "swiftDialog's answer has no field {name:?} (swiftDialog older than 2.5.0 keys \
             answers by label)"
        ))
    })
}

#[async_trait]
impl Ui for DialogUi {
    fn set_help_facts(&mut self, facts: &crate::ui::help::HelpFacts) {
        facts.clone_into(&mut self.help_facts);
        self.fill_help();
    }

    async fn progress(&mut self, progress: &Progress) -> Result<(), UiError> {
        self.ensure_dialog().await?;
        let screen = screen::progress(&self.ui, &self.strings, progress);
        if !self.window_alive() {
            if let Some(mut old) = self.window.take() {
                let status = old.child.try_wait().ok().flatten();
                old.resender.abort();
                old.file.remove();
                self.ledger.remove(old.file.mac_path());
                let exit = status.and_then(|s| s.code()).map(DialogExit::from_code);
                if exit == Some(DialogExit::KeyAuthRefused) {
                    // Every window would exit 30 the same way.
                    return Err(exit::exit_error(DialogExit::KeyAuthRefused, "", ""));
                }
                let why = match exit {
                    Some(e) if !e.is_closed_without_answer() && e != DialogExit::Button1 => self
                        .exit_error(e, &old.file.mac_path().display().to_string())
                        .await
                        .to_string(),
                    _ => format!("{status:?}"),
                };
                warn!(status = %why, "the swiftDialog progress window is gone; reopening it");
            }
            self.open_window(&screen)?;
        }
        let lines = progress_lines(&screen);
        let w = self
            .window
            .as_ref()
            .expect("the progress window was opened just above");
        let mut state = w
            .state
            .lock()
            .expect("the window state lock is never poisoned");
        if *state != lines {
            w.file.append(&lines)?;
            *state = lines;
        }
        Ok(())
    }

    async fn ask_identity(&mut self, prompt: &IdentityPrompt) -> Result<IdentityAnswer, UiError> {
        let screen = screen::identity(&self.strings, prompt);
        let mut values = self.ask(&screen).await?;
        let identifier = {
            use secrecy::ExposeSecret;
            take(&mut values, field::IDENTIFIER)?
                .expose_secret()
                .trim()
                .to_owned()
        };
        let secret = if prompt.secret_label_id.is_some() {
            Some(take(&mut values, field::SECRET)?)
        } else {
            None
        };
        Ok(IdentityAnswer { identifier, secret })
    }

    async fn identity_rejected(
        &mut self,
        attempts_left: u32,
        cooldown_seconds: Option<u64>,
    ) -> Result<(), UiError> {
        let screen = screen::identity_rejected(&self.strings, attempts_left, cooldown_seconds);
        // During a cool-down the message closes by itself when the wait is over.
        self.tell(&screen, cooldown_seconds).await
    }

    async fn ask_password(&mut self, prompt: &PasswordPrompt) -> Result<PasswordAnswer, UiError> {
        let screen = screen::password(&self.strings, prompt);
        let mut values = self.ask(&screen).await?;
        Ok(PasswordAnswer {
            password: take(&mut values, field::PASSWORD)?,
            confirmation: take(&mut values, field::CONFIRMATION)?,
        })
    }

    async fn done(&mut self, account: &str) -> Result<(), UiError> {
        self.close_window().await?;
        let screen = screen::done(&self.strings, account);
        self.tell(&screen, Some(DONE_TIMER_SECONDS)).await
    }

    async fn done_own_account(&mut self, account: &str) -> Result<(), UiError> {
        self.close_window().await?;
        let screen = screen::done_own_account(&self.strings, account);
        self.tell(&screen, Some(DONE_TIMER_SECONDS)).await
    }

    async fn fatal(&mut self, reference: &str, detail_id: &'static str) -> Result<(), UiError> {
        self.help_facts.reference = Some(reference.to_owned());
        self.fill_help();
        self.close_window().await?;
        self.ensure_dialog().await?;
        let screen = screen::fatal(&self.strings, reference, detail_id);
        // The error stays on screen after prestage exits: the process is not waited for and
        // not killed. It closes itself just before launchd starts prestage again
        // (ThrottleInterval 60 in the LaunchDaemon), so a failure that repeats shows one
        // window at a time; its command file stays listed, and the next run closes it if
        // it is still up.
        let file = CommandFile::create(&self.root)?;
        self.ledger.add(&file)?;
        let args = args::modal_args(
            &self.root,
            &self.ui,
            &screen,
            Some(FATAL_WINDOW_SECONDS),
            file.mac_path(),
        );
        std::process::Command::new(self.dialog_binary())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                UiError::Dialog(format!(
                    "cannot start {}: {e}",
                    self.dialog_binary().display()
                ))
            })?;
        Ok(())
    }

    async fn close(&mut self) -> Result<(), UiError> {
        self.finish_reaping();
        self.close_window().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn parses_swiftdialog_json_into_secrets() {
        let out = b"{\n  \"identifier\" : \"ada@example.com\",\n  \"secret\" : \"s3\"\n}\n";
        let map = parse_json_output(out).unwrap();
        assert_eq!(map["identifier"].expose_secret(), "ada@example.com");
        assert_eq!(map["secret"].expose_secret(), "s3");
        assert!(parse_json_output(b"Label : value").is_err());
    }
}
