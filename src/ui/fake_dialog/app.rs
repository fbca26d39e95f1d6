//! The fake Dialog.app (`/Library/Application Support/Dialog/Dialog.app/Contents/MacOS/Dialog`),
//! started by the fake launcher. One process is one window, as with the real app. It:
//! - reads its version from its own `Info.plist` (`name=` in text fields only from 2.5.0;
//!   the launcher watch only from 3.0);
//! - exits 30 with `Key authorisation required` when a managed `AuthorisationKey` (or
//!   `AuthorizationKey`, `AuthKey`, `Key`) is set in `au.csiro.dialog` and neither `--key` nor
//!   `DIALOG_AUTH_KEY` hashes to it (`dialog/Functions/Preferences.swift`,
//!   `processCLOptions` in `ProcessCLOptions.swift`; the preference holds the key's SHA-256);
//! - follows its command file like `FileReader` (`dialog/Updatable Content/
//!   DialogUpdatableContent.swift`): it opens the file once, reads everything in it, then
//!   whatever is appended, and ignores every line while the file's modification time is older
//!   than the app's launch (`processCommands`); `quit:` exits 5. Every window does this, a
//!   question too: `DialogUpdatableContent.init` always watches a command file (the default
//!   `/var/tmp/dialog.log` when none is given);
//! - quits with 40 once its launcher (`--pid`) is gone, checking every second (3.x:
//!   `dialog/Functions/SystemInfo.swift`, `dialogApp.swift`);
//! - Cmd+Q quits with 10 only while the quit key is the default `q`; with another
//!   `--quitkey` Cmd+Q is swallowed and Cmd+<quitkey> quits (`captureQuitKey`,
//!   `dialog/Functions/System.swift`);
//! - answers a question from the scripted employee after their think time and prints the
//!   `--json` output only on exit 0 (`quitDialog`); a window whose button 1 is disabled (the
//!   progress window) has nothing a person could press.
//!
//! While it runs, the window's state (what the employee sees) is kept in
//! `/.fakemac/dialog-windows/<pid>.json` for tests.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use super::args::{parse_listitem, parse_textfield, Args, TextField};
use super::{
    append_jsonl, json_output, now_ms, pop_answer, settings, window_file, CommandLine, FakeWindow,
    COMMANDS_FILE, DEFAULT_COMMAND_FILE, EXIT_SCRIPT,
};
use crate::paths::{mac, Root};
use crate::ui::dialog::DialogExit;

/// Where a configuration profile's computer-level settings for swiftDialog land.
pub const MANAGED_DIALOG_PREFERENCES: &str = "/Library/Managed Preferences/au.csiro.dialog.plist";

/// How often the follower looks at the command file and the key presses.
const POLL: Duration = Duration::from_millis(20);

