//! `UI`: texts, branding, language, overridden strings and where swiftDialog is.

use std::collections::BTreeMap;
use std::path::PathBuf;

use plist::Value;

use super::level::Level;
use super::Validator;
use crate::config::UiConfig;

impl Validator<'_> {
    pub(super) fn ui(&mut self, top: &mut Level<'_>) -> Option<UiConfig> {
        let dict = self.dict(top, "UI");
        let failed = top.has("UI") && dict.is_none();
        let mut l = Level::new("UI", dict);
        let defaults = UiConfig::default();
        let window_title = self.string(&mut l, "WindowTitle");
        let welcome_title = self.string(&mut l, "WelcomeTitle");
        let welcome_text = self.string(&mut l, "WelcomeText");
        // swiftDialog also takes URLs and SF Symbols (`SF=...`) for images: any string is kept.
        let icon = self.string(&mut l, "Icon").map(PathBuf::from);
        let banner_image = self.string(&mut l, "BannerImage").map(PathBuf::from);
        let full_screen = self.boolean(&mut l, "FullScreen");
        let language = self.language(&mut l);
        let strings = self.strings(&mut l);
        let dialog_path = self.mac_path(&mut l, "DialogPath");
        let dialog_package_path = self.mac_path(&mut l, "DialogPackagePath");
        let help_message = self.string(&mut l, "HelpMessage");
        self.close(&l);
        if failed {
            return None;
        }
        Some(UiConfig {
            window_title,
            welcome_title,
            welcome_text,
            icon,
            banner_image,
            full_screen: full_screen.unwrap_or(defaults.full_screen),
            language: language.ok()?,
            strings: strings?,
            dialog_path: dialog_path.ok()?.unwrap_or(defaults.dialog_path),
            dialog_package_path: dialog_package_path.ok()?,
            help_message,
        })
    }

    pub(super) fn language(&mut self, l: &mut Level<'_>) -> Result<Option<String>, ()> {
        let Some(s) = self.string(l, "Language") else {
            return if l.has("Language") { Err(()) } else { Ok(None) };
        };
        // BCP 47-ish: `de`, `en-GB`, `pt_BR`, `zh-Hans`.
        let mut parts = s.split(['-', '_']);
        let first_ok = parts.next().is_some_and(|p| {
            (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic())
        });
        let rest_ok = parts
            .all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
        if first_ok && rest_ok {
            Ok(Some(s))
        } else {
            self.err(
                &l.path("Language"),
                format!("`{s}` is not a language code"),
                "use a code such as en, de, fr or en-GB, or remove it to follow the user's language",
            );
            Err(())
        }
    }

    pub(super) fn strings(&mut self, l: &mut Level<'_>) -> Option<BTreeMap<String, String>> {
        let dict = self.dict(l, "Strings");
        if l.has("Strings") && dict.is_none() {
            return None;
        }
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (id, value) in dict.into_iter().flatten() {
            let path = format!("UI.Strings.{id}");
            if !(self.known_string_ids)(id) {
                let severity = self.strictness();
                self.push(
                    &path,
                    severity,
                    format!("`{id}` is not the id of a built-in text"),
                    Some("check the spelling against the string ids in docs/configuration.md (`prestage ui preview` shows every text)".to_owned()),
                );
                continue;
            }
            match value {
                // swiftDialog's launcher drops blank arguments, so the window would show
                // swiftDialog's placeholder (`dialogcli.swift`, `filteredArgs`). Texts with a
                // leading `-` or a `word=` are fine: prestage escapes them (`ui::dialog`).
                Value::String(s) if s.trim().is_empty() => {
                    self.err(
                        &path,
                        "is empty (swiftDialog would show its own placeholder text)",
                        "write the text, or remove the key to use prestage's built-in text",
                    );
                    ok = false;
                }
                Value::String(s) => {
                    out.insert(id.clone(), s.clone());
                }
                other => {
                    self.wrong_type(&path, "a string", other);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}
