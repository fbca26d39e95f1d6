//! The fleet benchmark (issue 4, "Proof"); run with `cargo bench --bench fleet [-- --macs N
//! --rate R --burst B]`. Not a timed test: it prints figures, and fails (exit 1) only when a Mac
//! does not finish or a request arrives inside a `Retry-After` window.
//!
//! 1. Requests per happy-path enrollment: one full enrollment by the real engine on a simulated
//!    Mac (fake macOS tools, scripted employee who types everything right the first time)
//!    against the simulated tenant, counted from the tenant's request log. The bash script
//!    needs about 16.
//! 2. The fleet: N Macs (default 500), each with its own admin API key and its own registered
//!    system (one RSA key shared by all, generating 500 is slow), run the JumpCloud calls of
//!    one enrollment through the real `Client`, in the engine's order, all at once on one tokio
//!    runtime, against a tenant whose token bucket allows R requests/s (default 20). Printed:
//!    Macs finished, requests (with 429s), successful requests, 429s, requests inside
//!    `Retry-After` windows (must be 0), makespan, ideal (successful requests / R) and their
//!    ratio (target ≤ 1.3).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prestage::config::{Identifier, ObjectId};
use prestage::demo::{simulation_timing, Scenario, ScenarioOptions};
use prestage::engine::{Engine, Outcome};
use prestage::host::{Host, MacHost};
use prestage::jumpcloud::signing::SystemIdentity;
use prestage::jumpcloud::{Client, ClientOptions, Directory, JcError, RetryPolicy};
use prestage::paths::mac;
use prestage::sim::{
    RateLimit, RequestRecord, RetryWindow, SimOptions, SimUser, SystemKey, Tenant,
};
use prestage::ui::scripted::{Script, ScriptedIdentity, ScriptedPassword, ScriptedUi};
use prestage::ui::strings::Strings;
use secrecy::SecretString;

