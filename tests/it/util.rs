//! The one place the integration tests wait, and what they print when a wait or a run fails.
//!
//! A test that waits for something (the engine reaching a state, a window starting, the agent
//! registering) polls a condition here, bounded by wall-clock time so that it fails only on a
//! real hang, never on a slow machine. When it does fail, it says everything a person debugging
//! it needs without re-running it, as ripgrep's `tests/util.rs` prints the command, its
//! directory and its output: the state file, the tails of the journal and of `prestage.log`,
//! the fake world, the fake tools' and swiftDialog's calls, and the simulated tenant's request
//! log (method, path, status: never a body, which may carry a secret).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use prestage::demo::Scenario;
use prestage::engine::state::{Loaded, State, Store};
use prestage::host::fake::world::{self, WORLD_FILE};
use prestage::paths::{mac, Root};
use prestage::sim::Tenant;
use prestage::ui::fake_dialog;

use super::engine::RunResult;

/// How long any wait may take before it counts as a hang. Generous on purpose: it is a bound
/// for real hangs on a busy two-core machine, never a speed target.
pub(super) const WAIT_LIMIT: Duration = Duration::from_secs(90);

/// How many lines of each log a diagnosis shows.
const TAIL: usize = 40;

/// Something a failed test can describe.
pub(super) trait Diagnose {
    fn diagnose(&self) -> String;
}

/// A simulated Mac: everything prestage and the fakes wrote under its root.
impl Diagnose for Root {
    fn diagnose(&self) -> String {
        let store = Store::new(self);
        let mut out = String::new();
        let _ = writeln!(out, "root: {}", self.dir().display());
        section(&mut out, "state.json", &file_or(&store.state_path()));
        section(
            &mut out,
            &format!("journal.jsonl (last {TAIL} lines)"),
            &tail(&file_or(&store.journal_path()), TAIL),
        );
        section(
            &mut out,
            &format!("prestage.log (last {TAIL} lines)"),
            &tail(&file_or(&self.resolve(mac::LOG_FILE)), TAIL),
        );
        section(&mut out, "world.json", &file_or(&self.resolve(WORLD_FILE)));
        let tools: Vec<String> = world::calls(self)
            .unwrap_or_default()
            .iter()
            .map(|c| format!("{} {} {}", c.at_ms, c.tool, c.args.join(" ")))
            .collect();
        section(
            &mut out,
            &format!("fake tool calls (last {TAIL} of {})", tools.len()),
            &last(&tools, TAIL),
        );
        let dialogs: Vec<String> = fake_dialog::calls(self)
            .iter()
            .map(|c| format!("{} dialog {}", c.at_ms, c.args.join(" ")))
            .collect();
        section(
            &mut out,
            &format!("fake swiftDialog calls (last {TAIL} of {})", dialogs.len()),
            &last(&dialogs, TAIL),
        );
        out
    }
}

/// The simulated tenant: its request log, without bodies.
impl Diagnose for Tenant {
    fn diagnose(&self) -> String {
        let requests: Vec<String> = self
            .requests()
            .iter()
            .map(|r| {
                format!(
                    "{} {} -> {} ({:?}, {})",
                    r.method, r.path, r.status, r.auth, r.client
                )
            })
            .collect();
        let mut out = String::new();
        section(
            &mut out,
            &format!("tenant requests (last {TAIL} of {})", requests.len()),
            &last(&requests, TAIL),
        );
        out
    }
}

/// A whole scenario: the Mac and the tenant.
impl Diagnose for Scenario {
    fn diagnose(&self) -> String {
        format!("{}{}", self.root.diagnose(), self.tenant.diagnose())
    }
}

impl<A: Diagnose + ?Sized, B: Diagnose + ?Sized> Diagnose for (&A, &B) {
    fn diagnose(&self) -> String {
        format!("{}{}", self.0.diagnose(), self.1.diagnose())
    }
}

impl<T: Diagnose + ?Sized> Diagnose for &T {
    fn diagnose(&self) -> String {
        (**self).diagnose()
    }
}

/// The diagnosis of `ctx`, for a test's own assertion messages.
pub(super) fn diagnose(ctx: &(impl Diagnose + ?Sized)) -> String {
    ctx.diagnose()
}

/// Polls `f` until it gives a value. Panics with `what` and the diagnosis of `ctx` once
/// [`WAIT_LIMIT`] of wall-clock time has passed: only a real hang fails this. The bound is on
/// the wall clock, so under a paused tokio clock (where sleeps pass at once) it still holds;
/// the short thread sleep lets real time pass for the processes and threads being waited on.
pub(super) async fn wait_for<T>(
    ctx: &(impl Diagnose + ?Sized),
    what: &str,
    f: impl FnMut() -> Option<T>,
) -> T {
    wait_for_within(ctx, what, WAIT_LIMIT, f).await
}

