//! How a JumpCloud [`super::Client`] is built: base URL, credentials (given, or a provider
//! asked lazily: [`super::Auth`]), retries, timeouts, the clock sync used when a signature is
//! refused, and the configuration key behind each group id.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use url::Url;

use super::auth::{Auth, NoAuth};
use super::retry::RetryPolicy;
use super::signing::SystemIdentity;
use crate::config::Config;
/// TCP/TLS connect timeout (SPEC §5 issue text: 10 s).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Whole-request timeout (30 s).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Sets the Mac's clock when JumpCloud rejects a signature (our `Date` may be off). The adapter
/// that runs `sntp` ([`crate::engine::connect::HostClock`]) lives in the wiring layer; its
/// failure is only logged, so any error type does.
#[async_trait]
pub trait ClockSync: Send + Sync {
    async fn sync_clock(&self) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
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
    /// The admin API key, when known up front; else [`ClientOptions::auth`] is asked.
    pub api_key: Option<SecretString>,
    /// Sent as `x-org-id` on admin calls (else [`Auth::org_id`]).
    pub org_id: Option<String>,
    /// This Mac's identity, when known up front; else [`ClientOptions::auth`] is asked.
    pub system: Option<SystemIdentity>,
    /// Asked for whatever credential the options above do not give, when a call needs it, and
    /// told when system calls fell back to the admin key. [`NoAuth`] by default.
    pub auth: Arc<dyn Auth>,
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
            .field("auth", &"<provider>")
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
            auth: Arc::new(NoAuth),
            retry: RetryPolicy::default(),
            clock_sync: None,
            timeouts: Timeouts::default(),
            group_keys: BTreeMap::new(),
        }
    }

    /// Base URL, `OrgID` and the group keys from the configuration. The API key (whose source
    /// may be the keychain) and the system identity are the caller's to add, or its provider's.
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
