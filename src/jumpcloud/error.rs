//! Errors of JumpCloud calls, split into what retrying can fix and what an admin must fix.

use thiserror::Error;

/// An error of one JumpCloud call. Messages are for admins and never contain the API key, a
/// password or a signature.
#[derive(Debug, Error)]
pub enum JcError {
    /// Network trouble, 5xx or 429 that outlasted the client's own retries. The engine retries.
    #[error("JumpCloud could not be reached ({what}); will retry")]
    Transient { what: String },
    /// 401 on an admin call. A multi-tenant administrator's key gets 401 too when the request
    /// names no organisation (v1.json info text, "Multi-Tenant Portal Headers": `401` "ID not
    /// included for multi-tenant admin"); `org_missing` says none was sent, so the hint to set
    /// `OrgID` belongs here, not on 403.
    #[error("the API key was rejected by {host} (401): check APIKey (or the key source in use){}", if *.org_missing { "; a multi-tenant administrator's key is also refused when the request names no organisation: set OrgID" } else { "" })]
    ApiKeyRejected { host: String, org_missing: bool },
    /// 401 on a system-context call that the admin-key fallback could not rescue.
    #[error("{host} rejected this Mac's system-context signature (systemKey {system_key}); the agent registration may be broken: reinstall the agent or contact JumpCloud support")]
    SignatureRejected { host: String, system_key: String },
    /// 403 on an admin call: the key works but lacks a right (a read-only administrator, or a
    /// route that does not take `x-org-id`: v1.json "`403` ID included on unsupported route").
    /// JumpCloud also answers 403 to an address it blocked for suspected abuse (its support
    /// article "A JumpCloud service returns 403 Forbidden: your IP has been blocked due to
    /// suspected abuse"; the audit could read only its title).
    #[error("{host} refused {what} (403): the API key lacks the right; use a key of an administrator with write access to users and systems. If the key has those rights, JumpCloud may have blocked this network's address for suspected abuse: try again later or from another network, or ask JumpCloud support")]
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
    /// The tenant refused the new password with a 4xx that says why (its policy, history,
    /// a minimum age). The employee reads `message` and chooses another one.
    #[error("JumpCloud refused the new password ({status}): {message}")]
    PasswordRefused { status: u16, message: String },
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
    /// The credentials provider ([`super::Auth`]) could not give a credential (the API key's
    /// source, the agent's key file). Its own error, whole: its owner knows what it means.
    #[error("{0}")]
    Provider(Box<dyn std::error::Error + Send + Sync + 'static>),
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
