//! The real JumpCloud client: the calls of SPEC §5 over HTTPS (reqwest + rustls with the
//! platform verifier, so MDM-pushed root CAs are trusted on macOS), in both auth modes, with the
//! retry rules of SPEC §5 and typed, admin-facing errors.
//!
//! Auth: admin calls carry `x-api-key` (+ `x-org-id`); system calls carry a `Date` and an HTTP
//! signature made with the agent's key ([`super::signing`]). A 401 on a system call first gets
//! one clock sync ([`ClockSync`], backed by `sntp` through the host adapter) and a retry; if it is
//! still refused and an API key is available, the call is repeated with the admin key and every
//! later system call uses the admin key too (systems enrolled through ADE may not be eligible
//! for system context: v1.json info text).
//!
//! Retries: connection errors, timeouts, 5xx and 429 are retried with exponential backoff and
//! full jitter (capped), honouring `Retry-After` (seconds or HTTP-date, RFC 9110 §10.2.3) for
//! every later request of this client too, so none is sent inside a window the server gave; the
//! retry itself comes a random share later than the window's end, so a throttled fleet does not
//! return in lockstep.
//! The password set is never blindly repeated after an uncertain failure: it returns
//! [`JcError::Uncertain`] and the engine reads the user back first (SPEC §5).
//!
//! Secrets: the API key and signatures go into headers marked sensitive, the password only into
//! the request body; none of them is logged or put into an error (server messages are scrubbed).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use rand::Rng as _;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, DATE, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::time::Instant;
use tracing::{debug, info, warn};
use url::Url;

use super::signing::{http_date, SystemIdentity};
use super::types::{Binding, DirectoryUser, OrgFacts, SystemFacts};
use super::wire;
use super::{Directory, JcError};
use crate::config::{Config, Identifier, ObjectId};
use crate::host::{Host, HostError};

/// TCP/TLS connect timeout (SPEC §5 issue text: 10 s).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Whole-request timeout (30 s).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest `Retry-After` honoured; a longer one is cut to this (a misconfigured proxy must
/// not park the enrollment for a day).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// Users asked for in a search: more than one match is ambiguous anyway (SPEC §5).
const SEARCH_LIMIT: u32 = 2;
/// Page size of v2 list reads after the first page (the spec's maximum).
const PAGE: usize = 100;
/// Page size when no `limit` is sent (v2.json `trait:limit:limit` default).
const DEFAULT_PAGE: usize = 10;
/// Entries read from one v2 list before it is taken as endless (a system has a handful of
/// groups and users).
const MAX_LISTED: usize = 10_000;
/// The user fields prestage reads. `systemUsername` is not in the spec but JumpCloud's ADMU
/// asks for it (REFERENCE.md).
const USER_FIELDS: &str = "_id username systemUsername email lastname description \
                           employeeIdentifier activated state attributes password_date";

/// When and how often a failed call is retried inside the client. The engine retries
/// [`JcError::Transient`] on its own afterwards, so the client gives up early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// Backoff before the first retry (before jitter); doubles each retry.
    pub base: Duration,
    /// Upper bound of one backoff (SPEC §5: 60 s).
    pub cap: Duration,
    /// Give up when the next wait would end later than this after the call started.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    /// For one Mac's enrollment: 6 attempts within 2 minutes, then the engine takes over.
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(60),
            max_elapsed: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// For many Macs sharing one tenant's rate limit: slower start, more patience.
    pub fn fleet() -> Self {
        Self {
            max_attempts: 10,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            max_elapsed: Duration::from_secs(600),
        }
    }

    /// For tests against local servers: millisecond backoffs.
    pub fn fast() -> Self {
        Self {
            max_attempts: 4,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(10),
            max_elapsed: Duration::from_secs(60),
        }
    }

    /// The upper bound of the wait before retry number `retry` (0-based): `min(cap, base·2^retry)`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(30));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// "Full jitter" backoff: uniformly random in `[0, ceiling(retry)]`, which spreads a fleet
    /// of clients instead of having them retry in lockstep.
    pub fn backoff(&self, retry: u32) -> Duration {
        uniform_up_to(self.ceiling(retry))
    }

    /// The wait before retry number `retry` after the server said `Retry-After: retry_after`:
    /// never less than `retry_after`, plus a random share of up to `min(retry_after,
    /// ceiling(retry))`. A rate-limited API tells every client it throttled in the same second
    /// the same whole number of seconds; honouring it to the millisecond brings them all back
    /// at once, where most are throttled again while the tokens of the quiet time in between
    /// are lost (a full bucket does not fill further). The jitter spreads them over the window
    /// after the one they were given.
    pub fn after_retry_after(&self, retry_after: Duration, retry: u32) -> Duration {
        retry_after + uniform_up_to(retry_after.min(self.ceiling(retry)))
    }
}

