//! The engine's figures (issue 5): `cargo bench --bench enrollment`.
//!
//! Not a timed test: it measures the real `prestage run` process (this package's binary, built
//! in the bench profile, which inherits the release profile) on a simulated Mac and prints a
//! table. The simulated JumpCloud tenant and agent live in this process (a [`Scenario`]); the
//! child talks to them over HTTP and through the fake Mac's files, plays the macOS tools and
//! swiftDialog through the fake tools, and answers the employee's questions from a dialog
//! script. The child keeps the production [`Timing`](prestage::engine::Timing) (tool gap 2 s).
//!
//! Figures:
//! 1. a full happy-path enrollment against instant fakes: wall time (target < 3 s), CPU time,
//!    tool processes spawned, peak RSS (`VmHWM` of `/proc/<pid>/status`, polled until exit);
//! 2. waiting 60 s for an employee who never logs in: CPU time of the child (utime + stime of
//!    `/proc/<pid>/stat`, proc(5)) and tool processes spawned in that window (one line of
//!    `<root>/.fakemac/calls.jsonl` per fake tool process);
//! 3. the size of the binary measured (stripped: the release profile has `strip = "symbols"`).
//!
//! Environment: `PRESTAGE_BENCH_RUNS` (happy-path repetitions, default 5),
//! `PRESTAGE_BENCH_WAIT_SECS` (length of the waiting window, default 60),
//! `PRESTAGE_BENCH_KEEP=1` keeps the simulated Macs' roots for inspection.
//! Linux only (`/proc`).

use std::collections::BTreeMap;
use std::error::Error;
use std::path::Path;
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use prestage::demo::{demo_policy, EmployeeKind, Scenario, ScenarioOptions};
use prestage::engine::state::Step;
use prestage::engine::status;
use prestage::host::fake::world;
use prestage::paths::mac;
use prestage::sim::{AgentBehaviour, SimOptions};
use prestage::ui::scripted::{Script, ScriptedIdentity, ScriptedPassword};

#[path = "enrollment/latency.rs"]
mod latency;
#[path = "enrollment/summary.rs"]
mod summary;

type BenchResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// The binary under measurement (the bench profile's `prestage`).
const EXE: &str = env!("CARGO_BIN_EXE_prestage");
/// The fake macOS tools and swiftDialog (one multi-call binary).
const FAKES: &str = env!("CARGO_BIN_EXE_prestage-fake");

/// How often the child's `/proc` entries are read while it runs.
const SAMPLE: Duration = Duration::from_millis(5);

/// A run that takes longer than this is a hang, not a figure.
const RUN_LIMIT: Duration = Duration::from_secs(120);

fn main() -> ExitCode {
    // `cargo bench` passes `--bench` (and filters); there is nothing to filter here.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("enrollment bench: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("enrollment bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn bench() -> BenchResult<()> {
    let runs = env_number("PRESTAGE_BENCH_RUNS", 5).max(1);
    let wait_secs = env_number("PRESTAGE_BENCH_WAIT_SECS", 60).max(1);
    let ticks = clock_ticks();
    println!("prestage engine figures: `prestage run` as a child process on a simulated Mac");
    println!("  binary  {EXE}");
    println!("  clock ticks per second (getconf CLK_TCK): {ticks}");
    println!();

    let happy = happy_runs(Fakes::Instant, runs, ticks).await?;
    // The same with the demo's fakes (agent 200 ms / 300 ms, Setup Assistant 200 ms, login
    // 300 ms): how much the engine adds to waits that take time.
    let paced = happy_runs(Fakes::DemoSpeed, runs, ticks).await?;
    // Issue 11's world: the setup account logs in 1 s after the start, the agent registers in
    // 50 ms, the employee logs in 0.2 s after the logout.
    let realistic = happy_runs(Fakes::Realistic, runs, ticks).await?;

    let idle = waiting(ticks, Duration::from_secs(wait_secs)).await?;
    print_waiting(&idle);

    let size = std::fs::metadata(EXE)?.len();
    let stripped = !file_contains(Path::new(EXE), b".symtab")?;
    summary::print_summary(&happy, &paced, &realistic, &idle, size, stripped);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// How fast the simulated Mac, agent and employee are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fakes {
    /// Setup Assistant already done, an agent that registers and takes over at once, an
    /// employee who logs in as soon as the setup account logs out.
    Instant,
    /// The demo's timings: agent registers after 200 ms and takes over after 300 ms, Setup
    /// Assistant ends after 200 ms, the employee logs in 300 ms after the logout.
    DemoSpeed,
    /// Issue 11's realistic login delays: Setup Assistant ends (the setup account logs in) 1 s
    /// after the scenario starts, the agent registers after 50 ms and takes over at once, the
    /// employee logs in 200 ms after the setup account is logged out.
    Realistic,
}

