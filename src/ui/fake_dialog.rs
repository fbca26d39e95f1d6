//! A fake swiftDialog for tests, the simulator and `prestage demo`: the 3.x launcher
//! (`/usr/local/bin/dialog`, [`launcher`]) and the app it starts (`Dialog.app`, [`app`]), each
//! a separate process as on a Mac.
//!
//! `<root>/usr/local/bin/dialog` (the launcher) and `<root>/Library/Application Support/Dialog/
//! Dialog.app/Contents/MacOS/Dialog` (the app) link to the fake Mac's shim
//! ([`crate::host::fake::install_fake_dialog`]), which hands the call to [`run`] or [`run_app`].
//! Every behaviour follows swiftDialog's source (github swiftDialog/swiftDialog:
//! `dialogcli/dialogcli.swift`, `dialog/Command Line/CLOptions.swift` and
//! `ProcessCLOptions.swift`, `dialog/App Processing/AppVariables.swift`,
//! `dialog/Updatable Content/DialogUpdatableContent.swift`, `dialog/Functions/System.swift`,
//! `Preferences.swift`), cited where it is modelled. What the fake adds for tests:
//! - every launcher argv is recorded in `/.fakemac/dialog-calls.jsonl` (and the fake world's
//!   tool log), with the arguments swiftDialog would not understand ([`DialogCall::unknown`]:
//!   the real one ignores them silently);
//! - every command-file line a window read is recorded in `/.fakemac/dialog-commands.jsonl`,
//!   with whether it was taken in (written after the window started) or ignored;
//! - each open window keeps its state (what the employee sees) in
//!   `/.fakemac/dialog-windows/<pid>.json` ([`windows`]), and takes key presses
//!   ([`press_keys`]);
//! - a question is answered from the queue in `/.fakemac/dialog-script.json`, after the
//!   scripted employee's think time ([`set_think_time`]).

mod app;
mod args;
mod launcher;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use app::MANAGED_DIALOG_PREFERENCES;
pub use args::{
    parse_listitem, parse_textfield, split_using_arg_regex, unknown_options, Args, TextField,
};
pub use launcher::reorder_arguments;

use crate::host::fake::world;
use crate::paths::{mac, Root};

pub const CALLS_FILE: &str = "/.fakemac/dialog-calls.jsonl";
pub const COMMANDS_FILE: &str = "/.fakemac/dialog-commands.jsonl";
pub const SCRIPT_FILE: &str = "/.fakemac/dialog-script.json";
pub const WINDOWS_DIR: &str = "/.fakemac/dialog-windows";
pub const SETTINGS_FILE: &str = "/.fakemac/dialog-settings.json";
/// The command file every swiftDialog window shares unless it is given one: the 3.x launcher's
/// `defaultCommandFile` and the app's `defaultStatusLogFile`.
pub const DEFAULT_COMMAND_FILE: &str = "/var/tmp/dialog.log";

/// Exit code of the fake when the script cannot answer the question (the real window would
/// stay open waiting for a person). 70 is `EX_SOFTWARE`, a code swiftDialog never uses.
pub const EXIT_SCRIPT: i32 = 70;

/// One answer of the script: field values by key, and the exit code (default 0, button 1).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ScriptedAnswer {
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    #[serde(default)]
    pub exit: i32,
}

/// One recorded `dialog` run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialogCall {
    pub args: Vec<String>,
    pub at_ms: u64,
    /// Arguments that look like options swiftDialog does not have (it would ignore them, or
    /// lose the value that starts with `-`).
    #[serde(default)]
    pub unknown: Vec<String>,
}

/// One command-file line a window read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandLine {
    pub line: String,
    pub at_ms: u64,
    /// Written after the window started (else swiftDialog ignores it).
    #[serde(default)]
    pub accepted: bool,
    /// The command file, as the window was given it.
    #[serde(default)]
    pub command_file: String,
    /// The window (the app's process).
    #[serde(default)]
    pub pid: u32,
}

/// An open window and what it shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FakeWindow {
    pub pid: u32,
    /// The launcher it watches (3.x), if any.
    pub launcher_pid: Option<u32>,
    pub command_file: String,
    /// `progress` (button 1 disabled), `question` (text fields) or `message`.
    pub kind: String,
    pub title: String,
    pub message: String,
    pub progress: Option<f64>,
    pub progress_text: Option<String>,
    /// The step list: title and status.
    pub items: Vec<(String, String)>,
    /// The `--json` keys of its text fields.
    pub fields: Vec<String>,
    pub quit_key: String,
    /// The app's `CFBundleShortVersionString`.
    pub version: String,
    pub started_ms: u64,
}

