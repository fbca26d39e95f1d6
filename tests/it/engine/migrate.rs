//! State files the engine did not write in its current format. A Mac mid-enrollment gets a
//! new package: the state file the previous release wrote (format version 1, the flat layout)
//! must load and the enrollment finish from it, exactly once. And a state that breaks the
//! engine's invariants stops with a reference code instead of retrying forever.

use std::time::Duration;

use super::{
    assert_enrolled, journal, options, repeating_script, run_once, run_with_kills, scenario, spawn,
    state, successful_binds,
};
use prestage::demo::{EmployeeKind, Scenario};
use prestage::engine::phases::BindPhase;
use prestage::engine::state::{Loaded, State, Step, Store, STATE_VERSION};
use prestage::paths::mac;
use serde_json::Value;

/// A state file written by the release before format version 2 (`prestage run` of commit
/// 1fd3da0, killed right after `wait_account` began: agent registered, employee identified,
/// password set, bind confirmed).
const V1_AT_WAIT_ACCOUNT: &str = include_str!("../../fixtures/state/v1-wait-account.json");

/// Runs a fresh enrollment until `step` has begun, then kills it (kill -9).
async fn run_until_begun(s: &Scenario, step: Step) {
    let mut child = spawn(s);
    loop {
        if journal(s)
            .iter()
            .any(|e| e.step == step && e.event == "begin")
        {
            child.start_kill().unwrap();
            let _ = child.wait().await;
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before {step}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Moves every `*_ms` time in `value` by `delta` milliseconds.
fn shift_times(value: &mut Value, delta: i64) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    Value::Number(n) if key.ends_with("_ms") => {
                        let moved = n.as_i64().unwrap() + delta;
                        *v = Value::from(moved);
                    }
                    other => shift_times(other, delta),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| shift_times(v, delta)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_file_of_format_version_1_loads_and_the_enrollment_finishes_from_it() {
    let s = scenario(options(EmployeeKind::Pending)).await;
    s.write_dialog_script(&repeating_script(&s, 10)).unwrap();
    // This Mac and tenant as far as the fixture got: the agent registered, the user bound.
    run_until_begun(&s, Step::WaitAccount).await;
    let now = state(&s).expect("state");
    // The fixture, with this scenario's identifiers and times (its own are another run's).
    let mut old: Value = serde_json::from_str(V1_AT_WAIT_ACCOUNT).unwrap();
    assert_eq!(old["version"], 1);
    let delta =
        i64::try_from(now.step_started_ms).unwrap() - old["step_started_ms"].as_i64().unwrap();
    shift_times(&mut old, delta);
    let user = now.identity.user.clone().expect("identified");
    old["run_id"] = now.run_id.clone().into();
    old["user"]["id"] = user.id.clone().into();
    old["user"]["local_name"] = user.local_name.clone().into();
    old["system_key"] = now.agent.system_key.clone().into();
    old["org_id"] = now.org.id.clone().into();
    old["setup_user"] = now.identity.setup_user.clone().into();
    old["agent_log_offset"] = now.bind.log_offset().into();
    old["policy"] = serde_json::to_value(&now.org.policy).unwrap();
    let path = s.root.resolve(mac::STATE_FILE);
    std::fs::write(&path, serde_json::to_vec_pretty(&old).unwrap()).unwrap();

    // It loads as today's state, every fact in its phase.
    let Loaded::Resumed(loaded) = Store::new(&s.root).load().unwrap() else {
        panic!("the version 1 state was not resumed");
    };
    assert_eq!(loaded.version, STATE_VERSION);
    assert_eq!(loaded.step, Step::WaitAccount);
    assert_eq!(loaded.identity.user.as_ref(), Some(&user));
    assert!(loaded.agent.installed);
    assert!(
        matches!(loaded.bind, BindPhase::Confirmed { .. }),
        "{:?}",
        loaded.bind
    );
    assert_eq!(loaded.bind.log_offset(), now.bind.log_offset());
    assert_eq!(loaded.steps.len(), now.steps.len());

    // And the enrollment finishes from it, exactly once.
    let (_, outputs) = run_with_kills(&s, |_, _| false, 0).await;
    assert_eq!(outputs.last().and_then(|o| o.code), Some(0), "{outputs:#?}");
    assert_enrolled(&s);
    assert_eq!(successful_binds(&s), 1, "one bind");
    let tenant_user = s.tenant.user(&s.user_id).unwrap();
    assert_eq!(tenant_user.password_sets, 1, "the password was set once");
    let done = state(&s).expect("state");
    assert_eq!(done.version, STATE_VERSION, "saved in today's format");
    assert!(done.takeover.signal.is_some(), "{done:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_after_identify_without_an_employee_stops_with_a_reference_code() {
    let s = scenario(options(EmployeeKind::Pending)).await;
    s.write_dialog_script(&repeating_script(&s, 2)).unwrap();
    // A damaged state: past identify, nobody identified.
    let store = Store::new(&s.root);
    store.ensure_dir().unwrap();
    let mut broken = State::new(prestage::engine::clock::now_ms());
    broken.step = Step::RemoveSetup;
    store.save(&broken).unwrap();

    let out = run_once(&s).await;
    assert_ne!(out.code, Some(0), "{out:#?}");
    let st = state(&s).expect("state");
    let err = st.last_error.expect("the failure is recorded");
    assert!(err.permanent, "{err:?}");
    assert_eq!(err.step, Step::RemoveSetup);
    let reference = err.reference.expect("a reference code");
    assert!(reference.starts_with("PS-14-"), "{reference}");
    assert!(err.message.contains("names no employee"), "{}", err.message);
    assert!(out.stderr.contains(&reference), "{}", out.stderr);
    // Stopped at once: no retry.
    assert!(
        !journal(&s).iter().any(|e| e.event == "retry"),
        "{:#?}",
        journal(&s)
    );
}