/// Command-line flags (`cargo bench` adds `--bench`, which is ignored).
struct Args {
    macs: usize,
    rate: f64,
    burst: u32,
    skip_enrollment: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        macs: 500,
        rate: 20.0,
        burst: 0,
        skip_enrollment: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--macs" => {
                args.macs = value("--macs")?
                    .parse()
                    .map_err(|e| format!("--macs: {e}"))?;
            }
            "--rate" => {
                args.rate = value("--rate")?
                    .parse()
                    .map_err(|e| format!("--rate: {e}"))?;
            }
            "--burst" => {
                args.burst = value("--burst")?
                    .parse()
                    .map_err(|e| format!("--burst: {e}"))?;
            }
            "--skip-enrollment" => args.skip_enrollment = true,
            "--help" | "-h" => {
                return Err(
                    "usage: fleet [--macs N (500)] [--rate R (20)] [--burst B (= R)] [--skip-enrollment]"
                        .into(),
                )
            }
            _ => {} // `--bench` and filters from cargo
        }
    }
    if args.macs == 0 || args.rate.is_nan() || args.rate <= 0.0 {
        return Err("--macs and --rate must be positive".into());
    }
    if args.burst == 0 {
        // One second's worth of tokens.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // positive, small
        let burst = args.rate.ceil() as u32;
        args.burst = burst.max(1);
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("cannot start tokio: {err}");
            return ExitCode::FAILURE;
        }
    };
    if !check_window_count() {
        eprintln!("the Retry-After window count is broken");
        return ExitCode::FAILURE;
    }
    runtime.block_on(async move {
        let mut ok = true;
        if !args.skip_enrollment {
            ok &= happy_path_enrollment().await;
            println!();
        }
        ok &= fleet(&args).await;
        if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}

// ---------------------------------------------------------------------------------------------
// 1. Requests per happy-path enrollment

async fn happy_path_enrollment() -> bool {
    println!("== requests per happy-path enrollment (real engine, simulated Mac and tenant)");
    let exe = Path::new(env!("CARGO_BIN_EXE_prestage-fake"));
    let scenario = match Scenario::new(
        ScenarioOptions {
            bootout_kills_caller: false,
            ..ScenarioOptions::default()
        },
        exe,
    )
    .await
    {
        Ok(s) => s,
        Err(err) => {
            println!("   FAILED: {err}");
            return false;
        }
    };
    // The employee gets everything right the first time.
    let e = &scenario.employee;
    let script = Script {
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
    };
    let outcome = match run_engine(&scenario, script).await {
        Ok(outcome) => outcome,
        Err(err) => {
            println!("   FAILED: {err}");
            return false;
        }
    };
    let requests = scenario.tenant.requests();
    let mut by_call: BTreeMap<String, usize> = BTreeMap::new();
    for r in &requests {
        *by_call
            .entry(format!("{} {}", r.method, generic_path(&r.path)))
            .or_default() += 1;
    }
    println!("   outcome: {outcome:?}");
    println!(
        "   requests per happy-path enrollment: {} (the bash script needs about 16)",
        requests.len()
    );
    for (call, n) in &by_call {
        println!("     {n:>3}  {call}");
    }
    matches!(outcome, Outcome::Done)
}

/// Runs the real engine in-process on the scenario's Mac, as `prestage demo` does.
async fn run_engine(scenario: &Scenario, script: Script) -> Result<Outcome, String> {
    let sources = prestage::config::Sources::single(scenario.root.resolve(mac::LOCAL_CONFIG));
    let cfg = prestage::config::load(
        &sources,
        prestage::config::Mode::Run,
        &prestage::ui::strings::is_known_id,
    )
    .map_err(|e| e.to_string())?
    .config;
    let strings = Strings::from_config(&cfg.ui, &[]);
    let host: Arc<dyn Host> = Arc::new(MacHost::new(scenario.root.clone()));
    let ui = Box::new(ScriptedUi::new(script, cfg.ui.clone(), strings));
    let keychain = Box::new(prestage::host::fake::keychain::FakeKeychain::for_root(
        &scenario.root,
    ));
    let connect = prestage::engine::connect::connector(Arc::clone(&host), &cfg);
    let engine = Engine::new(scenario.root.clone(), cfg, host, ui, keychain, connect)
        .map_err(|e| e.to_string())?
        .with_timing(simulation_timing());
    Ok(engine.run(std::future::pending::<()>()).await)
}

/// `/api/systemusers/5f…` → `/api/systemusers/{id}`.
fn generic_path(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if ObjectId::parse(seg).is_some() {
                "{id}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

// ---------------------------------------------------------------------------------------------
// 2. The fleet

/// One simulated Mac of the fleet.
struct Mac {
    client: Client,
    user: String,
    email: String,
}

/// What one Mac's run tells.
struct MacRun {
    finished: Duration,
    /// Calls the client gave up on and the "engine" repeated.
    engine_retries: u32,
}

/// A client that keeps trying as long as a fleet needs: the engine would repeat a call the
/// client gave up on anyway (it does so below too, and counts it).
fn fleet_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 100,
        ..RetryPolicy::fleet()
    }
}

async fn fleet(args: &Args) -> bool {
    println!(
        "== fleet: {} Macs, token bucket {} requests/s (burst {})",
        args.macs, args.rate, args.burst
    );
    let tenant = match Tenant::start(SimOptions {
        rate_limit: Some(RateLimit {
            per_second: args.rate,
            burst: args.burst,
        }),
        ..SimOptions::default()
    })
    .await
    {
        Ok(t) => t,
        Err(err) => {
            println!("   FAILED: cannot start the tenant: {err}");
            return false;
        }
    };
    let key = match tokio::task::spawn_blocking(SystemKey::generate).await {
        Ok(Ok(key)) => key,
        Ok(Err(err)) => {
            println!("   FAILED: {err}");
            return false;
        }
        Err(err) => {
            println!("   FAILED: {err}");
            return false;
        }
    };
    let pem = SecretString::from(key.private_pem());
    let public = key.public_der();
    let enroll = tenant.add_group("New Macs");
    let post = tenant.add_group("Enrolled Macs");
    let (Some(enroll), Some(post), Some(org)) = (
        ObjectId::parse(&enroll),
        ObjectId::parse(&post),
        ObjectId::parse(&tenant.org_id()),
    ) else {
        println!("   FAILED: the tenant made ids that are not ObjectIds");
        return false;
    };

    let mut macs = Vec::with_capacity(args.macs);
    for i in 0..args.macs {
        let email = format!("employee{i}@example.com");
        let user = tenant.add_user(SimUser::pending(&format!("employee{i}"), &email));
        let system = tenant.register_system(&format!("mac-{i:04}"), &public);
        let mut options = ClientOptions::new(tenant.url());
        options.api_key = Some(tenant.add_api_key());
        options.org_id = Some(tenant.org_id());
        options.retry = fleet_retry();
        let client = SystemIdentity::from_pem(system, &pem).and_then(|identity| {
            options.system = Some(identity);
            Client::new(options)
        });
        match client {
            Ok(client) => macs.push(Mac {
                client,
                user,
                email,
            }),
            Err(err) => {
                println!("   FAILED: cannot build client {i}: {err}");
                return false;
            }
        }
    }

    let log_start = tenant.requests().len();
    let started = Instant::now();
    let tasks: Vec<_> = macs
        .into_iter()
        .enumerate()
        .map(|(i, mac)| {
            let (enroll, post, org) = (enroll.clone(), post.clone(), org.clone());
            tokio::spawn(async move {
                let mut retries = 0;
                let result = enroll_one(&mac, i, &enroll, &post, &org, &mut retries).await;
                result.map(|()| MacRun {
                    finished: started.elapsed(),
                    engine_retries: retries,
                })
            })
        })
        .collect();
    let mut runs = Vec::new();
    let mut failures = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok(run)) => runs.push(run),
            Ok(Err(err)) => failures.push(err.to_string()),
            Err(err) => failures.push(err.to_string()),
        }
    }
    let makespan = started.elapsed();

    let log = tenant.requests();
    let log = &log[log_start..];
    let total = log.len();
    let throttled = log.iter().filter(|r| r.status == 429).count();
    let successful = log
        .iter()
        .filter(|r| r.status != 429 && r.status != 0)
        .count();
    let early = inside_retry_after_windows(log, &tenant.retry_windows());
    // The tenant's own count compares every request with every window; affordable only for
    // small runs, where it cross-checks the fast count.
    if log_start == 0 && total <= 20_000 {
        let slow = tenant.requests_inside_retry_after_windows();
        if slow != early {
            println!(
                "   FAILED: the tenant counts {slow} requests inside windows, this bench {early}"
            );
            return false;
        }
    }
    #[allow(clippy::cast_precision_loss)] // request counts are far below 2^52
    let ideal = Duration::from_secs_f64(successful as f64 / args.rate);
    let ratio = makespan.as_secs_f64() / ideal.as_secs_f64();
    let engine_retries: u32 = runs.iter().map(|r| r.engine_retries).sum();
    let mut finish: Vec<Duration> = runs.iter().map(|r| r.finished).collect();
    finish.sort();
    let pct = |p: usize| {
        finish
            .get((finish.len() * p / 100).min(finish.len().saturating_sub(1)))
            .map_or(0.0, Duration::as_secs_f64)
    };
    let enrolled = runs.len();

    println!(
        "   Macs finished:                       {enrolled} / {}",
        args.macs
    );
    println!("   requests (including 429s):           {total}");
    println!("   successful requests:                 {successful}");
    #[allow(clippy::cast_precision_loss)]
    let per_mac = successful as f64 / args.macs as f64;
    println!("   successful requests per Mac:         {per_mac:.2}");
    println!("   429 answers:                         {throttled}");
    println!("   requests inside Retry-After windows: {early}");
    println!("   calls repeated after the client gave up: {engine_retries}");
    println!(
        "   Mac finish times (s): p50 {:.1}, p90 {:.1}, max {:.1}",
        pct(50),
        pct(90),
        pct(100)
    );
    println!(
        "   makespan:                            {:.1} s",
        makespan.as_secs_f64()
    );
    println!(
        "   ideal (successful / rate):           {:.1} s",
        ideal.as_secs_f64()
    );
    println!("   ratio makespan / ideal:              {ratio:.3} (target <= 1.3)");
    // The bucket starts full: its first `burst` requests cost no waiting at all.
    #[allow(clippy::cast_precision_loss)]
    let ideal_after_burst = (successful.saturating_sub(args.burst as usize) as f64) / args.rate;
    println!(
        "   (ideal without the initial burst {:.1} s, ratio {:.3})",
        ideal_after_burst,
        makespan.as_secs_f64() / ideal_after_burst
    );
    for f in failures.iter().take(5) {
        println!("   failure: {f}");
    }
    tenant.shutdown().await;
    failures.is_empty() && early == 0
}

