//! A fake swiftDialog `dialog` launcher for tests, the simulator and `prestage demo`.
//!
//! `<root>/usr/local/bin/dialog` links to the fake Mac's shim (`host::fake::install_fake_dialog`),
//! which hands the call to [`run`]. It:
//! - parses exactly swiftDialog 2.x's argument syntax (options of
//!   `dialog/Command Line/CommandLineArguments.swift`, `--textfield` modifiers of the wiki's
//!   "Text Fields" page). Real swiftDialog silently ignores an option it does not know; the fake
//!   is stricter on purpose and fails with [`EXIT_BAD_ARGS`], so a typo in prestage's arguments
//!   shows up in a test instead of as a missing feature on a Mac;
//! - records every argv to `/.fakemac/dialog-calls.jsonl` (and to the fake world's tool log);
//! - for a window with `--commandfile`, follows the file from its size at start (lines written
//!   before are ignored, like swiftDialog 2.3.2+), records every line to
//!   `/.fakemac/dialog-commands.jsonl` and exits 5 on `quit:`;
//! - answers a modal question from the queue in `/.fakemac/dialog-script.json` and prints the
//!   `--json` output as swiftDialog does (SwiftyJSON's pretty print: `"key" : "value"`);
//! - exits 1 like the launcher when nobody is logged in (console user `root` or `_mbsetupuser`)
//!   unless `--loginwindow`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::host::fake::world::{self, World};
use crate::paths::{mac, Root};

pub const CALLS_FILE: &str = "/.fakemac/dialog-calls.jsonl";
pub const COMMANDS_FILE: &str = "/.fakemac/dialog-commands.jsonl";
pub const SCRIPT_FILE: &str = "/.fakemac/dialog-script.json";

/// Exit code of the fake for arguments swiftDialog would not understand (real swiftDialog would
/// ignore them; see the module docs). 64 is `EX_USAGE`, a code swiftDialog never uses.
pub const EXIT_BAD_ARGS: i32 = 64;
/// Exit code of the fake when the script cannot answer the question (the real window would
/// stay open waiting for a person). 70 is `EX_SOFTWARE`.
pub const EXIT_SCRIPT: i32 = 70;

