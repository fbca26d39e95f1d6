//! Check what you install, install what you checked: a package named by the admin
//! (`Agent.PackagePath`, `UI.DialogPackagePath`) may sit where other users can write
//! (`/var/tmp`, `/Users/Shared`), so between `pkgutil --check-signature` and `installer` it could
//! be swapped. It is first copied into the root-only state directory (`/var/db/prestage`, 0700),
//! and the copy is checked and installed. The source is opened without following a final
//! symbolic link and must be a regular file (a flat package, as JumpCloud's and swiftDialog's
//! are).

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::paths::{mac, Root};

/// Where staged copies live (macOS path), inside the state directory.
pub const STAGING_DIR: &str = "/var/db/prestage/staged";
/// Larger than any installer package we take (JumpCloud's agent is about 50 MB).
const LIMIT: u64 = 2 << 30;

/// Why a package could not be staged.
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a flat package file (a folder, a link or a device); ship the .pkg file itself")]
    NotAFile { path: PathBuf },
    #[error("{path} is larger than {limit} bytes; not an installer package")]
    TooLarge { path: PathBuf, limit: u64 },
}

/// Copies the package at macOS path `source` into the state directory as `name` (e.g.
/// `jumpcloud-agent.pkg`) and returns the copy's macOS path (what `pkgutil` and `installer` are
/// given: arguments are not rewritten under `--root`). Runs on a blocking thread.
pub async fn stage(root: &Root, source: &Path, name: &str) -> Result<PathBuf, StagingError> {
    let from = root.resolve(source);
    let mac_dest = Path::new(STAGING_DIR).join(name);
    let dest = root.resolve(&mac_dest);
    let dir = root.resolve(STAGING_DIR);
    let state_dir = root.resolve(mac::STATE_DIR);
    tokio::task::spawn_blocking(move || copy(&from, &dir, &state_dir, &dest))
        .await
        .map_err(|e| StagingError::Io {
            path: PathBuf::from(source),
            source: std::io::Error::other(e.to_string()),
        })??;
    Ok(mac_dest)
}

/// Removes a staged copy once it is installed (a missing one is fine).
pub fn remove(root: &Root, mac_path: &Path) {
    let _ = fs::remove_file(root.resolve(mac_path));
}

fn copy(from: &Path, dir: &Path, state_dir: &Path, dest: &Path) -> Result<(), StagingError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| StagingError::Io { path, source }
    };
    for d in [state_dir, dir] {
        fs::create_dir_all(d).map_err(io(d))?;
        fs::set_permissions(d, fs::Permissions::from_mode(0o700)).map_err(io(d))?;
    }
    let (mut input, meta) = super::untrusted::open_regular(from).map_err(|e| match e {
        super::untrusted::UntrustedError::Io { path, source } => StagingError::Io { path, source },
        _ => StagingError::NotAFile {
            path: from.to_owned(),
        },
    })?;
    if meta.len() > LIMIT {
        return Err(StagingError::TooLarge {
            path: from.to_owned(),
            limit: LIMIT,
        });
    }
    let tmp = dest.with_extension("staging");
    let _ = fs::remove_file(&tmp);
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = input.read(&mut buf).map_err(io(from))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > LIMIT {
            let _ = fs::remove_file(&tmp);
            return Err(StagingError::TooLarge {
                path: from.to_owned(),
                limit: LIMIT,
            });
        }
        out.write_all(&buf[..n]).map_err(io(&tmp))?;
    }
    out.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, dest).map_err(io(dest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_package_is_copied_into_the_state_directory_and_a_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let shared = root.resolve("/Users/Shared/agent.pkg");
        fs::create_dir_all(shared.parent().unwrap()).unwrap();
        fs::write(&shared, b"xar!package").unwrap();
        let copy = stage(&root, Path::new("/Users/Shared/agent.pkg"), "agent.pkg")
            .await
            .unwrap();
        assert_eq!(copy, Path::new("/var/db/prestage/staged/agent.pkg"));
        assert_eq!(fs::read(root.resolve(&copy)).unwrap(), b"xar!package");
        let mode = fs::metadata(root.resolve(STAGING_DIR))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        // Swapping the original afterwards changes nothing about the copy.
        fs::write(&shared, b"evil").unwrap();
        assert_eq!(fs::read(root.resolve(&copy)).unwrap(), b"xar!package");
        // A link at the admin's path is refused.
        let link = root.resolve("/Users/Shared/link.pkg");
        std::os::unix::fs::symlink(&shared, &link).unwrap();
        assert!(matches!(
            stage(&root, Path::new("/Users/Shared/link.pkg"), "x.pkg").await,
            Err(StagingError::NotAFile { .. })
        ));
        remove(&root, &copy);
        assert!(!root.resolve(&copy).exists());
    }
}
