//! The typed JumpCloud calls of SPEC §5 (the [`Directory`] implementation and the read-only
//! calls of `config check --online`), on top of the transport in [`super::transport`]: what
//! each call sends, and what its answers mean ("already done", not found, refused).

use std::collections::BTreeMap;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use tracing::{debug, info, warn};

use super::transport::{Answer, Auth, Call};
use super::types::{Binding, DirectoryUser, OrgFacts, SystemFacts};
use super::wire;
use super::{Directory, JcError};
use crate::config::{Identifier, ObjectId};

pub use super::options::{ClientOptions, ClockSync, Timeouts, CONNECT_TIMEOUT, REQUEST_TIMEOUT};
pub use super::retry::{parse_retry_after, RetryPolicy, MAX_RETRY_AFTER};
pub use super::transport::Client;

/// Users asked for in a search: more than one match is ambiguous anyway (SPEC §5).
const SEARCH_LIMIT: u32 = 2;
/// The user fields prestage reads. `systemUsername` is not in the spec but JumpCloud's ADMU
/// asks for it (REFERENCE.md).
const USER_FIELDS: &str = "_id username systemUsername email lastname description \
                           employeeIdentifier activated state attributes password_date";

impl Client {
    async fn group_op(&self, group: &ObjectId, op: &'static str) -> Result<(), JcError> {
        let name = if op == "add" {
            "join a system group"
        } else {
            "leave a system group"
        };
        let sys = self.system_key(name)?;
        let key = self.group_key(group);
        let call = Call::new(
            name,
            Method::POST,
            format!("/api/v2/systemgroups/{group}/members"),
            Auth::System,
        )
        .body(&wire::GroupMemberOp {
            op,
            kind: "system",
            id: &sys,
        })?
        .missing(
            if key.starts_with("the ") {
                format!("system group {group}")
            } else {
                format!("{key} {group}")
            },
            key,
        );
        let answer = self.execute(&call).await?;
        match answer.status {
            s if s.is_success() => Ok(()),
            // SPEC §5: "already done" is success: a 409, or any 4xx that says so.
            _ if op == "add" && already_exists(&answer) => {
                debug!(%group, status = answer.status.as_u16(), "already a member");
                Ok(())
            }
            StatusCode::NOT_FOUND if op == "remove" => {
                debug!(%group, "not a member (or no such group): nothing to remove");
                Ok(())
            }
            _ => Err(self.failure(&call, &answer, &[])),
        }
    }

    async fn search(
        &self,
        field: &'static str,
        value: wire::FilterValue,
    ) -> Result<(Call, Answer), JcError> {
        let mut filter = BTreeMap::new();
        filter.insert(field, value);
        let call = Call::new(
            "find the employee",
            Method::POST,
            "/api/search/systemusers".to_owned(),
            Auth::Admin,
        )
        .body(&wire::SearchBody {
            filter: vec![filter],
            fields: USER_FIELDS,
            limit: SEARCH_LIMIT,
        })?;
        let answer = self.execute(&call).await?;
        Ok((call, answer))
    }

    async fn associate(&self, user: &str, sudo: bool) -> Result<(), JcError> {
        let sys = self.system_key("bind the user")?;
        let call = Call::new(
            "bind the user",
            Method::POST,
            format!("/api/v2/systems/{sys}/associations"),
            Auth::System,
        )
        .body(&wire::SystemAssociationOp {
            op: "add",
            kind: "user",
            id: user,
            attributes: wire::SudoAttributes {
                sudo: wire::Sudo {
                    enabled: sudo,
                    without_password: false,
                },
            },
        })?
        .missing(
            format!("user {user} or this Mac's system {sys}"),
            "the user in JumpCloud and the agent registration",
        );
        let answer = self.execute(&call).await?;
        match answer.status {
            s if s.is_success() => Ok(()),
            // SPEC §5: "an existing bind counts as done" (a 409, or any 4xx that says so). Its
            // sudo right is left as the admin set it (the engine reads nothing back after a
            // definite answer: issue 11), so say so here.
            _ if already_exists(&answer) => {
                info!(user, status = answer.status.as_u16(), admin = sudo, "the user was already bound to this Mac: its sudo right stays as it is in JumpCloud");
                Ok(())
            }
            _ => Err(self.failure(&call, &answer, &[])),
        }
    }
}

