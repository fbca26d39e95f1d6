//! `UI.HelpMessage`: the text behind swiftDialog's help button, on every window.
//!
//! swiftDialog takes it as `--helpmessage` (`CommandlineArgument(long: "helpmessage")` in its
//! CLOptions) and shows it as markdown in a sheet when the employee clicks the `?` button
//! (`HelpView.swift` renders `Markdown(helpMessage, ...)`). The tokens `%serial%` (the Mac's
//! serial number) and `%reference%` (the reference code on the error window, else the
//! enrollment's id, as `prestage status` shows it) are filled in, so the employee can read both
//! to IT.

/// The help text with its tokens filled in; unknown values read as `unknown`.
pub fn fill(template: &str, serial: Option<&str>, reference: Option<&str>) -> String {
    template
        .replace("%serial%", serial.unwrap_or("unknown"))
        .replace("%reference%", reference.unwrap_or("unknown"))
}

/// What the help text of the next windows is filled with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HelpFacts {
    pub serial: Option<String>,
    pub reference: Option<String>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_filled() {
        assert_eq!(
            super::fill(
                "Call IT, serial %serial%, code %reference%.",
                Some("C02X"),
                Some("PS-04-AB12CD")
            ),
            "Call IT, serial C02X, code PS-04-AB12CD."
        );
        assert_eq!(super::fill("%serial%", None, None), "unknown");
    }
}
