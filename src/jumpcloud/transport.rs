//! The transport of the JumpCloud client: the HTTPS clients, both auth modes (admin key and
//! system-context signature), and the retry loop with the clock-sync and admin-fallback rules
//! of SPEC §5. The typed calls are in [`super::client`].
//!
//! Auth: admin calls carry `x-api-key` (+ `x-org-id`); system calls carry a `Date` and an HTTP
//! signature made with the agent's key ([`super::signing`]). What the options did not give is
//! asked of the provider ([`super::Auth`]) when a call needs it. A 401 on a system call first
//! gets one clock sync ([`ClockSync`], backed by `sntp` in the wiring layer) and a retry; if it
//! is still refused, system context counts as refused for the rest of the run: the call is
//! repeated with the admin key when one is available (the provider is told, once), and every
//! later system call goes with the admin key from the first request (systems enrolled through
//! ADE may not be eligible for system context: v1.json info text). Without a key it is
//! [`JcError::SignatureRejected`], and later system calls fail the same way at once until a key
//! is available.
//!
//! Retries: connection errors, timeouts, 5xx and 429 are retried with exponential backoff and
//! full jitter (capped), honouring `Retry-After` (seconds or HTTP-date, RFC 9110 §10.2.3) for
//! every later request of this client too, so none is sent inside a window the server gave; the
//! retry itself comes a random share later than the window's end, so a throttled fleet does not
//! return in lockstep ([`super::retry`]).
//! A call marked "check first" (the password set) is never blindly repeated after an uncertain
//! failure: it returns [`JcError::Uncertain`] and the engine reads the result back first
//! (SPEC §5).
//!
//! Secrets: the API key and signatures go into headers marked sensitive, the password only into
//! the request body; none of them is logged or put into an error (server messages are scrubbed).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, DATE, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::auth::Auth as Provider;
use super::options::{ClientOptions, ClockSync};
use super::retry::{parse_retry_after, RetryPolicy};
use super::signing::{http_date, SystemIdentity};
use super::wire;
use super::JcError;
use crate::config::ObjectId;

/// Page size of v2 list reads after the first page (the spec's maximum).
const PAGE: usize = 100;
/// Page size when no `limit` is sent (v2.json `trait:limit:limit` default).
const DEFAULT_PAGE: usize = 10;
/// Entries read from one v2 list before it is taken as endless (a system has a handful of
/// groups and users).
const MAX_LISTED: usize = 10_000;

/// Which credentials a call is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Auth {
    Admin,
    System,
}

/// What repeating a call after a lost answer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    /// Reads, and writes where "already done" is success (adds: 409, removes: 404, PUT of the
    /// same description): retried freely.
    Repeatable,
    /// The password set: history rules may reject a repeat, so after an uncertain failure the
    /// result is read back instead (SPEC §5). Retried only when the request surely did not
    /// reach the server (connect error) or was refused unprocessed (429).
    CheckFirst,
}

/// One request as the retry loop sees it.
pub(super) struct Call {
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
    pub(super) org_header: bool,
}

impl Call {
    pub(super) fn new(name: &'static str, method: Method, path: String, auth: Auth) -> Self {
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

    pub(super) fn body(mut self, body: &impl Serialize) -> Result<Self, JcError> {
        let bytes = serde_json::to_vec(body).map_err(|err| JcError::Protocol {
            call: self.name.to_owned(),
            detail: format!("cannot encode the request: {err}"),
        })?;
        self.body = Some(bytes);
        Ok(self)
    }

    pub(super) fn missing(mut self, what: impl Into<String>, key: impl Into<String>) -> Self {
        self.missing = Some((what.into(), key.into()));
        self
    }

    pub(super) fn check_first(mut self) -> Self {
        self.effect = Effect::CheckFirst;
        self
    }

    pub(super) fn label(&self) -> String {
        let path = self.path.split('?').next().unwrap_or(&self.path);
        format!("{} [{} {path}]", self.name, self.method)
    }
}

/// A server answer that the retry loop hands back.
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) body: Bytes,
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

