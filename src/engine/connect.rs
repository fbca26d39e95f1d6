//! How the engine gets its JumpCloud client: the real HTTPS client, built once per run with
//! the engine's credentials provider ([`super::auth::EngineAuth`]) and `sntp` through the host
//! when JumpCloud rejects our clock ([`HostClock`]).

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::config::{Config, Identifier, ObjectId};
use crate::host::Host;
use crate::jumpcloud::client::{Client, ClientOptions};
use crate::jumpcloud::{
    Auth, Binding, ClockSync, Directory, DirectoryUser, JcError, OrgFacts, SystemFacts,
};

/// Builds the run's one JumpCloud client for a credentials provider.
pub type Connect =
    Box<dyn FnOnce(Arc<dyn Auth>) -> Result<Arc<dyn Directory>, JcError> + Send + 'static>;

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
    async fn sync_clock(&self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.host.sync_clock(&self.server).await?)
    }
}

/// The real client for `config`: its base URL, `OrgID` and group keys, the provider's
/// credentials, `sntp` through `host`.
pub fn connector(host: Arc<dyn Host>, config: &Config) -> Connect {
    let mut options = ClientOptions::from_config(config);
    options.clock_sync = Some(Arc::new(HostClock::new(host, config.ntp_server.clone())));
    Box::new(move |auth: Arc<dyn Auth>| {
        options.auth = auth;
        Ok(Arc::new(Client::new(options)?) as Arc<dyn Directory>)
    })
}

/// The client that could not be built (HTTPS could not be set up): every call fails with
/// that error, so the first step that needs JumpCloud stops with it and a reference code.
pub(crate) struct Unreachable {
    /// The [`JcError::Setup`] detail.
    detail: String,
}

impl Unreachable {
    pub(crate) fn new(err: JcError) -> Self {
        let detail = match err {
            JcError::Setup(detail) => detail,
            other => other.to_string(),
        };
        Self { detail }
    }

    fn fail<T>(&self) -> Result<T, JcError> {
        Err(JcError::Setup(self.detail.clone()))
    }
}

#[async_trait]
impl Directory for Unreachable {
    async fn add_system_to_group(&self, _: &ObjectId) -> Result<(), JcError> {
        self.fail()
    }
    async fn remove_system_from_group(&self, _: &ObjectId) -> Result<(), JcError> {
        self.fail()
    }
    async fn system_groups(&self) -> Result<Vec<String>, JcError> {
        self.fail()
    }
    async fn system(&self) -> Result<SystemFacts, JcError> {
        self.fail()
    }
    async fn org(&self, _: &ObjectId) -> Result<OrgFacts, JcError> {
        self.fail()
    }
    async fn find_users(&self, _: Identifier, _: &str) -> Result<Vec<DirectoryUser>, JcError> {
        self.fail()
    }
    async fn user(&self, _: &str) -> Result<DirectoryUser, JcError> {
        self.fail()
    }
    async fn activate_user(&self, _: &str) -> Result<(), JcError> {
        self.fail()
    }
    async fn set_password(&self, _: &str, _: &SecretString) -> Result<(), JcError> {
        self.fail()
    }
    async fn bind_user(&self, _: &str, _: bool) -> Result<(), JcError> {
        self.fail()
    }
    async fn bound_users(&self) -> Result<Vec<Binding>, JcError> {
        self.fail()
    }
    async fn report(&self, _: &str) -> Result<(), JcError> {
        self.fail()
    }
    async fn set_display_name(&self, _: &str) -> Result<(), JcError> {
        self.fail()
    }
    fn requests_sent(&self) -> u64 {
        0
    }
    fn set_org_id(&self, _: &str) {}
}
