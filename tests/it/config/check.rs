//! Configuration: `config check` on the examples and on every bad fixture, bad inputs made at
//! test time, binary plists, defaults and warnings.

use super::{check, fixture, known, me, plist, root, write_mode, CONNECT};
use prestage::config::{
    self, load_with, ApiKeySource, Identifier, Mode, PolicySource, SecretKind, Severity, Sources,
};
use secrecy::ExposeSecret as _;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

#[test]
fn examples_pass_check() {
    for name in ["minimal.plist", "complete.plist"] {
        let path = root().join("examples").join(name);
        let (code, out) = check(&path);
        assert_eq!(code, 0, "{name}:\n{out}");
        assert!(out.contains("configuration is valid"), "{out}");
        assert!(!out.contains("warning"), "{name} has warnings:\n{out}");
        // Which swiftDialog to ship, for every admin.
        assert!(
            out.contains("note: the Mac needs swiftDialog 2.5.0 or later")
                && out.contains("macOS 15")
                && out.contains("2.5.x"),
            "{out}"
        );
    }
}

/// (fixture, key path named, words of the message)
const BAD: &[(&str, &str, &str)] = &[
    ("empty.plist", "", "is empty"),
    ("json.plist", "", "looks like JSON"),
    ("truncated.plist", "", "ends too early (truncated?)"),
    ("non-utf8.plist", "", "not valid UTF-8"),
    (
        "top-level-array.plist",
        "",
        "where a dictionary of settings belongs",
    ),
    (
        "string-for-dict.plist",
        "UI",
        "expected a dictionary, found a string",
    ),
    (
        "negative-timeout.plist",
        "Agent.InstallTimeoutSeconds",
        "is -5, outside 1..=86400",
    ),
    (
        "short-id.plist",
        "EnrollmentGroupID",
        "is 23 characters long",
    ),
    ("unknown-key.plist", "NTPServr", "did you mean `NTPServer`?"),
    ("missing-connect-key.plist", "ConnectKey", "is required"),
    (
        "bad-connect-key.plist",
        "ConnectKey",
        "must be 40 hex characters",
    ),
    (
        "two-api-key-sources.plist",
        "EncryptedAPIKey",
        "more than one API key source",
    ),
    ("no-api-key.plist", "APIKey", "no API key source is set"),
    (
        "encrypted-without-user.plist",
        "DecryptUser",
        "is required with EncryptedAPIKey",
    ),
    (
        "delete-without-user.plist",
        "EnrollmentUser",
        "is required while DeleteEnrollmentUsers",
    ),
    ("http-url.plist", "APIBaseURL", "only https is allowed"),
    (
        "bad-identifier.plist",
        "Identity.Identifier",
        "did you mean `CompanyEmail`?",
    ),
    ("bad-secret.plist", "Identity.Secret", "names no attribute"),
    (
        "active-password-without-secret.plist",
        "Password.RequireForActiveUsers",
        "could set the JumpCloud password of an active colleague",
    ),
    (
        "max-attempts-zero.plist",
        "Identity.MaxAttempts",
        "is 0, outside 1..=100",
    ),
    (
        "bad-policy.plist",
        "Password.Policy",
        "`Strict` is not Tenant",
    ),
    (
        "unknown-string-id.plist",
        "UI.Strings.welcome.titel",
        "is not the id of a built-in text",
    ),
    // Blank: swiftDialog's launcher drops it. (Its `done.message`, starting with `-` and
    // holding `name=` and `, required`, is fine: prestage escapes such texts.)
    (
        "blank-string.plist",
        "UI.Strings.welcome.title",
        "is empty (swiftDialog would show its own placeholder text)",
    ),
    (
        "bool-as-string.plist",
        "DeleteEnrollmentUsers",
        "expected a boolean",
    ),
    (
        "real-for-integer.plist",
        "Identity.CooldownSeconds",
        "found a real number",
    ),
    ("profile-wrapper.plist", "", "configuration profile"),
    (
        "many-errors.plist",
        "Identity.Identifer",
        "did you mean `Identity.Identifier`?",
    ),
    (
        "plain-api-key.plist",
        "APIKey",
        "the file holds a secret but",
    ),
    (
        "tenant-connect-key-not-json.plist",
        "ConnectKey",
        "its payload is not JSON",
    ),
];

#[test]
fn every_bad_fixture_fails_naming_file_and_key() {
    for (name, key, words) in BAD {
        let path = fixture(&format!("bad/{name}"));
        let (code, out) = check(&path);
        assert_eq!(code, 1, "{name} passed:\n{out}");
        let line = out
            .lines()
            .find(|l| l.contains(words))
            .unwrap_or_else(|| panic!("{name}: no line with {words:?}:\n{out}"));
        assert!(line.starts_with("error: "), "{name}: {line}");
        assert!(line.contains(&path.display().to_string()), "{name}: {line}");
        if !key.is_empty() {
            assert!(line.contains(&format!(": {key}: ")), "{name}: {line}");
        }
        assert!(out.contains("configuration is invalid"), "{name}: {out}");
    }
}

