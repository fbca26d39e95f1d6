//! `prestage config schema`: a JSON Schema of the configuration, in the shape Jamf Pro accepts as
//! an external schema for "Application & Custom Settings" (a header with `title`, `description`
//! and `properties`; each property with `title`, `description`, `property_order`, `type`,
//! `default`, `enum` and `options.enum_titles` — Jamf's "JSON Schema Manifest Structure",
//! docs.jamf.com/technical-papers/jamf-pro/json-schema). The preference domain is
//! `io.prestage.enroll`.
//!
//! A test compares [`accepted_keys`] with the keys the validator actually reads, so the schema
//! cannot drift from the parser.

use serde_json::{json, Map, Value};

use super::{DEFAULT_AGENT_PACKAGE_URL, DEFAULT_API_BASE_URL, DEFAULT_NTP_SERVER};
use crate::paths::mac;

const ID_PATTERN: &str = "^[0-9a-f]{24}$";

fn prop(order: u32, ty: &str, title: &str, description: &str, extra: &Value) -> Value {
    let mut m = Map::new();
    m.insert("title".into(), title.into());
    m.insert("description".into(), description.into());
    m.insert("property_order".into(), order.into());
    m.insert("type".into(), ty.into());
    if let Value::Object(extra) = extra {
        m.extend(extra.clone());
    }
    Value::Object(m)
}

fn object(order: u32, title: &str, description: &str, properties: &Value) -> Value {
    prop(
        order,
        "object",
        title,
        description,
        &json!({ "properties": properties, "additionalProperties": false }),
    )
}

fn seconds(order: u32, title: &str, description: &str, min: u32, default: u32) -> Value {
    prop(
        order,
        "integer",
        title,
        description,
        &json!({ "minimum": min, "maximum": 86_400, "default": default }),
    )
}

fn webhook() -> Value {
    object(
        1,
        "Webhook",
        "One receiver.",
        &json!({
            "URL": prop(1, "string", "URL", "The receiver's webhook URL (https; http only for localhost). A secret: Slack and Teams URLs are bearer tokens.", &json!({ "format": "uri" })),
            "Kind": prop(2, "string", "Kind", "The message format: prestage's JSON (Generic), a Slack incoming webhook, or a Microsoft Teams Workflows webhook (Adaptive Card).", &json!({
                "default": "Generic",
                "enum": ["Generic", "Slack", "Teams"],
            })),
            "Events": prop(3, "array", "Events", "Which events to send (default all).", &json!({
                "items": { "type": "string", "enum": ["Started", "Finished", "Failed", "AccountKept"] },
            })),
        }),
    )
}

fn identity() -> Value {
    object(
        100,
        "Identity",
        "How the employee proves who they are.",
        &json!({
            "Identifier": prop(1, "string", "Identifier", "The JumpCloud user field the employee types: company email (email), personal email (description, as the bash script), last name (lastname) or username.", &json!({
                "default": "CompanyEmail",
                "enum": ["CompanyEmail", "PersonalEmail", "LastName", "Username"],
                "options": { "enum_titles": ["Company email", "Personal email (description field)", "Last name", "Username"] }
            })),
            "Secret": prop(2, "string", "Secret", "A second value the employee types: None, EmployeeID (employeeIdentifier) or Attribute:<name> (a custom attribute of the user, e.g. a one-time enrollment code).", &json!({
                "default": "None",
                "pattern": "^(None|EmployeeID|Attribute: ?[^\\s]+)$"
            })),
            "MaxAttempts": prop(3, "integer", "Maximum attempts", "Wrong answers allowed before a cool-down.", &json!({ "minimum": 1, "maximum": 100, "default": 5 })),
            "CooldownSeconds": seconds(4, "Cool-down (seconds)", "Wait after MaxAttempts wrong answers; kept across restarts.", 0, 300),
            "Preset": prop(5, "string", "Preset identifier", "The employee's identifier as the MDM already knows it from an authenticated enrollment (SSO during Setup Assistant), e.g. $EMAIL in Jamf Pro. When the MDM substituted it, no identity question is asked and no secret checked: prestage binds the one JumpCloud user whose Identifier field has this value. Left unsubstituted ($EMAIL itself), the employee is asked as without it. With no EnrollmentUser, the account Setup Assistant created is the employee's own and the agent takes it over.", &json!({})),
        }),
    )
}

