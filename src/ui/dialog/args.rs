//! What prestage passes swiftDialog: the argv of each window and the command-file lines, with
//! every text made safe from swiftDialog's parsing.
//!
//! How swiftDialog reads what it gets (github swiftDialog/swiftDialog):
//! - a single-value option's value that starts with `-` is replaced by the option's default
//!   (`dialog/Command Line/CLOptions.swift`, `CLOptionText`), and the 3.x launcher takes such
//!   a value for an option when it reorders the arguments (`dialogcli/dialogcli.swift`,
//!   `reorderArguments`); a literal `\n` becomes a new line;
//! - the launcher drops whitespace-only arguments, so a blank value would take the next
//!   option as its value: blank values are never sent;
//! - `--textfield` is cut with `argRegex` (`dialog/App Processing/AppVariables.swift:52`):
//!   at every `word=` (letters and 1-9, with or without a comma before it) and at
//!   `,required`, `,secure`, `,confirm`, `,editor`, `,fileselect`, `,passwordfill`; not at
//!   other commas (`ProcessCLOptions.swift`, `processCLOptions`);
//! - `--listitem` is split on `,` and then once on `=` (`processCLOptions`); a
//!   `listitem: title: …, status: …` line is split on `,` and then on `": "`
//!   (`DialogUpdatableContent.swift`, `processCommands`), and the row is found by exact title.
//!
//! The escapes are invisible or look the same: a zero-width space (U+200B, not whitespace to
//! ICU's `\s` nor in `[a-zA-Z1-9]`) in front of a leading `-` and of every `=`, and after
//! every comma, in text-field texts; a leading literal `\n` in front of a message that starts
//! with `-` (markdown then still sees its bullet list); in step titles, a single low quote for
//! a comma (U+201A), a full-width equals sign (U+FF1D) and a zero-width space inside `": "`.

use std::fmt::Write as _;
use std::path::Path;

use tracing::warn;

use crate::config::UiConfig;
use crate::paths::Root;
use crate::ui::screen::{self, Screen};
use crate::ui::ItemStatus;

const ZWSP: char = '\u{200B}';

/// The `--quitkey` of windows Cmd+Q must not close: with any quit key but `q`, swiftDialog
/// swallows Cmd+Q ("cmd+q is disabled"), and only Cmd+<quit key> quits with exit 10, which no
/// keystroke gives for a word (`dialog/Functions/System.swift`, `captureQuitKey`: it compares
/// `event.characters` with the whole quit key).
pub const NO_QUIT_KEY: &str = "prestage";

/// swiftDialog's `argRegex` (see the module docs), to check the patterns we pass.
const ARG_REGEX: &str = r"(,? ?[a-zA-Z1-9]+=|(,\s?editor)|(,\s?fileselect))|(,\s?passwordfill)|(,\s?required)|(,\s?secure)|(,\s?confirm)";

/// swiftDialog turns the two characters `\n` into a new line in option values and in
/// command-file values; a real new line would end a command-file line.
fn one_line(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\\n")
}

/// A value that swiftDialog would otherwise take for an option.
fn not_an_option(text: String) -> String {
    if text.starts_with('-') {
        format!("{ZWSP}{text}")
    } else {
        text
    }
}

/// The value of a plain text option (`--title`, `--button1text`, `--progresstext`).
pub fn text_value(text: &str) -> String {
    not_an_option(one_line(text))
}

/// The value of `--message` (markdown). A leading `-` (a bullet list) gets a leading `\n`,
/// which swiftDialog turns into a blank first line that markdown ignores.
pub fn message_value(text: &str) -> String {
    let line = one_line(text);
    if line.starts_with('-') {
        format!("\\n{line}")
    } else {
        line
    }
}

/// A label or regex error inside a `--textfield` value: nothing in it may cut the value.
pub fn textfield_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in one_line(text).chars() {
        match c {
            '=' => {
                out.push(ZWSP);
                out.push('=');
            }
            ',' => {
                out.push(',');
                out.push(ZWSP);
            }
            c => out.push(c),
        }
    }
    not_an_option(out)
}