#[test]
fn every_fixture_in_the_bad_folder_is_checked() {
    let mut on_disk: Vec<String> = fs::read_dir(fixture("bad"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = BAD.iter().map(|(n, _, _)| (*n).to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn all_errors_are_reported_at_once() {
    let (code, out) = check(&fixture("bad/many-errors.plist"));
    assert_eq!(code, 1);
    for key in [
        "ConnectKey",
        "OrgID",
        "Admin",
        "Identity.Identifer",
        "Agent.PackageURL",
        "EnrollmentUser",
    ] {
        assert!(out.contains(&format!(": {key}: ")), "{key} missing:\n{out}");
    }
    assert!(out.contains("(6 errors)"), "{out}");
}

#[test]
fn bad_inputs_made_at_test_time() {
    let dir = tempfile::tempdir().unwrap();
    // A missing file.
    let missing = dir.path().join("nope.plist");
    let (code, out) = check(&missing);
    assert_eq!(code, 1);
    assert!(out.contains("nope.plist: the file does not exist"), "{out}");
    // A directory.
    let (code, out) = check(dir.path());
    assert_eq!(code, 1);
    assert!(out.contains("is a directory"), "{out}");
    // A character device.
    let (code, out) = check(Path::new("/dev/null"));
    assert_eq!(code, 1);
    assert!(out.contains("/dev/null: is not a regular file"), "{out}");
    // 50 MB of junk: rejected by size, not read.
    let junk = dir.path().join("junk.plist");
    let mut bytes = vec![0u8; 50 * 1024 * 1024];
    rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
    fs::write(&junk, &bytes).unwrap();
    let (code, out) = check(&junk);
    assert_eq!(code, 1);
    assert!(out.contains("junk.plist: is 52428800 bytes"), "{out}");
    // A little junk, and junk behind a binary plist header.
    for (i, prefix) in [&b""[..], b"bplist00", b"<?xml "].iter().enumerate() {
        let mut small = prefix.to_vec();
        small.extend_from_slice(&bytes[..4096]);
        let p = dir.path().join(format!("small{i}.plist"));
        fs::write(&p, &small).unwrap();
        let (code, out) = check(&p);
        assert_eq!(code, 1, "{out}");
        assert!(
            out.starts_with(&format!("error: {}: ", p.display())),
            "{out}"
        );
    }
}

#[test]
fn binary_plists_are_read_like_xml() {
    let dir = tempfile::tempdir().unwrap();
    let xml = root().join("examples/complete.plist");
    let value = plist::Value::from_file(&xml).unwrap();
    let bin = dir.path().join("complete.plist");
    value.to_file_binary(&bin).unwrap();
    assert!(fs::read(&bin).unwrap().starts_with(b"bplist00"));
    let (code, out) = check(&bin);
    assert_eq!(code, 0, "{out}");

    let a = load_with(&Sources::single(xml), Mode::Run, &known, me()).unwrap();
    let b = load_with(&Sources::single(bin), Mode::Run, &known, me()).unwrap();
    assert_eq!(format!("{:?}", a.config), format!("{:?}", b.config));
    let c = &b.config;
    assert_eq!(c.api_base_url.as_str(), "https://console.eu.jumpcloud.com/");
    assert_eq!(c.identity.identifier, Identifier::CompanyEmail);
    assert_eq!(
        c.identity.secret,
        SecretKind::Attribute("EnrollmentCode".into())
    );
    assert_eq!(c.agent.install_timeout.as_secs(), 900);
    assert!(
        matches!(&c.password.policy, PolicySource::Local(p) if p.min_length == 12 && p.require_uppercase && !p.require_symbol)
    );
    assert!(
        matches!(&c.api_key, ApiKeySource::Keychain { service } if service == "io.prestage.enroll.apikey")
    );
}

#[test]
fn defaults_of_the_minimal_example() {
    let loaded = load_with(
        &Sources::single(root().join("examples/minimal.plist")),
        Mode::Check {
            allow_secret_in_profile: false,
        },
        &known,
        me(),
    )
    .unwrap();
    let c = loaded.config;
    assert_eq!(c.api_base_url.as_str(), "https://console.jumpcloud.com/");
    assert!(c.delete_enrollment_users && !c.admin && c.report_to_directory);
    assert_eq!(c.ntp_server, "time.apple.com");
    assert_eq!(c.identity.identifier, Identifier::CompanyEmail);
    assert_eq!(c.identity.secret, SecretKind::None);
    assert_eq!(
        (c.identity.max_attempts, c.identity.cooldown.as_secs()),
        (5, 300)
    );
    assert_eq!(c.password.policy, PolicySource::Tenant);
    assert!(c.ui.full_screen);
    assert_eq!(c.ui.dialog_path, PathBuf::from("/usr/local/bin/dialog"));
    assert_eq!(
        c.agent.package_url.as_str(),
        config::DEFAULT_AGENT_PACKAGE_URL
    );
    assert_eq!(c.agent.takeover_timeout.as_secs(), 600);
}

#[test]
fn unknown_keys_warn_in_run_and_fail_check() {
    let path = fixture("bad/unknown-key.plist");
    let loaded = load_with(&Sources::single(path.clone()), Mode::Run, &known, me()).unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert_eq!(loaded.warnings[0].key, "NTPServr");
    assert_eq!(
        loaded.warnings[0].fix.as_deref(),
        Some("did you mean `NTPServer`?")
    );
    assert_eq!(check(&path).0, 1);
}

#[test]
fn schema_is_json_for_jamf() {
    let schema = config::schema::json_schema();
    assert_eq!(schema["title"], "prestage (io.prestage.enroll)");
    assert_eq!(
        schema["properties"]["Identity"]["properties"]["Identifier"]["enum"][2],
        "LastName"
    );
    let keys = config::schema::accepted_keys();
    assert!(
        keys.contains(&"UI.Strings".to_owned()) && keys.contains(&"Agent.PackagePath".to_owned())
    );
}

#[test]
#[ignore = "prints check output of every bad fixture, for reading"]
fn show_bad_fixture_output() {
    for (name, _, _) in BAD {
        println!("{}", check(&fixture(&format!("bad/{name}"))).1);
    }
}

/// `EnrollmentUserPassword` (SPEC §3): a secret with `APIKey`'s rules, and
/// `SecureTokenTimeoutSeconds` with its default of five minutes.
#[test]
fn enrollment_user_password_and_secure_token_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let keychain = "<key>APIKeyKeychainService</key><string>svc</string>";
    let user = "<key>EnrollmentUser</key><string>welcome</string>";
    let password = "<key>EnrollmentUserPassword</key><string>correct horse; battery</string>";
    let strict = Mode::Check {
        allow_secret_in_profile: false,
    };

    // In the local file (0600, ours): fine, kept as a secret, spaces and all.
    let local = write_mode(
        dir.path(),
        "local.plist",
        &plist(&format!("{CONNECT}{keychain}{user}{password}")),
        0o600,
    );
    let loaded = load_with(&Sources::single(local.clone()), strict, &known, me()).unwrap();
    let c = &loaded.config;
    assert_eq!(
        c.enrollment_user_password
            .as_ref()
            .map(|p| p.expose_secret().to_owned()),
        Some("correct horse; battery".to_owned())
    );
    assert!(!format!("{c:?}").contains("correct horse"));
    assert_eq!(c.secure_token_timeout.as_secs(), 300);

    // A local file holding it must be private, as for APIKey (here: readable by others).
    fs::set_permissions(&local, fs::Permissions::from_mode(0o644)).unwrap();
    let err = load_with(&Sources::single(local), strict, &known, me()).unwrap_err();
    assert!(
        err.to_string()
            .contains("EnrollmentUserPassword: the file holds a secret"),
        "{err}"
    );

    // In managed preferences: an error in `config check` unless allowed, a warning in `run`.
    let managed = write_mode(
        dir.path(),
        "managed.plist",
        &plist(&format!("{CONNECT}{keychain}{user}{password}")),
        0o644,
    );
    let sources = Sources {
        managed: Some(managed),
        local: None,
    };
    let err = load_with(&sources, strict, &known, me()).unwrap_err();
    assert!(
        err.to_string().contains(
            "EnrollmentUserPassword: a password in managed preferences is readable by every user"
        ),
        "{err}"
    );
    assert!(!err.to_string().contains("battery"), "{err}");
    let allowed = Mode::Check {
        allow_secret_in_profile: true,
    };
    assert!(load_with(&sources, allowed, &known, me()).is_ok());
    let run = load_with(&sources, Mode::Run, &known, me()).unwrap();
    assert!(run
        .warnings
        .iter()
        .any(|w| w.key == "EnrollmentUserPassword" && w.severity == Severity::Warning));

    // Without EnrollmentUser it belongs to nobody; a line break would break the file's line.
    for (body, want) in [
        (
            format!("{CONNECT}{keychain}<key>DeleteEnrollmentUsers</key><false/>{password}"),
            "EnrollmentUserPassword: is set without EnrollmentUser",
        ),
        (
            format!(
                "{CONNECT}{keychain}{user}<key>EnrollmentUserPassword</key><string>a\nb</string>"
            ),
            "EnrollmentUserPassword: is empty or contains a line break",
        ),
        (
            format!(
                "{CONNECT}{keychain}{user}<key>SecureTokenTimeoutSeconds</key><integer>0</integer>"
            ),
            "SecureTokenTimeoutSeconds: is 0, outside 1..=86400",
        ),
    ] {
        let file = write_mode(dir.path(), "bad.plist", &plist(&body), 0o600);
        let err = load_with(&Sources::single(file), strict, &known, me()).unwrap_err();
        assert!(err.to_string().contains(want), "{want}: {err}");
    }
    let file = write_mode(
        dir.path(),
        "timeout.plist",
        &plist(&format!(
            "{CONNECT}{keychain}{user}<key>SecureTokenTimeoutSeconds</key><integer>900</integer>"
        )),
        0o600,
    );
    let loaded = load_with(&Sources::single(file), strict, &known, me()).unwrap();
    assert_eq!(loaded.config.secure_token_timeout.as_secs(), 900);
    assert!(loaded.config.enrollment_user_password.is_none());
}
