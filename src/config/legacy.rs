//! Lead's shim (replaced by the config branch).

use secrecy::SecretString;

#[derive(Debug, thiserror::Error)]
#[error("cannot decrypt EncryptedAPIKey")]
pub struct LegacyError;

pub fn decrypt(
    _encrypted_b64: &SecretString,
    _uid: u32,
    _org_id: &str,
) -> Result<SecretString, LegacyError> {
    Err(LegacyError)
}
