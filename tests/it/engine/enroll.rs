//! The engine end to end: enrollments that finish, for each kind of employee and setting.

use super::super::util::assert_success;
use super::sha2_free::sha256_hex;
use super::{
    assert_enrolled, assert_no_secret, base_config, clean_script, options, run_once, scenario,
    state, successful_binds, system_id, world, EXE,
};
use prestage::demo::{EmployeeKind, ScenarioOptions};
use prestage::engine::state::{Step, Store};
use prestage::paths::mac;
use prestage::ui::fake_dialog;
use secrecy::ExposeSecret;
use std::collections::BTreeMap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_user_enrolls_and_nothing_leaks() {
    let s = scenario(options(EmployeeKind::Pending)).await;
    s.write_dialog_script(&s.demo_script()).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_enrolled(&s);
    let user = s.tenant.user(&s.user_id).unwrap();
    assert_eq!(user.password_sets, 1);
    assert_eq!(
        user.password_history,
        vec![sha256_hex(s.employee.password.as_bytes())]
    );
    assert!(user.activated);
    // The employee mistyped the secret once: two identity questions, and a weak password first.
    let dialogs = fake_dialog::calls(&s.root);
    let questions = |field: &str| {
        dialogs
            .iter()
            .filter(|c| c.args.iter().any(|a| a.contains(&format!("name={field}"))))
            .count()
    };
    assert_eq!(questions("identifier"), 2);
    assert_eq!(questions("password"), 2);
    // The progress window was driven through the command file.
    let lines = fake_dialog::command_lines(&s.root);
    assert!(
        lines.iter().any(|l| l.starts_with("progress:")),
        "{lines:?}"
    );
    // No secret anywhere: API key, passwords typed, the employee's secret and the wrong one.
    let api_key = s.tenant.api_key().expose_secret().to_owned();
    let secret = s.employee.secret.clone().unwrap();
    assert_no_secret(
        &s,
        &[&out],
        &[
            &api_key,
            &s.employee.password,
            "analytical-engine",
            &secret,
            "E-1816",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_connect_key_enrolls_with_its_own_payload_and_eu_hosts() {
    // The admin's key is a jcc_ key whose payload names the EU kickstart hosts; the scenario
    // swaps in one issued by the simulated tenant with the same hosts, and from then on the
    // simulated agent registers only when agentBootstrap.json is exactly that payload.
    let payload = br#"{"publicKickstartUrl":"https://kickstart.eu.jumpcloud.com:443","privateKickstartUrl":"https://private-kickstart.eu.jumpcloud.com:443","connectKey":"x"}"#;
    let mut config = base_config(&[], &[]);
    config.insert(
        "ConnectKey".into(),
        prestage::config::connect_key::encode_tenant_key(payload).into(),
    );
    let s = scenario(ScenarioOptions {
        base_config: Some(config),
        ..options(EmployeeKind::Active)
    })
    .await;
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_enrolled(&s);
    let written = std::fs::read_to_string(s.root.resolve(mac::JC_BOOTSTRAP)).unwrap();
    assert!(
        written.starts_with(r#"{"publicKickstartUrl":"https://kickstart.eu.jumpcloud.com:443","#),
        "written as the payload is, not rewritten: {written}"
    );
    // The APIBaseURL is the simulated tenant's (loopback): our own URL choice would have
    // given JumpCloud's US hosts.
    assert!(
        !written.contains("https://kickstart.jumpcloud.com"),
        "{written}"
    );
    assert!(!written.contains('\n'), "compact as issued: {written}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_user_is_not_asked_for_a_password() {
    let s = scenario(options(EmployeeKind::Active)).await;
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_enrolled(&s);
    assert_eq!(s.tenant.user(&s.user_id).unwrap().password_sets, 0);
    assert!(!fake_dialog::calls(&s.root)
        .iter()
        .any(|c| c.args.iter().any(|a| a.contains("name=password"))));
    assert_eq!(successful_binds(&s), 1);
    // Agent.PackagePath is copied into the root-only state directory first; that copy (its
    // macOS path, not rewritten under --root: SPEC §1) is what pkgutil checks and installer
    // installs, so a package in a folder others can write cannot be swapped in between.
    let pkg_args: Vec<Vec<String>> = world::calls(&s.root)
        .unwrap()
        .into_iter()
        .filter(|c| c.tool == mac::PKGUTIL || c.tool == mac::INSTALLER)
        .map(|c| c.args)
        .collect();
    let pkg = "/var/db/prestage/staged/jumpcloud-agent.pkg";
    assert_eq!(
        pkg_args,
        [
            vec!["--check-signature", pkg],
            vec!["-pkg", pkg, "-target", "/"]
        ]
    );
    // The copy is gone once installed; the admin's package is untouched.
    assert!(!s.root.resolve(pkg).exists());
    assert!(s.root.resolve(prestage::demo::DEMO_AGENT_PACKAGE).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_read_from_the_system_is_sent_on_every_later_admin_call() {
    // jcagent.conf without `ldap_domain` (bash script issue #21): the org comes from
    // `GET /api/systems/{sys}` (SPEC §4), and from then on admin calls carry it as x-org-id.
    let mut opts = options(EmployeeKind::Pending);
    opts.sim.agent.omit_org = true;
    let s = scenario(opts).await;
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_enrolled(&s);
    let requests = s.tenant.requests();
    let system = format!("/api/systems/{}", system_id(&s));
    let read = requests
        .iter()
        .position(|r| r.method == "GET" && r.path == system)
        .expect("the org is read from the system record");
    let org = s.tenant.org_id();
    let admin: Vec<_> = requests[read..]
        .iter()
        .filter(|r| r.auth == prestage::sim::AuthKind::Admin)
        .collect();
    assert!(admin.len() >= 3, "{admin:#?}");
    for r in admin {
        assert_eq!(
            r.org_id_header.as_deref(),
            Some(org.as_str()),
            "{} {}",
            r.method,
            r.path
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_user_sets_a_password_and_is_activated() {
    let s = scenario(options(EmployeeKind::Staged)).await;
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_enrolled(&s);
    let user = s.tenant.user(&s.user_id).unwrap();
    assert_eq!(user.state, prestage::jumpcloud::UserState::Activated);
    assert_eq!(user.password_sets, 1);
    assert!(s
        .tenant
        .requests()
        .iter()
        .any(|r| r.path.ends_with("/state/activate")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn employee_without_secure_token_keeps_the_setup_account() {
    let mut opts = options(EmployeeKind::Active);
    opts.grant_secure_token = false;
    let mut config = base_config(&[], &[]);
    config.insert("SecureTokenTimeoutSeconds".into(), 3.into());
    opts.base_config = Some(config);
    let s = scenario(opts).await;
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    let st = state(&s).unwrap();
    assert_eq!(st.step, Step::Done);
    let w = world(&s);
    assert!(
        w.users.contains_key("welcome"),
        "the last Secure Token holder is kept"
    );
    assert!(w.deleted_users.is_empty());
    assert_eq!(st.removal.kept_users, vec!["welcome".to_owned()]);
    // Hidden at the handover, shown again once kept: IT needs it at the login window.
    assert!(
        !w.users["welcome"].hidden,
        "the kept account is visible again"
    );
    let dscl: Vec<Vec<String>> = world::calls(&s.root)
        .unwrap()
        .into_iter()
        .filter(|c| c.tool == mac::DSCL)
        .map(|c| c.args)
        .collect();
    assert_eq!(
        dscl,
        vec![
            vec![".", "-create", "/Users/welcome", "IsHidden", "1"],
            vec![".", "-create", "/Users/welcome", "IsHidden", "0"],
        ]
    );
    let log = std::fs::read_to_string(s.root.resolve(mac::LOG_FILE)).unwrap();
    assert!(
        log.contains("holds no Secure Token yet"),
        "clear message in the log"
    );
    let status = std::process::Command::new(EXE)
        .args(["status", "--root"])
        .arg(s.root_dir())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("kept setup accounts: welcome"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_enrollment_does_nothing_on_the_next_start() {
    let s = scenario(options(EmployeeKind::Active)).await;
    s.write_dialog_script(&clean_script(&s)).unwrap();
    assert_eq!(run_once(&s).await.code, Some(0));
    let requests = s.tenant.requests().len();
    let calls = world::calls(&s.root).unwrap().len();
    let users = world(&s).users;
    // The MDM pushes the package again: its LaunchDaemon is back.
    let daemon = s.root.resolve(mac::LAUNCH_DAEMON);
    std::fs::write(&daemon, b"<plist/>").unwrap();

    let again = run_once(&s).await;
    assert_success(&s, &again);
    assert_eq!(s.tenant.requests().len(), requests, "no request");
    assert_eq!(world(&s).users, users, "no account touched");
    // Only the finishing touches again: the LaunchDaemon removed, launchd told to forget it.
    assert!(!daemon.exists());
    let new_calls: Vec<_> = world::calls(&s.root).unwrap().split_off(calls);
    assert_eq!(new_calls.len(), 1, "{new_calls:#?}");
    assert_eq!(new_calls[0].tool, mac::LAUNCHCTL);
    assert_eq!(
        new_calls[0].args,
        vec!["bootout", "system/io.prestage.enroll"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_forgets_progress_but_no_account() {
    let s = scenario(options(EmployeeKind::Active)).await;
    s.write_dialog_script(&clean_script(&s)).unwrap();
    assert_eq!(run_once(&s).await.code, Some(0));
    let users_before: BTreeMap<_, _> = world(&s).users;
    let out = std::process::Command::new(EXE)
        .args(["reset", "--yes", "--root"])
        .arg(s.root_dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(!Store::new(&s.root).state_path().exists());
    assert_eq!(
        world(&s).users,
        users_before,
        "reset never touches accounts"
    );
    let status = std::process::Command::new(EXE)
        .args(["status", "--json", "--root"])
        .arg(s.root_dir())
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(report["phase"], "not_started");
}
