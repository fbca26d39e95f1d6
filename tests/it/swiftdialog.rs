//! Integration tests: swiftDialog as it really behaves (issue 16), through the swiftDialog
//! backend and the fake swiftDialog (launcher and app as separate processes, modelled on
//! swiftDialog's own source; see `src/ui/fake_dialog.rs`).

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use prestage::config::UiConfig;
use prestage::host::fake::world::World;
use prestage::paths::{mac, Root};
use prestage::ui::dialog::{COMMAND_FILE_DIR, COMMAND_FILE_PREFIX, NO_QUIT_KEY};
use prestage::ui::fake_dialog::{self, ScriptedAnswer};
use prestage::ui::{Ui, UiError};

use super::ui::{answer, identity_prompt, last_call_values, mac_with, progress, ui_for};
use super::util::wait_until;

#[tokio::test]
async fn the_progress_window_follows_the_command_file_until_quit() {
    let mac = mac_with("welcome", true, None);
    let icon = mac.root.resolve("/Library/Acme/icon.png");
    std::fs::create_dir_all(icon.parent().unwrap()).unwrap();
    std::fs::write(&icon, b"png").unwrap();
    let config = UiConfig {
        window_title: Some("ACME, Inc. IT".into()),
        welcome_title: Some("Welcome to ACME".into()),
        icon: Some("/Library/Acme/icon.png".into()),
        banner_image: Some("/Library/Acme/missing-banner.png".into()),
        ..UiConfig::default()
    };
    let mut ui = ui_for(&mac, config);
    ui.progress(&progress(10, "progress.installing_agent", 1))
        .await
        .unwrap();
    let root = mac.root.clone();
    wait_until(&root, "the progress window to start", || {
        !fake_dialog::calls(&root).is_empty()
    })
    .await;
    let args = &fake_dialog::calls(&mac.root)[0].args;
    let value = |opt: &str| {
        args.iter()
            .position(|a| a == opt)
            .map(|i| args[i + 1].clone())
    };
    let command_file = value("--commandfile").unwrap();
    assert!(
        command_file.starts_with(&format!("{COMMAND_FILE_DIR}/{COMMAND_FILE_PREFIX}")),
        "{command_file}"
    );
    assert_eq!(value("--quitkey").as_deref(), Some(NO_QUIT_KEY));
    assert_eq!(value("--title").as_deref(), Some("ACME, Inc. IT"));
    assert!(value("--message")
        .unwrap()
        .starts_with("## Welcome to ACME\\n\\n"));
    assert_eq!(value("--icon").as_deref(), Some("/Library/Acme/icon.png"));
    assert_eq!(value("--bannerimage"), None, "a missing banner is left out");
    assert!(args.contains(&"--blurscreen".to_owned()));
    assert!(args.contains(&"--listitem".to_owned()));

    let mode = std::fs::metadata(mac.root.resolve(&command_file))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);

    // Give the window time to start following before the update we check.
    ui.progress(&progress(60, "progress.binding", 2))
        .await
        .unwrap();
    wait_until(&root, "the update to be read", || {
        fake_dialog::command_lines(&root).contains(&"progress: 60".to_owned())
    })
    .await;
    ui.close().await.unwrap();
    let lines = fake_dialog::command_lines(&mac.root);
    for expected in [
        "progress: 60",
        "progresstext: Linking your account to this Mac…",
        "listitem: title: Install JumpCloud, status: success",
        "listitem: title: Confirm who you are, status: wait",
        "quit:",
    ] {
        assert!(
            lines.contains(&expected.to_owned()),
            "{expected} not in {lines:?}"
        );
    }
    assert_eq!(lines.last().map(String::as_str), Some("quit:"));
    assert!(
        !mac.root.resolve(&command_file).exists(),
        "removed once the window is gone"
    );
    assert!(fake_dialog::windows(&mac.root).is_empty());
}

