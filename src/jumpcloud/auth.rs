//! Where the client's credentials come from: one provider ([`Auth`]), asked lazily.
//!
//! The client is built once per run and never rebuilt from outside (its clock sync and
//! `Retry-After` memory must survive). What it does not know at build time it asks its
//! provider for when a call needs it, and keeps what it got:
//! - the admin API key, for admin calls and for system calls once system context is refused
//!   (plain, keychain or legacy: the provider resolves it, and never waits for one to appear);
//! - this Mac's `systemKey` and signing identity, once the agent registered
//!   (`/opt/jc/jcagent.conf`, `/opt/jc/client.key`);
//! - the organisation for `x-org-id`, once known.
//!
//! The decision "system calls go with the admin key" (SPEC §5: systems enrolled through ADE
//! may not use system context) is the client's to take and the provider's to keep: the client
//! tells [`Auth::fell_back_to_admin`] once, the engine persists it, and a client whose provider
//! says [`Auth::admin_fallback`] sends no signed request at all.

use async_trait::async_trait;
use secrecy::SecretString;

use super::signing::SystemIdentity;
use super::JcError;

/// The client's source of credentials. Every method is cheap except [`Auth::api_key`], which
/// may read the keychain (off the runtime thread) or decrypt a legacy key.
#[async_trait]
pub trait Auth: Send + Sync {
    /// The admin API key when it is available now; `None` when not (yet). Never waits for one
    /// to appear. The client asks only when a call needs the key, and keeps the first it gets.
    async fn api_key(&self) -> Result<Option<SecretString>, JcError>;
    /// This Mac's `systemKey`, once the agent registered.
    fn system_key(&self) -> Option<String>;
    /// The agent's signing identity (`systemKey` and `client.key`), once the agent registered.
    /// Asked only for a signed request; kept once given.
    fn system_identity(&self) -> Result<Option<SystemIdentity>, JcError>;
    /// The organisation to send as `x-org-id` when the client was given none.
    fn org_id(&self) -> Option<String>;
    /// System context was refused earlier in this enrollment: system calls go with the admin
    /// key from the first request.
    fn admin_fallback(&self) -> bool;
    /// JumpCloud refused this Mac's signature (after one clock sync) and the admin key worked
    /// instead. Told once per client.
    fn fell_back_to_admin(&self);
}

/// No provider: the client has only what its options gave it (`config check --online`,
/// tests, benchmarks).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoAuth;

#[async_trait]
impl Auth for NoAuth {
    async fn api_key(&self) -> Result<Option<SecretString>, JcError> {
        Ok(None)
    }

    fn system_key(&self) -> Option<String> {
        None
    }

    fn system_identity(&self) -> Result<Option<SystemIdentity>, JcError> {
        Ok(None)
    }

    fn org_id(&self) -> Option<String> {
        None
    }

    fn admin_fallback(&self) -> bool {
        false
    }

    fn fell_back_to_admin(&self) {}
}
