//! `Identity.Preset` (SPEC §3): the employee's identifier as the MDM already knows it from an
//! authenticated enrollment, and the mode of enrollment a configuration describes.
//!
//! An MDM substitutes its payload variables when it sends the profile; where it cannot (no
//! user assigned to the device yet, no directory lookup), the variable stays as it was typed.
//! Such a value is not an identifier: prestage then asks the employee, as without a preset.
//! The placeholder forms recognised, each from the MDM's own documentation:
//! - `$EMAIL`, `$USERNAME`, … (Jamf Pro, "Computer Configuration Profiles": "$VARIABLE is
//!   replaced with the value of the corresponding attribute in Jamf Pro"; Jamf Setup Manager's
//!   `enrollmentUserID` is set to `$EMAIL` the same way);
//! - `%Email%`, `%Username%` (Jamf School, "Payload Variables"; Apple Profile Manager's
//!   payload variables use the same `%…%` form);
//! - `{{sso.email}}` (Applivery, "Automatic local account creation": SSO user data as
//!   `{{…}}` variables);
//! - `{EmailAddress}` (Workspace ONE lookup values, as listed in a public gist of AirWatch
//!   lookup variables).
//!
//! That Jamf Pro leaves a variable it has no value for as typed, or substitutes nothing, is
//! reported by admins (root3nl/SupportApp issue 87: `$FULLNAME` shown literally on Macs, and
//! nothing at all for `$REALNAME` and `$USERNAME`, until User and Location was filled in):
//! both count as no preset in `run`.
//!
//! A directory email never contains `$` followed by a letter, `%word%`, or braces around a word,
//! so the test errs on the side of asking.

use super::{Config, Diagnostic, Mode, Severity};

/// Whether `value` still holds an MDM payload variable the MDM did not substitute (see the
/// module docs for the forms and their sources).
pub fn is_unsubstituted(value: &str) -> bool {
    let v = value.trim();
    let bytes = v.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'.';
    // `$NAME` or `${NAME}` anywhere.
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'$' {
            if let Some(&next) = bytes.get(i + 1) {
                if next.is_ascii_alphabetic() || next == b'_' || next == b'{' {
                    return true;
                }
            }
        }
    }
    if v.contains("{{") && v.contains("}}") {
        return true;
    }
    // `%Word%` and `{Word}`: a delimiter, at least one word character, the closing delimiter.
    let spans = |open: u8, close: u8| {
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == open {
                let rest = &bytes[i + 1..];
                let n = rest.iter().take_while(|b| word(**b)).count();
                if n > 0 && rest.get(n) == Some(&close) && rest[0].is_ascii_alphabetic() {
                    return true;
                }
            }
            i += 1;
        }
        false
    };
    spans(b'%', b'%') || spans(b'{', b'}')
}

/// Whether the raw configuration has an `Identity.Preset` key (read before the Identity
/// section is validated: it changes the default of `DeleteEnrollmentUsers`).
pub(super) fn written(raw: &super::raw::RawConfig) -> bool {
    raw.dict
        .get("Identity")
        .and_then(plist::Value::as_dictionary)
        .is_some_and(|d| d.contains_key("Preset"))
}

/// How an enrollment with this configuration goes, as `config check` explains it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollmentMode {
    /// `Identity.Preset` and no `EnrollmentUser`: no question, the employee's own account
    /// (created by Setup Assistant) is taken over by the agent; nothing to hand over or delete.
    PresetOwnAccount,
    /// `Identity.Preset` and a setup account: no question; the setup account is handed over
    /// and deleted as usual.
    PresetWithSetupAccount,
    /// No preset: the employee answers the identity window.
    Questions,
}

impl EnrollmentMode {
    /// The mode of `config`.
    pub fn of(config: &Config) -> Self {
        match (
            config.identity.preset.is_some(),
            config.enrollment_user.is_some(),
        ) {
            (true, false) => EnrollmentMode::PresetOwnAccount,
            (true, true) => EnrollmentMode::PresetWithSetupAccount,
            (false, _) => EnrollmentMode::Questions,
        }
    }
}

