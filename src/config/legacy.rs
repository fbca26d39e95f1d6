//! The bash script's legacy `EncryptedAPIKey` format (SPEC §3).
//!
//! MDM-Prestage-User-Enrollment encrypted the admin API key with
//! `echo "$KEY" | openssl enc -e -base64 -A -aes-128-ctr -nopad -nosalt -k "<uid><orgid>"` and
//! decrypted it with the matching `openssl enc -d ... -md md5`. With a password (`-k`) and no salt,
//! openssl derives key and IV with `EVP_BytesToKey(MD5, one round)`: `D1 = MD5(password)`,
//! `D2 = MD5(D1 || password)`; the AES-128 key is `D1` and the CTR IV is `D2`. The plaintext ends
//! with the newline `echo` added, which we strip.
//!
//! This is obfuscation, not protection: the password is a UID and the org ID. prestage accepts it
//! so admins can migrate, and recommends `APIKeyKeychainService` instead.

use aws_lc_rs::cipher::{DecryptingKey, DecryptionContext, UnboundCipherKey, AES_128};
use aws_lc_rs::iv::FixedLength;
use base64::Engine as _;
use md5::{Digest, Md5};
use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretString};

/// Why a legacy key could not be decrypted. Never carries any part of the key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LegacyError {
    #[error("EncryptedAPIKey is not valid base64; copy the whole value printed by the bash script's EncryptKey function")]
    Base64,
    #[error("EncryptedAPIKey is empty; set it to the value printed by EncryptKey or use APIKeyKeychainService")]
    Empty,
    #[error("EncryptedAPIKey did not decrypt to a readable API key; check that DecryptUser's UID and the org ID are the ones it was encrypted with")]
    Garbled,
    #[error("the AES-128-CTR cipher could not be set up")]
    Cipher,
}

/// `EVP_BytesToKey` with MD5, one round, no salt, for a 16-byte key and a 16-byte IV.
fn bytes_to_key(password: &[u8]) -> ([u8; 16], [u8; 16]) {
    let key: [u8; 16] = Md5::digest(password).into();
    let mut hasher = Md5::new();
    hasher.update(key);
    hasher.update(password);
    let iv: [u8; 16] = hasher.finalize().into();
    (key, iv)
}

/// Decrypts an `EncryptedAPIKey` made by the bash script's `EncryptKey` with the UID of
/// `DecryptUser` and the organisation ID.
pub fn decrypt(
    encrypted_b64: &SecretString,
    uid: u32,
    org_id: &str,
) -> Result<SecretString, LegacyError> {
    let text = encrypted_b64.expose_secret().trim();
    if text.is_empty() {
        return Err(LegacyError::Empty);
    }
    let mut buf = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| LegacyError::Base64)?;
    let mut password = format!("{uid}{org_id}").into_bytes();
    let (mut key, iv) = bytes_to_key(&password);
    password.zeroize();
    let unbound = UnboundCipherKey::new(&AES_128, &key).map_err(|_| LegacyError::Cipher);
    key.zeroize();
    let cipher = DecryptingKey::ctr(unbound?).map_err(|_| LegacyError::Cipher)?;
    let plain_len = cipher
        .decrypt(&mut buf, DecryptionContext::Iv128(FixedLength::from(iv)))
        .map_err(|_| LegacyError::Cipher)?
        .len();
    buf.truncate(plain_len);
    // `echo` appended a newline before encryption.
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    // A wrong UID or org ID yields random bytes: an API key is printable ASCII.
    let printable = !buf.is_empty() && buf.iter().all(u8::is_ascii_graphic);
    let result = if printable {
        String::from_utf8(buf.clone())
            .map(SecretString::from)
            .map_err(|_| LegacyError::Garbled)
    } else {
        Err(LegacyError::Garbled)
    };
    buf.zeroize();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example in JumpCloud's README of the bash script (see tests/fixtures/config/legacy).
    #[test]
    fn decrypts_jumpclouds_published_example() {
        let enc = SecretString::from("43H/pQGRJ5Uut5R3wagbPSS/I2cATai4dUCnqsimkFQ6OvqnFerp9l8=");
        let key = decrypt(&enc, 8_675_309, "59664bf31254e1cc14e82117").unwrap();
        assert_eq!(
            key.expose_secret(),
            "c57c341a4a38f132019770f1689bbe7530bdfef3"
        );
    }

    #[test]
    fn decrypts_vectors_made_with_openssl() {
        let vectors = include_str!("../../tests/fixtures/config/legacy/vectors.txt");
        let mut n = 0;
        for line in vectors.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split(' ').collect();
            let uid: u32 = f[0].parse().unwrap();
            let key = decrypt(&SecretString::from(f[3]), uid, f[1]).unwrap();
            assert_eq!(key.expose_secret(), f[2], "vector {line}");
            n += 1;
        }
        assert_eq!(n, 4);
    }

    #[test]
    fn wrong_uid_is_reported_not_returned() {
        let enc = SecretString::from("43H/pQGRJ5Uut5R3wagbPSS/I2cATai4dUCnqsimkFQ6OvqnFerp9l8=");
        assert_eq!(
            decrypt(&enc, 501, "59664bf31254e1cc14e82117").unwrap_err(),
            LegacyError::Garbled
        );
    }

    #[test]
    fn bad_base64_and_empty() {
        assert_eq!(
            decrypt(&SecretString::from("not base64!"), 1, "x").unwrap_err(),
            LegacyError::Base64
        );
        assert_eq!(
            decrypt(&SecretString::from("  "), 1, "x").unwrap_err(),
            LegacyError::Empty
        );
    }
}
