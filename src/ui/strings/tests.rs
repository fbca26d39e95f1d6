//! Tests of the string tables (`ui::strings`).

use super::*;

fn ids_of<'a>(t: &[(&'a str, &str)]) -> Vec<&'a str> {
    t.iter().map(|(k, _)| *k).collect()
}

#[test]
fn every_id_has_an_english_text_and_ids_are_unique() {
    let mut seen = std::collections::BTreeSet::new();
    for id in IDS {
        assert!(seen.insert(*id), "duplicate id {id}");
        assert!(!lookup(EN, id).unwrap().trim().is_empty(), "{id} is empty");
    }
}

#[test]
fn every_language_covers_every_id_and_nothing_else() {
    for lang in LANGUAGES {
        let t = table(lang).unwrap_or_else(|| panic!("no table for {lang}"));
        let ids = ids_of(t);
        for id in IDS {
            assert!(ids.contains(id), "{lang} misses {id}");
        }
        for id in &ids {
            assert!(is_known_id(id), "{lang} has unknown id {id}");
        }
        assert_eq!(ids.len(), IDS.len(), "{lang} has duplicates");
    }
}

#[test]
fn translations_keep_the_placeholders() {
    let placeholders = |s: &str| -> Vec<String> {
        let mut v: Vec<String> = s
            .split('{')
            .skip(1)
            .filter_map(|p| p.split_once('}').map(|(n, _)| n.to_owned()))
            .collect();
        v.sort();
        v
    };
    for (id, en) in EN {
        for lang in LANGUAGES {
            let other = lookup(table(lang).unwrap(), id).unwrap();
            assert_eq!(placeholders(en), placeholders(other), "{id}");
        }
    }
}

#[test]
fn overrides_win_and_missing_translations_fall_back_to_english() {
    let mut o = BTreeMap::new();
    o.insert("welcome.title".to_owned(), "Hallo {name}".to_owned());
    o.insert("no.such.id".to_owned(), "x".to_owned());
    let s = Strings::new("de-CH", &o);
    assert_eq!(s.language(), "de");
    assert_eq!(s.format("welcome.title", &[("name", "Ada")]), "Hallo Ada");
    assert_eq!(s.get("button.continue"), "Weiter");
    assert_eq!(s.get("no.such.id"), "no.such.id");
    let sv = Strings::new("sv", &BTreeMap::new());
    assert_eq!(sv.language(), "en");
    assert_eq!(sv.get("button.continue"), "Continue");
}

#[test]
fn from_config_prefers_ui_language_then_the_console_user() {
    let mut ui = crate::config::UiConfig::default();
    let console = vec!["fr-FR".to_owned()];
    assert_eq!(Strings::from_config(&ui, &console).language(), "fr");
    ui.language = Some("de".into());
    assert_eq!(Strings::from_config(&ui, &console).language(), "de");
    ui.language = Some("pt-BR".into());
    assert_eq!(Strings::from_config(&ui, &console).language(), "pt");
    ui.language = Some("sv".into());
    assert_eq!(Strings::from_config(&ui, &console).language(), "fr");
    assert_eq!(Strings::from_config(&ui, &[]).language(), "en");
}

#[test]
fn picks_the_first_supported_language() {
    let c = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(pick_language(None, &c(&["sv-SE", "fr-CA", "de"])), "fr");
    assert_eq!(pick_language(None, &c(&["ja-JP", "en"])), "ja");
    assert_eq!(pick_language(Some("de"), &c(&["fr"])), "de");
    assert_eq!(pick_language(Some("xx"), &c(&["de_DE.UTF-8"])), "de");
    assert_eq!(pick_language(None, &c(&["C", "POSIX", ""])), "en");
    assert_eq!(pick_language(None, &[]), "en");
    assert_eq!(pick_language(Some("FR"), &[]), "fr");
}

#[tokio::test]
async fn reads_applelanguages_of_the_console_user() {
    let dir = tempfile::tempdir().unwrap();
    let root = crate::paths::Root::new(dir.path());
    let path = root.resolve("/Users/ada/Library/Preferences/.GlobalPreferences.plist");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut dict = plist::Dictionary::new();
    dict.insert(
        "AppleLanguages".into(),
        plist::Value::Array(vec!["fr-CH".into(), "en-US".into()]),
    );
    plist::Value::Dictionary(dict)
        .to_file_binary(&path)
        .unwrap();
    let langs = user_languages(&root, "ada").await;
    assert_eq!(&langs[..2], ["fr-CH", "en-US"]);
    assert_eq!(pick_language(None, &langs), "fr");
    assert!(user_languages(&root, "../ada").await.len() <= 1);
}

#[tokio::test]
async fn a_fifo_or_a_link_at_the_user_s_preferences_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = crate::paths::Root::new(dir.path());
    let path = root.resolve("/Users/ada/Library/Preferences/.GlobalPreferences.plist");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    crate::host::untrusted::make_fifo(&path);
    // Returns (without the file's languages) instead of blocking on the FIFO.
    let langs = user_languages(&root, "ada").await;
    assert!(langs.iter().all(|l| !l.starts_with("fr")), "{langs:?}");
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    let langs = user_languages(&root, "ada").await;
    assert!(langs.len() <= 1, "{langs:?}");
}

#[test]
fn every_rule_has_a_text_in_every_language_and_directory_rules_say_so() {
    let rules = [
        Rule::MinLength(12),
        Rule::Uppercase,
        Rule::Lowercase,
        Rule::Number,
        Rule::Symbol,
        Rule::NoUsername,
        Rule::NoSequences,
        Rule::NotCommon,
        Rule::History(5),
        Rule::MinAge(2),
    ];
    for lang in LANGUAGES {
        let s = Strings::new(lang, &BTreeMap::new());
        for rule in rules {
            let text = rule_text(&s, rule);
            assert!(!text.contains('{'), "{lang} {rule:?}: {text}");
            let line = rule_line(
                &s,
                RuleCheck {
                    rule,
                    status: RuleStatus::CheckedByDirectory,
                },
            );
            assert!(line.contains(&text) && line.contains("JumpCloud"), "{line}");
        }
        assert!(rule_text(&s, Rule::History(5)).contains('5'));
        assert!(rule_text(&s, Rule::MinAge(2)).contains('2'));
    }
    let en = Strings::default();
    let met = RuleCheck {
        rule: Rule::NoUsername,
        status: RuleStatus::Met,
    };
    assert_eq!(rule_line(&en, met), "no trace of your username");
}

#[test]
fn fill_leaves_unknown_placeholders_and_stray_braces() {
    assert_eq!(fill("a {x} b {y} {", &[("x", "1")]), "a 1 b {y} {");
    assert_eq!(fill("no placeholders", &[]), "no placeholders");
}
