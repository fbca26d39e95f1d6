//! System-context request signing: how this Mac proves to JumpCloud that a request comes from
//! the system the agent registered, with the agent's key `/opt/jc/client.key`.
//!
//! The scheme (v1.json info text "System Context"; TheJumpCloud/SystemContextAPI README) is an
//! early draft of HTTP Signatures (draft-cavage-http-signatures-00): RSA-SHA256 (PKCS#1 v1.5)
//! over `"<METHOD> <request-target> HTTP/1.1\ndate: <Date>"`, base64 in an `Authorization:
//! Signature keyId="system/<systemKey>",headers="request-line date",algorithm="rsa-sha256",
//! signature="<b64>"` header. The request target is the RFC 2616 §5.1 Request-URI, so a query
//! string is part of what is signed: JumpCloud's own Mac command template "Remove System From
//! Command" (TheJumpCloud/support) signs `POST /api/v2/systems/<id>/associations?targets=command`.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair, RsaKeyPair};
use base64::Engine as _;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use secrecy::{ExposeSecret, SecretString};

use super::JcError;

/// The algorithm name of the `Authorization` header.
pub const ALGORITHM: &str = "rsa-sha256";
/// The `headers` parameter: what the signature covers.
pub const SIGNED_HEADERS: &str = "request-line date";

/// This Mac's identity towards JumpCloud: the agent's `systemKey` and private key.
///
/// `Debug` shows only the system key; the private key never leaves this type except as
/// signatures.
#[derive(Clone)]
pub struct SystemIdentity {
    /// `systemKey` from `/opt/jc/jcagent.conf` (the system's object id).
    pub system_key: String,
    key: Arc<RsaKeyPair>,
}

impl fmt::Debug for SystemIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemIdentity")
            .field("system_key", &self.system_key)
            .field("key", &"<RSA private key>")
            .finish()
    }
}

impl SystemIdentity {
    /// Parses the agent's PEM key (`BEGIN RSA PRIVATE KEY`, PKCS#1, as the agent writes it; or
    /// `BEGIN PRIVATE KEY`, PKCS#8).
    pub fn from_pem(system_key: impl Into<String>, pem: &SecretString) -> Result<Self, JcError> {
        let der = PrivateKeyDer::from_pem_slice(pem.expose_secret().as_bytes()).map_err(|err| {
            JcError::Credentials(format!(
                "{} holds no PEM private key ({err}); the agent installation may be broken",
                crate::paths::mac::JC_CLIENT_KEY
            ))
        })?;
        let parsed = match &der {
            PrivateKeyDer::Pkcs1(key) => RsaKeyPair::from_der(key.secret_pkcs1_der()),
            PrivateKeyDer::Pkcs8(key) => RsaKeyPair::from_pkcs8(key.secret_pkcs8_der()),
            _ => {
                return Err(JcError::Credentials(format!(
                    "{} is not an RSA key; the agent installation may be broken",
                    crate::paths::mac::JC_CLIENT_KEY
                )))
            }
        };
        let key = parsed.map_err(|err| {
            JcError::Credentials(format!(
                "{} is not a usable RSA key ({err}); the agent installation may be broken",
                crate::paths::mac::JC_CLIENT_KEY
            ))
        })?;
        Ok(Self {
            system_key: system_key.into(),
            key: Arc::new(key),
        })
    }

    /// Reads `/opt/jc/client.key` under `root` (the agent writes it, root-only) for the
    /// system `system_key` (from `jcagent.conf`).
    pub fn load(root: &crate::paths::Root, system_key: impl Into<String>) -> Result<Self, JcError> {
        let path = root.resolve(crate::paths::mac::JC_CLIENT_KEY);
        let pem = std::fs::read_to_string(&path).map_err(|err| {
            JcError::Credentials(format!(
                "cannot read {}: {err}; is the JumpCloud agent installed and registered?",
                path.display()
            ))
        })?;
        Self::from_pem(system_key, &SecretString::from(pem))
    }

