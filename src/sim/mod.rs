//! The simulated JumpCloud tenant and agent that tests and `prestage demo` run against.
//!
//! [`Tenant::start`] binds a real HTTP/1.1 server on `127.0.0.1:0` that answers the calls of
//! SPEC §5 (plus what `config check --online` reads) with JumpCloud's semantics as its
//! published specs (v1.json / v2.json) and docs describe them: admin (`x-api-key`) and
//! system-context (HTTP signature) authentication, case-sensitive plain filters and `$regex`
//! filters, `fields`/`limit`/`skip`, 204/409/404 on associations and group membership, the
//! organisation's password policy and history. Fault knobs ([`Faults`], [`RateLimit`]) make it
//! misbehave on purpose, and every request lands in a log ([`RequestRecord`]) that tests
//! assert on.
//!
//! [`Tenant::attach_mac`] starts the simulated JumpCloud agent for one fake Mac (a `--root`
//! folder, see `crate::host::fake::world`): it registers the system when the agent package is
//! installed, writes `/opt/jc/jcagent.conf` and `/opt/jc/client.key`, and creates the local
//! account after a user is bound, logging to `/var/log/jcagent.log` like the real agent.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use prestage::sim::{SimOptions, SimUser, Tenant};
//! let tenant = Tenant::start(SimOptions::default()).await?;
//! let ada = tenant.add_user(SimUser::pending("ada", "ada@example.com").lastname("Lovelace"));
//! let root = prestage::paths::Root::new("/tmp/mac1");
//! let agent = tenant.attach_mac(&root); // registers once the fake installer installs the agent
//! // ... run prestage with APIBaseURL = tenant.url(), APIKey = tenant.api_key(),
//! // ConnectKey = tenant.connect_key(), then assert on tenant.requests(), tenant.user(&ada) ...
//! drop(agent);
//! tenant.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! The server keeps running until [`Tenant::shutdown`] (or the end of the tokio runtime).
//!
//! Parts: `server` (HTTP, auth, faults, log), `state` (the in-memory tenant), `filter`
//! (search filters), `signature` (HTTP signature checks), `keys` (RSA keys and PEM),
//! [`agent`] (the agent), [`contract`] (response checks against the published specs).

pub mod agent;
pub mod contract;
mod filter;
mod graph;
mod keys;
pub mod loginwindow;
pub mod memory;
pub mod password;
mod server;
mod signature;
mod state;
pub mod webhook;

use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use secrecy::SecretString;

use crate::jumpcloud::UserState;
use crate::paths::Root;
use crate::policy::PasswordPolicy;

pub use agent::{AgentBehaviour, AgentHandle, AgentMode};
pub use keys::{KeyError, SystemKey};
pub use webhook::WebhookReceiver;

