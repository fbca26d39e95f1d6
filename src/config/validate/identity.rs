//! `Identity`: how the employee proves who they are (`Identifier`, `Secret`, `MaxAttempts`,
//! `CooldownSeconds`, `Preset`).

use plist::Value;

use super::level::{suggest, Level};
use super::Validator;
use crate::config::{Identifier, IdentityConfig, Mode, SecretKind, Severity};

impl Validator<'_> {
    pub(super) fn identity(&mut self, top: &mut Level<'_>) -> Option<IdentityConfig> {
        let dict = self.dict(top, "Identity");
        let failed = top.has("Identity") && dict.is_none();
        let mut l = Level::new("Identity", dict);
        let identifier = self
            .choice(
                &mut l,
                "Identifier",
                &["CompanyEmail", "PersonalEmail", "LastName", "Username"],
            )
            .map(|c| match c {
                Some("PersonalEmail") => Identifier::PersonalEmail,
                Some("LastName") => Identifier::LastName,
                Some("Username") => Identifier::Username,
                _ => Identifier::CompanyEmail,
            });
        let secret = self.secret_kind(&mut l);
        let max_attempts = self.integer(&mut l, "MaxAttempts", 1, 100, "attempts");
        let cooldown = self.seconds(&mut l, "CooldownSeconds", 0, 300);
        let (preset_raw, preset_failed) = self.preset(&mut l);
        self.close(&l);
        if failed || preset_failed {
            return None;
        }
        let preset = preset_raw
            .clone()
            .filter(|p| !crate::config::preset::is_unsubstituted(p));
        Some(IdentityConfig {
            preset,
            preset_raw,
            identifier: identifier.ok()?,
            secret: secret?,
            max_attempts: max_attempts
                .ok()?
                .map_or(Some(5), |n| u32::try_from(n).ok())?,
            cooldown: cooldown?,
        })
    }

    /// `Identity.Preset`, trimmed, and whether it failed validation. An empty value is what
    /// Jamf Pro may send for a user variable it has no value for (see `preset`'s module docs):
    /// in `run` that counts as no preset (a warning; the employee is asked), in `config check`
    /// it is an error like any empty string.
    pub(super) fn preset(&mut self, l: &mut Level<'_>) -> (Option<String>, bool) {
        let path = l.path("Preset");
        if let (Mode::Run, Some(Value::String(v))) =
            (self.mode, l.dict.and_then(|d| d.get("Preset")))
        {
            if v.trim().is_empty() {
                l.asked.push("Preset");
                self.push(
                    &path,
                    Severity::Warning,
                    "is empty: the MDM substituted nothing for its payload variable (no user assigned to the device?), so the employee is asked who they are".to_owned(),
                    Some("assign the user to the device in the MDM, or remove Identity.Preset".to_owned()),
                );
                return (None, false);
            }
        }
        let value = self.string(l, "Preset").map(|s| s.trim().to_owned());
        let failed = l.has("Preset") && value.is_none();
        (value, failed)
    }

    /// `None` | `EmployeeID` | `Attribute:<name>` (a space after the colon is allowed).
    pub(super) fn secret_kind(&mut self, l: &mut Level<'_>) -> Option<SecretKind> {
        let path = l.path("Secret");
        let Some(s) = self.string(l, "Secret") else {
            return (!l.has("Secret")).then_some(SecretKind::None);
        };
        match s.as_str() {
            "None" => return Some(SecretKind::None),
            "EmployeeID" => return Some(SecretKind::EmployeeId),
            _ => {}
        }
        if let Some(name) = s.strip_prefix("Attribute:") {
            let name = name.trim();
            if !name.is_empty() && !name.contains(char::is_whitespace) {
                return Some(SecretKind::Attribute(name.to_owned()));
            }
            self.err(
                &path,
                "names no attribute",
                "write Attribute:<name> with the custom attribute's name, e.g. Attribute:EnrollmentCode",
            );
            return None;
        }
        let fix = match suggest(&s, &["None", "EmployeeID", "Attribute:"]) {
            Some(c) => format!("did you mean `{c}`?"),
            None => "use None, EmployeeID or Attribute:<name>".to_owned(),
        };
        self.err(
            &path,
            format!("`{s}` is not None, EmployeeID or Attribute:<name>"),
            fix,
        );
        None
    }
}