    /// The public key as a DER `RSAPublicKey` (PKCS#1), the form [`verify`] takes.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.key.public_key().as_ref().to_vec()
    }

    /// The `Authorization` header value for a request. `path_and_query` is the request target
    /// exactly as sent (path plus `?query` when there is one); `date` the `Date` header value.
    pub fn authorization(&self, method: &str, path_and_query: &str, date: &str) -> String {
        let signature = self.sign(&signing_string(method, path_and_query, date));
        format!(
            "Signature keyId=\"system/{}\",headers=\"{SIGNED_HEADERS}\",algorithm=\"{ALGORITHM}\",signature=\"{signature}\"",
            self.system_key
        )
    }

    /// RSA-SHA256 (PKCS#1 v1.5) of `message`, base64 (standard alphabet, padded) as
    /// `openssl enc -e -a | tr -d '\n'` prints it.
    fn sign(&self, message: &str) -> String {
        let mut sig = vec![0; self.key.public_modulus_len()];
        // Signing with a key that parsed and a buffer of the modulus length cannot fail.
        self.key
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message.as_bytes(),
                &mut sig,
            )
            .expect("RSA signing with a parsed key and a modulus-sized buffer succeeds");
        base64::engine::general_purpose::STANDARD.encode(sig)
    }
}

/// The string that is signed: `"<METHOD> <path> HTTP/1.1\ndate: <Date>"` (SPEC §5).
pub fn signing_string(method: &str, path_and_query: &str, date: &str) -> String {
    format!("{method} {path_and_query} HTTP/1.1\ndate: {date}")
}

/// The `Date` header value for `time`, RFC 7231 IMF-fixdate (`Wed, 25 Nov 2026 08:30:00 GMT`).
pub fn http_date(time: std::time::SystemTime) -> String {
    httpdate::fmt_http_date(time)
}

/// The parameters of a system-context `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    /// `keyId`, e.g. `system/5f0c...`.
    pub key_id: String,
    pub headers: String,
    pub algorithm: String,
    /// Base64 signature.
    pub signature: String,
}

impl SignatureHeader {
    /// The system key of `keyId="system/<systemKey>"`, if it has that form.
    pub fn system_key(&self) -> Option<&str> {
        self.key_id.strip_prefix("system/")
    }

    /// Parses `Signature keyId="...",headers="...",algorithm="...",signature="..."`.
    /// Parameters may come in any order; unknown ones are ignored.
    pub fn parse(header: &str) -> Option<Self> {
        let params = header.trim().strip_prefix("Signature")?.trim_start();
        let (mut key_id, mut headers, mut algorithm, mut signature) = (None, None, None, None);
        for part in params.split(',') {
            let (name, value) = part.trim().split_once('=')?;
            let value = value
                .trim()
                .strip_prefix('"')?
                .strip_suffix('"')?
                .to_owned();
            match name.trim() {
                "keyId" => key_id = Some(value),
                "headers" => headers = Some(value),
                "algorithm" => algorithm = Some(value),
                "signature" => signature = Some(value),
                _ => {}
            }
        }
        Some(Self {
            key_id: key_id?,
            headers: headers?,
            algorithm: algorithm?,
            signature: signature?,
        })
    }
}

