//! The swiftDialog 2.x backend: one long-lived progress window driven through a command file,
//! and a modal `dialog --json` run per question.
//!
//! Sources (swiftDialog wiki and `dialog/Command Line/CommandLineArguments.swift`):
//! - options used: `--title`, `--message` (markdown, `\n` for a new line), `--icon`,
//!   `--bannerimage`, `--button1text`, `--button1disabled`, `--blurscreen`, `--ontop`,
//!   `--progress`, `--progresstext`, `--listitem`, `--commandfile`, `--textfield`, `--json`,
//!   `--timer`, `--hidetimerbar`;
//! - `--textfield "<label>,name=<key>,secure,required,regex=<re>,regexerror=<msg>"`: modifiers
//!   are split on commas, so no label, pattern or message we pass may contain one;
//! - the command file takes one `key: value` per line (`progress: 40`, `progresstext: …`,
//!   `message: …`, `listitem: title: …, status: success`, `blurscreen: disable`, `quit:`); lines
//!   written before the window started are ignored (2.3.2+: `processCommands` skips the file
//!   while its modification time is older than the launch), and since 2.5.5 the launcher wants
//!   it readable by the user and not a symlink. swiftDialog deletes and recreates a command file
//!   it may delete, as mode 0666 (`DialogUpdatableContent.swift`); ours is root's, 0644, in the
//!   sticky `/var/tmp`, so the window (running as the employee) can read it but neither replace
//!   nor write it. `message:` would hide the step list, so prestage never sends it;
//! - `--json` prints `{"<name>" : "<value>", …}` on stdout when button 1 closes the window;
//! - exit codes: 0 button 1, 2 button 2, 3 info button, 4 timer, 5 `quit:` command, 10 quit key,
//!   20 timeout, 30 key authorisation failed, 40 calling process died, 201 image resource,
//!   202 file not found, 203 invalid colour; the `/usr/local/bin/dialog` launcher exits 1 when
//!   nobody is logged in at the console.
//!
//! The employee's password comes back on the modal's stdout pipe and goes straight into a
//! [`SecretString`]; it never appears in argv, a file or the log.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::zeroize::Zeroize;
use secrecy::SecretString;
use tokio::process::{Child, Command};
use tracing::{debug, info, warn};

use crate::config::UiConfig;
use crate::host::Host;
use crate::paths::Root;
use crate::ui::screen::{self, field, Screen};
use crate::ui::strings::Strings;
use crate::ui::{
    IdentityAnswer, IdentityPrompt, ItemStatus, PasswordAnswer, PasswordPrompt, Progress, Ui,
    UiError,
};

/// The command file of the progress window (swiftDialog's own default is `/var/tmp/dialog.log`;
/// ours has its own name so another tool's dialog cannot read our lines or feed us a `quit:`).
pub const COMMAND_FILE: &str = "/var/tmp/prestage-dialog.log";

/// swiftDialog's release packages are signed `Developer ID Installer: Bart Reardon (PWA5E9TQ59)`;
/// the team ID is what identifies the signer (swiftDialog issue #503 quotes
/// `expectedDialogTeamID="PWA5E9TQ59"`).
pub const SWIFTDIALOG_TEAM_ID: &str = "PWA5E9TQ59";

/// How long a "contact IT" window stays up: just under the LaunchDaemon's `ThrottleInterval`.
pub const FATAL_WINDOW_SECONDS: u64 = 55;

/// How long the done screen stays before prestage logs the setup account out anyway.
const DONE_TIMER_SECONDS: u64 = 60;
/// How long to wait for the progress window to go after `quit:` before killing it.
const QUIT_GRACE: Duration = Duration::from_secs(5);
/// How often `quit:` is repeated while waiting.
const QUIT_RETRY: Duration = Duration::from_millis(500);

/// The meaning of a swiftDialog exit code (wiki "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogExit {
    Button1,
    Button2,
    InfoButton,
    Timer,
    QuitCommand,
    QuitKey,
    Timeout,
    KeyAuthFailed,
    CallerDied,
    /// 201–203: an image, file or colour argument could not be used.
    Resource(i32),
    /// 1 from the launcher: nobody is logged in at the console.
    NoConsoleUser,
    Other(i32),
}

