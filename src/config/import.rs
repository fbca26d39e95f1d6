//! `prestage config import`: turns the variable block of a filled-in
//! `jumpcloud_bootstrap_template.sh` (MDM-Prestage-User-Enrollment v3.x, TheJumpCloud/support,
//! `zero-touch/prestage_user_enrollment/`) into our plist.
//!
//! The template's "General Settings" block is plain bash assignments: `NAME='value'`,
//! `NAME="value"`, `NAME=value`, with `#` comments and `true`/`false` booleans. We read only
//! assignments (never run anything), within that block when its markers are there, else at the
//! top level of the file. A value using `$` expansion or command substitution cannot be known
//! without running bash and is reported instead. The mapping is SPEC §3's; every variable we
//! did not map, or that was left empty, is reported.

use plist::{Dictionary, Value};

/// What `import` produced and what it could not use.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// The configuration, as an XML plist.
    pub plist_xml: Vec<u8>,
    /// `(script variable, configuration key path)` for every variable used.
    pub mapped: Vec<(String, String)>,
    /// Variables found in the block that have no counterpart (with the reason when known).
    pub unmapped: Vec<String>,
    /// Variables that would map but were left empty.
    pub empty: Vec<String>,
    /// Variables whose value could not be used (`admin='maybe'`, `$(...)`); never shows a
    /// secret value.
    pub problems: Vec<String>,
}

impl ImportReport {
    /// A human summary for the terminal (stderr), one finding a line.
    pub fn summary(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        // Writing to a String cannot fail.
        for (var, key) in &self.mapped {
            let _ = writeln!(out, "mapped    {var} -> {key}");
        }
        for var in &self.empty {
            let _ = writeln!(
                out,
                "empty     {var} (left out: fill it in the plist if you need it)"
            );
        }
        for var in &self.unmapped {
            let _ = writeln!(out, "unmapped  {var}");
        }
        for p in &self.problems {
            let _ = writeln!(out, "problem   {p}");
        }
        out
    }
}

/// One assignment's value, or why it cannot be known statically.
type Parsed = Result<String, &'static str>;

/// Finds `NAME=value` assignments in bash text (the subset the template uses).
fn assignments(text: &str) -> Vec<(String, Parsed)> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_line = |i: &mut usize| {
        while *i < chars.len() && chars[*i] != '\n' {
            *i += 1;
        }
        *i += 1;
    };
    while i < chars.len() {
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
            i += 1;
        }
        if text_at(&chars, i, "export ") {
            i += "export ".len();
        }
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        let name: String = chars[start..i].iter().collect();
        let is_name = !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit());
        if !is_name || chars.get(i) != Some(&'=') {
            skip_line(&mut i);
            continue;
        }
        i += 1;
        let value = word(&chars, &mut i);
        // Anything else on the line must be a comment.
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
            i += 1;
        }
        let value = match (value, chars.get(i)) {
            (Ok(v), None | Some('\n' | '#' | ';')) => Ok(v),
            (Ok(_), Some(_)) => Err("has more than one word; quote the value"),
            (Err(e), _) => Err(e),
        };
        skip_line(&mut i);
        out.push((name, value));
    }
    out
}

fn text_at(chars: &[char], i: usize, s: &str) -> bool {
    s.chars()
        .enumerate()
        .all(|(k, c)| chars.get(i + k) == Some(&c))
}

/// One shell word starting at `*i`: quoted and unquoted parts, up to unquoted whitespace.
fn word(chars: &[char], i: &mut usize) -> Parsed {
    let mut out = String::new();
    while let Some(&c) = chars.get(*i) {
        match c {
            ' ' | '\t' | '\n' | ';' => break,
            '#' if out.is_empty() => break,
            '\'' => {
                *i += 1;
                loop {
                    match chars.get(*i) {
                        None => return Err("has an unterminated ' quote"),
                        Some('\'') => break,
                        Some(&c) => out.push(c),
                    }
                    *i += 1;
                }
                *i += 1;
            }
            '"' => {
                *i += 1;
                loop {
                    match chars.get(*i) {
                        None => return Err("has an unterminated \" quote"),
                        Some('"') => break,
                        Some('$' | '`') => {
                            return Err("uses $ or ` expansion; write the value itself")
                        }
                        // Inside double quotes, backslash escapes only these (bash manual,
                        // "Double Quotes"); `\n` stays a backslash and an n.
                        Some('\\') if matches!(chars.get(*i + 1), Some('"' | '\\' | '$' | '`')) => {
                            out.push(chars[*i + 1]);
                            *i += 1;
                        }
                        Some(&c) => out.push(c),
                    }
                    *i += 1;
                }
                *i += 1;
            }
            '$' | '`' | '(' | ')' | '|' | '&' | '<' | '>' => {
                return Err("uses $ or ` expansion; write the value itself")
            }
            '\\' => {
                if let Some(&next) = chars.get(*i + 1) {
                    out.push(next);
                }
                *i += 2;
            }
            c => {
                out.push(c);
                *i += 1;
            }
        }
    }
    Ok(out)
}

