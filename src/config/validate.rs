//! Validation: the raw, merged plist checked key by key into a typed [`Config`].
//!
//! Every key is read through a [`Level`] (one dictionary and its key path), so that every
//! problem names its key path and file, keys nobody asked for are reported as unknown with a
//! "did you mean" suggestion from the keys valid at that level, and reading goes on after a bad
//! value to find every problem in one pass. The set of key paths read here is compared with the
//! JSON Schema in `schema`'s tests.
//!
//! The readers live by topic in `validate/`: `level` (the dictionary being read and how a
//! problem becomes a diagnostic), `values` (the typed readers), `api_key`, `accounts`,
//! `identity`, `password`, `ui`, `agent` and `admin` (`ComputerName`, `Webhooks`,
//! `Preflight`). This file holds the [`Validator`] and the top level, which reads every
//! section in turn.

use std::collections::BTreeSet;
#[cfg(test)]
use std::path::PathBuf;

#[cfg(test)]
use plist::{Dictionary, Value};

mod accounts;
mod admin;
mod agent;
mod api_key;
mod identity;
mod level;
mod password;
mod ui;
mod values;

#[cfg(test)]
use level::suggest;
use level::Level;

use super::raw::RawConfig;
use super::{
    ApiKeySource, Config, Diagnostic, Mode, SecretKind, Severity, DEFAULT_API_BASE_URL,
    DEFAULT_NTP_SERVER,
};

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
