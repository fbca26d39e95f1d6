//! Where `APIKeyKeychainService` is read from: a generic password in the System keychain.
//!
//! On a Mac (`SystemKeychain`, compiled on macOS only) the secret is a generic password whose
//! *service* is the configured name, in `/Library/Keychains/System.keychain`; a JumpCloud
//! command writes it there (for example `security add-generic-password -s <service> -a prestage
//! -T /usr/local/libexec/prestage/prestage -w <key> /Library/Keychains/System.keychain`, where
//! `-T` puts prestage in the item's access list) and prestage deletes it when enrollment is done.
//!
//! The daemon uses [`system`]. Tests, the simulator and `prestage demo` wire in a simulation
//! instead (`host::fake::keychain::FakeKeychain`, only compiled with the `sim` feature): the
//! choice is made where the parts are put together, never guessed from `--root`.

use std::path::PathBuf;

use secrecy::SecretString;

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
    #[error("the System keychain item for service {service:?} is not text (an API key is); store it again with `security add-generic-password -s '{service}' -a prestage -w <key> -T /usr/local/libexec/prestage/prestage /Library/Keychains/System.keychain`")]
    NotText { service: String },
    #[error("the System keychain did not answer for service {service:?} within {seconds} s; trying again")]
    Slow { service: String, seconds: u64 },
    #[error("APIKeyKeychainService {service:?} needs the macOS System keychain, and this is not a Mac; use APIKey or EncryptedAPIKey here")]
    Unavailable { service: String },
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

/// How long one keychain call may take (securityd can be slow right after boot).
pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `f` on `keychain` on a blocking thread, given up after [`CALL_TIMEOUT`]: the Security
/// framework's calls are synchronous and may wait on securityd, and the daemon's only runtime
/// thread must keep answering SIGTERM.
pub async fn off_thread<T: Send + 'static>(
    keychain: &std::sync::Arc<dyn Keychain>,
    service: &str,
    f: impl FnOnce(&dyn Keychain, &str) -> Result<T, KeychainError> + Send + 'static,
) -> Result<T, KeychainError> {
    let kc = std::sync::Arc::clone(keychain);
    let owned = service.to_owned();
    let task = tokio::task::spawn_blocking(move || f(kc.as_ref(), &owned));
    match tokio::time::timeout(CALL_TIMEOUT, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) | Err(_) => Err(KeychainError::Slow {
            service: service.to_owned(),
            seconds: CALL_TIMEOUT.as_secs(),
        }),
    }
}

/// The keychain the daemon reads `APIKeyKeychainService` from: the System keychain on macOS;
/// elsewhere there is none, and using one is an error that says so. Tests and the simulator
/// wire in the fake (`host::fake::keychain`) themselves.
pub fn system() -> Box<dyn Keychain> {
    #[cfg(target_os = "macos")]
    {
        Box::new(SystemKeychain)
    }
    #[cfg(not(target_os = "macos"))]
    {
        Box::new(Unavailable)
    }
}

/// No System keychain: prestage runs on a Mac; on any other system a keychain-held API key
/// cannot be read.
#[cfg(not(target_os = "macos"))]
#[derive(Debug, Clone, Copy)]
struct Unavailable;

#[cfg(not(target_os = "macos"))]
impl Keychain for Unavailable {
    fn read(&self, service: &str) -> Result<Option<SecretString>, KeychainError> {
        Err(KeychainError::Unavailable {
            service: service.to_owned(),
        })
    }

    fn delete(&self, service: &str) -> Result<(), KeychainError> {
        Err(KeychainError::Unavailable {
            service: service.to_owned(),
        })
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
        let Some((password, _item)) = Self::find(service)? else {
            return Ok(None);
        };
        // Not "not there yet": an item that is not text never becomes an API key.
        let text = std::str::from_utf8(password.as_ref()).map_err(|_| KeychainError::NotText {
            service: service.to_owned(),
        })?;
        Ok(Some(SecretString::from(text.trim().to_owned())))
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