/// swiftDialog ignores command-file lines while the file is older than its launch
/// (`DialogUpdatableContent.swift`, `processCommands`).
#[tokio::test]
async fn the_fake_only_follows_lines_written_after_it_started() {
    let mac = mac_with("welcome", true, None);
    let file = mac.root.resolve("/var/tmp/dialog.log");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "progress: 1\nquit:\n").unwrap();
    let mut child = tokio::process::Command::new(mac.root.tool(mac::DIALOG))
        .args([
            "--title",
            "t",
            "--commandfile",
            "/var/tmp/dialog.log",
            "--button1disabled",
        ])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let root = mac.root.clone();
    wait_until(&root, "the window to be up", || {
        !fake_dialog::windows(&root).is_empty()
    })
    .await;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"progress: 2\nquit:\n"))
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("fake dialog quits")
        .unwrap();
    assert_eq!(status.code(), Some(5));
    assert_eq!(
        fake_dialog::command_lines(&mac.root),
        vec!["progress: 2", "quit:"]
    );
    let ignored: Vec<String> = fake_dialog::all_command_lines(&mac.root)
        .into_iter()
        .filter(|c| !c.accepted)
        .map(|c| c.line)
        .collect();
    assert_eq!(ignored, vec!["progress: 1", "quit:"]);
}

/// Real swiftDialog ignores options it does not know (no validation pass, source audit row 2);
/// the fake records them so tests can assert prestage sends none.
#[tokio::test]
async fn the_fake_ignores_options_swiftdialog_does_not_have_but_records_them() {
    let mac = mac_with("welcome", true, None);
    let out = tokio::process::Command::new(mac.root.tool(mac::DIALOG))
        .args(["--title", "x", "--titlecolour", "red", "--json"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{\n\n}\n");
    let calls = fake_dialog::calls(&mac.root);
    assert_eq!(calls.last().unwrap().unknown, vec!["--titlecolour"]);
}

/// What prestage sends is all swiftDialog's: no unknown option in any window of a session.
fn assert_no_unknown_options(root: &Root) {
    for call in fake_dialog::calls(root) {
        assert!(
            call.unknown.is_empty(),
            "{:?} in {:?}",
            call.unknown,
            call.args
        );
    }
}

#[tokio::test]
async fn the_fake_shows_at_the_login_window_only_when_asked() {
    let mac = mac_with("root", true, None);
    World::update(&mac.root, |w| w.console_user = "root".into()).unwrap();
    let run = |extra: &'static [&'static str]| {
        let dialog = mac.root.tool(mac::DIALOG);
        async move {
            tokio::process::Command::new(dialog)
                .args(["--title", "t"])
                .args(extra)
                .output()
                .await
                .unwrap()
                .status
                .code()
        }
    };
    assert_eq!(run(&[]).await, Some(1));
    assert_eq!(run(&["--loginwindow"]).await, Some(0));
}

#[tokio::test]
async fn a_dropped_ui_still_tells_its_window_to_quit() {
    let mac = mac_with("welcome", true, None);
    let mut ui = ui_for(&mac, UiConfig::default());
    ui.progress(&progress(10, "progress.preflight", 0))
        .await
        .unwrap();
    let root = mac.root.clone();
    wait_until(&root, "the window to start", || {
        !fake_dialog::calls(&root).is_empty()
    })
    .await;
    let command_file = last_call_values(&mac.root, "--commandfile").remove(0);
    drop(ui);
    let text = std::fs::read_to_string(mac.root.resolve(&command_file)).unwrap();
    assert!(text.ends_with("quit:\n"), "{text}");
}

/// SPEC §6: every window, a question too, gets its own command file, created by prestage and
/// owned by root (here: by us), readable by the user and never world-writable, never the shared
/// `/var/tmp/dialog.log`, and removed once its window is gone.
#[tokio::test]
async fn every_window_gets_its_own_private_command_file_removed_when_it_is_gone() {
    use std::os::unix::fs::MetadataExt;
    let mac = mac_with("welcome", true, None);
    let me = rustix::process::geteuid().as_raw();
    fake_dialog::write_script(&mac.root, &[answer(&[("identifier", "ada@example.com")])]).unwrap();
    let mut ui = ui_for(&mac, UiConfig::default());
    ui.progress(&progress(10, "progress.installing_agent", 1))
        .await
        .unwrap();
    let root = mac.root.clone();
    wait_until(&root, "the window to start", || {
        !fake_dialog::calls(&root).is_empty()
    })
    .await;
    let progress_file = last_call_values(&mac.root, "--commandfile").remove(0);
    let meta = std::fs::symlink_metadata(mac.root.resolve(&progress_file)).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(meta.uid(), me);
    assert_eq!(meta.mode() & 0o777, 0o644);
    ui.ask_identity(&identity_prompt(false, None))
        .await
        .unwrap();
    let question_file = last_call_values(&mac.root, "--commandfile").remove(0);
    assert_ne!(question_file, progress_file);
    assert!(question_file.starts_with(&format!("{COMMAND_FILE_DIR}/{COMMAND_FILE_PREFIX}")));
    assert!(
        !mac.root.resolve(&question_file).exists(),
        "removed with its window"
    );
    // Every window was started with its own file, none with the shared default.
    for call in fake_dialog::calls(&mac.root) {
        let file = call
            .args
            .windows(2)
            .find(|w| w[0] == "--commandfile")
            .map(|w| w[1].clone());
        assert!(
            file.as_deref().is_some_and(
                |f| f.starts_with(&format!("{COMMAND_FILE_DIR}/{COMMAND_FILE_PREFIX}"))
            ),
            "{:?}",
            call.args
        );
    }
    ui.close().await.unwrap();
    assert!(!mac.root.resolve(&progress_file).exists());
    let left: Vec<_> = std::fs::read_dir(mac.root.resolve(COMMAND_FILE_DIR))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(COMMAND_FILE_PREFIX))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_no_unknown_options(&mac.root);
}

