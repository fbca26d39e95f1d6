//! An in-memory [`Directory`] for step-level tests, backed by the simulated tenant's own state
//! model ([`super::state::State`]): its users, groups and bindings, and its answers (the JSON
//! `search_users` and `get_user` return, the 404 of `get_group`), so a test's directory answers
//! are the simulator's, not a second belief. No HTTP: the transport (retries, clock sync,
//! signing) is the real client's business and is tested against the HTTP tenant.
//!
//! It refuses as the tenant does, as [`JcError`]s the client would map them to: no API key is
//! refused before anything is sent ([`JcError::NoApiKey`], as the client does), a wrong key gets
//! the tenant's 401 ([`JcError::ApiKeyRejected`]), an unknown group the tenant's 404
//! ([`JcError::NotFound`] naming `EnrollmentGroupID`), an unknown user 404, and a tenant marked
//! down answers 503 ([`JcError::Transient`]).
//!
//! Modelled: `find_users`, `user`, `add_system_to_group`, `remove_system_from_group`,
//! `system_groups`, `bind_user`, `bound_users`, `set_org_id`, `requests_sent`. The others
//! answer [`JcError::Protocol`] ("not modelled"): use the HTTP tenant for those steps.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use secrecy::SecretString;
use serde_json::{json, Value};

use super::state::{Reply, State};
use super::{SimOptions, SimUser, SimUserView};
use crate::config::{Identifier, ObjectId};
use crate::jumpcloud::{Binding, Directory, DirectoryUser, JcError, OrgFacts, SystemFacts};

const HOST: &str = "console.jumpcloud.com";

/// Which key the engine's client would send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Valid,
    Wrong,
    None,
}

/// The in-memory tenant, seen through the [`Directory`] calls.
pub struct MemoryDirectory {
    state: Mutex<State>,
    key: Key,
    down: AtomicBool,
    system_id: Mutex<Option<String>>,
    requests: AtomicU64,
}

impl MemoryDirectory {
    /// A tenant as [`SimOptions`] describe it, called with its valid API key.
    pub fn new(opts: &SimOptions) -> Self {
        let (state, _key, _connect) = State::new(opts);
        Self {
            state: Mutex::new(state),
            key: Key::Valid,
            down: AtomicBool::new(false),
            system_id: Mutex::new(None),
            requests: AtomicU64::new(0),
        }
    }

    /// Called without any API key.
    #[must_use]
    pub fn without_api_key(mut self) -> Self {
        self.key = Key::None;
        self
    }

    /// Called with a key the tenant does not know.
    #[must_use]
    pub fn with_wrong_api_key(mut self) -> Self {
        self.key = Key::Wrong;
        self
    }

    /// From now on every call gets 503 (or answers again, with `false`).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a user; returns its id.
    pub fn add_user(&self, user: SimUser) -> String {
        self.lock().add_user(user)
    }

    /// Adds a system group; returns its id.
    pub fn add_group(&self, name: &str) -> String {
        self.lock().add_group(name)
    }

    /// Registers this Mac (what the agent does); returns its system id.
    pub fn register_system(&self, hostname: &str) -> String {
        let id = self.lock().register_system(hostname, Vec::new());
        *self
            .system_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(id.clone());
        id
    }

    pub fn user_view(&self, id: &str) -> Option<SimUserView> {
        self.lock().user_view(id)
    }

    pub fn group_members(&self, group: &str) -> Vec<String> {
        self.lock().group_members(group)
    }

    /// One request: counted, refused as the tenant refuses a missing or wrong key or while it
    /// is down; else the state, for the call to read.
    fn call(&self, call: &str) -> Result<MutexGuard<'_, State>, JcError> {
        if self.key == Key::None {
            // The client refuses before sending (JcError::NoApiKey); nothing is counted.
            return Err(JcError::NoApiKey { call: call.into() });
        }
        self.requests.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(refusal(call, &Reply::v1(503, "Service Unavailable"), ""));
        }
        if self.key == Key::Wrong {
            // The tenant's answer to an unknown key (server.rs `authenticate`).
            return Err(refusal(call, &Reply::v1(401, "Unauthorized"), ""));
        }
        Ok(self.lock())
    }

    fn system(&self, call: &str) -> Result<String, JcError> {
        self.system_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| JcError::Protocol {
                call: call.into(),
                detail: "no system registered (MemoryDirectory::register_system)".into(),
            })
    }
}