/// Uniformly random in `[0, max]`.
fn uniform_up_to(max: Duration) -> Duration {
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::rng().random_range(0..=nanos))
}

/// Parses `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3), relative to `now`.
/// A date in the past means "now". `None` when the value is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let when = httpdate::parse_http_date(value).ok()?;
        when.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Sets the Mac's clock when JumpCloud rejects a signature (our `Date` may be off).
#[async_trait]
pub trait ClockSync: Send + Sync {
    async fn sync_clock(&self) -> Result<(), HostError>;
}

/// [`ClockSync`] through the host adapter: `sntp -sS <NTPServer>` (SPEC §4).
pub struct HostClock {
    host: Arc<dyn Host>,
    server: String,
}

impl HostClock {
    pub fn new(host: Arc<dyn Host>, server: impl Into<String>) -> Self {
        Self {
            host,
            server: server.into(),
        }
    }
}

#[async_trait]
impl ClockSync for HostClock {
    async fn sync_clock(&self) -> Result<(), HostError> {
        self.host.sync_clock(&self.server).await
    }
}

/// Connect and request timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: CONNECT_TIMEOUT,
            request: REQUEST_TIMEOUT,
        }
    }
}

/// How to build a [`Client`]. Start from [`ClientOptions::new`] or
/// [`ClientOptions::from_config`] and set what you have.
#[derive(Clone)]
pub struct ClientOptions {
    /// `APIBaseURL`, e.g. `https://console.jumpcloud.com` (any path is ignored).
    pub base_url: Url,
    pub api_key: Option<SecretString>,
    /// Sent as `x-org-id` on admin calls.
    pub org_id: Option<String>,
    pub system: Option<SystemIdentity>,
    pub retry: RetryPolicy,
    pub clock_sync: Option<Arc<dyn ClockSync>>,
    pub timeouts: Timeouts,
    /// Configuration key of each group id the client may be asked about, so a 404 names it
    /// (`EnrollmentGroupID 5f… does not exist in this organisation: check EnrollmentGroupID`).
    pub group_keys: BTreeMap<String, &'static str>,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("org_id", &self.org_id)
            .field("system", &self.system)
            .field("retry", &self.retry)
            .field("clock_sync", &self.clock_sync.is_some())
            .field("timeouts", &self.timeouts)
            .field("group_keys", &self.group_keys)
            .finish()
    }
}

impl ClientOptions {
    /// Nothing but the base URL; default retries and timeouts.
    pub fn new(base_url: Url) -> Self {
        Self {
            base_url,
            api_key: None,
            org_id: None,
            system: None,
            retry: RetryPolicy::default(),
            clock_sync: None,
            timeouts: Timeouts::default(),
            group_keys: BTreeMap::new(),
        }
    }

    /// Base URL, `OrgID` and the group keys from the configuration. The API key (whose source
    /// may be the keychain) and the system identity are the caller's to add.
    pub fn from_config(config: &Config) -> Self {
        let mut options = Self::new(config.api_base_url.clone());
        options.org_id = config.org_id.as_ref().map(ToString::to_string);
        if let Some(g) = &config.enrollment_group_id {
            options
                .group_keys
                .insert(g.to_string(), "EnrollmentGroupID");
        }
        if let Some(g) = &config.post_enrollment_group_id {
            options
                .group_keys
                .insert(g.to_string(), "PostEnrollmentGroupID");
        }
        options
    }
}

/// Which credentials a call is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    Admin,
    System,
}

/// What repeating a call after a lost answer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Reads, and writes where "already done" is success (adds: 409, removes: 404, PUT of the
    /// same description): retried freely.
    Repeatable,
    /// The password set: history rules may reject a repeat, so after an uncertain failure the
    /// result is read back instead (SPEC §5). Retried only when the request surely did not
    /// reach the server (connect error) or was refused unprocessed (429).
    CheckFirst,
}

