//! Integration tests: waking on change, not on a poll (issue 11). The console user is watched
//! through `/dev/console`'s metadata, so `stat` runs only when the console changed; a definite
//! answer to a write is not read back. Behaviour only: the figures are the benchmark's
//! (`cargo bench --bench enrollment`).

use std::path::Path;
use std::time::Duration;

use prestage::demo::{EmployeeKind, Scenario, ScenarioOptions};
use prestage::engine::state::{Loaded, Step, Store};
use prestage::engine::Outcome;
use prestage::host::fake::world::{self, World};
use prestage::paths::mac;

use super::engine::{clean_script, options, run_once, scenario, successful_binds};
use super::util::assert_success;

const FAKES: &str = env!("CARGO_BIN_EXE_prestage-fake");

fn step_of(s: &Scenario) -> Option<Step> {
    match Store::new(&s.root).load() {
        Ok(Loaded::Resumed(state)) => Some(state.step),
        _ => None,
    }
}

fn stat_calls(s: &Scenario) -> usize {
    world::calls(&s.root)
        .unwrap()
        .iter()
        .filter(|c| c.tool == mac::STAT)
        .count()
}

fn tool_calls(s: &Scenario) -> usize {
    world::calls(&s.root).unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_that_does_not_come_runs_no_tool_and_one_that_comes_is_seen() {
    // The in-process engine uses the simulation's pacing (a 100-ms tool gap): polling `stat`
    // would spawn about 30 processes in the 3 s below.
    let s = Scenario::new(
        ScenarioOptions {
            kind: EmployeeKind::Pending,
            bootout_kills_caller: false,
            employee_login_delay_ms: None,
            ..ScenarioOptions::default()
        },
        Path::new(FAKES),
    )
    .await
    .unwrap();
    let engine = s.engine(s.scripted_ui(clean_script(&s)).unwrap()).unwrap();
    let driver = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while step_of(&s) != Some(Step::WaitLogin) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never reached WaitLogin"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Parked, waiting for a login that does not come.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = tool_calls(&s);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let during = tool_calls(&s) - before;
        assert_eq!(step_of(&s), Some(Step::WaitLogin));
        assert!(
            during <= 1,
            "{during} tool processes while nothing changed at the console"
        );
        // The employee logs in (macOS changes /dev/console): the engine notices it through the
        // file and goes on. The new owner is the UID `id -u` printed for the employee's account
        // (wait_account), so no `stat` is needed to name it; a fake that may not chown the
        // console file (not run as root) only changes its times, which runs `stat` once.
        let stats = stat_calls(&s);
        World::update(&s.root, |w| w.employee_logs_in("ada.lovelace", 0)).unwrap();
        stats
    };
    let (outcome, stats_before_login) = tokio::time::timeout(Duration::from_secs(90), async {
        tokio::join!(engine.run(std::future::pending()), driver)
    })
    .await
    .expect("the enrollment hung");
    assert_eq!(outcome, Outcome::Done);
    let calls = world::calls(&s.root).unwrap();
    let stats_after: Vec<_> = calls
        .iter()
        .filter(|c| c.tool == mac::STAT)
        .skip(stats_before_login)
        .collect();
    if rustix::process::geteuid().is_root() {
        assert!(
            stats_after.is_empty(),
            "stat after the login: {stats_after:?}"
        );
    } else {
        assert!(
            !stats_after.is_empty() && stats_after.len() <= 2,
            "stat after the login: {stats_after:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definite_answers_are_not_read_back() {
    let s = scenario(options(EmployeeKind::Pending)).await;
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_eq!(successful_binds(&s), 1);
    let requests = s.tenant.requests();
    let reads = |suffix: &str| {
        requests
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with(suffix))
            .count()
    };
    // The bind answered 204: its list is not read back.
    assert_eq!(reads("/associations"), 0, "{requests:#?}");
    // The group add answered 204: membership is not read before or after.
    assert_eq!(reads("/memberof"), 0, "{requests:#?}");
    // A first password set: the user is not read before it (identify's facts stand).
    let user_reads = requests
        .iter()
        .filter(|r| r.method == "GET" && r.path == format!("/api/systemusers/{}", s.user_id))
        .count();
    assert_eq!(user_reads, 0, "{requests:#?}");
    // One report at the start, one at the end: not at every phase.
    let reports = requests
        .iter()
        .filter(|r| r.method == "PUT" && r.path.starts_with("/api/systems/"))
        .count();
    assert!(reports <= 2, "{reports} directory reports");
}