impl Fakes {
    fn label(self) -> &'static str {
        match self {
            Fakes::Instant => "instant fakes",
            Fakes::DemoSpeed => "demo-speed fakes",
            Fakes::Realistic => "realistic login delays",
        }
    }
}

/// `login`: `None` = the employee never logs in.
fn options(fakes: Fakes, login: Option<u64>) -> ScenarioOptions {
    let demo = ScenarioOptions::default();
    let (register, takeover, setup_ms, login_ms) = match fakes {
        Fakes::Instant => (Duration::ZERO, Duration::ZERO, 0, login.map(|_| 0)),
        Fakes::DemoSpeed => {
            let agent = AgentBehaviour::default();
            (
                agent.register_delay,
                agent.takeover_delay,
                demo.setup_assistant_ms,
                login.and(demo.employee_login_delay_ms),
            )
        }
        Fakes::Realistic => (
            Duration::from_millis(50),
            Duration::ZERO,
            1_000,
            login.map(|_| 200),
        ),
    };
    ScenarioOptions {
        kind: EmployeeKind::Pending,
        sim: SimOptions {
            password_policy: demo_policy(),
            agent: AgentBehaviour {
                register_delay: register,
                takeover_delay: takeover,
                poll_interval: Duration::from_millis(10),
                // Each Mac's RSA key is generated once per tenant; sharing is faster to set up
                // and does not change what the child does.
                shared_key: true,
                heartbeat: None,
                ..AgentBehaviour::default()
            },
            ..SimOptions::default()
        },
        employee_login_delay_ms: login_ms,
        setup_assistant_ms: setup_ms,
        keep_root: std::env::var_os("PRESTAGE_BENCH_KEEP").is_some(),
        bootout_kills_caller: true,
        ..demo
    }
}

/// The employee answers right the first time.
fn no_mistakes(scenario: &Scenario) -> Script {
    let e = &scenario.employee;
    Script {
        identities: vec![ScriptedIdentity {
            identifier: e.identifier.clone(),
            secret: e.secret.clone(),
        }]
        .into(),
        passwords: vec![ScriptedPassword {
            password: e.password.clone(),
            confirmation: None,
        }]
        .into(),
    }
}

async fn scenario(fakes: Fakes, login: Option<u64>) -> BenchResult<Scenario> {
    let scenario = Scenario::new(options(fakes, login), Path::new(FAKES)).await?;
    scenario.write_dialog_script(&no_mistakes(&scenario))?;
    Ok(scenario)
}

/// `prestage run --root <root>` with its output in `<root>/bench-child.log`.
fn spawn_run(scenario: &Scenario) -> BenchResult<Child> {
    let log = std::fs::File::create(scenario.root_dir().join("bench-child.log"))?;
    let child = Command::new(EXE)
        .arg("run")
        .arg("--root")
        .arg(scenario.root_dir())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    Ok(child)
}

// ---------------------------------------------------------------------------------------------
// 1. The happy path

