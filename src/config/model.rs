//! The validated configuration. Nothing outside `config` sees an unvalidated value: the raw
//! plist is parsed into `raw::RawConfig` and checked into this [`Config`].
//!
//! Secrets (API key, connect key, legacy encrypted key) are `secrecy` types; `Debug` of a
//! `Config` never shows them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::policy::PasswordPolicy;

/// JumpCloud's public agent package (REFERENCE: the bash script's download URL).
pub const DEFAULT_AGENT_PACKAGE_URL: &str =
    "https://cdn02.jumpcloud.com/production/jumpcloud-agent.pkg";
pub const DEFAULT_API_BASE_URL: &str = "https://console.jumpcloud.com";
pub const DEFAULT_NTP_SERVER: &str = "time.apple.com";

/// A JumpCloud object id: 24 lower-case hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(String);

impl ObjectId {
    /// Checks the form; `None` when it is not 24 lower-case hex characters.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 24
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where the admin API key comes from (exactly one source, SPEC §3).
#[derive(Debug, Clone)]
pub enum ApiKeySource {
    /// `APIKey` in plain text.
    Plain(SecretString),
    /// `APIKeyKeychainService`: a generic password in the System keychain.
    Keychain { service: String },
    /// `EncryptedAPIKey` + `DecryptUser`: the bash script's format, decrypted at run time with
    /// the UID of `decrypt_user` and the org ID.
    Legacy {
        encrypted: SecretString,
        decrypt_user: String,
    },
}

/// Which directory field the employee identifies with (`Identity.Identifier`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identifier {
    /// JumpCloud `email`.
    CompanyEmail,
    /// JumpCloud `description` (as the bash script does).
    PersonalEmail,
    /// JumpCloud `lastname`.
    LastName,
    /// JumpCloud `username`.
    Username,
}

impl Identifier {
    /// The JumpCloud user field searched for this identifier.
    pub fn field(self) -> &'static str {
        match self {
            Identifier::CompanyEmail => "email",
            Identifier::PersonalEmail => "description",
            Identifier::LastName => "lastname",
            Identifier::Username => "username",
        }
    }
}

/// The second factor the employee types (`Identity.Secret`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretKind {
    None,
    /// JumpCloud `employeeIdentifier`.
    EmployeeId,
    /// A custom attribute of the user, by name.
    Attribute(String),
}

#[derive(Debug, Clone)]
pub struct IdentityConfig {
    pub identifier: Identifier,
    pub secret: SecretKind,
    pub max_attempts: u32,
    pub cooldown: Duration,
    /// `Identity.Preset`, trimmed, when it holds an identifier: no question is asked and no
    /// secret checked. `None` when unset or still an unsubstituted MDM payload variable.
    pub preset: Option<String>,
    /// `Identity.Preset` as written (a placeholder such as `$EMAIL` included), for messages.
    pub preset_raw: Option<String>,
}

/// Where the password rules come from (`Password.Policy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    Tenant,
    Local(PasswordPolicy),
}

#[derive(Debug, Clone)]
pub struct PasswordConfig {
    pub require_for_active_users: bool,
    pub policy: PolicySource,
}

#[derive(Debug, Clone)]
pub struct UiConfig {
    pub window_title: Option<String>,
    pub welcome_title: Option<String>,
    pub welcome_text: Option<String>,
    /// macOS paths (resolved under `--root` when used).
    pub icon: Option<PathBuf>,
    pub banner_image: Option<PathBuf>,
    pub full_screen: bool,
    /// A language code such as `de`; `None` means the console user's language.
    pub language: Option<String>,
    /// Overrides of built-in texts, by string id.
    pub strings: BTreeMap<String, String>,
    pub dialog_path: PathBuf,
    pub dialog_package_path: Option<PathBuf>,
    /// `UI.HelpMessage`: markdown behind swiftDialog's help button on every window, with
    /// `%serial%` and `%reference%` filled in when shown.
    pub help_message: Option<String>,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            window_title: None,
            welcome_title: None,
            welcome_text: None,
            icon: None,
            banner_image: None,
            full_screen: true,
            language: None,
            strings: BTreeMap::new(),
            dialog_path: PathBuf::from(crate::paths::mac::DIALOG),
            dialog_package_path: None,
            help_message: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub package_url: Url,
    pub package_path: Option<PathBuf>,
    pub install_timeout: Duration,
    pub takeover_timeout: Duration,
}

