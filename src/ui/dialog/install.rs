//! Is a usable swiftDialog installed, and if not, install it from `UI.DialogPackagePath`.
//!
//! SPEC §4 "UI version": the version is `CFBundleShortVersionString` of
//! `/Library/Application Support/Dialog/Dialog.app/Contents/Info.plist`, read with the plist
//! crate (no process). prestage needs 2.5.0: `name=` of `--textfield` arrived in 2.5.0
//! (swiftDialog commit 396d1cc, "add "name=" modifier"); without it the `--json` answer is
//! keyed by the label, and prestage would never find its fields. swiftDialog 3.x needs macOS 15
//! (its deployment target, `dialog.xcodeproj/project.pbxproj`, becomes the app's
//! `LSMinimumSystemVersion`): older Macs need 2.5.x.

use std::path::Path;

use tracing::info;

use crate::config::UiConfig;
use crate::host::Host;
use crate::paths::{mac, Root};
use crate::ui::UiError;

/// The oldest swiftDialog prestage works with.
pub const MINIMUM_VERSION: (u32, u32, u32) = (2, 5, 0);

/// swiftDialog's release packages are signed `Developer ID Installer: Bart Reardon (PWA5E9TQ59)`;
/// the team ID is what identifies the signer (`"DEVELOPMENT_TEAM[sdk=macosx*]" = PWA5E9TQ59`
/// in swiftDialog's `project.pbxproj`; Setup-Your-Mac checks `expectedDialogTeamID`).
pub const SWIFTDIALOG_TEAM_ID: &str = "PWA5E9TQ59";

/// What to install for which macOS, for admin-facing messages.
pub const WHICH_SWIFTDIALOG: &str = "swiftDialog 3.x needs macOS 15 or later; for Macs on \
    macOS 12 to 14 ship swiftDialog 2.5.x (2.5.0 or later, e.g. 2.5.6, the last 2.x release)";

/// `major.minor.patch` of a `CFBundleShortVersionString` such as `2.5.6` or `3.1.0b4`.
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.trim().split('.').map(|p| {
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    });
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

/// What is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// The launcher and a readable version.
    Version(String),
    /// No launcher at `UI.DialogPath`.
    NoLauncher,
    /// A launcher, but no readable version in the app's Info.plist (the app is missing or
    /// broken).
    NoVersion(String),
}

/// Reads what is installed under `root`.
pub fn installed(root: &Root, dialog_path: &Path) -> Installed {
    if !root.resolve(dialog_path).exists() {
        return Installed::NoLauncher;
    }
    let path = root.resolve(mac::DIALOG_INFO_PLIST);
    let value = match plist::Value::from_file(&path) {
        Ok(v) => v,
        Err(e) => return Installed::NoVersion(format!("{}: {e}", mac::DIALOG_INFO_PLIST)),
    };
    match value
        .as_dictionary()
        .and_then(|d| d.get("CFBundleShortVersionString"))
        .and_then(plist::Value::as_string)
    {
        Some(v) => Installed::Version(v.to_owned()),
        None => Installed::NoVersion(format!(
            "{} has no CFBundleShortVersionString",
            mac::DIALOG_INFO_PLIST
        )),
    }
}

impl Installed {
    /// Whether prestage can use it.
    pub fn usable(&self) -> bool {
        match self {
            Installed::Version(v) => parse_version(v).is_some_and(|v| v >= MINIMUM_VERSION),
            _ => false,
        }
    }

    /// The error when it is not usable and there is no package to install.
    fn error(&self, ui: &UiConfig) -> UiError {
        let path = ui.dialog_path.display().to_string();
        match self {
            Installed::NoLauncher => UiError::DialogMissing {
                path,
                hint: format!(
                    "install swiftDialog with the prestage package or your MDM, or set \
                     UI.DialogPackagePath to a swiftDialog .pkg on the Mac ({WHICH_SWIFTDIALOG})"
                ),
            },
            Installed::NoVersion(why) => UiError::DialogMissing {
                path,
                hint: format!(
                    "its app is missing or broken ({why}); reinstall swiftDialog, or set \
                     UI.DialogPackagePath to a swiftDialog .pkg on the Mac"
                ),
            },
            Installed::Version(found) => UiError::DialogTooOld {
                found: found.clone(),
                hint: format!(
                    "install a newer swiftDialog with your MDM, or set UI.DialogPackagePath to \
                     its signed .pkg on the Mac ({WHICH_SWIFTDIALOG})"
                ),
            },
        }
    }
}

