//! What `prestage demo` prints: the set-up, each step as it finishes, and a summary of the
//! requests, tool calls, accounts and webhook messages.

use std::time::Duration;

use super::scenario::{EmployeeKind, Scenario, ScenarioOptions, EMPLOYEE_ACCOUNT, SETUP_ACCOUNT};
use crate::engine::{Event, Outcome};
use crate::host::fake::world::World;
use crate::paths::mac;

/// What the demo runs on: the simulated Mac, tenant and employee.
pub(super) fn header(scenario: &Scenario, preset: Option<&str>) {
    println!(
        "prestage demo: a full enrollment on a simulated Mac against a simulated JumpCloud tenant"
    );
    println!(
        "  simulated Mac     {}  (fake macOS tools; world in .fakemac/)",
        scenario.root_dir().display()
    );
    println!(
        "  simulated tenant  {}  (org {})",
        scenario.tenant.url(),
        scenario.tenant.org_id()
    );
    let setup = if let Some(preset) = preset {
        format!(
            "no setup account: `{EMPLOYEE_ACCOUNT}` (their own) at the console, Identity.Preset {preset:?}"
        )
    } else {
        format!("setup account `{SETUP_ACCOUNT}`")
    };
    println!(
        "  employee          {} ({}), {setup}",
        scenario.employee.identifier,
        match ScenarioOptions::default().kind {
            EmployeeKind::Pending => "pending: no password yet",
            EmployeeKind::Active => "active",
            EmployeeKind::Staged => "staged",
        }
    );
    println!();
}

/// One line per finished step, retry and note, as the engine reports them.
pub(super) fn event(event: &Event) {
    match event {
        Event::StepFinished { step, took } => {
            println!(
                "  ✓ {:>2}/{} {:<14} {:>6.2} s",
                step.number(),
                crate::engine::steps::TOTAL,
                step.name(),
                took.as_secs_f64()
            );
        }
        Event::Retrying { step, reason, wait } => {
            println!(
                "  ↻ {:>2}/{} {:<14} retry in {:.1} s: {reason}",
                step.number(),
                crate::engine::steps::TOTAL,
                step.name(),
                wait.as_secs_f64()
            );
        }
        Event::Note(note) => println!("  • {note}"),
        Event::StepStarted(_) => {}
    }
}

pub(super) fn summary(scenario: &Scenario, outcome: &Outcome, took: Duration) {
    use std::collections::BTreeMap;
    let requests = scenario.tenant.requests();
    let mut by_call: BTreeMap<String, usize> = BTreeMap::new();
    for r in &requests {
        *by_call
            .entry(format!("{} {}", r.method, generic_path(&r.path)))
            .or_default() += 1;
    }
    let calls = crate::host::fake::world::calls(&scenario.root).unwrap_or_default();
    let world = World::load(&scenario.root).ok();
    let user = scenario.tenant.user(&scenario.user_id);
    println!();
    match outcome {
        Outcome::Done => println!(
            "enrolled `{}` in {:.1} s",
            scenario.employee.account,
            took.as_secs_f64()
        ),
        Outcome::AlreadyDone => println!("the simulated Mac was enrolled already"),
        Outcome::Failed { reference, message } => println!(
            "FAILED ({reference}) after {:.1} s: {message}",
            took.as_secs_f64()
        ),
        Outcome::ConfigInvalid { reference, message } => {
            println!("configuration invalid ({reference}): {message}");
        }
        Outcome::Stopped => println!("stopped"),
    }
    println!(
        "  requests to JumpCloud: {} (the bash script needs about 16)",
        requests.len()
    );
    for (call, n) in &by_call {
        println!("    {n:>3}  {call}");
    }
    println!("  macOS tool calls: {}", calls.len());
    if let Some(user) = user {
        println!(
            "  password set {} time(s); user activated: {}",
            user.password_sets, user.activated
        );
    }
    if let Some(world) = world {
        println!(
            "  local accounts now: {}",
            world.users.keys().cloned().collect::<Vec<_>>().join(", ")
        );
        println!(
            "  deleted: {}",
            if world.deleted_users.is_empty() {
                "none".into()
            } else {
                world.deleted_users.join(", ")
            }
        );
        println!("  console user: {}", world.console_user);
    }
    println!("  log: {}", scenario.root.resolve(mac::LOG_FILE).display());
    println!(
        "  the simulated Mac stays in {} for a look around (`prestage status --root {}`); delete it when done",
        scenario.root_dir().display(),
        scenario.root_dir().display()
    );
}

pub(super) fn webhook_summary(receiver: &crate::sim::WebhookReceiver) {
    let got = receiver.received();
    println!(
        "  webhook messages ({}; Webhooks URLs replaced by a local receiver):",
        got.len()
    );
    for r in got {
        let body = serde_json::to_string(&r.body).unwrap_or_default();
        println!("    {}  {body}", r.path.trim_start_matches("/webhooks/"));
    }
}

/// `/api/systemusers/5f…` → `/api/systemusers/{id}` for the request summary.
fn generic_path(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if crate::config::ObjectId::parse(seg).is_some() {
                "{id}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}