/// Whether an option takes a value. The list is swiftDialog 2.x's (CommandLineArguments.swift).
const VALUE_OPTIONS: &[&str] = &[
    "title",
    "subtitle",
    "message",
    "style",
    "messagealignment",
    "helpalignment",
    "alignment",
    "messageposition",
    "helpmessage",
    "helpimage",
    "helpsheetbuttontext",
    "icon",
    "iconsize",
    "iconalpha",
    "iconalttext",
    "overlayicon",
    "bannerimage",
    "bannertitle",
    "bannertext",
    "bannerheight",
    "button1text",
    "button1action",
    "button1shellaction",
    "button1symbol",
    "button2text",
    "button2action",
    "button2symbol",
    "infobuttontext",
    "infobuttonaction",
    "infobuttonsymbol",
    "buttonstyle",
    "buttonsize",
    "buttontextsize",
    "selecttitle",
    "selectvalues",
    "selectdefault",
    "selectstyle",
    "titlefont",
    "messagefont",
    "textfield",
    "checkbox",
    "checkboxstyle",
    "timer",
    "progress",
    "progresstext",
    "progresstextalignment",
    "image",
    "imagecaption",
    "width",
    "height",
    "background",
    "bgalpha",
    "bgposition",
    "bgfill",
    "bgscale",
    "position",
    "positionoffset",
    "video",
    "videocaption",
    "debug",
    "jsonfile",
    "jsonstring",
    "commandfile",
    "listitem",
    "liststyle",
    "infotext",
    "infobox",
    "quitkey",
    "webcontent",
    "key",
    "checksum",
    "displaylog",
    "loghistory",
    "vieworder",
    "appearance",
    "seticon",
    "identifier",
    "pid",
    "sound",
    "dockicon",
    "dockiconbadge",
    "onadvance",
];
const FLAG_OPTIONS: &[&str] = &[
    "button1disabled",
    "button2disabled",
    "button2",
    "infobutton",
    "version",
    "hideicon",
    "centreicon",
    "centericon",
    "help",
    "demo",
    "licence",
    "hidetimerbar",
    "hidetimer",
    "autoplay",
    "blurscreen",
    "notification",
    "verbose",
    "showdockicon",
    "builder",
    "moveable",
    "ontop",
    "small",
    "big",
    "fullscreen",
    "quitoninfo",
    "listfonts",
    "json",
    "ignorednd",
    "mini",
    "eula",
    "presentation",
    "windowbuttons",
    "resizable",
    "showonallscreens",
    "enablenotificationsounds",
    "loginwindow",
    "hidedefaultkeyboardaction",
    "alwaysreturninput",
    "remove",
    "showsoundcontrols",
    "hideotherapps",
    "textfieldlivevalidation",
    "enablelistselect",
];
/// Short forms (`-t` …) and the long options they stand for.
const SHORT_OPTIONS: &[(&str, &str)] = &[
    ("t", "title"),
    ("m", "message"),
    ("i", "icon"),
    ("y", "overlayicon"),
    ("n", "bannerimage"),
    ("g", "image"),
    ("k", "key"),
    ("2", "button2"),
    ("3", "infobutton"),
    ("v", "version"),
    ("h", "hideicon"),
    ("o", "moveable"),
    ("p", "ontop"),
    ("s", "small"),
    ("b", "big"),
    ("f", "fullscreen"),
    ("j", "json"),
    ("d", "ignorednd"),
];
/// `--textfield` modifiers (wiki "Text Fields").
const TEXTFIELD_FLAGS: &[&str] = &["secure", "required", "confirm", "fileselect", "editor"];
const TEXTFIELD_VALUES: &[&str] = &[
    "name",
    "prompt",
    "regex",
    "regexerror",
    "value",
    "filetype",
    "path",
];

/// One `--textfield`, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TextField {
    pub label: String,
    pub name: Option<String>,
    pub secure: bool,
    pub required: bool,
    pub regex: Option<String>,
    pub regexerror: Option<String>,
    pub value: Option<String>,
}

impl TextField {
    /// The key of this field in the `--json` output: `name` when set, else the label.
    pub fn key(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.label)
    }
}

/// A parsed command line: options in order (a repeated option such as `--textfield` repeats).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    pub options: Vec<(String, Option<String>)>,
    pub textfields: Vec<TextField>,
}

impl Parsed {
    pub fn has(&self, name: &str) -> bool {
        self.options.iter().any(|(k, _)| k == name)
    }
    pub fn value(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.options
            .iter()
            .filter(|(k, _)| k == name)
            .filter_map(|(_, v)| v.as_deref())
            .collect()
    }
}

/// Parses a `--textfield` value.
pub fn parse_textfield(spec: &str) -> Result<TextField, String> {
    let mut parts = spec.split(',');
    let label = parts.next().unwrap_or("").trim().to_owned();
    if label.is_empty() {
        return Err(format!("--textfield {spec:?} has no label"));
    }
    let mut tf = TextField {
        label,
        ..TextField::default()
    };
    for part in parts {
        let part = part.trim();
        if let Some((key, value)) = part.split_once('=') {
            if !TEXTFIELD_VALUES.contains(&key) {
                return Err(format!("--textfield modifier {key:?} is not swiftDialog's"));
            }
            let value = value.to_owned();
            match key {
                "name" => tf.name = Some(value),
                "regex" => tf.regex = Some(value),
                "regexerror" => tf.regexerror = Some(value),
                "value" => tf.value = Some(value),
                _ => {}
            }
        } else if TEXTFIELD_FLAGS.contains(&part) {
            match part {
                "secure" => tf.secure = true,
                "required" => tf.required = true,
                _ => {}
            }
        } else {
            return Err(format!(
                "--textfield modifier {part:?} is not swiftDialog's"
            ));
        }
    }
    if tf.regexerror.is_some() && tf.regex.is_none() {
        return Err("--textfield has regexerror= without regex=".into());
    }
    if let Some(re) = &tf.regex {
        regex::Regex::new(re).map_err(|e| format!("--textfield regex {re:?} is invalid: {e}"))?;
    }
    Ok(tf)
}

