//! Packaging: the LaunchDaemon, the installer scripts (run for real against a temporary tree),
//! the fake tools they need, and the uninstaller.

use super::{describe, files_under, lay_payload, mode, repo, write, FakeMac, DAEMON_TEMPLATE};
use prestage::host::fake::world::{self};
use prestage::paths::{mac, Root};
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

// ---------------------------------------------------------------------------------------------
// LaunchDaemon

#[test]
fn launch_daemon_matches_spec() {
    let path = repo().join(DAEMON_TEMPLATE);
    let value = plist::Value::from_file(&path).unwrap();
    let dict = value.as_dictionary().expect("top level is a dictionary");

    assert_eq!(
        path.file_stem().unwrap(),
        mac::LABEL,
        "file named after the label"
    );
    assert_eq!(
        Path::new(mac::LAUNCH_DAEMON).file_name(),
        path.file_name(),
        "installed under the same name"
    );
    assert_eq!(dict["Label"].as_string(), Some(mac::LABEL));
    let args: Vec<&str> = dict["ProgramArguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_string().unwrap())
        .collect();
    assert_eq!(args, [mac::BINARY, "run"]);
    assert_eq!(dict["RunAtLoad"].as_boolean(), Some(true));

    // Restart only after a failed exit: KeepAlive is exactly {SuccessfulExit = false}.
    let keep_alive = dict["KeepAlive"].as_dictionary().expect("KeepAlive dict");
    assert_eq!(keep_alive.len(), 1, "only SuccessfulExit: {keep_alive:?}");
    assert_eq!(keep_alive["SuccessfulExit"].as_boolean(), Some(false));

    // Exit 78 (configuration invalid) is restarted too: the throttle keeps that to one start
    // a minute or less, without making a real failure wait for minutes.
    let throttle = dict["ThrottleInterval"].as_signed_integer().unwrap();
    assert!(
        (30..=300).contains(&throttle),
        "ThrottleInterval {throttle}"
    );
    assert_eq!(dict["AbandonProcessGroup"].as_boolean(), Some(true));
    assert_eq!(dict["StandardOutPath"].as_string(), Some(mac::LOG_FILE));
    assert_eq!(dict["StandardErrorPath"].as_string(), Some(mac::LOG_FILE));
    let exit_timeout = dict["ExitTimeOut"].as_signed_integer().unwrap();
    assert!(exit_timeout >= 20, "time to persist state on SIGTERM");

    // No other keys sneak in (UserName would drop root; WatchPaths would restart after success).
    let keys: BTreeSet<&str> = dict.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = [
        "Label",
        "ProgramArguments",
        "RunAtLoad",
        "KeepAlive",
        "ThrottleInterval",
        "AbandonProcessGroup",
        "ExitTimeOut",
        "ProcessType",
        "StandardOutPath",
        "StandardErrorPath",
    ]
    .into();
    assert_eq!(keys, expected);
    assert_eq!(dict["ProcessType"].as_string(), Some("Interactive"));
}

#[test]
fn product_requirements_name_both_architectures() {
    let value = plist::Value::from_file(repo().join("packaging/requirements.plist")).unwrap();
    let dict = value.as_dictionary().unwrap();
    let arch: Vec<&str> = dict["arch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_string().unwrap())
        .collect();
    assert_eq!(arch, ["arm64", "x86_64"]);
    assert_eq!(dict["os"].as_array().unwrap()[0].as_string(), Some("11.0"));
}

// ---------------------------------------------------------------------------------------------
// Installer scripts

#[test]
fn postinstall_on_boot_volume_sets_owners_and_modes_then_bootstraps() {
    let mac = FakeMac::new();
    mac.lay_payload();

    let out = mac.run_installer_script("postinstall", &mac.root);
    assert!(out.status.success(), "{}", describe("postinstall", &out));

    let libexec = mac.path(mac::BINARY).parent().unwrap().to_path_buf();
    let expected_modes = [
        (libexec.clone(), 0o755),
        (mac.path(mac::BINARY), 0o755),
        (libexec.join("uninstall.sh"), 0o755),
        (libexec.join("swiftDialog.pkg"), 0o644),
        (mac.path(mac::LAUNCH_DAEMON), 0o644),
        (mac.path(mac::LOCAL_CONFIG), 0o600),
        (mac.path(mac::STATE_DIR), 0o700),
        (mac.path(mac::LOG_FILE), 0o640),
    ];
    for (path, want) in &expected_modes {
        assert_eq!(mode(path), *want, "mode of {}", path.display());
    }

    let chowns: BTreeSet<String> = mac.calls_of("chown").into_iter().collect();
    let mut expected_chowns: BTreeSet<String> = expected_modes
        .iter()
        .map(|(p, _)| format!("chown root:wheel {}", p.display()))
        .collect();
    expected_chowns.insert(format!(
        "chown -h root:wheel {}",
        mac.path(mac::BINARY_LINK).display()
    ));
    assert_eq!(chowns, expected_chowns);
    assert!(
        fs::symlink_metadata(mac.path(mac::BINARY_LINK))
            .unwrap()
            .is_symlink(),
        "the link stays a link"
    );

    let label = format!("system/{}", mac::LABEL);
    assert_eq!(
        mac.calls_of("launchctl"),
        [
            format!("launchctl enable {label}"),
            format!("launchctl print {label}"),
            format!(
                "launchctl bootstrap system {}",
                mac.path(mac::LAUNCH_DAEMON).display()
            ),
        ]
    );
    // The fake's own record of the bootstrap: the tool's macOS path and the real plist path
    // under the root that the script passes.
    let bootstrap = world::calls(&mac.mac_root())
        .unwrap()
        .into_iter()
        .find(|c| c.args.first().map(String::as_str) == Some("bootstrap"))
        .unwrap();
    assert_eq!(bootstrap.tool, mac::LAUNCHCTL);
    assert_eq!(
        bootstrap.args,
        [
            "bootstrap".to_owned(),
            "system".to_owned(),
            mac.path(mac::LAUNCH_DAEMON).display().to_string()
        ]
    );
    assert!(mac.is_loaded(), "launchd has the daemon loaded");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("started system/io.prestage.enroll"),
        "{}",
        describe("postinstall", &out)
    );
}

#[test]
fn postinstall_on_another_volume_fixes_modes_but_does_not_load_the_daemon() {
    let mac = FakeMac::new();
    let volume = tempfile::tempdir().unwrap();
    lay_payload(volume.path());
    let on_volume = |p: &str| Root::new(volume.path()).resolve(p);

    // Trailing slash as installer passes volume paths ("/Volumes/Macintosh HD/").
    let target = PathBuf::from(format!("{}/", volume.path().display()));
    let out = mac.run_installer_script("postinstall", &target);
    assert!(out.status.success(), "{}", describe("postinstall", &out));
    assert_eq!(mode(&on_volume(mac::LOCAL_CONFIG)), 0o600);
    assert_eq!(mode(&on_volume(mac::LAUNCH_DAEMON)), 0o644);
    assert_eq!(mode(&on_volume(mac::STATE_DIR)), 0o700);
    assert!(mac.calls_of("launchctl").is_empty(), "{:?}", mac.calls());
    assert!(!mac.is_loaded());
}

#[test]
fn postinstall_refuses_an_incomplete_payload() {
    let mac = FakeMac::new();
    mac.lay_payload();
    fs::remove_file(mac.path(mac::BINARY)).unwrap();

    let out = mac.run_installer_script("postinstall", &mac.root);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        describe("postinstall", &out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("payload is incomplete"),
        "{}",
        describe("postinstall", &out)
    );
    assert!(mac.calls_of("launchctl").is_empty());
}

#[test]
fn postinstall_leaves_an_already_loaded_daemon_running() {
    let mac = FakeMac::new();
    mac.lay_payload();
    mac.set_loaded(true);

    let out = mac.run_installer_script("postinstall", &mac.root);
    assert!(out.status.success(), "{}", describe("postinstall", &out));
    let label = format!("system/{}", mac::LABEL);
    assert_eq!(
        mac.calls_of("launchctl"),
        [
            format!("launchctl enable {label}"),
            format!("launchctl print {label}"),
        ],
        "no second bootstrap of a loaded job"
    );
}

#[test]
fn postinstall_fails_with_a_fix_when_launchd_keeps_refusing() {
    let mac = FakeMac::new();
    mac.lay_payload();
    mac.refuse_bootstrap();

    // Takes a few seconds: the script waits between its three attempts.
    let out = mac.run_installer_script("postinstall", &mac.root);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        describe("postinstall", &out)
    );
    let bootstraps = mac
        .calls_of("launchctl")
        .into_iter()
        .filter(|c| c.starts_with("launchctl bootstrap "))
        .count();
    assert_eq!(bootstraps, 3, "{:?}", mac.calls());
    assert!(!mac.is_loaded(), "launchd never loaded it");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("sudo launchctl bootstrap system"),
        "{}",
        describe("postinstall", &out)
    );
    // The files are in place all the same, so a reboot starts prestage.
    assert_eq!(mode(&mac.path(mac::LAUNCH_DAEMON)), 0o644);
}

