//! `Agent`: where the JumpCloud agent package comes from and how long to wait for it.

use super::level::Level;
use super::Validator;
use crate::config::{AgentConfig, DEFAULT_AGENT_PACKAGE_URL};

impl Validator<'_> {
    pub(super) fn agent(&mut self, top: &mut Level<'_>) -> Option<AgentConfig> {
        let dict = self.dict(top, "Agent");
        let failed = top.has("Agent") && dict.is_none();
        let mut l = Level::new("Agent", dict);
        let package_url = self.url(&mut l, "PackageURL", DEFAULT_AGENT_PACKAGE_URL);
        let package_path = self.mac_path(&mut l, "PackagePath");
        let install_timeout = self.seconds(&mut l, "InstallTimeoutSeconds", 1, 600);
        let takeover_timeout = self.seconds(&mut l, "TakeoverTimeoutSeconds", 1, 600);
        self.close(&l);
        if failed {
            return None;
        }
        Some(AgentConfig {
            package_url: package_url?,
            package_path: package_path.ok()?,
            install_timeout: install_timeout?,
            takeover_timeout: takeover_timeout?,
        })
    }
}
