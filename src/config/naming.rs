//! `ComputerName`: the name template (SPEC §3) and the names macOS gets from it.
//!
//! Tokens: `%serial%`, `%serial:N%` (the first N characters), `%serial:-N%` (the last N) and
//! `%user%` (the employee's local account name). Anything else between `%` signs is an error
//! in `config check`, so a typo such as `%serail%` never becomes part of a fleet's names.

use std::fmt;

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Serial,
    SerialFirst(usize),
    SerialLast(usize),
    User,
}

/// A validated `ComputerName` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTemplate {
    source: String,
    pieces: Vec<Piece>,
}

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl NameTemplate {
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut pieces = Vec::new();
        let mut rest = source;
        while let Some(start) = rest.find('%') {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 1..];
            let Some(end) = after.find('%') else {
                return Err(TemplateError(format!(
                    "has a `%` with no closing `%` in `{source}`"
                )));
            };
            let token = &after[..end];
            pieces.push(parse_token(token)?);
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Self {
            source: source.to_owned(),
            pieces,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the name depends on the employee (`%user%`).
    pub fn uses_user(&self) -> bool {
        self.pieces.contains(&Piece::User)
    }

    /// The `ComputerName` for this serial number and local account name.
    pub fn render(&self, serial: &str, user: &str) -> String {
        let chars: Vec<char> = serial.chars().collect();
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Serial => out.push_str(serial),
                Piece::SerialFirst(n) => out.extend(chars.iter().take(*n)),
                Piece::SerialLast(n) => {
                    out.extend(chars.iter().skip(chars.len().saturating_sub(*n)));
                }
                Piece::User => out.push_str(user),
            }
        }
        out.trim().to_owned()
    }
}

fn parse_token(token: &str) -> Result<Piece, TemplateError> {
    let unknown = || {
        TemplateError(format!(
            "`%{token}%` is not a token; use %serial%, %serial:N% (first N), %serial:-N% (last N) or %user%"
        ))
    };
    match token {
        "serial" => return Ok(Piece::Serial),
        "user" => return Ok(Piece::User),
        _ => {}
    }
    let Some(count) = token.strip_prefix("serial:") else {
        return Err(unknown());
    };
    let (last, digits) = match count.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, count),
    };
    let n: usize = digits.parse().map_err(|_| unknown())?;
    if n == 0 {
        return Err(unknown());
    }
    Ok(if last {
        Piece::SerialLast(n)
    } else {
        Piece::SerialFirst(n)
    })
}

/// The `LocalHostName` (Bonjour name) macOS accepts for `name`: letters, digits and hyphens
/// only, at most 63 bytes (a DNS label, RFC 1035 §2.3.1; `scutil --set LocalHostName` refuses
/// anything else). Spaces, dots and underscores become hyphens, other characters are dropped,
/// hyphens do not repeat or lead or trail. Empty when nothing usable is left.
pub fn local_host_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if (c == ' ' || c == '-' || c == '_' || c == '.')
            && !out.ends_with('-')
            && !out.is_empty()
        {
            out.push('-');
        }
    }
    out.truncate(63);
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// A serial number shown as an example in `config check`.
pub const SAMPLE_SERIAL: &str = "C02XK1JHJG5J";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_filled_in() {
        let t = NameTemplate::parse("MAC-%serial:-6%-%user%").unwrap();
        assert_eq!(
            t.render("C02XK1JHJG5J", "ada.lovelace"),
            "MAC-JHJG5J-ada.lovelace"
        );
        let t = NameTemplate::parse("%serial:3%x%serial%").unwrap();
        assert_eq!(t.render("ABCDEF", "u"), "ABCxABCDEF");
        // More characters asked for than the serial has: all of it.
        let t = NameTemplate::parse("%serial:-40%").unwrap();
        assert_eq!(t.render("ABC", "u"), "ABC");
    }

    #[test]
    fn unknown_tokens_and_open_percent_are_refused() {
        for bad in ["%serail%", "%serial:0%", "%serial:x%", "A%serial", "%User%"] {
            assert!(NameTemplate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn local_host_names_are_dns_labels() {
        assert_eq!(local_host_name("Ada's MacBook Pro"), "Adas-MacBook-Pro");
        assert_eq!(
            local_host_name("MAC-JHJG5J-ada.lovelace"),
            "MAC-JHJG5J-ada-lovelace"
        );
        assert_eq!(local_host_name(" --x__y-- "), "x-y");
        assert_eq!(local_host_name(&"a".repeat(80)).len(), 63);
        assert_eq!(local_host_name("ümlaut"), "mlaut");
    }
}