impl Client {
    /// `GET /api/organizations` (admin): the organisations this API key can see, as
    /// `(id, display name)`. Read-only; used by `config check --online` to prove the key works.
    pub async fn organizations(&self) -> Result<Vec<(String, String)>, JcError> {
        let mut call = Call::new(
            "list organisations",
            Method::GET,
            "/api/organizations?limit=100".to_owned(),
            Auth::Admin,
        );
        // The list of a multi-tenant key's organisations is read without `x-org-id` (v1.json
        // info text, "To Obtain All Organization IDs via the API"); the header may be refused
        // on routes that do not support it (403).
        call.org_header = false;
        let answer = self.execute(&call).await?;
        if !answer.status.is_success() {
            return Err(self.failure(&call, &answer, &[]));
        }
        let list: wire::OrganizationList = Self::parse(&call, &answer)?;
        debug!(total = ?list.total_count, "organisations visible to the key");
        Ok(list
            .results
            .into_iter()
            .map(|o| (o.id, o.display_name))
            .collect())
    }

    /// `GET /api/v2/systemgroups/{id}` (admin): the group's name; a 404 names `key`.
    pub async fn system_group(&self, group: &ObjectId, key: &str) -> Result<String, JcError> {
        let call = Call::new(
            "read a system group",
            Method::GET,
            format!("/api/v2/systemgroups/{group}"),
            Auth::Admin,
        )
        .missing(format!("{key} {group}"), key);
        let answer = self.execute(&call).await?;
        if !answer.status.is_success() {
            return Err(self.failure(&call, &answer, &[]));
        }
        let parsed: wire::SystemGroup = Self::parse(&call, &answer)?;
        Ok(parsed.name)
    }
}

/// Whether a 4xx answer says the thing to create is there already: a 409, or any 4xx whose
/// message is JumpCloud's `Already Exists`. JumpCloud's own script for binding users to
/// systems recognises a duplicate bind by that body, whatever the status
/// (TheJumpCloud/support `usertosystem_serialNumber.ps1`, branch added in 65da810d, 2019);
/// the status of a duplicate bind or group add is not on record (PR #480 only says "already a
/// member").
fn already_exists(answer: &Answer) -> bool {
    if answer.status == StatusCode::CONFLICT {
        return true;
    }
    if !answer.status.is_client_error() {
        return false;
    }
    let body: wire::ErrorBody = serde_json::from_slice(&answer.body).unwrap_or_default();
    [body.message, body.error]
        .into_iter()
        .flatten()
        .any(|m| m.to_ascii_lowercase().contains("already exists"))
}

/// Whether an error body carries a message (`message` or `error`, not blank).
fn has_message(body: &[u8]) -> bool {
    let body: wire::ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    [body.message, body.error]
        .into_iter()
        .flatten()
        .any(|m| !m.trim().is_empty())
}

/// A path segment we put into a URL: JumpCloud ids are hex; anything else is refused rather
/// than escaped, so the signed path is exactly the sent one.
fn id_segment(call: &str, id: &str) -> Result<(), JcError> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(JcError::Protocol {
            call: call.to_owned(),
            detail: format!("{id:?} is not a JumpCloud object id"),
        })
    }
}

/// The `$regex` for a case-insensitive exact match of `value`.
///
/// JumpCloud evaluates `$regex` in MongoDB, whose engine is PCRE: there a backslash before any
/// non-alphanumeric character makes it literal, so `regex::escape` (which escapes exactly the
/// metacharacters, all punctuation) is safe for PCRE too. `(?i)` is PCRE's inline
/// case-insensitive flag, as JumpCloud's own tools use (TheJumpCloud/support PR #399).
pub fn exact_regex(value: &str) -> String {
    format!("(?i)^{}$", regex::escape(value))
}

