//! What admins get from their other onboarding tools (issue 13): webhooks, computer names,
//! preflight checks and the help button, end to end against the fakes and the simulated tenant.

use std::time::Duration;

use prestage::demo::{EmployeeKind, Scenario};
use prestage::engine::state::Step;
use prestage::sim::WebhookReceiver;
use prestage::ui::scripted::Script;
use secrecy::ExposeSecret;

use super::engine::{
    assert_enrolled, assert_no_secret, base_config, clean_script, options, run_once,
    run_with_kills, scenario, system_id, RunResult,
};
use super::util::{assert_exit, assert_success, wait_until};

/// The secret part of every receiver's URL (Slack's and Teams' URLs are bearer tokens).
const HOOK_SECRET: &str = "XOXB-hook-secret-4f9a2c";

fn webhooks_config(receiver: &WebhookReceiver) -> plist::Value {
    let hook = |kind: &str, path: &str| {
        let mut d = plist::Dictionary::new();
        d.insert(
            "URL".into(),
            receiver
                .url(&format!("{path}/{HOOK_SECRET}"))
                .to_string()
                .into(),
        );
        d.insert("Kind".into(), kind.into());
        plist::Value::Dictionary(d)
    };
    plist::Value::Array(vec![
        hook("Generic", "generic"),
        hook("Slack", "slack"),
        hook("Teams", "teams"),
    ])
}

fn repeating(s: &Scenario, times: usize) -> Script {
    let one = clean_script(s);
    Script {
        identities: std::iter::repeat_n(one.identities[0].clone(), times).collect(),
        passwords: std::iter::repeat_n(one.passwords[0].clone(), times).collect(),
    }
}

/// Each receiver got `Started` then `Finished`, once each, in its own format; no secret in any.
fn assert_started_and_finished_once(s: &Scenario, receiver: &WebhookReceiver) {
    assert_started_and_finished(s, receiver, 0);
}

