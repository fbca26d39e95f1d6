//! How late the engine notices what the outside world did (issue 11), from the fake Mac's own
//! records after a happy-path run: the world's scripted login times (`world.json`), the time
//! of every fake tool process (`calls.jsonl`, `at_ms` when it started) and prestage's journal.

use std::time::Duration;

use prestage::demo::Scenario;
use prestage::host::fake::world::{self, World};
use prestage::paths::mac;

use super::BenchResult;

/// The three latencies of the issue, each `None` when the run has no such moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latencies {
    /// The setup account logs in (Setup Assistant ends) → the first swiftDialog process (the
    /// welcome window).
    pub login_to_welcome: Option<Duration>,
    /// The journal's `bind confirmed` → the next swiftDialog process (the Done screen; progress
    /// updates in between go through the command file, not a new process).
    pub bind_to_done: Option<Duration>,
    /// The employee logs in (the world's logout time plus its login delay) → the journal's
    /// `deleted <setup account>`.
    pub login_to_deletion: Option<Duration>,
}

fn between(from: Option<u64>, to: Option<u64>) -> Option<Duration> {
    Some(Duration::from_millis(to?.checked_sub(from?)?))
}

/// Reads the latencies of a finished run.
pub fn measure(scenario: &Scenario) -> BenchResult<Latencies> {
    let world = World::load(&scenario.root)?;
    let b = world.behaviour();
    let calls = world::calls(&scenario.root)?;
    let dialogs: Vec<u64> = calls
        .iter()
        .filter(|c| {
            c.tool
                .rsplit('/')
                .next()
                .is_some_and(|n| n.eq_ignore_ascii_case("dialog"))
        })
        .map(|c| c.at_ms)
        .collect();
    let journal = journal(scenario)?;
    let at = |detail: &str| {
        journal
            .iter()
            .find(|(_, d)| d == detail || d.starts_with(detail))
            .map(|(at, _)| *at)
    };
    let bound = at("bind confirmed");
    let employee_login = b
        .logged_out_at_ms
        .map(|out| out.saturating_add(b.employee_login_delay_ms));
    Ok(Latencies {
        login_to_welcome: between(b.setup_done_at_ms, dialogs.first().copied()),
        bind_to_done: between(
            bound,
            bound.and_then(|t| dialogs.iter().copied().find(|d| *d >= t)),
        ),
        login_to_deletion: between(employee_login, at("deleted ")),
    })
}

/// `(at_ms, detail)` of every journal line.
fn journal(scenario: &Scenario) -> BenchResult<Vec<(u64, String)>> {
    let text = std::fs::read_to_string(scenario.root.resolve(mac::JOURNAL_FILE))?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let at = v.get("at_ms").and_then(serde_json::Value::as_u64);
        let detail = v.get("detail").and_then(serde_json::Value::as_str);
        if let (Some(at), Some(detail)) = (at, detail) {
            out.push((at, detail.to_owned()));
        }
    }
    Ok(out)
}

/// The median of the values present, as seconds for the table ("–" when none).
pub fn median_secs(values: impl Iterator<Item = Option<Duration>>) -> String {
    let mut v: Vec<Duration> = values.flatten().collect();
    if v.is_empty() {
        return "–".to_owned();
    }
    v.sort();
    format!("{:.2} s", v[v.len() / 2].as_secs_f64())
}