/// A step title, the same in `--listitem` and in `listitem:` lines (rows match by title).
pub fn list_title(text: &str) -> String {
    let safe = one_line(text)
        .replace(',', "\u{201a}")
        .replace('=', "\u{ff1d}")
        .replace(": ", &format!(":{ZWSP} "));
    not_an_option(safe.trim().to_owned())
}

/// Whether swiftDialog would pass `pattern` through as one `regex=` value.
pub fn regex_survives(pattern: &str) -> bool {
    let cut = regex::Regex::new(ARG_REGEX).expect("swiftDialog's argRegex compiles");
    !pattern.is_empty() && !pattern.starts_with('-') && !cut.is_match(pattern)
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
    let mut arg = format!("{},name={}", textfield_text(&f.label), f.name);
    if f.secure {
        arg.push_str(",secure");
    }
    if f.required {
        arg.push_str(",required");
    }
    if let Some((re, msg)) = &f.regex {
        if regex_survives(re) {
            let _ = write!(arg, ",regex={re},regexerror={}", textfield_text(msg));
        } else {
            // prestage checks the input itself anyway; swiftDialog would cut this pattern.
            warn!(
                field = f.name,
                "regex would be cut by swiftDialog's text-field parser; not passed"
            );
        }
    }
    arg
}

/// Branding. swiftDialog takes a file path, an app bundle (`.app`, `.prefPane`,
/// `.framework`: it shows the bundle's icon, `dialog/Views/IconView.swift`), a URL or an SF
/// Symbol (`SF=...`) for `--icon`, and a path or URL for `--bannerimage`. A missing icon file
/// only falls back to the default icon (`IconView.swift`), a missing banner file leaves an
/// empty banner: a path that is not there is left out with a warning either way.
fn branding_args(root: &Root, ui: &UiConfig) -> Vec<String> {
    let mut args = Vec::new();
    for (opt, path) in [("--icon", &ui.icon), ("--bannerimage", &ui.banner_image)] {
        let Some(path) = path else { continue };
        let real = root.resolve(path);
        let bundle = opt == "--icon"
            && path
                .extension()
                .is_some_and(|e| e == "app" || e == "prefPane" || e == "framework")
            && real.is_dir();
        if !path.is_absolute() || real.is_file() || bundle {
            args.push(opt.to_owned());
            args.push(not_an_option(path.display().to_string()));
        } else {
            warn!(option = opt, path = %path.display(), "UI image not found; not shown");
        }
    }
    args
}

/// What every window starts with: title, message, the branding and its command file.
fn window_args(root: &Root, ui: &UiConfig, screen: &Screen, command_file: &Path) -> Vec<String> {
    let mut args = vec![
        "--title".to_owned(),
        text_value(&screen.title),
        "--message".to_owned(),
        message_value(&screen.message),
    ];
    args.extend(branding_args(root, ui));
    // `UI.HelpMessage` (tokens already filled in, `ui::help`): markdown behind the `?` button.
    if let Some(help) = ui.help_message.as_deref().filter(|h| !h.trim().is_empty()) {
        args.extend(["--helpmessage".to_owned(), message_value(help)]);
    }
    args.extend([
        "--commandfile".to_owned(),
        command_file.display().to_string(),
    ]);
    args
}

/// The arguments of the long-lived progress window. Cmd+Q does not close it: the window (and
/// its blur) covers the setup account's desktop, and there is nothing for the employee to do
/// behind it.
pub fn progress_window_args(
    root: &Root,
    ui: &UiConfig,
    screen: &Screen,
    command_file: &Path,
) -> Vec<String> {
    let mut args = window_args(root, ui, screen, command_file);
    args.extend(["--progress".to_owned(), "100".to_owned()]);
    if let Some(text) = screen
        .progress_text
        .as_deref()
        .filter(|t| !t.trim().is_empty())
    {
        args.extend(["--progresstext".to_owned(), text_value(text)]);
    }
    args.extend([
        "--button1text".to_owned(),
        "OK".to_owned(),
        "--button1disabled".to_owned(),
    ]);
    for (title, _) in &screen.items {
        args.push("--listitem".to_owned());
        args.push(list_title(title));
    }
    if ui.full_screen {
        args.push("--blurscreen".to_owned());
    }
    args.extend([
        "--ontop".to_owned(),
        "--quitkey".to_owned(),
        NO_QUIT_KEY.to_owned(),
    ]);
    args
}