/// The findings about `Identity.Preset` beyond the checks of single keys: an unsubstituted
/// payload variable (a note in `config check`, a warning in `run`) and a secret that is not
/// asked. `file` names the file the Identity section came from.
pub(super) fn review(config: &Config, mode: Mode, file: &std::path::Path) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut push = |key: &str, severity: Severity, message: String, fix: Option<&str>| {
        out.push(Diagnostic {
            file: file.to_path_buf(),
            key: key.to_owned(),
            message,
            fix: fix.map(str::to_owned),
            severity,
        });
    };
    let check = matches!(mode, Mode::Check { .. });
    let raw = config.identity.preset_raw.as_deref();
    if let (Some(raw), None) = (raw, &config.identity.preset) {
        // Never an error: in a profile, `$EMAIL` is exactly what the admin should write; it is
        // the Mac where it stays unsubstituted that asks the employee.
        let message = if check {
            format!("is {raw:?}, a payload variable for the MDM to substitute: on a Mac where the MDM sends it unsubstituted (no user assigned to the device) prestage asks the employee, as without a preset")
        } else {
            format!("is {raw:?}: the MDM did not substitute this payload variable (no user assigned to the device?), so the employee is asked who they are")
        };
        let severity = if check {
            Severity::Note
        } else {
            Severity::Warning
        };
        push(
            "Identity.Preset",
            severity,
            message,
            Some("assign the user to the device in the MDM (for Jamf Pro: PreStage authentication fills User and Location), or remove Identity.Preset"),
        );
    }
    let preset_written = raw.is_some();
    if preset_written && config.identity.secret != super::SecretKind::None {
        push(
            "Identity.Secret",
            Severity::Warning,
            "is set while Identity.Preset is: no secret is asked of an employee the MDM already authenticated; it is asked only on a Mac where Identity.Preset arrives unsubstituted".to_owned(),
            Some("set Identity.Secret to None unless you want that fallback"),
        );
    }
    out
}

/// The mode `config` describes, in one paragraph for `config check` (printed as a `note:`).
pub fn describe(config: &Config) -> String {
    let ident = match config.identity.identifier {
        super::Identifier::CompanyEmail => "company email (JumpCloud email)",
        super::Identifier::PersonalEmail => "personal email (JumpCloud description)",
        super::Identifier::LastName => "last name (JumpCloud lastname)",
        super::Identifier::Username => "username (JumpCloud username)",
    };
    match EnrollmentMode::of_raw(config) {
        EnrollmentMode::PresetOwnAccount => format!(
            "mode: SSO during Setup Assistant without a setup account. No identity question; prestage finds the one JumpCloud user whose {ident} is Identity.Preset and binds them; the account the console user has at the first login (created by Setup Assistant, its name prefilled by the MDM) should carry the employee's JumpCloud username (or systemUsername), and the agent takes it over; nothing is logged out, hidden or deleted; pending users still choose their password"
        ),
        EnrollmentMode::PresetWithSetupAccount => format!(
            "mode: SSO during Setup Assistant with the setup account {}. No identity question; prestage finds the one JumpCloud user whose {ident} is Identity.Preset; the agent creates their account, and the setup account is logged out, hidden{}",
            config.enrollment_user.as_deref().unwrap_or_default(),
            if config.delete_enrollment_users { " and deleted" } else { " and kept (DeleteEnrollmentUsers is false)" }
        ),
        EnrollmentMode::Questions => format!(
            "mode: questions. The employee types their {ident}{} in the identity window{}",
            if config.identity.secret == super::SecretKind::None { "" } else { " and Identity.Secret" },
            match &config.enrollment_user {
                Some(u) => format!("; the setup account {u} is handed over{}", if config.delete_enrollment_users { " and deleted" } else { "" }),
                None => String::new(),
            }
        ),
    }
}

impl EnrollmentMode {
    /// The mode the admin wrote, a placeholder preset counting as a preset (what the Mac
    /// does once the MDM substitutes it).
    fn of_raw(config: &Config) -> Self {
        match (
            config.identity.preset_raw.is_some(),
            config.enrollment_user.is_some(),
        ) {
            (true, false) => EnrollmentMode::PresetOwnAccount,
            (true, true) => EnrollmentMode::PresetWithSetupAccount,
            (false, _) => EnrollmentMode::Questions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_variables_are_recognised() {
        for v in [
            "$EMAIL",
            " $EMAIL ",
            "$USERNAME",
            "${EMAIL}",
            "$_X",
            "%Email%",
            "%Username%@example.com",
            "{{sso.email}}",
            "{EmailAddress}",
        ] {
            assert!(is_unsubstituted(v), "{v:?}");
        }
    }

    #[test]
    fn real_identifiers_are_not_placeholders() {
        for v in [
            "ada.lovelace@example.com",
            "Ada.Lovelace@Example.com",
            "lovelace",
            "ada",
            "a$1@example.com",
            "100%",
            "50% off%",
            "x{}y",
            "",
        ] {
            assert!(!is_unsubstituted(v), "{v:?}");
        }
    }
}