struct HappyRun {
    /// From spawning the child until it exited.
    wall: Duration,
    /// From the journal's first line to its `cleanup finished` line.
    engine: Duration,
    cpu: Duration,
    peak_rss_kib: u64,
    tool_calls: usize,
    by_tool: BTreeMap<String, usize>,
    /// Requests the simulated tenant answered.
    requests: usize,
    latency: latency::Latencies,
    /// Seconds per step (`prestage status --json` durations).
    steps: Vec<(String, f64)>,
    exit: String,
}

async fn happy_runs(fakes: Fakes, runs: u64, ticks: u64) -> BenchResult<Vec<HappyRun>> {
    let mut happy = Vec::new();
    for i in 1..=runs {
        let run = happy_path(fakes, ticks).await?;
        println!(
            "  happy path, {}, run {i}/{runs}: {:.2} s wall, {:.3} s CPU, {} tool processes, {} requests, peak RSS {:.1} MB; setup login → welcome {}, bind → Done {}, employee login → deletion {}",
            fakes.label(),
            run.wall.as_secs_f64(),
            run.cpu.as_secs_f64(),
            run.tool_calls,
            run.requests,
            kib_to_mb(run.peak_rss_kib),
            latency::median_secs([run.latency.login_to_welcome].into_iter()),
            latency::median_secs([run.latency.bind_to_done].into_iter()),
            latency::median_secs([run.latency.login_to_deletion].into_iter()),
        );
        happy.push(run);
    }
    print_happy(fakes, &happy);
    println!();
    Ok(happy)
}

async fn happy_path(fakes: Fakes, ticks: u64) -> BenchResult<HappyRun> {
    let scenario = scenario(fakes, Some(0)).await?;
    let root = scenario.root_dir().to_owned();
    let started = Instant::now();
    let child = spawn_run(&scenario)?;
    // The simulated tenant and agent keep running on the runtime while a blocking thread
    // watches the child.
    let watched = tokio::task::spawn_blocking(move || watch(child, started, RUN_LIMIT)).await??;
    let report = status::read(&scenario.root);
    if report.phase != status::Phase::Done {
        return Err(format!(
            "the enrollment did not finish (phase {}, step {:?}, error {:?}, exit {}); see {}",
            report.phase,
            report.step,
            report.last_error,
            describe(watched.status),
            root.join("var/log/prestage.log").display()
        )
        .into());
    }
    let calls = world::calls(&scenario.root)?;
    let mut by_tool = BTreeMap::new();
    for call in &calls {
        *by_tool.entry(tool_name(&call.tool)).or_insert(0) += 1;
    }
    // `durations` is in step order already.
    let steps = report
        .durations
        .iter()
        .map(|d| (d.step.clone(), d.seconds))
        .collect();
    let latency = latency::measure(&scenario)?;
    Ok(HappyRun {
        requests: scenario.tenant.requests().len(),
        latency,
        wall: watched.wall,
        engine: journal_span(&root)?,
        cpu: ticks_to_duration(watched.cpu_ticks, ticks),
        peak_rss_kib: watched.peak_rss_kib,
        tool_calls: calls.len(),
        by_tool,
        steps,
        exit: describe(watched.status),
    })
}

struct Watched {
    wall: Duration,
    cpu_ticks: u64,
    peak_rss_kib: u64,
    status: ExitStatus,
}

/// Samples the child's `/proc` entries until it exits: `VmHWM` only grows, so the last sample
/// before the exit is the peak (to within one sampling period).
fn watch(mut child: Child, started: Instant, limit: Duration) -> BenchResult<Watched> {
    let pid = child.id();
    let mut cpu_ticks = 0;
    let mut peak_rss_kib = 0;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Watched {
                wall: started.elapsed(),
                cpu_ticks,
                peak_rss_kib,
                status,
            });
        }
        if let Some(t) = proc_cpu_ticks(pid) {
            cpu_ticks = t;
        }
        if let Some(kib) = proc_vm_hwm(pid) {
            peak_rss_kib = peak_rss_kib.max(kib);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("prestage run did not finish within {} s", limit.as_secs()).into());
        }
        std::thread::sleep(SAMPLE);
    }
}