/// One request as the retry loop sees it.
struct Call {
    /// Short name for logs, counts and errors, e.g. `join a system group`.
    name: &'static str,
    method: Method,
    /// Path and query exactly as sent and signed, e.g. `/api/v2/systems/x/memberof?limit=100`.
    path: String,
    body: Option<Vec<u8>>,
    auth: Auth,
    effect: Effect,
    /// What a 404 means, for [`JcError::NotFound`]: (what, config key).
    missing: Option<(String, String)>,
    /// Send `x-org-id` (when set) on this admin call.
    org_header: bool,
}

impl Call {
    fn new(name: &'static str, method: Method, path: String, auth: Auth) -> Self {
        Self {
            name,
            method,
            path,
            body: None,
            auth,
            effect: Effect::Repeatable,
            missing: None,
            org_header: true,
        }
    }

    fn body(mut self, body: &impl Serialize) -> Result<Self, JcError> {
        let bytes = serde_json::to_vec(body).map_err(|err| JcError::Protocol {
            call: self.name.to_owned(),
            detail: format!("cannot encode the request: {err}"),
        })?;
        self.body = Some(bytes);
        Ok(self)
    }

    fn missing(mut self, what: impl Into<String>, key: impl Into<String>) -> Self {
        self.missing = Some((what.into(), key.into()));
        self
    }

    fn check_first(mut self) -> Self {
        self.effect = Effect::CheckFirst;
        self
    }

    fn label(&self) -> String {
        let path = self.path.split('?').next().unwrap_or(&self.path);
        format!("{} [{} {path}]", self.name, self.method)
    }
}

/// A server answer that the retry loop hands back.
struct Answer {
    status: StatusCode,
    body: Bytes,
    /// Sent with the admin key (else with the system signature).
    admin: bool,
}

/// Why one attempt failed in a retryable way.
enum Failure {
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    Network(reqwest::Error),
}

impl Failure {
    /// True when the request certainly had no effect: never connected, or refused with 429.
    fn surely_not_applied(&self) -> bool {
        match self {
            Failure::Status { status, .. } => *status == StatusCode::TOO_MANY_REQUESTS,
            Failure::Network(err) => err.is_connect(),
        }
    }

    fn describe(&self, host: &str) -> String {
        match self {
            Failure::Status { status, .. } => format!("HTTP {} from {host}", status.as_u16()),
            Failure::Network(err) if err.is_timeout() => format!("{host} did not answer in time"),
            Failure::Network(err) if err.is_connect() => {
                format!("cannot connect to {host}: check the network, proxy and firewall")
            }
            Failure::Network(err) => format!("connection to {host} failed: {}", error_chain(err)),
        }
    }
}

/// An error and its sources on one line (reqwest's own message is terse).
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        out.push_str(": ");
        out.push_str(&inner.to_string());
        source = inner.source();
    }
    out
}

/// Credentials and ids that can change during a run.
#[derive(Default)]
struct State {
    api_key: Option<SecretString>,
    org_id: Option<String>,
    system: Option<SystemIdentity>,
    /// Set when only the id is known (admin-only mode without the agent's key).
    system_key: Option<String>,
}

struct Inner {
    http: reqwest::Client,
    /// `scheme://host[:port]`, no trailing slash.
    origin: String,
    /// Host name for messages, e.g. `console.jumpcloud.com`.
    host: String,
    retry: RetryPolicy,
    clock_sync: Option<Arc<dyn ClockSync>>,
    group_keys: BTreeMap<String, &'static str>,
    state: RwLock<State>,
    /// One clock sync per client (SPEC §5: "one sntp").
    clock_synced: AtomicBool,
    /// System calls go with the admin key from now on.
    admin_fallback: AtomicBool,
    requests: AtomicU64,
    per_call: Mutex<BTreeMap<&'static str, u64>>,
    /// No request before this instant: the end of the last `Retry-After` window.
    not_before: Mutex<Option<Instant>>,
}