/// Case-insensitive equality, as the local confirmation of a search result.
fn same_ignoring_case(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

#[async_trait]
impl Directory for Client {
    async fn add_system_to_group(&self, group: &ObjectId) -> Result<(), JcError> {
        self.group_op(group, "add").await
    }

    async fn remove_system_from_group(&self, group: &ObjectId) -> Result<(), JcError> {
        self.group_op(group, "remove").await
    }

    async fn system_groups(&self) -> Result<Vec<String>, JcError> {
        let sys = self.system_key("check membership")?;
        let objects: Vec<wire::GraphObject> = self
            .list_all(
                "check membership",
                &format!("/api/v2/systems/{sys}/memberof"),
                "",
                Self::this_system_missing(&sys),
            )
            .await?;
        Ok(objects
            .into_iter()
            .filter(|o| o.kind == "system_group")
            .map(|o| o.id)
            .collect())
    }

    async fn system(&self) -> Result<SystemFacts, JcError> {
        let sys = self.system_key("read this system")?;
        let (what, key) = Self::this_system_missing(&sys);
        let call = Call::new(
            "read this system",
            Method::GET,
            format!("/api/systems/{sys}"),
            Auth::System,
        )
        .missing(what, key);
        let answer = self.execute(&call).await?;
        if !answer.status.is_success() {
            return Err(self.failure(&call, &answer, &[]));
        }
        let system: wire::JcSystem = Self::parse(&call, &answer)?;
        Ok(SystemFacts {
            id: if system.id.is_empty() { sys } else { system.id },
            organization: system.organization,
            hostname: system.hostname,
            description: system.description,
        })
    }

    async fn org(&self, org: &ObjectId) -> Result<OrgFacts, JcError> {
        let call = Call::new(
            "read the organisation",
            Method::GET,
            format!("/api/organizations/{org}"),
            Auth::Admin,
        )
        .missing(format!("OrgID {org}"), "OrgID");
        let answer = self.execute(&call).await?;
        if !answer.status.is_success() {
            return Err(self.failure(&call, &answer, &[]));
        }
        let parsed: wire::Organization = Self::parse(&call, &answer)?;
        let settings = parsed.settings.unwrap_or_default();
        let name = if parsed.display_name.is_empty() {
            settings.name.clone()
        } else {
            parsed.display_name
        };
        Ok(OrgFacts {
            id: if parsed.id.is_empty() {
                org.to_string()
            } else {
                parsed.id
            },
            name,
            password_policy: settings.local_policy(),
        })
    }

    async fn find_users(&self, by: Identifier, value: &str) -> Result<Vec<DirectoryUser>, JcError> {
        let field = by.field();
        let value = value.trim();
        if value.is_empty() || value.chars().any(char::is_control) {
            debug!(field, "empty or unprintable input: no match, no request");
            return Ok(Vec::new());
        }
        let (call, answer) = self
            .search(
                field,
                wire::FilterValue::Regex {
                    regex: exact_regex(value),
                },
            )
            .await?;
        let (call, answer) = if answer.status == StatusCode::BAD_REQUEST {
            warn!(
                field,
                "the tenant rejected the $regex filter (400); searching again with a plain filter on the lower-cased input (exact, case-sensitive)"
            );
            self.search(field, wire::FilterValue::Plain(value.to_lowercase()))
                .await?
        } else {
            (call, answer)
        };
        if !answer.status.is_success() {
            return Err(self.failure(&call, &answer, &[]));
        }
        let found: wire::SearchResults = Self::parse(&call, &answer)?;
        let total = found.results.len();
        let confirmed: Vec<DirectoryUser> = found
            .results
            .into_iter()
            .filter(|u| u.field(field).is_some_and(|f| same_ignoring_case(f, value)))
            .collect();
        if confirmed.len() != total {
            info!(
                field,
                returned = total,
                confirmed = confirmed.len(),
                "dropped search results that do not match exactly"
            );
        }
        Ok(confirmed)
    }

    async fn user(&self, user: &str) -> Result<DirectoryUser, JcError> {
        id_segment("read the user", user)?;
        let call = Call::new(
            "read the user",
            Method::GET,
            format!("/api/systemusers/{user}"),
            Auth::Admin,
        )
        .missing(
            format!("user {user}"),
            "the user in JumpCloud (was it deleted during the enrollment?)",
        );
        let answer = self.execute(&call).await?;
        if !answer.status.is_success() {
            return Err(self.failure(&call, &answer, &[]));
        }
        Self::parse(&call, &answer)
    }

    async fn activate_user(&self, user: &str) -> Result<(), JcError> {
        id_segment("activate the user", user)?;
        let call = Call::new(
            "activate the user",
            Method::POST,
            format!("/api/systemusers/{user}/state/activate"),
            Auth::Admin,
        )
        .body(&wire::ActivateBody { email: false })?
        // A repeat after a lost answer could meet a user that is no longer STAGED (JumpCloud's
        // answer to that is not on record): the engine reads the state back instead.
        .check_first()
        .missing(
            format!("user {user}"),
            "the user in JumpCloud (was it deleted during the enrollment?)",
        );
        let answer = self.execute(&call).await?;
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(self.failure(&call, &answer, &[]))
        }
    }

    async fn set_password(&self, user: &str, password: &SecretString) -> Result<(), JcError> {
        id_segment("set the password", user)?;
        // The only place the password is exposed: the request body.
        let call = Call::new(
            "set the password",
            Method::PUT,
            format!("/api/systemusers/{user}"),
            Auth::Admin,
        )
        .body(&wire::PasswordPut {
            password: password.expose_secret(),
        })?
        .check_first()
        .missing(
            format!("user {user}"),
            "the user in JumpCloud (was it deleted during the enrollment?)",
        );
        let answer = self.execute(&call).await?;
        if answer.status.is_success() {
            return Ok(());
        }
        let secrets = [password.expose_secret()];
        // Which status JumpCloud gives a password its policy refuses is not on record (the
        // spec lists none for `User_Set`): any 4xx that says why is the employee's to act on.
        // 401/403 are our key's, 404 a user that vanished: those stay admin errors.
        let ours = matches!(
            answer.status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
        );
        if answer.status.is_client_error() && !ours && has_message(&answer.body) {
            return Err(JcError::PasswordRefused {
                status: answer.status.as_u16(),
                message: self.detail(&answer.body, &secrets),
            });
        }
        Err(self.failure(&call, &answer, &secrets))
    }

    async fn bind_user(&self, user: &str, sudo: bool) -> Result<(), JcError> {
        id_segment("bind the user", user)?;
        self.associate(user, sudo).await
    }

    async fn bound_users(&self) -> Result<Vec<Binding>, JcError> {
        let sys = self.system_key("check the bind")?;
        let connections: Vec<wire::GraphConnection> = self
            .list_all(
                "check the bind",
                &format!("/api/v2/systems/{sys}/associations"),
                "targets=user",
                Self::this_system_missing(&sys),
            )
            .await?;
        Ok(connections
            .into_iter()
            .filter(|c| c.to.kind == "user")
            .map(|c| Binding {
                user_id: c.to.id,
                sudo: c.attributes.and_then(|a| a.sudo).is_some_and(|s| s.enabled),
            })
            .collect())
    }

    async fn report(&self, description: &str) -> Result<(), JcError> {
        let sys = self.system_key("report progress")?;
        let (what, key) = Self::this_system_missing(&sys);
        let call = Call::new(
            "report progress",
            Method::PUT,
            format!("/api/systems/{sys}"),
            Auth::System,
        )
        .body(&wire::SystemDescriptionPut { description })?
        .missing(what, key);
        let answer = self.execute(&call).await?;
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(self.failure(&call, &answer, &[]))
        }
    }

    async fn set_display_name(&self, name: &str) -> Result<(), JcError> {
        let sys = self.system_key("name the system")?;
        let (what, key) = Self::this_system_missing(&sys);
        let call = Call::new(
            "name the system",
            Method::PUT,
            format!("/api/systems/{sys}"),
            Auth::System,
        )
        .body(&wire::SystemDisplayNamePut { display_name: name })?
        .missing(what, key);
        let answer = self.execute(&call).await?;
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(self.failure(&call, &answer, &[]))
        }
    }

    fn requests_sent(&self) -> u64 {
        self.sent()
    }

    fn set_org_id(&self, org_id: &str) {
        self.write_state().org_id = Some(org_id.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_regex_escapes_every_metacharacter() {
        let input = r"a.b*c+d?e(f)g[h]i{j}k|l^m$n\o#p&q-r~s";
        let re = exact_regex(input);
        let compiled = regex::Regex::new(&re).unwrap();
        assert!(compiled.is_match(&input.to_uppercase()));
        assert!(!compiled.is_match("aXb*c+d?e(f)g[h]i{j}k|l^m$n\\o#p&q-r~s"));
        assert!(!compiled.is_match(&format!("{input}x")));
        // Every ASCII punctuation character ends up behind a backslash.
        let body = re.trim_start_matches("(?i)^").trim_end_matches('$');
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                assert!(chars.next().is_some_and(|n| n.is_ascii_punctuation()));
            } else {
                assert!(
                    !matches!(
                        c,
                        '.' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '^' | '$'
                    ),
                    "{c} unescaped in {re}"
                );
            }
        }
    }

    proptest::proptest! {
        /// Whatever the employee types, the pattern matches exactly that text, in any ASCII
        /// case, and nothing longer. (Rust's regex stands in for PCRE here; `grep -P` agreed
        /// on the metacharacter cases when this was written.)
        #[test]
        fn exact_regex_matches_only_the_input(input in "[ -~]{1,40}") {
            let compiled = regex::Regex::new(&exact_regex(&input)).unwrap();
            proptest::prop_assert!(compiled.is_match(&input));
            proptest::prop_assert!(compiled.is_match(&input.to_ascii_uppercase()));
            let longer = format!("{input}x");
            proptest::prop_assert!(!compiled.is_match(&longer));
        }
    }

    #[test]
    fn local_confirmation_ignores_case_only() {
        assert!(same_ignoring_case("Ada@Example.com", "ada@example.COM"));
        assert!(same_ignoring_case("ÄRGER", "ärger"));
        assert!(!same_ignoring_case("ada@example.com", "ada@example.co"));
    }

    #[test]
    fn ids_in_paths_are_plain() {
        assert!(id_segment("x", "5f0c5f4d2b3c4a1e9d8f7a6b").is_ok());
        assert!(id_segment("x", "../organizations").is_err());
        assert!(id_segment("x", "a?b").is_err());
        assert!(id_segment("x", "").is_err());
    }
}