/// `major.minor.patch` of a version string (missing parts are 0).
pub(super) fn version_parts(version: &str) -> (u32, u32, u32) {
    let mut parts = version
        .split('.')
        .map(|p| p.trim().parse::<u32>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

/// The app's `CFBundleShortVersionString` and `CFBundleVersion`.
fn own_version(root: &Root) -> (String, String) {
    let info = plist::Value::from_file(root.resolve(mac::DIALOG_INFO_PLIST)).ok();
    let get = |key: &str| {
        info.as_ref()
            .and_then(|v| v.as_dictionary())
            .and_then(|d| d.get(key))
            .and_then(plist::Value::as_string)
            .unwrap_or("0")
            .to_owned()
    };
    (get("CFBundleShortVersionString"), get("CFBundleVersion"))
}

/// The managed authorisation key (its SHA-256, hex), if a profile sets one.
fn managed_key(root: &Root) -> Option<String> {
    let prefs = plist::Value::from_file(root.resolve(MANAGED_DIALOG_PREFERENCES)).ok()?;
    let dict = prefs.as_dictionary()?;
    ["AuthorisationKey", "AuthorizationKey", "AuthKey", "Key"]
        .iter()
        .find_map(|k| dict.get(k).and_then(plist::Value::as_string))
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
}

fn sha256_hex(text: &str) -> String {
    use std::fmt::Write as _;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// How the window ends.
struct Exit {
    code: i32,
    stdout: String,
}

impl Exit {
    fn code(code: i32) -> Self {
        Self {
            code,
            stdout: String::new(),
        }
    }
}

/// Runs the app with the launcher's arguments; returns its exit code.
pub fn run(root: &Root, raw: &[String]) -> i32 {
    let args = Args::new(raw);
    let (version, build) = own_version(root);
    let (major, minor, _) = version_parts(&version);
    if args.present("version") {
        println!("{version}.{build}");
        return 0;
    }
    if let Some(stored) = managed_key(root) {
        let given = args
            .text("key")
            .filter(|k| !k.is_empty())
            .or_else(|| std::env::var("DIALOG_AUTH_KEY").ok())
            .unwrap_or_default();
        if sha256_hex(&given) != stored {
            println!("Key authorisation required");
            return DialogExit::KeyAuthRefused.code();
        }
    }
    let name_supported = (major, minor) >= (2, 5);
    let fields: Vec<TextField> = args
        .multi("textfield")
        .iter()
        .map(|spec| parse_textfield(spec, name_supported))
        .collect();
    // The scripted employee answers by the field's intended name (what they read is the
    // label; the script is keyed by name for convenience).
    let script_keys: Vec<String> = args
        .multi("textfield")
        .iter()
        .map(|spec| parse_textfield(spec, true).key().to_owned())
        .collect();
    let command_file = args
        .text("commandfile")
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| DEFAULT_COMMAND_FILE.to_owned());
    let quit_key = args
        .text("quitkey")
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| "q".to_owned());
    let launcher = args
        .text("pid")
        .and_then(|p| p.parse::<i32>().ok())
        .filter(|_| major >= 3)
        .and_then(rustix::process::Pid::from_raw);
    let button1_disabled = args.present("button1disabled");
    let window = FakeWindow {
        pid: std::process::id(),
        launcher_pid: launcher.map(|p| p.as_raw_nonzero().get().unsigned_abs()),
        command_file: command_file.clone(),
        kind: if !fields.is_empty() {
            "question"
        } else if button1_disabled {
            "progress"
        } else {
            "message"
        }
        .to_owned(),
        title: args.text("title").unwrap_or_default(),
        message: args.text("message").unwrap_or_default(),
        progress: None,
        progress_text: args.text("progresstext"),
        items: args
            .multi("listitem")
            .iter()
            .map(|spec| parse_listitem(spec))
            .collect(),
        fields: fields.iter().map(|f| f.key().to_owned()).collect(),
        quit_key: quit_key.clone(),
        version: version.clone(),
        started_ms: now_ms(),
    };
    let state_path = window_file(root, std::process::id());
    window.save(&state_path);
    // The launch time on the clock that stamps files (Linux stamps them from a coarse clock):
    // the modification time of the state file just written.
    let launch_time = fs::metadata(&state_path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| SystemTime::now());
    prepare_command_file(&root.resolve(&command_file));

    let (tx, rx) = mpsc::channel::<Exit>();
    let follower = Follower {
        root: root.clone(),
        path: root.resolve(&command_file),
        launch_time,
        launcher,
        quit_key,
        window,
        state_path: state_path.clone(),
    };
    std::thread::spawn(move || follower.run(&tx));

    let exit = person(root, &args, &fields, &script_keys, button1_disabled, &rx);
    let _ = fs::remove_file(&state_path);
    let _ = fs::remove_file(state_path.with_extension("keys"));
    if !exit.stdout.is_empty() {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(exit.stdout.as_bytes());
        let _ = out.flush();
    }
    exit.code
}

/// `DialogUpdatableContent.init`, as the employee: `killCommandFile` deletes the file when the
/// user may delete it (its folder writable by them and not sticky), `createCommandFile`
/// recreates it 0666, or empties an existing file the user may write. A file that root made
/// 0644 in `/var/tmp` (sticky) is left as it is.
fn prepare_command_file(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let folder_mode = path
        .parent()
        .and_then(|d| fs::metadata(d).ok())
        .map_or(0, |m| m.permissions().mode());
    let deletable = folder_mode & 0o002 != 0 && folder_mode & 0o1000 == 0;
    if deletable && fs::remove_file(path).is_ok() {
        if fs::write(path, b"").is_ok() {
            let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o666));
        }
        return;
    }
    let writable = fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o002 != 0);
    if writable {
        let _ = fs::write(path, b"");
    }
}

