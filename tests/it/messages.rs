//! Snapshot tests (insta) of the messages an admin reads: `prestage config check` on every bad
//! fixture, `prestage status` while running, after a failure and when done, and the one line
//! `prestage run` prints when it stops for good. Filters replace what changes from run to run
//! (temporary paths, the random part of reference codes, run ids, JumpCloud ids, timestamps,
//! durations), so a snapshot changes only when a message does. Snapshots live in
//! `tests/it/snapshots/`; review a changed one with `cargo insta review` (CI sets `CI=true`, so
//! a mismatch fails instead of writing a `.snap.new`).

use std::path::Path;
use std::process::{Command, Output};

use prestage::demo::{EmployeeKind, Scenario, ScenarioOptions};
use prestage::engine::state::Step;
use prestage::host::fake::world::FakePackage;
use prestage::paths::mac;

use super::engine::{clean_script, options, run_once, scenario, spawn, EXE};
use super::util::{assert_exit, wait_for_state};

/// The filters every snapshot here goes through, in order (earlier ones win).
fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    let repo = env!("CARGO_MANIFEST_DIR");
    s.add_filter(&regex::escape(repo), "[REPO]");
    let tmp = std::env::temp_dir();
    let tmp = tmp.to_string_lossy();
    let tmp = tmp.trim_end_matches('/');
    // tempfile's folders (`.tmpXXXXXX`) and the scenarios' simulated Macs.
    s.add_filter(
        &format!(r"{}/(\.tmp|prestage-demo-)[A-Za-z0-9]+", regex::escape(tmp)),
        "[TMP]",
    );
    // Reference codes: `PS-<step>-` then two characters of the run id and four random hex.
    s.add_filter(r"\bPS-(\d\d)-[0-9A-Fa-f]{6}\b", "PS-$1-[REF]");
    // JumpCloud object ids (24 hex) before run ids (8 hex).
    s.add_filter(r"\b[0-9a-f]{24}\b", "[ID]");
    s.add_filter(r"\b[0-9a-f]{8}\b", "[RUN_ID]");
    s.add_filter(
        r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?( UTC)?",
        "[TIME]",
    );
    s.add_filter(r"\b\d+(\.\d+)?\s?(ms|s|min|h)\b", "[DURATION]");
    s.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    s
}

/// Exit code, stdout and stderr of one command, as one text.
fn shown(out: &Output) -> String {
    format!(
        "exit code: {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn status(s: &Scenario) -> String {
    let out = Command::new(EXE)
        .args(["status", "--root"])
        .arg(s.root_dir())
        .output()
        .expect("run prestage status");
    shown(&out)
}

#[test]
fn config_check_on_every_bad_fixture() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/bad");
    let mut fixtures: Vec<_> = std::fs::read_dir(&dir)
        .expect("the bad fixtures")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 20, "{fixtures:?}");
    let settings = settings();
    for fixture in fixtures {
        let name = fixture.file_stem().unwrap().to_string_lossy().into_owned();
        let out = Command::new(EXE)
            .args(["config", "check"])
            .arg(&fixture)
            .output()
            .expect("run prestage config check");
        assert_ne!(out.status.code(), Some(0), "{name} passed: {}", shown(&out));
        settings.bind(|| insta::assert_snapshot!(format!("config_check__{name}"), shown(&out)));
    }
}

/// A scenario whose Setup Assistant never hands over: `run` waits at step 1 for good.
fn waiting_scenario() -> ScenarioOptions {
    ScenarioOptions {
        setup_assistant_ms: 3_600_000,
        ..options(EmployeeKind::Active)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_while_running() {
    let s = scenario(waiting_scenario()).await;
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let mut child = spawn(&s);
    // At step 2 for good, once its first attempt is recorded.
    wait_for_state(&s, |st| {
        (st.step == Step::WaitDesktop && st.attempts == 1 && st.runs == 1).then_some(())
    })
    .await;
    let text = status(&s);
    child.kill().await.unwrap();
    settings().bind(|| insta::assert_snapshot!(text));
}

/// An agent package signed by someone else: step 4 fails for good, with a reference code.
async fn failed_scenario() -> (Scenario, super::engine::RunResult) {
    let s = scenario(options(EmployeeKind::Active)).await;
    FakePackage {
        signer: Some("Developer ID Installer: Someone Else (ABCDE12345)".into()),
        ..FakePackage::jumpcloud_agent()
    }
    .write(&s.root.resolve(prestage::demo::DEMO_AGENT_PACKAGE))
    .unwrap();
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_exit(&s, &out, 1);
    (s, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_run_after_a_permanent_failure() {
    let (s, out) = failed_scenario().await;
    let settings = settings();
    settings.bind(|| insta::assert_snapshot!("run_permanent_failure", out.stderr));
    settings.bind(|| insta::assert_snapshot!("status_failed", status(&s)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_when_done() {
    let s = scenario(options(EmployeeKind::Pending)).await;
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    super::util::assert_success(&s, &out);
    settings().bind(|| insta::assert_snapshot!(status(&s)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_a_bad_configuration() {
    let s = scenario(options(EmployeeKind::Active)).await;
    let mut config = s.config.clone();
    config.insert("OrgID".into(), "not-an-id".into());
    prestage::demo::write_plist(&s.root.resolve(mac::LOCAL_CONFIG), &config).unwrap();
    let out = run_once(&s).await;
    assert_ne!(out.code, Some(0), "{out:#?}");
    let settings = settings();
    settings.bind(|| {
        insta::assert_snapshot!(format!(
            "exit code: {:?}\n--- stderr ---\n{}",
            out.code, out.stderr
        ));
    });
    settings.bind(|| insta::assert_snapshot!("status_bad_configuration", status(&s)));
}
