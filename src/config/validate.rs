//! Validation: the raw, merged plist checked key by key into a typed [`Config`].
//!
//! Every key is read through a [`Level`] (one dictionary and its key path), so that every
//! problem names its key path and file, keys nobody asked for are reported as unknown with a
//! "did you mean" suggestion from the keys valid at that level, and reading goes on after a bad
//! value to find every problem in one pass. The set of key paths read here is compared with the
//! JSON Schema in `schema`'s tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use plist::{Dictionary, Value};
use secrecy::SecretString;
use url::{Host, Url};

mod admin;

use super::raw::RawConfig;
use super::read::kind;
use super::{
    AgentConfig, ApiKeySource, Config, Diagnostic, Identifier, IdentityConfig, Mode, ObjectId,
    PasswordConfig, PolicySource, SecretKind, Severity, UiConfig, DEFAULT_AGENT_PACKAGE_URL,
    DEFAULT_API_BASE_URL, DEFAULT_NTP_SERVER,
};
use crate::policy::PasswordPolicy;

/// Longest timeout we accept: a day. Larger values are most likely milliseconds.
const MAX_TIMEOUT_SECONDS: i64 = 86_400;

/// The closest candidate to `input`, if one is close enough to be a likely typo.
pub(crate) fn suggest<'c>(input: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let lower = input.to_ascii_lowercase();
    if let Some(exact) = candidates.iter().find(|c| c.to_ascii_lowercase() == lower) {
        return Some(exact);
    }
    // Close by Jaro-Winkler (good at shared prefixes), or within a few edits (good at swapped
    // letters in short keys).
    let max_edits = (lower.len() / 3).max(1);
    candidates
        .iter()
        .map(|c| {
            let c_lower = c.to_ascii_lowercase();
            let jw = strsim::jaro_winkler(&lower, &c_lower);
            let close = strsim::damerau_levenshtein(&lower, &c_lower) <= max_edits;
            (jw, close, *c)
        })
        .filter(|(jw, close, _)| *jw >= 0.8 || *close)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, _, c)| c)
}

/// One dictionary being read, and the keys asked of it so far.
struct Level<'d> {
    prefix: String,
    dict: Option<&'d Dictionary>,
    asked: Vec<&'static str>,
}

impl<'d> Level<'d> {
    fn new(prefix: &str, dict: Option<&'d Dictionary>) -> Self {
        Self {
            prefix: prefix.to_owned(),
            dict,
            asked: Vec::new(),
        }
    }

    fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    fn get(&mut self, key: &'static str) -> Option<&'d Value> {
        self.asked.push(key);
        self.dict.and_then(|d| d.get(key))
    }

    fn has(&self, key: &str) -> bool {
        self.dict.is_some_and(|d| d.contains_key(key))
    }
}

/// Collects diagnostics while turning a [`RawConfig`] into a [`Config`].
pub(crate) struct Validator<'a> {
    raw: &'a RawConfig,
    mode: Mode,
    known_string_ids: &'a dyn Fn(&str) -> bool,
    diags: Vec<Diagnostic>,
    /// Every key path read, for the schema comparison test.
    pub(crate) asked: BTreeSet<String>,
}

impl<'a> Validator<'a> {
    pub fn new(raw: &'a RawConfig, mode: Mode, known_string_ids: &'a dyn Fn(&str) -> bool) -> Self {
        Self {
            raw,
            mode,
            known_string_ids,
            diags: Vec::new(),
            asked: BTreeSet::new(),
        }
    }

    /// The diagnostics found.
    pub fn finish(self) -> Vec<Diagnostic> {
        self.diags
    }

    fn push(&mut self, path: &str, severity: Severity, message: String, fix: Option<String>) {
        self.diags.push(Diagnostic {
            file: self.raw.file_for(path).to_path_buf(),
            key: path.to_owned(),
            message,
            fix,
            severity,
        });
    }

    fn err(&mut self, path: &str, message: impl Into<String>, fix: impl Into<String>) {
        self.push(path, Severity::Error, message.into(), Some(fix.into()));
    }

    /// Errors in `config check`, warnings in `run`.
    fn strictness(&self) -> Severity {
        match self.mode {
            Mode::Run => Severity::Warning,
            Mode::Check { .. } => Severity::Error,
        }
    }