/// Parses swiftDialog's command line strictly.
pub fn parse_args(args: &[String]) -> Result<Parsed, String> {
    let mut parsed = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let name = if let Some(long) = arg.strip_prefix("--") {
            long.to_owned()
        } else if let Some(short) = arg.strip_prefix('-') {
            SHORT_OPTIONS
                .iter()
                .find(|(s, _)| *s == short)
                .map(|(_, l)| (*l).to_owned())
                .ok_or_else(|| format!("unknown option {arg}"))?
        } else {
            return Err(format!("unexpected argument {arg:?} (not an option)"));
        };
        if VALUE_OPTIONS.contains(&name.as_str()) {
            let value = args
                .get(i + 1)
                .ok_or_else(|| format!("--{name} needs a value"))?
                .clone();
            if name == "textfield" {
                parsed.textfields.push(parse_textfield(&value)?);
            }
            parsed.options.push((name, Some(value)));
            i += 2;
        } else if FLAG_OPTIONS.contains(&name.as_str()) {
            parsed.options.push((name, None));
            i += 1;
        } else {
            return Err(format!("unknown option {arg}"));
        }
    }
    Ok(parsed)
}

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
}

/// One recorded command-file line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandLine {
    pub line: String,
    pub at_ms: u64,
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

/// Every `dialog` run recorded under `root`.
pub fn calls(root: &Root) -> Vec<DialogCall> {
    read_jsonl(&root.resolve(CALLS_FILE))
}