impl DialogExit {
    pub fn from_code(code: i32) -> Self {
        match code {
            0 => Self::Button1,
            1 => Self::NoConsoleUser,
            2 => Self::Button2,
            3 => Self::InfoButton,
            4 => Self::Timer,
            5 => Self::QuitCommand,
            10 => Self::QuitKey,
            20 => Self::Timeout,
            30 => Self::KeyAuthFailed,
            40 => Self::CallerDied,
            201..=203 => Self::Resource(code),
            other => Self::Other(other),
        }
    }
}

/// swiftDialog splits `--textfield` modifiers and command-file list items on commas, so a
/// comma in a text would cut it. A single low quote looks the same to a reader.
fn no_commas(text: &str) -> String {
    text.replace(',', "\u{201a}")
}

/// swiftDialog turns the two characters `\n` into a new line in `--message` and in command-file
/// values; a real new line would end a command-file line.
fn one_line(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\\n")
}

fn status_word(status: ItemStatus) -> &'static str {
    match status {
        ItemStatus::Pending => "pending",
        ItemStatus::Wait => "wait",
        ItemStatus::Success => "success",
        ItemStatus::Fail => "fail",
    }
}

/// The `--textfield` value of one field.
pub fn textfield_arg(f: &screen::Field) -> String {
    let mut arg = format!("{},name={}", no_commas(&f.label), f.name);
    if f.secure {
        arg.push_str(",secure");
    }
    if f.required {
        arg.push_str(",required");
    }
    if let Some((re, msg)) = &f.regex {
        // A pattern with a comma cannot be passed; leave the check to prestage then.
        if re.contains(',') {
            warn!(
                field = f.name,
                "regex contains a comma; not passed to swiftDialog"
            );
        } else {
            let _ = write!(arg, ",regex={re},regexerror={}", no_commas(msg));
        }
    }
    arg
}

/// Branding and common window options. swiftDialog takes a file path, a URL or an SF Symbol
/// (`SF=...`) for `--icon` and `--bannerimage` (wiki "Icons"); a file path is passed only when
/// the file exists, because swiftDialog quits with 201 on an image it cannot load. URLs and
/// symbols cannot be checked here and are passed as they are.
fn branding_args(root: &Root, ui: &UiConfig) -> Vec<String> {
    let mut args = Vec::new();
    for (opt, path) in [("--icon", &ui.icon), ("--bannerimage", &ui.banner_image)] {
        if let Some(path) = path {
            if !path.is_absolute() || root.resolve(path).is_file() {
                args.push(opt.to_owned());
                args.push(path.display().to_string());
            } else {
                warn!(option = opt, path = %path.display(), "UI image not found; not shown");
            }
        }
    }
    args
}

/// What every window starts with: title, message and the branding.
fn window_args(root: &Root, ui: &UiConfig, screen: &Screen) -> Vec<String> {
    let mut args = vec![
        "--title".to_owned(),
        screen.title.clone(),
        "--message".to_owned(),
        one_line(&screen.message),
    ];
    args.extend(branding_args(root, ui));
    args
}

/// The arguments of the long-lived progress window.
pub fn progress_window_args(
    root: &Root,
    ui: &UiConfig,
    screen: &Screen,
    command_file: &Path,
) -> Vec<String> {
    let mut args = window_args(root, ui, screen);
    args.extend([
        "--commandfile".to_owned(),
        command_file.display().to_string(),
        "--progress".to_owned(),
        "100".to_owned(),
        "--progresstext".to_owned(),
        one_line(screen.progress_text.as_deref().unwrap_or(" ")),
        "--button1text".to_owned(),
        "OK".to_owned(),
        "--button1disabled".to_owned(),
    ]);
    for (title, _) in &screen.items {
        args.push("--listitem".to_owned());
        args.push(no_commas(title));
    }
    if ui.full_screen {
        args.push("--blurscreen".to_owned());
    }
    args.push("--ontop".to_owned());
    args
}

