//! Configuration: the admin's plist (managed preferences over the local file, key by key),
//! parsed into a raw form and validated into [`Config`] (SPEC §3).
//!
//! The pipeline is `read` (one file → a plist dictionary, with a clear message for every way a
//! file can be wrong) → `raw` (managed over local, key by key, remembering which file each key
//! came from) → `validate` (every key checked, every problem collected, then a typed
//! [`Config`]). Problems are [`Diagnostic`]s naming file and key path (`Identity.Secret`), and
//! are all reported at once.
//!
//! Entry points for the command line: [`load`] (for `run`, `demo`, …) and [`check_command`]
//! (`prestage config check FILE`). [`import`] turns the bash script's variables into a plist,
//! [`schema`] describes every key for Jamf Pro, [`legacy`] decrypts `EncryptedAPIKey`, and
//! [`keychain`] reads `APIKeyKeychainService`.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::paths::{mac, Root};

pub mod connect_key;
pub mod import;
pub mod keychain;
pub mod legacy;
mod model;
pub mod naming;
pub mod preset;
mod raw;
mod read;
pub mod schema;
mod validate;

pub use connect_key::ConnectKey;
pub use model::*;

/// The files a configuration is read from (real paths, already under `--root`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    /// Managed preferences (MDM profile); wins key by key.
    pub managed: Option<PathBuf>,
    /// The local file installed by our package.
    pub local: Option<PathBuf>,
}

impl Sources {
    /// The two default locations of SPEC §1 under `root`. Either may be missing; not both.
    pub fn for_root(root: &Root) -> Sources {
        Sources {
            managed: Some(root.resolve(mac::MANAGED_CONFIG)),
            local: Some(root.resolve(mac::LOCAL_CONFIG)),
        }
    }

    /// One file standing for both (`--config FILE`, `config check FILE`): it is treated as the
    /// local file, so the ownership rule for secrets applies to it.
    pub fn single(file: PathBuf) -> Sources {
        Sources {
            managed: None,
            local: Some(file),
        }
    }

    /// The file of `config check FILE`: managed preferences when it sits in a
    /// `Managed Preferences` folder (where macOS writes the MDM profile's settings, readable by
    /// every user: an API key there is an error unless `--allow-secret-in-profile`), else the
    /// local file.
    pub fn for_check(file: PathBuf) -> Sources {
        let managed_dir = Path::new(mac::MANAGED_CONFIG)
            .parent()
            .and_then(Path::file_name);
        if file.parent().and_then(Path::file_name) == managed_dir {
            Sources {
                managed: Some(file),
                local: None,
            }
        } else {
            Sources::single(file)
        }
    }
}

/// What the configuration is loaded for; decides which findings are errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The daemon: unknown keys, an API key in managed preferences and a readable secret file
    /// are warnings (logged), so a typo never blocks an enrollment.
    Run,
    /// `config check`: all of those are errors, except an API key in managed preferences when
    /// `allow_secret_in_profile` is set.
    Check { allow_secret_in_profile: bool },
}

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
    /// Not wrong, but worth knowing before a rollout (`config check` prints it; it never
    /// fails a check).
    Note,
}

/// One problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the key was read from.
    pub file: PathBuf,
    /// The key path, e.g. `Identity.Secret`; empty when the problem is the file itself.
    pub key: String,
    /// What is wrong. Never contains a secret value.
    pub message: String,
    /// How to fix it, when we can say.
    pub fix: Option<String>,
    pub severity: Severity,
}

impl fmt::Display for Diagnostic {
    /// `<file>: <Key.Path>: <what>; <fix>` (key and fix left out when there are none).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file.display())?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, "; {fix}")?;
        }
        Ok(())
    }
}

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Every problem found (errors first, then warnings), one a line in `Display`.
    #[error("{}", render_all(.0))]
    Invalid(Vec<Diagnostic>),
}

impl ConfigError {
    /// The problems, errors first.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Invalid(d) => d,
        }
    }
}

fn render_all(diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for (i, d) in diags.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match d.severity {
            Severity::Warning => out.push_str("warning: "),
            Severity::Note => out.push_str("note: "),
            Severity::Error => {}
        }
        out.push_str(&d.to_string());
    }
    out
}

/// A valid configuration, with what was noticed on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// Findings that did not stop loading (log them).
    pub warnings: Vec<Diagnostic>,
    /// The files that were read, managed first.
    pub files: Vec<PathBuf>,
}

/// Knobs the tests need; [`load`] uses the defaults (owner root, uid 0).
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// The owner a local file holding a secret must have (root, 0, on a Mac). Tests running as
    /// an ordinary user pass their own uid.
    pub expected_owner: u32,
}

