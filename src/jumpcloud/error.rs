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
    /// The answer to a side effect that must not be blindly repeated (the password set) was
    /// lost: it may or may not have taken effect. The engine reads the result back (`user()`:
    /// `activated`, `password_date`) before repeating it (SPEC §5). Transient.
    #[error("the answer of JumpCloud to {call} was lost ({what}), so it may or may not have taken effect; the result is read back before it is repeated")]
    Uncertain { call: String, what: String },
    /// An admin call while no API key is available (yet).
    #[error("{call} needs the admin API key and none is available: set APIKey, APIKeyKeychainService or EncryptedAPIKey")]
    NoApiKey { call: String },
    /// The API key cannot even be put in a header (control characters, line breaks).
    #[error("the API key contains characters that cannot be sent in an HTTP header: check APIKey (copy it again from the JumpCloud console)")]
    MalformedApiKey,
    /// The HTTPS client could not be built (TLS roots, system configuration).
    #[error("cannot set up HTTPS to JumpCloud: {0}; check the system's certificate configuration")]
    Setup(String),
}

impl JcError {
    /// True for errors that time and retries can fix. [`JcError::Uncertain`] is one of them,
    /// but see [`JcError::is_uncertain`]: read back before repeating.
    pub fn is_transient(&self) -> bool {
        matches!(self, JcError::Transient { .. } | JcError::Uncertain { .. })
    }

    /// True when a side effect may or may not have happened and must be checked before it is
    /// repeated.
    pub fn is_uncertain(&self) -> bool {
        matches!(self, JcError::Uncertain { .. })
    }
}