/// The scripted employee in front of the window.
fn person(
    root: &Root,
    args: &Args,
    fields: &[TextField],
    script_keys: &[String],
    button1_disabled: bool,
    rx: &mpsc::Receiver<Exit>,
) -> Exit {
    let think = Duration::from_millis(settings(root).think_ms);
    if let Ok(exit) = rx.recv_timeout(think) {
        return exit;
    }
    let timer = args.text("timer").and_then(|t| t.parse::<u64>().ok());
    if button1_disabled {
        // Nothing to press: the window waits for `quit:`, its launcher or a quit key.
        return rx.recv().unwrap_or_else(|_| Exit::code(EXIT_SCRIPT));
    }
    let scripted = if fields.is_empty() {
        // A message: a person reads it and presses button 1.
        None
    } else {
        let keys: Vec<&str> = script_keys.iter().map(String::as_str).collect();
        match pop_answer(root, &keys) {
            Ok(Some(a)) => Some(a),
            Ok(None) if timer.is_some() => return Exit::code(DialogExit::Timer.code()),
            Ok(None) => {
                eprintln!("fake dialog: no scripted answer left for a question with text fields");
                return Exit::code(EXIT_SCRIPT);
            }
            Err(e) => {
                eprintln!("fake dialog: cannot read the script: {e}");
                return Exit::code(EXIT_SCRIPT);
            }
        }
    };
    let scripted = scripted.unwrap_or_default();
    if scripted.exit != 0 {
        return Exit::code(scripted.exit);
    }
    let mut out = Vec::new();
    for (tf, script_key) in fields.iter().zip(script_keys) {
        let value = scripted
            .values
            .get(script_key)
            .cloned()
            .or_else(|| tf.value.clone())
            .unwrap_or_default();
        if tf.required && value.is_empty() {
            eprintln!(
                "fake dialog: required field {:?} has no scripted value (swiftDialog would not close)",
                tf.key()
            );
            return Exit::code(EXIT_SCRIPT);
        }
        // swiftDialog checks with NSRegularExpression (ICU); Rust's engine agrees on the
        // patterns prestage sends. An invalid pattern never matches (`checkRegexPattern`).
        if let (Some(re), false) = (&tf.regex, value.is_empty()) {
            let ok = regex::Regex::new(re).is_ok_and(|r| r.is_match(&value));
            if !ok {
                eprintln!(
                    "fake dialog: field {:?} does not match its regex; swiftDialog would show {:?}",
                    tf.key(),
                    tf.regexerror.as_deref().unwrap_or("")
                );
                return Exit::code(EXIT_SCRIPT);
            }
        }
        out.push((tf.key().to_owned(), value));
    }
    let stdout = if args.present("json") {
        format!("{}\n", json_output(&out))
    } else {
        out.iter().fold(String::new(), |mut text, (k, v)| {
            use std::fmt::Write as _;
            let _ = writeln!(text, "{k} : {v}");
            text
        })
    };
    Exit {
        code: DialogExit::Button1.code(),
        stdout,
    }
}

/// Follows the command file, the launcher and the keyboard.
struct Follower {
    root: Root,
    path: PathBuf,
    launch_time: SystemTime,
    launcher: Option<rustix::process::Pid>,
    quit_key: String,
    window: FakeWindow,
    state_path: PathBuf,
}