/// The arguments of a modal question or message. `timer` closes it by itself (exit 4).
pub fn modal_args(root: &Root, ui: &UiConfig, screen: &Screen, timer: Option<u64>) -> Vec<String> {
    let mut args = window_args(root, ui, screen);
    for f in &screen.fields {
        args.push("--textfield".to_owned());
        args.push(textfield_arg(f));
    }
    if let Some(b) = &screen.button1 {
        args.push("--button1text".to_owned());
        args.push(b.clone());
    }
    if let Some(secs) = timer {
        args.extend([
            "--timer".to_owned(),
            secs.to_string(),
            "--hidetimerbar".to_owned(),
        ]);
    }
    args.extend(["--ontop".to_owned(), "--json".to_owned()]);
    args
}

/// The command-file lines that bring the progress window to `screen` (the whole state every
/// time: a line written while the window was still starting is lost, the next update heals it).
pub fn progress_lines(screen: &Screen) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(p) = screen.progress {
        lines.push(format!("progress: {p}"));
    }
    if let Some(t) = &screen.progress_text {
        lines.push(format!("progresstext: {}", one_line(t)));
    }
    for (title, status) in &screen.items {
        lines.push(format!(
            "listitem: title: {}, status: {}",
            no_commas(title),
            status_word(*status)
        ));
    }
    lines
}

