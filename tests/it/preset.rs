//! Integration tests: `Identity.Preset` and enrollments without a setup account (issue 12).
//! End to end: `prestage run` on a simulated Mac, the fake swiftDialog recording every window,
//! the simulated tenant and agent. Also `config check`'s explanation of the mode.

use std::path::{Path, PathBuf};

use prestage::demo::{EmployeeKind, Scenario, ScenarioOptions, EMPLOYEE_ACCOUNT, SETUP_ACCOUNT};
use prestage::engine::state::{JournalEntry, Step};
use prestage::host::fake::world;
use prestage::paths::mac;
use prestage::sim::SimUser;
use prestage::ui::fake_dialog;
use prestage::ui::scripted::{Script, ScriptedIdentity, ScriptedPassword};
use secrecy::ExposeSecret as _;

use super::engine::{
    base_config, journal, options, run_killed_at_begin_and_done, run_once, scenario, state,
    successful_binds, system_id, world, RunResult,
};
use super::util::{assert_success, diagnose};

/// The Identity section of an SSO configuration: `Preset` as the MDM substituted it (or not).
fn preset_config(preset: &str, secret: &str) -> plist::Dictionary {
    base_config(&[("Secret", secret.into()), ("Preset", preset.into())], &[])
}

/// A scenario without a setup account: `ada.lovelace`, the employee's own account created by
/// Setup Assistant, is at the console from the start.
async fn own_account(kind: EmployeeKind, preset: &str) -> Scenario {
    scenario(ScenarioOptions {
        base_config: Some(preset_config(preset, "None")),
        own_account: true,
        ..options(kind)
    })
    .await
}

/// Answers for every question, enough for `times` runs (only the password is expected).
fn answers(s: &Scenario, times: usize) -> Script {
    Script {
        identities: std::iter::repeat_n(
            ScriptedIdentity {
                identifier: s.employee.identifier.clone(),
                secret: s.employee.secret.clone(),
            },
            times,
        )
        .collect(),
        passwords: std::iter::repeat_n(
            ScriptedPassword {
                password: s.employee.password.clone(),
                confirmation: None,
            },
            times,
        )
        .collect(),
    }
}

/// The windows that had a text field, by the field names they asked for.
fn text_field_windows(s: &Scenario) -> Vec<Vec<String>> {
    fake_dialog::calls(&s.root)
        .iter()
        .filter(|c| c.args.iter().any(|a| a == "--textfield"))
        .map(|c| {
            c.args
                .iter()
                .filter_map(|a| {
                    a.split(',')
                        .find_map(|part| part.strip_prefix("name="))
                        .map(str::to_owned)
                })
                .collect()
        })
        .collect()
}

/// Whether any window showed `text` (in any argument, e.g. its `--message`).
fn shown(s: &Scenario, text: &str) -> bool {
    fake_dialog::calls(&s.root)
        .iter()
        .any(|c| c.args.iter().any(|a| a.contains(text)))
}

/// The part of the own-account Done message that no other window has (strings.rs, en).
const OWN_ACCOUNT_DONE: &str = "use your company (JumpCloud) password to log in";
/// The setup-account Done message (strings.rs, en).
const LOG_OUT_DONE: &str = "This Mac will now log out";