fn password() -> Value {
    object(
        110,
        "Password",
        "Rules for the password the employee chooses.",
        &json!({
            "RequireForActiveUsers": prop(1, "boolean", "Require a new password from active users", "Pending users always choose one; with this, active users do too.", &json!({ "default": false })),
            "Policy": {
                "title": "Password policy",
                "description": "Tenant: read the organisation's password policy from JumpCloud. Or a dictionary of local rules.",
                "property_order": 2,
                "default": "Tenant",
                "anyOf": [
                    { "title": "Tenant", "type": "string", "enum": ["Tenant"] },
                    { "title": "Local rules", "type": "object", "additionalProperties": false, "properties": {
                        "MinLength": prop(1, "integer", "Minimum length", "Characters, counted as the employee sees them.", &json!({ "minimum": 1, "maximum": 256, "default": 8 })),
                        "RequireUppercase": prop(2, "boolean", "Require an upper-case letter", "", &json!({ "default": false })),
                        "RequireLowercase": prop(3, "boolean", "Require a lower-case letter", "", &json!({ "default": false })),
                        "RequireNumber": prop(4, "boolean", "Require a digit", "", &json!({ "default": false })),
                        "RequireSymbol": prop(5, "boolean", "Require a symbol", "", &json!({ "default": false })),
                    }}
                ]
            },
        }),
    )
}

fn ui() -> Value {
    object(
        120,
        "UI",
        "Texts, branding and language of the employee's screens (swiftDialog).",
        &json!({
            "WindowTitle": prop(1, "string", "Window title", "Title of the dialog windows.", &json!({})),
            "WelcomeTitle": prop(2, "string", "Welcome title", "Heading of the full-screen welcome window.", &json!({})),
            "WelcomeText": prop(3, "string", "Welcome text", "Body of the welcome window (markdown).", &json!({})),
            "Icon": prop(4, "string", "Icon", "Path on the Mac, URL or SF Symbol (SF=name) of the icon.", &json!({})),
            "BannerImage": prop(5, "string", "Banner image", "Path on the Mac or URL of a banner image.", &json!({})),
            "FullScreen": prop(6, "boolean", "Full screen", "Show the welcome and progress window full screen.", &json!({ "default": true })),
            "Language": prop(7, "string", "Language", "Language code of the texts (en, de, fr, en-GB, ...); default: the console user's language.", &json!({ "pattern": "^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$" })),
            "Strings": prop(8, "object", "Text overrides", "Replace any built-in text, by string id.", &json!({ "additionalProperties": { "type": "string" } })),
            "DialogPath": prop(9, "string", "swiftDialog path", "Where swiftDialog's dialog launcher is.", &json!({ "default": mac::DIALOG, "pattern": "^/" })),
            "DialogPackagePath": prop(10, "string", "swiftDialog package", "A swiftDialog package on the Mac, installed (after a signature check) when dialog is missing.", &json!({ "pattern": "^/" })),
            "HelpMessage": prop(11, "string", "Help message", "Markdown shown behind swiftDialog's help button on every window; %serial% and %reference% (the current reference code) are filled in.", &json!({})),
        }),
    )
}

fn agent() -> Value {
    object(
        130,
        "Agent",
        "Where the JumpCloud agent comes from and how long its steps may take.",
        &json!({
            "PackageURL": prop(1, "string", "Agent package URL", "https URL of the JumpCloud agent package.", &json!({ "default": DEFAULT_AGENT_PACKAGE_URL, "format": "uri" })),
            "PackagePath": prop(2, "string", "Agent package path", "A package already on the Mac; wins over the URL.", &json!({ "pattern": "^/" })),
            "InstallTimeoutSeconds": seconds(3, "Install time limit (seconds)", "How long the agent may take to install and register.", 1, 600),
            "TakeoverTimeoutSeconds": seconds(4, "Account takeover time limit (seconds)", "How long the agent may take to take over the employee's account.", 1, 600),
        }),
    )
}

