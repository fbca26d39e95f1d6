//! Where `APIKeyKeychainService` is read from: a generic password in the System keychain.
//!
//! On a Mac (`SystemKeychain`, compiled on macOS only) the secret is a generic password whose
//! *service* is the configured name, in `/Library/Keychains/System.keychain`; a JumpCloud
//! command writes it there (for example `security add-generic-password -s <service> -a prestage
//! -T /usr/local/libexec/prestage/prestage -w <key> /Library/Keychains/System.keychain`, where
//! `-T` puts prestage in the item's access list) and prestage deletes it when enrollment is done.
//!
//! Everywhere else, and under any `--root` other than `/`, [`FakeKeychain`] stands in for it: a
//! JSON object `{"<service>": "<secret>"}` in `<root>/.fakemac/keychain.json`. That file is the
//! simulation used by the tests, the simulator and `prestage demo`; it is never used on a real Mac.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use crate::paths::Root;

/// Why the keychain could not be read or changed. Never carries the secret.
#[derive(Debug, thiserror::Error)]
pub enum KeychainError {
    #[error("cannot read the keychain simulation {path}: {source}; fix or delete the file")]
    FakeIo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the keychain simulation {path} is not a JSON object of strings ({detail}); fix or delete the file")]
    FakeFormat { path: PathBuf, detail: String },
    #[error("the System keychain refused access to service {service:?} (OSStatus {code}); prestage must run as root")]
    System { service: String, code: i32 },
    #[error("the System keychain still holds an item for service {service:?} after deleting it; delete it with `sudo security delete-generic-password -s '{service}' /Library/Keychains/System.keychain`")]
    NotDeleted { service: String },
}

/// A place holding the API key by service name.
pub trait Keychain: Send + Sync {
    /// The secret stored under `service`, or `None` when there is none (yet).
    fn read(&self, service: &str) -> Result<Option<SecretString>, KeychainError>;
    /// Removes the secret stored under `service`; removing a missing one is not an error.
    fn delete(&self, service: &str) -> Result<(), KeychainError>;
}

/// The keychain for this `--root`: the System keychain on a real Mac with root `/`, the JSON
/// simulation otherwise.
pub fn for_root(root: &Root) -> Box<dyn Keychain> {
    #[cfg(target_os = "macos")]
    if root.is_system() {
        return Box::new(SystemKeychain);
    }
    Box::new(FakeKeychain::for_root(root))
}

/// The simulation: `<root>/.fakemac/keychain.json`, a JSON object mapping service to secret.
#[derive(Debug, Clone)]
pub struct FakeKeychain {
    path: PathBuf,
}

impl FakeKeychain {
    /// The simulation file of this root.
    pub fn for_root(root: &Root) -> Self {
        Self {
            path: root.dir().join(".fakemac").join("keychain.json"),
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

/// The macOS System keychain, through security-framework 3 (`os::macos::passwords`: the
/// `SecKeychainFindGenericPassword` family). Not compiled on other systems.
#[cfg(target_os = "macos")]
#[derive(Debug, Clone, Copy)]
pub struct SystemKeychain;

#[cfg(target_os = "macos")]
impl SystemKeychain {
    const PATH: &'static str = "/Library/Keychains/System.keychain";
    /// `errSecItemNotFound` (Security framework, SecBase.h).
    const NOT_FOUND: i32 = -25300;

    /// Keeps the Security framework from asking anyone anything until the guard is dropped.
    /// Reading an item whose access list lacks prestage otherwise prompts ("the user is prompted
    /// before access is allowed", Apple's SecKeychainFindGenericPassword reference), which a
    /// daemon cannot answer; with interaction off the call fails at once with
    /// `errSecInteractionNotAllowed` ("functions that normally display a user interface will
    /// instead return an error", SecKeychainSetUserInteractionAllowed), which the engine
    /// reports with the fix. Process-wide: the guard turns interaction back on when dropped.
    fn no_prompt(
        service: &str,
    ) -> Result<security_framework::os::macos::keychain::KeychainUserInteractionLock, KeychainError>
    {
        security_framework::os::macos::keychain::SecKeychain::disable_user_interaction().map_err(
            |e| KeychainError::System {
                service: service.to_owned(),
                code: e.code(),
            },
        )
    }

    fn find(
        service: &str,
    ) -> Result<
        Option<(
            security_framework::os::macos::passwords::SecKeychainItemPassword,
            security_framework::os::macos::keychain_item::SecKeychainItem,
        )>,
        KeychainError,
    > {
        use security_framework::os::macos::keychain::SecKeychain;
        use security_framework::os::macos::passwords::find_generic_password;
        let err = |e: security_framework::base::Error| KeychainError::System {
            service: service.to_owned(),
            code: e.code(),
        };
        let keychain = SecKeychain::open(Self::PATH).map_err(err)?;
        // An empty account name matches any account: SecKeychainFindGenericPassword only adds
        // the account to its query `if (accountName && accountNameLength)` (Apple's Security
        // source, libsecurity_keychain/lib/SecKeychain.cpp).
        match find_generic_password(Some(std::slice::from_ref(&keychain)), service, "") {
            Ok(found) => Ok(Some(found)),
            Err(e) if e.code() == Self::NOT_FOUND => Ok(None),
            Err(e) => Err(err(e)),
        }
    }
}

#[cfg(target_os = "macos")]
impl Keychain for SystemKeychain {
    fn read(&self, service: &str) -> Result<Option<SecretString>, KeychainError> {
        let _no_prompt = Self::no_prompt(service)?;
        Ok(Self::find(service)?.and_then(|(password, _item)| {
            std::str::from_utf8(password.as_ref())
                .ok()
                .map(|s| SecretString::from(s.trim().to_owned()))
        }))
    }

    fn delete(&self, service: &str) -> Result<(), KeychainError> {
        // `SecKeychainItem::delete` does not report `SecKeychainItemDelete`'s status, and
        // `find` returns one item of possibly several (other account names): delete until
        // none is found, and treat one that survives as an error.
        let _no_prompt = Self::no_prompt(service)?;
        for _ in 0..16 {
            match Self::find(service)? {
                Some((_password, item)) => item.delete(),
                None => return Ok(()),
            }
        }
        Err(KeychainError::NotDeleted {
            service: service.to_owned(),
        })
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
        let err = for_root(&root).read("svc").unwrap_err().to_string();
        assert!(err.contains("keychain.json"), "{err}");
        assert!(!err.contains("topsecretvalue"), "{err}");
    }
}
