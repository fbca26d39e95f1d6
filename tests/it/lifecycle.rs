//! Integration tests: the run's life inside one process. The engine takes its shutdown signal
//! as a parameter (SIGTERM in the daemon), so a stop mid-enrollment is tested without a real
//! signal, followed by a fresh engine that finishes the job exactly once.

use std::path::Path;
use std::time::Duration;

use prestage::demo::{EmployeeKind, Scenario, ScenarioOptions};
use prestage::engine::state::{Loaded, Step, Store};
use prestage::engine::Outcome;

const FAKES: &str = env!("CARGO_BIN_EXE_prestage-fake");

/// An active employee's scenario for an engine run inside the test process.
async fn in_process_scenario() -> Scenario {
    Scenario::new(
        ScenarioOptions {
            kind: EmployeeKind::Active,
            bootout_kills_caller: false,
            ..ScenarioOptions::default()
        },
        Path::new(FAKES),
    )
    .await
    .unwrap()
}

/// Writes the scenario's (changed) configuration where the real one lives.
fn rewrite_config(s: &Scenario) {
    prestage::demo::write_plist(
        &s.root.resolve(prestage::paths::mac::LOCAL_CONFIG),
        &s.config,
    )
    .unwrap();
}

fn step_of(s: &Scenario) -> Option<Step> {
    match Store::new(&s.root).load() {
        Ok(Loaded::Resumed(state)) => Some(state.step),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_mid_enrollment_stops_and_the_next_run_finishes_once() {
    let s = Scenario::new(
        ScenarioOptions {
            kind: EmployeeKind::Active,
            bootout_kills_caller: false,
            // Nobody logs in after the handover, so the run parks in WaitLogin until stopped.
            employee_login_delay_ms: None,
            ..ScenarioOptions::default()
        },
        Path::new(FAKES),
    )
    .await
    .unwrap();
    let engine = s.engine(s.scripted_ui(s.demo_script()).unwrap()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // Stop it once it is parked waiting for the employee.
    let watcher = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while step_of(&s) != Some(Step::WaitLogin) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never reached WaitLogin: {:?}",
                step_of(&s)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.send(()).unwrap();
    };
    let run = engine.run(async move {
        let _ = stopped.await;
    });
    let (outcome, ()) = tokio::time::timeout(Duration::from_secs(70), async {
        tokio::join!(run, watcher)
    })
    .await
    .expect("the shutdown was not answered");
    assert_eq!(outcome, Outcome::Stopped);
    assert_eq!(step_of(&s), Some(Step::WaitLogin), "progress kept");
    let binds_before = s.tenant.bindings(&s.tenant.systems()[0].id).len();
    assert_eq!(binds_before, 1);

    // The employee logs in; a new engine resumes and finishes, binding nobody twice.
    prestage::host::fake::world::World::update(&s.root, |w| w.employee_logs_in("ada.lovelace", 0))
        .unwrap();
    let engine = s.engine(s.scripted_ui(s.demo_script()).unwrap()).unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(60), engine.run(std::future::pending()))
        .await
        .expect("the resumed run hung");
    assert_eq!(outcome, Outcome::Done);
    assert_eq!(step_of(&s), Some(Step::Done));
    assert_eq!(s.tenant.bindings(&s.tenant.systems()[0].id).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_keeps_its_reference_code_across_restarts() {
    let s = Scenario::new(ScenarioOptions::default(), Path::new(FAKES))
        .await
        .unwrap();
    // An invalid configuration where the real one lives.
    std::fs::write(
        s.root.resolve(prestage::paths::mac::LOCAL_CONFIG),
        "<?xml version=\"1.0\"?><plist version=\"1.0\"><dict><key>ConnectKey</key><string>nope</string></dict></plist>",
    )
    .unwrap();
    let mut references = Vec::new();
    for _ in 0..2 {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_prestage"))
            .args(["run", "--root"])
            .arg(s.root_dir())
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(78), "{out:?}");
        let Ok(Loaded::Resumed(state)) = Store::new(&s.root).load() else {
            panic!("no state");
        };
        let error = state.last_error.expect("the error is recorded");
        assert!(error.permanent);
        assert!(error.message.contains("ConnectKey"), "{}", error.message);
        let reference = error.reference.expect("a reference code");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&reference),
            "the admin's line names the reference"
        );
        references.push(reference);
    }
    assert_eq!(references[0], references[1], "one failure, one code");
}