/// Repeats a call the client gave up on (`Transient`), as the engine's step retry would. The
/// client's own `Retry-After` window still holds the next attempt back.
async fn again<T, F, Fut>(retries: &mut u32, mut call: F) -> Result<T, JcError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, JcError>>,
{
    loop {
        match call().await {
            Err(err) if err.is_transient() && !err.is_uncertain() && *retries < 1000 => {
                *retries += 1;
            }
            other => return other,
        }
    }
}

/// The JumpCloud calls of one happy-path enrollment, in the engine's order (see
/// `engine::steps`): join the enrollment group (read, add, confirm), the password policy, a
/// status line, the search, the user read before the password, the password, the bind and
/// its confirmation, a status line, the group move, the final status line.
async fn enroll_one(
    mac: &Mac,
    i: usize,
    enroll: &ObjectId,
    post: &ObjectId,
    org: &ObjectId,
    r: &mut u32,
) -> Result<(), JcError> {
    let c = &mac.client;
    again(r, || c.system_groups()).await?;
    again(r, || c.add_system_to_group(enroll)).await?;
    let groups = again(r, || c.system_groups()).await?;
    if !groups.iter().any(|g| g == enroll.as_str()) {
        return Err(JcError::Protocol {
            call: format!("Mac {i}"),
            detail: "not in the enrollment group after joining".into(),
        });
    }
    again(r, || c.org(org)).await?;
    again(r, || c.report("prestage: waiting for the employee")).await?;
    let found = again(r, || c.find_users(Identifier::CompanyEmail, &mac.email)).await?;
    if found.len() != 1 {
        return Err(JcError::Protocol {
            call: format!("Mac {i}"),
            detail: format!("{} users found", found.len()),
        });
    }
    let before = again(r, || c.user(&mac.user)).await?;
    let password = SecretString::from(format!("Analytical-Engine-{i:04}"));
    loop {
        match c.set_password(&mac.user, &password).await {
            Ok(()) => break,
            Err(err) if err.is_transient() => {
                // Read back before resending (SPEC §5), as the engine does.
                let now = again(r, || c.user(&mac.user)).await?;
                *r += 1;
                if now.activated != before.activated || now.password_date != before.password_date {
                    break;
                }
            }
            Err(err) => return Err(err),
        }
    }
    again(r, || c.bind_user(&mac.user, false)).await?;
    let bound = again(r, || c.bound_users()).await?;
    if !bound.iter().any(|b| b.user_id == mac.user) {
        return Err(JcError::Protocol {
            call: format!("Mac {i}"),
            detail: "the employee is not bound after the bind".into(),
        });
    }
    again(r, || {
        c.report("prestage: employee bound, waiting for the agent")
    })
    .await?;
    again(r, || c.remove_system_from_group(enroll)).await?;
    again(r, || c.add_system_to_group(post)).await?;
    again(r, || c.report("prestage: enrolled")).await?;
    Ok(())
}

