//! FileVault: what `fdesetup status` and `diskutil apfs updatePreboot /` print, as pure parsers
//! over their real output (the commands themselves run in `mac::MacHost`).
//!
//! Why prestage runs them (SPEC §4): a user who gets a Secure Token after FileVault was turned
//! on "may not be included in the FileVault login window" until `diskutil apfs updatePreboot /`
//! runs (freegeek-pdx/mkuser, notes at l. 6804-6806), so the employee could not unlock the disk
//! at the next boot once the setup account is deleted.

/// `fdesetup status` (fdesetup(8)) prints one state line first, e.g. `FileVault is On.`,
/// `FileVault is Off.`, `FileVault is Off, but will be enabled after the next restart.` (a
/// deferred enablement), or `FileVault is On, but needs to be restarted to finish.`, possibly
/// followed by `Encryption in progress: Percent completed = 12`. `Some(true)` when the line says
/// On (a volume that is encrypted or being encrypted has a preboot unlock list to refresh),
/// `Some(false)` when it says Off, `None` for anything else.
pub(crate) fn parse_fdesetup_status(stdout: &str) -> Option<bool> {
    let line = stdout.lines().map(str::trim).find(|l| !l.is_empty())?;
    if line.starts_with("FileVault is On") {
        Some(true)
    } else if line.starts_with("FileVault is Off") {
        Some(false)
    } else {
        None
    }
}

/// The line `diskutil apfs updatePreboot` ends a run with, before `Finished APFS operation`:
/// `UpdatePreboot: Exiting Update Preboot operation with overall error=(ZeroMeansSuccess)=0`
/// (freegeek-pdx's `fg-snapshot-reset`, by mkuser's author, checks for exactly these two lines).
const PREBOOT_VERDICT: &str = "overall error=(ZeroMeansSuccess)=";

/// Whether `diskutil apfs updatePreboot /` succeeded: exit 0, and when it printed its verdict
/// line, the verdict is 0 (a non-zero overall error with exit 0 is not trusted).
pub(crate) fn preboot_updated(code: Option<i32>, stdout: &str, stderr: &str) -> bool {
    if code != Some(0) {
        return false;
    }
    let verdict = stdout
        .lines()
        .chain(stderr.lines())
        .filter_map(|l| l.split_once(PREBOOT_VERDICT).map(|(_, n)| n.trim()))
        .next_back();
    verdict.is_none_or(|n| n == "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdesetup_states() {
        assert_eq!(parse_fdesetup_status("FileVault is On.\n"), Some(true));
        assert_eq!(
            parse_fdesetup_status(
                "FileVault is On.\nEncryption in progress: Percent completed = 12\n"
            ),
            Some(true)
        );
        assert_eq!(parse_fdesetup_status("FileVault is Off.\n"), Some(false));
        assert_eq!(
            parse_fdesetup_status(
                "FileVault is Off, but will be enabled after the next restart.\n"
            ),
            Some(false)
        );
        assert_eq!(parse_fdesetup_status(""), None);
        assert_eq!(parse_fdesetup_status("Error: not authorized\n"), None);
    }

    #[test]
    fn preboot_verdicts() {
        let ok = "Started APFS operation\nUpdatePreboot: Commencing operation\n\
                  UpdatePreboot: Exiting Update Preboot operation with overall error=(ZeroMeansSuccess)=0\n\
                  Finished APFS operation\n";
        assert!(preboot_updated(Some(0), ok, ""));
        let bad = ok.replace("=(ZeroMeansSuccess)=0", "=(ZeroMeansSuccess)=49180");
        assert!(!preboot_updated(Some(0), &bad, ""));
        assert!(!preboot_updated(Some(1), ok, ""));
        assert!(!preboot_updated(None, ok, ""));
        // A minimal tool that only exits 0 (SPEC §4 promises the exit code).
        assert!(preboot_updated(Some(0), "", ""));
    }
}
