//! Errors of JumpCloud calls, split into what retrying can fix and what an admin must fix.

use thiserror::Error;

/// An error of one JumpCloud call. Messages are for admins and never contain the API key, a
/// password or a signature.
#[derive(Debug, Error)]
pub enum JcError {
    /// Network trouble, 5xx or 429 that outlasted the client's own retries. The engine retries.
    #[error("JumpCloud could not be reached ({what}); will retry")]
    Transient { what: String },
    /// 401 on an admin call.
    #[error("the API key was rejected by {host}: check APIKey (or the key source in use)")]
    ApiKeyRejected { host: String },
    /// 401 on a system-context call that the admin-key fallback could not rescue.
    #[error("{host} rejected this Mac's system-context signature (systemKey {system_key}); the agent registration may be broken: reinstall the agent or contact JumpCloud support")]
    SignatureRejected { host: String, system_key: String },
    /// 403: the key works but lacks a right (e.g. a read-only or multi-tenant key without OrgID).
    #[error("{host} refused {what} (403): the API key lacks the right; use a key of an administrator with write access, and set OrgID for multi-tenant keys")]
    Forbidden { host: String, what: String },
    /// 404 on a thing the configuration names.
    #[error("{what} does not exist in this organisation: check {key}")]
    NotFound { what: String, key: String },
    /// 400 or another answer we cannot use.
    #[error("JumpCloud answered {status} to {call}: {detail}")]
    Rejected {
        status: u16,
        call: String,
        detail: String,
    },
    /// A response we could not parse.
    #[error("unexpected answer from JumpCloud to {call}: {detail}")]
    Protocol { call: String, detail: String },
    /// Local trouble with the agent's credentials (`/opt/jc/client.key`, `jcagent.conf`).
    #[error("cannot sign system-context requests: {0}")]
    Credentials(String),
}

impl JcError {
    /// True for errors that time and retries can fix.
    pub fn is_transient(&self) -> bool {
        matches!(self, JcError::Transient { .. })
    }
}