/// Every command-file line recorded under `root`.
pub fn command_lines(root: &Root) -> Vec<String> {
    read_jsonl::<CommandLine>(&root.resolve(COMMANDS_FILE))
        .into_iter()
        .map(|c| c.line)
        .collect()
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
fn pop_answer(root: &Root, fields: &[&str]) -> Result<Option<ScriptedAnswer>, String> {
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

/// Runs the fake `dialog` with `args` (without argv[0]); returns the exit code.
pub fn run(root: &Root, args: &[String]) -> i32 {
    // Where the command file stood when we started: only later lines count (2.3.2+).
    let parsed = parse_args(args);
    let follow_from = parsed
        .as_ref()
        .ok()
        .and_then(|p| p.value("commandfile"))
        .map(|f| {
            let real = root.resolve(f);
            (real.clone(), fs::metadata(&real).map_or(0, |m| m.len()))
        });
    let call = DialogCall {
        args: args.to_vec(),
        at_ms: now_ms(),
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

    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => {
            eprintln!("fake dialog: {e}");
            return EXIT_BAD_ARGS;
        }
    };
    let console = World::load(root)
        .map(|w| w.console_user)
        .unwrap_or_default();
    if (console == "root" || console == "_mbsetupuser" || console.is_empty())
        && !parsed.has("loginwindow")
    {
        eprintln!("ERROR: No user logged in");
        return 1;
    }
    if parsed.has("version") {
        println!("2.5.6.4805");
        return 0;
    }
    if let Some((path, start)) = follow_from {
        if parsed.textfields.is_empty() {
            return follow(root, &path, start);
        }
    }
    answer(root, &parsed)
}

/// The long-lived window: follows the command file until `quit:` (exit 5) or until the process
/// that started us is gone (exit 40, as with `--pid`).
fn follow(root: &Root, path: &Path, start: u64) -> i32 {
    let parent = rustix::process::getppid();
    let mut pos = start;
    let mut pending = String::new();
    loop {
        if let Ok(mut f) = File::open(path) {
            let len = f.metadata().map_or(0, |m| m.len());
            if len < pos {
                // Truncated: swiftDialog reads on from the new end.
                pos = 0;
            }
            if len > pos && f.seek(SeekFrom::Start(pos)).is_ok() {
                let mut buf = Vec::new();
                if f.read_to_end(&mut buf).is_ok() {
                    pos += buf.len() as u64;
                    pending.push_str(&String::from_utf8_lossy(&buf));
                    while let Some(nl) = pending.find('\n') {
                        let line: String = pending.drain(..=nl).collect();
                        let line = line.trim_end_matches(['\n', '\r']).to_owned();
                        if line.trim().is_empty() {
                            continue;
                        }
                        let _ = append_jsonl(
                            &root.resolve(COMMANDS_FILE),
                            &CommandLine {
                                line: line.clone(),
                                at_ms: now_ms(),
                            },
                        );
                        if line.trim() == "quit:" {
                            return 5;
                        }
                    }
                }
            }
        }
        if rustix::process::getppid() != parent {
            return 40;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A modal window: answers from the script and prints what swiftDialog prints.
fn answer(root: &Root, parsed: &Parsed) -> i32 {
    let timer = parsed.value("timer").and_then(|t| t.parse::<u64>().ok());
    let scripted = if parsed.textfields.is_empty() {
        // A message without fields: a person reads it and presses button 1 (or it times out).
        None
    } else {
        let fields: Vec<&str> = parsed.textfields.iter().map(TextField::key).collect();
        match pop_answer(root, &fields) {
            Ok(Some(a)) => Some(a),
            Ok(None) if timer.is_some() => return 4,
            Ok(None) => {
                eprintln!("fake dialog: no scripted answer left for a question with text fields");
                return EXIT_SCRIPT;
            }
            Err(e) => {
                eprintln!("fake dialog: cannot read the script: {e}");
                return EXIT_SCRIPT;
            }
        }
    };
    let scripted = scripted.unwrap_or_default();
    if scripted.exit != 0 {
        return scripted.exit;
    }
    let mut out = Vec::new();
    for tf in &parsed.textfields {
        let value = scripted
            .values
            .get(tf.key())
            .cloned()
            .or_else(|| tf.value.clone())
            .unwrap_or_default();
        if tf.required && value.is_empty() {
            eprintln!(
                "fake dialog: required field {:?} has no scripted value (swiftDialog would not close)",
                tf.key()
            );
            return EXIT_SCRIPT;
        }
        if let (Some(re), false) = (&tf.regex, value.is_empty()) {
            let ok = regex::Regex::new(re).is_ok_and(|r| r.is_match(&value));
            if !ok {
                eprintln!(
                    "fake dialog: field {:?} does not match its regex; swiftDialog would show {:?}",
                    tf.key(),
                    tf.regexerror.as_deref().unwrap_or("")
                );
                return EXIT_SCRIPT;
            }
        }
        out.push((tf.key().to_owned(), value));
    }
    if parsed.has("json") {
        println!("{}", json_output(&out));
    } else {
        for (k, v) in &out {
            println!("{k} : {v}");
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn parses_known_options_and_textfields() {
        let p = parse_args(&s(&[
            "--title",
            "Hi",
            "-m",
            "msg",
            "--textfield",
            "Email,name=identifier,required,regex=^a$,regexerror=bad",
            "--textfield",
            "Secret,name=secret,secure",
            "--json",
            "--ontop",
        ]))
        .unwrap();
        assert_eq!(p.value("message"), Some("msg"));
        assert_eq!(p.textfields.len(), 2);
        assert_eq!(p.textfields[0].key(), "identifier");
        assert!(p.textfields[0].required);
        assert!(p.textfields[1].secure);
        assert!(p.has("json"));
    }

    #[test]
    fn rejects_unknown_options_and_modifiers() {
        assert!(parse_args(&s(&["--titel", "x"])).is_err());
        assert!(parse_args(&s(&["--title"])).is_err());
        assert!(parse_args(&s(&["-z"])).is_err());
        assert!(parse_args(&s(&["stray"])).is_err());
        assert!(parse_args(&s(&["--textfield", "A,name=a,hidden"])).is_err());
        assert!(parse_args(&s(&["--textfield", "A,colour=red"])).is_err());
        assert!(parse_args(&s(&["--textfield", ",name=a"])).is_err());
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