/// Creates the command file afresh: a regular file, mode 0644, owned by us (root on a Mac).
/// Whatever was at the path before is removed first, never reused: in the world-writable
/// `/var/tmp` anyone may have planted a file (it would stay theirs, and writable by them, if we
/// only truncated it) or a symlink. `O_EXCL` makes sure the file we write is the one we made.
fn create_command_file(path: &Path) -> Result<File, UiError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut attempts = 0;
    let fd = loop {
        match std::fs::symlink_metadata(path) {
            Ok(meta) => {
                if !meta.file_type().is_file() {
                    warn!(path = %path.display(), "replacing a non-regular swiftDialog command file");
                }
                match std::fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        match rustix::fs::open(
            path,
            rustix::fs::OFlags::WRONLY
                | rustix::fs::OFlags::CREATE
                | rustix::fs::OFlags::EXCL
                | rustix::fs::OFlags::NOFOLLOW
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::from_raw_mode(0o644),
        ) {
            Ok(fd) => break fd,
            // Someone made a new one between the removal and the creation: remove it again.
            Err(rustix::io::Errno::EXIST) if attempts < 3 => attempts += 1,
            Err(e) => return Err(std::io::Error::from(e).into()),
        }
    };
    let file = File::from(fd);
    // The mode above is filtered through the umask; set it exactly.
    file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    Ok(file)
}

/// The live progress window.
struct Window {
    child: Child,
    file: File,
    /// The last state written, so an unchanged update writes nothing.
    last: Vec<String>,
}

/// The swiftDialog UI. See the module docs.
pub struct DialogUi {
    root: Root,
    ui: UiConfig,
    strings: Strings,
    host: Arc<dyn Host>,
    window: Option<Window>,
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
    /// A dropped UI still asks its window to go: killing the launcher (`kill_on_drop`) does not
    /// reach the Dialog app it started in the employee's session.
    fn drop(&mut self) {
        if let Some(w) = &mut self.window {
            let _ = w.file.write_all(b"quit:\n");
        }
    }
}

impl DialogUi {
    pub fn new(root: Root, ui_config: UiConfig, strings: Strings, host: Arc<dyn Host>) -> Self {
        Self {
            root,
            ui: ui_config,
            strings,
            host,
            window: None,
        }
    }

    /// The real path of the `dialog` launcher.
    pub fn dialog_binary(&self) -> PathBuf {
        self.root.resolve(&self.ui.dialog_path)
    }

    /// The real path of the command file.
    pub fn command_file(&self) -> PathBuf {
        self.root.resolve(COMMAND_FILE)
    }

    /// Makes sure swiftDialog is installed: when it is missing and `UI.DialogPackagePath` names
    /// a package signed by swiftDialog's team, installs it; otherwise [`UiError::DialogMissing`].
    pub async fn ensure_dialog(&mut self) -> Result<(), UiError> {
        if self.dialog_binary().exists() {
            return Ok(());
        }
        let path = self.ui.dialog_path.display().to_string();
        let Some(pkg) = self.ui.dialog_package_path.clone() else {
            return Err(UiError::DialogMissing {
                path,
                hint: "install swiftDialog 2.x with the prestage package, or set \
                       UI.DialogPackagePath to a swiftDialog .pkg on the Mac"
                    .into(),
            });
        };
        if !self.root.resolve(&pkg).is_file() {
            return Err(UiError::DialogMissing {
                path,
                hint: format!(
                    "UI.DialogPackagePath {} does not exist; ship the swiftDialog package there",
                    pkg.display()
                ),
            });
        }
        let sig = self
            .host
            .package_signature(&pkg)
            .await
            .map_err(|e| UiError::DialogMissing {
                path: path.clone(),
                hint: format!(
                    "the signature of {} could not be checked: {e}; use swiftDialog's \
                     signed release package",
                    pkg.display()
                ),
            })?;
        let leaf = sig.leaf();
        if !sig.is_developer_id_of(SWIFTDIALOG_TEAM_ID) {
            return Err(UiError::DialogMissing {
                path,
                hint: format!(
                    "{} is not signed by swiftDialog's developer (team {SWIFTDIALOG_TEAM_ID}) \
                     but by {leaf:?}; use the release package from swiftDialog's GitHub page",
                    pkg.display()
                ),
            });
        }
        info!(package = %pkg.display(), signer = leaf, "installing swiftDialog");
        self.host
            .install_package(&pkg)
            .await
            .map_err(|e| UiError::DialogMissing {
                path: path.clone(),
                hint: format!("installing {} failed: {e}", pkg.display()),
            })?;
        if !self.dialog_binary().exists() {
            return Err(UiError::DialogMissing {
                path,
                hint: format!(
                    "{} installed but did not provide the dialog launcher",
                    pkg.display()
                ),
            });
        }
        Ok(())
    }

    /// Whether the progress window's process is still running.
    fn window_alive(&mut self) -> bool {
        match &mut self.window {
            Some(w) => matches!(w.child.try_wait(), Ok(None)),
            None => false,
        }
    }

    fn open_window(&mut self, screen: &Screen) -> Result<(), UiError> {
        let path = self.command_file();
        let file = create_command_file(&path)?;
        let args = progress_window_args(&self.root, &self.ui, screen, Path::new(COMMAND_FILE));
        debug!(args = ?args, "starting the swiftDialog progress window");
        let child = Command::new(self.dialog_binary())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                UiError::Dialog(format!(
                    "cannot start {}: {e}",
                    self.dialog_binary().display()
                ))
            })?;
        self.window = Some(Window {
            child,
            file,
            last: Vec::new(),
        });
        Ok(())
    }

    fn write_lines(&mut self, lines: &[String]) -> Result<(), UiError> {
        if let Some(w) = &mut self.window {
            let mut buf = String::new();
            for line in lines {
                buf.push_str(line);
                buf.push('\n');
            }
            w.file.write_all(buf.as_bytes())?;
            w.file.flush()?;
        }
        Ok(())
    }

    /// Runs one modal dialog and returns its exit and stdout (the stdout buffer is the caller's
    /// to wipe: it may hold a password).
    async fn run_modal(
        &mut self,
        screen: &Screen,
        timer: Option<u64>,
    ) -> Result<(DialogExit, Vec<u8>), UiError> {
        self.ensure_dialog().await?;
        let blurred = self.ui.full_screen && self.window_alive();
        if blurred {
            // A blurred screen would cover the question (swiftDialog command `blurscreen:`).
            self.write_lines(&["blurscreen: disable".to_owned()])?;
        }
        let args = modal_args(&self.root, &self.ui, screen, timer);
        debug!(screen = screen.kind.name(), args = ?args, "asking through swiftDialog");
        let output = Command::new(self.dialog_binary())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| {
                UiError::Dialog(format!(
                    "cannot start {}: {e}",
                    self.dialog_binary().display()
                ))
            })?;
        if blurred {
            self.write_lines(&["blurscreen: enable".to_owned()])?;
        }
        let code = output.status.code().unwrap_or(-1);
        let exit = DialogExit::from_code(code);
        debug!(screen = screen.kind.name(), code, "swiftDialog closed");
        if exit == DialogExit::NoConsoleUser {
            let user = self.host.console_user().await.unwrap_or_default();
            if user.is_empty() || user == "root" || user == "_mbsetupuser" {
                let mut stdout = output.stdout;
                stdout.zeroize();
                return Err(UiError::NoConsoleUser);
            }
        }
        Ok((exit, output.stdout))
    }

    /// Runs a question and returns its `--json` values, each straight into a secret.
    async fn ask(&mut self, screen: &Screen) -> Result<BTreeMap<String, SecretString>, UiError> {
        let (exit, mut stdout) = self.run_modal(screen, None).await?;
        let result = match exit {
            DialogExit::Button1 => parse_json_output(&stdout),
            DialogExit::Button2
            | DialogExit::InfoButton
            | DialogExit::Timer
            | DialogExit::QuitCommand
            | DialogExit::QuitKey
            | DialogExit::Timeout => Err(UiError::Cancelled {
                code: exit_code(exit),
            }),
            other => Err(exit_error(other)),
        };
        stdout.zeroize();
        result
    }

    /// Shows a message with one button; every way of closing it is fine.
    async fn tell(&mut self, screen: &Screen, timer: Option<u64>) -> Result<(), UiError> {
        let (exit, mut stdout) = self.run_modal(screen, timer).await?;
        stdout.zeroize();
        match exit {
            DialogExit::Button1
            | DialogExit::Button2
            | DialogExit::InfoButton
            | DialogExit::Timer
            | DialogExit::QuitCommand
            | DialogExit::QuitKey
            | DialogExit::Timeout => Ok(()),
            other => Err(exit_error(other)),
        }
    }

    async fn close_window(&mut self) -> Result<(), UiError> {
        let Some(mut w) = self.window.take() else {
            return Ok(());
        };
        // A `quit:` written while the window was still starting is not seen (2.3.2+ ignores
        // older lines), so it is repeated until the window goes.
        let deadline = tokio::time::Instant::now() + QUIT_GRACE;
        loop {
            if !matches!(w.child.try_wait(), Ok(None)) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            w.file.write_all(b"quit:\n")?;
            w.file.flush()?;
            let _ = tokio::time::timeout(QUIT_RETRY, w.child.wait()).await;
        }
        warn!("the swiftDialog progress window ignored quit:; stopping it");
        let _ = w.child.kill().await;
        Ok(())
    }
}

