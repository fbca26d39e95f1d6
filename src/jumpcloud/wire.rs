//! Request bodies and raw response shapes of the JumpCloud calls, as the published specs
//! (v1.json / v2.json in `tests/fixtures/openapi/`) name them. Every request body is built from
//! these types with serde (SPEC §5), never by string concatenation.

use serde::{Deserialize, Serialize};

use super::types::null_as_default;
use crate::policy::PasswordPolicy;

/// v2 `GraphOperation-SystemGroup-Member`: `{"op","type":"system","id"}`.
#[derive(Debug, Serialize)]
pub(crate) struct GroupMemberOp<'a> {
    pub op: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: &'a str,
}

/// v2 `GraphOperation-System` with `GraphAttribute-Sudo`.
#[derive(Debug, Serialize)]
pub(crate) struct SystemAssociationOp<'a> {
    pub op: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: &'a str,
    pub attributes: SudoAttributes,
}

#[derive(Debug, Serialize, Deserialize, Default, Clone, Copy)]
pub(crate) struct SudoAttributes {
    #[serde(default)]
    pub sudo: Sudo,
}

#[derive(Debug, Serialize, Deserialize, Default, Clone, Copy)]
pub(crate) struct Sudo {
    #[serde(default, deserialize_with = "null_as_default")]
    pub enabled: bool,
    #[serde(
        rename = "withoutPassword",
        default,
        deserialize_with = "null_as_default"
    )]
    pub without_password: bool,
}

/// v1 `search` body. `filter` is the list form of the spec's own "exact search" sample
/// (`"filter" : [{"department" : "IT"}]`).
#[derive(Debug, Serialize)]
pub(crate) struct SearchBody<'a> {
    pub filter: Vec<std::collections::BTreeMap<&'a str, FilterValue>>,
    /// Space-separated field names (v1 `search.fields` is a string).
    pub fields: &'a str,
    pub limit: u32,
}

/// One query expression's value: a plain (exact, case-sensitive) value or a `$regex`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum FilterValue {
    Plain(String),
    Regex {
        #[serde(rename = "$regex")]
        regex: String,
    },
}

/// v1 `systemUsersSearchlist`.
#[derive(Debug, Deserialize)]
pub(crate) struct SearchResults {
    #[serde(default, deserialize_with = "null_as_default")]
    pub results: Vec<super::types::DirectoryUser>,
}

/// v1 `systemuserput`, only the password.
#[derive(Serialize)]
pub(crate) struct PasswordPut<'a> {
    pub password: &'a str,
}

/// v1 `POST /systemusers/{id}/state/activate` body. The operation's text: an empty body "will
/// send an email with default behavior", and "Users with a password will be sent a Welcome
/// email"; "Sending `email=false` will suppress sending the email", `{ "email": false }`.
/// prestage sets the password first, so it always sends `false` (the schema types `email` as a
/// string, the text documents the boolean; `contract` whitelists exactly that).
#[derive(Debug, Serialize)]
pub(crate) struct ActivateBody {
    pub email: bool,
}

/// v1 `systemput` plus `description` (a `JcSystem` field; `systemput` does not list it but does
/// not forbid extra properties either).
#[derive(Debug, Serialize)]
pub(crate) struct SystemDescriptionPut<'a> {
    pub description: &'a str,
}

/// v1 `systemput`: `displayName` is one of its properties.
#[derive(Debug, Serialize)]
pub(crate) struct SystemDisplayNamePut<'a> {
    #[serde(rename = "displayName")]
    pub display_name: &'a str,
}

/// v1 `JcSystem`, the fields we read.
#[derive(Debug, Deserialize)]
pub(crate) struct JcSystem {
    #[serde(rename = "_id", default, deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub organization: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub hostname: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub description: String,
}

/// v1 `organization`, the fields we read.
#[derive(Debug, Deserialize)]
pub(crate) struct Organization {
    #[serde(rename = "_id", default, deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(rename = "displayName", default, deserialize_with = "null_as_default")]
    pub display_name: String,
    #[serde(default)]
    pub settings: Option<OrganizationSettings>,
}

/// v1 `organizationsettings`, the fields we read.
#[derive(Debug, Deserialize, Default)]
pub(crate) struct OrganizationSettings {
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// `custom` | `pci3` | `windows`.
    #[serde(rename = "passwordCompliance", default)]
    pub password_compliance: Option<String>,
    #[serde(rename = "passwordPolicy", default)]
    pub password_policy: Option<TenantPasswordPolicy>,
}

/// v1 `organizationsettings.passwordPolicy`, the fields prestage shows and checks.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TenantPasswordPolicy {
    #[serde(default)]
    pub enable_min_length: Option<bool>,
    #[serde(default)]
    pub min_length: Option<u32>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub needs_lowercase: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub needs_uppercase: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub needs_numeric: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub needs_symbolic: bool,
    /// `false` forbids the username inside the password; absent = allowed.
    #[serde(default)]
    pub allow_username_substring: Option<bool>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub disallow_sequential_or_repetitive_chars: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub disallow_commonly_used_passwords: bool,
    #[serde(default)]
    pub enable_max_history: Option<bool>,
    /// 1-24 (v1.json).
    #[serde(default)]
    pub max_history: Option<u32>,
    #[serde(default)]
    pub enable_min_change_period_in_days: Option<bool>,
    #[serde(default)]
    pub min_change_period_in_days: Option<u32>,
}

/// A numeric setting with its `enable…` switch: the value unless switched off explicitly
/// (the spec lists both and says nothing of one without the other), 0 when absent.
fn enabled(switch: Option<bool>, value: Option<u32>) -> u32 {
    match (switch, value) {
        (Some(false), _) | (_, None) => 0,
        (_, Some(n)) => n,
    }
}