/// Everything a tenant starts with. `SimOptions::default()` is a healthy tenant.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub faults: Faults,
    pub agent: AgentBehaviour,
    /// Token bucket for the whole tenant (429 + `Retry-After` when empty); `None` = unlimited.
    pub rate_limit: Option<RateLimit>,
    pub org_name: String,
    /// The organisation's `settings.passwordPolicy`, enforced on `PUT /api/systemusers/{id}`.
    pub password_policy: PasswordPolicy,
    /// `passwordPolicy.maxHistory`: reusing one of the last N passwords is a 400 (0 = off).
    pub password_history: u32,
    /// Extra raw `passwordPolicy` fields served as they are, not enforced (the policy's own
    /// fields, `disallowCommonlyUsedPasswords` and the rest, come from `password_policy`).
    pub extra_policy_fields: serde_json::Map<String, serde_json::Value>,
    /// The status of each refused password set, in turn (the last one repeats; empty = 400).
    /// JumpCloud's status for a password its policy refuses is not on record (the spec lists
    /// no 4xx for `User_Set`), so tests vary it: `[422, 400]` refuses first with 422, then 400.
    pub password_refusal_statuses: Vec<u16>,
    /// The status of an "add" that already happened (a bind, a group membership), always with
    /// `Already Exists` as its message. JumpCloud's own script recognises a duplicate bind by
    /// that body (TheJumpCloud/support `usertosystem_serialNumber.ps1`); the status is not on
    /// record. Default 409 (with the v2 error body); any other status gets the body the script
    /// saw, `{"message":"Already Exists"}`.
    pub duplicate_status: u16,
    /// A multi-tenant administrator's key: an admin request without `x-org-id` gets 401
    /// (v1.json info text, "Multi-Tenant Portal Headers": "401 ID not included for
    /// multi-tenant admin"), except the list of organisations, which is read without it.
    pub multi_tenant: bool,
    /// Seeds ids, keys and fault dice, so a run can be repeated.
    pub seed: u64,
    /// When set, every response that is not an injected fault is checked against the specs and
    /// violations are kept in [`RequestRecord::contract_violations`].
    pub contract: Option<Arc<contract::Specs>>,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            faults: Faults::default(),
            agent: AgentBehaviour::default(),
            rate_limit: None,
            org_name: "Example Org".into(),
            password_policy: PasswordPolicy::default(),
            password_history: 0,
            extra_policy_fields: serde_json::Map::new(),
            password_refusal_statuses: vec![400],
            duplicate_status: 409,
            multi_tenant: false,
            seed: 1,
            contract: None,
        }
    }
}

/// Misbehaviour on purpose. Rates are probabilities per request (0.0..=1.0), rolled with the
/// tenant's seeded dice.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Share of requests answered 500, 502 or 503.
    pub error_rate: f64,
    /// Share of requests whose connection is closed without any response.
    pub drop_rate: f64,
    /// Share of requests answered 429 with `Retry-After`.
    pub throttle_rate: f64,
    /// The next N requests are answered 429 (counted down).
    pub throttle_next: u32,
    /// `Retry-After` given with injected 429s.
    pub retry_after: Duration,
    /// Send `Retry-After` as an HTTP-date instead of seconds (RFC 9110 §10.2.3 allows both).
    pub retry_after_as_date: bool,
    /// Latency added before every response.
    pub latency: Duration,
    /// Apply 5xx errors and drops after the request took effect (the "response was lost" case:
    /// the password was set, the client never heard).
    pub faults_after_effect: bool,
    /// For each entry, the first request whose path contains it takes effect and then loses
    /// its answer: the connection closes without a response (the entry is used up). A client
    /// that repeats such an add meets its own earlier success ("already done").
    pub lose_first: Vec<String>,
    /// Only requests whose path contains one of these get faults (empty: all requests).
    pub only_paths: Vec<String>,
    /// Seconds added to the server clock, to provoke the `Date` skew check.
    pub clock_offset_secs: i64,
    /// Largest accepted distance between a signed request's `Date` and the server clock.
    pub max_skew: Duration,
    /// Every system-context signature gets 401 (ADE-enrolled systems that are not eligible,
    /// SPEC §5 fallback).
    pub system_context_disabled: bool,
    /// `$regex` filters get 400 (SPEC §5: the tenant may reject them).
    pub reject_regex: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            error_rate: 0.0,
            drop_rate: 0.0,
            throttle_rate: 0.0,
            throttle_next: 0,
            retry_after: Duration::from_secs(1),
            retry_after_as_date: false,
            latency: Duration::ZERO,
            faults_after_effect: false,
            lose_first: Vec::new(),
            only_paths: Vec::new(),
            clock_offset_secs: 0,
            max_skew: Duration::from_secs(300),
            system_context_disabled: false,
            reject_regex: false,
        }
    }
}

/// A token bucket shared by every client of the tenant: `burst` requests at once, refilled at
/// `per_second`. An empty bucket answers 429 with the seconds until the next token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

/// A user to add to the tenant. Build with [`SimUser::pending`] and friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimUser {
    pub username: String,
    pub email: String,
    pub system_username: Option<String>,
    pub firstname: String,
    pub lastname: String,
    pub description: String,
    pub employee_identifier: Option<String>,
    /// false = pending (no password yet).
    pub activated: bool,
    pub state: UserState,
    /// Custom attributes `[{name, value}]`.
    pub attributes: Vec<(String, String)>,
}