fn without_zwsp(text: &str) -> String {
    text.replace('\u{200b}', "")
}

/// SPEC §4 "UI version": an old swiftDialog is a clear, permanent, admin-facing error naming
/// the version, or is upgraded from `UI.DialogPackagePath`.
#[tokio::test]
async fn an_old_swiftdialog_is_refused_naming_its_version_or_upgraded_from_its_package() {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_prestage"));
    // What an old app does: `name=` is ignored, the answer is keyed by the label.
    let mac = mac_with("welcome", false, None);
    fake_dialog::install_fake_dialog_version(&mac.root, exe, "2.4.2").unwrap();
    fake_dialog::write_script(&mac.root, &[answer(&[("identifier", "ada@example.com")])]).unwrap();
    let out = tokio::process::Command::new(mac.root.tool(mac::DIALOG))
        .args(["--textfield", "Email,name=identifier", "--json"])
        .output()
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"Email\" : \"ada@example.com\""),
        "{out:?}"
    );

    let mut ui = ui_for(&mac, UiConfig::default());
    let err = ui
        .progress(&progress(0, "progress.preflight", 0))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, UiError::DialogTooOld { found, .. } if found == "2.4.2"),
        "{err:?}"
    );
    let text = err.to_string();
    for part in [
        "2.4.2",
        "2.5.0",
        "UI.DialogPackagePath",
        "macOS 15",
        "2.5.x",
    ] {
        assert!(text.contains(part), "{part} not in {text}");
    }
    assert_eq!(
        fake_dialog::calls(&mac.root).len(),
        1,
        "no window opened by prestage"
    );

    // With swiftDialog's signed package: installed, then used.
    let mac = mac_with(
        "welcome",
        false,
        Some("Developer ID Installer: Bart Reardon (PWA5E9TQ59)"),
    );
    fake_dialog::install_fake_dialog_version(&mac.root, exe, "2.4.2").unwrap();
    let pkg = "/Library/Application Support/prestage/dialog.pkg";
    std::fs::create_dir_all(mac.root.resolve(pkg).parent().unwrap()).unwrap();
    std::fs::write(mac.root.resolve(pkg), b"pkg").unwrap();
    let config = UiConfig {
        dialog_package_path: Some(pkg.into()),
        ..UiConfig::default()
    };
    let mut ui = ui_for(&mac, config);
    ui.progress(&progress(0, "progress.preflight", 0))
        .await
        .unwrap();
    assert_eq!(mac.host.installed.lock().unwrap().len(), 1);
    ui.close().await.unwrap();
}