/// The JumpCloud client. Cheap to clone: clones share credentials, counters and the
/// `Retry-After` window.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("origin", &self.inner.origin)
            .field("requests_sent", &self.requests_sent())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds the HTTPS client (rustls, platform verifier). Fails only when TLS cannot be set up.
    pub fn new(options: ClientOptions) -> Result<Self, JcError> {
        let http = reqwest::Client::builder()
            .user_agent(crate::USER_AGENT)
            .connect_timeout(options.timeouts.connect)
            .timeout(options.timeouts.request)
            // Never follow a redirect: reqwest would carry `x-api-key` (a custom header) and, on
            // 307/308, the password body to wherever it points. JumpCloud's API does not
            // redirect; a 3xx is an answer we report, not a place we go.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| JcError::Setup(error_chain(&err)))?;
        let origin = options.base_url.origin().ascii_serialization();
        let host = options
            .base_url
            .host_str()
            .unwrap_or("JumpCloud")
            .to_owned();
        let system_key = options.system.as_ref().map(|s| s.system_key.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                origin,
                host,
                retry: options.retry,
                clock_sync: options.clock_sync,
                group_keys: options.group_keys,
                state: RwLock::new(State {
                    api_key: options.api_key,
                    org_id: options.org_id,
                    system: options.system,
                    system_key,
                }),
                clock_synced: AtomicBool::new(false),
                admin_fallback: AtomicBool::new(false),
                requests: AtomicU64::new(0),
                per_call: Mutex::new(BTreeMap::new()),
                not_before: Mutex::new(None),
            }),
        })
    }

    /// Sets `x-org-id` for later admin calls (e.g. once the agent's `ldap_domain` is read).
    pub fn set_org_id(&self, org_id: impl Into<String>) {
        self.write_state().org_id = Some(org_id.into());
    }

    /// Sets this Mac's identity once the agent has registered.
    pub fn set_system(&self, system: SystemIdentity) {
        let mut state = self.write_state();
        state.system_key = Some(system.system_key.clone());
        state.system = Some(system);
    }

    /// Sets only the system id, for admin-key-only operation (no usable `client.key`).
    pub fn set_system_key(&self, system_key: impl Into<String>) {
        self.write_state().system_key = Some(system_key.into());
    }

    /// Sets the admin API key (e.g. once it appears in the keychain).
    pub fn set_api_key(&self, api_key: SecretString) {
        self.write_state().api_key = Some(api_key);
    }

    /// True once system calls have switched to the admin key (system context refused).
    pub fn uses_admin_fallback(&self) -> bool {
        self.inner.admin_fallback.load(Ordering::Relaxed)
    }

    /// Requests sent so far, per call name (every attempt counts).
    pub fn request_counts(&self) -> BTreeMap<&'static str, u64> {
        self.inner
            .per_call
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The API host, as named in messages.
    pub fn host(&self) -> &str {
        &self.inner.host
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn system_key(&self, call: &str) -> Result<String, JcError> {
        self.read_state().system_key.clone().ok_or_else(|| {
            JcError::Credentials(format!(
                "{call} needs this Mac's systemKey, and the agent has not registered yet ({} has none)",
                crate::paths::mac::JC_AGENT_CONF
            ))
        })
    }

    /// No agent key loaded but an API key is: system calls go with the admin key (SPEC §5
    /// allows it for systems that cannot use system context).
    fn admin_only(&self) -> bool {
        let state = self.read_state();
        state.system.is_none() && state.api_key.is_some()
    }

    fn group_key(&self, group: &ObjectId) -> &'static str {
        self.inner
            .group_keys
            .get(group.as_str())
            .copied()
            .unwrap_or("the group ID in the configuration")
    }

    /// Waits out the `Retry-After` window, if one is open.
    async fn wait_not_before(&self) {
        let until = *self
            .inner
            .not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(until) = until {
            tokio::time::sleep_until(until).await;
        }
    }

    fn extend_not_before(&self, until: Instant) {
        let mut slot = self
            .inner
            .not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_none_or(|current| current < until) {
            *slot = Some(until);
        }
    }

    /// Sends one attempt. The outer `Err` is a local problem (no credentials); the inner one a
    /// network failure.
    async fn send_once(
        &self,
        call: &Call,
        admin: bool,
    ) -> Result<Result<(Answer, Option<Duration>), reqwest::Error>, JcError> {
        let url = format!("{}{}", self.inner.origin, call.path);
        let mut request = self
            .inner
            .http
            .request(call.method.clone(), url)
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/json");
        if admin {
            let (key, org) = {
                let state = self.read_state();
                (state.api_key.clone(), state.org_id.clone())
            };
            let key = key.ok_or_else(|| JcError::NoApiKey { call: call.label() })?;
            let mut value =
                HeaderValue::from_str(key.expose_secret()).map_err(|_| JcError::MalformedApiKey)?;
            value.set_sensitive(true);
            request = request.header("x-api-key", value);
            if let Some(org) = org.filter(|_| call.org_header) {
                let value = HeaderValue::from_str(&org).map_err(|_| JcError::Protocol {
                    call: call.label(),
                    detail: "the organisation id cannot be sent in a header: check OrgID"
                        .to_owned(),
                })?;
                request = request.header("x-org-id", value);
            }
        } else {
            let system = self.read_state().system.clone().ok_or_else(|| {
                JcError::Credentials(format!(
                    "{} needs the agent's key {}, which is not loaded",
                    call.label(),
                    crate::paths::mac::JC_CLIENT_KEY
                ))
            })?;
            let date = http_date(SystemTime::now());
            let mut auth = HeaderValue::from_str(&system.authorization(
                call.method.as_str(),
                &call.path,
                &date,
            ))
            .map_err(|_| JcError::Credentials("the signature header is malformed".to_owned()))?;
            auth.set_sensitive(true);
            request = request.header(DATE, date).header(AUTHORIZATION, auth);
        }
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        *self
            .inner
            .per_call
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(call.name)
            .or_default() += 1;
        debug!(
            call = call.name,
            method = %call.method,
            path = %call.path,
            auth = if admin { "admin" } else { "system" },
            "JumpCloud request"
        );
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => return Ok(Err(err)),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(err) => return Ok(Err(err)),
        };
        debug!(
            call = call.name,
            status = status.as_u16(),
            "JumpCloud answer"
        );
        Ok(Ok((
            Answer {
                status,
                body,
                admin,
            },
            retry_after,
        )))
    }

    /// Runs a call with the retry, clock-sync and admin-fallback rules of SPEC §5. Returns
    /// every answer that is not retryable (including 4xx) for the caller to interpret.
    async fn execute(&self, call: &Call) -> Result<Answer, JcError> {
        let started = Instant::now();
        let mut retries = 0u32;
        let mut admin_now = false;
        loop {
            self.wait_not_before().await;
            let admin = call.auth == Auth::Admin
                || admin_now
                || self.inner.admin_fallback.load(Ordering::Relaxed)
                || self.admin_only();
            let failure = match self.send_once(call, admin).await? {
                Ok((answer, retry_after)) => {
                    let status = answer.status;
                    if status == StatusCode::UNAUTHORIZED && !admin {
                        if self.try_clock_sync(call).await {
                            continue;
                        }
                        if self.read_state().api_key.is_some() {
                            admin_now = true;
                            continue;
                        }
                        return Err(JcError::SignatureRejected {
                            host: self.inner.host.clone(),
                            system_key: self.system_key(call.name).unwrap_or_default(),
                        });
                    }
                    // Only an answer that passed authentication proves the key works.
                    let key_works = !matches!(
                        status,
                        StatusCode::UNAUTHORIZED
                            | StatusCode::FORBIDDEN
                            | StatusCode::TOO_MANY_REQUESTS
                    ) && !status.is_server_error();
                    if admin_now
                        && key_works
                        && !self.inner.admin_fallback.swap(true, Ordering::Relaxed)
                    {
                        warn!(
                            call = call.name,
                            "JumpCloud refused this Mac's system-context signature; using the admin API key for system calls for the rest of the run (ADE-enrolled Macs may not be eligible for system context)"
                        );
                    }
                    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                        Failure::Status {
                            status,
                            retry_after,
                        }
                    } else {
                        return Ok(answer);
                    }
                }
                Err(err) => Failure::Network(err),
            };
            let what = failure.describe(&self.inner.host);
            if call.effect == Effect::CheckFirst && !failure.surely_not_applied() {
                warn!(call = call.name, cause = %what, "answer lost; the result must be read back before repeating");
                return Err(JcError::Uncertain {
                    call: call.label(),
                    what,
                });
            }
            retries += 1;
            let retry_after = match &failure {
                Failure::Status { retry_after, .. } => *retry_after,
                Failure::Network(_) => None,
            };
            let wait = match retry_after {
                Some(window) => self.inner.retry.after_retry_after(window, retries - 1),
                None => self.inner.retry.backoff(retries - 1),
            };
            if let Some(window) = retry_after {
                // Honoured by every later request of this client, not just this call's retry.
                self.extend_not_before(Instant::now() + window);
            }
            let out_of_time = started.elapsed() + wait > self.inner.retry.max_elapsed;
            if retries >= self.inner.retry.max_attempts || out_of_time {
                warn!(call = call.name, attempts = retries, cause = %what, "giving up for now");
                return Err(JcError::Transient {
                    what: format!("{what} on {} after {retries} attempts", call.label()),
                });
            }
            info!(
                call = call.name,
                cause = %what,
                retry = retries,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// The first system-context 401 of the run: sync the clock once and say whether to retry.
    async fn try_clock_sync(&self, call: &Call) -> bool {
        let Some(clock) = &self.inner.clock_sync else {
            return false;
        };
        if self.inner.clock_synced.swap(true, Ordering::Relaxed) {
            return false;
        }
        warn!(
            call = call.name,
            "JumpCloud refused the system-context signature; syncing the clock once in case the Date is off"
        );
        match clock.sync_clock().await {
            Ok(()) => info!("clock synced"),
            Err(err) => warn!(error = %err, "clock sync failed; retrying anyway"),
        }
        true
    }

    /// The error for a non-success answer: typed 401/403/404, else `Rejected` with the server's
    /// message (scrubbed of `secrets`).
    fn failure(&self, call: &Call, answer: &Answer, secrets: &[&str]) -> JcError {
        let host = self.inner.host.clone();
        match answer.status {
            StatusCode::UNAUTHORIZED => JcError::ApiKeyRejected { host },
            StatusCode::FORBIDDEN if answer.admin => JcError::Forbidden {
                host,
                what: call.label(),
            },
            StatusCode::NOT_FOUND if call.missing.is_some() => {
                let (what, key) = call.missing.clone().unwrap_or_default();
                JcError::NotFound { what, key }
            }
            status => JcError::Rejected {
                status: status.as_u16(),
                call: call.label(),
                detail: self.detail(&answer.body, secrets),
            },
        }
    }

    /// The server's message from an error body, short and without secrets.
    fn detail(&self, body: &[u8], secrets: &[&str]) -> String {
        let parsed: wire::ErrorBody = serde_json::from_slice(body).unwrap_or_default();
        let mut text = match (parsed.message, parsed.error) {
            (Some(m), Some(e)) if m != e => format!("{m} ({e})"),
            (Some(m), _) => m,
            (None, Some(e)) => e,
            // A body we cannot read as a message may echo the request in any encoding: never
            // show it for a call that carried a secret (the password).
            (None, None) if !secrets.is_empty() => String::new(),
            (None, None) => String::from_utf8_lossy(body).into_owned(),
        };
        let key = self.read_state().api_key.clone();
        let key = key.as_ref().map(|k| k.expose_secret().to_owned());
        for secret in secrets.iter().copied().chain(key.as_deref()) {
            if secret.is_empty() {
                continue;
            }
            text = text.replace(secret, "<redacted>");
            // As it appears inside a JSON string (a quote, a backslash or a control
            // character escaped).
            let escaped = serde_json::to_string(secret).unwrap_or_default();
            let escaped = escaped.trim_matches('"');
            if !escaped.is_empty() {
                text = text.replace(escaped, "<redacted>");
            }
        }
        let mut text: String = text.chars().filter(|c| !c.is_control()).take(300).collect();
        if text.is_empty() {
            "no message".clone_into(&mut text);
        }
        text
    }

    fn parse<T: DeserializeOwned>(call: &Call, answer: &Answer) -> Result<T, JcError> {
        serde_json::from_slice(&answer.body).map_err(|err| JcError::Protocol {
            call: call.label(),
            detail: err.to_string(),
        })
    }

    /// A v2 list read through every page. The first request is the call exactly as SPEC §5
    /// lists it (`path`, plus `query` when given, e.g. `targets=user`), which returns the
    /// spec's default page of [`DEFAULT_PAGE`]; only a full page is followed by more, with
    /// `limit`/`skip` (v2.json `trait:limit`, `trait:skip`).
    async fn list_all<T: DeserializeOwned>(
        &self,
        name: &'static str,
        path: &str,
        query: &str,
        missing: (String, String),
    ) -> Result<Vec<T>, JcError> {
        let mut all = Vec::new();
        loop {
            let skip = all.len();
            let (target, limit) = match (skip, query) {
                (0, "") => (path.to_owned(), DEFAULT_PAGE),
                (0, q) => (format!("{path}?{q}"), DEFAULT_PAGE),
                (_, "") => (format!("{path}?limit={PAGE}&skip={skip}"), PAGE),
                (_, q) => (format!("{path}?{q}&limit={PAGE}&skip={skip}"), PAGE),
            };
            let call = Call::new(name, Method::GET, target, Auth::System)
                .missing(missing.0.clone(), missing.1.clone());
            let answer = self.execute(&call).await?;
            if !answer.status.is_success() {
                return Err(self.failure(&call, &answer, &[]));
            }
            let page: Vec<T> = Self::parse(&call, &answer)?;
            let full = page.len() >= limit;
            if full && skip >= MAX_LISTED {
                // A server that ignores `skip` would otherwise keep us here for ever.
                return Err(JcError::Protocol {
                    call: call.label(),
                    detail: format!("more than {MAX_LISTED} entries; the list does not end"),
                });
            }
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    }

    fn this_system_missing(sys: &str) -> (String, String) {
        (
            format!("this Mac's system {sys}"),
            format!(
                "the agent registration (systemKey in {})",
                crate::paths::mac::JC_AGENT_CONF
            ),
        )
    }

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
            // SPEC §5: "already done" is success.
            StatusCode::CONFLICT if op == "add" => {
                debug!(%group, "already a member");
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
            // SPEC §5: "an existing bind counts as done" (409 on an association add). Its sudo
            // right is left as the admin set it; the engine's read-back logs a difference.
            StatusCode::CONFLICT => {
                debug!(user, "already bound");
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
        .body(&wire::ActivateBody {})?
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
            Ok(())
        } else {
            Err(self.failure(&call, &answer, &[password.expose_secret()]))
        }
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

    fn requests_sent(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    fn set_org_id(&self, org_id: &str) {
        self.write_state().org_id = Some(org_id.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_full_jitter_under_an_exponential_ceiling() {
        let p = RetryPolicy::default();
        assert_eq!(p.ceiling(0), Duration::from_millis(500));
        assert_eq!(p.ceiling(3), Duration::from_secs(4));
        assert_eq!(p.ceiling(20), Duration::from_secs(60));
        assert_eq!(p.ceiling(u32::MAX), Duration::from_secs(60));
        let samples: Vec<Duration> = (0..200).map(|_| p.backoff(4)).collect();
        assert!(samples.iter().all(|d| *d <= Duration::from_secs(8)));
        // Full jitter spreads: not all samples are in the top half.
        assert!(samples.iter().any(|d| *d < Duration::from_secs(4)));
        assert!(samples.iter().any(|d| *d >= Duration::from_secs(4)));
    }

    #[test]
    fn retry_after_is_a_lower_bound_with_bounded_jitter() {
        let p = RetryPolicy::fleet();
        let window = Duration::from_secs(1);
        let waits: Vec<Duration> = (0..200).map(|_| p.after_retry_after(window, 0)).collect();
        assert!(waits.iter().all(|w| *w >= window && *w <= 2 * window));
        // Spread, not lockstep: some come back early in the next second, some late.
        assert!(waits.iter().any(|w| *w < Duration::from_millis(1500)));
        assert!(waits.iter().any(|w| *w >= Duration::from_millis(1500)));
        // The jitter is bounded by the backoff ceiling too (millisecond test policies).
        let fast = RetryPolicy::fast();
        let w = fast.after_retry_after(window, 0);
        assert!(w >= window && w <= window + fast.ceiling(0), "{w:?}");
        assert_eq!(p.after_retry_after(Duration::ZERO, 5), Duration::ZERO);
    }

    #[test]
    fn retry_after_seconds_and_http_date() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_795_595_400);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 08:30:42 GMT", now),
            Some(Duration::from_secs(42))
        );
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
    }

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