impl SimUser {
    fn base(username: &str, email: &str, activated: bool, state: UserState) -> Self {
        Self {
            username: username.into(),
            email: email.into(),
            system_username: None,
            firstname: String::new(),
            lastname: String::new(),
            description: String::new(),
            employee_identifier: None,
            activated,
            state,
            attributes: Vec::new(),
        }
    }
    /// A pending user: state `ACTIVATED`, no password yet (`activated: false`).
    pub fn pending(username: &str, email: &str) -> Self {
        Self::base(username, email, false, UserState::Activated)
    }
    /// An active user with a password.
    pub fn active(username: &str, email: &str) -> Self {
        Self::base(username, email, true, UserState::Activated)
    }
    /// A staged user (state `STAGED`, no password).
    pub fn staged(username: &str, email: &str) -> Self {
        Self::base(username, email, false, UserState::Staged)
    }
    /// A suspended user.
    pub fn suspended(username: &str, email: &str) -> Self {
        Self::base(username, email, true, UserState::Suspended)
    }
    #[must_use]
    pub fn lastname(mut self, v: &str) -> Self {
        self.lastname = v.into();
        self
    }
    #[must_use]
    pub fn firstname(mut self, v: &str) -> Self {
        self.firstname = v.into();
        self
    }
    #[must_use]
    pub fn description(mut self, v: &str) -> Self {
        self.description = v.into();
        self
    }
    #[must_use]
    pub fn employee_id(mut self, v: &str) -> Self {
        self.employee_identifier = Some(v.into());
        self
    }
    #[must_use]
    pub fn system_username(mut self, v: &str) -> Self {
        self.system_username = Some(v.into());
        self
    }
    #[must_use]
    pub fn attribute(mut self, name: &str, value: &str) -> Self {
        self.attributes.push((name.into(), value.into()));
        self
    }
}

/// A user as the tenant holds it now, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimUserView {
    pub id: String,
    pub user: SimUser,
    /// How many passwords were accepted for this user.
    pub password_sets: u32,
    /// How many password sets were refused (policy or history).
    pub password_rejections: u32,
    /// SHA-256 hex of each accepted password, oldest first (never the password itself).
    pub password_history: Vec<String>,
    pub password_date: Option<String>,
    pub activated: bool,
    pub state: UserState,
    /// Emails JumpCloud sent this user because of an activation, oldest first.
    pub emails: Vec<SimEmail>,
}

/// An email the tenant sent on `POST /api/systemusers/{id}/state/activate` (v1.json: "Users
/// with a password will be sent a Welcome email … Users without a password will be sent an
/// Activation email"; `{"email": false}` suppresses it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimEmail {
    pub kind: EmailKind,
    /// The address it went to.
    pub to: String,
}

/// Which email an activation sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailKind {
    /// To a user who has a password.
    Welcome,
    /// To a user who has none yet: set one.
    Activation,
}

impl SimUserView {
    /// How many Welcome emails this user got.
    pub fn welcome_emails(&self) -> usize {
        self.emails
            .iter()
            .filter(|e| e.kind == EmailKind::Welcome)
            .count()
    }
}

/// A registered system, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimSystemView {
    pub id: String,
    pub hostname: String,
    /// Every `description` it had, oldest first (the first is empty).
    pub descriptions: Vec<String>,
    /// `displayName` (the host name until an admin or prestage sets one).
    pub display_name: String,
}

/// How a request authenticated (or tried to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// `x-api-key` (valid or not: see the status).
    Admin,
    /// `Authorization: Signature ...` (valid or not: see the status).
    System,
    None,
}