/// A finished enrollment without a setup account: bound once, the employee's own account taken
/// over, nothing logged out, hidden or deleted, the daemon gone.
fn assert_enrolled_in_own_account(s: &Scenario) {
    let st = state(s).expect("state");
    assert_eq!(st.step, Step::Done, "{}", diagnose(s));
    let sys = system_id(s);
    let binds = s.tenant.bindings(&sys);
    assert_eq!(binds.len(), 1, "one bind: {binds:?}");
    assert_eq!(binds[0].0, s.user_id);
    assert_eq!(successful_binds(s), 1, "bound once");
    // The agent took over the account Setup Assistant created (it existed before the bind).
    let w = world(s);
    let account = w
        .users
        .get(EMPLOYEE_ACCOUNT)
        .expect("the employee's account");
    assert!(account.managed_by_jumpcloud, "taken over: {w:#?}");
    assert!(!account.hidden, "not hidden");
    assert!(s.agent.taken_over().contains(&EMPLOYEE_ACCOUNT.to_owned()));
    assert_eq!(w.users.len(), 1, "no other account appeared: {w:#?}");
    assert!(w.deleted_users.is_empty(), "nothing deleted: {w:#?}");
    assert_eq!(w.console_user, EMPLOYEE_ACCOUNT, "still logged in");
    let calls = world::calls(&s.root).expect("calls");
    for c in &calls {
        let line = format!("{} {}", c.tool, c.args.join(" "));
        assert!(
            !(c.tool == mac::LAUNCHCTL
                && c.args
                    .iter()
                    .any(|a| a.starts_with("user/") || a.starts_with("gui/"))),
            "a logout: {line}"
        );
        assert!(
            !(c.tool == mac::DSCL || c.args.iter().any(|a| a == "-deleteUser")),
            "a hide or a deletion: {line}"
        );
    }
    // The groups still moved; the daemon removed itself, last.
    assert!(!s.tenant.group_members(&s.group_id).contains(&sys));
    assert!(s.tenant.group_members(&s.post_group_id).contains(&sys));
    assert!(!s.root.resolve(mac::LAUNCH_DAEMON).exists());
    let last = calls.last().expect("tool calls");
    assert_eq!(last.tool, mac::LAUNCHCTL);
    assert_eq!(last.args, vec!["bootout", "system/io.prestage.enroll"]);
    // The Done window says what changed, not "log in as".
    assert!(shown(s, OWN_ACCOUNT_DONE), "own-account Done window");
    assert!(!shown(s, LOG_OUT_DONE), "no log-out Done window");
    // The journal says why handover, wait_login and remove_setup did nothing. The journal is
    // the diary written right after the state (`Engine::record`: state, then journal): a kill
    // between the two keeps the fact and loses its line, so a step a kill cut short (its
    // "restart" entry) may lack it.
    let j = journal(s);
    for (step, words) in [
        (Step::Handover, "nothing to hand over"),
        (Step::WaitLogin, "nothing to wait for"),
        (Step::RemoveSetup, "nothing to delete"),
    ] {
        let cut = j
            .iter()
            .any(|e: &JournalEntry| e.step == step && e.event == "restart");
        assert!(
            cut || j
                .iter()
                .any(|e: &JournalEntry| e.step == step && e.detail.contains(words)),
            "{step}: {words}\n{}",
            diagnose(s)
        );
    }
    assert!(
        s.tenant.contract_violations().is_empty(),
        "{:?}",
        s.tenant.contract_violations()
    );
}