/// The validated configuration of one enrollment.
#[derive(Debug, Clone)]
pub struct Config {
    pub connect_key: crate::config::ConnectKey,
    pub api_key: ApiKeySource,
    pub api_base_url: Url,
    pub org_id: Option<ObjectId>,
    pub enrollment_group_id: Option<ObjectId>,
    pub post_enrollment_group_id: Option<ObjectId>,
    pub enrollment_user: Option<String>,
    /// `EnrollmentUserPassword`: handed to the agent's installer in
    /// `/var/run/JumpCloud-SecureToken-Creds.txt` (SPEC §4), nowhere else.
    pub enrollment_user_password: Option<SecretString>,
    /// `SecureTokenTimeoutSeconds`: how long the employee may be without a Secure Token after
    /// their first login before the setup accounts are kept.
    pub secure_token_timeout: Duration,
    pub delete_enrollment_users: bool,
    pub admin: bool,
    pub identity: IdentityConfig,
    pub password: PasswordConfig,
    pub ui: UiConfig,
    pub agent: AgentConfig,
    pub ntp_server: String,
    pub report_to_directory: bool,
    /// `ComputerName`: the name template applied once the employee is known.
    pub computer_name: Option<crate::config::naming::NameTemplate>,
    pub webhooks: Vec<WebhookConfig>,
    pub preflight: PreflightConfig,
}

/// What a webhook message is about (`Webhooks[].Events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WebhookEvent {
    /// The enrollment began (the welcome window is up).
    Started,
    /// The employee has their account and the setup account is gone (or kept, see below).
    Finished,
    /// A permanent failure stopped the enrollment (with the reference code and the step).
    Failed,
    /// The setup accounts were kept (the employee has no Secure Token yet, or a delete failed).
    AccountKept,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 4] = [
        WebhookEvent::Started,
        WebhookEvent::Finished,
        WebhookEvent::Failed,
        WebhookEvent::AccountKept,
    ];

    /// The name in the configuration and in the `event` field of a generic message.
    pub fn name(self) -> &'static str {
        match self {
            WebhookEvent::Started => "Started",
            WebhookEvent::Finished => "Finished",
            WebhookEvent::Failed => "Failed",
            WebhookEvent::AccountKept => "AccountKept",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == s)
    }
}

/// The message format a webhook receiver expects (`Webhooks[].Kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookKind {
    /// prestage's own JSON (SPEC §3).
    Generic,
    /// A Slack incoming webhook.
    Slack,
    /// A Microsoft Teams "Workflows" webhook (an Adaptive Card message).
    Teams,
}

/// One configured receiver. The URL is a secret (Slack and Teams URLs are bearer tokens): it is
/// only exposed on the line that posts to it; logs, state and status name the hook by
/// [`WebhookConfig::id`].
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: SecretString,
    pub kind: WebhookKind,
    pub events: Vec<WebhookEvent>,
    /// Position in `Webhooks` (for messages: `Webhooks[1]`).
    pub index: usize,
}

impl WebhookConfig {
    /// A stable name for this receiver that does not reveal its URL: the first 12 hex digits
    /// of the URL's SHA-256. A changed URL is a new receiver.
    pub fn id(&self) -> String {
        use secrecy::ExposeSecret as _;
        let d = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            self.url.expose_secret().as_bytes(),
        );
        d.as_ref().iter().take(6).fold(String::new(), |mut out, b| {
            use std::fmt::Write as _;
            let _ = write!(out, "{b:02x}");
            out
        })
    }
}

/// `Preflight`: checks before the long part of the enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreflightConfig {
    /// On battery below this, ask for the charger and wait; 0 turns the check off.
    pub minimum_battery_percent: u8,
}

impl Default for PreflightConfig {
    fn default() -> Self {
        Self {
            minimum_battery_percent: 20,
        }
    }
}