/// One request the tenant received.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub auth: AuthKind,
    /// Who asked, for the `Retry-After` proof: `admin` (the first key), `admin:<n>` (keys of
    /// [`Tenant::add_api_key`]), `system:<id>` or `anonymous`.
    pub client: String,
    /// The `User-Agent` header (SPEC §5: `prestage/<version>`).
    pub user_agent: Option<String>,
    /// The `x-org-id` header, if sent.
    pub org_id_header: Option<String>,
    /// SHA-256 of the body, hex (of the empty string when there is none).
    pub body_sha256: String,
    /// Status sent; 0 when the connection was dropped on purpose.
    pub status: u16,
    /// Whether a fault knob produced this answer (429, 5xx, drop) rather than the tenant.
    pub injected: bool,
    pub at: Instant,
    /// Milliseconds since the tenant started.
    pub at_ms: u64,
    /// Problems found by the contract check (empty when none or when not enabled).
    pub contract_violations: Vec<String>,
}

/// A 429 the tenant gave a client: it should not come back before `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryWindow {
    pub client: String,
    pub from: Instant,
    pub until: Instant,
}

/// A running simulated tenant: a cheap handle (clone it freely).
#[derive(Clone)]
pub struct Tenant {
    inner: Arc<server::Inner>,
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant")
            .field("url", &self.inner.url.as_str())
            .finish_non_exhaustive()
    }
}

impl Tenant {
    /// Starts the tenant on `127.0.0.1:0`.
    pub async fn start(opts: SimOptions) -> std::io::Result<Tenant> {
        let inner = server::start(opts).await?;
        Ok(Tenant { inner })
    }

    /// Base URL, e.g. `http://127.0.0.1:43121/` (use it as `APIBaseURL`).
    pub fn url(&self) -> url::Url {
        self.inner.url.clone()
    }

    /// The tenant's admin API key.
    pub fn api_key(&self) -> SecretString {
        self.inner.api_key.clone()
    }

    /// A further admin API key of the same organisation. Requests with it are logged as client
    /// `admin:<n>` (n = 1, 2, ...), so a fleet whose Macs each get their own key can prove
    /// per Mac that no request came inside a `Retry-After` window (with one shared key, a 429
    /// given to one Mac would open a window for all of them).
    pub fn add_api_key(&self) -> SecretString {
        self.state().add_api_key()
    }

    /// The agent connect key (40 hex).
    pub fn connect_key(&self) -> String {
        self.inner.connect_key.clone()
    }

    /// A tenant connect key `jcc_<base64>` (JumpCloud's format since 2025) whose payload is the
    /// `agentBootstrap.json` for the given kickstart hosts: compact JSON, so a Mac that rewrites
    /// it instead of writing it byte for byte is caught. From then on the simulated agent
    /// registers only with one of these payloads as its bootstrap file.
    pub fn tenant_connect_key(
        &self,
        public_kickstart_url: &str,
        private_kickstart_url: &str,
    ) -> String {
        // In the bash script's key order (serde_json's map would sort them), each value
        // escaped by serde_json.
        let quoted = |v: &str| serde_json::to_string(v).expect("a string always serialises");
        let payload = format!(
            "{{\"publicKickstartUrl\":{},\"privateKickstartUrl\":{},\"connectKey\":{}}}",
            quoted(public_kickstart_url),
            quoted(private_kickstart_url),
            quoted(&self.inner.connect_key)
        )
        .into_bytes();
        let key = crate::config::connect_key::encode_tenant_key(&payload);
        self.inner
            .tenant_key_payloads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(payload);
        key
    }

    /// The organisation id (24 hex).
    pub fn org_id(&self) -> String {
        self.inner.org_id.clone()
    }

