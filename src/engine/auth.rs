//! The engine's credentials provider ([`crate::jumpcloud::Auth`]): the one owner of the admin
//! API key (plain, keychain or legacy, resolved on demand and kept in memory only), this Mac's
//! system identity (once the agent registered), the organisation, and the decision "system
//! calls go with the admin key", which the client takes and the engine persists
//! ([`super::Engine`]'s `sync_auth`: `state.org.admin_fallback`, journal "admin fallback").
//!
//! The client asks it lazily and never waits: a key that is not there yet is `None`. The steps
//! that cannot go on without the key wait for it through [`EngineAuth::resolve`] with `wait`
//! (`ensure_api_key` in [`super::steps`]), with the admin-facing messages of each source.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use tracing::info;

use super::state::State;
use super::wait::Pacer;
use super::StepError;
use crate::config::keychain::{self, Keychain, KeychainError};
use crate::config::{ApiKeySource, Config, ObjectId};
use crate::host::{AgentFiles, Host};
use crate::jumpcloud::{Auth, JcError, SystemIdentity};

/// `errSecInteractionNotAllowed` and `errSecAuthFailed` (Security framework, SecBase.h): the
/// item's access list does not include prestage; waiting will not change that.
const KEYCHAIN_INTERACTION_NOT_ALLOWED: i32 = -25308;
const KEYCHAIN_AUTH_FAILED: i32 = -25293;

/// What the engine has learnt that the client's credentials depend on (copied from the
/// state after every change: [`EngineAuth::observe`]).
#[derive(Debug, Default)]
struct Facts {
    /// `systemKey` from `jcagent.conf`, once the agent registered.
    system_key: Option<String>,
    /// The org read from the agent or from `GET /api/systems/{sys}`.
    org_id: Option<String>,
}

/// The engine's [`Auth`]: see the module docs.
pub struct EngineAuth {
    source: ApiKeySource,
    /// `OrgID`, which wins over the org the engine learns.
    config_org: Option<ObjectId>,
    /// Called off the runtime thread ([`keychain::off_thread`]).
    keychain: Arc<dyn Keychain>,
    host: Arc<dyn Host>,
    agent: AgentFiles,
    /// The API key once resolved (never persisted).
    key: Mutex<Option<SecretString>>,
    facts: Mutex<Facts>,
    /// System context refused (this run, or an earlier one: `state.org.admin_fallback`).
    fallback: AtomicBool,
}

impl EngineAuth {
    pub fn new(
        config: &Config,
        keychain: Arc<dyn Keychain>,
        host: Arc<dyn Host>,
        agent: AgentFiles,
        state: &State,
    ) -> Self {
        let auth = Self {
            source: config.api_key.clone(),
            config_org: config.org_id.clone(),
            keychain,
            host,
            agent,
            key: Mutex::new(None),
            facts: Mutex::new(Facts::default()),
            fallback: AtomicBool::new(state.org.admin_fallback),
        };
        auth.observe(state);
        auth
    }

    /// Takes the facts the credentials depend on from the state (after every change).
    pub fn observe(&self, state: &State) {
        let mut facts = self.facts.lock().unwrap_or_else(PoisonError::into_inner);
        facts.system_key.clone_from(&state.agent.system_key);
        facts.org_id.clone_from(&state.org.id);
        if state.org.admin_fallback {
            self.fallback.store(true, Ordering::Relaxed);
        }
    }