fn print_happy(fakes: Fakes, runs: &[HappyRun]) {
    let Some(best) = runs.iter().min_by_key(|r| r.wall) else {
        return;
    };
    let walls: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
    println!();
    println!(
        "Happy path, {} ({} runs): wall median {:.2} s (min {:.2}, max {:.2}); fastest run by step:",
        fakes.label(),
        runs.len(),
        median(&walls).as_secs_f64(),
        walls
            .iter()
            .min()
            .copied()
            .unwrap_or_default()
            .as_secs_f64(),
        walls
            .iter()
            .max()
            .copied()
            .unwrap_or_default()
            .as_secs_f64(),
    );
    for (step, secs) in &best.steps {
        println!("    {step:<14} {secs:>6.3} s");
    }
    println!(
        "    journal first line → cleanup finished: {:.3} s; child exit: {}",
        best.engine.as_secs_f64(),
        best.exit
    );
    let tools: Vec<String> = best
        .by_tool
        .iter()
        .map(|(tool, n)| format!("{tool} {n}"))
        .collect();
    println!(
        "    tool processes: {} ({})",
        best.tool_calls,
        tools.join(", ")
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Waiting for an employee who never logs in

struct Waiting {
    window: Duration,
    /// utime + stime (whole clock ticks: 10 ms resolution).
    cpu: Duration,
    /// The same from the live threads' `schedstat` (nanoseconds; a thread that ended during
    /// the window is missing, so this can only undercount).
    cpu_fine: Duration,
    tool_calls: usize,
    by_tool: BTreeMap<String, usize>,
    peak_rss_kib: u64,
    /// Time from spawn until the child reached `wait_login`.
    reached_after: Duration,
}

async fn waiting(ticks: u64, window: Duration) -> BenchResult<Waiting> {
    let scenario = scenario(Fakes::Instant, None).await?;
    let root = scenario.root.clone();
    let started = Instant::now();
    let child = spawn_run(&scenario)?;
    println!();
    println!(
        "Waiting {} s for an employee who never logs in (measuring)…",
        window.as_secs()
    );
    let watched = tokio::task::spawn_blocking(move || -> BenchResult<Waiting> {
        let mut child = child;
        let result = watch_window(&mut child, &root, started, window, ticks);
        // Stop it the way launchd does, then make sure it is gone.
        if let Some(pid) = i32::try_from(child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        result
    })
    .await??;
    drop(scenario);
    Ok(watched)
}

fn watch_window(
    child: &mut Child,
    root: &prestage::paths::Root,
    started: Instant,
    window: Duration,
    ticks: u64,
) -> BenchResult<Waiting> {
    let pid = child.id();
    // Until the child waits for the login (the state file is replaced atomically).
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(format!(
                "prestage run exited ({}) before waiting for the login",
                describe(status)
            )
            .into());
        }
        if current_step(root).as_deref() == Some(Step::WaitLogin.name()) {
            break;
        }
        if started.elapsed() > RUN_LIMIT {
            return Err("prestage run never reached wait_login".into());
        }
        std::thread::sleep(SAMPLE);
    }
    let reached_after = started.elapsed();
    let calls_before = world::calls(root)?.len();
    let cpu_before = proc_cpu_ticks(pid).ok_or("the child vanished")?;
    let ns_before = threads_cpu_ns(pid);
    let begin = Instant::now();
    let mut peak_rss_kib = 0;
    while begin.elapsed() < window {
        if let Some(status) = child.try_wait()? {
            return Err(format!("prestage run exited ({}) while waiting", describe(status)).into());
        }
        if let Some(kib) = proc_vm_hwm(pid) {
            peak_rss_kib = peak_rss_kib.max(kib);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let cpu_after = proc_cpu_ticks(pid).ok_or("the child vanished")?;
    let ns_after = threads_cpu_ns(pid);
    let window = begin.elapsed();
    let calls = world::calls(root)?;
    let mut by_tool = BTreeMap::new();
    for call in calls.iter().skip(calls_before) {
        *by_tool.entry(tool_name(&call.tool)).or_insert(0) += 1;
    }
    if current_step(root).as_deref() != Some(Step::WaitLogin.name()) {
        return Err("the child left wait_login although nobody logged in".into());
    }
    Ok(Waiting {
        window,
        cpu: ticks_to_duration(cpu_after.saturating_sub(cpu_before), ticks),
        cpu_fine: Duration::from_nanos(ns_after.saturating_sub(ns_before)),
        tool_calls: calls.len() - calls_before,
        by_tool,
        peak_rss_kib,
        reached_after,
    })
}

fn print_waiting(w: &Waiting) {
    let tools: Vec<String> = w
        .by_tool
        .iter()
        .map(|(tool, n)| format!("{tool} {n}"))
        .collect();
    println!(
        "  reached wait_login after {:.2} s; over {:.1} s: CPU {:.3} s (schedstat {:.1} ms), {} tool processes ({})",
        w.reached_after.as_secs_f64(),
        w.window.as_secs_f64(),
        w.cpu.as_secs_f64(),
        w.cpu_fine.as_secs_f64() * 1000.0,
        w.tool_calls,
        tools.join(", ")
    );
}

// ---------------------------------------------------------------------------------------------
// The table

// ---------------------------------------------------------------------------------------------
// Helpers

/// `step` of `<root>/var/db/prestage/state.json`, read without touching the file.
fn current_step(root: &prestage::paths::Root) -> Option<String> {
    let bytes = std::fs::read(root.resolve(mac::STATE_FILE)).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("step")?.as_str().map(str::to_owned)
}

/// From the journal's first entry to the `done` entry of `cleanup`.
fn journal_span(root: &Path) -> BenchResult<Duration> {
    let text = std::fs::read_to_string(root.join(mac::JOURNAL_FILE.trim_start_matches('/')))?;
    let mut first = None;
    let mut last = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let at = v.get("at_ms").and_then(serde_json::Value::as_u64);
        first = first.or(at);
        if v.get("step").and_then(serde_json::Value::as_str) == Some(Step::Cleanup.name())
            && v.get("event").and_then(serde_json::Value::as_str) == Some("done")
        {
            last = at;
        }
    }
    match (first, last) {
        (Some(a), Some(b)) => Ok(Duration::from_millis(b.saturating_sub(a))),
        _ => Err("the journal has no finished cleanup".into()),
    }
}

/// utime + stime of a process in clock ticks (fields 14 and 15 of `/proc/<pid>/stat`; the
/// command name in field 2 may hold spaces, so fields are counted after its closing `)`).
fn proc_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time of the live threads in nanoseconds: the first field of
/// `/proc/<pid>/task/<tid>/schedstat` (time spent on the CPU; kernel docs, sched-stats).
fn threads_cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// `VmHWM` (peak resident set size, KiB) of `/proc/<pid>/status`.
fn proc_vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `getconf CLK_TCK` (100 on Linux almost everywhere; asked rather than assumed).
fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

fn ticks_to_duration(ticks: u64, per_second: u64) -> Duration {
    Duration::from_micros(ticks.saturating_mul(1_000_000) / per_second.max(1))
}

#[allow(clippy::cast_precision_loss)] // sizes far below 2^52
fn kib_to_mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[allow(clippy::cast_precision_loss)] // sizes far below 2^52
fn bytes_to_mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn median(values: &[Duration]) -> Duration {
    let mut v = values.to_vec();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn tool_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_owned()
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("code {code}"),
        (None, Some(15)) => "SIGTERM (launchctl bootout)".to_owned(),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => "unknown".to_owned(),
    }
}

/// Whether `needle` occurs in the file (`.symtab` is the section name a stripped ELF lacks).
fn file_contains(path: &Path, needle: &[u8]) -> BenchResult<bool> {
    let bytes = std::fs::read(path)?;
    Ok(bytes.windows(needle.len()).any(|w| w == needle))
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