    fn state(&self) -> MutexGuard<'_, state::State> {
        self.inner.lock()
    }

    /// Adds a user; returns its `_id`.
    pub fn add_user(&self, u: SimUser) -> String {
        self.state().add_user(u)
    }

    /// Adds a system group; returns its id.
    pub fn add_group(&self, name: &str) -> String {
        self.state().add_group(name)
    }

    /// Registers a system with the given public key (PKCS#1 `RSAPublicKey` DER, as
    /// `aws_lc_rs::rsa::PublicKey::as_ref` gives) and returns its id. The simulated agent does
    /// this itself; tests use it to sign with a key of their own.
    pub fn register_system(&self, hostname: &str, public_key_der: &[u8]) -> String {
        self.state()
            .register_system(hostname, public_key_der.to_vec())
    }

    /// Binds a user to a system as the admin console would (no HTTP).
    pub fn bind(&self, system_id: &str, user_id: &str, sudo: bool) {
        self.state().bind(system_id, user_id, sudo);
    }

    /// Puts a system into a group as the admin console would (no HTTP).
    pub fn add_group_member(&self, group_id: &str, system_id: &str) {
        self.state().add_member(group_id, system_id);
    }

    /// A user as the tenant holds it now.
    pub fn user(&self, id: &str) -> Option<SimUserView> {
        self.state().user_view(id)
    }

    /// Users bound to a system: `(user id, sudo)`.
    pub fn bindings(&self, system_id: &str) -> Vec<(String, bool)> {
        self.state().bindings(system_id)
    }

    /// System ids in a group.
    pub fn group_members(&self, group_id: &str) -> Vec<String> {
        self.state().group_members(group_id)
    }

    /// Every registered system.
    pub fn systems(&self) -> Vec<SimSystemView> {
        self.state().system_views()
    }

    /// Every request so far, in arrival order (the log is written when the answer goes out,
    /// so concurrent requests are sorted back by arrival).
    pub fn requests(&self) -> Vec<RequestRecord> {
        let mut log = self.state().log.clone();
        log.sort_by_key(|r| r.at);
        log
    }

    /// Every 429 given so far.
    pub fn retry_windows(&self) -> Vec<RetryWindow> {
        self.state().windows.clone()
    }

    /// Requests that arrived inside a `Retry-After` window given to the same client: a
    /// well-behaved client keeps this at 0. A client with requests in flight in parallel may
    /// see a 429 after sending others; those count too (prestage calls one at a time).
    pub fn requests_inside_retry_after_windows(&self) -> usize {
        let st = self.state();
        // Windows by client, so each request is compared only with its own client's windows
        // (a fleet benchmark logs ~100k requests and as many windows).
        let mut by_client: std::collections::HashMap<&str, Vec<&RetryWindow>> =
            std::collections::HashMap::new();
        for w in &st.windows {
            by_client.entry(w.client.as_str()).or_default().push(w);
        }
        st.log
            .iter()
            .filter(|r| {
                by_client
                    .get(r.client.as_str())
                    .is_some_and(|windows| windows.iter().any(|w| r.at > w.from && r.at < w.until))
            })
            .count()
    }

    /// Every contract violation found so far (`METHOD path status: problem`).
    pub fn contract_violations(&self) -> Vec<String> {
        self.state()
            .log
            .iter()
            .flat_map(|r| {
                r.contract_violations
                    .iter()
                    .map(move |v| format!("{} {} {}: {v}", r.method, r.path, r.status))
            })
            .collect()
    }

    /// Replaces the fault knobs.
    pub fn set_faults(&self, f: Faults) {
        self.state().faults = f;
    }

    /// The fault knobs in force.
    pub fn faults(&self) -> Faults {
        self.state().faults.clone()
    }

    /// Starts the simulated agent for the fake Mac at `root` (a task on the current tokio
    /// runtime: call it from inside one). The agent stops when the handle is dropped.
    #[must_use = "the agent stops when its handle is dropped"]
    pub fn attach_mac(&self, root: &Root) -> AgentHandle {
        let behaviour = self.state().agent.clone();
        agent::spawn(self.clone(), root.clone(), behaviour)
    }

    /// Like [`Tenant::attach_mac`] with a behaviour of its own for this Mac.
    #[must_use = "the agent stops when its handle is dropped"]
    pub fn attach_mac_with(&self, root: &Root, behaviour: AgentBehaviour) -> AgentHandle {
        agent::spawn(self.clone(), root.clone(), behaviour)
    }

    /// Stops the server (open connections are closed).
    pub async fn shutdown(self) {
        self.inner.shutdown().await;
    }

    /// Time since the tenant started.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }
}