    /// Whether the API key is resolved.
    pub fn has_key(&self) -> bool {
        self.key
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// The organisation ID: `OrgID`, else the one the engine learnt, when it is 24 hex.
    fn org(&self) -> Option<ObjectId> {
        if let Some(org) = &self.config_org {
            return Some(org.clone());
        }
        let facts = self.facts.lock().unwrap_or_else(PoisonError::into_inner);
        facts.org_id.as_deref().and_then(ObjectId::parse)
    }

    /// Resolves the admin API key from its source, once (kept in memory); with `wait`, waits
    /// (checking every `gap`) for a keychain item that is not there yet (a JumpCloud command
    /// writes it after the Mac registers). `None` without `wait` when it is not at hand, and
    /// for a legacy key while the org ID is unknown.
    pub async fn resolve(
        &self,
        wait: bool,
        gap: Duration,
    ) -> Result<Option<SecretString>, StepError> {
        if let Some(key) = self
            .key
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Ok(Some(key));
        }
        let key = match &self.source {
            ApiKeySource::Plain(key) => key.clone(),
            ApiKeySource::Legacy {
                encrypted,
                decrypt_user,
            } => {
                let Some(org) = self.org() else {
                    // The org ID comes later (read_org); legacy keys wait for it.
                    return Ok(None);
                };
                let Some(uid) = self.host.user_id(decrypt_user).await? else {
                    return Err(StepError::permanent(
                        "error.configuration",
                        format!("DecryptUser {decrypt_user} does not exist on this Mac: the legacy EncryptedAPIKey cannot be decrypted; create the account with the MDM or switch to APIKeyKeychainService"),
                    ));
                };
                crate::config::legacy::decrypt(encrypted, uid, org.as_str()).map_err(|err| {
                    StepError::permanent(
                        "error.configuration",
                        format!("EncryptedAPIKey: {err}; re-encrypt it with the UID of DecryptUser and the org ID"),
                    )
                })?
            }
            ApiKeySource::Keychain { service } => {
                match self.read_keychain(service, wait, gap).await? {
                    Some(key) => key,
                    None => return Ok(None),
                }
            }
        };
        *self.key.lock().unwrap_or_else(PoisonError::into_inner) = Some(key.clone());
        Ok(Some(key))
    }

    async fn read_keychain(
        &self,
        service: &str,
        wait: bool,
        gap: Duration,
    ) -> Result<Option<SecretString>, StepError> {
        let mut pacer = Pacer::new(gap);
        let mut announced = false;
        loop {
            pacer.tick().await;
            match keychain::off_thread(&self.keychain, service, |kc, s| kc.read(s)).await {
                Ok(Some(key)) => return Ok(Some(key)),
                Ok(None) if wait => {
                    if !announced {
                        info!(service = %service, "waiting for the API key in the System keychain (APIKeyKeychainService)");
                        announced = true;
                    }
                }
                Ok(None) => return Ok(None),
                Err(KeychainError::System { code, .. })
                    if matches!(
                        code,
                        KEYCHAIN_INTERACTION_NOT_ALLOWED | KEYCHAIN_AUTH_FAILED
                    ) =>
                {
                    return Err(StepError::permanent(
                        "error.configuration",
                        format!("the System keychain item {service:?} exists but prestage may not read it (OSStatus {code}): create it with `security add-generic-password -s {service} -a prestage -w <key> -T /usr/local/libexec/prestage/prestage /Library/Keychains/System.keychain` so prestage is in its access list"),
                    ));
                }
                Err(err @ (KeychainError::Unavailable { .. } | KeychainError::NotText { .. })) => {
                    return Err(StepError::permanent("error.configuration", err.to_string()));
                }
                Err(err) => return Err(StepError::Transient(err.to_string())),
            }
        }
    }
}

#[async_trait]
impl Auth for EngineAuth {
    async fn api_key(&self) -> Result<Option<SecretString>, JcError> {
        // Never waits: the gap only paces a wait.
        self.resolve(false, Duration::ZERO)
            .await
            .map_err(|err| JcError::Provider(Box::new(err)))
    }

    fn system_key(&self) -> Option<String> {
        self.facts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .system_key
            .clone()
    }

    fn system_identity(&self) -> Result<Option<SystemIdentity>, JcError> {
        let Some(system_key) = self.system_key() else {
            return Ok(None);
        };
        let pem = self
            .agent
            .read_client_key()
            .map_err(|err| JcError::Provider(Box::new(StepError::from(err))))?;
        SystemIdentity::from_pem(system_key, &pem).map(Some)
    }

    fn org_id(&self) -> Option<String> {
        if let Some(org) = &self.config_org {
            return Some(org.to_string());
        }
        self.facts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .org_id
            .clone()
    }

    fn admin_fallback(&self) -> bool {
        self.fallback.load(Ordering::Relaxed)
    }

    fn fell_back_to_admin(&self) {
        self.fallback.store(true, Ordering::Relaxed);
    }
}
