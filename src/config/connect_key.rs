//! The JumpCloud agent's connect key (SPEC §3 `ConnectKey`), in either of JumpCloud's forms.
//!
//! - The classic key: 40 hex characters. prestage writes `/opt/jc/agentBootstrap.json` around
//!   it, with the kickstart hosts of `APIBaseURL`'s region.
//! - A tenant connect key `jcc_<base64>` (JumpCloud's format since 2025): the payload *is* the
//!   `agentBootstrap.json` to write, byte for byte, kickstart URLs included. JumpCloud's own
//!   install script (TheJumpCloud/support `scripts/macos/install_agent_and_serviceaccount.sh`,
//!   commit 58fcf165 "support new connect key format") matches
//!   `^jcc_([0-9a-zA-Z+/]{4,}={0,3})$`, base64-decodes the group and writes the result as
//!   `/opt/jc/agentBootstrap.json`.

use std::fmt;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

/// The tenant connect key's prefix.
pub const TENANT_KEY_PREFIX: &str = "jcc_";

/// Standard base64; JumpCloud's pattern allows zero to three `=`, so padding is optional.
const PAYLOAD_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A validated connect key. Both forms are secrets: `Debug` never shows them.
#[derive(Clone)]
pub enum ConnectKey {
    /// 40 hex characters.
    Classic(SecretString),
    /// `jcc_<base64>`: `bootstrap` is the decoded payload (a JSON object with a string
    /// `connectKey`), to be written as `agentBootstrap.json` unchanged.
    Tenant {
        bootstrap: SecretString,
        /// The payload's `publicKickstartUrl`, when it has one (not secret; for messages).
        public_kickstart_url: Option<String>,
    },
}

/// Why a `ConnectKey` value is not a connect key; the text completes "ConnectKey ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectKeyError {
    #[error("must be 40 hex characters, but {0}")]
    Classic(String),
    #[error("starts with jcc_ but {0}")]
    Tenant(String),
}

impl ConnectKey {
    /// Parses either form (surrounding whitespace is not trimmed: a key is copied whole).
    pub fn parse(text: &str) -> Result<Self, ConnectKeyError> {
        if let Some(payload) = text.strip_prefix(TENANT_KEY_PREFIX) {
            return parse_tenant(payload);
        }
        if text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Self::Classic(SecretString::from(text)));
        }
        let detail = if text.chars().count() == 40 {
            "has characters other than 0-9 and a-f".to_owned()
        } else {
            format!("is {} characters long", text.chars().count())
        };
        Err(ConnectKeyError::Classic(detail))
    }

    /// Which form, in words (no secret).
    pub fn describe(&self) -> String {
        match self {
            Self::Classic(_) => "a 40-character connect key".to_owned(),
            Self::Tenant {
                public_kickstart_url: Some(url),
                ..
            } => format!("a tenant connect key (jcc_) for {url}"),
            Self::Tenant { .. } => "a tenant connect key (jcc_)".to_owned(),
        }
    }
}

fn parse_tenant(payload: &str) -> Result<ConnectKey, ConnectKeyError> {
    let bad = |why: &str| ConnectKeyError::Tenant(why.to_owned());
    let body = payload.trim_end_matches('=');
    if payload.len() - body.len() > 3
        || body.len() < 4
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    {
        return Err(bad(
            "what follows is not base64 (JumpCloud's form: jcc_ then at least 4 of A-Z a-z 0-9 + /, then up to 3 =)",
        ));
    }
    let bytes = PAYLOAD_BASE64
        .decode(payload)
        .map_err(|_| bad("what follows does not decode as base64"))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| bad("its payload is not JSON (it should decode to agentBootstrap.json)"))?;
    let object = value
        .as_object()
        .ok_or_else(|| bad("its payload is not a JSON object"))?;
    match object.get("connectKey") {
        Some(serde_json::Value::String(k)) if !k.is_empty() => {}
        _ => return Err(bad("its payload has no string connectKey")),
    }
    let public_kickstart_url = object
        .get("publicKickstartUrl")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    let text = String::from_utf8(bytes).expect("serde_json accepted it, so it is UTF-8");
    Ok(ConnectKey::Tenant {
        bootstrap: SecretString::from(text),
        public_kickstart_url,
    })
}