/// Credentials and ids: what the options gave, and what the provider gave since (kept).
#[derive(Default)]
pub(super) struct State {
    api_key: Option<SecretString>,
    pub(super) org_id: Option<String>,
    system: Option<SystemIdentity>,
    system_key: Option<String>,
}

struct Inner {
    /// For admin calls: HTTP/2 when the server offers it, else HTTP/1.1.
    http: reqwest::Client,
    /// For system-context (signed) calls: HTTP/1.1 only, see [`Client::new`].
    http1: reqwest::Client,
    /// `scheme://host[:port]`, no trailing slash.
    origin: String,
    /// Host name for messages, e.g. `console.jumpcloud.com`.
    host: String,
    retry: RetryPolicy,
    clock_sync: Option<Arc<dyn ClockSync>>,
    group_keys: BTreeMap<String, &'static str>,
    state: RwLock<State>,
    /// Asked for what `state` lacks; told of the admin fallback.
    auth: Arc<dyn Provider>,
    /// One clock sync per client (SPEC §5: "one sntp").
    clock_synced: AtomicBool,
    /// A system call got 401 after the clock sync: system calls go with the admin key from
    /// now on (or fail at once while there is none).
    system_refused: AtomicBool,
    /// The provider was told of the fallback ([`Provider::fell_back_to_admin`]).
    fallback_told: AtomicBool,
    requests: AtomicU64,
    per_call: Mutex<BTreeMap<&'static str, u64>>,
    /// No request before this instant: the end of the last `Retry-After` window.
    not_before: Mutex<Option<Instant>>,
}

