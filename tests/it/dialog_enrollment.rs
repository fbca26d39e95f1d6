//! Integration tests: whole enrollments (`prestage run` as its own process) against the fake
//! swiftDialog as it really behaves (issue 16): an old swiftDialog, another tool's `quit:` in
//! the shared command file, a long agent install, a killed run's window, a managed
//! authorisation key.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use prestage::demo::{EmployeeKind, Scenario, ScenarioOptions};
use prestage::engine::state::{JournalEntry, Loaded, State, Step, Store};
use prestage::host::fake::world::{FakePackage, World, DIALOG_PACKAGE_ID};
use prestage::paths::mac;
use prestage::sim::{AgentBehaviour, SimOptions};
use prestage::ui::dialog::{COMMAND_FILE_DIR, COMMAND_FILE_PREFIX};
use prestage::ui::fake_dialog;
use prestage::ui::scripted::{Script, ScriptedIdentity, ScriptedPassword};
use tokio::process::{Child, Command};

const EXE: &str = env!("CARGO_BIN_EXE_prestage");
/// No single run should take longer (real hangs only).
const RUN_LIMIT: Duration = Duration::from_secs(90);

async fn scenario() -> Scenario {
    let opts = ScenarioOptions {
        kind: EmployeeKind::Pending,
        sim: SimOptions {
            password_policy: prestage::demo::demo_policy(),
            agent: AgentBehaviour {
                register_delay: Duration::from_millis(50),
                takeover_delay: Duration::from_millis(100),
                poll_interval: Duration::from_millis(50),
                ..AgentBehaviour::default()
            },
            ..SimOptions::default()
        },
        setup_assistant_ms: 0,
        employee_login_delay_ms: Some(0),
        ..ScenarioOptions::default()
    };
    let s = Scenario::new(opts, Path::new(EXE)).await.expect("scenario");
    // Answers for any number of restarts.
    let script = Script {
        identities: std::iter::repeat_n(
            ScriptedIdentity {
                identifier: s.employee.identifier.clone(),
                secret: s.employee.secret.clone(),
            },
            5,
        )
        .collect(),
        passwords: std::iter::repeat_n(
            ScriptedPassword {
                password: s.employee.password.clone(),
                confirmation: None,
            },
            5,
        )
        .collect(),
    };
    s.write_dialog_script(&script).unwrap();
    s
}

fn spawn(s: &Scenario) -> Child {
    Command::new(EXE)
        .args(["run", "--root"])
        .arg(s.root_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn prestage run")
}

/// Exit code, stdout and stderr of a run (bounded: a hang fails the test).
async fn finish(child: Child) -> (Option<i32>, String) {
    let out = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .expect("prestage run hung")
        .expect("wait for prestage run");
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn state(s: &Scenario) -> State {
    match Store::new(&s.root).load() {
        Ok(Loaded::Resumed(state)) => *state,
        other => panic!("no state: {other:?}"),
    }
}

fn journal(s: &Scenario) -> Vec<JournalEntry> {
    Store::new(&s.root).read_journal().unwrap_or_default()
}

fn log(s: &Scenario) -> String {
    std::fs::read_to_string(s.root.resolve(mac::LOG_FILE)).unwrap_or_default()
}

fn in_journal(s: &Scenario, detail: &str) -> bool {
    journal(s)
        .iter()
        .any(|e| e.event == "effect" && e.detail == detail)
}

/// Waits (bounded) until `cond` holds.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + RUN_LIMIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn identity_questions(s: &Scenario) -> usize {
    fake_dialog::calls(&s.root)
        .iter()
        .filter(|c| c.args.iter().any(|a| a.contains("name=identifier")))
        .count()
}

/// prestage's command files left in `/var/tmp`.
fn command_files_left(s: &Scenario) -> Vec<String> {
    std::fs::read_dir(s.root.resolve(COMMAND_FILE_DIR))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(COMMAND_FILE_PREFIX))
                .collect()
        })
        .unwrap_or_default()
}