/// Makes a tenant connect key from an `agentBootstrap.json` payload (the simulated tenant and
/// tests; JumpCloud's console does the same for real keys).
pub fn encode_tenant_key(bootstrap_json: &[u8]) -> String {
    format!(
        "{TENANT_KEY_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(bootstrap_json)
    )
}

impl fmt::Debug for ConnectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Classic(_) => f.write_str("ConnectKey::Classic([REDACTED])"),
            Self::Tenant { .. } => f.write_str("ConnectKey::Tenant([REDACTED])"),
        }
    }
}

impl ConnectKey {
    /// The bytes of `agentBootstrap.json` for this key: the payload itself for a tenant key;
    /// for a classic key the three fields the bash script writes, with the given URLs.
    pub fn bootstrap_json(&self, public_url: &str, private_url: &str) -> SecretString {
        match self {
            Self::Tenant { bootstrap, .. } => bootstrap.clone(),
            Self::Classic(key) => {
                let body = serde_json::json!({
                    "publicKickstartUrl": public_url,
                    "privateKickstartUrl": private_url,
                    "connectKey": key.expose_secret(),
                });
                SecretString::from(
                    serde_json::to_string_pretty(&body)
                        .expect("a JSON object of three strings always serialises"),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &str = r#"{"publicKickstartUrl":"https://kickstart.eu.jumpcloud.com:443","privateKickstartUrl":"https://private-kickstart.eu.jumpcloud.com:443","connectKey":"abc123"}"#;

    #[test]
    fn classic_keys() {
        assert!(matches!(
            ConnectKey::parse(
                &"aB0"
                    .repeat(13)
                    .chars()
                    .chain("f".chars())
                    .collect::<String>()
            ),
            Ok(ConnectKey::Classic(_))
        ));
        assert_eq!(
            ConnectKey::parse("xyz").unwrap_err().to_string(),
            "must be 40 hex characters, but is 3 characters long"
        );
        assert!(ConnectKey::parse(&"g".repeat(40))
            .unwrap_err()
            .to_string()
            .contains("other than 0-9"));
    }

    #[test]
    fn tenant_key_payload_is_kept_byte_for_byte() {
        let key = encode_tenant_key(PAYLOAD.as_bytes());
        let parsed = ConnectKey::parse(&key).unwrap();
        let json = parsed.bootstrap_json("https://ignored", "https://ignored");
        assert_eq!(json.expose_secret(), PAYLOAD);
        assert!(parsed.describe().contains("kickstart.eu.jumpcloud.com"));
        // Without padding it decodes too (JumpCloud's pattern allows 0-3 `=`).
        let unpadded = key.trim_end_matches('=');
        assert!(ConnectKey::parse(unpadded).is_ok());
        // Debug hides it.
        assert!(!format!("{parsed:?}").contains("abc123"));
    }

    #[test]
    fn tenant_keys_that_are_not_bootstrap_files() {
        let err = |payload: &str| {
            ConnectKey::parse(&encode_tenant_key(payload.as_bytes()))
                .unwrap_err()
                .to_string()
        };
        assert!(err("not json").contains("not JSON"));
        assert!(err("[1,2]").contains("not a JSON object"));
        assert!(err(r#"{"connectKey":5}"#).contains("no string connectKey"));
        assert!(err(r#"{"publicKickstartUrl":"x"}"#).contains("no string connectKey"));
        let junk = ConnectKey::parse("jcc_!!!").unwrap_err().to_string();
        assert!(junk.contains("not base64"), "{junk}");
        assert!(ConnectKey::parse("jcc_").is_err());
        assert!(ConnectKey::parse("jcc_QUJD====").is_err());
    }
}