fn exit_code(exit: DialogExit) -> i32 {
    match exit {
        DialogExit::Button1 => 0,
        DialogExit::NoConsoleUser => 1,
        DialogExit::Button2 => 2,
        DialogExit::InfoButton => 3,
        DialogExit::Timer => 4,
        DialogExit::QuitCommand => 5,
        DialogExit::QuitKey => 10,
        DialogExit::Timeout => 20,
        DialogExit::KeyAuthFailed => 30,
        DialogExit::CallerDied => 40,
        DialogExit::Resource(c) | DialogExit::Other(c) => c,
    }
}

fn exit_error(exit: DialogExit) -> UiError {
    let code = exit_code(exit);
    let what = match exit {
        DialogExit::NoConsoleUser => "the launcher found no console session",
        DialogExit::KeyAuthFailed => "key authorisation failed",
        DialogExit::CallerDied => "it saw its calling process die",
        DialogExit::Resource(201) => "an image (UI.Icon or UI.BannerImage) could not be loaded",
        DialogExit::Resource(202) => "a file it was given was not found",
        DialogExit::Resource(_) => "an argument could not be used",
        _ => "unexpected exit",
    };
    UiError::Dialog(format!("swiftDialog exited with code {code}: {what}"))
}

/// Parses swiftDialog's `--json` output into secrets. Values that are not strings are skipped.
pub fn parse_json_output(stdout: &[u8]) -> Result<BTreeMap<String, SecretString>, UiError> {
    let text = std::str::from_utf8(stdout)
        .map_err(|_| UiError::Dialog("swiftDialog printed output that is not UTF-8".into()))?;
    // Only the JSON object: older launchers may print other lines around it.
    let start = text.find('{');
    let end = text.rfind('}');
    let (Some(start), Some(end)) = (start, end) else {
        return Err(UiError::Dialog(
            "swiftDialog printed no JSON answer (is it 2.x?)".into(),
        ));
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
            "swiftDialog's answer has no field {name:?} (is it swiftDialog 2.x?)"
        ))
    })
}