/// Makes sure a usable swiftDialog is installed: when it is missing or older than 2.5.0 and
/// `UI.DialogPackagePath` names a package signed by swiftDialog's team, installs it;
/// otherwise a permanent, admin-facing error.
pub async fn ensure(root: &Root, ui: &UiConfig, host: &dyn Host) -> Result<(), UiError> {
    let before = installed(root, &ui.dialog_path);
    if before.usable() {
        return Ok(());
    }
    let path = ui.dialog_path.display().to_string();
    let Some(pkg) = ui.dialog_package_path.clone() else {
        return Err(before.error(ui));
    };
    if !root.resolve(&pkg).is_file() {
        return Err(UiError::DialogMissing {
            path,
            hint: format!(
                "UI.DialogPackagePath {} does not exist; ship the swiftDialog package there",
                pkg.display()
            ),
        });
    }
    // Checked and installed as a copy in the root-only state directory: the admin's folder may
    // be one other users can write to.
    let admin_pkg = pkg;
    let pkg = crate::host::staging::stage(root, &admin_pkg, "swiftDialog.pkg")
        .await
        .map_err(|e| UiError::DialogMissing {
            path: path.clone(),
            hint: format!("UI.DialogPackagePath: {e}"),
        })?;
    let sig = host
        .package_signature(&pkg)
        .await
        .map_err(|e| UiError::DialogMissing {
            path: path.clone(),
            hint: format!(
                "the signature of {} could not be checked: {e}; use swiftDialog's signed \
                 release package",
                pkg.display()
            ),
        })?;
    let leaf = sig.leaf();
    if !sig.is_developer_id_of(SWIFTDIALOG_TEAM_ID) {
        return Err(UiError::DialogMissing {
            path,
            hint: format!(
                "{} is not signed by swiftDialog's developer (team {SWIFTDIALOG_TEAM_ID}) but \
                 by {leaf:?}; use the release package from swiftDialog's GitHub page",
                pkg.display()
            ),
        });
    }
    info!(package = %pkg.display(), signer = leaf, installed = ?before, "installing swiftDialog");
    host.install_package(&pkg)
        .await
        .map_err(|e| UiError::DialogMissing {
            path: path.clone(),
            hint: format!("installing {} failed: {e}", pkg.display()),
        })?;
    crate::host::staging::remove(root, &pkg);
    let after = installed(root, &ui.dialog_path);
    if after.usable() {
        return Ok(());
    }
    Err(match after {
        Installed::Version(found) => UiError::DialogTooOld {
            found,
            hint: format!(
                "UI.DialogPackagePath {} installed it: ship swiftDialog 2.5.0 or later there \
                 ({WHICH_SWIFTDIALOG})",
                admin_pkg.display()
            ),
        },
        other => UiError::DialogMissing {
            path,
            hint: format!(
                "{} installed but did not provide a usable swiftDialog ({other:?})",
                pkg.display()
            ),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number() {
        assert_eq!(parse_version("2.5.6"), Some((2, 5, 6)));
        assert_eq!(parse_version("3.1.0b4"), Some((3, 1, 0)));
        assert_eq!(parse_version("2.10"), Some((2, 10, 0)));
        assert_eq!(parse_version("x"), None);
        assert!(Installed::Version("2.5.0".into()).usable());
        assert!(Installed::Version("2.10.0".into()).usable());
        assert!(!Installed::Version("2.4.2".into()).usable());
        assert!(!Installed::NoLauncher.usable());
    }
}
