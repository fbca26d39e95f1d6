//! The engine end to end: `kill -9` at step boundaries and at random moments, then a restart
//! that finishes exactly once.

use super::super::util::{assert_success, diagnose, wait_for_state};
use super::sha2_free::sha256_hex;
use super::{
    assert_enrolled, assert_no_secret, base_config, clean_script, finish, journal, options,
    repeating_script, run_killed_at_begin_and_done, run_once, run_with_kills, scenario, spawn,
    state, successful_binds, world, RunResult,
};
use prestage::demo::{EmployeeKind, Scenario};
use prestage::engine::state::Step;
use prestage::paths::mac;
use prestage::ui::fake_dialog;
use prestage::ui::scripted::ScriptedIdentity;
use secrecy::ExposeSecret;
use std::time::Duration;

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
    let until = wait_for_state(&s, |st| st.identity.cooldown_until_ms).await;
    child.kill().await.unwrap();
    let _ = child.wait().await;
    let killed_at = prestage::engine::clock::now_ms();
    assert!(
        until > killed_at,
        "the cool-down is still running at the restart"
    );

    // The restart honours the persisted cool-down: no question before it ends.
    let out = run_once(&s).await;
    assert_success(&s, &out);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_at_every_step_boundary_then_finish_exactly_once() {
    // One scenario per step: kill -9 right after the step began (its first persisted
    // transition), and again right after it was marked done.
    let mut total = 0;
    for step in Step::ALL.iter().copied().filter(|s| *s != Step::Done) {
        let s = scenario(options(EmployeeKind::Pending)).await;
        s.write_dialog_script(&repeating_script(&s, 10)).unwrap();
        let (kills, outputs) = run_killed_at_begin_and_done(&s, step).await;
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
    assert_success(&s, &out);
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
    assert!(state(&s).unwrap().org.admin_fallback);
}
