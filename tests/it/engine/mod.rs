//! Integration tests: the enrollment engine end to end. Every test runs the real `prestage run`
//! process against a simulated Mac (`--root` with the fake macOS tools and the fake
//! swiftDialog answering as a scripted employee) and the simulated JumpCloud tenant and agent,
//! which live in the test process. Crash safety is proven by `kill -9` of that process at step
//! boundaries and at random moments, then restarting it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::util::diagnose;
use prestage::demo::{EmployeeKind, Scenario, ScenarioOptions};
use prestage::engine::state::{JournalEntry, Loaded, State, Step, Store};
use prestage::host::fake::world::{self, World};
use prestage::paths::mac;
use prestage::sim::{AgentBehaviour, SimOptions};
use prestage::ui::scripted::{Script, ScriptedIdentity, ScriptedPassword};
use tokio::process::{Child, Command};

mod crash;
mod enroll;
mod failures;
mod migrate;
mod packages;

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

/// Runs the enrollment to the end, killed (kill -9) once as `step` begins and once as it is
/// done: the crash walks' "every step boundary".
pub(super) async fn run_killed_at_begin_and_done(
    s: &Scenario,
    step: Step,
) -> (usize, Vec<RunResult>) {
    let mut killed_begin = false;
    let mut killed_done = false;
    run_with_kills(
        s,
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
    .await
}

/// A script that answers every question right, enough times for any number of restarts.
pub(super) fn repeating_script(s: &Scenario, times: usize) -> Script {
    let one = clean_script(s);
    Script {
        identities: std::iter::repeat_n(one.identities[0].clone(), times).collect(),
        passwords: std::iter::repeat_n(one.passwords[0].clone(), times).collect(),
    }
}
