//! Configuration: managed-over-local merging, the sources' paths, the secrets rules and
//! redaction.

use super::{check_as_me, fixture, known, me, plist, root, write_mode, CONNECT};
use prestage::config::{
    check_command_with, load_with, ApiKeySource, LoadOptions, Mode, Severity, Sources,
};
use secrecy::ExposeSecret as _;
use std::fs;
use std::path::PathBuf;

#[test]
fn managed_preferences_win_key_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let local = write_mode(
        dir.path(),
        "local.plist",
        &plist(&format!(
            "{CONNECT}<key>APIKeyKeychainService</key><string>svc</string>\
             <key>EnrollmentUser</key><string>welcome</string><key>Admin</key><false/>\
             <key>UI</key><dict><key>WelcomeTitle</key><string>local title</string>\
             <key>WindowTitle</key><string>local window</string></dict>"
        )),
        0o600,
    );
    let managed = write_mode(
        dir.path(),
        "managed.plist",
        &plist("<key>Admin</key><true/><key>UI</key><dict><key>WelcomeTitle</key><string>managed title</string></dict>"),
        0o644,
    );
    let sources = Sources {
        managed: Some(managed.clone()),
        local: Some(local.clone()),
    };
    let loaded = load_with(&sources, Mode::Run, &known, me()).unwrap();
    assert!(loaded.config.admin);
    assert_eq!(
        loaded.config.ui.welcome_title.as_deref(),
        Some("managed title")
    );
    assert_eq!(
        loaded.config.ui.window_title.as_deref(),
        Some("local window")
    );
    assert_eq!(loaded.config.enrollment_user.as_deref(), Some("welcome"));
    assert_eq!(loaded.files, vec![managed.clone(), local.clone()]);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);

    // A bad value in the managed file is blamed on the managed file.
    fs::write(
        &managed,
        plist("<key>UI</key><dict><key>FullScreen</key><string>yes</string></dict>"),
    )
    .unwrap();
    let err = load_with(&sources, Mode::Run, &known, me()).unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!(
        (d.file.as_path(), d.key.as_str()),
        (managed.as_path(), "UI.FullScreen")
    );
    assert!(
        err.to_string().starts_with(&format!(
            "{}: UI.FullScreen: expected a boolean",
            managed.display()
        )),
        "{err}"
    );

    // Either default location may be missing, not both.
    let only_managed = Sources {
        managed: Some(managed),
        local: Some(dir.path().join("absent.plist")),
    };
    fs::write(only_managed.managed.as_ref().unwrap(), plist(&format!("{CONNECT}<key>APIKeyKeychainService</key><string>s</string><key>DeleteEnrollmentUsers</key><false/>"))).unwrap();
    assert!(load_with(&only_managed, Mode::Run, &known, me()).is_ok());
    let none = Sources {
        managed: Some(dir.path().join("a")),
        local: Some(dir.path().join("b")),
    };
    let err = load_with(&none, Mode::Run, &known, me())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no configuration found"), "{err}");
}

#[test]
fn sources_for_root_resolve_the_spec_paths() {
    let r = prestage::paths::Root::new("/tmp/mac1");
    let s = Sources::for_root(&r);
    assert_eq!(
        s.managed.unwrap(),
        PathBuf::from("/tmp/mac1/Library/Managed Preferences/io.prestage.enroll.plist")
    );
    assert_eq!(
        s.local.unwrap(),
        PathBuf::from("/tmp/mac1/Library/Preferences/io.prestage.enroll.plist")
    );
}

#[test]
fn a_file_holding_a_secret_must_be_private_and_owned() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = fs::read(fixture("bad/plain-api-key.plist")).unwrap();
    let open = write_mode(dir.path(), "open.plist", &bytes, 0o644);
    let (code, out) = check_as_me(&open, false);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "error: {}: APIKey: the file holds a secret but its mode 644",
            open.display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("run `sudo chmod 600 '{}'`", open.display())),
        "{out}"
    );
    assert!(!out.contains("chown"), "{out}");

    let private = write_mode(dir.path(), "private.plist", &bytes, 0o600);
    let (code, out) = check_as_me(&private, false);
    assert_eq!(code, 0, "{out}");

    // Owned by someone else than expected.
    let other = LoadOptions {
        expected_owner: me().expected_owner + 1,
    };
    let mut out = Vec::new();
    assert_eq!(
        check_command_with(&private, false, &known, other, &mut out),
        1
    );
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("but is owned by uid"), "{out}");

    // In `run` the same findings are warnings.
    let loaded = load_with(&Sources::single(open), Mode::Run, &known, other).unwrap();
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
    assert!(loaded
        .warnings
        .iter()
        .all(|w| w.severity == Severity::Warning));

    // A keychain configuration has no such rule.
    let kc = write_mode(
        dir.path(),
        "kc.plist",
        &fs::read(root().join("examples/minimal.plist")).unwrap(),
        0o644,
    );
    assert_eq!(
        check_command_with(&kc, false, &known, other, &mut Vec::new()),
        0
    );
}

#[test]
fn api_key_in_managed_preferences() {
    let dir = tempfile::tempdir().unwrap();
    let managed = write_mode(
        dir.path(),
        "managed.plist",
        &plist(&format!("{CONNECT}<key>APIKey</key><string>jca_abc</string><key>DeleteEnrollmentUsers</key><false/>")),
        0o644,
    );
    let sources = Sources {
        managed: Some(managed.clone()),
        local: None,
    };
    let strict = load_with(
        &sources,
        Mode::Check {
            allow_secret_in_profile: false,
        },
        &known,
        me(),
    )
    .unwrap_err();
    assert!(
        strict
            .to_string()
            .contains("APIKey: an API key in managed preferences is readable by every user"),
        "{strict}"
    );
    let allowed = load_with(
        &sources,
        Mode::Check {
            allow_secret_in_profile: true,
        },
        &known,
        me(),
    )
    .unwrap();
    assert_eq!(allowed.warnings.len(), 1);
    let run = load_with(&sources, Mode::Run, &known, me()).unwrap();
    assert_eq!(run.warnings[0].file, managed);
    assert_eq!(run.warnings[0].severity, Severity::Warning);
}

#[test]
fn debug_never_shows_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let connect = "fedcba9876543210fedcba9876543210fedcba98";
    let api = "jca_TOPSECRETAPIKEYVALUE42";
    let file = write_mode(
        dir.path(),
        "s.plist",
        &plist(&format!(
            "<key>ConnectKey</key><string>{connect}</string><key>APIKey</key><string>{api}</string><key>EnrollmentUser</key><string>welcome</string>"
        )),
        0o600,
    );
    let loaded = load_with(&Sources::single(file.clone()), Mode::Run, &known, me()).unwrap();
    let debug = format!("{:?} {:#?}", loaded.config, loaded);
    assert!(!debug.contains(connect) && !debug.contains(api), "{debug}");
    assert!(matches!(&loaded.config.api_key, ApiKeySource::Plain(k) if k.expose_secret() == api));

    // Nor do error messages about them.
    fs::write(
        &file,
        plist(&format!(
            "<key>ConnectKey</key><string>{api}</string><key>APIKey</key><string>{api} x</string>"
        )),
    )
    .unwrap();
    let err = load_with(&Sources::single(file), Mode::Run, &known, me()).unwrap_err();
    assert!(!err.to_string().contains("TOPSECRET"), "{err}");
    assert!(!format!("{err:?}").contains("TOPSECRET"), "{err:?}");
}
