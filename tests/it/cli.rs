//! Integration tests: the command line of SPEC §2, run as the real `prestage` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const EXE: &str = env!("CARGO_BIN_EXE_prestage");

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn prestage(args: &[&str]) -> Output {
    Command::new(EXE).args(args).output().expect("run prestage")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn config_check_passes_both_examples() {
    for example in ["examples/minimal.plist", "examples/complete.plist"] {
        let path = repo(example);
        let out = prestage(&["config", "check", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{example}:\n{}", text(&out));
    }
}

#[test]
fn config_check_accepts_a_tenant_connect_key_and_explains_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let minimal = std::fs::read_to_string(repo("examples/minimal.plist")).unwrap();
    let with_key = |name: &str, key: &str| {
        let path = dir.path().join(name);
        let text = minimal.replace("0123456789abcdef0123456789abcdef01234567", key);
        std::fs::write(&path, text).unwrap();
        path
    };
    let payload = br#"{"publicKickstartUrl":"https://kickstart.jumpcloud.com:443","privateKickstartUrl":"https://private-kickstart.jumpcloud.com:443","connectKey":"k"}"#;
    let good = with_key(
        "good.plist",
        &prestage::config::connect_key::encode_tenant_key(payload),
    );
    let out = prestage(&["config", "check", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let broken = with_key(
        "broken.plist",
        &prestage::config::connect_key::encode_tenant_key(br#"{"publicKickstartUrl":"x"}"#),
    );
    let out = prestage(&["config", "check", broken.to_str().unwrap()]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("ConnectKey"), "{all}");
    assert!(all.contains("no string connectKey"), "{all}");
    assert!(all.contains("broken.plist"), "{all}");
}

#[test]
fn config_check_fails_every_bad_fixture_naming_the_file() {
    let dir = repo("tests/fixtures/config/bad");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let out = prestage(&["config", "check", path.to_str().unwrap()]);
        let all = text(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{} passed:\n{all}",
            path.display()
        );
        assert!(all.contains(&path.display().to_string()), "{all}");
        assert!(!all.contains("panicked"), "{all}");
        checked += 1;
    }
    assert!(checked >= 20);
}

#[test]
fn config_check_rejects_an_unknown_string_id_through_the_ui_table() {
    let path = repo("tests/fixtures/config/bad/unknown-string-id.plist");
    let out = prestage(&["config", "check", path.to_str().unwrap()]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("UI.Strings"), "{all}");
}

#[test]
fn config_check_on_a_missing_file_and_a_directory() {
    let out = prestage(&["config", "check", "/nonexistent/io.prestage.enroll.plist"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("/nonexistent/io.prestage.enroll.plist"));
    let dir = tempfile::tempdir().unwrap();
    let out = prestage(&["config", "check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn config_import_writes_a_config_that_passes_check() {
    let dir = tempfile::tempdir().unwrap();
    let script = repo("tests/fixtures/config/import");
    let template = std::fs::read_dir(&script)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sh"))
        .expect("a filled-in template in tests/fixtures/config/import");
    let out_file = dir.path().join("io.prestage.enroll.plist");
    let out = prestage(&[
        "config",
        "import",
        template.to_str().unwrap(),
        "-o",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let check = prestage(&["config", "check", out_file.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
}

#[test]
fn config_schema_is_json_with_every_top_level_key() {
    let out = prestage(&["config", "schema"]);
    assert_eq!(out.status.code(), Some(0));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let props = schema["properties"].as_object().expect("properties");
    for key in [
        "ConnectKey",
        "APIKey",
        "Identity",
        "Password",
        "UI",
        "Agent",
        "ReportToDirectory",
    ] {
        assert!(props.contains_key(key), "{key} missing from the schema");
    }
}

#[test]
fn run_without_configuration_exits_78_and_status_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let out = prestage(&["run", "--root", root]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    assert!(text(&out).starts_with("error: "), "{}", text(&out));
    // The log under --root has the detail; status has the reference code.
    let log = std::fs::read_to_string(dir.path().join("var/log/prestage.log")).unwrap();
    assert!(log.contains("configuration is invalid"), "{log}");
    let status = prestage(&["status", "--json", "--root", root]);
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(report["phase"], "failed");
    assert!(report["reference"].as_str().unwrap().starts_with("PS-"));
}

#[test]
fn log_format_json_writes_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let _ = prestage(&["--log-format", "json", "run", "--root", root]);
    let log = std::fs::read_to_string(dir.path().join("var/log/prestage.log")).unwrap();
    let first = log.lines().next().expect("a log line");
    let line: serde_json::Value = serde_json::from_str(first).expect("JSON log line");
    assert!(line.get("level").is_some(), "{first}");
}

#[test]
fn status_before_anything_ran() {
    let dir = tempfile::tempdir().unwrap();
    let out = prestage(&["status", "--root", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not_started"));
}

#[test]
fn reset_asks_and_a_no_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let _ = prestage(&["run", "--root", root]);
    let state = dir.path().join("var/db/prestage/state.json");
    assert!(state.exists());
    let mut child = Command::new(EXE)
        .args(["reset", "--root", root])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"n\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "SPEC §2: reset exits 0");
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing changed"));
    assert!(state.exists(), "a `no` keeps the progress");
}

#[test]
fn ui_preview_draws_every_screen() {
    let dir = tempfile::tempdir().unwrap();
    let out = prestage(&["ui", "preview", "--out", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(dir.path().join("index.html").exists());
    let html = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "html")
        })
        .count();
    assert!(html >= 8, "{html} HTML files");
}

#[test]
fn bad_arguments_get_a_usage_error() {
    let out = prestage(&["config", "check"]);
    assert_eq!(out.status.code(), Some(2));
    let out = prestage(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `config check --online` against the simulated tenant: a line per check, read-only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_check_online_against_the_simulated_tenant() {
    use secrecy::ExposeSecret;
    use std::os::unix::fs::PermissionsExt;
    let tenant = prestage::sim::Tenant::start(prestage::sim::SimOptions::default())
        .await
        .unwrap();
    let group = tenant.add_group("New Macs");
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, api_key: &str| -> PathBuf {
        let mut config = plist::Dictionary::new();
        config.insert("ConnectKey".into(), tenant.connect_key().into());
        config.insert("APIKey".into(), api_key.to_owned().into());
        config.insert(
            "APIBaseURL".into(),
            tenant
                .url()
                .as_str()
                .trim_end_matches('/')
                .to_owned()
                .into(),
        );
        config.insert("EnrollmentGroupID".into(), group.clone().into());
        config.insert("EnrollmentUser".into(), "welcome".into());
        let path = dir.path().join(name);
        plist::Value::Dictionary(config).to_file_xml(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    let good = write("good.plist", tenant.api_key().expose_secret());
    let bad = write("bad.plist", "0123456789abcdef0123456789abcdef01234567");
    let before = tenant.requests().len();
    let run = |path: PathBuf| async move {
        tokio::process::Command::new(EXE)
            .args(["config", "check", "--online"])
            .arg(&path)
            .output()
            .await
            .unwrap()
    };
    let ok = run(good).await;
    let all = text(&ok);
    if rustix::process::geteuid().is_root() {
        assert_eq!(ok.status.code(), Some(0), "{all}");
        assert!(all.contains("ok    API key"), "{all}");
        assert!(all.contains("EnrollmentGroupID"), "{all}");
        let failed = run(bad).await;
        let all = text(&failed);
        assert_eq!(failed.status.code(), Some(1), "{all}");
        assert!(all.contains("FAIL"), "{all}");
        assert!(
            !all.contains("0123456789abcdef0123456789abcdef01234567"),
            "the key is never echoed"
        );
        // Read-only: nothing but GET requests reached the tenant.
        let requests = tenant.requests();
        assert!(requests.len() > before);
        assert!(
            requests[before..].iter().all(|r| r.method == "GET"),
            "{requests:?}"
        );
    } else {
        // A file holding a secret must be root-owned: off root, the offline check says so.
        assert_eq!(ok.status.code(), Some(1), "{all}");
        assert!(all.contains("chown"), "{all}");
    }
}

/// Standard error of a failed command: exactly one line, `error: <what>; <how to fix>`.
fn one_error_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(lines[0].contains("; "), "what; how to fix: {err}");
    lines[0].to_owned()
}

#[test]
fn run_with_an_invalid_configuration_prints_one_line_naming_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.plist");
    std::fs::write(
        &config,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict>\
         <key>ConnectKey</key><string>abc</string>\
         <key>APIKeyKeychainService</key><string>svc</string>\
         <key>Identity</key><dict><key>Secret</key><string>Pin</string></dict>\
         </dict></plist>\n",
    )
    .unwrap();
    let root = dir.path().join("mac");
    let out = prestage(&[
        "run",
        "--root",
        root.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    let line = one_error_line(&out);
    for what in [
        "ConnectKey",
        "Identity.Secret",
        "EnrollmentUser",
        "bad.plist",
        "PS-",
    ] {
        assert!(line.contains(what), "{what} missing: {line}");
    }
}

#[test]
fn usage_errors_are_one_line_too() {
    for args in [
        &["config", "check"][..],
        &["frobnicate"],
        &["status", "--bogus"],
        &["--log-format", "xml", "status"],
    ] {
        let out = prestage(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let line = one_error_line(&out);
        assert!(
            line.contains("usage: prestage") || line.contains("--help"),
            "{line}"
        );
    }
    let out = prestage(&["config", "check"]);
    assert!(one_error_line(&out).contains("<FILE>"));
    // --help and --version still print normally, on stdout, exit 0.
    let out = prestage(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: prestage"));
    // A command group without its command shows its help (clap's layout, exit 2).
    for args in [&[][..], &["config"], &["ui"]] {
        let out = prestage(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("\nCommands:\n"), "{args:?}: {err}");
        assert!(!err.starts_with("error: "), "{args:?}: {err}");
    }
}

#[test]
fn status_exits_0_even_when_the_state_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    // state.json is a directory: reading it fails with EISDIR.
    std::fs::create_dir_all(dir.path().join("var/db/prestage/state.json")).unwrap();
    let root = dir.path().to_str().unwrap();
    let out = prestage(&["status", "--root", root]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("unreadable"));
    let out = prestage(&["status", "--json", "--root", root]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["phase"], "unreadable");
    assert!(report["last_error"]
        .as_str()
        .unwrap()
        .contains("state.json"));
    // /var/db/prestage is a file: ENOTDIR.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("var/db")).unwrap();
    std::fs::write(dir.path().join("var/db/prestage"), "x").unwrap();
    let out = prestage(&["status", "--json", "--root", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn root_and_config_are_accepted_before_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let config = dir.path().join("missing.plist");
    let out = prestage(&["--root", root, "--config", config.to_str().unwrap(), "run"]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    assert!(one_error_line(&out).contains("missing.plist"));
    assert!(dir.path().join("var/log/prestage.log").is_file());
    let out = prestage(&["--root", root, "status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["phase"], "failed");
    let out = prestage(&["--root", root, "reset", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!dir.path().join("var/db/prestage/state.json").exists());
    // Where they mean nothing they are refused, not ignored.
    let out = prestage(&["--root", root, "config", "schema"]);
    assert_eq!(out.status.code(), Some(2));
    one_error_line(&out);
    let out = prestage(&["status", "--config", "x.plist"]);
    assert_eq!(out.status.code(), Some(2));
    one_error_line(&out);
}

#[test]
fn config_check_treats_a_managed_preferences_file_as_the_profile() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let managed_dir = dir.path().join("Library/Managed Preferences");
    std::fs::create_dir_all(&managed_dir).unwrap();
    let managed = managed_dir.join("io.prestage.enroll.plist");
    std::fs::write(
        &managed,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict>\
         <key>ConnectKey</key><string>0123456789abcdef0123456789abcdef01234567</string>\
         <key>APIKey</key><string>jca_example</string>\
         <key>DeleteEnrollmentUsers</key><false/>\
         </dict></plist>\n",
    )
    .unwrap();
    // macOS writes managed preferences world-readable; that is not what is wrong here.
    std::fs::set_permissions(&managed, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = managed.to_str().unwrap();
    let out = prestage(&["config", "check", path]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("APIKey: an API key in managed preferences"),
        "{}",
        text(&out)
    );
    let out = prestage(&["config", "check", path, "--allow-secret-in-profile"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("warning: "), "{}", text(&out));
}

#[test]
fn config_import_to_an_unwritable_path_says_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("no/such/folder/out.plist");
    let out = prestage(&[
        "config",
        "import",
        repo("tests/fixtures/config/import/bootstrap_filled.sh")
            .to_str()
            .unwrap(),
        "-o",
        target.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let line = one_error_line(&out);
    assert!(line.contains("out.plist"), "{line}");
    assert!(line.contains("-o"), "{line}");
}

#[test]
fn verbose_run_logs_to_stderr_even_when_piped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    // Without -v (as under launchd, where stderr is the log file) only the error line.
    let out = prestage(&["run", "--root", root]);
    assert_eq!(out.status.code(), Some(78));
    one_error_line(&out);
    // -vv: debug lines on stderr too, and in the log file.
    let out = prestage(&["-vv", "run", "--root", root]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DEBUG"), "{err}");
    assert!(err.contains("configuration is invalid"), "{err}");
    let log = std::fs::read_to_string(dir.path().join("var/log/prestage.log")).unwrap();
    assert!(log.contains("DEBUG"), "{log}");
}

/// `prestage demo` as a newcomer and an admin run it: with no configuration, with each example,
/// and with every form of `Identity` that `config check` accepts (a space after `Attribute:`
/// included). Each must finish, exit 0 and say it enrolled the employee.
#[test]
fn the_demo_finishes_with_every_example_and_every_identity_form() {
    let dir = tempfile::tempdir().unwrap();
    let identity = |name: &str, identifier: &str, secret: &str| {
        let path = dir.path().join(format!("{name}.plist"));
        let text = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict>\
             <key>ConnectKey</key><string>0123456789abcdef0123456789abcdef01234567</string>\
             <key>APIKey</key><string>replaced-by-the-demo</string>\
             <key>Identity</key><dict><key>Identifier</key><string>{identifier}</string>\
             <key>Secret</key><string>{secret}</string></dict></dict></plist>"
        );
        std::fs::write(&path, text).unwrap();
        path
    };
    let mut runs: Vec<(String, Vec<String>)> = vec![("no configuration".into(), vec![])];
    for example in ["examples/minimal.plist", "examples/complete.plist"] {
        runs.push((
            example.into(),
            vec!["--config".into(), repo(example).display().to_string()],
        ));
    }
    for (name, identifier, secret) in [
        ("company-none", "CompanyEmail", "None"),
        ("personal-employee-id", "PersonalEmail", "EmployeeID"),
        ("lastname-attribute", "LastName", "Attribute:EnrollmentCode"),
        (
            "username-attribute-space",
            "Username",
            "Attribute: EnrollmentCode",
        ),
    ] {
        let path = identity(name, identifier, secret);
        runs.push((
            name.into(),
            vec!["--config".into(), path.display().to_string()],
        ));
    }
    let handles: Vec<_> = runs
        .into_iter()
        .map(|(name, args)| {
            std::thread::spawn(move || {
                let mut child = Command::new(EXE)
                    .arg("demo")
                    .args(&args)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                // A hang is the failure this test exists for: give up after a generous bound.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
                loop {
                    if child.try_wait().unwrap().is_some() {
                        break;
                    }
                    if std::time::Instant::now() > deadline {
                        let _ = child.kill();
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                let out = child.wait_with_output().unwrap();
                (name, out)
            })
        })
        .collect();
    for handle in handles {
        let (name, out) = handle.join().unwrap();
        let all = text(&out);
        assert_eq!(out.status.code(), Some(0), "demo with {name}:\n{all}");
        assert!(
            all.contains("enrolled `ada.lovelace`"),
            "demo with {name}:\n{all}"
        );
        // The simulated Mac stays for a look around: clean it up here.
        if let Some(root) = all
            .lines()
            .find_map(|l| l.trim().strip_prefix("simulated Mac"))
            .and_then(|rest| rest.split_whitespace().next())
        {
            if root.contains("prestage-demo-") {
                let _ = std::fs::remove_dir_all(root);
            }
        }
    }
}