impl FakeWindow {
    fn save(&self, path: &Path) {
        if let Some(dir) = path.parent() {
            let _ = fs::create_dir_all(dir);
        }
        let tmp = path.with_extension("json.tmp");
        if let Ok(bytes) = serde_json::to_vec_pretty(self) {
            if fs::write(&tmp, bytes).is_ok() {
                let _ = fs::rename(&tmp, path);
            }
        }
    }
}

fn window_file(root: &Root, pid: u32) -> PathBuf {
    root.resolve(WINDOWS_DIR).join(format!("{pid}.json"))
}

/// Whether `pid` still runs (a zombie, exited but not yet reaped, does not).
fn alive(pid: u32) -> bool {
    let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    if rustix::process::test_kill_process(p).is_err() {
        return false;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state != "Z" && state != "X"),
        Err(_) => true,
    }
}

/// The swiftDialog windows open on the fake Mac now, oldest first.
pub fn windows(root: &Root) -> Vec<FakeWindow> {
    let Ok(entries) = fs::read_dir(root.resolve(WINDOWS_DIR)) else {
        return Vec::new();
    };
    let mut out: Vec<FakeWindow> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| serde_json::from_slice(&fs::read(e.path()).ok()?).ok())
        .filter(|w: &FakeWindow| alive(w.pid))
        .collect();
    out.sort_by_key(|w| (w.started_ms, w.pid));
    out
}

/// The employee presses `keys` (e.g. `cmd+q`) on window `pid`.
pub fn press_keys(root: &Root, pid: u32, keys: &str) -> std::io::Result<()> {
    let path = window_file(root, pid).with_extension("keys");
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    writeln!(f, "{keys}")
}

/// Knobs of the scripted employee.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// How long the employee takes before answering a question or closing a message.
    pub think_ms: u64,
}

