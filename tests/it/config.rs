//! Integration tests: configuration (`prestage::config`): `config check` on the examples and on
//! every bad fixture, bad inputs made at test time, binary plists, managed-over-local merging,
//! the secrets rules, redaction, and `config import` of a filled-in bash template.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use prestage::config::{
    self, check_command, check_command_with, legacy, load_with, ApiKeySource, Identifier,
    LoadOptions, Mode, PolicySource, SecretKind, Severity, Sources,
};
use secrecy::{ExposeSecret as _, SecretString};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/config").join(name)
}

/// The string ids our tests pretend the UI knows.
fn known(id: &str) -> bool {
    ["welcome.title", "done.message"].contains(&id)
}

fn me() -> LoadOptions {
    LoadOptions {
        expected_owner: rustix::process::getuid().as_raw(),
    }
}

/// Runs `config check` as the binary would (root expected) and returns (exit code, output).
fn check(file: &Path) -> (i32, String) {
    let mut out = Vec::new();
    let code = check_command(file, false, &known, &mut out);
    (code, String::from_utf8(out).unwrap())
}

fn check_as_me(file: &Path, allow: bool) -> (i32, String) {
    let mut out = Vec::new();
    let code = check_command_with(file, allow, &known, me(), &mut out);
    (code, String::from_utf8(out).unwrap())
}

fn write_mode(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    p
}

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

const PLIST_HEAD: &str =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">\n<dict>\n";
const PLIST_TAIL: &str = "</dict>\n</plist>\n";
const CONNECT: &str =
    "<key>ConnectKey</key><string>0123456789abcdef0123456789abcdef01234567</string>\n";

fn plist(body: &str) -> Vec<u8> {
    format!("{PLIST_HEAD}{body}{PLIST_TAIL}").into_bytes()
}

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
