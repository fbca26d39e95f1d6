//! The System keychain of a simulated Mac: a JSON object `{"<service>": "<secret>"}` in
//! `<root>/.fakemac/keychain.json` (what a JumpCloud command's `security add-generic-password`
//! leaves on a real Mac). Used by tests, the simulator and `prestage demo`, wired in by them.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use crate::config::keychain::{Keychain, KeychainError};
use crate::paths::Root;

/// The simulation: `<root>/.fakemac/keychain.json`, a JSON object mapping service to secret.
#[derive(Debug, Clone)]
pub struct FakeKeychain {
    path: PathBuf,
}

impl FakeKeychain {
    /// The simulation file of this root.
    pub fn for_root(root: &Root) -> Self {
        Self {
            path: root.resolve(super::world::KEYCHAIN_FILE),
        }
    }

    /// The JSON file this keychain lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<BTreeMap<String, String>, KeychainError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(source) => {
                return Err(KeychainError::FakeIo {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        // serde_json's messages name a line and column, never the values.
        serde_json::from_str(&text).map_err(|e| KeychainError::FakeFormat {
            path: self.path.clone(),
            detail: e.to_string(),
        })
    }

    fn save(&self, map: &BTreeMap<String, String>) -> Result<(), KeychainError> {
        let io = |source| KeychainError::FakeIo {
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().unwrap_or_else(|| Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        let text = serde_json::to_string_pretty(map).map_err(|e| KeychainError::FakeFormat {
            path: self.path.clone(),
            detail: e.to_string(),
        })?;
        tmp.write_all(text.as_bytes()).map_err(io)?;
        tmp.persist(&self.path).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Stores `secret` under `service` (what the JumpCloud command does on a real Mac); used by
    /// the simulator and tests.
    pub fn store(&self, service: &str, secret: &SecretString) -> Result<(), KeychainError> {
        let mut map = self.load()?;
        map.insert(service.to_owned(), secret.expose_secret().to_owned());
        self.save(&map)
    }
}

impl Keychain for FakeKeychain {
    fn read(&self, service: &str) -> Result<Option<SecretString>, KeychainError> {
        Ok(self.load()?.remove(service).map(SecretString::from))
    }

    fn delete(&self, service: &str) -> Result<(), KeychainError> {
        let mut map = self.load()?;
        if map.remove(service).is_some() {
            self.save(&map)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_keychain_reads_stores_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let kc = FakeKeychain::for_root(&root);
        assert!(kc.read("svc").unwrap().is_none());
        kc.store("svc", &SecretString::from("s3cret")).unwrap();
        assert_eq!(kc.read("svc").unwrap().unwrap().expose_secret(), "s3cret");
        assert!(kc.path().ends_with(".fakemac/keychain.json"));
        kc.delete("svc").unwrap();
        assert!(kc.read("svc").unwrap().is_none());
        kc.delete("svc").unwrap();
    }

    #[test]
    fn fake_keychain_bad_json_is_an_error_without_content() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        std::fs::create_dir_all(dir.path().join(".fakemac")).unwrap();
        std::fs::write(
            dir.path().join(".fakemac/keychain.json"),
            "{\"svc\": \"topsecretvalue\"",
        )
        .unwrap();
        let err = FakeKeychain::for_root(&root)
            .read("svc")
            .unwrap_err()
            .to_string();
        assert!(err.contains("keychain.json"), "{err}");
        assert!(!err.contains("topsecretvalue"), "{err}");
    }
}
