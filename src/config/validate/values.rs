//! The typed readers every key goes through: strings, secrets, booleans, bounded integers and
//! seconds, dictionaries, JumpCloud IDs, URLs, macOS paths, host names and choices. Each reports
//! its own problem and returns `None` (or `Err(())` where "absent" must differ from "invalid").

use std::path::PathBuf;
use std::time::Duration;

use plist::{Dictionary, Value};
use secrecy::SecretString;
use url::{Host, Url};

use super::level::{suggest, Level};
use super::Validator;
use crate::config::{ObjectId, DEFAULT_NTP_SERVER};

/// Longest timeout we accept: a day. Larger values are most likely milliseconds.
const MAX_TIMEOUT_SECONDS: i64 = 86_400;

impl Validator<'_> {
    pub(super) fn string(&mut self, level: &mut Level<'_>, key: &'static str) -> Option<String> {
        let path = level.path(key);
        match level.get(key)? {
            Value::String(s) if s.trim().is_empty() => {
                self.err(
                    &path,
                    "is empty",
                    "give it a value or remove the key to use the default",
                );
                None
            }
            Value::String(s) => Some(s.clone()),
            other => {
                self.wrong_type(&path, "a string", other);
                None
            }
        }
    }

    /// A string that is a secret: never echoed.
    pub(super) fn secret(
        &mut self,
        level: &mut Level<'_>,
        key: &'static str,
    ) -> Option<SecretString> {
        let s = self.string(level, key)?;
        if s.chars().any(char::is_whitespace) {
            self.err(
                &level.path(key),
                "contains spaces or line breaks",
                "paste the value again without surrounding whitespace",
            );
            return None;
        }
        Some(SecretString::from(s))
    }

    pub(super) fn boolean(&mut self, level: &mut Level<'_>, key: &'static str) -> Option<bool> {
        let path = level.path(key);
        match level.get(key)? {
            Value::Boolean(b) => Some(*b),
            other => {
                self.wrong_type(&path, "a boolean", other);
                None
            }
        }
    }

    /// An integer in `min..=max`; `Err(())` when present but invalid.
    pub(super) fn integer(
        &mut self,
        level: &mut Level<'_>,
        key: &'static str,
        min: i64,
        max: i64,
        unit: &str,
    ) -> Result<Option<i64>, ()> {
        let path = level.path(key);
        let Some(value) = level.get(key) else {
            return Ok(None);
        };
        let n = match value {
            Value::Integer(i) => i.as_signed(),
            other => {
                self.wrong_type(&path, "an integer", other);
                return Err(());
            }
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => {
                let shown = n.map_or_else(
                    || value.as_unsigned_integer().unwrap_or(u64::MAX).to_string(),
                    |n| n.to_string(),
                );
                self.err(
                    &path,
                    format!("is {shown}, outside {min}..={max}"),
                    format!("use a whole number of {unit} from {min} to {max}"),
                );
                Err(())
            }
        }
    }

    pub(super) fn seconds(
        &mut self,
        level: &mut Level<'_>,
        key: &'static str,
        min: i64,
        default: u64,
    ) -> Option<Duration> {
        match self.integer(level, key, min, MAX_TIMEOUT_SECONDS, "seconds") {
            Ok(Some(n)) => Some(Duration::from_secs(n.unsigned_abs())),
            Ok(None) => Some(Duration::from_secs(default)),
            Err(()) => None,
        }
    }

    pub(super) fn dict<'d>(
        &mut self,
        level: &mut Level<'d>,
        key: &'static str,
    ) -> Option<&'d Dictionary> {
        let path = level.path(key);
        match level.get(key)? {
            Value::Dictionary(d) => Some(d),
            other => {
                self.wrong_type(&path, "a dictionary", other);
                None
            }
        }
    }

    pub(super) fn object_id(
        &mut self,
        level: &mut Level<'_>,
        key: &'static str,
    ) -> Result<Option<ObjectId>, ()> {
        let Some(s) = self.string(level, key) else {
            return if level.has(key) { Err(()) } else { Ok(None) };
        };
        if let Some(id) = ObjectId::parse(&s) {
            return Ok(Some(id));
        }
        let detail = if s.trim() != s {
            "has spaces around it".to_owned()
        } else if s.len() == 24 {
            "has characters other than 0-9 and a-f".to_owned()
        } else {
            format!("is {} characters long", s.chars().count())
        };
        self.err(
            &level.path(key),
            format!("must be a JumpCloud ID of 24 lower-case hex characters, but {detail}"),
            "copy the ID from the JumpCloud console (the 24 characters in the object's URL)",
        );
        Err(())
    }

    pub(super) fn url(
        &mut self,
        level: &mut Level<'_>,
        key: &'static str,
        default: &str,
    ) -> Option<Url> {
        let Some(s) = self.string(level, key) else {
            return if level.has(key) {
                None
            } else {
                Some(Url::parse(default).expect("the default URLs are valid URL constants"))
            };
        };
        let path = level.path(key);
        let Ok(url) = Url::parse(s.trim()) else {
            self.err(
                &path,
                "is not a valid URL",
                format!("write a full URL such as {default}"),
            );
            return None;
        };
        let loopback = match url.host() {
            Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        let ok_scheme = url.scheme() == "https" || (url.scheme() == "http" && loopback);
        if !ok_scheme || url.host().is_none() {
            self.err(
                &path,
                format!(
                    "uses {}://; only https is allowed (http only for localhost)",
                    url.scheme()
                ),
                format!("use an https URL such as {default}"),
            );
            return None;
        }
        if !url.username().is_empty() || url.password().is_some() {
            self.err(
                &path,
                "contains a user name or password",
                "remove the credentials from the URL",
            );
            return None;
        }
        Some(url)
    }

    /// An absolute macOS path.
    pub(super) fn mac_path(
        &mut self,
        level: &mut Level<'_>,
        key: &'static str,
    ) -> Result<Option<PathBuf>, ()> {
        let Some(s) = self.string(level, key) else {
            return if level.has(key) { Err(()) } else { Ok(None) };
        };
        if !s.starts_with('/') {
            self.err(
                &level.path(key),
                "must be an absolute path (starting with /)",
                "write the full path on the Mac, e.g. /Library/Application Support/Company/file",
            );
            return Err(());
        }
        Ok(Some(PathBuf::from(s)))
    }

    pub(super) fn choice(
        &mut self,
        level: &mut Level<'_>,
        key: &'static str,
        choices: &[&'static str],
    ) -> Result<Option<&'static str>, ()> {
        let Some(s) = self.string(level, key) else {
            return if level.has(key) { Err(()) } else { Ok(None) };
        };
        if let Some(c) = choices.iter().find(|c| **c == s) {
            return Ok(Some(c));
        }
        let fix = match suggest(&s, choices) {
            Some(c) => format!("did you mean `{c}`?"),
            None => format!("use one of {}", choices.join(", ")),
        };
        self.err(
            &level.path(key),
            format!("`{s}` is not one of {}", choices.join(", ")),
            fix,
        );
        Err(())
    }

    pub(super) fn hostname(
        &mut self,
        level: &mut Level<'_>,
        key: &'static str,
    ) -> Result<Option<String>, ()> {
        let Some(s) = self.string(level, key) else {
            return if level.has(key) { Err(()) } else { Ok(None) };
        };
        let valid = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
            && !s.starts_with(['.', '-']);
        if !valid {
            self.err(
                &level.path(key),
                format!("`{s}` is not a host name"),
                format!(
                    "write a host name such as {DEFAULT_NTP_SERVER}, without a scheme or spaces"
                ),
            );
            return Err(());
        }
        Ok(Some(s))
    }
}