fn set_install_delay(s: &Scenario, ms: u64) {
    World::update(&s.root, |w| w.edit_behaviour(|b| b.install_delay_ms = ms)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_swiftdialog_is_a_permanent_error_naming_its_version() {
    let s = scenario().await;
    fake_dialog::install_fake_dialog_version(&s.root, Path::new(EXE), "2.4.2").unwrap();
    let (code, out) = finish(spawn(&s)).await;
    assert_eq!(code, Some(1), "{out}");
    let err = state(&s).last_error.expect("an error");
    assert!(err.permanent, "{err:?}");
    assert!(
        err.message.contains("swiftDialog 2.4.2") && err.message.contains("UI.DialogPackagePath"),
        "{}",
        err.message
    );
    assert!(log(&s).contains("2.4.2"));
    assert_eq!(identity_questions(&s), 0, "nobody was asked anything");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_swiftdialog_is_upgraded_from_dialog_package_path() {
    let mut s = scenario().await;
    fake_dialog::install_fake_dialog_version(&s.root, Path::new(EXE), "2.4.2").unwrap();
    let pkg = "/Library/Application Support/prestage/swiftDialog.pkg";
    FakePackage {
        identifier: DIALOG_PACKAGE_ID.into(),
        version: "2.5.6".into(),
        signer: Some("Developer ID Installer: Bart Reardon (PWA5E9TQ59)".into()),
    }
    .write(&s.root.resolve(pkg))
    .unwrap();
    let mut ui = s.config["UI"].as_dictionary().cloned().unwrap_or_default();
    ui.insert("DialogPackagePath".into(), pkg.into());
    s.config.insert("UI".into(), ui.into());
    prestage::demo::write_plist(&s.root.resolve(mac::LOCAL_CONFIG), &s.config).unwrap();
    let (code, out) = finish(spawn(&s)).await;
    assert_eq!(code, Some(0), "{out}\n{}", log(&s));
    assert_eq!(state(&s).step, Step::Done);
    let installed = prestage::ui::dialog::installed(&s.root, Path::new(mac::DIALOG));
    assert_eq!(
        installed,
        prestage::ui::dialog::Installed::Version("2.5.6".into())
    );
    assert!(World::load(&s.root)
        .unwrap()
        .installed_packages
        .contains(&DIALOG_PACKAGE_ID.to_owned()));
    assert_eq!(identity_questions(&s), 1);
}

/// Another swiftDialog workflow on the Mac keeps writing `quit:` to the shared default command
/// file: our windows do not read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_tool_quitting_the_shared_command_file_does_not_disturb_an_enrollment() {
    let s = scenario().await;
    // The employee takes a moment over each question, so the foreign quit: lands while it is up.
    fake_dialog::set_think_time(&s.root, Duration::from_millis(600)).unwrap();
    let shared = s.root.resolve(fake_dialog::DEFAULT_COMMAND_FILE);
    std::fs::create_dir_all(shared.parent().unwrap()).unwrap();
    let foreign = tokio::spawn(async move {
        loop {
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&shared)
                .and_then(|mut f| std::io::Write::write_all(&mut f, b"quit:\n"));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let (code, out) = finish(spawn(&s)).await;
    foreign.abort();
    assert_eq!(code, Some(0), "{out}\n{}", log(&s));
    assert_eq!(state(&s).step, Step::Done);
    assert_eq!(identity_questions(&s), 1, "asked once, answered once");
    for call in fake_dialog::calls(&s.root) {
        let file = call
            .args
            .windows(2)
            .find(|w| w[0] == "--commandfile")
            .map(|w| w[1].clone())
            .unwrap_or_default();
        assert!(
            file.starts_with(&format!("{COMMAND_FILE_DIR}/{COMMAND_FILE_PREFIX}")),
            "{:?}",
            call.args
        );
        assert!(call.unknown.is_empty(), "{:?}", call.unknown);
    }
}

/// The window is up long before the agent's 10 s install ends, and it must say what is
/// happening, although the update was written before the window could read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_agent_install_shows_the_install_step_on_screen_while_it_runs() {
    let s = scenario().await;
    set_install_delay(&s, 10_000);
    let child = spawn(&s);
    wait_until("the install to start", || {
        in_journal(&s, "installing the agent package")
    })
    .await;
    let mut shown = false;
    while !in_journal(&s, "agent package installed") {
        shown = fake_dialog::windows(&s.root).iter().any(|w| {
            w.kind == "progress"
                && w.progress_text.as_deref() == Some("Installing the JumpCloud agent…")
                && w.items.get(1).is_some_and(|(_, status)| status == "wait")
        });
        if shown {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        shown,
        "the install step was never on screen during the install: {:?}",
        fake_dialog::windows(&s.root)
    );
    let (code, out) = finish(child).await;
    assert_eq!(code, Some(0), "{out}");
}

/// `kill -9` of prestage leaves its window up (the window watches its launcher, which
/// survives the kill): the next run closes it before showing its own, and at the end no
/// window and no command file is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_leaves_exactly_one_window_once_the_next_is_up_and_none_at_the_end() {
    let s = scenario().await;
    set_install_delay(&s, 3_000);
    let mut child = spawn(&s);
    wait_until("the install to start", || {
        in_journal(&s, "installing the agent package")
    })
    .await;
    wait_until("the progress window", || {
        fake_dialog::windows(&s.root)
            .iter()
            .any(|w| w.kind == "progress")
    })
    .await;
    child.kill().await.unwrap();
    let _ = child.wait().await;
    let orphans = fake_dialog::windows(&s.root);
    assert_eq!(
        orphans.len(),
        1,
        "the window outlives the kill: {orphans:?}"
    );
    let orphan = orphans[0].pid;

    let child = spawn(&s);
    wait_until("the next run's window", || {
        fake_dialog::windows(&s.root)
            .iter()
            .any(|w| w.pid != orphan)
    })
    .await;
    wait_until("the killed run's window to go", || {
        let windows = fake_dialog::windows(&s.root);
        windows.iter().all(|w| w.pid != orphan)
    })
    .await;
    let windows = fake_dialog::windows(&s.root);
    assert!(windows.len() <= 1, "{windows:?}");
    let (code, out) = finish(child).await;
    assert_eq!(code, Some(0), "{out}\n{}", log(&s));
    assert_eq!(state(&s).step, Step::Done);
    assert!(
        fake_dialog::windows(&s.root).is_empty(),
        "{:?}",
        fake_dialog::windows(&s.root)
    );
    assert!(
        command_files_left(&s).is_empty(),
        "{:?}",
        command_files_left(&s)
    );
    assert!(log(&s).contains("a previous run left behind"));
}

/// A profile that sets swiftDialog's `AuthorisationKey` makes every window exit 30: the
/// enrollment stops for the admin, naming the preference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_swiftdialog_authorisation_key_is_a_permanent_error_for_the_admin() {
    let s = scenario().await;
    let prefs = s.root.resolve(fake_dialog::MANAGED_DIALOG_PREFERENCES);
    std::fs::create_dir_all(prefs.parent().unwrap()).unwrap();
    let mut dict = plist::Dictionary::new();
    // The SHA-256 of the key `x`.
    dict.insert(
        "AuthorisationKey".into(),
        "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881".into(),
    );
    plist::Value::Dictionary(dict).to_file_xml(&prefs).unwrap();
    let (code, out) = finish(spawn(&s)).await;
    assert_eq!(code, Some(1), "{out}");
    // Found by the first window that exits 30: the progress window (seen at the next update)
    // or the first question, which is never answered.
    let st = state(&s);
    assert!(st.step <= Step::Identify, "{:?}", st.step);
    assert!(st.identity.user.is_none(), "nobody identified");
    let err = st.last_error.expect("an error");
    assert!(err.permanent, "{err:?}");
    assert!(
        err.message.contains("AuthorisationKey") && err.message.contains("au.csiro.dialog"),
        "{}",
        err.message
    );
    let w = World::load(&s.root).unwrap();
    assert!(w.users.contains_key("welcome"), "no account touched");
    assert!(
        identity_questions(&s) <= 1,
        "at most one question, which exited 30 unanswered"
    );
    assert!(
        fake_dialog::windows(&s.root).is_empty(),
        "{:?}",
        fake_dialog::windows(&s.root)
    );
}
