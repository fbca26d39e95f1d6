//! The JumpCloud API as the engine needs it (SPEC §5).
//!
//! [`Directory`] is the engine's view: one method per call of SPEC §5. `client::Client` is the
//! real implementation over HTTPS (retries, both auth modes, typed errors); tests and the demo
//! point it at the simulated tenant in `crate::sim`.
//!
//! Wiring it up (the engine's side, `crate::engine::connect`): one client per run, its
//! credentials from a provider ([`Auth`]) that it asks lazily, when a call needs them:
//! ```text
//! let mut options = ClientOptions::from_config(&config);       // base URL, OrgID, group keys
//! options.auth = provider;                                      // API key, system identity,
//! options.clock_sync = Some(Arc::new(HostClock::new(host, ntp))); // org, the admin fallback
//! let client = Client::new(options)?;
//! ```
//! Given credentials (`options.api_key`, `options.system`) are used as they are and the
//! provider is not asked for them (`config check --online`, tests).
//!
//! Errors: [`JcError::is_transient`] ones become the engine's transient step errors (retried); a
//! [`JcError::Uncertain`] (an answer lost on `activate_user` or `set_password`) means "read the
//! user back (`user()`: `state`, `activated`, `password_date`) before sending it again". A 404
//! on a configured group names its
//! key (`EnrollmentGroupID 5f… does not exist in this organisation: check EnrollmentGroupID`)
//! because [`ClientOptions::from_config`] records which key each group id came from.

pub mod auth;
pub mod client;
#[cfg(feature = "sim")]
pub mod contract;
pub mod error;
pub mod online;
mod options;
mod retry;
pub mod signing;
mod transport;
pub mod types;
mod wire;

use async_trait::async_trait;
use secrecy::SecretString;

pub use auth::{Auth, NoAuth};
pub use client::{Client, ClientOptions, ClockSync, RetryPolicy, Timeouts};
pub use error::JcError;
pub use signing::SystemIdentity;
pub use types::{Binding, DirectoryUser, OrgFacts, PasswordProof, SystemFacts, UserState};

use crate::config::{Identifier, ObjectId};

/// The calls of SPEC §5, as the enrollment engine uses them. Every method is safe to repeat:
/// "already done" answers (409 on add, 404 on remove, an existing bind) are success.
#[async_trait]
pub trait Directory: Send + Sync {
    /// `POST /api/v2/systemgroups/{gid}/members` `{"op":"add","type":"system","id":sys}`.
    async fn add_system_to_group(&self, group: &ObjectId) -> Result<(), JcError>;
    /// `POST /api/v2/systemgroups/{gid}/members` `{"op":"remove",...}`.
    async fn remove_system_from_group(&self, group: &ObjectId) -> Result<(), JcError>;
    /// `GET /api/v2/systems/{sys}/memberof`: ids of the groups this system is in.
    async fn system_groups(&self) -> Result<Vec<String>, JcError>;
    /// `GET /api/systems/{sys}`.
    async fn system(&self) -> Result<SystemFacts, JcError>;
    /// `GET /api/organizations/{org}` → `settings.passwordPolicy` (admin).
    async fn org(&self, org: &ObjectId) -> Result<OrgFacts, JcError>;
    /// `POST /api/search/systemusers`: case-insensitive exact match on `field`
    /// (escaped `$regex`, plain-filter fallback on 400), confirmed locally. At most 2 results
    /// are asked for: more than one match is ambiguous anyway.
    async fn find_users(&self, by: Identifier, value: &str) -> Result<Vec<DirectoryUser>, JcError>;
    /// `GET /api/systemusers/{uid}` (admin): read a user back after an uncertain write.
    async fn user(&self, user: &str) -> Result<DirectoryUser, JcError>;
    /// `POST /api/systemusers/{uid}/state/activate` (admin).
    async fn activate_user(&self, user: &str) -> Result<(), JcError>;
    /// `PUT /api/systemusers/{uid}` `{"password":...}` (admin). The only place the password
    /// is exposed is the request body. Never resent after a lost answer: such a failure is
    /// [`JcError::Uncertain`] and the caller reads the user back first (SPEC §5).
    async fn set_password(&self, user: &str, password: &SecretString) -> Result<(), JcError>;
    /// `POST /api/v2/systems/{sys}/associations` (204; existing bind counts as done).
    async fn bind_user(&self, user: &str, sudo: bool) -> Result<(), JcError>;
    /// `GET /api/v2/systems/{sys}/associations?targets=user`.
    async fn bound_users(&self) -> Result<Vec<Binding>, JcError>;
    /// `PUT /api/systems/{sys}` with a short `description` status line.
    async fn report(&self, description: &str) -> Result<(), JcError>;
    /// `PUT /api/systems/{sys}` with `{"displayName": NAME}` (v1 `systemput`), for
    /// `ComputerName`.
    async fn set_display_name(&self, name: &str) -> Result<(), JcError>;
    /// Number of HTTP requests sent so far (for `demo` and benchmarks).
    fn requests_sent(&self) -> u64;
    /// Sends `org_id` as `x-org-id` on later admin calls (once the org is known).
    fn set_org_id(&self, org_id: &str);
}
