//! Typed requests and responses of the JumpCloud calls prestage makes (v1.json / v2.json).

use serde::{Deserialize, Deserializer, Serialize};

use crate::policy::PasswordPolicy;

/// JumpCloud returns `null` for unset strings and lists in some records; read those as empty.
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `state` of a system user (v1 `systemuserreturn.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum UserState {
    Staged,
    Activated,
    Suspended,
}

/// A custom attribute of a user (`attributes: [{name, value}]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAttribute {
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub value: String,
}

/// The fields of a system user prestage reads (v1 `systemuserreturn`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryUser {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub username: String,
    /// Not in the published spec; JumpCloud's ADMU requests it ("Local User Account").
    #[serde(
        rename = "systemUsername",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub system_username: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub email: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub lastname: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub description: String,
    #[serde(
        rename = "employeeIdentifier",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub employee_identifier: Option<String>,
    /// false = pending: the user has no password yet.
    #[serde(default, deserialize_with = "null_as_default")]
    pub activated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<UserState>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub attributes: Vec<UserAttribute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_date: Option<String>,
}

impl DirectoryUser {
    /// The local account name: `systemUsername` when set, else `username` (SPEC §5).
    pub fn local_name(&self) -> &str {
        match self.system_username.as_deref() {
            Some(name) if !name.trim().is_empty() => name,
            _ => &self.username,
        }
    }

    /// The value of a field of SPEC §3's identifiers and secrets, by JumpCloud field name.
    pub fn field(&self, name: &str) -> Option<&str> {
        match name {
            "email" => Some(&self.email),
            "description" => Some(&self.description),
            "lastname" => Some(&self.lastname),
            "username" => Some(&self.username),
            "employeeIdentifier" => self.employee_identifier.as_deref(),
            _ => None,
        }
    }

    /// A custom attribute's value.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_str())
    }
}

/// What `GET /api/systems/{id}` tells us.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SystemFacts {
    pub id: String,
    pub organization: String,
    pub hostname: String,
    pub description: String,
}

/// What `GET /api/organizations/{id}` tells us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgFacts {
    pub id: String,
    pub name: String,
    pub password_policy: PasswordPolicy,
}

/// One user bound to this system (`GET /api/v2/systems/{id}/associations?targets=user`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub user_id: String,
    pub sudo: bool,
}

/// What a user looks like after a password set, to tell whether an uncertain set took effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordProof {
    pub activated: bool,
    pub password_date: Option<String>,
}