fn settings(root: &Root) -> Settings {
    fs::read(root.resolve(SETTINGS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// How long the scripted employee thinks before they answer (default: not at all).
pub fn set_think_time(root: &Root, think: Duration) -> std::io::Result<()> {
    let settings = Settings {
        think_ms: u64::try_from(think.as_millis()).unwrap_or(u64::MAX),
    };
    fs::write(root.resolve(SETTINGS_FILE), serde_json::to_vec(&settings)?)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn append_jsonl<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(&line)
}

fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Vec<T> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Records a launcher run.
fn record_call(root: &Root, args: &[String]) {
    let call = DialogCall {
        args: args.to_vec(),
        at_ms: now_ms(),
        unknown: unknown_options(args),
    };
    if let Err(e) = append_jsonl(&root.resolve(CALLS_FILE), &call) {
        eprintln!("fake dialog: cannot record the call: {e}");
    }
    let _ = world::record_call(
        root,
        &world::Call {
            tool: mac::DIALOG.to_owned(),
            args: args.to_vec(),
            at_ms: call.at_ms,
        },
    );
}

/// Every `dialog` run recorded under `root`.
pub fn calls(root: &Root) -> Vec<DialogCall> {
    read_jsonl(&root.resolve(CALLS_FILE))
}

/// Every command-file line a window took in (written after it started), in order.
pub fn command_lines(root: &Root) -> Vec<String> {
    all_command_lines(root)
        .into_iter()
        .filter(|c| c.accepted)
        .map(|c| c.line)
        .collect()
}

/// Every command-file line any window read, taken in or ignored.
pub fn all_command_lines(root: &Root) -> Vec<CommandLine> {
    read_jsonl(&root.resolve(COMMANDS_FILE))
}

/// Replaces the answer queue.
pub fn write_script(root: &Root, answers: &[ScriptedAnswer]) -> std::io::Result<()> {
    let path = root.resolve(SCRIPT_FILE);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(path, serde_json::to_vec_pretty(answers)?)
}

/// Takes the next answer off the queue, under an exclusive lock (several fakes may run).
///
/// The answer taken is the first one meant for this question: one whose values name at least
/// one of the question's fields (or that has no values, e.g. a button choice). So a script may
/// queue several identities and several passwords, and a restarted prestage that asks again
/// gets the next answer of the right kind.
pub(crate) fn pop_answer(root: &Root, fields: &[&str]) -> Result<Option<ScriptedAnswer>, String> {
    let path = root.resolve(SCRIPT_FILE);
    let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut queue: Vec<ScriptedAnswer> = if text.trim().is_empty() {
        Vec::new()
    } else {
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
    };
    let fits = |a: &ScriptedAnswer| {
        a.values.is_empty() || a.values.keys().any(|k| fields.contains(&k.as_str()))
    };
    let Some(index) = queue.iter().position(fits) else {
        return Ok(None);
    };
    let next = queue.remove(index);
    let rest = serde_json::to_vec_pretty(&queue).map_err(|e| e.to_string())?;
    file.set_len(0).map_err(|e| e.to_string())?;
    file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    file.write_all(&rest).map_err(|e| e.to_string())?;
    Ok(Some(next))
}

/// Escapes a string the way Foundation's JSONSerialization does (it also escapes `/`).
fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `--json` output: SwiftyJSON prints through JSONSerialization's pretty printer, which
/// indents by two spaces and puts ` : ` between key and value.
pub fn json_output(values: &[(String, String)]) -> String {
    if values.is_empty() {
        return "{\n\n}".to_owned();
    }
    let body = values
        .iter()
        .map(|(k, v)| format!("  {} : {}", json_string(k), json_string(v)))
        .collect::<Vec<_>>()
        .join(",\n");
    format!("{{\n{body}\n}}")
}

/// Installs the fake swiftDialog (its current version) on the fake Mac: the launcher, the app
/// and the app's `Info.plist`. Returns the launcher's path.
pub fn install_fake_dialog(root: &Root, exe: &Path) -> std::io::Result<PathBuf> {
    install_fake_dialog_version(root, exe, crate::host::fake::FAKE_DIALOG_VERSION)
}

/// [`install_fake_dialog`] of a given swiftDialog version (e.g. an old `2.4.2`).
pub fn install_fake_dialog_version(
    root: &Root,
    exe: &Path,
    version: &str,
) -> std::io::Result<PathBuf> {
    crate::host::fake::install_swiftdialog(root, exe, version).map_err(std::io::Error::other)?;
    Ok(root.tool(mac::DIALOG))
}

/// Runs the fake app (`Dialog.app/Contents/MacOS/Dialog`, which the launcher starts) with
/// `args`; returns its exit code.
pub fn run_app(root: &Root, args: &[String]) -> i32 {
    app::run(root, args)
}

/// Runs the fake launcher `dialog` with `args` (without argv[0]); returns the exit code.
pub fn run(root: &Root, args: &[String]) -> i32 {
    launcher::run(root, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn textfields_are_cut_at_word_equals_and_flag_words_not_at_every_comma() {
        let tf = parse_textfield(
            "Email, please,name=identifier,required,regex=^[0-9]{4,6}$,regexerror=bad",
            true,
        );
        assert_eq!(tf.label, "Email, please");
        assert_eq!(tf.key(), "identifier");
        assert!(tf.required && !tf.secure);
        assert_eq!(tf.regex.as_deref(), Some("^[0-9]{4,6}$"));
        assert_eq!(tf.regexerror.as_deref(), Some("bad"));
        // `word=` cuts even without a comma; unknown words are ignored.
        let tf = parse_textfield("Pick a=b,secure", true);
        assert_eq!(tf.label, "Pick");
        assert!(tf.secure);
        // Before 2.5.0 `name=` is ignored and the answer is keyed by the label.
        let tf = parse_textfield("Your email,name=identifier", false);
        assert_eq!(tf.key(), "Your email");
        assert_eq!(
            split_using_arg_regex("A,name=x,secure"),
            vec!["A", ",name=", "x", ",secure", ""]
        );
    }

    #[test]
    fn options_are_found_anywhere_and_unknown_ones_reported() {
        let a = Args::new(&s(&[
            "--json",
            "-t",
            "Hi",
            "--message",
            "-x",
            "--title",
            "T2",
        ]));
        assert_eq!(a.text("title").as_deref(), Some("T2"));
        // A value that starts with `-` is replaced by the default.
        assert_eq!(a.text("message").as_deref(), Some(""));
        assert!(a.present("json"));
        assert_eq!(
            unknown_options(&s(&["--titel", "x", "-z", "--json", "- item"])),
            vec!["--titel", "-z", "- item"]
        );
        assert_eq!(
            reorder_arguments(&s(&["--ontop", "--title", "T", "--json"])),
            Some(s(&["--title", "T", "--ontop", "--json"]))
        );
        assert_eq!(reorder_arguments(&s(&["--title", "T", "x"])), None);
    }

    #[test]
    fn prints_json_like_swiftyjson() {
        assert_eq!(
            json_output(&[
                ("a".into(), "x/y \"q\"".into()),
                ("b".into(), String::new())
            ]),
            "{\n  \"a\" : \"x\\/y \\\"q\\\"\",\n  \"b\" : \"\"\n}"
        );
        let parsed: BTreeMap<String, String> =
            serde_json::from_str(&json_output(&[("k".into(), "v\n".into())])).unwrap();
        assert_eq!(parsed["k"], "v\n");
    }
}