/// What the setup account can put at its own `~/Library/Preferences/.GlobalPreferences.plist`,
/// which prestage (root) reads for the employee's language.
#[derive(Clone, Copy, Debug)]
enum Planted {
    Fifo,
    LinkToDevZero,
    Huge,
}

fn make_fifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

fn plant(s: &Scenario, what: Planted) {
    let path = s
        .root
        .resolve("/Users/welcome/Library/Preferences/.GlobalPreferences.plist");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    match what {
        Planted::Fifo => make_fifo(&path),
        Planted::LinkToDevZero => std::os::unix::fs::symlink("/dev/zero", &path).unwrap(),
        Planted::Huge => std::fs::File::create(&path)
            .unwrap()
            .set_len(50 << 20)
            .unwrap(),
    }
}

fn spawn_run(s: &Scenario) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_prestage"))
        .args(["run", "--root"])
        .arg(s.root_dir())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_setup_account_plants_in_its_preferences_harms_nothing() {
    for what in [Planted::Fifo, Planted::LinkToDevZero, Planted::Huge] {
        let s = Scenario::new(
            ScenarioOptions {
                kind: EmployeeKind::Active,
                ..ScenarioOptions::default()
            },
            Path::new(FAKES),
        )
        .await
        .unwrap();
        plant(&s, what);
        s.write_dialog_script(&s.demo_script()).unwrap();
        let out = tokio::time::timeout(Duration::from_secs(90), spawn_run(&s).wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{what:?}: the run hung"))
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{what:?}: {out:?}");
        assert_eq!(step_of(&s), Some(Step::Done), "{what:?}");
        let log = std::fs::read_to_string(s.root.resolve(prestage::paths::mac::LOG_FILE)).unwrap();
        assert!(
            log.contains("language preferences were not read"),
            "{what:?}: the log says why the language is the default"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_is_answered_while_a_fifo_sits_in_the_setup_account_s_preferences() {
    let s = Scenario::new(
        ScenarioOptions {
            kind: EmployeeKind::Active,
            employee_login_delay_ms: None,
            ..ScenarioOptions::default()
        },
        Path::new(FAKES),
    )
    .await
    .unwrap();
    plant(&s, Planted::Fifo);
    s.write_dialog_script(&s.demo_script()).unwrap();
    let child = spawn_run(&s);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while step_of(&s) != Some(Step::WaitLogin) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never reached WaitLogin"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let out = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .expect("SIGTERM was not answered")
        .unwrap();
    assert_eq!(out.status.code(), Some(143), "{out:?}");
}

/// A loopback server that answers every request with `status` and no body.
async fn answering(status: u16) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).await;
            let reply = format!(
                "HTTP/1.1 {status} Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            let _ = conn.write_all(reply.as_bytes()).await;
        }
    });
    format!("http://{addr}/jumpcloud-agent.pkg")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_url_that_answers_404_stops_with_a_reference_code() {
    let mut s = in_process_scenario().await;
    let url = answering(404).await;
    let mut agent = s.config["Agent"].as_dictionary().unwrap().clone();
    agent.remove("PackagePath");
    agent.insert("PackageURL".into(), url.into());
    s.config.insert("Agent".into(), agent.into());
    rewrite_config(&s);
    let engine = s.engine(s.scripted_ui(s.demo_script()).unwrap()).unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(30), engine.run(std::future::pending()))
        .await
        .expect("a 404 must not be retried forever");
    let Outcome::Failed { reference, message } = outcome else {
        panic!("{outcome:?}");
    };
    assert!(reference.starts_with("PS-04-"), "{reference}");
    assert!(message.contains("404"), "{message}");
    assert!(message.contains("Agent.PackageURL"), "{message}");
    let Ok(Loaded::Resumed(state)) = Store::new(&s.root).load() else {
        panic!("no state")
    };
    assert_eq!(
        state.last_error.unwrap().reference.as_deref(),
        Some(reference.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_keeps_failing_stops_after_its_patience() {
    let s = in_process_scenario().await;
    // Every call to the group's members answers 5xx: joining the enrollment group never works.
    s.tenant.set_faults(prestage::sim::Faults {
        error_rate: 1.0,
        only_paths: vec!["/members".into()],
        ..prestage::sim::Faults::default()
    });
    let timing = prestage::engine::Timing {
        // JoinGroup's hour becomes 3.6 s.
        patience_divisor: 1000,
        ..prestage::demo::simulation_timing()
    };
    let engine = s
        .engine(s.scripted_ui(s.demo_script()).unwrap())
        .unwrap()
        .with_timing(timing);
    let outcome = tokio::time::timeout(Duration::from_secs(60), engine.run(std::future::pending()))
        .await
        .expect("a failing step must not be retried forever");
    let Outcome::Failed { reference, message } = outcome else {
        panic!("{outcome:?}");
    };
    assert!(reference.starts_with("PS-06-"), "{reference}: {message}");
    assert!(message.contains("still failing after"), "{message}");
    assert!(
        message.contains("APIBaseURL"),
        "the hint names what to check: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_in_a_world_writable_folder_is_copied_checked_and_installed_from_the_state_dir() {
    use std::os::unix::fs::PermissionsExt;
    let mut s = in_process_scenario().await;
    // The MDM dropped the agent package in /Users/Shared (1777: anyone may replace it).
    let shared = s.root.resolve("/Users/Shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::rename(
        s.root.resolve(prestage::demo::DEMO_AGENT_PACKAGE),
        shared.join("jumpcloud-agent.pkg"),
    )
    .unwrap();
    let mut agent = s.config["Agent"].as_dictionary().unwrap().clone();
    agent.insert(
        "PackagePath".into(),
        "/Users/Shared/jumpcloud-agent.pkg".into(),
    );
    s.config.insert("Agent".into(), agent.into());
    rewrite_config(&s);
    let engine = s.engine(s.scripted_ui(s.demo_script()).unwrap()).unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(60), engine.run(std::future::pending()))
        .await
        .expect("the run hung");
    assert_eq!(outcome, Outcome::Done);
    let calls = prestage::host::fake::world::calls(&s.root).unwrap();
    let staged = "/var/db/prestage/staged/jumpcloud-agent.pkg";
    let check = calls
        .iter()
        .find(|c| c.tool == prestage::paths::mac::PKGUTIL)
        .expect("checked");
    let install = calls
        .iter()
        .find(|c| c.tool == prestage::paths::mac::INSTALLER)
        .expect("installed");
    assert_eq!(check.args, ["--check-signature", staged]);
    assert_eq!(install.args, ["-pkg", staged, "-target", "/"]);
    assert!(
        !calls
            .iter()
            .any(|c| c.args.iter().any(|a| a.starts_with("/Users/Shared"))),
        "the shared path is never given to a tool"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_key_fallback_is_decided_once_and_survives_kills() {
    use super::engine::{options, repeating_script, run_with_kills, scenario};
    // A Mac that may not use system context (ADE, SPEC §5), with a plain APIKey: the client
    // falls back by itself on the first 401 (after one sntp). The decision is persisted, so
    // the restarts after each kill go straight to the admin key: one sntp in all, and no
    // system-context signature after the decision.
    let s = scenario(options(EmployeeKind::Pending)).await;
    s.tenant.set_faults(prestage::sim::Faults {
        system_context_disabled: true,
        ..prestage::sim::Faults::default()
    });
    s.write_dialog_script(&repeating_script(&s, 10)).unwrap();
    let mut killed_in: Vec<Step> = Vec::new();
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
            if step > Step::JoinGroup && step < Step::RemoveSetup && !killed_in.contains(&step) {
                killed_in.push(step);
                return true;
            }
            false
        },
        10,
    )
    .await;
    assert!(kills >= 4, "killed {kills} times in {killed_in:?}");
    assert_eq!(outputs.last().and_then(|o| o.code), Some(0), "{outputs:#?}");
    let Ok(Loaded::Resumed(state)) = Store::new(&s.root).load() else {
        panic!("no state")
    };
    assert!(state.org.admin_fallback, "the decision is in the state");
    let sntp = prestage::host::fake::world::calls(&s.root)
        .unwrap()
        .iter()
        .filter(|c| c.tool == prestage::paths::mac::SNTP)
        .count();
    assert_eq!(
        sntp, 1,
        "one clock sync for the whole enrollment, not one per restart"
    );
    let signed_refused = s
        .tenant
        .requests()
        .iter()
        .filter(|r| r.auth == prestage::sim::AuthKind::System && r.status == 401)
        .count();
    assert!(
        signed_refused <= 2,
        "{signed_refused} refused signatures: the restarts tried system context again"
    );
}

/// A System keychain that does not answer until the test lets it (securityd stuck after
/// boot): at most a minute.
struct SlowKeychain(std::sync::Mutex<std::sync::mpsc::Receiver<()>>);

impl prestage::config::keychain::Keychain for SlowKeychain {
    fn read(
        &self,
        _service: &str,
    ) -> Result<Option<secrecy::SecretString>, prestage::config::keychain::KeychainError> {
        if let Ok(release) = self.0.lock() {
            let _ = release.recv_timeout(Duration::from_secs(60));
        }
        Ok(None)
    }
    fn delete(&self, _service: &str) -> Result<(), prestage::config::keychain::KeychainError> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_slow_keychain_never_blocks_the_runtime_thread() {
    // The daemon's runtime has one thread: a keychain call on it would also hold up SIGTERM.
    let mut s = in_process_scenario().await;
    s.config.remove("APIKey");
    s.config
        .insert("APIKeyKeychainService".into(), "io.prestage.apikey".into());
    rewrite_config(&s);
    let sources =
        prestage::config::Sources::single(s.root.resolve(prestage::paths::mac::LOCAL_CONFIG));
    let cfg = prestage::config::load(
        &sources,
        prestage::config::Mode::Run,
        &prestage::ui::strings::is_known_id,
    )
    .unwrap()
    .config;
    let host: std::sync::Arc<dyn prestage::host::Host> =
        std::sync::Arc::new(prestage::host::MacHost::new(s.root.clone()));
    let connect = prestage::engine::connect::connector(std::sync::Arc::clone(&host), &cfg);
    let ui = s.scripted_ui(s.demo_script()).unwrap();
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    let engine = prestage::engine::Engine::new(
        s.root.clone(),
        cfg,
        host,
        ui,
        Box::new(SlowKeychain(std::sync::Mutex::new(release_rx))),
        connect,
    )
    .unwrap()
    .with_timing(prestage::demo::simulation_timing());
    // Stop once the engine reads the keychain (from the group join on); the stop must be
    // answered at once, not after the keychain call returns.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while step_of(&s).is_none_or(|step| step < Step::JoinGroup) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never reached JoinGroup"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let asked = std::time::Instant::now();
        stop.send(()).unwrap();
        asked
    };
    let run = engine.run(async move {
        let _ = stopped.await;
    });
    let (outcome, asked) = tokio::join!(run, watcher);
    // A blocked runtime would answer only when the keychain call returns (a minute): the
    // bound is generous, it only fails on that hang.
    let took = asked.elapsed();
    let _ = release.send(());
    assert_eq!(outcome, Outcome::Stopped);
    assert!(
        took < Duration::from_secs(30),
        "the stop waited for the keychain ({took:?})"
    );
}