/// Reads, merges and validates the configuration.
///
/// `known_string_ids` says whether a `UI.Strings` key is the id of a built-in text (the UI's
/// string table); an unknown id is an error in [`Mode::Check`] and a warning in [`Mode::Run`].
pub fn load(
    sources: &Sources,
    mode: Mode,
    known_string_ids: &dyn Fn(&str) -> bool,
) -> Result<Loaded, ConfigError> {
    load_with(sources, mode, known_string_ids, LoadOptions::default())
}

/// [`load`] with explicit [`LoadOptions`].
pub fn load_with(
    sources: &Sources,
    mode: Mode,
    known_string_ids: &dyn Fn(&str) -> bool,
    options: LoadOptions,
) -> Result<Loaded, ConfigError> {
    let mut diags = Vec::new();
    let mut managed = None;
    let mut local = None;
    let mut looked = Vec::new();
    for (slot, path) in [
        (&mut managed, &sources.managed),
        (&mut local, &sources.local),
    ] {
        let Some(path) = path else { continue };
        looked.push(path.clone());
        match read::read_file(path) {
            Ok(Some(dict)) => *slot = Some((path.clone(), dict)),
            // A default location that does not exist is fine, as long as one exists.
            Ok(None) if sources.managed.is_some() && sources.local.is_some() => {}
            Ok(None) => diags.push(read::missing(path)),
            Err(d) => diags.push(d),
        }
    }
    if managed.is_none() && local.is_none() && diags.is_empty() {
        let files: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
        diags.push(Diagnostic {
            file: looked.first().cloned().unwrap_or_default(),
            key: String::new(),
            message: format!("no configuration found (looked at {})", files.join(" and ")),
            fix: Some(
                "install the prestage package with its configuration, or deploy a profile for io.prestage.enroll"
                    .to_owned(),
            ),
            severity: Severity::Error,
        });
    }
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return Err(ConfigError::Invalid(diags));
    }

    let raw = raw::RawConfig::merge(managed, local);
    let files = raw.files.clone();
    let mut v = validate::Validator::new(&raw, mode, known_string_ids);
    let config = v.config();
    diags.extend(v.finish());
    diags.extend(raw::secret_rules(&raw, mode, options.expected_owner));
    diags.sort_by_key(|d| d.severity);

    match config {
        Some(config) if !diags.iter().any(|d| d.severity == Severity::Error) => Ok(Loaded {
            config,
            warnings: diags,
            files,
        }),
        _ => Err(ConfigError::Invalid(diags)),
    }
}

/// `prestage config check FILE [--allow-secret-in-profile]`: prints every problem and returns
/// the exit code (0 valid, 1 invalid).
///
/// FILE is taken as the local file and must be owned by root when it holds a secret (`APIKey`,
/// `EncryptedAPIKey`); configurations that keep the key in the keychain have no such rule. A
/// FILE in a `Managed Preferences` folder is taken as managed preferences instead (see
/// [`Sources::for_check`]).
pub fn check_command(
    file: &Path,
    allow_secret_in_profile: bool,
    known_string_ids: &dyn Fn(&str) -> bool,
    out: &mut dyn Write,
) -> i32 {
    check_command_with(
        file,
        allow_secret_in_profile,
        known_string_ids,
        LoadOptions::default(),
        out,
    )
}

/// What `config check` reminds every admin of: the Mac needs swiftDialog 2.5.0 or later
/// (`name=` of text fields, SPEC §4 "UI version"), and 3.x runs only on macOS 15 (its deployment
/// target, swiftDialog's `project.pbxproj`).
pub const SWIFTDIALOG_NOTE: &str = "the Mac needs swiftDialog 2.5.0 or later, installed by your \
    MDM or from UI.DialogPackagePath; swiftDialog 3.x runs only on macOS 15 or later, so for \
    Macs on macOS 12 to 14 ship swiftDialog 2.5.x (2.5.6 is the last 2.x release)";

/// [`check_command`] with explicit [`LoadOptions`] (tests pass their own uid as owner).
pub fn check_command_with(
    file: &Path,
    allow_secret_in_profile: bool,
    known_string_ids: &dyn Fn(&str) -> bool,
    options: LoadOptions,
    out: &mut dyn Write,
) -> i32 {
    let sources = Sources::for_check(file.to_path_buf());
    let mode = Mode::Check {
        allow_secret_in_profile,
    };
    // Write errors on `out` (a closed pipe) cannot change the verdict: ignore them.
    match load_with(&sources, mode, known_string_ids, options) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                let tag = if w.severity == Severity::Note {
                    "note"
                } else {
                    "warning"
                };
                let _ = writeln!(out, "{tag}: {w}");
            }
            let _ = writeln!(out, "note: {}", preset::describe(&loaded.config));
            let _ = writeln!(out, "note: {SWIFTDIALOG_NOTE}");
            let _ = writeln!(out, "{}: configuration is valid", file.display());
            0
        }
        Err(err) => {
            let diags = err.diagnostics();
            let errors = diags
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            for d in diags {
                let tag = match d.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                    Severity::Note => "note",
                };
                let _ = writeln!(out, "{tag}: {d}");
            }
            let plural = if errors == 1 { "" } else { "s" };
            let _ = writeln!(
                out,
                "{}: configuration is invalid ({errors} error{plural})",
                file.display()
            );
            1
        }
    }
}

