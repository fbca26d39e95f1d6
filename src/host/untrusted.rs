//! Reading files that someone other than root controls (a user's preferences, anything under
//! `/Users` or `/tmp`), as root, without being hung or fooled.
//!
//! A FIFO would block `open` or `read` forever (and the daemon's runtime is single-threaded),
//! a symlink can point at `/dev/zero` or at a root-only file, and a huge file costs memory.
//! So: open with `O_NOFOLLOW | O_NONBLOCK` (the last component may not be a link; opening a
//! FIFO returns at once), accept only a regular file (`fstat`), read at most `limit` bytes,
//! and do it on a blocking thread with a time limit.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long reading one such file may take before we give up on it.
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Why an untrusted file was not read.
#[derive(Debug, thiserror::Error)]
pub enum UntrustedError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a regular file (a link, a FIFO or a device); not read")]
    NotRegular { path: PathBuf },
    #[error("{path} is larger than {limit} bytes; not read")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("reading {path} took longer than {seconds} s; given up")]
    Timeout { path: PathBuf, seconds: u64 },
}

/// Opens `path` for reading only if it is a regular file, without following a final symbolic
/// link and without blocking on a FIFO; returns it with its metadata.
pub fn open_regular(path: &Path) -> Result<(std::fs::File, std::fs::Metadata), UntrustedError> {
    let io = |source| UntrustedError::Io {
        path: path.to_owned(),
        source,
    };
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(i32::try_from(flags.bits()).expect("open flags fit an i32"))
        .open(path)
        .map_err(|e| {
            // ELOOP: the last component is a symbolic link.
            if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                UntrustedError::NotRegular {
                    path: path.to_owned(),
                }
            } else {
                io(e)
            }
        })?;
    let meta = file.metadata().map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(UntrustedError::NotRegular {
            path: path.to_owned(),
        });
    }
    Ok((file, meta))
}

/// Reads `path` if it is a regular file of at most `limit` bytes (synchronously: see
/// [`read_async`] for the runtime).
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, UntrustedError> {
    let io = |source| UntrustedError::Io {
        path: path.to_owned(),
        source,
    };
    let (file, meta) = open_regular(path)?;
    if meta.len() > limit {
        return Err(UntrustedError::TooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    let mut bytes = Vec::new();
    // The file may grow between fstat and read: never read more than the limit.
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(UntrustedError::TooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    Ok(bytes)
}

/// [`read`] on a blocking thread, given up after [`READ_TIMEOUT`], so the runtime never waits
/// on a file a user controls.
pub async fn read_async(path: PathBuf, limit: u64) -> Result<Vec<u8>, UntrustedError> {
    let shown = path.clone();
    let task = tokio::task::spawn_blocking(move || read(&path, limit));
    match tokio::time::timeout(READ_TIMEOUT, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(UntrustedError::Io {
            path: shown,
            source: std::io::Error::other(join.to_string()),
        }),
        Err(_) => Err(UntrustedError::Timeout {
            path: shown,
            seconds: READ_TIMEOUT.as_secs(),
        }),
    }
}

/// Makes a FIFO at `path` with mkfifo(1) (rustix has no mknod for Apple targets, and the test
/// must build for them too).
#[cfg(test)]
pub fn make_fifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prefs.plist");
        std::fs::write(&path, b"hello").unwrap();
        assert_eq!(read(&path, 100).unwrap(), b"hello");
    }

    #[test]
    fn a_fifo_a_link_to_dev_zero_and_a_huge_file_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        make_fifo(&fifo);
        assert!(matches!(
            read(&fifo, 100),
            Err(UntrustedError::NotRegular { .. })
        ));
        let link = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(matches!(
            read(&link, 100),
            Err(UntrustedError::NotRegular { .. })
        ));
        let big = dir.path().join("big");
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(50 << 20).unwrap();
        assert!(matches!(
            read(&big, 1 << 20),
            Err(UntrustedError::TooLarge { .. })
        ));
        assert!(matches!(
            read(&dir.path().join("missing"), 100),
            Err(UntrustedError::Io { .. })
        ));
    }
}