/// [`wait_for`] with its own bound (for the test of the diagnosis itself).
async fn wait_for_within<T>(
    ctx: &(impl Diagnose + ?Sized),
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}\n{}",
            ctx.diagnose()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Polls `cond` until it holds (as [`wait_for`]).
pub(super) async fn wait_until(
    ctx: &(impl Diagnose + ?Sized),
    what: &str,
    mut cond: impl FnMut() -> bool,
) {
    wait_for(ctx, what, || cond().then_some(())).await;
}

/// Polls the scenario's state file until `f` returns something (as [`wait_for`]).
pub(super) async fn wait_for_state<T>(s: &Scenario, f: impl Fn(&State) -> Option<T>) -> T {
    wait_for(s, "the state to reach the condition", || {
        state(&s.root).and_then(|st| f(&st))
    })
    .await
}

/// Asserts that `cond` stays false for all of `period`, checking it as [`wait_for`] does.
/// Proving that something does not happen needs a bounded wait: this one is long enough for
/// the thing to have happened on a slow machine had the code been wrong, and no longer.
pub(super) async fn assert_never(
    ctx: &(impl Diagnose + ?Sized),
    what: &str,
    period: Duration,
    mut cond: impl FnMut() -> bool,
) {
    let start = Instant::now();
    while start.elapsed() < period {
        assert!(!cond(), "{what} happened\n{}", ctx.diagnose());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!cond(), "{what} happened\n{}", ctx.diagnose());
}

/// Asserts that a `prestage run` exited 0, printing its output and the scenario otherwise.
#[track_caller]
pub(super) fn assert_success(s: &Scenario, out: &RunResult) {
    assert_exit(s, out, 0);
}

/// Asserts that a `prestage run` exited with `code`, printing its output and the scenario
/// otherwise.
#[track_caller]
pub(super) fn assert_exit(s: &Scenario, out: &RunResult, code: i32) {
    assert!(
        out.code == Some(code),
        "prestage run exited {:?}, not {code}\n{}\n{}",
        out.code,
        describe_run(out),
        s.diagnose()
    );
}

/// One run's exit code and output, for a failure message.
pub(super) fn describe_run(out: &RunResult) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "exit code: {:?}", out.code);
    section(&mut text, "stdout", &out.stdout);
    section(&mut text, "stderr", &out.stderr);
    text
}

fn state(root: &Root) -> Option<State> {
    match Store::new(root).load() {
        Ok(Loaded::Resumed(state)) => Some(*state),
        _ => None,
    }
}

fn section(out: &mut String, title: &str, body: &str) {
    let _ = writeln!(out, "--- {title} ---");
    if body.trim().is_empty() {
        out.push_str("  (empty)\n");
    } else {
        for line in body.lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
}

fn file_or(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => format!("({}: {e})", path.display()),
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    last(&lines, n)
}

fn last(lines: &[String], n: usize) -> String {
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_that_times_out_explains_itself() {
    use prestage::demo::EmployeeKind;
    use secrecy::ExposeSecret;
    let s = super::engine::scenario(super::engine::options(EmployeeKind::Pending)).await;
    s.write_dialog_script(&super::engine::clean_script(&s))
        .unwrap();
    let out = super::engine::run_once(&s).await;
    assert_success(&s, &out);
    let secrets = [
        s.tenant.api_key().expose_secret().to_owned(),
        s.employee.password.clone(),
    ];
    let waited = tokio::spawn(async move {
        wait_for_within(
            &s,
            "something that never comes",
            Duration::from_millis(50),
            || None::<()>,
        )
        .await;
    })
    .await;
    let panic = waited.expect_err("the wait timed out").into_panic();
    let text = panic
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    for part in [
        "waiting for something that never comes",
        "--- state.json ---",
        "\"step\": \"done\"",
        "--- journal.jsonl (last 40 lines) ---",
        "--- prestage.log (last 40 lines) ---",
        "--- world.json ---",
        "/usr/sbin/sysadminctl",
        "--- fake swiftDialog calls",
        "--- tenant requests",
        "PUT /api/systemusers/",
    ] {
        assert!(text.contains(part), "no {part:?} in:\n{text}");
    }
    // Never a secret: the request log has no bodies and no headers.
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "a secret in the diagnosis");
    }
}