/// Checks a system-context `Authorization` header against a public key (DER `RSAPublicKey`,
/// PKCS#1) for the given request line and `Date`. For the simulated tenant and tests.
pub fn verify(public_key_der: &[u8], method: &str, path: &str, date: &str, header: &str) -> bool {
    let Some(parsed) = SignatureHeader::parse(header) else {
        return false;
    };
    if parsed.algorithm != ALGORITHM || parsed.headers != SIGNED_HEADERS {
        return false;
    }
    let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(parsed.signature.as_bytes())
    else {
        return false;
    };
    signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public_key_der)
        .verify(signing_string(method, path, date).as_bytes(), &sig)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jumpcloud");
    const SYSTEM: &str = "5f0c5f4d2b3c4a1e9d8f7a6b";
    const DATE: &str = "Wed, 25 Nov 2026 08:30:00 GMT";
    const PATH: &str = "/api/v2/systems/5f0c5f4d2b3c4a1e9d8f7a6b/associations?targets=user";

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()
    }

    fn identity(file: &str) -> SystemIdentity {
        SystemIdentity::from_pem(SYSTEM, &SecretString::from(fixture(file))).unwrap()
    }

    /// The vector made with `openssl dgst -sha256 -sign` (tests/fixtures/jumpcloud/README.md).
    #[test]
    fn matches_openssl_vector_for_pkcs1_and_pkcs8() {
        let expected = fixture("signature.b64");
        assert_eq!(
            fixture("signing-string.txt"),
            signing_string("GET", PATH, DATE)
        );
        for file in ["client-pkcs1.key", "client-pkcs8.key"] {
            let header = identity(file).authorization("GET", PATH, DATE);
            assert_eq!(
                header,
                format!(
                    "Signature keyId=\"system/{SYSTEM}\",headers=\"request-line date\",algorithm=\"rsa-sha256\",signature=\"{expected}\""
                ),
                "{file}"
            );
        }
    }

    #[test]
    fn verify_accepts_own_and_openssl_signatures_and_rejects_changes() {
        let id = identity("client-pkcs8.key");
        let public = std::fs::read(format!("{FIXTURES}/client-pub-pkcs1.der")).unwrap();
        assert_eq!(id.public_key_der(), public);
        let header = id.authorization("GET", PATH, DATE);
        assert!(verify(&public, "GET", PATH, DATE, &header));
        assert!(!verify(&public, "PUT", PATH, DATE, &header));
        assert!(!verify(&public, "GET", "/api/systems/x", DATE, &header));
        assert!(!verify(
            &public,
            "GET",
            PATH,
            "Wed, 25 Nov 2026 08:30:01 GMT",
            &header
        ));
        assert!(!verify(&public, "GET", PATH, DATE, "Signature nonsense"));
        let tampered = header.replace("rsa-sha256", "hmac-sha256");
        assert!(!verify(&public, "GET", PATH, DATE, &tampered));
    }

    #[test]
    fn parses_header_parameters_in_any_order() {
        let h = SignatureHeader::parse(
            r#"Signature signature="c2ln",algorithm="rsa-sha256",keyId="system/abc",headers="request-line date""#,
        )
        .unwrap();
        assert_eq!(h.system_key(), Some("abc"));
        assert_eq!(h.signature, "c2ln");
        assert!(SignatureHeader::parse("Bearer x").is_none());
    }

    #[test]
    fn rejects_garbage_and_non_rsa_keys() {
        let err = SystemIdentity::from_pem(SYSTEM, &SecretString::from("not a key")).unwrap_err();
        assert!(err.to_string().contains("/opt/jc/client.key"), "{err}");
        let ec = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBtest\n-----END EC PRIVATE KEY-----\n";
        assert!(SystemIdentity::from_pem(SYSTEM, &SecretString::from(ec)).is_err());
    }

    #[test]
    fn loads_the_agent_key_under_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = crate::paths::Root::new(dir.path());
        let err = SystemIdentity::load(&root, SYSTEM).unwrap_err();
        assert!(err.to_string().contains("client.key"), "{err}");
        let path = root.resolve(crate::paths::mac::JC_CLIENT_KEY);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, fixture("client-pkcs1.key")).unwrap();
        let id = SystemIdentity::load(&root, SYSTEM).unwrap();
        assert_eq!(
            id.authorization("GET", PATH, DATE),
            identity("client-pkcs8.key").authorization("GET", PATH, DATE)
        );
    }

    #[test]
    fn debug_hides_the_key() {
        let shown = format!("{:?}", identity("client-pkcs1.key"));
        assert!(shown.contains(SYSTEM));
        assert!(!shown.contains("MII"));
    }

    #[test]
    fn http_date_is_imf_fixdate() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_595_400);
        assert_eq!(http_date(t), DATE);
    }
}
