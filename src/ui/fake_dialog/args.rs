//! swiftDialog's own reading of its command line, for the fake app and launcher.
//!
//! swiftDialog does not tokenise its arguments: each option is looked up by an exact
//! `firstIndex(of: "--long")` (or `"-short"`) in the whole argv, and its value is the next
//! argument (`dialog/Command Line/CLOptions.swift`, `CLOptionText`, `CLOptionPresent`,
//! `CLOptionMultiOptions`). There is no validation pass, so an option it does not know is
//! silently ignored (source audit row 2); the fake records such options instead, so tests can
//! assert that prestage sends none.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Long options of swiftDialog (`dialog/Command Line/CommandLineArguments.swift`, 2.x and 3.x;
/// `pid` and `commandfile` are also what the 3.x launcher adds, `dialogcli/dialogcli.swift`).
const KNOWN_LONG: &[&str] = &[
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
    "hash",
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
    "nextbuttontext",
    "previousbuttontext",
    "screenbackground",
    "infoboxwidth",
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
/// Short forms (`CommandLineArguments.swift`) and the long options they stand for.
const SHORT: &[(&str, &str)] = &[
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

/// The arguments that look like options but are none of swiftDialog's. A value that starts
/// with `-` shows up here too: swiftDialog would take it for an option and drop the value
/// (`CLOptionText` replaces such a value by the option's default).
pub fn unknown_options(args: &[String]) -> Vec<String> {
    args.iter()
        .filter(|a| {
            if let Some(long) = a.strip_prefix("--") {
                !KNOWN_LONG.contains(&long)
            } else if let Some(short) = a.strip_prefix('-') {
                !SHORT.iter().any(|(s, _)| *s == short)
            } else {
                false
            }
        })
        .cloned()
        .collect()
}

/// The app's view of its argv (the launcher's reordered arguments).
#[derive(Debug, Clone, Default)]
pub struct Args {
    raw: Vec<String>,
}

impl Args {
    pub fn new(raw: &[String]) -> Self {
        Self { raw: raw.to_vec() }
    }

    fn short_of(long: &str) -> Option<&'static str> {
        SHORT.iter().find(|(_, l)| *l == long).map(|(s, _)| *s)
    }

    /// `firstIndex(of: "--long")`, else `firstIndex(of: "-short")` (`CLOptions.swift`).
    fn index(&self, long: &str) -> Option<usize> {
        let long_form = format!("--{long}");
        self.raw.iter().position(|a| *a == long_form).or_else(|| {
            let short = format!("-{}", Self::short_of(long)?);
            self.raw.iter().position(|a| *a == short)
        })
    }

    /// `CLOptionPresent`.
    pub fn present(&self, long: &str) -> bool {
        self.index(long).is_some()
    }

    /// `CLOptionText`: the next argument; the default (empty) when the option is last or the
    /// value starts with `-`; a literal `\n` becomes a new line. `None` when absent.
    pub fn text(&self, long: &str) -> Option<String> {
        let i = self.index(long)?;
        let value = self.raw.get(i + 1).map_or("", String::as_str);
        if value.starts_with('-') {
            return Some(String::new());
        }
        Some(value.replace("\\n", "\n"))
    }

    /// `CLOptionMultiOptions`: the raw argument after every `--long`.
    pub fn multi(&self, long: &str) -> Vec<String> {
        let long_form = format!("--{long}");
        self.raw
            .windows(2)
            .filter(|w| w[0] == long_form)
            .map(|w| w[1].clone())
            .collect()
    }
}

/// swiftDialog's `argRegex` (HEAD `dialog/App Processing/AppVariables.swift:52`; `confirm`
/// added with 2.5.0): what a `--textfield` value is cut at. It is not a comma split: `word=`
/// cuts even without a comma, and a comma cuts only before the flag words.
const ARG_REGEX: &str = r"(,? ?[a-zA-Z1-9]+=|(,\s?editor)|(,\s?fileselect))|(,\s?passwordfill)|(,\s?required)|(,\s?secure)|(,\s?confirm)";

fn arg_regex() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(ARG_REGEX).expect("swiftDialog's argRegex compiles"))
}

