//! The JumpCloud agent's files under `--root` (lead's shim; replaced by the host branch).

use std::path::PathBuf;

use secrecy::SecretString;
use url::Url;

use super::HostError;
use crate::paths::{mac, Root};

/// Parsed `/opt/jc/jcagent.conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConf {
    pub system_key: String,
    pub org_id: Option<String>,
}

/// Reads the agent's files.
#[derive(Debug, Clone)]
pub struct AgentFiles {
    root: Root,
}

fn io(path: PathBuf) -> impl FnOnce(std::io::Error) -> HostError {
    move |source| HostError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl AgentFiles {
    pub fn new(root: Root) -> Self {
        Self { root }
    }

    pub fn read_conf(&self) -> Result<Option<AgentConf>, HostError> {
        let path = self.root.resolve(mac::JC_AGENT_CONF);
        let Ok(bytes) = std::fs::read(&path) else {
            return Ok(None);
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            return Ok(None);
        };
        let Some(key) = v.get("systemKey").and_then(|k| k.as_str()) else {
            return Ok(None);
        };
        let domain = v
            .get("ldap_domain")
            .or_else(|| v.get("userMgmt").and_then(|u| u.get("ldap_domain")))
            .and_then(|d| d.as_str())
            .unwrap_or("");
        let org = domain.split('.').next().filter(|o| o.len() == 24);
        Ok(Some(AgentConf {
            system_key: key.to_owned(),
            org_id: org.map(str::to_owned),
        }))
    }

    pub fn read_client_key(&self) -> Result<SecretString, HostError> {
        let path = self.root.resolve(mac::JC_CLIENT_KEY);
        let text = std::fs::read_to_string(&path).map_err(io(path))?;
        Ok(SecretString::from(text))
    }

    pub fn write_bootstrap(
        &self,
        public_url: &str,
        private_url: &str,
        connect_key: &SecretString,
    ) -> Result<(), HostError> {
        use secrecy::ExposeSecret;
        let path = self.root.resolve(mac::JC_BOOTSTRAP);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir.to_owned()))?;
        }
        let body = serde_json::json!({
            "publicKickstartUrl": public_url,
            "privateKickstartUrl": private_url,
            "connectKey": connect_key.expose_secret(),
        });
        std::fs::write(&path, body.to_string()).map_err(io(path))
    }

    /// Size of `/var/log/jcagent.log` now (0 when missing).
    pub fn log_len(&self) -> u64 {
        std::fs::metadata(self.root.resolve(mac::JC_AGENT_LOG)).map_or(0, |m| m.len())
    }

    /// The log's text from `offset` on.
    pub fn log_since(&self, offset: u64) -> String {
        let text = std::fs::read(self.root.resolve(mac::JC_AGENT_LOG)).unwrap_or_default();
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(text.len());
        String::from_utf8_lossy(&text[start..]).into_owned()
    }
}

/// Kickstart URLs for the region of `api_base`.
pub fn kickstart_urls(api_base: &Url) -> (String, String) {
    if api_base.host_str().is_some_and(|h| h.contains(".eu.")) {
        (
            "https://kickstart.eu.jumpcloud.com:443".into(),
            "https://private-kickstart.eu.jumpcloud.com:443".into(),
        )
    } else {
        (
            "https://kickstart.jumpcloud.com:443".into(),
            "https://private-kickstart.jumpcloud.com:443".into(),
        )
    }
}
