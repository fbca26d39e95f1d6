//! The demo's configuration: the admin's plist (from `--config`) pointed at the simulated
//! tenant, written where the real one lives, and read back through `config` (never parsed a
//! second time by hand: the validator alone decides what `Identity` means).

use std::path::Path;

use secrecy::ExposeSecret;

use super::scenario::{err, Scenario, ScenarioError, DEMO_AGENT_PACKAGE, SETUP_ACCOUNT};
use crate::config::{self, Identifier, SecretKind};
use crate::paths::{mac, Root};
use crate::sim::Tenant;

/// The configuration written on the simulated Mac, read as `prestage run` reads it (the one
/// place the demo names the UI's string ids for validation).
pub(super) fn load(root: &Root) -> Result<config::Loaded, config::ConfigError> {
    let sources = config::Sources::single(root.resolve(mac::LOCAL_CONFIG));
    config::load(
        &sources,
        config::Mode::Run,
        &crate::ui::strings::is_known_id,
    )
}

/// `Identity.Identifier` and `Identity.Secret` of the simulated Mac's configuration, as
/// `config` validates them. A configuration that does not validate stops the engine before
/// anyone is asked who they are, so any employee does then: the defaults the demo fills in.
pub(super) fn configured_identity(root: &Root) -> (Identifier, SecretKind) {
    match load(root) {
        Ok(loaded) => (
            loaded.config.identity.identifier,
            loaded.config.identity.secret,
        ),
        Err(_) => (Identifier::CompanyEmail, SecretKind::EmployeeId),
    }
}

/// The kickstart hosts named in a tenant connect key's payload (JumpCloud's US hosts when it has
/// none or does not decode).
fn tenant_key_hosts(key: &str) -> (String, String) {
    let us = crate::host::agent::kickstart_urls(
        &url::Url::parse(crate::config::DEFAULT_API_BASE_URL).expect("the default URL parses"),
    );
    let Ok(crate::config::ConnectKey::Tenant { bootstrap, .. }) =
        crate::config::ConnectKey::parse(key)
    else {
        return us;
    };
    let payload: serde_json::Value =
        serde_json::from_str(bootstrap.expose_secret()).unwrap_or_default();
    let host = |name: &str, default: String| {
        payload
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map_or(default, str::to_owned)
    };
    (
        host("publicKickstartUrl", us.0.clone()),
        host("privateKickstartUrl", us.1.clone()),
    )
}

/// `config` with `Identity.Preset` set to `value` and no secret asked (the MDM authenticated
/// the employee).
pub(super) fn with_preset(mut config: plist::Dictionary, value: &str) -> plist::Dictionary {
    let mut identity = config
        .get("Identity")
        .and_then(plist::Value::as_dictionary)
        .cloned()
        .unwrap_or_default();
    if !identity.contains_key("Identifier") {
        identity.insert("Identifier".into(), "CompanyEmail".into());
    }
    identity.insert("Secret".into(), "None".into());
    identity.insert("Preset".into(), value.to_owned().into());
    config.insert("Identity".into(), identity.into());
    config
}

