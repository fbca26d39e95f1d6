//! The swiftDialog UI, built when first used: by then the setup account is at the console and
//! its language is known (`UI.Language` wins; else the console user's `AppleLanguages`).

use std::sync::Arc;

use async_trait::async_trait;

use super::dialog::DialogUi;
use super::strings::{self, Strings};
use super::{
    IdentityAnswer, IdentityPrompt, PasswordAnswer, PasswordPrompt, Progress, Ui, UiError,
};
use crate::config::UiConfig;
use crate::host::Host;
use crate::paths::Root;

/// A [`DialogUi`] made at the first window.
pub struct DeferredDialog {
    root: Root,
    config: UiConfig,
    host: Arc<dyn Host>,
    inner: Option<DialogUi>,
    help_facts: super::help::HelpFacts,
}

impl DeferredDialog {
    pub fn new(root: Root, config: UiConfig, host: Arc<dyn Host>) -> Self {
        Self {
            root,
            config,
            host,
            inner: None,
            help_facts: super::help::HelpFacts::default(),
        }
    }

    async fn ui(&mut self) -> &mut DialogUi {
        if self.inner.is_none() {
            let languages = match self.host.console_user().await {
                Ok(user) if !crate::host::is_system_user(&user) => {
                    strings::user_languages(&self.root, &user).await
                }
                _ => Vec::new(),
            };
            let strings = Strings::from_config(&self.config, &languages);
            let mut ui = DialogUi::new(
                self.root.clone(),
                self.config.clone(),
                strings,
                Arc::clone(&self.host),
            );
            ui.set_help_facts(&self.help_facts);
            self.inner = Some(ui);
        }
        self.inner
            .as_mut()
            .expect("the dialog UI was built just above")
    }
}

#[async_trait]
impl Ui for DeferredDialog {
    fn set_help_facts(&mut self, facts: &super::help::HelpFacts) {
        facts.clone_into(&mut self.help_facts);
        if let Some(ui) = self.inner.as_mut() {
            ui.set_help_facts(facts);
        }
    }

    async fn progress(&mut self, progress: &Progress) -> Result<(), UiError> {
        self.ui().await.progress(progress).await
    }
    async fn ask_identity(&mut self, prompt: &IdentityPrompt) -> Result<IdentityAnswer, UiError> {
        self.ui().await.ask_identity(prompt).await
    }
    async fn identity_rejected(
        &mut self,
        attempts_left: u32,
        cooldown_seconds: Option<u64>,
    ) -> Result<(), UiError> {
        self.ui()
            .await
            .identity_rejected(attempts_left, cooldown_seconds)
            .await
    }
    async fn ask_password(&mut self, prompt: &PasswordPrompt) -> Result<PasswordAnswer, UiError> {
        self.ui().await.ask_password(prompt).await
    }
    async fn done(&mut self, account: &str) -> Result<(), UiError> {
        self.ui().await.done(account).await
    }
    async fn done_own_account(&mut self, account: &str) -> Result<(), UiError> {
        self.ui().await.done_own_account(account).await
    }
    async fn fatal(&mut self, reference: &str, detail_id: &'static str) -> Result<(), UiError> {
        self.ui().await.fatal(reference, detail_id).await
    }
    async fn close(&mut self) -> Result<(), UiError> {
        match self.inner.as_mut() {
            Some(ui) => ui.close().await,
            None => Ok(()),
        }
    }
}
