//! Local accounts: account short names (`EnrollmentUser`, `DecryptUser`) and the setup
//! account's password (`EnrollmentUserPassword`).

use secrecy::SecretString;

use super::level::Level;
use super::Validator;

impl Validator<'_> {
    /// `EnrollmentUserPassword`: the setup account's password, for the agent's service account.
    /// Spaces are allowed (it is a password); a line break is not, since the credentials file
    /// is one line (`<user>;<password>`). Needs `EnrollmentUser`.
    pub(super) fn enrollment_user_password(
        &mut self,
        top: &mut Level<'_>,
        user: Option<&Option<String>>,
    ) -> Result<Option<SecretString>, ()> {
        const KEY: &str = "EnrollmentUserPassword";
        let Some(s) = self.string(top, KEY) else {
            return if top.has(KEY) { Err(()) } else { Ok(None) };
        };
        if s.is_empty() || s.contains(['\n', '\r', '\0']) {
            self.err(
                KEY,
                "is empty or contains a line break",
                "set the setup account's password exactly, on one line, or remove the key",
            );
            return Err(());
        }
        if matches!(user, Some(None)) {
            self.err(
                KEY,
                "is set without EnrollmentUser",
                "set EnrollmentUser to the setup account this password belongs to, or remove EnrollmentUserPassword",
            );
            return Err(());
        }
        Ok(Some(SecretString::from(s)))
    }

    /// A local account short name.
    pub(super) fn account_name(
        &mut self,
        level: &mut Level<'_>,
        key: &'static str,
    ) -> Result<Option<String>, ()> {
        let Some(s) = self.string(level, key) else {
            return if level.has(key) { Err(()) } else { Ok(None) };
        };
        let valid = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            && !s.starts_with('-')
            && s != "root";
        if !valid {
            self.err(
                &level.path(key),
                format!("`{s}` is not a usable macOS account name"),
                "use the account's short name (letters, digits, . _ -), not its full name, and never root",
            );
            return Err(());
        }
        Ok(Some(s))
    }
}
