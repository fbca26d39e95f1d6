//! swiftDialog's exit codes and what prestage makes of them.
//!
//! The app's codes (`dialog/App Processing/AppVariables.swift`, exit0…exit210, and their
//! callers; source audit row 18): 0 button 1, 2 button 2, 3 info button, 4 timer, 5 `quit:`
//! from the command file, 10 the quit key, 15 the window was closed (3.x), 20 is defined but
//! no longer raised, 30 key authorisation required (a managed `AuthorisationKey`,
//! `ProcessCLOptions.swift`), 40 its launcher is gone (3.x), 201–210 resource errors; 255
//! exits 0. The 3.x launcher (`dialogcli/dialogcli.swift`) adds 1 (no GUI user, a command
//! file that is a link to a folder or that the user cannot read) and 255 (the app's binary is
//! missing or cannot be started).

use crate::ui::UiError;

/// The meaning of a swiftDialog exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogExit {
    Button1,
    Button2,
    InfoButton,
    Timer,
    QuitCommand,
    QuitKey,
    /// 15: the employee closed the window (3.x).
    WindowClosed,
    /// 20: defined, not raised by current versions.
    Timeout,
    /// 30: a profile requires an authorisation key.
    KeyAuthRefused,
    /// 40: the app saw its launcher go.
    LauncherGone,
    /// 201–210: an image, file or colour argument could not be used.
    Resource(i32),
    /// 1 from the launcher: no GUI user, or the command file was refused.
    LauncherRefused,
    /// 255 from the launcher: Dialog.app missing or not startable.
    AppMissing,
    Other(i32),
}

impl DialogExit {
    /// Every variant with a code of its own. [`DialogExit::code`] is the one place a number is
    /// given to a meaning; [`DialogExit::from_code`] and the fake swiftDialog read it from there.
    const NAMED: [DialogExit; 13] = [
        Self::Button1,
        Self::LauncherRefused,
        Self::Button2,
        Self::InfoButton,
        Self::Timer,
        Self::QuitCommand,
        Self::QuitKey,
        Self::WindowClosed,
        Self::Timeout,
        Self::KeyAuthRefused,
        Self::LauncherGone,
        Self::AppMissing,
        // A stand-in for the range: `from_code` maps 201..=210 itself.
        Self::Resource(201),
    ];

    pub fn from_code(code: i32) -> Self {
        if (201..=210).contains(&code) {
            return Self::Resource(code);
        }
        Self::NAMED
            .into_iter()
            .find(|e| e.code() == code)
            .unwrap_or(Self::Other(code))
    }

    pub const fn code(self) -> i32 {
        match self {
            Self::Button1 => 0,
            Self::LauncherRefused => 1,
            Self::Button2 => 2,
            Self::InfoButton => 3,
            Self::Timer => 4,
            Self::QuitCommand => 5,
            Self::QuitKey => 10,
            Self::WindowClosed => 15,
            Self::Timeout => 20,
            Self::KeyAuthRefused => 30,
            Self::LauncherGone => 40,
            Self::AppMissing => 255,
            Self::Resource(c) | Self::Other(c) => c,
        }
    }

    /// The window went without an answer in a way a person causes (or a timer): ask again.
    pub fn is_closed_without_answer(self) -> bool {
        matches!(
            self,
            Self::Button2
                | Self::InfoButton
                | Self::Timer
                | Self::QuitCommand
                | Self::QuitKey
                | Self::WindowClosed
                | Self::Timeout
        )
    }
}

/// The admin's fix for exit 30.
pub const AUTH_KEY_HINT: &str = "a configuration profile sets swiftDialog's `AuthorisationKey` \
    preference (domain au.csiro.dialog; also read as AuthorizationKey, AuthKey or Key), so \
    swiftDialog only opens windows for callers that pass that key, and prestage does not (the \
    key would be in every window's argv, readable by any local user); remove the key from the \
    au.csiro.dialog profile for the Macs that enroll with prestage, or scope that profile to \
    them only after the enrollment";

/// The error for an exit that is neither an answer nor a person closing the window. `user` is
/// the console user, `command_file` the window's (for exit 1).
pub fn exit_error(exit: DialogExit, user: &str, command_file: &str) -> UiError {
    let code = exit.code();
    let what = match exit {
        DialogExit::KeyAuthRefused => {
            return UiError::DialogAuthorisation {
                hint: AUTH_KEY_HINT.to_owned(),
            }
        }
        DialogExit::LauncherRefused => format!(
            "the launcher exited 1 although {user} is logged in at the console: swiftDialog 3.x \
             does that when it refuses the command file {command_file} (a link to a folder, or \
             not readable by {user})"
        ),
        DialogExit::LauncherGone => "the window saw its launcher process go".to_owned(),
        DialogExit::AppMissing => format!(
            "the launcher could not start Dialog.app ({}); reinstall swiftDialog",
            crate::paths::mac::DIALOG_APP
        ),
        DialogExit::Resource(201) => {
            "an image (UI.Icon or UI.BannerImage) could not be loaded".to_owned()
        }
        DialogExit::Resource(202) => "a file it was given was not found".to_owned(),
        DialogExit::Resource(_) => "an argument could not be used".to_owned(),
        _ => "unexpected exit".to_owned(),
    };
    UiError::Dialog(format!("swiftDialog exited with code {code}: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_swiftdialog() {
        assert_eq!(DialogExit::from_code(0), DialogExit::Button1);
        assert_eq!(DialogExit::from_code(5), DialogExit::QuitCommand);
        assert_eq!(DialogExit::from_code(10), DialogExit::QuitKey);
        assert_eq!(DialogExit::from_code(15), DialogExit::WindowClosed);
        assert_eq!(DialogExit::from_code(30), DialogExit::KeyAuthRefused);
        assert_eq!(DialogExit::from_code(40), DialogExit::LauncherGone);
        assert_eq!(DialogExit::from_code(202), DialogExit::Resource(202));
        for c in [0, 1, 2, 3, 4, 5, 10, 15, 20, 30, 40, 201, 210, 255, 77] {
            assert_eq!(DialogExit::from_code(c).code(), c);
        }
        // Every meaning round-trips through its code: none is missing from `NAMED`.
        for e in DialogExit::NAMED {
            assert_eq!(DialogExit::from_code(e.code()), e);
        }
        assert_eq!(DialogExit::from_code(77), DialogExit::Other(77));
        assert!(DialogExit::WindowClosed.is_closed_without_answer());
        assert!(!DialogExit::LauncherGone.is_closed_without_answer());
    }

    #[test]
    fn exit_1_with_a_user_names_the_command_file_and_30_the_preference() {
        let e = exit_error(DialogExit::LauncherRefused, "welcome", "/var/tmp/x.log");
        let text = e.to_string();
        assert!(
            text.contains("/var/tmp/x.log") && text.contains("welcome"),
            "{text}"
        );
        assert!(!text.contains("no console"), "{text}");
        let e = exit_error(DialogExit::KeyAuthRefused, "welcome", "");
        assert!(matches!(e, UiError::DialogAuthorisation { .. }));
        assert!(e.to_string().contains("AuthorisationKey"));
        assert!(e.to_string().contains("au.csiro.dialog"));
    }
}