    fn wrong_type(&mut self, path: &str, expected: &str, found: &Value) {
        let example = match expected {
            "a boolean" => "<true/> or <false/>",
            "an integer" => "<integer>600</integer>",
            "a dictionary" => "<dict>...</dict> (see docs/configuration.md)",
            "a string" => "<string>...</string>",
            _ => "described in docs/configuration.md",
        };
        self.err(
            path,
            format!("expected {expected}, found {}", kind(found)),
            format!("write it as {example}"),
        );
    }

    /// Reports the keys of `level` nobody asked for, and records the asked ones.
    fn close(&mut self, level: &Level<'_>) {
        for key in &level.asked {
            self.asked.insert(level.path(key));
        }
        let Some(dict) = level.dict else { return };
        let severity = self.strictness();
        for key in dict.keys() {
            if level.asked.contains(&key.as_str()) {
                continue;
            }
            let path = level.path(key);
            let fix = if let Some(s) = suggest(key, &level.asked) {
                format!("did you mean `{}`?", level.path(s))
            } else {
                format!("remove it; valid keys here are {}", level.asked.join(", "))
            };
            self.push(&path, severity, "unknown key".to_owned(), Some(fix));
        }
    }

    fn string(&mut self, level: &mut Level<'_>, key: &'static str) -> Option<String> {
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
    fn secret(&mut self, level: &mut Level<'_>, key: &'static str) -> Option<SecretString> {
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

    fn boolean(&mut self, level: &mut Level<'_>, key: &'static str) -> Option<bool> {
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
    fn integer(
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

    fn seconds(
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

    fn dict<'d>(&mut self, level: &mut Level<'d>, key: &'static str) -> Option<&'d Dictionary> {
        let path = level.path(key);
        match level.get(key)? {
            Value::Dictionary(d) => Some(d),
            other => {
                self.wrong_type(&path, "a dictionary", other);
                None
            }
        }
    }

    fn object_id(
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

    fn url(&mut self, level: &mut Level<'_>, key: &'static str, default: &str) -> Option<Url> {
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
    fn mac_path(
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

    fn choice(
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

    /// Validates everything; `None` when an error was found.
    #[allow(clippy::similar_names)] // api_key / api_keychain read as the keys they come from
    pub fn config(&mut self) -> Option<Config> {
        let raw = self.raw;
        let mut top = Level::new("", Some(&raw.dict));

        let connect_key = if let Some(s) = self.string(&mut top, "ConnectKey") {
            match crate::config::ConnectKey::parse(&s) {
                Ok(key) => Some(key),
                Err(e) => {
                    let fix = match e {
                        crate::config::connect_key::ConnectKeyError::Classic(_) => {
                            "copy the connect key from the JumpCloud console (Devices, + Device, Mac): 40 hex characters, or the whole jcc_ key"
                        }
                        crate::config::connect_key::ConnectKeyError::Tenant(_) => {
                            "copy the whole tenant connect key again from the JumpCloud console (Devices, + Device, Mac); it decodes to agentBootstrap.json"
                        }
                    };
                    self.err("ConnectKey", e.to_string(), fix);
                    None
                }
            }
        } else {
            if !top.has("ConnectKey") {
                self.err(
                    "ConnectKey",
                    "is required",
                    "add the connect key from the JumpCloud console (Devices, + Device, Mac)",
                );
            }
            None
        };

        let api_key = self.api_key_source(&mut top);
        let api_base_url = self.url(&mut top, "APIBaseURL", DEFAULT_API_BASE_URL);
        let org_id = self.object_id(&mut top, "OrgID");
        let enrollment_group_id = self.object_id(&mut top, "EnrollmentGroupID");
        let post_enrollment_group_id = self.object_id(&mut top, "PostEnrollmentGroupID");

        let enrollment_user = self.account_name(&mut top, "EnrollmentUser");
        let delete_enrollment_users = self.boolean(&mut top, "DeleteEnrollmentUsers");
        // With Identity.Preset and no setup account (SSO during Setup Assistant), there is
        // nothing to delete: DeleteEnrollmentUsers then defaults to false.
        let preset_mode = super::preset::written(self.raw) && !top.has("EnrollmentUser");
        let delete_enrollment_users = delete_enrollment_users
            .or((preset_mode && !top.has("DeleteEnrollmentUsers")).then_some(false));
        // When DeleteEnrollmentUsers itself is invalid, that is the error to fix first.
        let delete_invalid = top.has("DeleteEnrollmentUsers") && delete_enrollment_users.is_none();
        if !delete_invalid && delete_enrollment_users != Some(false) && !top.has("EnrollmentUser") {
            let fix = if preset_mode {
                "with Identity.Preset and no setup account there is nothing to delete: remove DeleteEnrollmentUsers (or set it to false), or set EnrollmentUser to the setup account your MDM creates"
            } else {
                "set EnrollmentUser to the setup account your MDM creates (e.g. welcome), or set DeleteEnrollmentUsers to false"
            };
            self.err(
                "EnrollmentUser",
                "is required while DeleteEnrollmentUsers is true (the default)",
                fix,
            );
        }
        let enrollment_user_password =
            self.enrollment_user_password(&mut top, enrollment_user.as_ref().ok());
        let secure_token_timeout = self.seconds(&mut top, "SecureTokenTimeoutSeconds", 1, 300);
        let admin = self.boolean(&mut top, "Admin");
        let ntp_server = self.hostname(&mut top, "NTPServer");
        let report_to_directory = self.boolean(&mut top, "ReportToDirectory");
        let computer_name = self.computer_name(&mut top);
        let webhooks = self.webhooks(&mut top);
        let preflight = self.preflight(&mut top);

        let identity = self.identity(&mut top);
        let password = self.password(&mut top);
        let ui = self.ui(&mut top);
        let agent = self.agent(&mut top);
        self.close(&top);
        // Whoever sits at a new Mac must not be able to reset an active colleague's password
        // by typing their email: a password for active users needs a secret.
        if let (Some(p), Some(i)) = (&password, &identity) {
            if p.require_for_active_users && i.secret == SecretKind::None {
                let severity = self.strictness();
                self.push(
                    "Password.RequireForActiveUsers",
                    severity,
                    "is true while Identity.Secret is None: anyone at a new Mac could set the JumpCloud password of an active colleague by typing their identifier".to_owned(),
                    Some("set Identity.Secret to EmployeeID or Attribute:<name>, or RequireForActiveUsers to false".to_owned()),
                );
            }
        }

        // Macs enrolled through JumpCloud's own MDM (ADE) get 401 on system context, so they
        // cannot add themselves to EnrollmentGroupID, and a key-writing command bound to that
        // group never runs there (the run stops with one line saying so).
        if let (Some(ApiKeySource::Keychain { .. }), Ok(Some(_)), Mode::Check { .. }) =
            (&api_key, &enrollment_group_id, self.mode)
        {
            self.push(
                "APIKeyKeychainService",
                Severity::Note,
                "is used with EnrollmentGroupID: a key-writing command bound to that group (the recommended set-up) never runs on Macs enrolled through JumpCloud's own MDM (ADE), because JumpCloud refuses them system context (401) and so they cannot join EnrollmentGroupID".to_owned(),
                Some("for those Macs bind the key-writing command another way (to the device, or to a group it is already in), or use EncryptedAPIKey or APIKey".to_owned()),
            );
        }

        if self.diags.iter().any(|d| d.severity == Severity::Error) {
            return None;
        }
        let config = Config {
            connect_key: connect_key?,
            api_key: api_key?,
            api_base_url: api_base_url?,
            org_id: org_id.ok()?,
            enrollment_group_id: enrollment_group_id.ok()?,
            post_enrollment_group_id: post_enrollment_group_id.ok()?,
            enrollment_user: enrollment_user.ok()?,
            enrollment_user_password: enrollment_user_password.ok()?,
            secure_token_timeout: secure_token_timeout?,
            delete_enrollment_users: delete_enrollment_users.unwrap_or(true),
            admin: admin.unwrap_or(false),
            identity: identity?,
            password: password?,
            ui: ui?,
            agent: agent?,
            ntp_server: ntp_server
                .ok()?
                .unwrap_or_else(|| DEFAULT_NTP_SERVER.to_owned()),
            report_to_directory: report_to_directory.unwrap_or(true),
            computer_name: computer_name.ok()?,
            webhooks: webhooks.unwrap_or_default(),
            preflight: preflight?,
        };
        let file = self.raw.file_for("Identity.Preset").to_path_buf();
        self.diags
            .extend(super::preset::review(&config, self.mode, &file));
        Some(config)
    }

    fn api_key_source(&mut self, top: &mut Level<'_>) -> Option<ApiKeySource> {
        let plain = self.secret(top, "APIKey");
        let keychain = self.string(top, "APIKeyKeychainService");
        let encrypted = self.secret(top, "EncryptedAPIKey");
        let decrypt_user = self.account_name(top, "DecryptUser");
        if let Some(enc) = &encrypted {
            use base64::Engine as _;
            use secrecy::ExposeSecret as _;
            if base64::engine::general_purpose::STANDARD
                .decode(enc.expose_secret())
                .is_err()
            {
                self.err(
                    "EncryptedAPIKey",
                    "is not valid base64",
                    "copy the whole value printed by the bash script's EncryptKey function",
                );
            }
        }
        let present: Vec<&str> = [
            ("APIKey", top.has("APIKey")),
            ("APIKeyKeychainService", top.has("APIKeyKeychainService")),
            (
                "EncryptedAPIKey",
                top.has("EncryptedAPIKey") || top.has("DecryptUser"),
            ),
        ]
        .into_iter()
        .filter_map(|(k, p)| p.then_some(k))
        .collect();
        match present.as_slice() {
            [] => {
                self.err(
                    "APIKey",
                    "no API key source is set",
                    "set exactly one of APIKeyKeychainService (recommended), APIKey, or EncryptedAPIKey with DecryptUser",
                );
                return None;
            }
            [_] => {}
            [first, rest @ ..] => {
                self.err(
                    rest[0],
                    format!(
                        "more than one API key source is set ({})",
                        present.join(", ")
                    ),
                    format!("keep exactly one: remove {} or {first}", rest.join(" and ")),
                );
                return None;
            }
        }
        if top.has("EncryptedAPIKey") != top.has("DecryptUser") {
            let (missing, with) = if top.has("EncryptedAPIKey") {
                ("DecryptUser", "EncryptedAPIKey")
            } else {
                ("EncryptedAPIKey", "DecryptUser")
            };
            self.err(
                missing,
                format!("is required with {with}"),
                "set both EncryptedAPIKey and DecryptUser (the bash script's ENCRYPTED_KEY and DECRYPT_USER), or neither",
            );
            return None;
        }
        if let Some(key) = plain {
            return Some(ApiKeySource::Plain(key));
        }
        if let Some(service) = keychain {
            return Some(ApiKeySource::Keychain { service });
        }
        match (encrypted, decrypt_user) {
            (Some(encrypted), Ok(Some(decrypt_user))) => Some(ApiKeySource::Legacy {
                encrypted,
                decrypt_user,
            }),
            _ => None,
        }
    }

    /// `EnrollmentUserPassword`: the setup account's password, for the agent's service account.
    /// Spaces are allowed (it is a password); a line break is not, since the credentials file
    /// is one line (`<user>;<password>`). Needs `EnrollmentUser`.
    fn enrollment_user_password(
        &mut self,
        top: &mut Level<'_>,
        user: Option<&Option<String>>,
    ) -> Result<Option<SecretString>, ()> {
        const KEY: &str = "EnrollmentUserPassword";
        let Some(s) = self.string(top, KEY) else {
            return if top.has(KEY) { Err(()) } else { Ok(None) };
        };
        if s.is_empty() || s.contains(['\n', '\r', '\0']) {
            self.err(
                KEY,
                "is empty or contains a line break",
                "set the setup account's password exactly, on one line, or remove the key",
            );
            return Err(());
        }
        if matches!(user, Some(None)) {
            self.err(
                KEY,
                "is set without EnrollmentUser",
                "set EnrollmentUser to the setup account this password belongs to, or remove EnrollmentUserPassword",
            );
            return Err(());
        }
        Ok(Some(SecretString::from(s)))
    }

    /// A local account short name.
    fn account_name(
        &mut self,
        level: &mut Level<'_>,
        key: &'static str,
    ) -> Result<Option<String>, ()> {
        let Some(s) = self.string(level, key) else {
            return if level.has(key) { Err(()) } else { Ok(None) };
        };
        let valid = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            && !s.starts_with('-')
            && s != "root";
        if !valid {
            self.err(
                &level.path(key),
                format!("`{s}` is not a usable macOS account name"),
                "use the account's short name (letters, digits, . _ -), not its full name, and never root",
            );
            return Err(());
        }
        Ok(Some(s))
    }

    fn hostname(&mut self, level: &mut Level<'_>, key: &'static str) -> Result<Option<String>, ()> {
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

    fn identity(&mut self, top: &mut Level<'_>) -> Option<IdentityConfig> {
        let dict = self.dict(top, "Identity");
        let failed = top.has("Identity") && dict.is_none();
        let mut l = Level::new("Identity", dict);
        let identifier = self
            .choice(
                &mut l,
                "Identifier",
                &["CompanyEmail", "PersonalEmail", "LastName", "Username"],
            )
            .map(|c| match c {
                Some("PersonalEmail") => Identifier::PersonalEmail,
                Some("LastName") => Identifier::LastName,
                Some("Username") => Identifier::Username,
                _ => Identifier::CompanyEmail,
            });
        let secret = self.secret_kind(&mut l);
        let max_attempts = self.integer(&mut l, "MaxAttempts", 1, 100, "attempts");
        let cooldown = self.seconds(&mut l, "CooldownSeconds", 0, 300);
        let (preset_raw, preset_failed) = self.preset(&mut l);
        self.close(&l);
        if failed || preset_failed {
            return None;
        }
        let preset = preset_raw
            .clone()
            .filter(|p| !super::preset::is_unsubstituted(p));
        Some(IdentityConfig {
            preset,
            preset_raw,
            identifier: identifier.ok()?,
            secret: secret?,
            max_attempts: max_attempts
                .ok()?
                .map_or(Some(5), |n| u32::try_from(n).ok())?,
            cooldown: cooldown?,
        })
    }

    /// `Identity.Preset`, trimmed, and whether it failed validation. An empty value is what
    /// Jamf Pro may send for a user variable it has no value for (see `preset`'s module docs):
    /// in `run` that counts as no preset (a warning; the employee is asked), in `config check`
    /// it is an error like any empty string.
    fn preset(&mut self, l: &mut Level<'_>) -> (Option<String>, bool) {
        let path = l.path("Preset");
        if let (Mode::Run, Some(Value::String(v))) =
            (self.mode, l.dict.and_then(|d| d.get("Preset")))
        {
            if v.trim().is_empty() {
                l.asked.push("Preset");
                self.push(
                    &path,
                    Severity::Warning,
                    "is empty: the MDM substituted nothing for its payload variable (no user assigned to the device?), so the employee is asked who they are".to_owned(),
                    Some("assign the user to the device in the MDM, or remove Identity.Preset".to_owned()),
                );
                return (None, false);
            }
        }
        let value = self.string(l, "Preset").map(|s| s.trim().to_owned());
        let failed = l.has("Preset") && value.is_none();
        (value, failed)
    }

    /// `None` | `EmployeeID` | `Attribute:<name>` (a space after the colon is allowed).
    fn secret_kind(&mut self, l: &mut Level<'_>) -> Option<SecretKind> {
        let path = l.path("Secret");
        let Some(s) = self.string(l, "Secret") else {
            return (!l.has("Secret")).then_some(SecretKind::None);
        };
        match s.as_str() {
            "None" => return Some(SecretKind::None),
            "EmployeeID" => return Some(SecretKind::EmployeeId),
            _ => {}
        }
        if let Some(name) = s.strip_prefix("Attribute:") {
            let name = name.trim();
            if !name.is_empty() && !name.contains(char::is_whitespace) {
                return Some(SecretKind::Attribute(name.to_owned()));
            }
            self.err(
                &path,
                "names no attribute",
                "write Attribute:<name> with the custom attribute's name, e.g. Attribute:EnrollmentCode",
            );
            return None;
        }
        let fix = match suggest(&s, &["None", "EmployeeID", "Attribute:"]) {
            Some(c) => format!("did you mean `{c}`?"),
            None => "use None, EmployeeID or Attribute:<name>".to_owned(),
        };
        self.err(
            &path,
            format!("`{s}` is not None, EmployeeID or Attribute:<name>"),
            fix,
        );
        None
    }

    fn password(&mut self, top: &mut Level<'_>) -> Option<PasswordConfig> {
        let dict = self.dict(top, "Password");
        let failed = top.has("Password") && dict.is_none();
        let mut l = Level::new("Password", dict);
        let require = self.boolean(&mut l, "RequireForActiveUsers");
        let path = l.path("Policy");
        let policy = match l.get("Policy") {
            None => Some(PolicySource::Tenant),
            Some(Value::String(s)) if s == "Tenant" => Some(PolicySource::Tenant),
            Some(Value::Dictionary(d)) => self.local_policy(d),
            Some(Value::String(s)) => {
                self.err(
                    &path,
                    format!("`{s}` is not Tenant"),
                    "write Tenant, or a dictionary with MinLength and the Require... keys",
                );
                None
            }
            Some(other) => {
                let other = other.clone();
                self.wrong_type(&path, "the string Tenant or a dictionary", &other);
                None
            }
        };
        self.close(&l);
        if failed {
            return None;
        }
        Some(PasswordConfig {
            require_for_active_users: require.unwrap_or(false),
            policy: policy?,
        })
    }

    fn local_policy(&mut self, d: &Dictionary) -> Option<PolicySource> {
        let mut l = Level::new("Password.Policy", Some(d));
        let min = self.integer(&mut l, "MinLength", 1, 256, "characters");
        let upper = self.boolean(&mut l, "RequireUppercase");
        let lower = self.boolean(&mut l, "RequireLowercase");
        let number = self.boolean(&mut l, "RequireNumber");
        let symbol = self.boolean(&mut l, "RequireSymbol");
        self.close(&l);
        let defaults = PasswordPolicy::default();
        Some(PolicySource::Local(PasswordPolicy {
            min_length: min
                .ok()?
                .map_or(Some(defaults.min_length), |n| u32::try_from(n).ok())?,
            require_uppercase: upper.unwrap_or(defaults.require_uppercase),
            require_lowercase: lower.unwrap_or(defaults.require_lowercase),
            require_number: number.unwrap_or(defaults.require_number),
            require_symbol: symbol.unwrap_or(defaults.require_symbol),
            ..defaults
        }))
    }

    fn ui(&mut self, top: &mut Level<'_>) -> Option<UiConfig> {
        let dict = self.dict(top, "UI");
        let failed = top.has("UI") && dict.is_none();
        let mut l = Level::new("UI", dict);
        let defaults = UiConfig::default();
        let window_title = self.string(&mut l, "WindowTitle");
        let welcome_title = self.string(&mut l, "WelcomeTitle");
        let welcome_text = self.string(&mut l, "WelcomeText");
        // swiftDialog also takes URLs and SF Symbols (`SF=...`) for images: any string is kept.
        let icon = self.string(&mut l, "Icon").map(PathBuf::from);
        let banner_image = self.string(&mut l, "BannerImage").map(PathBuf::from);
        let full_screen = self.boolean(&mut l, "FullScreen");
        let language = self.language(&mut l);
        let strings = self.strings(&mut l);
        let dialog_path = self.mac_path(&mut l, "DialogPath");
        let dialog_package_path = self.mac_path(&mut l, "DialogPackagePath");
        let help_message = self.string(&mut l, "HelpMessage");
        self.close(&l);
        if failed {
            return None;
        }
        Some(UiConfig {
            window_title,
            welcome_title,
            welcome_text,
            icon,
            banner_image,
            full_screen: full_screen.unwrap_or(defaults.full_screen),
            language: language.ok()?,
            strings: strings?,
            dialog_path: dialog_path.ok()?.unwrap_or(defaults.dialog_path),
            dialog_package_path: dialog_package_path.ok()?,
            help_message,
        })
    }

    fn language(&mut self, l: &mut Level<'_>) -> Result<Option<String>, ()> {
        let Some(s) = self.string(l, "Language") else {
            return if l.has("Language") { Err(()) } else { Ok(None) };
        };
        // BCP 47-ish: `de`, `en-GB`, `pt_BR`, `zh-Hans`.
        let mut parts = s.split(['-', '_']);
        let first_ok = parts.next().is_some_and(|p| {
            (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic())
        });
        let rest_ok = parts
            .all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
        if first_ok && rest_ok {
            Ok(Some(s))
        } else {
            self.err(
                &l.path("Language"),
                format!("`{s}` is not a language code"),
                "use a code such as en, de, fr or en-GB, or remove it to follow the user's language",
            );
            Err(())
        }
    }

    fn strings(&mut self, l: &mut Level<'_>) -> Option<BTreeMap<String, String>> {
        let dict = self.dict(l, "Strings");
        if l.has("Strings") && dict.is_none() {
            return None;
        }
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (id, value) in dict.into_iter().flatten() {
            let path = format!("UI.Strings.{id}");
            if !(self.known_string_ids)(id) {
                let severity = self.strictness();
                self.push(
                    &path,
                    severity,
                    format!("`{id}` is not the id of a built-in text"),
                    Some("check the spelling against the string ids in docs/configuration.md (`prestage ui preview` shows every text)".to_owned()),
                );
                continue;
            }
            match value {
                // swiftDialog's launcher drops blank arguments, so the window would show
                // swiftDialog's placeholder (`dialogcli.swift`, `filteredArgs`). Texts with a
                // leading `-` or a `word=` are fine: prestage escapes them (`ui::dialog`).
                Value::String(s) if s.trim().is_empty() => {
                    self.err(
                        &path,
                        "is empty (swiftDialog would show its own placeholder text)",
                        "write the text, or remove the key to use prestage's built-in text",
                    );
                    ok = false;
                }
                Value::String(s) => {
                    out.insert(id.clone(), s.clone());
                }
                other => {
                    self.wrong_type(&path, "a string", other);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn agent(&mut self, top: &mut Level<'_>) -> Option<AgentConfig> {
        let dict = self.dict(top, "Agent");
        let failed = top.has("Agent") && dict.is_none();
        let mut l = Level::new("Agent", dict);
        let package_url = self.url(&mut l, "PackageURL", DEFAULT_AGENT_PACKAGE_URL);
        let package_path = self.mac_path(&mut l, "PackagePath");
        let install_timeout = self.seconds(&mut l, "InstallTimeoutSeconds", 1, 600);
        let takeover_timeout = self.seconds(&mut l, "TakeoverTimeoutSeconds", 1, 600);
        self.close(&l);
        if failed {
            return None;
        }
        Some(AgentConfig {
            package_url: package_url?,
            package_path: package_path.ok()?,
            install_timeout: install_timeout?,
            takeover_timeout: takeover_timeout?,
        })
    }
}

/// Every key path the validator reads, found by validating a configuration where every section
/// (and `Password.Policy`) is an empty dictionary. Used by the schema tests.
#[cfg(test)]
pub(crate) fn parser_keys() -> BTreeSet<String> {
    let mut dict = Dictionary::new();
    for section in ["Identity", "Password", "UI", "Agent", "Preflight"] {
        let mut d = Dictionary::new();
        if section == "Password" {
            d.insert("Policy".into(), Value::Dictionary(Dictionary::new()));
        }
        if section == "UI" {
            d.insert("Strings".into(), Value::Dictionary(Dictionary::new()));
        }
        dict.insert(section.into(), Value::Dictionary(d));
    }
    dict.insert(
        "Webhooks".into(),
        Value::Array(vec![Value::Dictionary(Dictionary::new())]),
    );
    let raw = RawConfig::merge(None, Some((PathBuf::from("/t.plist"), dict)));
    let known = |_: &str| true;
    let mut v = Validator::new(&raw, Mode::Run, &known);
    let _ = v.config();
    // The keys of each `Webhooks[i]` are described once, under `Webhooks`.
    v.asked
        .into_iter()
        .map(|k| k.replace("Webhooks[0]", "Webhooks"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Dictionary {
        let mut d = Dictionary::new();
        d.insert(
            "ConnectKey".into(),
            Value::String("0123456789ABCDEF0123456789abcdef01234567".into()),
        );
        d.insert("APIKeyKeychainService".into(), Value::String("svc".into()));
        d.insert("DeleteEnrollmentUsers".into(), Value::Boolean(false));
        d
    }

    fn section(d: &mut Dictionary, name: &str, pairs: &[(&str, Value)]) {
        let s: Dictionary = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        d.insert(name.into(), Value::Dictionary(s));
    }

    fn run(d: Dictionary) -> (Option<Config>, Vec<Diagnostic>) {
        let raw = RawConfig::merge(None, Some((PathBuf::from("/c.plist"), d)));
        let known = |id: &str| id == "welcome.title";
        let mut v = Validator::new(
            &raw,
            Mode::Check {
                allow_secret_in_profile: false,
            },
            &known,
        );
        let c = v.config();
        (c, v.finish())
    }

    fn keys(diags: &[Diagnostic]) -> Vec<&str> {
        diags.iter().map(|d| d.key.as_str()).collect()
    }

    #[test]
    fn a_keychain_key_with_an_enrollment_group_gets_a_note_about_ade_macs() {
        let mut d = base();
        let (config, diags) = run(d.clone());
        assert!(config.is_some() && diags.is_empty(), "{diags:?}");
        d.insert(
            "EnrollmentGroupID".into(),
            Value::String("5e0000000000000000000001".into()),
        );
        let (config, diags) = run(d.clone());
        assert!(config.is_some(), "a note is not an error: {diags:?}");
        assert_eq!(diags.len(), 1, "{diags:?}");
        let note = &diags[0];
        assert_eq!(
            (note.severity, note.key.as_str()),
            (Severity::Note, "APIKeyKeychainService")
        );
        let text = note.to_string();
        for part in ["(ADE)", "401", "EncryptedAPIKey or APIKey", "another way"] {
            assert!(text.contains(part), "{part}: {text}");
        }
        // An API key shipped another way needs no note.
        d.remove("APIKeyKeychainService");
        d.insert("APIKey".into(), Value::String("k".into()));
        let (_, diags) = run(d);
        assert!(
            diags.iter().all(|d| d.severity != Severity::Note),
            "{diags:?}"
        );
    }

    #[test]
    fn accepts_both_attribute_forms_and_loopback_http() {
        for form in ["Attribute:Code", "Attribute: Code"] {
            let mut d = base();
            section(
                &mut d,
                "Identity",
                &[("Secret", Value::String(form.into()))],
            );
            d.insert(
                "APIBaseURL".into(),
                Value::String("http://127.0.0.1:8080".into()),
            );
            let (c, diags) = run(d);
            assert!(diags.is_empty(), "{diags:?}");
            let c = c.unwrap();
            assert_eq!(c.identity.secret, SecretKind::Attribute("Code".into()));
            assert_eq!(c.api_base_url.as_str(), "http://127.0.0.1:8080/");
        }
    }

    #[test]
    fn nested_problems_are_all_found() {
        let mut d = base();
        let mut policy = Dictionary::new();
        policy.insert("MinLenght".into(), Value::Integer(8.into()));
        policy.insert("RequireNumber".into(), Value::Integer(1.into()));
        section(&mut d, "Password", &[("Policy", Value::Dictionary(policy))]);
        let mut strings = Dictionary::new();
        strings.insert("welcome.title".into(), Value::Integer(3.into()));
        section(
            &mut d,
            "UI",
            &[
                ("Strings", Value::Dictionary(strings)),
                ("Language", Value::String("english please".into())),
                ("DialogPath", Value::String("bin/dialog".into())),
            ],
        );
        section(
            &mut d,
            "Agent",
            &[("InstallTimeoutSeconds", Value::Integer(u64::MAX.into()))],
        );
        let (c, diags) = run(d);
        assert!(c.is_none());
        assert_eq!(
            keys(&diags),
            [
                "Password.Policy.RequireNumber",
                "Password.Policy.MinLenght",
                "UI.Language",
                "UI.Strings.welcome.title",
                "UI.DialogPath",
                "Agent.InstallTimeoutSeconds",
            ]
        );
        assert_eq!(
            diags[1].fix.as_deref(),
            Some("did you mean `Password.Policy.MinLength`?")
        );
        assert!(
            diags[5].message.contains("18446744073709551615"),
            "{diags:?}"
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("connectkey", &["ConnectKey", "Admin"]),
            Some("ConnectKey")
        );
        assert_eq!(suggest("Amdin", &["ConnectKey", "Admin"]), Some("Admin"));
        assert_eq!(suggest("Zebra", &["ConnectKey", "Admin"]), None);
        assert_eq!(suggest("UI", &["ConnectKey", "Admin"]), None);
    }
}