/// The JumpCloud client. Cheap to clone: clones share credentials, counters, the clock sync,
/// the admin fallback and the `Retry-After` window. The engine builds one per run.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("origin", &self.inner.origin)
            .field("requests_sent", &self.sent())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds the HTTPS client (rustls, platform verifier). Fails only when TLS cannot be set up.
    pub fn new(options: ClientOptions) -> Result<Self, JcError> {
        let builder = || {
            reqwest::Client::builder()
                .user_agent(crate::USER_AGENT)
                .connect_timeout(options.timeouts.connect)
                .timeout(options.timeouts.request)
                // Never follow a redirect: reqwest would carry `x-api-key` (a custom header)
                // and, on 307/308, the password body to wherever it points. JumpCloud's API
                // does not redirect; a 3xx is an answer we report, not a place we go.
                .redirect(reqwest::redirect::Policy::none())
        };
        let http = builder()
            .build()
            .map_err(|err| JcError::Setup(error_chain(&err)))?;
        // The system-context signature covers the request line `"<METHOD> <path?query>
        // HTTP/1.1"` (v1.json info text; JumpCloud's ADMU signs exactly that string), so signed
        // requests must go as HTTP/1.1: over HTTP/2 there is no request line, and what the
        // server reconstructs need not be the one we signed. `http1_only` makes reqwest offer
        // only `http/1.1` in TLS ALPN (reqwest 0.13 `ClientBuilder::http1_only`, whose
        // `HttpVersionPref::Http1` sets `alpn_protocols = ["http/1.1"]`). Setting
        // `RequestBuilder::version(HTTP_11)` would not do: every request is HTTP/1.1 by
        // default, and hyper-util's pooled client sends it over an h2 connection all the same
        // (it only refuses the opposite, an HTTP/2 request on an HTTP/1 connection).
        let http1 = builder()
            .http1_only()
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
                http1,
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
                auth: options.auth,
                clock_synced: AtomicBool::new(false),
                system_refused: AtomicBool::new(false),
                fallback_told: AtomicBool::new(false),
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

    /// True once system calls have switched to the admin key (system context refused, in
    /// this run or, as the provider says, an earlier one).
    pub fn uses_admin_fallback(&self) -> bool {
        self.inner.fallback_told.load(Ordering::Relaxed) || self.inner.auth.admin_fallback()
    }

    /// System calls go with the admin key: refused in this run, or in an earlier one.
    fn system_refused(&self) -> bool {
        self.inner.system_refused.load(Ordering::Relaxed) || self.inner.auth.admin_fallback()
    }

    /// Requests sent so far (every attempt counts).
    pub(super) fn sent(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
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

    pub(super) fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn system_key(&self, call: &str) -> Result<String, JcError> {
        if let Some(key) = self.read_state().system_key.clone() {
            return Ok(key);
        }
        let key = self.inner.auth.system_key().ok_or_else(|| {
            JcError::Credentials(format!(
                "{call} needs this Mac's systemKey, and the agent has not registered yet ({} has none)",
                crate::paths::mac::JC_AGENT_CONF
            ))
        })?;
        self.write_state().system_key = Some(key.clone());
        Ok(key)
    }

    /// The admin API key: the one given or kept, else the provider's when it has one now.
    async fn api_key(&self) -> Result<Option<SecretString>, JcError> {
        if let Some(key) = self.read_state().api_key.clone() {
            return Ok(Some(key));
        }
        let key = self.inner.auth.api_key().await?;
        if let Some(key) = &key {
            self.write_state().api_key = Some(key.clone());
        }
        Ok(key)
    }

    /// The signing identity: the one given or kept, else the provider's.
    fn identity(&self) -> Result<Option<SystemIdentity>, JcError> {
        if let Some(system) = self.read_state().system.clone() {
            return Ok(Some(system));
        }
        let system = self.inner.auth.system_identity()?;
        if let Some(system) = &system {
            let mut state = self.write_state();
            state
                .system_key
                .get_or_insert_with(|| system.system_key.clone());
            state.system = Some(system.clone());
        }
        Ok(system)
    }

    /// `x-org-id`: the one given (options, [`Client::set_org_id`]), else the provider's.
    pub(super) fn org_id(&self) -> Option<String> {
        let given = self.read_state().org_id.clone();
        given.or_else(|| self.inner.auth.org_id())
    }

    /// How a system call goes: with the admin key when system context is refused, or when the
    /// agent's key is not to be had but an API key is (SPEC §5 allows it for systems that
    /// cannot use system context); else signed.
    async fn system_call_as_admin(&self) -> Result<bool, JcError> {
        if self.system_refused() {
            return Ok(true);
        }
        Ok(self.identity()?.is_none() && self.api_key().await?.is_some())
    }

    pub(super) fn group_key(&self, group: &ObjectId) -> &'static str {
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
        // Signed requests go over HTTP/1.1 only (see `Client::new`).
        let http = if admin {
            &self.inner.http
        } else {
            &self.inner.http1
        };
        let mut request = http
            .request(call.method.clone(), url)
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/json");
        if admin {
            let key = match self.api_key().await? {
                Some(key) => key,
                // System context refused and no key to fall back on (yet).
                None if call.auth == Auth::System => return Err(self.signature_rejected(call)),
                None => return Err(JcError::NoApiKey { call: call.label() }),
            };
            let org = self.org_id();
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
            let system = self.identity()?.ok_or_else(|| {
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
    pub(super) async fn execute(&self, call: &Call) -> Result<Answer, JcError> {
        let started = Instant::now();
        let mut retries = 0u32;
        loop {
            self.wait_not_before().await;
            let admin = call.auth == Auth::Admin || self.system_call_as_admin().await?;
            let failure = match self.send_once(call, admin).await? {
                Ok((answer, retry_after)) => {
                    let status = answer.status;
                    if status == StatusCode::UNAUTHORIZED && !admin {
                        if self.try_clock_sync(call).await {
                            continue;
                        }
                        // Refused with a clock just synced: system context is not for this
                        // Mac. The admin key from now on (asked of the provider on the next
                        // attempt), or `SignatureRejected` while there is none.
                        self.inner.system_refused.store(true, Ordering::Relaxed);
                        continue;
                    }
                    // Only an answer that passed authentication proves the key works.
                    let key_works = !matches!(
                        status,
                        StatusCode::UNAUTHORIZED
                            | StatusCode::FORBIDDEN
                            | StatusCode::TOO_MANY_REQUESTS
                    ) && !status.is_server_error();
                    if call.auth == Auth::System
                        && admin
                        && key_works
                        && self.inner.system_refused.load(Ordering::Relaxed)
                        && !self.inner.fallback_told.swap(true, Ordering::Relaxed)
                    {
                        warn!(
                            call = call.name,
                            "JumpCloud refused this Mac's system-context signature; using the admin API key for system calls for the rest of the run (ADE-enrolled Macs may not be eligible for system context)"
                        );
                        self.inner.auth.fell_back_to_admin();
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

    /// System context refused and no admin key to repeat the call with.
    fn signature_rejected(&self, call: &Call) -> JcError {
        JcError::SignatureRejected {
            host: self.inner.host.clone(),
            system_key: self.system_key(call.name).unwrap_or_default(),
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
    pub(super) fn failure(&self, call: &Call, answer: &Answer, secrets: &[&str]) -> JcError {
        let host = self.inner.host.clone();
        match answer.status {
            StatusCode::UNAUTHORIZED => JcError::ApiKeyRejected {
                host,
                // A call that never names the organisation (the list of them) needs none.
                org_missing: call.org_header && self.org_id().is_none(),
            },
            StatusCode::FORBIDDEN if answer.admin => JcError::Forbidden {
                host,
                what: call.label(),
            },
            // v1.json info text: "`404` Organization ID Not Found" for an `x-org-id` the key
            // does not know; whatever the call, the organisation is what is missing.
            StatusCode::NOT_FOUND if answer.admin && self.org_not_found(call, &answer.body) => {
                let org = self.org_id().unwrap_or_default();
                JcError::NotFound {
                    what: format!("the organisation {org} (sent as x-org-id)"),
                    key: "OrgID".to_owned(),
                }
            }
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

    /// Whether a 404 to an admin call that carried `x-org-id` says the organisation is unknown.
    fn org_not_found(&self, call: &Call, body: &[u8]) -> bool {
        if !call.org_header || self.org_id().is_none() {
            return false;
        }
        let parsed: wire::ErrorBody = serde_json::from_slice(body).unwrap_or_default();
        [parsed.message, parsed.error]
            .into_iter()
            .flatten()
            .any(|m| m.to_ascii_lowercase().contains("organization"))
    }

    /// The server's message from an error body, short and without secrets.
    pub(super) fn detail(&self, body: &[u8], secrets: &[&str]) -> String {
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

    pub(super) fn parse<T: DeserializeOwned>(call: &Call, answer: &Answer) -> Result<T, JcError> {
        serde_json::from_slice(&answer.body).map_err(|err| JcError::Protocol {
            call: call.label(),
            detail: err.to_string(),
        })
    }

    /// A v2 list read through every page. The first request is the call exactly as SPEC §5
    /// lists it (`path`, plus `query` when given, e.g. `targets=user`), which returns the
    /// spec's default page of [`DEFAULT_PAGE`]; only a full page is followed by more, with
    /// `limit`/`skip` (v2.json `trait:limit`, `trait:skip`).
    pub(super) async fn list_all<T: DeserializeOwned>(
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

    pub(super) fn this_system_missing(sys: &str) -> (String, String) {
        (
            format!("this Mac's system {sys}"),
            format!(
                "the agent registration (systemKey in {})",
                crate::paths::mac::JC_AGENT_CONF
            ),
        )
    }
}
