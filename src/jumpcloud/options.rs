//! How a JumpCloud [`super::Client`] is built: base URL, credentials, retries, timeouts, the
//! clock sync used when a signature is refused, and the configuration key behind each group id.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use url::Url;

use super::retry::RetryPolicy;
use super::signing::SystemIdentity;
use crate::config::Config;
use crate::host::{Host, HostError};

/// TCP/TLS connect timeout (SPEC §5 issue text: 10 s).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Whole-request timeout (30 s).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// The decision "system calls go with the admin key" (system context refused), shared with
    /// the owner of the enrollment's state: true when it was taken earlier (so no signed
    /// attempt, no second 401 and no `sntp` after a restart), set by the client when it takes
    /// it. Each client has its own when `None`.
    pub admin_fallback: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
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
            .field("admin_fallback", &self.admin_fallback)
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
            admin_fallback: None,
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