fn assert_no_secret(s: &Scenario, outputs: &[&RunResult]) {
    let api_key = s.tenant.api_key().expose_secret().to_owned();
    super::engine::assert_no_secret(s, outputs, &[&api_key, &s.employee.password]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_user_with_a_preset_enrolls_without_a_single_question() {
    // Jamf Pro substituted $EMAIL; the case differs from the directory's, as people type it.
    let s = own_account(EmployeeKind::Active, "Ada.Lovelace@Example.COM").await;
    s.write_dialog_script(&answers(&s, 1)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_enrolled_in_own_account(&s);
    assert!(
        text_field_windows(&s).is_empty(),
        "no window with a text field: {:?}",
        text_field_windows(&s)
    );
    let user = s.tenant.user(&s.user_id).unwrap();
    assert_eq!(user.password_sets, 0, "an active user keeps their password");
    // One search, with the preset.
    let searches = s
        .tenant
        .requests()
        .iter()
        .filter(|r| r.path == "/api/search/systemusers")
        .count();
    assert_eq!(searches, 1);
    assert_no_secret(&s, &[&out]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_user_with_a_preset_sees_only_the_password_window() {
    let s = own_account(EmployeeKind::Pending, "ada.lovelace@example.com").await;
    s.write_dialog_script(&answers(&s, 1)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_enrolled_in_own_account(&s);
    let windows = text_field_windows(&s);
    assert!(!windows.is_empty(), "the password window");
    for fields in &windows {
        assert!(
            fields
                .iter()
                .all(|f| f == "password" || f == "confirmation"),
            "only the password window: {windows:?}"
        );
    }
    let user = s.tenant.user(&s.user_id).unwrap();
    assert_eq!(user.password_sets, 1);
    assert!(user.activated);
    assert_no_secret(&s, &[&out]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_user_with_a_preset_is_activated() {
    let s = own_account(EmployeeKind::Staged, "ada.lovelace@example.com").await;
    s.write_dialog_script(&answers(&s, 1)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_enrolled_in_own_account(&s);
    let user = s.tenant.user(&s.user_id).unwrap();
    assert_eq!(user.state, prestage::jumpcloud::UserState::Activated);
    assert_eq!(
        user.password_sets, 1,
        "a staged user has no password yet: they chose one"
    );
}

/// A preset that does not identify one user: a permanent error naming the reason in the log,
/// a reference code, no question and nothing bound.
async fn assert_refused(s: &Scenario, reason: &str) {
    s.write_dialog_script(&answers(s, 3)).unwrap();
    let out = run_once(s).await;
    assert_eq!(out.code, Some(1), "{out:#?}\n{}", diagnose(s));
    let st = state(s).expect("state");
    assert_eq!(st.step, Step::Identify);
    let err = st.last_error.expect("a recorded error");
    assert!(err.message.contains("Identity.Preset"), "{err:?}");
    assert!(err.message.contains(reason), "{err:?}");
    let log = std::fs::read_to_string(s.root.resolve(mac::LOG_FILE)).unwrap();
    assert!(log.contains(reason), "the log says which: {log}");
    let reference = err
        .reference
        .expect("a permanent error has a reference code");
    assert!(err.permanent);
    assert!(log.contains(&reference), "reference in the log");
    assert!(text_field_windows(s).is_empty(), "never a question");
    // The error window outlives prestage, so it may still be starting.
    for _ in 0..200 {
        if shown(s, &reference) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(shown(s, &reference), "the employee sees the reference code");
    assert_eq!(successful_binds(s), 0, "nothing bound");
    assert!(s.tenant.bindings(&system_id(s)).is_empty());
    // Permanent: searched once, not retried.
    let searches = s
        .tenant
        .requests()
        .iter()
        .filter(|r| r.path == "/api/search/systemusers")
        .count();
    assert_eq!(searches, 1, "searched once, not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preset_that_matches_nobody_is_a_permanent_admin_facing_error() {
    let s = own_account(EmployeeKind::Active, "charles.babbage@example.com").await;
    assert_refused(&s, "no user matches the identifier").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preset_that_matches_two_users_is_refused_too() {
    let s = own_account(EmployeeKind::Active, "ada.lovelace@example.com").await;
    // Another user whose email differs only in case: the case-insensitive search finds both.
    s.tenant
        .add_user(SimUser::active("ada.l", "ADA.LOVELACE@example.com").lastname("Lovelace"));
    assert_refused(&s, "several users match the identifier").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsubstituted_email_variable_is_treated_as_absent() {
    // Jamf Pro leaves `$EMAIL` as it is when no user is assigned to the device: the employee is
    // asked, with the secret, and the setup account is handed over and deleted as usual.
    let s = scenario(ScenarioOptions {
        base_config: Some(preset_config("$EMAIL", "EmployeeID")),
        ..options(EmployeeKind::Active)
    })
    .await;
    s.write_dialog_script(&answers(&s, 1)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    super::engine::assert_enrolled(&s);
    let windows = text_field_windows(&s);
    assert_eq!(windows.len(), 1, "{windows:?}");
    assert!(windows[0].contains(&"identifier".to_owned()), "{windows:?}");
    assert!(shown(&s, LOG_OUT_DONE));
    let log = std::fs::read_to_string(s.root.resolve(mac::LOG_FILE)).unwrap();
    assert!(
        log.contains("Identity.Preset") && log.contains("did not substitute"),
        "the log says why the employee was asked: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preset_with_a_setup_account_hands_over_and_deletes_it() {
    let s = scenario(ScenarioOptions {
        base_config: Some(preset_config("ada.lovelace@example.com", "None")),
        ..options(EmployeeKind::Active)
    })
    .await;
    s.write_dialog_script(&answers(&s, 1)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    super::engine::assert_enrolled(&s);
    assert!(text_field_windows(&s).is_empty());
    assert!(world(&s).deleted_users.contains(&SETUP_ACCOUNT.to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_at_every_step_boundary_of_the_preset_mode_then_finish_exactly_once() {
    let mut total = 0;
    for step in Step::ALL.iter().copied().filter(|s| *s != Step::Done) {
        let s = own_account(EmployeeKind::Pending, "ada.lovelace@example.com").await;
        s.write_dialog_script(&answers(&s, 10)).unwrap();
        let (kills, outputs) = run_killed_at_begin_and_done(&s, step).await;
        assert!(kills >= 1, "step {step}: killed {kills} times");
        assert_enrolled_in_own_account(&s);
        let user = s.tenant.user(&s.user_id).unwrap();
        assert_eq!(
            user.password_sets, 1,
            "step {step}: the password was set once"
        );
        assert!(text_field_windows(&s)
            .iter()
            .all(|f| f.iter().all(|n| n == "password" || n == "confirmation")));
        let refs: Vec<&RunResult> = outputs.iter().collect();
        assert_no_secret(&s, &refs);
        total += kills;
    }
    eprintln!("kill -9 at step boundaries (preset, own account): {total}");
    assert!(total >= 28, "{total} kills at step boundaries");
}

// ---------------------------------------------------------------------------------------------
// config check

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn check(file: &Path) -> (i32, String) {
    let mut out = Vec::new();
    let options = prestage::config::LoadOptions {
        expected_owner: rustix::process::getuid().as_raw(),
    };
    let code = prestage::config::check_command_with(file, false, &|_| true, options, &mut out);
    (code, String::from_utf8(out).unwrap())
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
<key>ConnectKey</key><string>0123456789abcdef0123456789abcdef01234567</string>
<key>APIKeyKeychainService</key><string>io.prestage.apikey</string>
{body}
</dict></plist>"#
        ),
    )
    .unwrap();
    p
}

#[test]
fn config_check_explains_each_mode() {
    let dir = tempfile::tempdir().unwrap();
    let sso = write(
        dir.path(),
        "sso.plist",
        "<key>Identity</key><dict><key>Preset</key><string>$EMAIL</string></dict>",
    );
    let (code, out) = check(&sso);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("note: mode: SSO during Setup Assistant without a setup account"),
        "{out}"
    );
    assert!(
        out.contains("nothing is logged out, hidden or deleted"),
        "{out}"
    );
    // The placeholder is what a profile should hold: a note, not a warning.
    assert!(
        out.contains("note:") && out.contains("\"$EMAIL\", a payload variable"),
        "{out}"
    );
    assert!(!out.contains("warning"), "{out}");

    let with_setup = write(
        dir.path(),
        "with-setup.plist",
        "<key>EnrollmentUser</key><string>welcome</string>
         <key>Identity</key><dict><key>Preset</key><string>$EMAIL</string></dict>",
    );
    let (code, out) = check(&with_setup);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("mode: SSO during Setup Assistant with the setup account welcome")
            && out.contains("and deleted"),
        "{out}"
    );

    let questions = write(
        dir.path(),
        "questions.plist",
        "<key>EnrollmentUser</key><string>welcome</string>",
    );
    let (code, out) = check(&questions);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("note: mode: questions"), "{out}");
}

#[test]
fn config_check_rejects_the_contradictions_of_the_mode() {
    let dir = tempfile::tempdir().unwrap();
    // Deleting a setup account that is not named: an error, with a fix for this mode.
    let delete = write(
        dir.path(),
        "delete.plist",
        "<key>DeleteEnrollmentUsers</key><true/>
         <key>Identity</key><dict><key>Preset</key><string>$EMAIL</string></dict>",
    );
    let (code, out) = check(&delete);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("EnrollmentUser: is required while DeleteEnrollmentUsers is true")
            && out.contains("with Identity.Preset and no setup account there is nothing to delete"),
        "{out}"
    );
    // Without a preset, no EnrollmentUser and the default DeleteEnrollmentUsers stays an error.
    let bare = write(dir.path(), "bare.plist", "");
    let (code, out) = check(&bare);
    assert_eq!(code, 1, "{out}");
    // A secret is not asked of an employee the MDM authenticated: a warning.
    let secret = write(
        dir.path(),
        "secret.plist",
        "<key>Identity</key><dict><key>Preset</key><string>$EMAIL</string>
         <key>Secret</key><string>EmployeeID</string></dict>",
    );
    let (code, out) = check(&secret);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning:")
            && out.contains("Identity.Secret: is set while Identity.Preset is"),
        "{out}"
    );
    // An empty preset is an error like any empty string.
    let empty = write(
        dir.path(),
        "empty.plist",
        "<key>Identity</key><dict><key>Preset</key><string> </string></dict>",
    );
    let (code, out) = check(&empty);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Identity.Preset: is empty"), "{out}");
}

#[test]
fn the_sso_example_passes_check_and_shows_the_jamf_pro_form() {
    let path = repo().join("examples/sso.plist");
    let (code, out) = check(&path);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("warning"), "{out}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("<string>$EMAIL</string>"), "{text}");
    // The SSO example profile: its settings, as macOS writes them to managed preferences,
    // pass check in the same mode.
    let profile = plist::Value::from_file(
        repo().join("packaging/profile/io.prestage.enroll.sso.mobileconfig"),
    )
    .unwrap();
    let settings = profile.as_dictionary().unwrap()["PayloadContent"]
        .as_array()
        .unwrap()[0]
        .as_dictionary()
        .unwrap()["PayloadContent"]
        .as_dictionary()
        .unwrap()["io.prestage.enroll"]
        .as_dictionary()
        .unwrap()["Forced"]
        .as_array()
        .unwrap()[0]
        .as_dictionary()
        .unwrap()["mcx_preference_settings"]
        .clone();
    let dir = tempfile::tempdir().unwrap();
    let extracted = dir.path().join("io.prestage.enroll.plist");
    settings.to_file_xml(&extracted).unwrap();
    let (code, out) = check(&extracted);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("warning"), "{out}");
    assert!(
        out.contains("mode: SSO during Setup Assistant without a setup account"),
        "{out}"
    );
    let identity = settings.as_dictionary().unwrap()["Identity"]
        .as_dictionary()
        .unwrap();
    assert_eq!(identity["Preset"].as_string(), Some("$EMAIL"));
}

#[test]
fn the_schema_describes_identity_preset() {
    let schema = prestage::config::schema::json_schema();
    let preset = &schema["properties"]["Identity"]["properties"]["Preset"];
    assert_eq!(preset["type"], "string");
    assert!(preset["description"].as_str().unwrap().contains("$EMAIL"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_account_with_another_name_is_handed_over_but_never_deleted() {
    // The MDM prefilled a name that is not the employee's JumpCloud username: the agent
    // creates `ada.lovelace`, and the account at the console (`welcome` here) is logged out
    // and hidden like a setup account, but not deleted (there is no EnrollmentUser).
    let s = scenario(ScenarioOptions {
        base_config: Some(preset_config("ada.lovelace@example.com", "None")),
        ..options(EmployeeKind::Active)
    })
    .await;
    let mut config = s.config.clone();
    config.remove("EnrollmentUser");
    plist::Value::Dictionary(config)
        .to_file_xml(s.root.resolve(mac::LOCAL_CONFIG))
        .unwrap();
    s.write_dialog_script(&answers(&s, 1)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    let w = world(&s);
    assert!(w.users.contains_key(EMPLOYEE_ACCOUNT), "{w:#?}");
    let welcome = w.users.get(SETUP_ACCOUNT).expect("kept");
    assert!(welcome.hidden, "handed over: {w:#?}");
    assert!(w.deleted_users.is_empty(), "never deleted: {w:#?}");
    assert_eq!(w.console_user, EMPLOYEE_ACCOUNT);
    assert!(text_field_windows(&s).is_empty());
    let log = std::fs::read_to_string(s.root.resolve(mac::LOG_FILE)).unwrap();
    assert!(
        log.contains("is not the employee's JumpCloud account name"),
        "the log warns: {log}"
    );
}

#[test]
fn without_a_setup_account_nothing_is_deleted_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let load = |file: PathBuf| {
        prestage::config::load_with(
            &prestage::config::Sources::single(file),
            prestage::config::Mode::Run,
            &|_| true,
            prestage::config::LoadOptions {
                expected_owner: rustix::process::getuid().as_raw(),
            },
        )
    };
    let sso = write(
        dir.path(),
        "sso.plist",
        "<key>Identity</key><dict><key>Preset</key><string>Ada@Example.com </string></dict>",
    );
    let loaded = load(sso).expect("valid");
    let c = &loaded.config;
    assert!(!c.delete_enrollment_users);
    assert_eq!(c.enrollment_user, None);
    assert_eq!(c.identity.preset.as_deref(), Some("Ada@Example.com"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    // Unsubstituted: no preset, and `run` warns.
    let raw = write(
        dir.path(),
        "raw.plist",
        "<key>Identity</key><dict><key>Preset</key><string>$EMAIL</string></dict>",
    );
    let loaded = load(raw).expect("valid");
    assert_eq!(loaded.config.identity.preset, None);
    assert_eq!(loaded.config.identity.preset_raw.as_deref(), Some("$EMAIL"));
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.key == "Identity.Preset" && w.message.contains("did not substitute")),
        "{:?}",
        loaded.warnings
    );
    // Substituted with nothing (Jamf Pro without a value for the variable): in `run` no preset
    // and a warning, never a configuration error that would stop the enrollment.
    let empty = write(
        dir.path(),
        "empty.plist",
        "<key>Identity</key><dict><key>Preset</key><string></string></dict>",
    );
    let loaded = load(empty).expect("an empty preset does not stop the enrollment");
    assert_eq!(loaded.config.identity.preset, None);
    assert!(!loaded.config.delete_enrollment_users);
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.key == "Identity.Preset" && w.message.contains("is empty")),
        "{:?}",
        loaded.warnings
    );
}
