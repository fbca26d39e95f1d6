//! RSA keys of simulated systems: generated with aws-lc-rs, written to `/opt/jc/client.key` as
//! PEM `RSA PRIVATE KEY` (PKCS#1, RFC 8017 appendix A.1.2), the form OpenSSL-era agents
//! write and `openssl dgst -sign` (SystemContextAPI README) reads.

use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;

/// A system's key pair. Cheap to clone.
#[derive(Clone)]
pub struct SystemKey {
    pair: Arc<KeyPair>,
    pkcs1: Arc<Vec<u8>>,
    pkcs8: Arc<Vec<u8>>,
}

impl std::fmt::Debug for SystemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SystemKey(..)")
    }
}

/// Why a key could not be made.
#[derive(Debug, thiserror::Error)]
#[error("could not generate an RSA key: {0}")]
pub struct KeyError(String);

impl SystemKey {
    /// A new RSA-2048 key (takes some CPU: call it off the async threads).
    pub fn generate() -> Result<SystemKey, KeyError> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|e| KeyError(e.to_string()))?;
        let pkcs8 = pair.as_der().map_err(|e| KeyError(e.to_string()))?;
        let pkcs1 = pkcs8_to_pkcs1(pkcs8.as_ref())
            .ok_or_else(|| KeyError("unexpected PKCS#8 layout".into()))?;
        Ok(SystemKey {
            pair: Arc::new(pair),
            pkcs1: Arc::new(pkcs1),
            pkcs8: Arc::new(pkcs8.as_ref().to_vec()),
        })
    }

    /// The public key as PKCS#1 `RSAPublicKey` DER (what the tenant verifies against).
    pub fn public_der(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    /// The private key as PEM `RSA PRIVATE KEY`.
    pub fn private_pem(&self) -> String {
        pem("RSA PRIVATE KEY", &self.pkcs1)
    }

    /// The private key as PEM `PRIVATE KEY` (PKCS#8, RFC 5208), for clients that must read
    /// both forms.
    pub fn private_pem_pkcs8(&self) -> String {
        pem("PRIVATE KEY", &self.pkcs8)
    }

    /// Signs with RSA PKCS#1 v1.5 SHA-256 (for tests that act as a system).
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut sig = vec![0; self.pair.public_modulus_len()];
        // Signing with a valid in-memory key and a buffer of the modulus length cannot fail.
        self.pair
            .sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig)
            .expect("RSA signing with a generated key and a modulus-sized buffer succeeds");
        sig
    }
}

/// PEM armour with 64-character lines (RFC 7468).
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Reads one DER TLV at the start of `input`: (tag, content, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// PKCS#8 `PrivateKeyInfo` (RFC 5208) → the `RSAPrivateKey` inside its `privateKey` OCTET
/// STRING.
fn pkcs8_to_pkcs1(der: &[u8]) -> Option<Vec<u8>> {
    let (0x30, info, _) = tlv(der)? else {
        return None;
    };
    let (0x02, _version, rest) = tlv(info)? else {
        return None;
    };
    let (0x30, _alg, rest) = tlv(rest)? else {
        return None;
    };
    let (0x04, key, _) = tlv(rest)? else {
        return None;
    };
    Some(key.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trips_through_pkcs1() {
        let key = SystemKey::generate().unwrap();
        let pem = key.private_pem();
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        let again = KeyPair::from_der(&der).unwrap();
        assert_eq!(again.public_key().as_ref(), key.public_der().as_slice());
        let pem8 = key.private_pem_pkcs8();
        assert!(pem8.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let body: String = pem8.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        let again = KeyPair::from_pkcs8(&der).unwrap();
        assert_eq!(again.public_key().as_ref(), key.public_der().as_slice());
    }
}