/// Requests that arrived inside a `Retry-After` window given to the same client: the same
/// rule as `Tenant::requests_inside_retry_after_windows` (strictly after the 429, strictly
/// before its end), in O(n log n) for logs of a few hundred thousand requests.
fn inside_retry_after_windows(log: &[RequestRecord], windows: &[RetryWindow]) -> usize {
    // Per client: windows sorted by start, with the latest end among all windows so far.
    let mut by_client: HashMap<&str, Vec<(Instant, Instant)>> = HashMap::new();
    for w in windows {
        by_client
            .entry(w.client.as_str())
            .or_default()
            .push((w.from, w.until));
    }
    for list in by_client.values_mut() {
        list.sort();
        let mut latest: Option<Instant> = None;
        for entry in list.iter_mut() {
            let end = latest.map_or(entry.1, |l| l.max(entry.1));
            latest = Some(end);
            entry.1 = end;
        }
    }
    log.iter()
        .filter(|r| {
            by_client.get(r.client.as_str()).is_some_and(|list| {
                // Windows that began before this request; the last one carries the latest end.
                let began = list.partition_point(|(from, _)| *from < r.at);
                began > 0 && list[began - 1].1 > r.at
            })
        })
        .count()
}

/// Proves [`inside_retry_after_windows`] finds what it must (the fleet's answer is 0, which a
/// broken count would also give): two windows of client `a`, requests of `a` and `b` around
/// them.
fn check_window_count() -> bool {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let record = |client: &str, ms: u64| RequestRecord {
        method: "GET".into(),
        path: "/api/systems/x".into(),
        query: None,
        auth: prestage::sim::AuthKind::Admin,
        client: client.into(),
        user_agent: None,
        org_id_header: None,
        body_sha256: String::new(),
        status: 200,
        injected: false,
        at: at(ms),
        at_ms: ms,
        contract_violations: Vec::new(),
    };
    let window = |from: u64, until: u64| RetryWindow {
        client: "a".into(),
        from: at(from),
        until: at(until),
    };
    // a: [100, 2000) and [300, 400): the second, shorter one must not hide the first.
    let windows = [window(100, 2000), window(300, 400)];
    let log = [
        record("a", 100),  // the 429 itself: not inside
        record("a", 500),  // inside the first window
        record("b", 500),  // another client
        record("a", 2000), // at the end: not inside
        record("a", 50),   // before
    ];
    inside_retry_after_windows(&log, &windows) == 1
}