/// The JSON Schema of the configuration.
pub fn json_schema() -> Value {
    let id = |order: u32, title: &str, description: &str| {
        prop(
            order,
            "string",
            title,
            description,
            &json!({ "pattern": ID_PATTERN }),
        )
    };
    let properties = json!({
        "ConnectKey": prop(1, "string", "Connect key", "JumpCloud agent connect key: 40 hex characters, or a tenant connect key jcc_<base64> (its payload is written as agentBootstrap.json). Required.", &json!({ "pattern": "^([0-9A-Fa-f]{40}|jcc_[0-9A-Za-z+/]{4,}={0,3})$" })),
        "APIKeyKeychainService": prop(2, "string", "API key keychain service", "Service name of a generic password in the System keychain holding the admin API key (recommended: written there by a JumpCloud command after the Mac registers; deleted at the end). Set exactly one API key source.", &json!({})),
        "APIKey": prop(3, "string", "API key (plain text)", "Admin API key. Managed preferences are readable by every user of the Mac: prefer APIKeyKeychainService.", &json!({})),
        "EncryptedAPIKey": prop(4, "string", "Encrypted API key (legacy)", "The bash script's ENCRYPTED_KEY; needs DecryptUser.", &json!({})),
        "DecryptUser": prop(5, "string", "Decrypt user (legacy)", "The bash script's DECRYPT_USER: the account whose UID, with the org ID, decrypts EncryptedAPIKey.", &json!({})),
        "APIBaseURL": prop(6, "string", "API base URL", "JumpCloud console URL (https://console.eu.jumpcloud.com for EU tenants).", &json!({ "default": DEFAULT_API_BASE_URL, "format": "uri" })),
        "OrgID": id(7, "Organization ID", "Sent as x-org-id for multi-tenant admins; default: read from the agent."),
        "EnrollmentGroupID": id(8, "Enrollment system group ID", "System group the Mac joins at the start."),
        "PostEnrollmentGroupID": id(9, "Post-enrollment system group ID", "System group the Mac is moved to at the end."),
        "EnrollmentUser": prop(10, "string", "Enrollment user", "The setup account the MDM creates (e.g. welcome). Required while DeleteEnrollmentUsers is true.", &json!({})),
        "DeleteEnrollmentUsers": prop(11, "boolean", "Delete enrollment users", "Delete EnrollmentUser (and DecryptUser) at the end.", &json!({ "default": true })),
        "Admin": prop(12, "boolean", "Bind as admin", "Give the employee sudo (admin) rights on this Mac.", &json!({ "default": false })),
        "NTPServer": prop(13, "string", "NTP server", "Time server used when JumpCloud rejects our clock.", &json!({ "default": DEFAULT_NTP_SERVER })),
        "EnrollmentUserPassword": prop(30, "string", "Enrollment user password", "The setup account's password, a secret: in the package's local configuration only (root:wheel 0600), never in a profile. Handed to the JumpCloud agent's installer so it creates its Secure Token service account, as JumpCloud's own prestage package does; deleted with the local configuration at the end.", &json!({})),
        "SecureTokenTimeoutSeconds": seconds(31, "Secure Token wait (seconds)", "How long the employee may be without a Secure Token after their first login before the setup accounts are kept.", 1, 300),
        "ReportToDirectory": prop(14, "boolean", "Report to JumpCloud", "Write a one-line enrollment status into the system's description in JumpCloud.", &json!({ "default": true })),
        "ComputerName": prop(15, "string", "Computer name", "A name template applied once the employee is known: %serial%, %serial:N% (first N characters), %serial:-N% (last N), %user% (the local account name). Sets ComputerName, LocalHostName (letters, digits and hyphens, at most 63) and HostName, and the system's displayName in JumpCloud. `prestage config check` shows what a sample serial gives.", &json!({ "examples": ["MAC-%serial:-6%"] })),
        "Webhooks": prop(16, "array", "Webhooks", "Receivers told when an enrollment starts, finishes, fails or keeps the setup account. Each URL is a secret (never logged). Each event is delivered once per Mac, retried in the background.", &json!({ "items": webhook() })),
        "Preflight": object(17, "Preflight", "Checks before the long part of the enrollment.", &json!({
            "MinimumBatteryPercent": prop(1, "integer", "Minimum battery (%)", "On battery below this, the welcome window asks for the charger and waits; 0 turns the check off.", &json!({ "minimum": 0, "maximum": 100, "default": 20 })),
        })),
        "Identity": identity(),
        "Password": password(),
        "UI": ui(),
        "Agent": agent(),
    });
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "prestage (io.prestage.enroll)",
        "description": "Zero-touch JumpCloud onboarding of new Macs. Keys are PascalCase; see docs/configuration.md.",
        "type": "object",
        "additionalProperties": false,
        "required": ["ConnectKey"],
        "properties": properties,
    })
}

/// Every key path the schema describes (`Identity.Secret`, `Password.Policy.MinLength`, …).
pub fn accepted_keys() -> Vec<String> {
    fn walk(schema: &Value, prefix: &str, out: &mut Vec<String>) {
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (key, sub) in props {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                out.push(path.clone());
                walk(sub, &path, out);
            }
        }
        if let Some(items) = schema.get("items") {
            walk(items, prefix, out);
        }
        for branch in schema
            .get("anyOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            walk(branch, prefix, out);
        }
    }
    let mut out = Vec::new();
    walk(&json_schema(), "", &mut out);
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_and_parser_accept_the_same_keys() {
        let schema: std::collections::BTreeSet<String> = accepted_keys().into_iter().collect();
        let parser = super::super::validate::parser_keys();
        let only_schema: Vec<_> = schema.difference(&parser).collect();
        let only_parser: Vec<_> = parser.difference(&schema).collect();
        assert!(
            only_schema.is_empty(),
            "in the schema only: {only_schema:?}"
        );
        assert!(
            only_parser.is_empty(),
            "read by the parser only: {only_parser:?}"
        );
        assert!(schema.contains("Password.Policy.MinLength"));
        assert!(schema.len() > 40, "{}", schema.len());
    }

    #[test]
    fn every_property_has_title_description_and_type() {
        fn check(schema: &Value, path: &str) {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, v) in props {
                    let p = format!("{path}.{k}");
                    assert!(v.get("title").is_some(), "{p} has no title");
                    assert!(v.get("description").is_some(), "{p} has no description");
                    assert!(
                        v.get("type").is_some() || v.get("anyOf").is_some(),
                        "{p} has no type"
                    );
                    check(v, &p);
                }
            }
        }
        check(&json_schema(), "");
    }
}
