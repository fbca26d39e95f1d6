//! Integration tests: the enrollment engine end to end. Every test runs the real `prestage run`
//! process against a simulated Mac (`--root` with the fake macOS tools and the fake
//! swiftDialog answering as a scripted employee) and the simulated JumpCloud tenant and agent,
//! which live in the test process. Crash safety is proven by `kill -9` of that process at step
//! boundaries and at random moments, then restarting it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use prestage::demo::{EmployeeKind, Scenario, ScenarioOptions};
use prestage::engine::state::{JournalEntry, Loaded, State, Step, Store};
use prestage::host::fake::world::{self, World};
use prestage::paths::mac;
use prestage::sim::{AgentBehaviour, AgentMode, SimOptions};
use prestage::ui::fake_dialog;
use prestage::ui::scripted::{Script, ScriptedIdentity, ScriptedPassword};
use secrecy::ExposeSecret;
use sha2_free::sha256_hex;
use tokio::process::{Child, Command};

pub(super) const EXE: &str = env!("CARGO_BIN_EXE_prestage");
/// The fake macOS tools and swiftDialog (one multi-call binary).
pub(super) const FAKES: &str = env!("CARGO_BIN_EXE_prestage-fake");
/// No single run of the engine in these tests should take longer (real hangs only).
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// SHA-256 without another crate: aws-lc-rs is in the tree already.
mod sha2_free {
    pub fn sha256_hex(data: &[u8]) -> String {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
        d.as_ref().iter().fold(String::new(), |mut out, b| {
            use std::fmt::Write;
            let _ = write!(out, "{b:02x}");
            out
        })
    }
}

pub(super) fn sim_options(agent: AgentBehaviour) -> SimOptions {
    SimOptions {
        password_policy: prestage::demo::demo_policy(),
        agent,
        ..SimOptions::default()
    }
}

pub(super) fn instant_agent() -> AgentBehaviour {
    AgentBehaviour {
        register_delay: Duration::from_millis(50),
        takeover_delay: Duration::from_millis(100),
        poll_interval: Duration::from_millis(50),
        ..AgentBehaviour::default()
    }
}

pub(super) fn options(kind: EmployeeKind) -> ScenarioOptions {
    ScenarioOptions {
        kind,
        sim: sim_options(instant_agent()),
        setup_assistant_ms: 0,
        employee_login_delay_ms: Some(0),
        ..ScenarioOptions::default()
    }
}

/// A configuration with the given `Identity` and `Agent` settings (the rest is filled in by
/// the scenario).
pub(super) fn base_config(
    identity: &[(&str, plist::Value)],
    agent: &[(&str, plist::Value)],
) -> plist::Dictionary {
    let mut config = plist::Dictionary::new();
    let mut id = plist::Dictionary::new();
    id.insert("Identifier".into(), "CompanyEmail".into());
    id.insert("Secret".into(), "EmployeeID".into());
    for (k, v) in identity {
        id.insert((*k).to_owned(), v.clone());
    }
    config.insert("Identity".into(), id.into());
    let mut ag = plist::Dictionary::new();
    for (k, v) in agent {
        ag.insert((*k).to_owned(), v.clone());
    }
    config.insert("Agent".into(), ag.into());
    config
}

pub(super) async fn scenario(opts: ScenarioOptions) -> Scenario {
    Scenario::new(opts, Path::new(FAKES))
        .await
        .expect("scenario")
}

/// A script without mistakes.
pub(super) fn clean_script(s: &Scenario) -> Script {
    Script {
        identities: vec![ScriptedIdentity {
            identifier: s.employee.identifier.clone(),
            secret: s.employee.secret.clone(),
        }]
        .into(),
        passwords: vec![ScriptedPassword {
            password: s.employee.password.clone(),
            confirmation: None,
        }]
        .into(),
    }
}

