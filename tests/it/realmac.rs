//! Integration tests: the whole enrollment (the real `prestage run` process) on fake Macs that
//! behave like real ones where the first fakes did not (issue "Real Macs, real JumpCloud
//! agent"): the agent's service-account credentials file, a Mac without the agent's PPPC
//! profile, an agent that logs only `Processing user updates`, logouts that do not log out,
//! slow, lagging and half-failing deletions, and FileVault.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use prestage::demo::EmployeeKind;
use prestage::engine::state::Step;
use prestage::host::fake::world::{self, Behaviour, CredsSeen, World};
use prestage::paths::mac;
use prestage::sim::{AgentBehaviour, AgentMode};
use prestage::ui::fake_dialog;

use super::engine::{
    assert_enrolled, assert_no_secret, base_config, clean_script, finish, instant_agent, options,
    run_once, run_with_kills, scenario, sim_options, spawn, state, world, EXE, FAKES,
};
use super::util::{assert_exit, assert_success, wait_for_state};

fn sha256_hex(data: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    d.as_ref().iter().fold(String::new(), |mut out, b| {
        use std::fmt::Write;
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn behave(s: &prestage::demo::Scenario, f: impl FnOnce(&mut Behaviour)) {
    World::update(&s.root, |w| w.edit_behaviour(f)).unwrap();
}

/// The recorded argv of every call to `tool`, in order.
fn calls_of(s: &prestage::demo::Scenario, tool: &str) -> Vec<Vec<String>> {
    world::calls(&s.root)
        .unwrap()
        .into_iter()
        .filter(|c| c.tool == tool)
        .map(|c| c.args)
        .collect()
}

fn deletions(s: &prestage::demo::Scenario) -> usize {
    calls_of(s, mac::SYSADMINCTL)
        .iter()
        .filter(|a| a.first().is_some_and(|f| f == "-deleteUser"))
        .count()
}

fn log(s: &prestage::demo::Scenario) -> String {
    std::fs::read_to_string(s.root.resolve(mac::LOG_FILE)).unwrap_or_default()
}

fn status_json(s: &prestage::demo::Scenario) -> serde_json::Value {
    let out = std::process::Command::new(EXE)
        .args(["status", "--json", "--root"])
        .arg(s.root_dir())
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_installer_gets_the_setup_accounts_password_and_nothing_else_does() {
    // A password with spaces and a `;`: the file is `<user>;<password>`, split at the first `;`
    // (the user name cannot hold one).
    let password = "Fjord otter; 2026!";
    let mut config = base_config(&[], &[]);
    config.insert("EnrollmentUserPassword".into(), password.into());
    let mut opts = options(EmployeeKind::Active);
    opts.base_config = Some(config);
    let s = scenario(opts).await;
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_enrolled(&s);
    // The installer found `welcome;<password>`, root-only (0600), and deleted it.
    assert_eq!(
        world(&s).service_account_creds,
        vec![CredsSeen::Admin {
            user: "welcome".into(),
            password_sha256: sha256_hex(password.as_bytes()),
            mode: 0o600,
        }]
    );
    assert!(!s.root.resolve(mac::JC_SECURETOKEN_CREDS).exists());
    // Nowhere else: no file under the root (state, journal, log, receipt, the world), no
    // argv, no output. The local configuration that held it is gone (assert_enrolled).
    assert_no_secret(&s, &[&out], &[password, "Fjord otter"]);
    // FileVault is off on this Mac: no preboot update.
    assert!(calls_of(&s, mac::DISKUTIL).is_empty());
    assert_eq!(calls_of(&s, mac::FDESETUP), vec![vec!["status".to_owned()]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_password_the_installer_is_told_to_skip_and_a_leftover_file_is_removed() {
    let s = scenario(options(EmployeeKind::Active)).await;
    // An installer that does not delete the file (JumpCloud's does: prove we do not rely on it).
    behave(&s, |b| b.installer_keeps_creds_file = true);
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_enrolled(&s);
    assert_eq!(
        world(&s).service_account_creds,
        vec![CredsSeen::Skip { mode: 0o600 }]
    );
    assert!(!s.root.resolve(mac::JC_SECURETOKEN_CREDS).exists());
    assert!(
        log(&s).contains("removed the credentials file the agent's installer left behind"),
        "{}",
        log(&s)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mac_without_the_agents_pppc_profile_uncovers_the_prompt_and_says_what_is_missing() {
    let s = scenario(options(EmployeeKind::Active)).await;
    behave(&s, |b| b.agent_needs_fda_approval = true);
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let child = spawn(&s);
    // The installer opened System Settings; prestage noticed and closed its window.
    wait_for_state(&s, |st| st.agent.fda_prompt_ms).await;
    let w = world(&s);
    assert!(w.system_settings_running, "{w:#?}");
    assert!(
        fake_dialog::command_lines(&s.root)
            .iter()
            .any(|l| l == "quit:"),
        "the progress window was closed over the prompt"
    );
    assert_eq!(state(&s).unwrap().step, Step::InstallAgent);
    // Someone at the Mac allows Full Disk Access; the install goes on.
    World::update(&s.root, |w| w.fda_approved = true).unwrap();
    let out = finish(child).await;
    assert_success(&s, &out);
    assert_enrolled(&s);
    assert!(
        log(&s).contains("no privacy (PPPC) profile grants it"),
        "{}",
        log(&s)
    );
    let report = status_json(&s);
    let warnings = report["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("packaging/profile/jumpcloud-agent-pppc.mobileconfig")),
        "{report:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_that_logs_only_processing_user_updates_ends_on_the_fallback() {
    let mut opts = options(EmployeeKind::Active);
    opts.sim = sim_options(AgentBehaviour {
        mode: AgentMode::ProcessingOnly,
        heartbeat: None,
        ..instant_agent()
    });
    let s = scenario(opts).await;
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_enrolled(&s);
    let agent_log = std::fs::read_to_string(s.root.resolve(mac::JC_AGENT_LOG)).unwrap();
    assert!(agent_log.contains("Processing user updates"));
    assert!(!agent_log.contains("User updates complete"));
    let signal = state(&s).unwrap().takeover.signal.unwrap();
    assert!(signal.contains("Processing user updates"), "{signal}");
    assert!(signal.contains("20 s without a new line"), "{signal}");
    assert!(
        log(&s).contains("Processing user updates"),
        "the log names the signal"
    );
    // The agent was busy, not stalled: never restarted.
    assert_eq!(world(&s).agent_kickstarts, 0);
    assert_eq!(status_json(&s)["takeover_signal"], signal.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_that_returns_0_without_effect_falls_back_to_bootout_gui() {
    let s = scenario(options(EmployeeKind::Active)).await;
    behave(&s, |b| b.logout_ignored_once = true);
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_enrolled(&s);
    let bootouts: Vec<Vec<String>> = calls_of(&s, mac::LAUNCHCTL)
        .into_iter()
        .filter(|a| a[0] == "bootout" && !a[1].starts_with("system/"))
        .collect();
    assert_eq!(
        bootouts,
        vec![
            vec!["bootout".to_owned(), "user/501".to_owned()],
            vec!["bootout".to_owned(), "gui/501".to_owned()],
        ]
    );
    assert!(log(&s).contains("trying `launchctl bootout gui/UID`"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setup_account_that_cannot_be_logged_out_is_a_clear_error() {
    let s = scenario(options(EmployeeKind::Active)).await;
    behave(&s, |b| b.logout_never_works = true);
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_exit(&s, &out, 1);
    let st = state(&s).unwrap();
    assert_eq!(st.step, Step::Handover);
    assert!(!st.handover.setup_logged_out);
    let err = st.last_error.unwrap();
    assert!(err.permanent);
    for part in [
        "welcome is still logged in",
        "launchctl bootout user/501",
        "launchctl bootout gui/501",
        "log it out from the Apple menu",
    ] {
        assert!(err.message.contains(part), "{part}: {}", err.message);
    }
    // Nothing was deleted from under the session.
    assert!(world(&s).users.contains_key("welcome"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_slower_than_the_old_30_s_limit_is_not_killed() {
    let s = scenario(options(EmployeeKind::Active)).await;
    // Real numbers: a 40 s deletion, which the old 30 s tool limit killed half-way (leaving
    // the account demoted, its home deleted and its record kept) and then retried forever.
    behave(&s, |b| b.delete_duration_ms = 40_000);
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_enrolled(&s);
    assert_eq!(
        deletions(&s),
        1,
        "one sysadminctl -deleteUser, never killed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_gets_a_moment_before_id_decides() {
    let s = scenario(options(EmployeeKind::Active)).await;
    // `id -u` finds the deleted account for 5 s more.
    behave(&s, |b| b.directory_lag_ms = 5_000);
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_enrolled(&s);
    assert_eq!(deletions(&s), 1, "not deleted a second time");
    assert_eq!(state(&s).unwrap().removal.delete_attempts["welcome"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_that_keeps_failing_is_kept_shown_and_reported() {
    let s = scenario(options(EmployeeKind::Active)).await;
    behave(&s, |b| b.delete_fails_partially = true);
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    let st = state(&s).unwrap();
    assert_eq!(st.step, Step::Done);
    assert_eq!(deletions(&s), 3, "three tries, then no more");
    assert_eq!(st.removal.kept_users, vec!["welcome".to_owned()]);
    let why = &st.removal.kept_reasons["welcome"];
    assert!(why.contains("in 3 tries"), "{why}");
    assert!(why.contains("Error:-14120"), "{why}");
    // The half-deleted account is shown at the login window again.
    let w = world(&s);
    assert!(!w.users["welcome"].hidden, "{w:#?}");
    assert!(calls_of(&s, mac::DSCL)
        .iter()
        .any(|a| a.last().is_some_and(|v| v == "0")));
    // Reported: the log, `status`, and the system's description in JumpCloud.
    assert!(log(&s).contains("giving up deleting the setup account"));
    let report = status_json(&s);
    assert!(
        report["kept_reasons"]["welcome"]
            .as_str()
            .unwrap()
            .contains("in 3 tries"),
        "{report:#}"
    );
    let system = &s.tenant.systems()[0];
    let last = system.descriptions.last().unwrap();
    assert!(
        last.contains("setup account kept: welcome (deletion failed 3 times)"),
        "{last}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filevault_on_refreshes_the_unlock_list_before_the_setup_account_is_deleted() {
    let s = scenario(options(EmployeeKind::Active)).await;
    World::update(&s.root, World::turn_filevault_on).unwrap();
    assert_eq!(world(&s).preboot_users, vec!["welcome".to_owned()]);
    s.write_dialog_script(&clean_script(&s)).unwrap();
    // Killed right after the preboot update was persisted: the restart does not run it again.
    let (kills, outputs) = run_with_kills(
        &s,
        |journal, _| journal.iter().any(|j| j.detail == "preboot updated"),
        1,
    )
    .await;
    assert_eq!(kills, 1, "{outputs:#?}");
    assert_enrolled(&s);
    let w = world(&s);
    // The employee can unlock the disk at the next start.
    assert!(
        w.preboot_users.contains(&s.employee.account),
        "{:?}",
        w.preboot_users
    );
    assert_eq!(
        calls_of(&s, mac::DISKUTIL),
        vec![vec!["apfs", "updatePreboot", "/"]]
    );
    // In order: the employee holds a token, the preboot is updated, then the deletion.
    let calls = world::calls(&s.root).unwrap();
    let at = |f: &dyn Fn(&world::Call) -> bool| calls.iter().position(f).unwrap();
    let token =
        at(&|c| c.tool == mac::SYSADMINCTL && c.args == ["-secureTokenStatus", "ada.lovelace"]);
    let preboot = at(&|c| c.tool == mac::DISKUTIL);
    let delete = at(&|c| c.tool == mac::SYSADMINCTL && c.args[0] == "-deleteUser");
    assert!(token < preboot && preboot < delete, "{calls:#?}");
    assert!(state(&s).unwrap().removal.preboot_updated);
}

#[test]
fn the_credentials_file_is_never_written_through_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let root = prestage::paths::Root::new(dir.path());
    let target = root.resolve(mac::JC_SECURETOKEN_CREDS);
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    let victim = root.resolve("/etc/victim");
    std::fs::create_dir_all(victim.parent().unwrap()).unwrap();
    std::fs::write(&victim, "untouched").unwrap();
    std::os::unix::fs::symlink(&victim, &target).unwrap();
    let files = prestage::host::AgentFiles::new(root.clone());
    let password = secrecy::SecretString::from("s3cret pass");
    files
        .write_service_account_creds(&prestage::host::ServiceAccountCreds::Admin {
            user: "welcome",
            password: &password,
        })
        .unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    let meta = std::fs::symlink_metadata(&target).unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "welcome;s3cret pass\n"
    );
    files
        .write_service_account_creds(&prestage::host::ServiceAccountCreds::Skip)
        .unwrap();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "=skip\n");
    assert!(files.remove_service_account_creds().unwrap());
    assert!(!files.remove_service_account_creds().unwrap());
    // No temporary file left beside it.
    let left: Vec<_> = std::fs::read_dir(target.parent().unwrap())
        .unwrap()
        .flatten()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

// ---------------------------------------------------------------------------------------------
// The fakes and `MacHost` alone.

/// A fake Mac with the fake tools, and a `MacHost` on it.
fn fake_mac() -> (
    tempfile::TempDir,
    prestage::paths::Root,
    prestage::host::MacHost,
) {
    let dir = tempfile::tempdir().unwrap();
    let root = prestage::paths::Root::new(dir.path());
    prestage::host::fake::install_fake_tools(&root, std::path::Path::new(FAKES)).unwrap();
    let host = prestage::host::MacHost::new(root.clone());
    (dir, root, host)
}

#[tokio::test]
async fn a_deletion_killed_half_way_leaves_a_half_deleted_account() {
    use prestage::host::{Host, HostError};
    let (_dir, root, host) = fake_mac();
    World::update(&root, |w| {
        w.add_user("welcome", false, true);
        w.add_user("ada", true, false);
        w.edit_behaviour(|b| b.delete_duration_ms = 3_000);
    })
    .unwrap();
    // What the old 30 s tool limit did to a deletion that takes longer, on a shorter scale.
    let impatient = host
        .clone()
        .with_delete_limits(Duration::from_millis(500), Duration::from_secs(1));
    let e = impatient.delete_user("welcome").await.unwrap_err();
    assert!(matches!(e, HostError::TimedOut { .. }), "{e}");
    // The state microsoft/shell-intune-samples issue 33 reports: demoted, home gone, record kept.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let w = World::load(&root).unwrap();
    let welcome = &w.users["welcome"];
    assert!(!welcome.admin && welcome.home_deleted, "{welcome:?}");
    assert!(w.deleted_users.is_empty());
    // Left alone, the same deletion finishes.
    host.delete_user("welcome").await.unwrap();
    assert_eq!(World::load(&root).unwrap().deleted_users, ["welcome"]);
}

#[tokio::test]
async fn a_half_failing_deletion_says_what_intune_saw() {
    use prestage::host::{Host, HostError};
    let (_dir, root, host) = fake_mac();
    World::update(&root, |w| {
        w.add_user("welcome", false, true);
        w.edit_behaviour(|b| b.delete_fails_partially = true);
    })
    .unwrap();
    let e = host.delete_user("welcome").await.unwrap_err();
    match &e {
        HostError::NotDeleted { detail, .. } => {
            assert!(detail.contains("### Error:-14120"), "{detail}");
            assert!(detail.contains("DSRecord.m Line:563"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    let w = World::load(&root).unwrap();
    assert!(!w.users["welcome"].admin && w.users["welcome"].home_deleted);
}

#[tokio::test]
async fn a_deleted_account_lingers_for_id_then_goes() {
    use prestage::host::Host;
    let (_dir, root, host) = fake_mac();
    World::update(&root, |w| {
        w.add_user("welcome", false, true);
        w.edit_behaviour(|b| b.directory_lag_ms = 3_000);
    })
    .unwrap();
    let uid = host.user_id("welcome").await.unwrap();
    // `sysadminctl` by hand: the record is gone, `id -u` still finds it for a moment.
    let out = std::process::Command::new(root.tool(mac::SYSADMINCTL))
        .args(["-deleteUser", "welcome"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(host.user_id("welcome").await.unwrap(), uid);
    // MacHost waits for it to go instead of calling it not deleted.
    host.delete_user("welcome").await.unwrap();
    assert_eq!(host.user_id("welcome").await.unwrap(), None);
}

#[tokio::test]
async fn logouts_that_do_not_log_out_and_the_gui_fallback() {
    use prestage::host::Host;
    let (_dir, root, host) = fake_mac();
    World::update(&root, |w| {
        w.add_user("welcome", true, true);
        w.console_user = "welcome".into();
        w.finder_running = true;
        w.edit_behaviour(|b| b.logout_ignored_once = true);
    })
    .unwrap();
    // munki issue 923: exit 0, still logged in.
    host.log_out(501).await.unwrap();
    assert_eq!(host.console_user().await.unwrap(), "welcome");
    host.log_out_gui(501).await.unwrap();
    assert_eq!(host.console_user().await.unwrap(), "root");
    // Nobody left to log out: launchctl's "No such process" is done already.
    host.log_out_gui(501).await.unwrap();
    let bootouts: Vec<Vec<String>> = world::calls(&root)
        .unwrap()
        .into_iter()
        .filter(|c| c.tool == mac::LAUNCHCTL)
        .map(|c| c.args)
        .collect();
    assert_eq!(bootouts[0], ["bootout", "user/501"]);
    assert_eq!(bootouts[1], ["bootout", "gui/501"]);
}

#[tokio::test]
async fn filevault_status_and_the_preboot_unlock_list() {
    use prestage::host::Host;
    let (_dir, root, host) = fake_mac();
    World::update(&root, |w| {
        w.add_user("welcome", true, true);
    })
    .unwrap();
    assert_eq!(host.filevault_on().await.unwrap(), Some(false));
    World::update(&root, |w| {
        w.turn_filevault_on();
        w.add_user("ada", true, false);
    })
    .unwrap();
    assert_eq!(host.filevault_on().await.unwrap(), Some(true));
    // Ada got her token after FileVault was turned on: not in the unlock list until the
    // preboot volume is updated.
    assert_eq!(World::load(&root).unwrap().preboot_users, ["welcome"]);
    host.update_preboot().await.unwrap();
    assert_eq!(
        World::load(&root).unwrap().preboot_users,
        ["ada", "welcome"]
    );
    let calls = world::calls(&root).unwrap();
    assert!(calls
        .iter()
        .any(|c| c.tool == mac::FDESETUP && c.args == ["status"]));
    assert!(calls
        .iter()
        .any(|c| c.tool == mac::DISKUTIL && c.args == ["apfs", "updatePreboot", "/"]));
}

#[tokio::test]
async fn the_agent_installer_reads_deletes_and_may_ask_for_full_disk_access() {
    use prestage::host::fake::world::{FakePackage, AGENT_PACKAGE_ID};
    use prestage::host::Host;
    let (_dir, root, host) = fake_mac();
    let pkg = "/var/tmp/jumpcloud-agent.pkg";
    FakePackage::jumpcloud_agent()
        .write(&root.resolve(pkg))
        .unwrap();
    World::update(&root, |w| {
        w.edit_behaviour(|b| {
            b.agent_needs_fda_approval = true;
            b.fda_prompt_timeout_ms = 1_500;
        });
    })
    .unwrap();
    // No credentials file and nobody to allow Full Disk Access: System Settings opens, the
    // install fails after the prompt's time.
    assert!(!host.system_settings_running().await.unwrap());
    let install = {
        let host = host.clone();
        tokio::spawn(async move { host.install_package(std::path::Path::new(pkg)).await })
    };
    let mut seen = false;
    for _ in 0..50 {
        if host.system_settings_running().await.unwrap() {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "System Settings opened during the install");
    let e = install.await.unwrap().unwrap_err();
    assert!(
        e.to_string()
            .contains("An error occurred while running scripts"),
        "{e}"
    );
    let w = World::load(&root).unwrap();
    assert_eq!(w.service_account_creds, vec![CredsSeen::Missing]);
    assert!(!w.installed_packages.iter().any(|p| p == AGENT_PACKAGE_ID));
    assert!(!host.system_settings_running().await.unwrap());
    // With `=skip` written and Full Disk Access allowed, it installs and deletes the file.
    let files = prestage::host::AgentFiles::new(root.clone());
    files
        .write_service_account_creds(&prestage::host::ServiceAccountCreds::Skip)
        .unwrap();
    World::update(&root, |w| w.fda_approved = true).unwrap();
    host.install_package(std::path::Path::new(pkg))
        .await
        .unwrap();
    let w = World::load(&root).unwrap();
    assert_eq!(
        w.service_account_creds,
        vec![CredsSeen::Missing, CredsSeen::Skip { mode: 0o600 }]
    );
    assert!(!root.resolve(mac::JC_SECURETOKEN_CREDS).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_credentials_file_is_written_leaves_no_password_behind() {
    let password = "Moss-Lantern 88";
    let mut config = base_config(&[], &[]);
    config.insert("EnrollmentUserPassword".into(), password.into());
    let mut opts = options(EmployeeKind::Active);
    opts.base_config = Some(config);
    let s = scenario(opts).await;
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let (kills, outputs) = run_with_kills(
        &s,
        |journal, _| {
            journal
                .iter()
                .any(|j| j.detail.starts_with("writing the agent's credentials file"))
        },
        1,
    )
    .await;
    assert_eq!(kills, 1, "{outputs:#?}");
    assert_enrolled(&s);
    assert!(!s.root.resolve(mac::JC_SECURETOKEN_CREDS).exists());
    let refs: Vec<&super::engine::RunResult> = outputs.iter().collect();
    assert_no_secret(&s, &refs, &[password]);
    // The installer that ran got the credentials.
    assert!(world(&s)
        .service_account_creds
        .iter()
        .any(|c| matches!(c, CredsSeen::Admin { user, .. } if user == "welcome")));
}