/// The arguments of a modal question or message. `timer` closes it by itself (exit 4). A
/// question cannot be closed with Cmd+Q (it would only come back); a message can.
pub fn modal_args(
    root: &Root,
    ui: &UiConfig,
    screen: &Screen,
    timer: Option<u64>,
    command_file: &Path,
) -> Vec<String> {
    let mut args = window_args(root, ui, screen, command_file);
    for f in &screen.fields {
        args.push("--textfield".to_owned());
        args.push(textfield_arg(f));
    }
    if let Some(b) = &screen.button1 {
        args.extend(["--button1text".to_owned(), text_value(b)]);
    }
    if let Some(secs) = timer {
        args.extend([
            "--timer".to_owned(),
            secs.to_string(),
            "--hidetimerbar".to_owned(),
        ]);
    }
    if !screen.fields.is_empty() {
        args.extend(["--quitkey".to_owned(), NO_QUIT_KEY.to_owned()]);
    }
    args.extend(["--ontop".to_owned(), "--json".to_owned()]);
    args
}

/// The command-file lines that bring the progress window to `screen`: the whole state every
/// time, so any one write that reaches the window is enough.
pub fn progress_lines(screen: &Screen) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(p) = screen.progress {
        lines.push(format!("progress: {p}"));
    }
    if let Some(t) = screen
        .progress_text
        .as_deref()
        .filter(|t| !t.trim().is_empty())
    {
        lines.push(format!("progresstext: {}", one_line(t)));
    }
    for (title, status) in &screen.items {
        lines.push(format!(
            "listitem: title: {}, status: {}",
            list_title(title),
            status_word(*status)
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textfield_texts_cannot_cut_the_value() {
        let f = screen::Field {
            label: "-Email, required=yes".into(),
            name: "identifier",
            secure: false,
            required: true,
            regex: Some(("^a$".into(), "use name=value, secure".into())),
        };
        let arg = textfield_arg(&f);
        assert_eq!(
            arg,
            "\u{200b}-Email,\u{200b} required\u{200b}=yes,name=identifier,required,\
             regex=^a$,regexerror=use name\u{200b}=value,\u{200b} secure"
        );
        let cut = regex::Regex::new(ARG_REGEX).unwrap();
        let label = textfield_text(&f.label);
        assert!(!cut.is_match(&label), "{label}");
    }

    #[test]
    fn patterns_swiftdialog_would_cut_are_not_passed() {
        assert!(regex_survives(screen::EMAIL_REGEX));
        assert!(regex_survives("^[0-9]{4,6}$"));
        assert!(!regex_survives("^[A-Z0-9=]+$"));
        assert!(!regex_survives("a,required"));
    }

    #[test]
    fn messages_and_titles_never_start_with_a_dash() {
        assert_eq!(message_value("- one\n- two"), "\\n- one\\n- two");
        assert_eq!(text_value("-x"), "\u{200b}-x");
        assert_eq!(text_value("a\nb"), "a\\nb");
        assert_eq!(
            list_title("Install, now: a=b"),
            "Install\u{201a} now:\u{200b} a\u{ff1d}b"
        );
    }

    #[test]
    fn command_lines_are_single_lines_and_blank_texts_are_left_out() {
        let mut s = Screen {
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
        s.progress_text = Some(" ".into());
        assert_eq!(progress_lines(&s).len(), 2);
        let args = progress_window_args(
            &Root::new("/nonexistent"),
            &UiConfig::default(),
            &s,
            Path::new("/var/tmp/x.log"),
        );
        assert!(!args.iter().any(|a| a.trim().is_empty()), "{args:?}");
        assert!(!args.contains(&"--progresstext".to_owned()));
    }
}