/// What the client makes of a tenant's refusal (`client.rs` `failure`): 401 the key, 404 the
/// object (naming the config key), 429 and 5xx worth a retry, the rest rejected.
fn refusal(call: &str, reply: &Reply, key: &str) -> JcError {
    let message = reply
        .body
        .as_ref()
        .and_then(|b| b.get("message"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    match reply.status {
        401 => JcError::ApiKeyRejected {
            host: HOST.into(),
            org_missing: false,
        },
        403 => JcError::Forbidden {
            host: HOST.into(),
            what: call.into(),
        },
        404 => JcError::NotFound {
            what: call.into(),
            key: key.into(),
        },
        429 | 500..=599 => JcError::Transient {
            what: format!("{HOST} answered {} to {call}", reply.status),
        },
        status => JcError::Rejected {
            status,
            call: call.into(),
            detail: message,
        },
    }
}

fn parse<T: serde::de::DeserializeOwned>(call: &str, reply: &Reply) -> Result<T, JcError> {
    let body = reply.body.clone().unwrap_or(Value::Null);
    serde_json::from_value(body).map_err(|e| JcError::Protocol {
        call: call.into(),
        detail: e.to_string(),
    })
}

fn not_modelled<T>(call: &str) -> Result<T, JcError> {
    Err(JcError::Protocol {
        call: call.into(),
        detail: "not modelled by MemoryDirectory; use the HTTP tenant".into(),
    })
}

#[derive(serde::Deserialize)]
struct Results {
    results: Vec<DirectoryUser>,
}

#[async_trait]
impl Directory for MemoryDirectory {
    async fn add_system_to_group(&self, group: &ObjectId) -> Result<(), JcError> {
        let call = "POST /api/v2/systemgroups/{id}/members";
        let mut st = self.call(call)?;
        let system = self.system(call)?;
        let found = st.get_group(group.as_str());
        if found.status != 200 {
            return Err(refusal(call, &found, "EnrollmentGroupID"));
        }
        st.add_member(group.as_str(), &system);
        Ok(())
    }

    async fn remove_system_from_group(&self, group: &ObjectId) -> Result<(), JcError> {
        let call = "POST /api/v2/systemgroups/{id}/members (remove)";
        let mut st = self.call(call)?;
        let system = self.system(call)?;
        // "Already done" is success (the trait's contract): 404 on remove included.
        if let Some(g) = st.groups.iter_mut().find(|g| g.id == group.as_str()) {
            g.members.retain(|m| m != &system);
        }
        Ok(())
    }

    async fn system_groups(&self) -> Result<Vec<String>, JcError> {
        let call = "GET /api/v2/systems/{id}/memberof";
        let st = self.call(call)?;
        let system = self.system(call)?;
        Ok(st
            .groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == &system))
            .map(|g| g.id.clone())
            .collect())
    }

    async fn system(&self) -> Result<SystemFacts, JcError> {
        not_modelled("GET /api/systems/{id}")
    }

    async fn org(&self, _org: &ObjectId) -> Result<OrgFacts, JcError> {
        not_modelled("GET /api/organizations/{id}")
    }

    /// The tenant's user list (its own JSON view of each user, page by page), confirmed
    /// exactly and without case as the client confirms what a search returns.
    async fn find_users(&self, by: Identifier, value: &str) -> Result<Vec<DirectoryUser>, JcError> {
        let call = "POST /api/search/systemusers";
        let value = value.trim();
        if value.is_empty() || value.chars().any(char::is_control) {
            return Ok(Vec::new());
        }
        let st = self.call(call)?;
        let mut found = Vec::new();
        let mut skip = 0u64;
        loop {
            let reply = st.search_users(&json!({ "limit": 100, "skip": skip }));
            if reply.status != 200 {
                return Err(refusal(call, &reply, ""));
            }
            let page: Results = parse(call, &reply)?;
            let n = page.results.len();
            found.extend(page.results.into_iter().filter(|u| {
                u.field(by.field())
                    .is_some_and(|f| f.to_lowercase() == value.to_lowercase())
            }));
            if n < 100 {
                return Ok(found);
            }
            skip += 100;
        }
    }

    async fn user(&self, user: &str) -> Result<DirectoryUser, JcError> {
        let call = "GET /api/systemusers/{id}";
        let st = self.call(call)?;
        let reply = st.get_user(user, None);
        if reply.status != 200 {
            return Err(refusal(call, &reply, ""));
        }
        parse(call, &reply)
    }

    async fn activate_user(&self, _user: &str) -> Result<(), JcError> {
        not_modelled("POST /api/systemusers/{id}/state/activate")
    }

    async fn set_password(&self, _user: &str, _password: &SecretString) -> Result<(), JcError> {
        not_modelled("PUT /api/systemusers/{id}")
    }

    async fn bind_user(&self, user: &str, sudo: bool) -> Result<(), JcError> {
        let call = "POST /api/v2/users/{id}/associations";
        let mut st = self.call(call)?;
        let system = self.system(call)?;
        if st.user_rec(user).is_none() {
            return Err(refusal(call, &Reply::v1(404, "User not found"), ""));
        }
        st.bind(&system, user, sudo);
        Ok(())
    }

    async fn bound_users(&self) -> Result<Vec<Binding>, JcError> {
        let call = "GET /api/v2/systems/{id}/users";
        let st = self.call(call)?;
        let system = self.system(call)?;
        Ok(st
            .bindings(&system)
            .into_iter()
            .map(|(user_id, sudo)| Binding { user_id, sudo })
            .collect())
    }

    async fn report(&self, _description: &str) -> Result<(), JcError> {
        not_modelled("PUT /api/systems/{id} (description)")
    }

    async fn set_display_name(&self, _name: &str) -> Result<(), JcError> {
        not_modelled("PUT /api/systems/{id} (displayName)")
    }

    fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    fn set_org_id(&self, _org_id: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> MemoryDirectory {
        MemoryDirectory::new(&SimOptions::default())
    }

    fn group(id: &str) -> ObjectId {
        ObjectId::parse(id).expect("a 24-hex-digit id")
    }

    #[tokio::test]
    async fn finds_users_as_the_tenant_lists_them_exactly_and_without_case() {
        let jc = tenant();
        let ada = jc.add_user(SimUser::active("ada", "Ada@Example.com"));
        jc.add_user(SimUser::active("adam", "adam@example.com"));
        let found = jc
            .find_users(Identifier::CompanyEmail, " ada@example.com ")
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, ada);
        assert_eq!(jc.user(&ada).await.unwrap().username, "ada");
        assert!(jc
            .find_users(Identifier::CompanyEmail, "nobody@example.com")
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn refuses_as_the_tenant_does() {
        let jc = tenant();
        jc.register_system("mac");
        let unknown = group("5f0c1e2d3b4a5968778695a4");
        let err = jc.add_system_to_group(&unknown).await.unwrap_err();
        assert!(
            matches!(&err, JcError::NotFound { key, .. } if key == "EnrollmentGroupID"),
            "{err:?}"
        );
        assert!(matches!(
            jc.user("5f0c1e2d3b4a5968778695a5").await,
            Err(JcError::NotFound { .. })
        ));
        let wrong = tenant().with_wrong_api_key();
        assert!(matches!(
            wrong.find_users(Identifier::CompanyEmail, "a@b.c").await,
            Err(JcError::ApiKeyRejected { .. })
        ));
        let keyless = tenant().without_api_key();
        assert!(matches!(
            keyless.find_users(Identifier::CompanyEmail, "a@b.c").await,
            Err(JcError::NoApiKey { .. })
        ));
        assert_eq!(keyless.requests_sent(), 0, "refused before sending");
        jc.set_down(true);
        let err = jc.system_groups().await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");
    }

    #[tokio::test]
    async fn group_membership_and_binds_land_in_the_tenant_state() {
        let jc = tenant();
        let system = jc.register_system("mac");
        let g = jc.add_group("Enrollment");
        jc.add_system_to_group(&group(&g)).await.unwrap();
        jc.add_system_to_group(&group(&g)).await.unwrap();
        assert_eq!(jc.group_members(&g), vec![system.clone()]);
        assert_eq!(jc.system_groups().await.unwrap(), vec![g.clone()]);
        jc.remove_system_from_group(&group(&g)).await.unwrap();
        assert!(jc.group_members(&g).is_empty());
        let ada = jc.add_user(SimUser::active("ada", "ada@example.com"));
        jc.bind_user(&ada, false).await.unwrap();
        assert_eq!(
            jc.bound_users().await.unwrap(),
            vec![Binding {
                user_id: ada,
                sudo: false
            }]
        );
        assert_eq!(jc.requests_sent(), 6);
    }
}