#[async_trait]
impl Ui for DialogUi {
    async fn progress(&mut self, progress: &Progress) -> Result<(), UiError> {
        self.ensure_dialog().await?;
        let screen = screen::progress(&self.ui, &self.strings, progress);
        if !self.window_alive() {
            if let Some(mut old) = self.window.take() {
                let status = old.child.try_wait().ok().flatten();
                warn!(status = ?status, "the swiftDialog progress window is gone; reopening it");
            }
            self.open_window(&screen)?;
        }
        let lines = progress_lines(&screen);
        let changed = self.window.as_ref().is_some_and(|w| w.last != lines);
        if changed {
            self.write_lines(&lines)?;
            if let Some(w) = &mut self.window {
                w.last = lines;
            }
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

    async fn fatal(&mut self, reference: &str, detail_id: &'static str) -> Result<(), UiError> {
        self.close_window().await?;
        self.ensure_dialog().await?;
        let screen = screen::fatal(&self.strings, reference, detail_id);
        // The error stays on screen after prestage exits: the process is not waited for and
        // not killed. It closes itself just before launchd starts prestage again
        // (ThrottleInterval 60 in the LaunchDaemon), so a failure that repeats shows one
        // window at a time instead of piling one up every minute.
        let args = modal_args(&self.root, &self.ui, &screen, Some(FATAL_WINDOW_SECONDS));
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
        self.close_window().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn textfield_has_swiftdialog_syntax_and_no_stray_commas() {
        let f = screen::Field {
            label: "Email, please".into(),
            name: "identifier",
            secure: false,
            required: true,
            regex: Some(("^a$".into(), "no, not that".into())),
        };
        assert_eq!(
            textfield_arg(&f),
            "Email\u{201a} please,name=identifier,required,regex=^a$,regexerror=no\u{201a} not that"
        );
    }

    #[test]
    fn parses_swiftdialog_json_into_secrets() {
        let out = b"{\n  \"identifier\" : \"ada@example.com\",\n  \"secret\" : \"s3\"\n}\n";
        let map = parse_json_output(out).unwrap();
        assert_eq!(map["identifier"].expose_secret(), "ada@example.com");
        assert_eq!(map["secret"].expose_secret(), "s3");
        assert!(parse_json_output(b"Label : value").is_err());
    }

    #[test]
    fn exit_codes_follow_the_wiki() {
        assert_eq!(DialogExit::from_code(0), DialogExit::Button1);
        assert_eq!(DialogExit::from_code(5), DialogExit::QuitCommand);
        assert_eq!(DialogExit::from_code(10), DialogExit::QuitKey);
        assert_eq!(DialogExit::from_code(20), DialogExit::Timeout);
        assert_eq!(DialogExit::from_code(202), DialogExit::Resource(202));
        for c in [0, 1, 2, 3, 4, 5, 10, 20, 30, 40, 201, 77] {
            assert_eq!(exit_code(DialogExit::from_code(c)), c);
        }
    }

    #[test]
    fn command_lines_are_single_lines() {
        let s = Screen {
            kind: screen::ScreenKind::Progress,
            title: "t".into(),
            message: "m".into(),
            fields: vec![],
            button1: None,
            progress: Some(40),
            progress_text: Some("a\nb".into()),
            items: vec![("Install, now".into(), ItemStatus::Wait)],
        };
        assert_eq!(
            progress_lines(&s),
            vec![
                "progress: 40",
                "progresstext: a\\nb",
                "listitem: title: Install\u{201a} now, status: wait"
            ]
        );
    }
}
