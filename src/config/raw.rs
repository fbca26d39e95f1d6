//! The raw configuration: managed preferences laid over the local file key by key, before any
//! validation, remembering which file every key came from so messages can name it.
//!
//! "Key by key" (SPEC §3) applies at the top level and inside the sections `Identity`,
//! `Password`, `UI`, `Agent` and `Preflight`: a profile setting `UI.WelcomeTitle` keeps the local file's
//! `UI.Strings`. Deeper values (`Password.Policy`, `UI.Strings`) are replaced whole.
//!
//! Also here: the secrets rules of SPEC §3, which depend on the file a key sits in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plist::{Dictionary, Value};

use super::{Diagnostic, Mode, Severity};

/// Sections merged key by key.
const SECTIONS: &[&str] = &["Identity", "Password", "UI", "Agent", "Preflight"];

/// Keys that hold the admin API key (or a trivially reversible form of it).
pub(crate) const SECRET_KEYS: &[&str] = &["APIKey", "EncryptedAPIKey"];

/// Keys that hold a password (SPEC §3: `EnrollmentUserPassword`, local file only, the same
/// rules as `APIKey`).
pub(crate) const PASSWORD_KEYS: &[&str] = &["EnrollmentUserPassword"];

/// The merged plist and where each key came from.
#[derive(Debug, Clone)]
pub(crate) struct RawConfig {
    pub dict: Dictionary,
    /// Key path (`UI.WelcomeTitle` or `ConnectKey`) → file it was read from.
    origins: BTreeMap<String, PathBuf>,
    /// The files read, managed first.
    pub files: Vec<PathBuf>,
    /// The file named for problems with no key of their own (a missing required key): the
    /// local file when there is one.
    default_file: PathBuf,
    pub managed: Option<(PathBuf, Dictionary)>,
    pub local: Option<(PathBuf, Dictionary)>,
}

impl RawConfig {
    /// Lays `managed` over `local`.
    pub fn merge(
        managed: Option<(PathBuf, Dictionary)>,
        local: Option<(PathBuf, Dictionary)>,
    ) -> Self {
        let mut dict = Dictionary::new();
        let mut origins = BTreeMap::new();
        for (file, layer) in [&local, &managed].into_iter().flatten() {
            for (key, value) in layer {
                let merged_section =
                    match (SECTIONS.contains(&key.as_str()), value, dict.get_mut(key)) {
                        (true, Value::Dictionary(upper), Some(Value::Dictionary(lower))) => {
                            for (sub, v) in upper {
                                lower.insert(sub.clone(), v.clone());
                                origins.insert(format!("{key}.{sub}"), file.clone());
                            }
                            true
                        }
                        _ => false,
                    };
                if !merged_section {
                    // Replaced whole: forget the lower layer's sub-key origins.
                    let prefix = format!("{key}.");
                    origins.retain(|k: &String, _| !k.starts_with(&prefix));
                    dict.insert(key.clone(), value.clone());
                    if let Value::Dictionary(section) = value {
                        for sub in section.keys() {
                            origins.insert(format!("{key}.{sub}"), file.clone());
                        }
                    }
                }
                origins.insert(key.clone(), file.clone());
            }
        }
        let files: Vec<PathBuf> = [&managed, &local]
            .into_iter()
            .flatten()
            .map(|(p, _)| p.clone())
            .collect();
        let default_file = local
            .as_ref()
            .or(managed.as_ref())
            .map(|(p, _)| p.clone())
            .unwrap_or_default();
        Self {
            dict,
            origins,
            files,
            default_file,
            managed,
            local,
        }
    }

    /// The file a key path came from: the deepest recorded prefix, else the default file.
    pub fn file_for(&self, path: &str) -> &Path {
        let mut p = path;
        loop {
            if let Some(f) = self.origins.get(p) {
                return f;
            }
            match p.rfind('.') {
                Some(i) => p = &p[..i],
                None => return &self.default_file,
            }
        }
    }
}