/// swiftDialog ignores lines written before its window is up: the state is sent again.
#[tokio::test]
async fn the_full_state_is_sent_again_once_the_window_is_up() {
    let mac = mac_with("welcome", true, None);
    let mut ui = ui_for(&mac, UiConfig::default());
    ui.progress(&progress(10, "progress.preflight", 0))
        .await
        .unwrap();
    // Written at once, long before the window can be up.
    ui.progress(&progress(30, "progress.installing_agent", 1))
        .await
        .unwrap();
    let root = mac.root.clone();
    wait_until(&root, "the window to show the install step", || {
        fake_dialog::windows(&root).first().is_some_and(|w| {
            w.progress_text.as_deref() == Some("Installing the JumpCloud agent…")
                && w.progress == Some(30.0)
                && w.items[1] == ("Install JumpCloud".to_owned(), "wait".to_owned())
        })
    })
    .await;
    ui.close().await.unwrap();
}

/// Cmd+Q would close the progress window and its blur and show the setup account's desktop:
/// it is disabled with `--quitkey` (swiftDialog's `captureQuitKey`). Messages keep it.
#[tokio::test]
async fn cmd_q_does_not_close_the_progress_window() {
    let mac = mac_with("welcome", true, None);
    let mut ui = ui_for(&mac, UiConfig::default());
    ui.progress(&progress(10, "progress.preflight", 0))
        .await
        .unwrap();
    let root = mac.root.clone();
    wait_until(&root, "the window", || {
        !fake_dialog::windows(&root).is_empty()
    })
    .await;
    let window = fake_dialog::windows(&mac.root).remove(0);
    assert_eq!(window.quit_key, NO_QUIT_KEY);
    fake_dialog::press_keys(&mac.root, window.pid, "cmd+q").unwrap();
    // The window reads its key presses with its command file: once it shows this update, it
    // has had the Cmd+Q.
    ui.progress(&progress(60, "progress.binding", 2))
        .await
        .unwrap();
    wait_until(&root, "the update", || {
        fake_dialog::windows(&root)
            .first()
            .is_some_and(|w| w.progress == Some(60.0))
    })
    .await;
    assert_eq!(fake_dialog::windows(&mac.root)[0].pid, window.pid);
    ui.close().await.unwrap();
    // A message may be closed with Cmd+Q: it has the default quit key.
    ui.done("ada").await.unwrap();
    assert!(last_call_values(&mac.root, "--quitkey").is_empty());
}

