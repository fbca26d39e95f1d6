//! How the engine gets its JumpCloud client: the real HTTPS client, built for the credentials
//! of the moment, with `sntp` through the host when JumpCloud rejects our clock.

use std::sync::Arc;

use super::{Connect, Credentials};
use crate::config::Config;
use crate::host::Host;
use crate::jumpcloud::client::{Client, ClientOptions, HostClock};
use crate::jumpcloud::signing::SystemIdentity;
use crate::jumpcloud::Directory;

/// Builds JumpCloud clients for the engine.
pub fn connector(host: Arc<dyn Host>, config: &Config) -> Connect {
    let base = ClientOptions::from_config(config);
    let clock = Arc::new(HostClock::new(host, config.ntp_server.clone()));
    Box::new(move |creds: &Credentials| {
        let mut options = base.clone();
        options.base_url = creds.base_url.clone();
        options.api_key.clone_from(&creds.api_key);
        if creds.org_id.is_some() {
            options.org_id.clone_from(&creds.org_id);
        }
        options.clock_sync = Some(clock.clone());
        options.admin_fallback = Some(Arc::clone(&creds.fallback_flag));
        let mut system_key = None;
        if let Some((key, pem)) = &creds.system {
            if creds.admin_fallback && creds.api_key.is_some() {
                system_key = Some(key.clone());
            } else {
                options.system = Some(SystemIdentity::from_pem(key.clone(), pem)?);
            }
        }
        let client = Client::new(options)?;
        if let Some(key) = system_key {
            client.set_system_key(key);
        }
        Ok(Arc::new(client) as Arc<dyn Directory>)
    })
}