pub(super) fn spawn(s: &Scenario) -> Child {
    Command::new(EXE)
        .args(["run", "--simulated-keychain", "--root"])
        .arg(s.root_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn prestage run")
}

/// What one `prestage run` printed and how it ended.
#[derive(Debug)]
pub(super) struct RunResult {
    pub(super) code: Option<i32>,
    pub(super) stdout: String,
    pub(super) stderr: String,
}

pub(super) async fn finish(child: Child) -> RunResult {
    let out = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .expect("prestage run hung")
        .expect("wait for prestage run");
    RunResult {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub(super) async fn run_once(s: &Scenario) -> RunResult {
    finish(spawn(s)).await
}

pub(super) fn state(s: &Scenario) -> Option<State> {
    match Store::new(&s.root).load() {
        Ok(Loaded::Resumed(state)) => Some(*state),
        _ => None,
    }
}

pub(super) fn journal(s: &Scenario) -> Vec<JournalEntry> {
    Store::new(&s.root).read_journal().unwrap_or_default()
}

pub(super) fn world(s: &Scenario) -> World {
    World::load(&s.root).expect("world")
}

pub(super) fn system_id(s: &Scenario) -> String {
    s.tenant
        .systems()
        .first()
        .expect("a registered system")
        .id
        .clone()
}

/// Everything printed or written that could leak a secret, for the no-secret checks.
pub(super) fn everything_written(s: &Scenario, outputs: &[&RunResult]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for entry in walk(s.root_dir()) {
        let rel = entry
            .strip_prefix(s.root_dir())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        // The scripted employee's answers are test input, not something prestage wrote.
        if rel.ends_with("dialog-script.json") {
            continue;
        }
        if let Ok(bytes) = std::fs::read(&entry) {
            found.push((rel, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    for (i, out) in outputs.iter().enumerate() {
        found.push((format!("stdout of run {i}"), out.stdout.clone()));
        found.push((format!("stderr of run {i}"), out.stderr.clone()));
    }
    found
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            out.extend(walk(&path));
        } else if meta.is_file() {
            out.push(path);
        }
    }
    out
}

/// Asserts a finished, clean enrollment of the scenario's employee.
pub(super) fn assert_enrolled(s: &Scenario) {
    let st = state(s).expect("state");
    assert_eq!(st.step, Step::Done, "state: {st:#?}");
    let w = world(s);
    assert!(w.users.contains_key(&s.employee.account), "world: {w:#?}");
    assert_eq!(
        w.deleted_users,
        vec!["welcome".to_owned()],
        "deleted exactly once"
    );
    assert!(!w.users.contains_key("welcome"));
    let sys = system_id(s);
    let binds = s.tenant.bindings(&sys);
    assert_eq!(binds.len(), 1, "one bind: {binds:?}");
    assert_eq!(binds[0].0, s.user_id);
    // Moved from the enrollment group to the post-enrollment group.
    assert!(!s.tenant.group_members(&s.group_id).contains(&sys));
    assert!(s.tenant.group_members(&s.post_group_id).contains(&sys));
    // Nothing left behind: LaunchDaemon and the secret-holding local config are gone; a
    // receipt stays for `status`.
    assert!(!s.root.resolve(mac::LAUNCH_DAEMON).exists());
    assert!(!s.root.resolve(mac::LOCAL_CONFIG).exists());
    assert!(Store::new(&s.root).receipt_path().exists());
    // The daemon removed itself, last.
    let calls = world::calls(&s.root).expect("calls");
    let last = calls.last().expect("tool calls");
    assert_eq!(last.tool, mac::LAUNCHCTL);
    assert_eq!(last.args, vec!["bootout", "system/io.prestage.enroll"]);
    assert!(
        s.tenant.contract_violations().is_empty(),
        "{:?}",
        s.tenant.contract_violations()
    );
}

pub(super) fn successful_binds(s: &Scenario) -> usize {
    s.tenant
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/associations") && r.status == 204)
        .count()
}

pub(super) fn assert_no_secret(s: &Scenario, outputs: &[&RunResult], secrets: &[&str]) {
    for (name, text) in everything_written(s, outputs) {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "a secret ({} chars) appears in {name}",
                secret.len()
            );
        }
    }
    for call in world::calls(&s.root).expect("calls") {
        for secret in secrets {
            assert!(
                !call.args.iter().any(|a| a.contains(secret)),
                "secret in argv of {}",
                call.tool
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_user_enrolls_and_nothing_leaks() {
    let s = scenario(options(EmployeeKind::Pending)).await;
    s.write_dialog_script(&s.demo_script()).unwrap();
    let out = run_once(&s).await;
    assert_eq!(out.code, Some(0), "{out:#?}");
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
    assert_eq!(out.code, Some(0), "{out:#?}");
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
    assert_eq!(out.code, Some(0), "{out:#?}");
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
    assert_eq!(out.code, Some(0), "{out:#?}\n{}", diagnose(&s));
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
    assert_eq!(out.code, Some(0), "{out:#?}");
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
async fn cooldown_after_exhausted_attempts_survives_a_restart() {
    let mut opts = options(EmployeeKind::Active);
    opts.base_config = Some(base_config(
        &[("MaxAttempts", 2.into()), ("CooldownSeconds", 4.into())],
        &[],
    ));
    let s = scenario(opts).await;
    let wrong = ScriptedIdentity {
        identifier: s.employee.identifier.clone(),
        secret: Some("E-0000".into()),
    };
    let mut script = clean_script(&s);
    script.identities.push_front(wrong.clone());
    script.identities.push_front(wrong);
    s.write_dialog_script(&script).unwrap();

    // Run until the cool-down is persisted, then kill -9.
    let mut child = spawn(&s);
    let until = wait_for(&s, |st| st.cooldown_until_ms).await;
    child.kill().await.unwrap();
    let _ = child.wait().await;
    let killed_at = prestage::engine::clock::now_ms();
    assert!(
        until > killed_at,
        "the cool-down is still running at the restart"
    );

    // The restart honours the persisted cool-down: no question before it ends.
    let out = run_once(&s).await;
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert_enrolled(&s);
    let asked: Vec<u64> = fake_dialog::calls(&s.root)
        .iter()
        .filter(|c| c.args.iter().any(|a| a.contains("name=identifier")))
        .map(|c| c.at_ms)
        .collect();
    assert_eq!(
        asked.len(),
        3,
        "two misses, then the right answer after the cool-down"
    );
    assert!(
        asked[2] >= until,
        "asked at {} before the cool-down ended at {until}",
        asked[2]
    );
}

/// Polls the state until `f` returns something (or the run limit passes).
pub(super) async fn wait_for<T>(s: &Scenario, f: impl Fn(&State) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + RUN_LIMIT;
    loop {
        if let Some(st) = state(s) {
            if let Some(v) = f(&st) {
                return v;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "state never reached the condition"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_that_never_registers_is_kickstarted_then_reported() {
    let mut opts = options(EmployeeKind::Pending);
    opts.sim = sim_options(AgentBehaviour {
        mode: AgentMode::NeverRegisters,
        ..instant_agent()
    });
    opts.base_config = Some(base_config(&[], &[("InstallTimeoutSeconds", 4.into())]));
    let s = scenario(opts).await;
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert_eq!(world(&s).agent_kickstarts, 1, "one kickstart half-way");
    let st = state(&s).unwrap();
    assert_eq!(st.step, Step::WaitAgent);
    let err = st.last_error.unwrap();
    assert!(err.permanent);
    assert!(err.message.contains("did not register"), "{}", err.message);
    let reference = err.reference.unwrap();
    assert!(reference.starts_with("PS-05-"), "{reference}");
    // The employee saw "contact IT" with the same reference code (the error window outlives
    // prestage, so it may still be starting).
    let shown = || {
        fake_dialog::calls(&s.root)
            .iter()
            .any(|c| c.args.iter().any(|a| a.contains(&reference)))
    };
    for _ in 0..200 {
        if shown() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(shown(), "the error window shows {reference}");
    // `status` shows it too.
    let status = std::process::Command::new(EXE)
        .args(["status", "--json", "--root"])
        .arg(s.root_dir())
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(report["phase"], "failed");
    assert_eq!(report["reference"], reference.as_str());
    assert_eq!(report["step"], "wait_agent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takeover_that_never_comes_kickstarts_the_agent_then_fails() {
    let mut opts = options(EmployeeKind::Active);
    opts.sim = sim_options(AgentBehaviour {
        mode: AgentMode::Silent,
        ..instant_agent()
    });
    opts.base_config = Some(base_config(&[], &[("TakeoverTimeoutSeconds", 6.into())]));
    let s = scenario(opts).await;
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_eq!(out.code, Some(1), "{out:#?}");
    let st = state(&s).unwrap();
    assert_eq!(st.step, Step::WaitAccount);
    // One restart for the whole wait, as JumpCloud's script does.
    assert_eq!(st.takeover_kickstarts, 1);
    assert_eq!(world(&s).agent_kickstarts, 1);
    let err = st.last_error.unwrap();
    assert!(
        err.message
            .contains("did not create the account ada.lovelace"),
        "{}",
        err.message
    );
    assert!(err.reference.unwrap().starts_with("PS-11-"));
    // The setup account is untouched.
    assert!(world(&s).users.contains_key("welcome"));
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
    assert_eq!(out.code, Some(0), "{out:#?}");
    let st = state(&s).unwrap();
    assert_eq!(st.step, Step::Done);
    let w = world(&s);
    assert!(
        w.users.contains_key("welcome"),
        "the last Secure Token holder is kept"
    );
    assert!(w.deleted_users.is_empty());
    assert_eq!(st.kept_users, vec!["welcome".to_owned()]);
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
    assert_eq!(again.code, Some(0), "{again:#?}");
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

/// Kills `prestage run` with SIGKILL when `should_kill` says so (checked against the journal
/// every few milliseconds), restarts it, and repeats until the enrollment finishes. Returns the
/// number of kills and every run's output.
pub(super) async fn run_with_kills(
    s: &Scenario,
    mut should_kill: impl FnMut(&[JournalEntry], Duration) -> bool,
    max_kills: usize,
) -> (usize, Vec<RunResult>) {
    let mut kills = 0;
    let mut outputs = Vec::new();
    for _ in 0..(max_kills + 5) {
        let mut child = spawn(s);
        let started = tokio::time::Instant::now();
        let killed = loop {
            if let Ok(Some(_)) = child.try_wait() {
                break false;
            }
            if kills < max_kills && should_kill(&journal(s), started.elapsed()) {
                child.start_kill().unwrap();
                break true;
            }
            if started.elapsed() >= RUN_LIMIT {
                let _ = child.start_kill();
                panic!("a run hung after {kills} kills\n{}", diagnose(s));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let out = finish(child).await;
        if killed {
            kills += 1;
            outputs.push(out);
            continue;
        }
        let done = out.code == Some(0);
        outputs.push(out);
        if done {
            return (kills, outputs);
        }
    }
    panic!("the enrollment did not finish after {kills} kills: {outputs:#?}");
}

/// What a person debugging a failed test wants to see: state, journal tail, log tail.
pub(super) fn diagnose(s: &Scenario) -> String {
    let st = state(s);
    let journal = journal(s);
    let tail: Vec<String> = journal
        .iter()
        .rev()
        .take(12)
        .rev()
        .map(|e| format!("{} {} {}", e.step, e.event, e.detail))
        .collect();
    let log = std::fs::read_to_string(s.root.resolve(mac::LOG_FILE)).unwrap_or_default();
    let log_tail: Vec<&str> = log
        .lines()
        .rev()
        .take(25)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!(
        "root: {}\nstep: {:?}\nlast error: {:?}\njournal:\n  {}\nlog:\n  {}\nworld: {:?}",
        s.root_dir().display(),
        st.as_ref().map(|s| s.step),
        st.as_ref().and_then(|s| s.last_error.clone()),
        tail.join("\n  "),
        log_tail.join("\n  "),
        World::load(&s.root).ok()
    )
}

/// Asserts the effects happened exactly once after a run with kills.
fn assert_exactly_once(s: &Scenario, outputs: &[RunResult]) {
    assert_enrolled(s);
    assert_eq!(successful_binds(s), 1, "one bind");
    let user = s.tenant.user(&s.user_id).unwrap();
    assert_eq!(user.password_sets, 1, "the password was set once");
    assert_eq!(
        user.password_history,
        vec![sha256_hex(s.employee.password.as_bytes())],
        "with the chosen value"
    );
    let api_key = s.tenant.api_key().expose_secret().to_owned();
    let refs: Vec<&RunResult> = outputs.iter().collect();
    assert_no_secret(s, &refs, &[&api_key, &s.employee.password]);
}

/// A script that answers every question right, enough times for any number of restarts.
pub(super) fn repeating_script(s: &Scenario, times: usize) -> Script {
    let one = clean_script(s);
    Script {
        identities: std::iter::repeat_n(one.identities[0].clone(), times).collect(),
        passwords: std::iter::repeat_n(one.passwords[0].clone(), times).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_at_every_step_boundary_then_finish_exactly_once() {
    // One scenario per step: kill -9 right after the step began (its first persisted
    // transition), and again right after it was marked done.
    let mut total = 0;
    for step in Step::ALL.iter().copied().filter(|s| *s != Step::Done) {
        let s = scenario(options(EmployeeKind::Pending)).await;
        s.write_dialog_script(&repeating_script(&s, 10)).unwrap();
        let mut killed_begin = false;
        let mut killed_done = false;
        let (kills, outputs) = run_with_kills(
            &s,
            |journal, _| {
                let began = journal.iter().any(|e| e.step == step && e.event == "begin");
                let ended = journal.iter().any(|e| e.step == step && e.event == "done");
                if began && !killed_begin {
                    killed_begin = true;
                    return true;
                }
                if ended && !killed_done {
                    killed_done = true;
                    return true;
                }
                false
            },
            2,
        )
        .await;
        assert!(kills >= 1, "step {step}: killed {kills} times");
        assert_exactly_once(&s, &outputs);
        total += kills;
    }
    eprintln!("kill -9 at step boundaries: {total}");
    assert!(total >= 28, "{total} kills at step boundaries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_at_random_moments_then_finish_exactly_once() {
    // Enrollments killed at random moments inside steps (up to eight times each), then left
    // to finish, until at least 30 random kills have happened.
    //
    // The moments are fractions of how long an enrollment takes on this machine, never fixed
    // milliseconds: a fast machine finishes a run before a fixed deadline comes and a slow
    // one is killed before it gets anywhere. One clean enrollment measures that duration.
    let calibration = scenario(options(EmployeeKind::Pending)).await;
    calibration
        .write_dialog_script(&repeating_script(&calibration, 2))
        .unwrap();
    let started = std::time::Instant::now();
    let (kills, outputs) = run_with_kills(&calibration, |_, _| false, 0).await;
    let mut whole = started.elapsed();
    assert_eq!(kills, 0);
    assert_exactly_once(&calibration, &outputs);

    let mut total = 0;
    let mut scenarios = 0;
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    let mut uniform = move || {
        rng = rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        f64::from(u32::try_from(rng >> 32).unwrap_or(u32::MAX)) / f64::from(u32::MAX)
    };
    while total < 30 {
        assert!(
            scenarios < 20,
            "only {total} kills in {scenarios} enrollments of {whole:?} each"
        );
        scenarios += 1;
        let s = scenario(options(EmployeeKind::Pending)).await;
        s.write_dialog_script(&repeating_script(&s, 20)).unwrap();
        // What is probably left of the enrollment: the whole of it, less what each killed
        // run got through (a restart repeats the interrupted step, so never below a tenth).
        let mut left = whole;
        let mut deadline = left.mul_f64(0.05 + 0.8 * uniform());
        let (kills, outputs) = run_with_kills(
            &s,
            |_, elapsed| {
                if elapsed >= deadline {
                    left = left.saturating_sub(elapsed).max(whole / 10);
                    deadline = left.mul_f64(0.05 + 0.8 * uniform());
                    return true;
                }
                false
            },
            8,
        )
        .await;
        assert_exactly_once(&s, &outputs);
        total += kills;
        if kills < 2 {
            // The measured enrollment was slower than this one (a busy moment): aim earlier.
            whole = whole.mul_f64(0.6);
        }
    }
    eprintln!("kill -9 at random moments: {total} in {scenarios} enrollments of {whole:?} each");
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

/// Serves `bytes` at `/production/jumpcloud-agent.pkg` on loopback; returns the URL.
async fn serve_package(bytes: Vec<u8>) -> String {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/production/jumpcloud-agent.pkg",
        get(move || {
            let bytes = bytes.clone();
            async move { bytes }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/production/jumpcloud-agent.pkg")
}

fn use_package_url(s: &mut Scenario, url: &str) {
    let mut agent = s.config["Agent"].as_dictionary().unwrap().clone();
    agent.remove("PackagePath");
    agent.insert("PackageURL".into(), url.into());
    s.config.insert("Agent".into(), agent.into());
    prestage::demo::write_plist(&s.root.resolve(mac::LOCAL_CONFIG), &s.config).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_package_is_downloaded_from_package_url() {
    let mut s = scenario(options(EmployeeKind::Active)).await;
    let pkg = std::fs::read(s.root.resolve(prestage::demo::DEMO_AGENT_PACKAGE)).unwrap();
    std::fs::remove_file(s.root.resolve(prestage::demo::DEMO_AGENT_PACKAGE)).unwrap();
    let url = serve_package(pkg.clone()).await;
    use_package_url(&mut s, &url);
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_eq!(out.code, Some(0), "{out:#?}\n{}", diagnose(&s));
    assert_enrolled(&s);
    // The download landed in the state directory and was checked, then installed.
    let downloaded = Store::new(&s.root).dir().join("jumpcloud-agent.pkg");
    assert_eq!(std::fs::read(&downloaded).unwrap(), pkg);
    let calls = world::calls(&s.root).unwrap();
    let check = calls
        .iter()
        .position(|c| c.tool == mac::PKGUTIL)
        .expect("signature checked");
    let install = calls
        .iter()
        .position(|c| c.tool == mac::INSTALLER)
        .expect("installed");
    assert!(check < install, "checked before installing");
    // Both tools get the package's macOS path: arguments are not rewritten under --root
    // (SPEC §1).
    assert_eq!(
        calls[check].args,
        ["--check-signature", "/var/db/prestage/jumpcloud-agent.pkg"]
    );
    assert_eq!(
        calls[install].args,
        [
            "-pkg",
            "/var/db/prestage/jumpcloud-agent.pkg",
            "-target",
            "/"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_package_not_signed_by_jumpcloud_is_refused() {
    let s = scenario(options(EmployeeKind::Active)).await;
    prestage::host::fake::world::FakePackage {
        signer: Some("Developer ID Installer: Someone Else (ABCDE12345)".into()),
        ..prestage::host::fake::world::FakePackage::jumpcloud_agent()
    }
    .write(&s.root.resolve(prestage::demo::DEMO_AGENT_PACKAGE))
    .unwrap();
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_eq!(out.code, Some(1), "{out:#?}");
    let st = state(&s).unwrap();
    assert_eq!(st.step, Step::InstallAgent);
    let err = st.last_error.unwrap();
    assert!(
        err.message.contains("is not signed by JumpCloud"),
        "{}",
        err.message
    );
    assert!(!world::calls(&s.root)
        .unwrap()
        .iter()
        .any(|c| c.tool == mac::INSTALLER));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_swiftdialog_is_installed_from_its_package() {
    let mut s = scenario(options(EmployeeKind::Active)).await;
    std::fs::remove_file(s.root.resolve(mac::DIALOG)).unwrap();
    let pkg = "/Library/Application Support/prestage/swiftDialog.pkg";
    prestage::host::fake::world::FakePackage {
        identifier: prestage::host::fake::world::DIALOG_PACKAGE_ID.into(),
        version: "2.5.6".into(),
        signer: Some("Developer ID Installer: Bart Reardon (PWA5E9TQ59)".into()),
    }
    .write(&s.root.resolve(pkg))
    .unwrap();
    let mut ui = s.config["UI"].as_dictionary().unwrap().clone();
    ui.insert("DialogPackagePath".into(), pkg.into());
    s.config.insert("UI".into(), ui.into());
    prestage::demo::write_plist(&s.root.resolve(mac::LOCAL_CONFIG), &s.config).unwrap();
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_eq!(out.code, Some(0), "{out:#?}\n{}", diagnose(&s));
    assert_enrolled(&s);
    assert!(world(&s)
        .installed_packages
        .contains(&prestage::host::fake::world::DIALOG_PACKAGE_ID.to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_swiftdialog_without_a_package_is_reported() {
    let s = scenario(options(EmployeeKind::Active)).await;
    std::fs::remove_file(s.root.resolve(mac::DIALOG)).unwrap();
    let out = run_once(&s).await;
    assert_eq!(out.code, Some(1), "{out:#?}");
    let st = state(&s).unwrap();
    let err = st.last_error.unwrap();
    assert!(err.permanent);
    assert!(
        err.message.contains("swiftDialog is not installed"),
        "{}",
        err.message
    );
    let log = std::fs::read_to_string(s.root.resolve(mac::LOG_FILE)).unwrap();
    assert!(
        log.contains("swiftDialog is not installed"),
        "in the log too"
    );
    // Nothing was done to the Mac's accounts.
    assert!(world(&s).users.contains_key("welcome"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_after_the_handover_never_covers_the_employees_desktop() {
    let s = scenario(options(EmployeeKind::Active)).await;
    s.write_dialog_script(&clean_script(&s)).unwrap();
    // A PostEnrollmentGroupID that is not in the organisation: step 14 fails for good, after
    // the employee has their account and their desktop.
    let config_path = s.root.resolve(mac::LOCAL_CONFIG);
    let mut config: plist::Dictionary = plist::from_file(&config_path).unwrap();
    config.insert(
        "PostEnrollmentGroupID".into(),
        "5e00000000000000000000ff".into(),
    );
    prestage::demo::write_plist(&config_path, &config).unwrap();

    let out = run_once(&s).await;
    assert_eq!(out.code, Some(1), "{out:#?}");
    let st = state(&s).unwrap();
    assert_eq!(st.step, Step::RemoveSetup);
    assert!(st.setup_logged_out);
    let reference = st.last_error.unwrap().reference.unwrap();
    assert!(reference.starts_with("PS-14-"), "{reference}");
    // An error window outlives prestage: give one the time to start, then look.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let calls = fake_dialog::calls(&s.root);
    assert!(
        !calls
            .iter()
            .any(|c| c.args.iter().any(|a| a.contains(&reference))),
        "no error window on the employee's desktop: {calls:#?}"
    );
    // The reference is for IT: in the log and in `status`.
    let log = std::fs::read_to_string(s.root.resolve(mac::LOG_FILE)).unwrap();
    assert!(log.contains(&reference));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_right_after_the_logout_does_not_show_the_done_screen_again() {
    let s = scenario(options(EmployeeKind::Active)).await;
    s.write_dialog_script(&repeating_script(&s, 3)).unwrap();
    let mut child = spawn(&s);
    let mut killed = false;
    for _ in 0..4000 {
        if journal(&s)
            .iter()
            .any(|e| e.event == "effect" && e.detail.starts_with("logging out"))
        {
            child.start_kill().unwrap();
            killed = true;
            break;
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(killed, "killed at the logout\n{}", diagnose(&s));
    let _ = finish(child).await;
    // The logout happened (if the kill came before it, do what launchctl would have done).
    // A `launchctl` the killed run had started may still finish the logout meanwhile (a kill
    // of prestage does not kill its child): then ours finds nobody to log out.
    if world(&s).console_user == "welcome" {
        let uid = world(&s).users["welcome"].uid.to_string();
        let status = std::process::Command::new(s.root.resolve(mac::LAUNCHCTL))
            .args(["bootout", &format!("user/{uid}")])
            .status()
            .unwrap();
        assert!(
            status.success() || world(&s).console_user != "welcome",
            "{status:?}"
        );
    }
    let out = run_once(&s).await;
    assert_eq!(out.code, Some(0), "{out:#?}\n{}", diagnose(&s));
    assert_enrolled(&s);
    let done_screens = fake_dialog::calls(&s.root)
        .iter()
        .filter(|c| c.args.iter().any(|a| a.contains("You are all set")))
        .count();
    assert_eq!(
        done_screens, 1,
        "the Done screen was shown once, before the logout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mac_without_system_context_survives_a_restart_in_every_later_step() {
    // ADE Macs may not use system context (SPEC §5): the admin-key fallback is decided once
    // and persisted, while the key itself lives only in memory. Every restart after the
    // decision must find the key again, including in step 14, which does not need it
    // otherwise.
    let s = scenario(options(EmployeeKind::Pending)).await;
    s.tenant.set_faults(prestage::sim::Faults {
        system_context_disabled: true,
        ..prestage::sim::Faults::default()
    });
    s.write_dialog_script(&repeating_script(&s, 10)).unwrap();
    let mut killed_in: Vec<Step> = Vec::new();
    let mut killed_after_fallback = false;
    let (kills, outputs) = run_with_kills(
        &s,
        |journal, _| {
            let Some(step) = journal
                .iter()
                .rev()
                .find(|e| e.event == "begin")
                .map(|e| e.step)
            else {
                return false;
            };
            if step > Step::JoinGroup && !killed_in.contains(&step) {
                killed_in.push(step);
                return true;
            }
            // And right after the engine decided on the fallback (the flag is persisted, the
            // key is not).
            if !killed_after_fallback
                && journal
                    .iter()
                    .any(|e| e.event == "effect" && e.detail == "admin fallback")
            {
                killed_after_fallback = true;
                return true;
            }
            false
        },
        12,
    )
    .await;
    assert!(kills >= 6, "killed {kills} times in {killed_in:?}");
    assert!(killed_in.contains(&Step::RemoveSetup), "{killed_in:?}");
    assert!(
        killed_after_fallback,
        "killed once more right after the fallback was decided"
    );
    assert_exactly_once(&s, &outputs);
    assert!(state(&s).unwrap().admin_fallback);
}