/// Points a configuration at the simulated tenant: replaces every tenant-specific key and
/// fills in what a rehearsal needs, keeping the admin's texts and identity settings.
pub(super) fn fill_config(
    config: &mut plist::Dictionary,
    tenant: &Tenant,
    group: &str,
    post_group: &str,
) {
    for key in [
        "APIKey",
        "APIKeyKeychainService",
        "EncryptedAPIKey",
        "DecryptUser",
        "OrgID",
    ] {
        config.remove(key);
    }
    // A tenant connect key (jcc_) is rehearsed as one: the simulated tenant issues its own,
    // with the kickstart hosts of the admin's payload, and its agent then registers only when
    // agentBootstrap.json is exactly that payload.
    let connect_key = match config.get("ConnectKey").and_then(plist::Value::as_string) {
        Some(key) if key.starts_with(crate::config::connect_key::TENANT_KEY_PREFIX) => {
            let (public, private) = tenant_key_hosts(key);
            tenant.tenant_connect_key(&public, &private)
        }
        _ => tenant.connect_key(),
    };
    config.insert("ConnectKey".into(), connect_key.into());
    config.insert(
        "APIKey".into(),
        tenant.api_key().expose_secret().to_owned().into(),
    );
    config.insert(
        "APIBaseURL".into(),
        tenant
            .url()
            .as_str()
            .trim_end_matches('/')
            .to_owned()
            .into(),
    );
    config.insert("EnrollmentGroupID".into(), group.to_owned().into());
    config.insert("PostEnrollmentGroupID".into(), post_group.to_owned().into());
    config.insert("EnrollmentUser".into(), SETUP_ACCOUNT.into());
    if !config.contains_key("Identity") {
        let mut identity = plist::Dictionary::new();
        identity.insert("Identifier".into(), "CompanyEmail".into());
        identity.insert("Secret".into(), "EmployeeID".into());
        config.insert("Identity".into(), identity.into());
    }
    let mut agent = config
        .get("Agent")
        .and_then(plist::Value::as_dictionary)
        .cloned()
        .unwrap_or_default();
    agent.remove("PackageURL");
    agent.insert("PackagePath".into(), DEMO_AGENT_PACKAGE.into());
    for key in ["InstallTimeoutSeconds", "TakeoverTimeoutSeconds"] {
        if !agent.contains_key(key) {
            agent.insert(key.into(), 60.into());
        }
    }
    config.insert("Agent".into(), agent.into());
    if !config.contains_key("UI") {
        let mut ui = plist::Dictionary::new();
        ui.insert("WindowTitle".into(), "Welcome to Example Org".into());
        ui.insert("WelcomeTitle".into(), "Let's set up your Mac".into());
        ui.insert(
            "WelcomeText".into(),
            "This takes a few minutes. Please keep your Mac connected to power and Wi-Fi.".into(),
        );
        config.insert("UI".into(), ui.into());
    }
}

/// Writes a configuration plist (XML, 0600).
pub fn write_plist(path: &Path, config: &plist::Dictionary) -> Result<(), ScenarioError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    plist::Value::Dictionary(config.clone())
        .to_file_xml(path)
        .map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)
}

/// The demo's webhook receiver: the admin's `Webhooks` (from `--config`) keep their kinds and
/// events but post to a local receiver instead of their real URLs; without any, one receiver
/// of each kind shows what prestage would send.
pub(super) async fn demo_webhooks(
    scenario: &Scenario,
) -> Result<crate::sim::WebhookReceiver, ScenarioError> {
    let receiver = crate::sim::WebhookReceiver::start(false)
        .await
        .map_err(err)?;
    let path = scenario.root.resolve(mac::LOCAL_CONFIG);
    let mut config: plist::Dictionary = plist::from_file(&path).map_err(err)?;
    let mut hooks: Vec<plist::Dictionary> = config
        .get("Webhooks")
        .and_then(plist::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_dictionary().cloned())
                .collect()
        })
        .unwrap_or_default();
    if hooks.is_empty() {
        for kind in ["Generic", "Slack", "Teams"] {
            let mut d = plist::Dictionary::new();
            d.insert("Kind".into(), kind.into());
            hooks.push(d);
        }
    }
    for (i, hook) in hooks.iter_mut().enumerate() {
        let kind = hook
            .get("Kind")
            .and_then(plist::Value::as_string)
            .unwrap_or("Generic")
            .to_ascii_lowercase();
        hook.insert(
            "URL".into(),
            receiver
                .url(&format!("webhooks/{i}-{kind}"))
                .to_string()
                .into(),
        );
    }
    config.insert(
        "Webhooks".into(),
        plist::Value::Array(hooks.into_iter().map(plist::Value::Dictionary).collect()),
    );
    write_plist(&path, &config)?;
    Ok(receiver)
}
