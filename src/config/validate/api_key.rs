//! The API key sources (`APIKey`, `APIKeyKeychainService`, `EncryptedAPIKey` + `DecryptUser`):
//! exactly one of them, each well formed.

use super::level::Level;
use super::Validator;
use crate::config::ApiKeySource;

impl Validator<'_> {
    pub(super) fn api_key_source(&mut self, top: &mut Level<'_>) -> Option<ApiKeySource> {
        let plain = self.secret(top, "APIKey");
        let keychain = self.string(top, "APIKeyKeychainService");
        let encrypted = self.secret(top, "EncryptedAPIKey");
        let decrypt_user = self.account_name(top, "DecryptUser");
        if let Some(enc) = &encrypted {
            use base64::Engine as _;
            use secrecy::ExposeSecret as _;
            if base64::engine::general_purpose::STANDARD
                .decode(enc.expose_secret())
                .is_err()
            {
                self.err(
                    "EncryptedAPIKey",
                    "is not valid base64",
                    "copy the whole value printed by the bash script's EncryptKey function",
                );
            }
        }
        let present: Vec<&str> = [
            ("APIKey", top.has("APIKey")),
            ("APIKeyKeychainService", top.has("APIKeyKeychainService")),
            (
                "EncryptedAPIKey",
                top.has("EncryptedAPIKey") || top.has("DecryptUser"),
            ),
        ]
        .into_iter()
        .filter_map(|(k, p)| p.then_some(k))
        .collect();
        match present.as_slice() {
            [] => {
                self.err(
                    "APIKey",
                    "no API key source is set",
                    "set exactly one of APIKeyKeychainService (recommended), APIKey, or EncryptedAPIKey with DecryptUser",
                );
                return None;
            }
            [_] => {}
            [first, rest @ ..] => {
                self.err(
                    rest[0],
                    format!(
                        "more than one API key source is set ({})",
                        present.join(", ")
                    ),
                    format!("keep exactly one: remove {} or {first}", rest.join(" and ")),
                );
                return None;
            }
        }
        if top.has("EncryptedAPIKey") != top.has("DecryptUser") {
            let (missing, with) = if top.has("EncryptedAPIKey") {
                ("DecryptUser", "EncryptedAPIKey")
            } else {
                ("EncryptedAPIKey", "DecryptUser")
            };
            self.err(
                missing,
                format!("is required with {with}"),
                "set both EncryptedAPIKey and DecryptUser (the bash script's ENCRYPTED_KEY and DECRYPT_USER), or neither",
            );
            return None;
        }
        if let Some(key) = plain {
            return Some(ApiKeySource::Plain(key));
        }
        if let Some(service) = keychain {
            return Some(ApiKeySource::Keychain { service });
        }
        match (encrypted, decrypt_user) {
            (Some(encrypted), Ok(Some(decrypt_user))) => Some(ApiKeySource::Legacy {
                encrypted,
                decrypt_user,
            }),
            _ => None,
        }
    }
}
