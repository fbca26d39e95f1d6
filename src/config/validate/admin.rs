//! The keys of what admins expect from their other onboarding tools (issue 13): `ComputerName`,
//! `Webhooks`, `Preflight` (and `UI.HelpMessage`, read with the rest of `UI`).

use plist::Value;

use super::{Level, Validator};
use crate::config::naming::{self, NameTemplate};
use crate::config::{PreflightConfig, WebhookConfig, WebhookEvent, WebhookKind};

impl Validator<'_> {
    /// `ComputerName`: a template with known tokens only. `config check` shows what a sample
    /// serial gives, so the admin sees the names before the fleet gets them.
    pub(super) fn computer_name(
        &mut self,
        top: &mut Level<'_>,
    ) -> Result<Option<NameTemplate>, ()> {
        let Some(s) = self.string(top, "ComputerName") else {
            return if top.has("ComputerName") {
                Err(())
            } else {
                Ok(None)
            };
        };
        match NameTemplate::parse(&s) {
            Ok(t) => {
                if matches!(self.mode, super::Mode::Check { .. }) {
                    let name = t.render(naming::SAMPLE_SERIAL, "ada.lovelace");
                    self.push(
                        "ComputerName",
                        super::Severity::Note,
                        format!(
                            "a Mac with serial {} and the employee ada.lovelace would be named `{name}` (LocalHostName `{}`)",
                            naming::SAMPLE_SERIAL,
                            naming::local_host_name(&name)
                        ),
                        None,
                    );
                }
                if naming::local_host_name(&t.render(naming::SAMPLE_SERIAL, "ada")).is_empty() {
                    self.err(
                        "ComputerName",
                        "leaves nothing usable as a LocalHostName (letters, digits and hyphens)",
                        "add letters or digits, or a %serial% token",
                    );
                    return Err(());
                }
                Ok(Some(t))
            }
            Err(e) => {
                self.err("ComputerName", e.0, "fix the token, e.g. MAC-%serial:-6%");
                Err(())
            }
        }
    }

    /// `Webhooks`: an array of `{URL, Kind, Events}`. The URL is never echoed in a message.
    pub(super) fn webhooks(&mut self, top: &mut Level<'_>) -> Option<Vec<WebhookConfig>> {
        let value = top.get("Webhooks")?;
        let Value::Array(items) = value else {
            self.wrong_type("Webhooks", "an array", value);
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (index, item) in items.iter().enumerate() {
            let prefix = format!("Webhooks[{index}]");
            let Value::Dictionary(d) = item else {
                self.wrong_type(&prefix, "a dictionary", item);
                ok = false;
                continue;
            };
            let mut l = Level::new(&prefix, Some(d));
            let has_url = l.has("URL");
            let url = self.url(&mut l, "URL", "https://hooks.example.com/");
            if !has_url {
                self.err(
                    &l.path("URL"),
                    "is required",
                    "paste the receiver's webhook URL (Slack: Incoming Webhooks; Teams: Workflows, \"Send webhook alerts to a channel\")",
                );
            }
            let kind = match self.string(&mut l, "Kind").as_deref() {
                None if !l.has("Kind") => Some(WebhookKind::Generic),
                None => None,
                Some("Generic") => Some(WebhookKind::Generic),
                Some("Slack") => Some(WebhookKind::Slack),
                Some("Teams") => Some(WebhookKind::Teams),
                Some(other) => {
                    self.err(
                        &l.path("Kind"),
                        format!("`{other}` is not a kind"),
                        "use Generic, Slack or Teams",
                    );
                    None
                }
            };
            let events = self.webhook_events(&mut l);
            self.close(&l);
            match (url, kind, events, has_url) {
                (Some(url), Some(kind), Some(events), true) => out.push(WebhookConfig {
                    url: secrecy::SecretString::from(url.as_str().to_owned()),
                    kind,
                    events,
                    index,
                }),
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn webhook_events(&mut self, l: &mut Level<'_>) -> Option<Vec<WebhookEvent>> {
        let path = l.path("Events");
        let Some(value) = l.get("Events") else {
            return Some(WebhookEvent::ALL.to_vec());
        };
        let Value::Array(names) = value else {
            self.wrong_type(&path, "an array", value);
            return None;
        };
        let mut events = Vec::new();
        for name in names {
            match name.as_string().and_then(WebhookEvent::parse) {
                Some(e) if !events.contains(&e) => events.push(e),
                Some(_) => {}
                None => {
                    self.err(
                        &path,
                        format!(
                            "`{}` is not an event",
                            name.as_string().unwrap_or("(not a string)")
                        ),
                        "use Started, Finished, Failed and AccountKept",
                    );
                    return None;
                }
            }
        }
        Some(events)
    }

    /// `Preflight.MinimumBatteryPercent` (default 20, 0 = off).
    pub(super) fn preflight(&mut self, top: &mut Level<'_>) -> Option<PreflightConfig> {
        let dict = self.dict(top, "Preflight");
        let failed = top.has("Preflight") && dict.is_none();
        let mut l = Level::new("Preflight", dict);
        let battery = self.integer(&mut l, "MinimumBatteryPercent", 0, 100, "percent");
        self.close(&l);
        if failed {
            return None;
        }
        let defaults = PreflightConfig::default();
        Some(PreflightConfig {
            minimum_battery_percent: battery.ok()?.map_or(defaults.minimum_battery_percent, |n| {
                u8::try_from(n).unwrap_or(defaults.minimum_battery_percent)
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use plist::{Dictionary, Value};
    use secrecy::ExposeSecret as _;

    use super::super::{Mode, RawConfig, Severity, Validator};
    use crate::config::{WebhookEvent, WebhookKind};

    fn check(
        extra: &[(&str, Value)],
    ) -> (Option<crate::config::Config>, Vec<super::super::Diagnostic>) {
        let mut d = Dictionary::new();
        d.insert(
            "ConnectKey".into(),
            "0123456789abcdef0123456789abcdef01234567".into(),
        );
        d.insert("APIKeyKeychainService".into(), "svc".into());
        d.insert("DeleteEnrollmentUsers".into(), Value::Boolean(false));
        for (k, v) in extra {
            d.insert((*k).to_owned(), v.clone());
        }
        let raw = RawConfig::merge(None, Some((PathBuf::from("/c.plist"), d)));
        let known = |_: &str| true;
        let mut v = Validator::new(
            &raw,
            Mode::Check {
                allow_secret_in_profile: false,
            },
            &known,
        );
        let c = v.config();
        (c, v.finish())
    }

    fn hook(pairs: &[(&str, Value)]) -> Value {
        Value::Dictionary(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn webhooks_default_to_generic_and_every_event_and_never_echo_the_url() {
        let secret = "https://hooks.slack.com/services/T0/B0/S3CR3T";
        let (c, diags) = check(&[(
            "Webhooks",
            Value::Array(vec![
                hook(&[("URL", secret.into())]),
                hook(&[
                    ("URL", "https://x.example.com/h".into()),
                    ("Kind", "Teams".into()),
                    ("Events", Value::Array(vec!["Failed".into()])),
                ]),
            ]),
        )]);
        let c = c.unwrap_or_else(|| panic!("{diags:?}"));
        assert_eq!(c.webhooks.len(), 2);
        assert_eq!(c.webhooks[0].kind, WebhookKind::Generic);
        assert_eq!(c.webhooks[0].events, WebhookEvent::ALL.to_vec());
        assert_eq!(c.webhooks[0].url.expose_secret(), secret);
        assert_eq!(c.webhooks[1].events, vec![WebhookEvent::Failed]);
        assert!(!format!("{c:?}").contains("S3CR3T"));

        let (c, diags) = check(&[(
            "Webhooks",
            Value::Array(vec![hook(&[
                ("URL", "http://hooks.example.com/S3CR3T".into()),
                ("Events", Value::Array(vec!["Done".into()])),
            ])]),
        )]);
        assert!(c.is_none());
        let keys: Vec<&str> = diags.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(keys, ["Webhooks[0].URL", "Webhooks[0].Events"], "{diags:?}");
        assert!(diags
            .iter()
            .all(|d| !d.message.contains("S3CR3T")
                && !d.fix.as_deref().unwrap_or("").contains("S3CR3T")));
    }

    #[test]
    fn computer_name_shows_a_sample_and_refuses_unknown_tokens() {
        let (c, diags) = check(&[("ComputerName", "MAC-%serial:-6%".into())]);
        assert!(c.is_some(), "{diags:?}");
        let note = diags.iter().find(|d| d.severity == Severity::Note).unwrap();
        assert!(note.message.contains("`MAC-JHJG5J`"), "{}", note.message);
        let (c, diags) = check(&[("ComputerName", "MAC-%serail%".into())]);
        assert!(c.is_none());
        assert!(diags[0].message.contains("%serail%"), "{diags:?}");
    }

    #[test]
    fn preflight_battery_default_and_range() {
        let (c, _) = check(&[]);
        assert_eq!(c.unwrap().preflight.minimum_battery_percent, 20);
        let mut p = Dictionary::new();
        p.insert("MinimumBatteryPercent".into(), Value::Integer(0.into()));
        let (c, _) = check(&[("Preflight", Value::Dictionary(p.clone()))]);
        assert_eq!(c.unwrap().preflight.minimum_battery_percent, 0);
        p.insert("MinimumBatteryPercent".into(), Value::Integer(120.into()));
        let (c, diags) = check(&[("Preflight", Value::Dictionary(p))]);
        assert!(c.is_none());
        assert_eq!(diags[0].key, "Preflight.MinimumBatteryPercent");
    }
}