/// `String.split(usingRegex:)` (`dialog/Extensions/String+Additions.swift`): the pieces
/// between the matches *and* the matches themselves, in order, always ending with the (maybe
/// empty) rest after the last match.
pub fn split_using_arg_regex(text: &str) -> Vec<String> {
    let mut cuts = vec![0];
    for m in arg_regex().find_iter(text) {
        cuts.push(m.start());
        cuts.push(m.end());
    }
    cuts.push(text.len());
    cuts.windows(2)
        .map(|w| text[w[0]..w[1]].to_owned())
        .collect()
}

/// One `--textfield`, as swiftDialog reads it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TextField {
    /// Item 0 of the split, untrimmed.
    pub label: String,
    pub name: Option<String>,
    pub secure: bool,
    pub required: bool,
    pub confirm: bool,
    pub regex: Option<String>,
    pub regexerror: Option<String>,
    pub value: Option<String>,
    pub prompt: Option<String>,
}

impl TextField {
    /// The key of this field in the `--json` output: `name` when set and not empty, else the
    /// label (`dialog/Functions/System.swift`, `quitDialog`: `if textfieldName.isEmpty`).
    pub fn key(&self) -> &str {
        match self.name.as_deref() {
            Some(name) if !name.is_empty() => name,
            _ => &self.label,
        }
    }
}

/// Parses a `--textfield` value the way `processCLOptions` does (`dialog/Command
/// Line/ProcessCLOptions.swift`): split with [`ARG_REGEX`]; item 0 is the label; every other
/// item is lowercased, stripped of `,` and `=` and trimmed, then compared with the modifier
/// words; a value modifier takes the *next* item, raw; unknown words are ignored. `name=`
/// exists since 2.5.0 (swiftDialog commit 396d1cc, "add "name=" modifier"): an older app
/// ignores it and keys the answer by the label.
pub fn parse_textfield(spec: &str, name_supported: bool) -> TextField {
    let items = split_using_arg_regex(spec);
    let mut tf = TextField {
        label: items.first().cloned().unwrap_or_default(),
        ..TextField::default()
    };
    if items.len() > 1 {
        // The default regex error (`PCO`: `"\"\(fieldTitle)\" " + "no-pattern".localized`).
        tf.regexerror = Some(format!(
            "\"{}\" doesn't match the required format",
            tf.label
        ));
    }
    for i in 1..items.len() {
        let word = items[i]
            .to_lowercase()
            .replace([',', '='], "")
            .trim()
            .to_owned();
        let next = || items.get(i + 1).cloned();
        match word.as_str() {
            "prompt" => tf.prompt = next(),
            "regex" => tf.regex = next(),
            "regexerror" => tf.regexerror = next(),
            "required" => tf.required = true,
            "secure" => tf.secure = true,
            "confirm" => tf.confirm = true,
            "value" => tf.value = next(),
            "name" if name_supported => tf.name = next(),
            _ => {}
        }
    }
    tf
}

/// One `--listitem` value as `processCLOptions` reads it: split on `,`, each piece trimmed and
/// split once on `=`; `title`, `status`, … set their part, any other piece *is* the title.
pub fn parse_listitem(spec: &str) -> (String, String) {
    let mut title = String::new();
    let mut status = String::new();
    for item in spec.split(',').map(str::trim) {
        let (name, value) = item.split_once('=').unwrap_or((item, ""));
        match name.to_lowercase().as_str() {
            "title" => value.clone_into(&mut title),
            "status" => value.clone_into(&mut status),
            "subtitle" | "icon" | "statustext" => {}
            _ => name.clone_into(&mut title),
        }
    }
    (title, status)
}