impl Follower {
    fn run(mut self, tx: &mpsc::Sender<Exit>) {
        // `FileHandle(forReadingFrom:)` once; an unreadable file is logged and never read.
        let mut file = File::open(&self.path).ok();
        let mut polls: u32 = 0;
        let mut keys_seen = 0;
        loop {
            if let Some(f) = &mut file {
                let mut buf = Vec::new();
                if f.read_to_end(&mut buf).is_ok() && !buf.is_empty() {
                    if let Some(code) = self.process(&String::from_utf8_lossy(&buf)) {
                        let _ = tx.send(Exit::code(code));
                        return;
                    }
                }
            }
            if let Some(code) = self.keys(&mut keys_seen) {
                let _ = tx.send(Exit::code(code));
                return;
            }
            polls += 1;
            if polls % 50 == 0 {
                if let Some(pid) = self.launcher {
                    if rustix::process::test_kill_process(pid).is_err() {
                        let _ = tx.send(Exit {
                            code: DialogExit::LauncherGone.code(),
                            stdout: "dialog quit becasue calling process was terminated\n"
                                .to_owned(),
                        });
                        return;
                    }
                }
            }
            std::thread::sleep(POLL);
        }
    }

    /// `parseAndPrint` + `processCommands` for one chunk; `Some(code)` to quit.
    fn process(&mut self, chunk: &str) -> Option<i32> {
        // `getModificationDateOf`: a file that cannot be read counts as modified now.
        let modified = fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .unwrap_or_else(|_| SystemTime::now());
        let accepted = modified >= self.launch_time;
        let mut quit = None;
        for line in chunk.split(['\n', '\r']).filter(|l| !l.is_empty()) {
            let _ = append_jsonl(
                &self.root.resolve(COMMANDS_FILE),
                &CommandLine {
                    line: line.to_owned(),
                    at_ms: now_ms(),
                    accepted,
                    command_file: self.window.command_file.clone(),
                    pid: self.window.pid,
                },
            );
            if !accepted || quit.is_some() {
                continue;
            }
            quit = self.apply(line);
        }
        self.window.save(&self.state_path);
        quit
    }

    /// One command (the first space-separated word, lowercased, including its colon).
    fn apply(&mut self, line: &str) -> Option<i32> {
        let command = line.split(' ').next().unwrap_or("").to_lowercase();
        let rest = line.split_once(' ').map_or("", |(_, r)| r);
        match command.as_str() {
            "quit:" => return Some(DialogExit::QuitCommand.code()),
            "title:" => rest.clone_into(&mut self.window.title),
            "message:" => self.window.message = rest.replace("\\n", "\n"),
            "progresstext:" => self.window.progress_text = Some(rest.to_owned()),
            "progress:" => {
                self.window.progress = match rest {
                    "0" | "reset" | "indeterminate" => None,
                    "complete" => Some(100.0),
                    other => other.parse::<f64>().ok().or(self.window.progress),
                };
            }
            "listitem:" => self.list_item(rest),
            _ => {}
        }
        None
    }

    /// `listitem:` in both forms: `<title>: <status>` when the title is a row's, else
    /// comma-separated `key: value` pairs (the row is found by exact title).
    fn list_item(&mut self, rest: &str) {
        let old: Vec<&str> = rest.split(": ").collect();
        if let (Some(first), Some(last)) = (old.first(), old.last()) {
            if let Some(row) = self.window.items.iter_mut().find(|(t, _)| t == first) {
                (*last).clone_into(&mut row.1);
                return;
            }
        }
        let mut title = String::new();
        let mut status = None;
        for part in rest.split(',') {
            let action: Vec<&str> = part.split(": ").collect();
            let value = action.get(1).map_or("", |v| v.trim());
            match action[0].trim().to_lowercase().as_str() {
                "title" => value.clone_into(&mut title),
                "status" => status = Some(value.to_owned()),
                _ => {}
            }
        }
        if let (Some(row), Some(status)) = (
            self.window.items.iter_mut().find(|(t, _)| *t == title),
            status,
        ) {
            row.1 = status;
        }
    }

    /// Key presses a test asked for (`fake_dialog::press_keys`).
    fn keys(&self, seen: &mut usize) -> Option<i32> {
        let text = fs::read_to_string(self.state_path.with_extension("keys")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let new = lines.get(*seen..).unwrap_or_default().to_vec();
        *seen = lines.len();
        for key in new {
            let Some(character) = key.strip_prefix("cmd+") else {
                continue;
            };
            if character == "q" && self.quit_key != "q" {
                // "cmd+q is disabled"
                continue;
            }
            if character == "q" || character == self.quit_key {
                return Some(DialogExit::QuitKey.code());
            }
        }
        None
    }
}