/// SPEC §3 secrets rules: an API key in managed preferences (readable by every user), and a
/// local file holding one that is not root-owned or is readable by others.
pub(crate) fn secret_rules(raw: &RawConfig, mode: Mode, expected_owner: u32) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let strict = matches!(mode, Mode::Check { .. });
    if let Some((file, dict)) = &raw.managed {
        let severity = match mode {
            Mode::Check {
                allow_secret_in_profile: false,
            } => Severity::Error,
            _ => Severity::Warning,
        };
        let kinds: [(&[&str], &str, &str); 2] = [
            (
                SECRET_KEYS,
                "an API key in managed preferences is readable by every user of the Mac",
                "use APIKeyKeychainService instead, or pass --allow-secret-in-profile if you accept the risk",
            ),
            (
                PASSWORD_KEYS,
                "a password in managed preferences is readable by every user of the Mac",
                "ship it in the package's local configuration (build-pkg.sh --config, root:wheel 0600) instead, or pass --allow-secret-in-profile if you accept the risk",
            ),
        ];
        for (keys, message, fix) in kinds {
            for key in keys.iter().filter(|k| dict.contains_key(k)) {
                out.push(Diagnostic {
                    file: file.clone(),
                    key: (*key).to_owned(),
                    message: message.to_owned(),
                    fix: Some(fix.to_owned()),
                    severity,
                });
            }
        }
    }
    if let Some((file, dict)) = &raw.local {
        if let Some(key) = SECRET_KEYS
            .iter()
            .chain(PASSWORD_KEYS)
            .find(|k| dict.contains_key(k))
        {
            let severity = if strict {
                Severity::Error
            } else {
                Severity::Warning
            };
            out.extend(
                file_permission_problems(file, expected_owner)
                    .into_iter()
                    .map(|(message, fix)| Diagnostic {
                        file: file.clone(),
                        key: (*key).to_owned(),
                        message,
                        fix: Some(fix),
                        severity,
                    }),
            );
        }
    }
    out
}

/// What is wrong with the owner and mode of a file holding a secret, with the command fixing it.
fn file_permission_problems(file: &Path, expected_owner: u32) -> Vec<(String, String)> {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(meta) = std::fs::metadata(file) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let owner = if expected_owner == 0 {
        "root".to_owned()
    } else {
        format!("uid {expected_owner}")
    };
    if meta.uid() != expected_owner {
        let chown = if expected_owner == 0 {
            "root:wheel".to_owned()
        } else {
            expected_owner.to_string()
        };
        out.push((
            format!(
                "the file holds a secret but is owned by uid {}, not {owner}",
                meta.uid()
            ),
            format!("run `sudo chown {chown} '{}'`", file.display()),
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        out.push((
            format!(
                "the file holds a secret but its mode {mode:03o} lets others read or change it"
            ),
            format!("run `sudo chmod 600 '{}'`", file.display()),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(pairs: &[(&str, Value)]) -> Dictionary {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn managed_wins_key_by_key_inside_sections() {
        let local = dict(&[
            ("NTPServer", Value::String("local.ntp".into())),
            ("Admin", Value::Boolean(false)),
            (
                "UI",
                Value::Dictionary(dict(&[
                    ("WelcomeTitle", Value::String("local".into())),
                    ("WindowTitle", Value::String("local window".into())),
                ])),
            ),
        ]);
        let managed = dict(&[
            ("Admin", Value::Boolean(true)),
            (
                "UI",
                Value::Dictionary(dict(&[("WelcomeTitle", Value::String("managed".into()))])),
            ),
        ]);
        let raw = RawConfig::merge(Some(("/m".into(), managed)), Some(("/l".into(), local)));
        assert_eq!(raw.dict["Admin"], Value::Boolean(true));
        assert_eq!(raw.dict["NTPServer"], Value::String("local.ntp".into()));
        let ui = raw.dict["UI"].as_dictionary().unwrap();
        assert_eq!(ui["WelcomeTitle"], Value::String("managed".into()));
        assert_eq!(ui["WindowTitle"], Value::String("local window".into()));
        assert_eq!(raw.file_for("UI.WelcomeTitle"), Path::new("/m"));
        assert_eq!(raw.file_for("UI.WindowTitle"), Path::new("/l"));
        assert_eq!(raw.file_for("Admin"), Path::new("/m"));
        assert_eq!(raw.file_for("ConnectKey"), Path::new("/l"));
        assert_eq!(raw.files, vec![PathBuf::from("/m"), PathBuf::from("/l")]);
    }
}