/// The "General Settings" block of the template, or the whole text when the markers are gone.
fn settings_block(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.contains("General Settings") && !l.contains("END"));
    let end = lines
        .iter()
        .position(|l| l.contains("END General Settings"));
    match (start, end) {
        (Some(s), Some(e)) if s < e => lines[s + 1..e].join("\n"),
        _ => text.to_owned(),
    }
}

enum Target {
    Str(&'static str),
    Bool(&'static str),
    Text(&'static str),
    MinLength,
    SelfId,
    SelfSecret,
}

fn target(var: &str) -> Option<Target> {
    Some(match var {
        "YOUR_CONNECT_KEY" => Target::Str("ConnectKey"),
        "ENCRYPTED_KEY" => Target::Str("EncryptedAPIKey"),
        "DECRYPT_USER" => Target::Str("DecryptUser"),
        "DEP_ENROLLMENT_GROUP_ID" => Target::Str("EnrollmentGroupID"),
        "DEP_POST_ENROLLMENT_GROUP_ID" => Target::Str("PostEnrollmentGroupID"),
        "WELCOME_TITLE" => Target::Text("UI.WelcomeTitle"),
        "WELCOME_TEXT" => Target::Text("UI.WelcomeText"),
        "WINDOW_TITLE" => Target::Text("UI.WindowTitle"),
        "DELETE_ENROLLMENT_USERS" => Target::Bool("DeleteEnrollmentUsers"),
        "ENROLLMENT_USER" => Target::Str("EnrollmentUser"),
        "NTP_SERVER" => Target::Str("NTPServer"),
        "admin" | "ADMIN" => Target::Bool("Admin"),
        "minlength" | "MINLENGTH" => Target::MinLength,
        // The template spells these `self_ID`, `self_secret`, `self_passwd`.
        "self_ID" | "SELF_ID" => Target::SelfId,
        "self_secret" | "SELF_SECRET" => Target::SelfSecret,
        "self_passwd" | "SELF_PASSWD" => Target::Bool("Password.RequireForActiveUsers"),
        _ => return None,
    })
}

/// Why a template variable has no counterpart, when we know.
fn unmapped_reason(var: &str) -> &'static str {
    match var {
        "daemon" => "prestage installs its own LaunchDaemon (io.prestage.enroll)",
        "ENROLLMENT_USER_PASSWORD" => "prestage never needs the setup account's password",
        _ => "no counterpart in prestage",
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Inserts `value` at a dotted key path, creating section dictionaries on the way.
fn insert(root: &mut Dictionary, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            root.insert(path.to_owned(), value);
        }
        Some((head, rest)) => {
            if !matches!(root.get(head), Some(Value::Dictionary(_))) {
                root.insert(head.to_owned(), Value::Dictionary(Dictionary::new()));
            }
            if let Some(Value::Dictionary(d)) = root.get_mut(head) {
                insert(d, rest, value);
            }
        }
    }
}

/// Converts a filled-in template into our configuration.
pub fn import(script_text: &str) -> ImportReport {
    let mut report = ImportReport::default();
    let mut dict = Dictionary::new();
    // Bash lets a later assignment win; so do we.
    let mut vars: Vec<(String, Parsed)> = Vec::new();
    for (name, value) in assignments(&settings_block(script_text)) {
        vars.retain(|(n, _)| *n != name);
        vars.push((name, value));
    }
    for (var, value) in vars {
        let Some(target) = target(&var) else {
            report
                .unmapped
                .push(format!("{var} ({})", unmapped_reason(&var)));
            continue;
        };
        let value = match value {
            Ok(v) => v,
            Err(why) => {
                report.problems.push(format!("{var} {why}"));
                continue;
            }
        };
        if value.trim().is_empty() {
            report.empty.push(var);
            continue;
        }
        let trimmed = value.trim();
        let converted: Result<(&str, Value), String> = match target {
            Target::Str(key) => Ok((key, Value::String(trimmed.to_owned()))),
            // DEPNotify showed a literal `\n` as a line break.
            Target::Text(key) => Ok((key, Value::String(value.replace("\\n", "\n")))),
            Target::Bool(key) => parse_bool(trimmed)
                .map(|b| (key, Value::Boolean(b)))
                .ok_or_else(|| format!("`{trimmed}` is not true or false")),
            Target::MinLength => trimmed
                .parse::<u32>()
                .map(|n| ("Password.Policy.MinLength", Value::Integer(n.into())))
                .map_err(|_| format!("`{trimmed}` is not a whole number")),
            Target::SelfId => match trimmed {
                "CE" => Ok("CompanyEmail"),
                "PE" => Ok("PersonalEmail"),
                "LN" => Ok("LastName"),
                other => Err(format!("`{other}` is not CE, PE or LN")),
            }
            .map(|id| ("Identity.Identifier", Value::String(id.to_owned()))),
            Target::SelfSecret => parse_bool(trimmed)
                .map(|b| {
                    let secret = if b { "EmployeeID" } else { "None" };
                    ("Identity.Secret", Value::String(secret.to_owned()))
                })
                .ok_or_else(|| format!("`{trimmed}` is not true or false")),
        };
        let (key, plist_value) = match converted {
            Ok(c) => c,
            Err(what) => {
                report.problems.push(format!("{var}: {what}"));
                continue;
            }
        };
        insert(&mut dict, key, plist_value);
        report.mapped.push((var, key.to_owned()));
    }
    let mut xml = Vec::new();
    // Writing a dictionary of strings, booleans and integers to memory cannot fail.
    if Value::Dictionary(dict).to_writer_xml(&mut xml).is_ok() {
        xml.push(b'\n');
        report.plist_xml = xml;
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(text: &str) -> Vec<(String, Parsed)> {
        assignments(text)
    }

    #[test]
    fn parses_bash_quoting() {
        let v = vars(
            "a='x y' # c\nb=\"q \\\"z\\\" \\n\"\nc=true\n# d='no'\n  e=''\nf=$(whoami)\ng='multi\nline'\nh=a b\n",
        );
        let get = |n: &str| v.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("a"), Some(Ok("x y".into())));
        assert_eq!(get("b"), Some(Ok("q \"z\" \\n".into())));
        assert_eq!(get("c"), Some(Ok("true".into())));
        assert_eq!(get("d"), None);
        assert_eq!(get("e"), Some(Ok(String::new())));
        assert!(get("f").unwrap().is_err());
        assert_eq!(get("g"), Some(Ok("multi\nline".into())));
        assert!(get("h").unwrap().is_err());
    }

    #[test]
    fn maps_reports_empty_and_unmapped() {
        let r = import(
            "# General Settings - POPULATE\nadmin='true'\nminlength=12\nYOUR_CONNECT_KEY=''\nself_ID=\"LN\"\nself_secret=true\ndaemon=\"x.plist\"\nWELCOME_TEXT='a\\nb'\nself_passwd=maybe\n# END General Settings\nlater='ignored'\n",
        );
        let xml = String::from_utf8(r.plist_xml.clone()).unwrap();
        assert!(xml.contains("<key>MinLength</key>"), "{xml}");
        assert!(xml.contains("<string>a\nb</string>"), "{xml}");
        assert!(r
            .mapped
            .contains(&("self_ID".into(), "Identity.Identifier".into())));
        assert_eq!(r.empty, vec!["YOUR_CONNECT_KEY".to_owned()]);
        assert_eq!(r.unmapped.len(), 1, "{:?}", r.unmapped);
        assert!(r.unmapped[0].starts_with("daemon"));
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert!(r.problems[0].contains("self_passwd"));
        assert!(!xml.contains("later"));
    }
}
