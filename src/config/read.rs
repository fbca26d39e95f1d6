//! Reading one configuration file into a plist dictionary, with one clear message for every way
//! a file can be wrong (missing, a directory, empty, JSON, truncated, junk, huge, not UTF-8, not a
//! dictionary).
//!
//! The plist crate reads XML and binary property lists (Apple's formats: `bplist00` header, or an
//! XML document with the `plist` DTD); `plutil -lint` is the admin's tool to check one on a Mac.

use std::io::{Cursor, Read as _};
use std::path::Path;

use plist::{Dictionary, Value};

use super::{Diagnostic, Severity};

/// A configuration is a few KB; anything above this is not one (and is not read into memory).
pub(crate) const MAX_FILE_BYTES: u64 = 1024 * 1024;

fn file_error(path: &Path, message: impl Into<String>, fix: impl Into<String>) -> Diagnostic {
    Diagnostic {
        file: path.to_path_buf(),
        key: String::new(),
        message: message.into(),
        fix: Some(fix.into()),
        severity: Severity::Error,
    }
}

/// The diagnostic for a file that was required but does not exist.
pub(crate) fn missing(path: &Path) -> Diagnostic {
    file_error(
        path,
        "the file does not exist",
        "check the path, or create the file (see examples/minimal.plist)",
    )
}

/// Reads `path`: `Ok(None)` when it does not exist, the top-level dictionary when it is a valid
/// property list, otherwise one diagnostic saying what is wrong with the file.
pub(crate) fn read_file(path: &Path) -> Result<Option<Dictionary>, Diagnostic> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, &e)),
    };
    if meta.is_dir() {
        return Err(file_error(
            path,
            "is a directory, not a configuration file",
            "give the path of the .plist file itself",
        ));
    }
    if !meta.is_file() {
        // A FIFO or device would block or never end.
        return Err(file_error(
            path,
            "is not a regular file",
            "give the path of the .plist file itself",
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(file_error(
            path,
            format!(
                "is {} bytes; a configuration is a few kilobytes",
                meta.len()
            ),
            "check that this is the right file",
        ));
    }
    let mut bytes = Vec::new();
    match std::fs::File::open(path) {
        // `take` guards against a file that grew since `metadata`.
        Ok(f) => {
            if let Err(e) = f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes) {
                return Err(io_error(path, &e));
            }
        }
        Err(e) => return Err(io_error(path, &e)),
    }
    parse_bytes(path, &bytes).map(Some)
}

fn io_error(path: &Path, e: &std::io::Error) -> Diagnostic {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        file_error(
            path,
            "cannot be read: permission denied",
            "run prestage as root (sudo)",
        )
    } else {
        file_error(
            path,
            format!("cannot be read: {e}"),
            "check the file and the disk",
        )
    }
}

/// The kind of a plist value, for messages ("found a string").
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "an array",
        Value::Dictionary(_) => "a dictionary",
        Value::Boolean(_) => "a boolean",
        Value::Data(_) => "data",
        Value::Date(_) => "a date",
        Value::Real(_) => "a real number",
        Value::Integer(_) => "an integer",
        Value::String(_) => "a string",
        Value::Uid(_) => "a UID",
        _ => "an unknown value",
    }
}

/// Parses the bytes of a file (already read) into the top-level dictionary.
pub(crate) fn parse_bytes(path: &Path, bytes: &[u8]) -> Result<Dictionary, Diagnostic> {
    let lint = format!("check it with `plutil -lint '{}'` on a Mac", path.display());
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&[][..], |i| &bytes[i..]);
    if start.is_empty() {
        return Err(file_error(
            path,
            "is empty",
            "write a property list with at least ConnectKey (see examples/minimal.plist)",
        ));
    }
    let is_binary = bytes.starts_with(b"bplist");
    let is_xml = start.starts_with(b"<");
    if !is_binary && (start.starts_with(b"{") || start.starts_with(b"[")) {
        return Err(file_error(
            path,
            "looks like JSON, but prestage reads property lists (XML or binary)",
            format!(
                "convert it with `plutil -convert xml1 '{}'`, or write it as XML (see examples/minimal.plist)",
                path.display()
            ),
        ));
    }
    if !is_binary && !is_xml {
        return Err(file_error(
            path,
            "is not a property list (neither XML nor binary)",
            format!("write it as an XML property list (see examples/minimal.plist); {lint}"),
        ));
    }
    if is_xml {
        if let Err(e) = std::str::from_utf8(bytes) {
            return Err(file_error(
                path,
                format!(
                    "contains text that is not valid UTF-8 (at byte {})",
                    e.valid_up_to()
                ),
                "save the file as UTF-8",
            ));
        }
    }
    let value = Value::from_reader(Cursor::new(bytes)).map_err(|e| {
        // The crate's message says what and where (line/offset), never more than a value name.
        let what = if e.is_eof() || e.to_string().contains("Unclosed") {
            "ends too early (truncated?)".to_owned()
        } else {
            format!("is not a valid property list ({e})")
        };
        file_error(path, what, lint.clone())
    })?;
    match value {
        // A .mobileconfig: its settings sit in PayloadContent (Apple's Configuration Profile
        // Reference); extracting them is the packaging tools' job, not ours.
        Value::Dictionary(d)
            if d.contains_key("PayloadContent") && d.contains_key("PayloadType") =>
        {
            Err(file_error(
                path,
                "is a configuration profile, not prestage's settings",
                "deploy the profile with your MDM, or check the plist inside its PayloadContent",
            ))
        }
        Value::Dictionary(d) => Ok(d),
        other => Err(file_error(
            path,
            format!(
                "holds {} at the top level, where a dictionary of settings belongs",
                kind(&other)
            ),
            "put the settings in a <dict> (see examples/minimal.plist)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(bytes: &[u8]) -> String {
        parse_bytes(Path::new("/x.plist"), bytes)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn classifies_bad_files() {
        assert!(msg(b"").contains("is empty"));
        assert!(msg(b"  \n").contains("is empty"));
        assert!(msg(b"{\"ConnectKey\": 1}").contains("JSON"));
        assert!(msg(b"hello").contains("not a property list"));
        assert!(msg(b"<?xml version=\"1.0\"?><plist><dict><key>A</key>").contains("/x.plist"));
        assert!(msg(b"<plist><string>\xff\xfe</string></plist>").contains("UTF-8"));
        assert!(msg(b"<plist version=\"1.0\"><string>x</string></plist>").contains("a string"));
        assert!(msg(b"bplist00\x00\x01").contains("/x.plist"));
    }

    #[test]
    fn reads_binary_and_xml() {
        let mut d = Dictionary::new();
        d.insert("A".into(), Value::String("b".into()));
        let mut bin = Vec::new();
        Value::Dictionary(d.clone())
            .to_writer_binary(&mut bin)
            .unwrap();
        let mut xml = Vec::new();
        Value::Dictionary(d.clone())
            .to_writer_xml(&mut xml)
            .unwrap();
        assert_eq!(parse_bytes(Path::new("b"), &bin).unwrap(), d);
        assert_eq!(parse_bytes(Path::new("x"), &xml).unwrap(), d);
    }
}