#[test]
fn preinstall_stops_a_running_prestage() {
    let mac = FakeMac::new();
    mac.set_loaded(true);

    let out = mac.run_installer_script("preinstall", &mac.root);
    assert!(out.status.success(), "{}", describe("preinstall", &out));
    let label = format!("system/{}", mac::LABEL);
    assert_eq!(
        mac.calls_of("launchctl"),
        [
            format!("launchctl print {label}"),
            format!("launchctl bootout {label}"),
            format!("launchctl print {label}"),
        ]
    );
    assert!(!mac.is_loaded());
}

#[test]
fn preinstall_without_a_running_prestage_only_looks() {
    let mac = FakeMac::new();
    let out = mac.run_installer_script("preinstall", &mac.root);
    assert!(out.status.success(), "{}", describe("preinstall", &out));
    assert_eq!(
        mac.calls_of("launchctl"),
        [format!("launchctl print system/{}", mac::LABEL)]
    );

    // On a volume other than the running system there is nothing to stop.
    let other = tempfile::tempdir().unwrap();
    mac.set_loaded(true);
    let out = mac.run_installer_script("preinstall", other.path());
    assert!(out.status.success(), "{}", describe("preinstall", &out));
    assert_eq!(mac.calls_of("launchctl").len(), 1, "{:?}", mac.calls());
    assert!(mac.is_loaded());
}