/// As [`assert_started_and_finished_once`], where up to `kills` messages may have come twice: a
/// kill between the receiver's answer and the outbox's record sends that message again at the
/// next start (at least once, never lost). Such a copy carries the same `Idempotency-Key`, so it
/// is told from a message enqueued twice, which is never allowed; the copies are counted once.
fn assert_started_and_finished(s: &Scenario, receiver: &WebhookReceiver, kills: usize) {
    let all = receiver.received();
    assert!(
        all.iter().all(|r| r.idempotency_key.is_some()),
        "every message carries an Idempotency-Key: {all:#?}"
    );
    let mut seen = std::collections::BTreeSet::new();
    let got: Vec<_> = all
        .iter()
        .filter(|r| seen.insert(r.idempotency_key.clone()))
        .cloned()
        .collect();
    assert!(
        all.len() - got.len() <= kills,
        "{} copies after {kills} kills: {all:#?}",
        all.len() - got.len()
    );
    let generic: Vec<_> = got
        .iter()
        .filter(|r| r.path.starts_with("/generic/"))
        .collect();
    let events: Vec<&str> = generic
        .iter()
        .filter_map(|r| r.body["event"].as_str())
        .collect();
    assert_eq!(events, ["Started", "Finished"], "{got:#?}");
    let finished = &generic[1].body;
    assert_eq!(finished["user"], "ada.lovelace");
    assert_eq!(finished["systemID"], system_id(s).as_str());
    assert_eq!(finished["step"], "cleanup");
    assert!(finished["durationSeconds"].is_u64());
    assert!(generic[0].body["user"].is_null(), "user only on Finished");
    for kind in ["slack", "teams"] {
        let mine: Vec<_> = got
            .iter()
            .filter(|r| r.path.starts_with(&format!("/{kind}/")))
            .collect();
        assert_eq!(mine.len(), 2, "{kind}: {mine:#?}");
    }
    let slack: Vec<_> = got
        .iter()
        .filter(|r| r.path.starts_with("/slack/"))
        .collect();
    assert!(slack[0].body["text"].as_str().unwrap().contains("started"));
    assert!(slack[1].body["text"].as_str().unwrap().contains("enrolled"));
    let teams: Vec<_> = got
        .iter()
        .filter(|r| r.path.starts_with("/teams/"))
        .collect();
    assert_eq!(
        teams[1].body["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let api_key = s.tenant.api_key().expose_secret().to_owned();
    for r in &got {
        for secret in [HOOK_SECRET, api_key.as_str(), s.employee.password.as_str()] {
            assert!(
                !r.raw.contains(secret),
                "a secret in a message to {}",
                r.path
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_arrive_once_each_through_a_receiver_that_fails_half_the_time() {
    let receiver = WebhookReceiver::start(true).await.unwrap();
    let mut opts = options(EmployeeKind::Pending);
    let mut config = base_config(&[], &[]);
    config.insert("Webhooks".into(), webhooks_config(&receiver));
    opts.base_config = Some(config);
    let s = scenario(opts).await;
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_enrolled(&s);
    assert_started_and_finished_once(&s, &receiver);
    // Every accepted message was refused once before.
    assert!(
        receiver.posts() >= 2 * receiver.received().len(),
        "{}",
        receiver.posts()
    );
    assert_no_secret(&s, &[&out], &[HOOK_SECRET]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_arrive_through_kill_9_at_step_boundaries_and_a_resent_copy_is_marked() {
    let receiver = WebhookReceiver::start(true).await.unwrap();
    let mut opts = options(EmployeeKind::Pending);
    let mut config = base_config(&[], &[]);
    config.insert("Webhooks".into(), webhooks_config(&receiver));
    opts.base_config = Some(config);
    let s = scenario(opts).await;
    s.write_dialog_script(&repeating(&s, 8)).unwrap();
    // Kill as these steps begin: right after Started was recorded (its first POST refused),
    // and around the end.
    let mut targets = vec![
        Step::InstallAgent,
        Step::Bind,
        Step::RemoveSetup,
        Step::Cleanup,
    ];
    let (kills, outputs) = run_with_kills(
        &s,
        |journal, _| {
            let Some(next) = targets.first().copied() else {
                return false;
            };
            let hit = journal.iter().any(|e| e.step == next && e.event == "begin");
            if hit {
                targets.remove(0);
            }
            hit
        },
        4,
    )
    .await;
    assert_eq!(kills, 4);
    assert_enrolled(&s);
    assert_started_and_finished(&s, &receiver, kills);
    let refs: Vec<&RunResult> = outputs.iter().collect();
    assert_no_secret(&s, &refs, &[HOOK_SECRET]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_is_sent_with_its_reference_and_step() {
    let receiver = WebhookReceiver::start(false).await.unwrap();
    let mut opts = options(EmployeeKind::Pending);
    let mut config = base_config(&[], &[]);
    config.insert("Webhooks".into(), webhooks_config(&receiver));
    let mut ui = plist::Dictionary::new();
    ui.insert("HelpMessage".into(), HELP.into());
    config.insert("UI".into(), ui.into());
    opts.base_config = Some(config);
    let s = scenario(opts).await;
    // The agent package is not there: the install fails for good.
    std::fs::remove_file(s.root.resolve(prestage::demo::DEMO_AGENT_PACKAGE)).unwrap();
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = tokio::time::timeout(Duration::from_secs(120), run_once(&s))
        .await
        .unwrap();
    assert_exit(&s, &out, 1);
    let got = receiver.received();
    let failed: Vec<_> = got
        .iter()
        .filter(|r| r.path.starts_with("/generic/") && r.body["event"] == "Failed")
        .collect();
    assert_eq!(failed.len(), 1, "{got:#?}");
    let reference = failed[0].body["reference"].as_str().unwrap();
    assert!(reference.starts_with("PS-04-"), "{reference}");
    assert_eq!(failed[0].body["step"], "install_agent");
    // The error window's help text carries that reference code. prestage starts that window
    // and exits without waiting for it (it stays up after the process ends), so the fake
    // swiftDialog may record its call a moment after `run` returned.
    wait_until(&s, "the error window", || {
        prestage::ui::fake_dialog::calls(&s.root).len() >= 2
    })
    .await;
    let calls = prestage::ui::fake_dialog::calls(&s.root);
    let last = help_of(&calls.last().unwrap().args).unwrap();
    assert!(last.contains(reference), "{last}");
    // Only the error window carries it: the welcome window before it had the enrollment id.
    assert!(!help_of(&calls[0].args).unwrap().contains(reference));
}

const HELP: &str = "Stuck? Call IT on **+1 555 0100**.\nSerial: %serial%, code: %reference%";

fn help_of(args: &[String]) -> Option<String> {
    let i = args.iter().position(|a| a == "--helpmessage")?;
    args.get(i + 1).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_window_carries_the_help_text_with_the_serial_and_the_enrollment_id() {
    let mut opts = options(EmployeeKind::Pending);
    let mut config = base_config(&[], &[]);
    let mut ui = plist::Dictionary::new();
    ui.insert("HelpMessage".into(), HELP.into());
    config.insert("UI".into(), ui.into());
    opts.base_config = Some(config);
    let s = scenario(opts).await;
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    let run_id = super::engine::state(&s).unwrap().run_id;
    let calls = prestage::ui::fake_dialog::calls(&s.root);
    // Welcome/progress, identity, password, done at least.
    assert!(calls.len() >= 4, "{calls:#?}");
    for call in &calls {
        let help = help_of(&call.args).unwrap_or_else(|| panic!("no help: {:?}", call.args));
        assert!(help.contains("Serial: C02XK1JHJG5J"), "{help}");
        assert!(help.contains(&format!("code: {run_id}")), "{help}");
        assert!(call.unknown.is_empty(), "{:?}", call.unknown);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mac_and_the_system_are_named_from_the_template_once_through_kill_9() {
    let mut opts = options(EmployeeKind::Pending);
    let mut config = base_config(&[], &[]);
    config.insert("ComputerName".into(), "Acme %serial:-6% %user%".into());
    opts.base_config = Some(config);
    let s = scenario(opts).await;
    prestage::host::fake::world::World::update(&s.root, |w| {
        w.machine.serial = "C02XK1JHJG5J".into();
    })
    .unwrap();
    s.write_dialog_script(&repeating(&s, 4)).unwrap();
    let mut killed = false;
    let (kills, _) = run_with_kills(
        &s,
        |journal, _| {
            // Right after the name was decided, before scutil ran.
            let hit = !killed
                && journal
                    .iter()
                    .any(|e| e.event == "effect" && e.detail.starts_with("computer name"));
            killed |= hit;
            hit
        },
        1,
    )
    .await;
    assert_eq!(kills, 1);
    assert_enrolled(&s);
    let m = super::engine::world(&s).machine;
    assert_eq!(m.computer_name.as_deref(), Some("Acme JHJG5J ada.lovelace"));
    assert_eq!(
        m.local_host_name.as_deref(),
        Some("Acme-JHJG5J-ada-lovelace")
    );
    assert_eq!(m.host_name.as_deref(), Some("Acme-JHJG5J-ada-lovelace"));
    // A kill between scutil and the record sets the same names again, never other ones.
    let distinct: std::collections::BTreeSet<_> = m.names_set.iter().collect();
    assert_eq!(distinct.len(), 3, "{:?}", m.names_set);
    let sys = s
        .tenant
        .systems()
        .into_iter()
        .find(|x| x.id == system_id(&s))
        .unwrap();
    assert_eq!(sys.display_name, "Acme JHJG5J ada.lovelace");
}

/// Everything the windows were told: their arguments and the command-file lines they read.
fn everything_shown(s: &Scenario) -> String {
    let mut out = String::new();
    for call in prestage::ui::fake_dialog::calls(&s.root) {
        out.push_str(&call.args.join(" "));
        out.push('\n');
    }
    for line in prestage::ui::fake_dialog::command_lines(&s.root) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mac_at_10_percent_on_battery_waits_for_the_charger_then_continues() {
    let s = scenario(options(EmployeeKind::Pending)).await;
    let plug_in_at = prestage::host::fake::world::now_ms() + 2_500;
    prestage::host::fake::world::World::update(&s.root, |w| {
        w.machine.on_battery = true;
        w.machine.battery_percent = Some(10);
        w.machine.charger_at_ms = Some(plug_in_at);
    })
    .unwrap();
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_enrolled(&s);
    assert!(
        everything_shown(&s).contains("The battery is at 10 %"),
        "{}",
        everything_shown(&s)
    );
    // Nothing was installed before the charger was in, and the wait was cheap.
    let calls = prestage::host::fake::world::calls(&s.root).unwrap();
    let install = calls
        .iter()
        .find(|c| c.tool == prestage::paths::mac::INSTALLER)
        .unwrap();
    assert!(install.at_ms >= plug_in_at, "installed while on battery");
    let pmsets = calls
        .iter()
        .filter(|c| c.tool == prestage::paths::mac::PMSET)
        .count();
    assert!((2..=4).contains(&pmsets), "{pmsets} pmset runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_network_path_shows_the_offline_screen_and_waits_without_a_retry_storm() {
    let s = scenario(options(EmployeeKind::Pending)).await;
    // APIBaseURL points at a port where nothing listens yet: "no network".
    let spare = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let port = spare.local_addr().unwrap().port();
    drop(spare);
    let path = s.root.resolve(prestage::paths::mac::LOCAL_CONFIG);
    let mut config: plist::Dictionary = plist::from_file(&path).unwrap();
    config.insert(
        "APIBaseURL".into(),
        format!("http://127.0.0.1:{port}").into(),
    );
    plist::to_file_xml(&path, &config).unwrap();
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let child = super::engine::spawn(&s);
    // Offline for a while: the window says so, and JumpCloud hears nothing.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !everything_shown(&s).contains("cannot reach the internet") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            everything_shown(&s)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(s.tenant.requests().is_empty());
    // The network comes back: a path to the tenant on that port.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let tenant = s.tenant.url();
    let target = format!("{}:{}", tenant.host_str().unwrap(), tenant.port().unwrap());
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    let out = super::engine::finish(child).await;
    assert_success(&s, &out);
    assert_enrolled(&s);
    let log = std::fs::read_to_string(s.root.resolve(prestage::paths::mac::LOG_FILE)).unwrap();
    assert_eq!(
        log.matches("no network path to APIBaseURL").count(),
        1,
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_setup_account_is_reported_once() {
    let receiver = WebhookReceiver::start(false).await.unwrap();
    let mut opts = options(EmployeeKind::Pending);
    opts.grant_secure_token = false;
    let mut config = base_config(&[], &[]);
    config.insert("Webhooks".into(), webhooks_config(&receiver));
    config.insert("SecureTokenTimeoutSeconds".into(), 1.into());
    opts.base_config = Some(config);
    let s = scenario(opts).await;
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    let events: Vec<String> = receiver
        .received()
        .iter()
        .filter(|r| r.path.starts_with("/generic/"))
        .filter_map(|r| r.body["event"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(events, ["Started", "AccountKept", "Finished"], "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_while_the_last_messages_wait_for_a_receiver_sends_them_at_the_next_start() {
    let receiver = WebhookReceiver::start(false).await.unwrap();
    receiver.set_down(true);
    let mut opts = options(EmployeeKind::Pending);
    let mut config = base_config(&[], &[]);
    config.insert("Webhooks".into(), webhooks_config(&receiver));
    opts.base_config = Some(config);
    let s = scenario(opts).await;
    s.write_dialog_script(&repeating(&s, 4)).unwrap();
    // The enrollment is done and its last run waits (bounded) for the receivers before the
    // bootout: killed there, the Mac is finished with `Finished` still in the outbox.
    let mut killed_in_drain = false;
    let (kills, outputs) = run_with_kills(
        &s,
        |journal, _| {
            let hit = !killed_in_drain
                && journal
                    .iter()
                    .any(|e| e.step == Step::Done && e.detail == "cleanup finished");
            killed_in_drain |= hit;
            if hit {
                receiver.set_down(false);
            }
            hit
        },
        1,
    )
    .await;
    assert_eq!(kills, 1);
    assert_enrolled(&s);
    let last = outputs.last().unwrap();
    assert_success(&s, last);
    // The start that found a finished Mac sent what was pending, then booted out.
    let finished = receiver
        .received()
        .iter()
        .filter(|r| r.path.starts_with("/generic/") && r.body["event"] == "Finished")
        .count();
    assert_eq!(finished, 1, "{:#?}", receiver.received());
}