#[cfg(test)]
mod proptests {
    //! The parser never panics, whatever the bytes or the plist.

    use std::path::{Path, PathBuf};

    use plist::Value;
    use proptest::prelude::*;

    use super::{raw, read, schema, validate, Mode, Severity};

    fn key() -> impl Strategy<Value = String> {
        let names: Vec<String> = schema::accepted_keys()
            .iter()
            .map(|k| k.rsplit('.').next().unwrap_or(k).to_owned())
            .collect();
        prop_oneof![
            3 => prop::sample::select(names),
            1 => "[A-Za-z.:]{0,12}",
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(Value::Boolean),
            any::<i64>().prop_map(|i| Value::Integer(i.into())),
            any::<u64>().prop_map(|i| Value::Integer(i.into())),
            any::<f64>().prop_map(Value::Real),
            "\\PC{0,20}".prop_map(Value::String),
            prop::collection::vec(any::<u8>(), 0..8).prop_map(Value::Data),
            prop::sample::select(vec![
                "Tenant",
                "None",
                "EmployeeID",
                "Attribute:",
                "Attribute: code",
                "CompanyEmail",
                "http://127.0.0.1:1/",
                "https://[::1]/",
                "0123456789abcdef0123456789abcdef01234567",
                "65a1b2c3d4e5f60718293a4b",
                "/usr/local/bin/dialog",
                "",
                " ",
            ])
            .prop_map(|s| Value::String(s.to_owned())),
        ];
        leaf.prop_recursive(3, 48, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..8)
                    .prop_map(|kv| Value::Dictionary(kv.into_iter().collect())),
            ]
        })
    }

    fn top() -> impl Strategy<Value = plist::Dictionary> {
        prop::collection::vec((key(), value()), 0..12).prop_map(|kv| kv.into_iter().collect())
    }

    fn validate_pair(managed: plist::Dictionary, local: plist::Dictionary) {
        let raw = raw::RawConfig::merge(
            Some((PathBuf::from("/nonexistent/m.plist"), managed)),
            Some((PathBuf::from("/nonexistent/l.plist"), local)),
        );
        let known = |id: &str| id.len() % 2 == 0;
        for mode in [
            Mode::Run,
            Mode::Check {
                allow_secret_in_profile: false,
            },
        ] {
            let mut v = validate::Validator::new(&raw, mode, &known);
            let config = v.config();
            let diags = v.finish();
            let errors = diags.iter().any(|d| d.severity == Severity::Error);
            assert_eq!(config.is_none(), errors, "{diags:?}");
            let _ = raw::secret_rules(&raw, mode, 0);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_bytes_never_panic(
            prefix in prop::sample::select(vec![&b""[..], b"bplist00", b"<?xml version=\"1.0\"?><plist version=\"1.0\">"]),
            bytes in prop::collection::vec(any::<u8>(), 0..2048),
        ) {
            let mut all = prefix.to_vec();
            all.extend_from_slice(&bytes);
            if let Ok(dict) = read::parse_bytes(Path::new("/r.plist"), &all) {
                validate_pair(plist::Dictionary::new(), dict);
            }
        }

        #[test]
        fn damaged_binary_plists_never_panic(
            dict in top(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ) {
            let mut bin = Vec::new();
            Value::Dictionary(dict).to_writer_binary(&mut bin).unwrap();
            for (at, byte) in flips {
                let i = at.index(bin.len());
                bin[i] = byte;
            }
            if let Ok(dict) = read::parse_bytes(Path::new("/d.plist"), &bin) {
                validate_pair(plist::Dictionary::new(), dict);
            }
        }

        #[test]
        fn random_plists_never_panic(managed in top(), local in top(), binary in any::<bool>()) {
            let mut bytes = Vec::new();
            let written = if binary {
                Value::Dictionary(local.clone()).to_writer_binary(&mut bytes)
            } else {
                Value::Dictionary(local.clone()).to_writer_xml(&mut bytes)
            };
            if written.is_ok() {
                // What we wrote must read back (XML may not round-trip every float exactly).
                let back = read::parse_bytes(Path::new("/p.plist"), &bytes);
                prop_assert!(back.is_ok(), "{:?}", back.err());
            }
            validate_pair(managed, local);
        }
    }
}