#[test]
fn installer_scripts_need_the_target_volume() {
    for script in ["preinstall", "postinstall"] {
        let out = Command::new("bash")
            .arg(repo().join("packaging/scripts").join(script))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{}", describe(script, &out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("target volume"),
            "{}",
            describe(script, &out)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The fake tools the scripts need beyond what prestage itself runs

/// `launchctl print`, `launchctl enable`, a refused `bootstrap` and `pkgutil --forget` answer
/// like the real tools: the scripts only branch on exit codes, so those and the texts an admin
/// reads in the installer log must match.
#[test]
fn fake_tools_answer_the_scripts_like_macos() {
    let mac = FakeMac::new();
    let service = format!("system/{}", mac::LABEL);

    // print of a service launchd does not have: message on stderr, exit 113.
    let (code, out, err) = mac.run_tool(mac::LAUNCHCTL, &["print", &service]);
    assert_eq!(code, 113);
    assert_eq!(out, "");
    assert_eq!(
        err,
        format!(
            "Could not find service \"{}\" in domain for system\n",
            mac::LABEL
        )
    );
    mac.set_loaded(true);
    let (code, out, err) = mac.run_tool(mac::LAUNCHCTL, &["print", &service]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(&format!("{service} = {{\n")), "{out}");
    assert!(out.contains(mac::BINARY), "{out}");
    assert_eq!(err, "");

    // enable succeeds silently, loaded or not, and loads nothing.
    for loaded in [true, false] {
        mac.set_loaded(loaded);
        let (code, out, err) = mac.run_tool(mac::LAUNCHCTL, &["enable", &service]);
        assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
        assert_eq!(mac.is_loaded(), loaded);
    }
    // ... but wants a service, not a domain.
    let (code, _, err) = mac.run_tool(mac::LAUNCHCTL, &["enable", "system"]);
    assert_ne!(code, 0);
    assert!(err.contains("Unrecognized target specifier"), "{err}");

    // A launchd that refuses: error 5, nothing loaded; without the knob the same call loads.
    let plist = mac.path(mac::LAUNCH_DAEMON);
    write(&plist, "<plist/>", 0o644);
    let plist = plist.to_str().unwrap();
    mac.refuse_bootstrap();
    let (code, _, err) = mac.run_tool(mac::LAUNCHCTL, &["bootstrap", "system", plist]);
    assert_eq!(code, 5);
    assert_eq!(err, "Bootstrap failed: 5: Input/output error\n");
    assert!(!mac.is_loaded());
    mac.update(|w| w.edit_behaviour(|b| b.bootstrap_fails = false));
    let (code, _, err) = mac.run_tool(mac::LAUNCHCTL, &["bootstrap", "system", plist]);
    assert_eq!(code, 0, "{err}");
    assert!(mac.is_loaded());

    // pkgutil --forget: only a receipt the volume has, which is then gone.
    let volume = mac.root.to_str().unwrap();
    let forget = ["--volume", volume, "--forget", mac::LABEL];
    let (code, out, err) = mac.run_tool(mac::PKGUTIL, &forget);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        format!("No receipt for '{}' found at '{volume}'.\n", mac::LABEL)
    );
    mac.update(|w| w.installed_packages.push(mac::LABEL.to_owned()));
    let other = tempfile::tempdir().unwrap();
    let (code, _, _) = mac.run_tool(
        mac::PKGUTIL,
        &[
            "--volume",
            other.path().to_str().unwrap(),
            "--forget",
            mac::LABEL,
        ],
    );
    assert_eq!(code, 1, "another volume has its own receipts");
    let (code, out, err) = mac.run_tool(mac::PKGUTIL, &forget);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!("Forgot package '{}' on '{volume}'.\n", mac::LABEL)
    );
    assert!(mac.world().installed_packages.is_empty());

    // Every call above is in the fakes' record, in order.
    let tools: Vec<String> = mac
        .calls()
        .iter()
        .map(|c| c.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        tools,
        [
            "launchctl print",
            "launchctl print",
            "launchctl enable",
            "launchctl enable",
            "launchctl enable",
            "launchctl bootstrap",
            "launchctl bootstrap",
            "pkgutil --volume",
            "pkgutil --volume",
            "pkgutil --volume",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Uninstaller

#[test]
fn uninstall_removes_everything_installed_and_nothing_else() {
    let mac = FakeMac::new();
    // Files that are not ours and must survive: the setup account's home, another tool in
    // /usr/local/bin, JumpCloud's agent, the managed preferences written by the MDM profile.
    let keep = [
        "/Users/welcome/Desktop/notes.txt",
        "/usr/local/bin/dialog",
        "/opt/jc/jcagent.conf",
        mac::MANAGED_CONFIG,
    ];
    for path in keep {
        write(&mac.path(path), "keep", 0o644);
    }
    let before = files_under(&mac.root);

    mac.lay_payload();
    let out = mac.run_installer_script("postinstall", &mac.root);
    assert!(out.status.success(), "{}", describe("postinstall", &out));
    // installer(8) records the package's receipt; prestage's own files appear while it runs.
    mac.update(|w| w.installed_packages.push(mac::LABEL.to_owned()));
    write(&mac.path(mac::STATE_FILE), "{}", 0o600);
    write(&mac.path(mac::JOURNAL_FILE), "{}\n", 0o600);
    assert!(mac.is_loaded());

    // The way an MDM runs it: the installed copy, which removes itself.
    let out = mac.run_uninstall(&mac.root, true);
    assert!(out.status.success(), "{}", describe("uninstall", &out));
    assert!(
        String::from_utf8_lossy(&out.stdout).ends_with("prestage uninstall: done\n"),
        "ran to the end after deleting itself: {}",
        describe("uninstall", &out)
    );

    assert_eq!(
        files_under(&mac.root),
        before,
        "exactly the files that were there before the install are left\n{}",
        describe("uninstall", &out)
    );
    for gone in [
        mac::STATE_DIR,
        "/usr/local/libexec/prestage",
        mac::LAUNCH_DAEMON,
    ] {
        assert!(
            fs::symlink_metadata(mac.path(gone)).is_err(),
            "{gone} is left"
        );
    }
    assert!(!mac.is_loaded(), "the daemon was booted out");
    assert!(mac
        .calls_of("launchctl")
        .contains(&format!("launchctl bootout system/{}", mac::LABEL)));
    assert_eq!(
        mac.calls_of("pkgutil"),
        [format!(
            "pkgutil --volume {} --forget {}",
            mac.root.display(),
            mac::LABEL
        )]
    );
    assert!(
        !mac.world()
            .installed_packages
            .iter()
            .any(|p| p == mac::LABEL),
        "the receipt is forgotten: {:?}",
        mac.world().installed_packages
    );
    // Never a user account tool: every macOS tool prestage knows is faked and records its
    // calls (sysadminctl, dscl, ...), and only these ran.
    for call in mac.calls() {
        assert!(
            ["launchctl ", "chown ", "pkgutil "]
                .iter()
                .any(|t| call.starts_with(t)),
            "unexpected tool call {call}"
        );
    }
}

#[test]
fn uninstall_leaves_a_foreign_link_alone() {
    let mac = FakeMac::new();
    let link = mac.path(mac::BINARY_LINK);
    fs::create_dir_all(link.parent().unwrap()).unwrap();
    symlink("/opt/homebrew/bin/prestage", &link).unwrap();

    let out = mac.run_uninstall(&mac.root, false);
    assert!(out.status.success(), "{}", describe("uninstall", &out));
    assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
    // Nothing was loaded, so nothing was booted out.
    assert_eq!(
        mac.calls_of("launchctl"),
        [format!("launchctl print system/{}", mac::LABEL)]
    );
}