/// Exit 15 (3.x: the window was closed) asks again; exit 30 is the admin's to fix.
#[tokio::test]
async fn a_closed_question_is_a_cancel_and_a_managed_key_a_permanent_error() {
    let mac = mac_with("welcome", true, None);
    fake_dialog::write_script(
        &mac.root,
        &[ScriptedAnswer {
            exit: 15,
            ..ScriptedAnswer::default()
        }],
    )
    .unwrap();
    let mut ui = ui_for(&mac, UiConfig::default());
    let err = ui
        .ask_identity(&identity_prompt(false, None))
        .await
        .unwrap_err();
    assert!(matches!(err, UiError::Cancelled { code: 15 }), "{err:?}");

    // A profile sets swiftDialog's AuthorisationKey (the SHA-256 of the key, here `x`).
    let prefs = mac.root.resolve(fake_dialog::MANAGED_DIALOG_PREFERENCES);
    std::fs::create_dir_all(prefs.parent().unwrap()).unwrap();
    let mut dict = plist::Dictionary::new();
    dict.insert(
        "AuthorisationKey".into(),
        "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881".into(),
    );
    plist::Value::Dictionary(dict).to_file_xml(&prefs).unwrap();
    let err = ui
        .ask_identity(&identity_prompt(false, None))
        .await
        .unwrap_err();
    assert!(
        matches!(err, UiError::DialogAuthorisation { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("AuthorisationKey") && text.contains("au.csiro.dialog"),
        "{text}"
    );
}

/// Another swiftDialog workflow's `quit:` in the shared `/var/tmp/dialog.log` does not reach
/// our question (it has its own command file).
#[tokio::test]
async fn a_foreign_quit_in_the_shared_command_file_does_not_close_our_question() {
    let mac = mac_with("welcome", true, None);
    fake_dialog::set_think_time(&mac.root, Duration::from_millis(800)).unwrap();
    fake_dialog::write_script(&mac.root, &[answer(&[("identifier", "ada@example.com")])]).unwrap();
    let shared = mac.root.resolve(fake_dialog::DEFAULT_COMMAND_FILE);
    std::fs::create_dir_all(shared.parent().unwrap()).unwrap();
    let foreign = tokio::spawn(async move {
        loop {
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&shared)
                .and_then(|mut f| std::io::Write::write_all(&mut f, b"quit:\n"));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut ui = ui_for(&mac, UiConfig::default());
    let a = ui.ask_identity(&identity_prompt(false, None)).await;
    foreign.abort();
    assert_eq!(a.unwrap().identifier, "ada@example.com");
}

/// A window outlives a killed prestage (its launcher survives the kill): the next run closes
/// it before it shows its own, and nothing is left at the end.
#[tokio::test]
async fn a_window_left_behind_by_a_killed_run_is_closed_by_the_next() {
    let mac = mac_with("welcome", true, None);
    let mut killed = ui_for(&mac, UiConfig::default());
    killed
        .progress(&progress(10, "progress.installing_agent", 1))
        .await
        .unwrap();
    let root = mac.root.clone();
    wait_until(&root, "the first window", || {
        fake_dialog::windows(&root).len() == 1
    })
    .await;
    let orphan = fake_dialog::windows(&mac.root).remove(0);
    // As after kill -9: no destructor runs, the launcher is not killed.
    std::mem::forget(killed);

    let mut next = ui_for(&mac, UiConfig::default());
    next.progress(&progress(10, "progress.installing_agent", 1))
        .await
        .unwrap();
    wait_until(&root, "exactly the new window", || {
        let w = fake_dialog::windows(&root);
        w.len() == 1 && w[0].pid != orphan.pid
    })
    .await;
    next.close().await.unwrap();
    assert!(fake_dialog::windows(&mac.root).is_empty());
    assert!(!mac.root.resolve(&orphan.command_file).exists());
    let listed = std::fs::read_to_string(mac.root.resolve(mac::DIALOG_WINDOWS_FILE)).unwrap();
    assert!(!listed.contains(COMMAND_FILE_PREFIX), "{listed}");
}

/// Admin texts that swiftDialog's parsers would cut or drop (a leading `-`, `word=`, a comma
/// before `required`, `": "` in a step title) reach the window as written.
#[tokio::test]
async fn texts_swiftdialog_would_mangle_reach_it_intact() {
    let mac = mac_with("welcome", true, None);
    let label = "- Email, required (name=work)";
    let regex_error = "Use the form name=value, secure";
    let mut strings = std::collections::BTreeMap::new();
    strings.insert("identity.label.company_email".to_owned(), label.to_owned());
    strings.insert("identity.invalid_email".to_owned(), regex_error.to_owned());
    strings.insert(
        "steps.agent".to_owned(),
        "Step 2: JumpCloud=agent, fast".to_owned(),
    );
    let config = UiConfig {
        window_title: Some("-Setup".into()),
        welcome_text: Some("- one\n- two".into()),
        strings: strings.clone(),
        ..UiConfig::default()
    };
    fake_dialog::write_script(&mac.root, &[answer(&[("identifier", "ada@example.com")])]).unwrap();
    let mut ui = prestage::ui::dialog::DialogUi::new(
        mac.root.clone(),
        config,
        prestage::ui::strings::Strings::new("en", &strings),
        mac.host.clone(),
    );
    let a = ui
        .ask_identity(&identity_prompt(false, None))
        .await
        .unwrap();
    assert_eq!(a.identifier, "ada@example.com");
    let arg = last_call_values(&mac.root, "--textfield").remove(0);
    let tf = fake_dialog::parse_textfield(&arg, true);
    assert_eq!(without_zwsp(&tf.label), label);
    assert_eq!(tf.key(), "identifier");
    assert!(tf.required && !tf.secure);
    assert_eq!(without_zwsp(tf.regexerror.as_deref().unwrap()), regex_error);

    ui.progress(&progress(30, "progress.installing_agent", 1))
        .await
        .unwrap();
    let root = mac.root.clone();
    wait_until(&root, "the step to be marked", || {
        fake_dialog::windows(&root).first().is_some_and(|w| {
            w.items
                .get(1)
                .is_some_and(|(t, s)| without_zwsp(t).starts_with("Step 2:") && s == "wait")
        })
    })
    .await;
    let w = fake_dialog::windows(&mac.root).remove(0);
    assert_eq!(without_zwsp(&w.title), "-Setup");
    assert!(w.message.ends_with("- one\n- two"), "{:?}", w.message);
    ui.close().await.unwrap();
    assert_no_unknown_options(&mac.root);
}

/// The launcher's exit 1 cases (`dialogcli.swift`): no GUI user, a command file that is a link
/// to a folder, a command file the user cannot read.
#[tokio::test]
async fn the_fake_launcher_refuses_what_the_real_one_refuses() {
    let mac = mac_with("welcome", true, None);
    let dialog = mac.root.tool(mac::DIALOG);
    let run = |args: Vec<String>| {
        let dialog = dialog.clone();
        async move {
            tokio::process::Command::new(dialog)
                .args(args)
                .output()
                .await
                .unwrap()
        }
    };
    let tmp = mac.root.resolve("/var/tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    std::os::unix::fs::symlink(&tmp, tmp.join("link.log")).unwrap();
    let out = run(vec!["--commandfile".into(), "/var/tmp/link.log".into()]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"));
    std::fs::write(tmp.join("private.log"), b"").unwrap();
    std::fs::set_permissions(
        tmp.join("private.log"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = run(vec!["--commandfile".into(), "/var/tmp/private.log".into()]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not readable by user welcome"));
    // Without --commandfile, the shared default is used (and made).
    let out = run(vec!["--title".into(), "t".into()]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(mac.root.resolve(fake_dialog::DEFAULT_COMMAND_FILE).exists());
    World::update(&mac.root, |w| w.console_user = "root".into()).unwrap();
    let out = run(vec!["--title".into(), "t".into()]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("GUI user"));
    // The app quits (40) when its launcher dies.
    World::update(&mac.root, |w| w.console_user = "welcome".into()).unwrap();
    let mut child = tokio::process::Command::new(mac.root.tool(mac::DIALOG))
        .args(["--title", "t", "--button1disabled"])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let root = mac.root.clone();
    wait_until(&root, "the window", || {
        !fake_dialog::windows(&root).is_empty()
    })
    .await;
    child.kill().await.unwrap();
    wait_until(&root, "the window to go with its launcher", || {
        fake_dialog::windows(&root).is_empty()
    })
    .await;
}
