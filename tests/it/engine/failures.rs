//! The engine end to end: permanent failures, what the employee and IT are shown.

use super::super::util::{assert_exit, assert_never, wait_until};
use super::{
    base_config, clean_script, instant_agent, options, run_once, scenario, sim_options, state,
    world, EXE,
};
use prestage::demo::EmployeeKind;
use prestage::engine::state::Step;
use prestage::paths::mac;
use prestage::sim::{AgentBehaviour, AgentMode};
use prestage::ui::fake_dialog;
use std::time::Duration;

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
    assert_exit(&s, &out, 1);
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
    wait_until(&s, &format!("the error window showing {reference}"), shown).await;
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
    assert_exit(&s, &out, 1);
    let st = state(&s).unwrap();
    assert_eq!(st.step, Step::WaitAccount);
    // One restart for the whole wait, as JumpCloud's script does.
    assert_eq!(st.takeover.kickstarts, 1);
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
    assert_exit(&s, &out, 1);
    let st = state(&s).unwrap();
    assert_eq!(st.step, Step::RemoveSetup);
    assert!(st.handover.setup_logged_out);
    let reference = st.last_error.unwrap().reference.unwrap();
    assert!(reference.starts_with("PS-14-"), "{reference}");
    // An error window outlives prestage, so one it started may record its call only after the
    // run ended. Nothing positive marks "no window will come": watch for a bounded while, long
    // enough for a window started at the end of the run to have recorded its call.
    assert_never(
        &s,
        "an error window on the employee's desktop",
        Duration::from_millis(1500),
        || {
            fake_dialog::calls(&s.root)
                .iter()
                .any(|c| c.args.iter().any(|a| a.contains(&reference)))
        },
    )
    .await;
    // The reference is for IT: in the log and in `status`.
    let log = std::fs::read_to_string(s.root.resolve(mac::LOG_FILE)).unwrap();
    assert!(log.contains(&reference));
}
