//! Lead's shim (replaced by the config branch).

use secrecy::SecretString;

#[derive(Debug, thiserror::Error)]
#[error("keychain: {0}")]
pub struct KeychainError(pub String);

pub trait Keychain: Send + Sync {
    fn read(&self, service: &str) -> Result<Option<SecretString>, KeychainError>;
    fn delete(&self, service: &str) -> Result<(), KeychainError>;
}
