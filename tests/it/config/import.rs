//! Configuration: `config import` of a filled-in bash template, and the legacy decryption.

use super::{check_as_me, fixture, known, me, write_mode};
use prestage::config::{
    self, legacy, load_with, ApiKeySource, Identifier, Mode, PolicySource, SecretKind, Sources,
};
use secrecy::{ExposeSecret as _, SecretString};
use std::fs;

#[test]
fn import_keeps_a_tenant_connect_key_whole() {
    let script = fs::read_to_string(fixture("import/bootstrap_filled.sh")).unwrap();
    let payload = br#"{"publicKickstartUrl":"https://kickstart.jumpcloud.com:443","privateKickstartUrl":"https://private-kickstart.jumpcloud.com:443","connectKey":"k"}"#;
    let key = config::connect_key::encode_tenant_key(payload);
    let script = regex::Regex::new(r"(?m)^YOUR_CONNECT_KEY=.*$")
        .unwrap()
        .replace(&script, format!("YOUR_CONNECT_KEY='{key}'"));
    let report = config::import::import(&script);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let dir = tempfile::tempdir().unwrap();
    let out = write_mode(dir.path(), "imported.plist", &report.plist_xml, 0o600);
    let (code, text) = check_as_me(&out, false);
    assert_eq!(code, 0, "{text}");
    let c = load_with(&Sources::single(out), Mode::Run, &known, me()).unwrap();
    match c.config.connect_key {
        config::ConnectKey::Tenant { bootstrap, .. } => {
            assert_eq!(bootstrap.expose_secret().as_bytes(), payload);
        }
        other @ config::ConnectKey::Classic(_) => panic!("{other:?}"),
    }
}

#[test]
fn import_turns_the_bash_template_into_a_valid_config() {
    let script = fs::read_to_string(fixture("import/bootstrap_filled.sh")).unwrap();
    let report = config::import::import(&script);
    let mapped: Vec<&str> = report.mapped.iter().map(|(v, _)| v.as_str()).collect();
    for var in [
        "admin",
        "minlength",
        "YOUR_CONNECT_KEY",
        "ENCRYPTED_KEY",
        "DECRYPT_USER",
        "DEP_ENROLLMENT_GROUP_ID",
        "WELCOME_TITLE",
        "WELCOME_TEXT",
        "DELETE_ENROLLMENT_USERS",
        "ENROLLMENT_USER",
        "NTP_SERVER",
        "self_ID",
        "self_secret",
        "self_passwd",
    ] {
        assert!(
            mapped.contains(&var),
            "{var} not mapped: {}",
            report.summary()
        );
    }
    assert_eq!(
        report.empty,
        vec!["DEP_POST_ENROLLMENT_GROUP_ID".to_owned()]
    );
    assert_eq!(report.unmapped.len(), 1, "{:?}", report.unmapped);
    assert!(report.unmapped[0].starts_with("daemon"));
    assert!(report.problems.is_empty(), "{:?}", report.problems);

    let dir = tempfile::tempdir().unwrap();
    let out = write_mode(dir.path(), "imported.plist", &report.plist_xml, 0o600);
    let (code, text) = check_as_me(&out, false);
    assert_eq!(
        code,
        0,
        "{text}\n{}",
        String::from_utf8_lossy(&report.plist_xml)
    );

    let c = load_with(&Sources::single(out), Mode::Run, &known, me())
        .unwrap()
        .config;
    assert_eq!(c.identity.identifier, Identifier::PersonalEmail);
    assert_eq!(c.identity.secret, SecretKind::EmployeeId);
    assert_eq!(
        c.ui.welcome_title.as_deref(),
        Some("Welcome to \"Example Corp\"")
    );
    assert!(c.ui.welcome_text.as_deref().unwrap().contains("up.\n\nYou"));
    assert!(matches!(&c.password.policy, PolicySource::Local(p) if p.min_length == 10));
    assert_eq!(
        c.enrollment_group_id.unwrap().as_str(),
        "65a1b2c3d4e5f60718293a4b"
    );
    assert_eq!(c.ntp_server, "time.euro.apple.com");
    let ApiKeySource::Legacy {
        encrypted,
        decrypt_user,
    } = &c.api_key
    else {
        panic!("{:?}", c.api_key)
    };
    assert_eq!(decrypt_user, "it.service");
    let key = legacy::decrypt(encrypted, 501, "00112233445566778899aabb").unwrap();
    assert_eq!(
        key.expose_secret(),
        "jca_0123456789abcdefghijklmnopqrstuvwxyzAB"
    );
    // Secrets are not shown by the summary.
    assert!(!report.summary().contains("b5a0d92c"));
}

#[test]
fn legacy_decrypt_matches_openssl_vectors() {
    let vectors = fs::read_to_string(fixture("legacy/vectors.txt")).unwrap();
    for line in vectors.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let got = legacy::decrypt(&SecretString::from(f[3]), f[0].parse().unwrap(), f[1]).unwrap();
        assert_eq!(got.expose_secret(), f[2]);
    }
}