impl OrganizationSettings {
    /// The tenant's rules. JumpCloud applies the `passwordPolicy` fields when
    /// `passwordCompliance` is `custom` (REFERENCE.md); the `pci3` and `windows` presets are
    /// approximated by their length and class rules (the tenant still has the last word when
    /// the password is set).
    pub fn local_policy(&self) -> PasswordPolicy {
        let base = PasswordPolicy::default();
        match self.password_compliance.as_deref() {
            Some("pci3") => PasswordPolicy {
                min_length: 7,
                require_number: true,
                ..base
            },
            Some("windows") => PasswordPolicy {
                min_length: 8,
                ..base
            },
            _ => {
                let Some(p) = &self.password_policy else {
                    return base;
                };
                let min_length = match enabled(p.enable_min_length, p.min_length) {
                    0 => base.min_length,
                    n => n,
                };
                PasswordPolicy {
                    min_length,
                    require_uppercase: p.needs_uppercase,
                    require_lowercase: p.needs_lowercase,
                    require_number: p.needs_numeric,
                    require_symbol: p.needs_symbolic,
                    forbid_username: p.allow_username_substring == Some(false),
                    forbid_sequences: p.disallow_sequential_or_repetitive_chars,
                    forbid_common: p.disallow_commonly_used_passwords,
                    history: enabled(p.enable_max_history, p.max_history),
                    min_change_days: enabled(
                        p.enable_min_change_period_in_days,
                        p.min_change_period_in_days,
                    ),
                }
            }
        }
    }
}

/// v1 `organizationslist`.
#[derive(Debug, Deserialize)]
pub(crate) struct OrganizationList {
    #[serde(default, deserialize_with = "null_as_default")]
    pub results: Vec<OrganizationSummary>,
    #[serde(rename = "totalCount", default)]
    pub total_count: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct OrganizationSummary {
    #[serde(rename = "_id", default, deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(rename = "displayName", default, deserialize_with = "null_as_default")]
    pub display_name: String,
}

/// v2 `GraphObject` (and the head of `GraphObjectWithPaths`).
#[derive(Debug, Deserialize)]
pub(crate) struct GraphObject {
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(rename = "type", default, deserialize_with = "null_as_default")]
    pub kind: String,
}

/// v2 `GraphConnection`: `{to, attributes}`.
#[derive(Debug, Deserialize)]
pub(crate) struct GraphConnection {
    pub to: GraphObject,
    #[serde(default)]
    pub attributes: Option<SudoAttributesIn>,
}

/// `GraphAttributes` as read: `sudo` may be missing or null.
#[derive(Debug, Deserialize, Default)]
pub(crate) struct SudoAttributesIn {
    #[serde(default)]
    pub sudo: Option<Sudo>,
}

/// v2 `SystemGroup`, the fields we read.
#[derive(Debug, Deserialize)]
pub(crate) struct SystemGroup {
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
}

/// An error body: v1 `{"message": ...}`, v2 `{"message": ..., "error": ...}`.
#[derive(Debug, Deserialize, Default)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: &str) -> OrganizationSettings {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn custom_policy_maps_every_rule() {
        let s = settings(
            r#"{"passwordCompliance":"custom","passwordPolicy":{"enableMinLength":true,"minLength":14,
            "needsLowercase":true,"needsUppercase":true,"needsNumeric":false,"needsSymbolic":true}}"#,
        );
        assert_eq!(
            s.local_policy(),
            PasswordPolicy {
                min_length: 14,
                require_uppercase: true,
                require_lowercase: true,
                require_number: false,
                require_symbol: true,
                ..PasswordPolicy::default()
            }
        );
    }

    #[test]
    fn the_rules_beyond_the_five_are_read_with_their_switches() {
        let s = settings(
            r#"{"passwordCompliance":"custom","passwordPolicy":{"minLength":12,
            "allowUsernameSubstring":false,"disallowSequentialOrRepetitiveChars":true,
            "disallowCommonlyUsedPasswords":true,"enableMaxHistory":true,"maxHistory":5,
            "enableMinChangePeriodInDays":true,"minChangePeriodInDays":1}}"#,
        );
        let p = s.local_policy();
        assert!(p.forbid_username && p.forbid_sequences && p.forbid_common);
        assert_eq!((p.history, p.min_change_days), (5, 1));
        // Switched off, or absent: no rule.
        let s = settings(
            r#"{"passwordPolicy":{"allowUsernameSubstring":true,"enableMaxHistory":false,
            "maxHistory":5,"enableMinChangePeriodInDays":false,"minChangePeriodInDays":3,
            "disallowCommonlyUsedPasswords":null}}"#,
        );
        assert_eq!(s.local_policy(), PasswordPolicy::default());
    }

    #[test]
    fn disabled_min_length_and_nulls_fall_back_to_defaults() {
        let s = settings(
            r#"{"passwordPolicy":{"enableMinLength":false,"minLength":30,"needsNumeric":null}}"#,
        );
        assert_eq!(s.local_policy(), PasswordPolicy::default());
        assert_eq!(settings("{}").local_policy(), PasswordPolicy::default());
    }

    #[test]
    fn regex_filter_serializes_as_mongo_operator() {
        let mut m = std::collections::BTreeMap::new();
        m.insert(
            "email",
            FilterValue::Regex {
                regex: "(?i)^a$".into(),
            },
        );
        let body = SearchBody {
            filter: vec![m],
            fields: "_id email",
            limit: 2,
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"filter":[{"email":{"$regex":"(?i)^a$"}}],"fields":"_id email","limit":2}"#
        );
    }
}
