//! Integration tests: one owner for JumpCloud authentication (issue 18 part 3). The client is
//! built once per run and asks its credentials provider (`prestage::jumpcloud::Auth`) only when
//! a call needs a credential; the admin-key fallback is told to the provider once and the
//! engine persists it, so a restart sends no signed request.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use prestage::demo::{EmployeeKind, Scenario, ScenarioOptions};
use prestage::engine::state::{Loaded, Store};
use prestage::engine::{Engine, Outcome};
use prestage::host::{Host, MacHost};
use prestage::jumpcloud::{
    Auth, Client, ClientOptions, ClockSync, Directory, JcError, RetryPolicy, SystemIdentity,
};
use prestage::sim::AuthKind;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{json, Value};

use super::jumpcloud::{identity, oid, reply, Captured, Mock, API_KEY, ORG, SYS};

const FAKES: &str = env!("CARGO_BIN_EXE_prestage-fake");

/// A provider that counts what it is asked and told.
#[derive(Default)]
struct Counting {
    key: Mutex<Option<SecretString>>,
    with_identity: bool,
    fallback: AtomicBool,
    keys_asked: AtomicU32,
    identities_asked: AtomicU32,
    told: AtomicU32,
}

impl Counting {
    fn new(key: bool, fallback: bool) -> Arc<Self> {
        Arc::new(Self {
            key: Mutex::new(key.then(|| SecretString::from(API_KEY))),
            with_identity: true,
            fallback: AtomicBool::new(fallback),
            ..Self::default()
        })
    }

    fn counts(&self) -> (u32, u32, u32) {
        (
            self.keys_asked.load(Ordering::SeqCst),
            self.identities_asked.load(Ordering::SeqCst),
            self.told.load(Ordering::SeqCst),
        )
    }
}

#[async_trait]
impl Auth for Counting {
    async fn api_key(&self) -> Result<Option<SecretString>, JcError> {
        self.keys_asked.fetch_add(1, Ordering::SeqCst);
        Ok(self.key.lock().unwrap().clone())
    }
    fn system_key(&self) -> Option<String> {
        Some(SYS.to_owned())
    }
    fn system_identity(&self) -> Result<Option<SystemIdentity>, JcError> {
        self.identities_asked.fetch_add(1, Ordering::SeqCst);
        Ok(self.with_identity.then(identity))
    }
    fn org_id(&self) -> Option<String> {
        Some(ORG.to_owned())
    }
    fn admin_fallback(&self) -> bool {
        self.fallback.load(Ordering::SeqCst)
    }
    fn fell_back_to_admin(&self) {
        self.told.fetch_add(1, Ordering::SeqCst);
        self.fallback.store(true, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct CountingClock(AtomicU32);

#[async_trait]
impl ClockSync for CountingClock {
    async fn sync_clock(&self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn client(mock: &Mock, auth: Arc<Counting>, clock: Arc<CountingClock>) -> Client {
    let mut o = ClientOptions::new(mock.url.clone());
    o.auth = auth;
    o.clock_sync = Some(clock);
    o.retry = RetryPolicy::fast();
    Client::new(o).unwrap()
}

/// System routes that take the admin key always and a signature only when `signed_ok`.
fn tenant(mock: &Mock, signed_ok: bool) {
    let answer = move |body: Value| {
        move |r: &Captured, _| {
            if r.is_admin() || signed_ok {
                reply(200, body.clone())
            } else {
                reply(401, json!({"message": "Unauthorized"}))
            }
        }
    };
    mock.on(
        "GET",
        &format!("/api/systems/{SYS}"),
        answer(json!({"_id": SYS, "organization": ORG, "hostname": "mac-1"})),
    );
    mock.on(
        "GET",
        &format!("/api/v2/systems/{SYS}/associations"),
        answer(json!([])),
    );
    mock.on(
        "GET",
        &format!("/api/organizations/{ORG}"),
        answer(json!({"_id": ORG, "displayName": "Acme", "settings": {"name": "Acme"}})),
    );
}

#[tokio::test]
async fn the_provider_is_asked_for_a_credential_only_when_a_call_needs_it() {
    let mock = Mock::start().await;
    tenant(&mock, true);
    let auth = Counting::new(true, false);
    let clock = Arc::new(CountingClock::default());
    let c = client(&mock, Arc::clone(&auth), clock);
    // System context works: no call needs the API key; the identity is asked once and kept.
    c.system().await.unwrap();
    c.bound_users().await.unwrap();
    c.system().await.unwrap();
    assert_eq!(auth.counts(), (0, 1, 0), "(keys, identities, told)");
    assert!(mock.requests().iter().all(|r| !r.is_admin()));
    // The first admin call asks for the key; the client keeps it.
    c.org(&oid(ORG)).await.unwrap();
    c.org(&oid(ORG)).await.unwrap();
    assert_eq!(auth.counts(), (1, 1, 0));
    let last = mock.requests().pop().unwrap();
    assert_eq!(last.header("x-org-id"), Some(ORG), "the provider's org");
}

#[tokio::test]
async fn a_key_that_comes_after_the_refusal_is_used_without_another_signature_and_told_once() {
    let mock = Mock::start().await;
    tenant(&mock, false);
    let auth = Counting::new(false, false);
    let clock = Arc::new(CountingClock::default());
    let c = client(&mock, Arc::clone(&auth), Arc::clone(&clock));
    // Refused after one clock sync, no key at hand: a typed error, nothing told.
    let err = c.system().await.unwrap_err();
    assert!(matches!(err, JcError::SignatureRejected { .. }), "{err:?}");
    assert_eq!(mock.requests().len(), 2, "signed, signed after the sync");
    assert_eq!(auth.counts().2, 0);
    // While there is no key, later system calls fail at once: no more refused signatures.
    let err = c.bound_users().await.unwrap_err();
    assert!(matches!(err, JcError::SignatureRejected { .. }), "{err:?}");
    assert_eq!(mock.requests().len(), 2);
    // The key comes (the engine waited for it in the keychain): the same client repeats the
    // call with it at once, and tells the provider once.
    *auth.key.lock().unwrap() = Some(SecretString::from(API_KEY));
    c.system().await.unwrap();
    c.bound_users().await.unwrap();
    c.system().await.unwrap();
    let after: Vec<bool> = mock.requests()[2..]
        .iter()
        .map(Captured::is_admin)
        .collect();
    assert_eq!(
        after,
        vec![true, true, true],
        "no signature after the refusal"
    );
    assert_eq!(auth.counts().2, 1, "told once");
    assert_eq!(clock.0.load(Ordering::SeqCst), 1, "one sntp for the client");
    assert!(c.uses_admin_fallback());
}

#[tokio::test]
async fn a_provider_in_fallback_mode_gets_no_signed_request_at_all() {
    // The decision of an earlier run: the first system call goes with the admin key, without
    // a 401, a clock sync or the agent's key being read.
    let mock = Mock::start().await;
    tenant(&mock, false);
    let auth = Counting::new(true, true);
    let clock = Arc::new(CountingClock::default());
    let c = client(&mock, Arc::clone(&auth), Arc::clone(&clock));
    c.system().await.unwrap();
    c.bound_users().await.unwrap();
    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests
        .iter()
        .all(|r| r.is_admin() && r.header("authorization").is_none()));
    assert_eq!(clock.0.load(Ordering::SeqCst), 0);
    assert_eq!(auth.counts(), (1, 0, 0), "(keys, identities, told)");
    assert!(c.uses_admin_fallback());
}

// ---------------------------------------------------------------------------------------------
// The engine: one client per run, one decision.

async fn in_process_scenario() -> Scenario {
    let s = Scenario::new(
        ScenarioOptions {
            kind: EmployeeKind::Active,
            bootout_kills_caller: false,
            ..ScenarioOptions::default()
        },
        Path::new(FAKES),
    )
    .await
    .unwrap();
    s.tenant.set_faults(prestage::sim::Faults {
        system_context_disabled: true,
        ..prestage::sim::Faults::default()
    });
    s
}

/// The engine for `s`, wired as `prestage run` wires it, with its client constructions counted.
fn engine(s: &Scenario, built: &Arc<AtomicU32>) -> Engine {
    let keychain = Box::new(prestage::host::fake::keychain::FakeKeychain::for_root(
        &s.root,
    ));
    engine_with(s, built, keychain)
}

fn engine_with(
    s: &Scenario,
    built: &Arc<AtomicU32>,
    keychain: Box<dyn prestage::config::keychain::Keychain>,
) -> Engine {
    let sources =
        prestage::config::Sources::single(s.root.resolve(prestage::paths::mac::LOCAL_CONFIG));
    let cfg = prestage::config::load(
        &sources,
        prestage::config::Mode::Run,
        &prestage::ui::strings::is_known_id,
    )
    .unwrap()
    .config;
    let host: Arc<dyn Host> = Arc::new(MacHost::new(s.root.clone()));
    let real = prestage::engine::connect::connector(Arc::clone(&host), &cfg);
    let count = Arc::clone(built);
    let connect: prestage::engine::Connect = Box::new(move |auth| {
        count.fetch_add(1, Ordering::SeqCst);
        real(auth)
    });
    let ui = s.scripted_ui(s.demo_script()).unwrap();
    Engine::new(s.root.clone(), cfg, host, ui, keychain, connect)
        .unwrap()
        .with_timing(prestage::demo::simulation_timing())
}

fn sntp_calls(s: &Scenario) -> usize {
    prestage::host::fake::world::calls(&s.root)
        .unwrap()
        .iter()
        .filter(|c| c.tool == prestage::paths::mac::SNTP)
        .count()
}

fn fallback_lines(s: &Scenario) -> usize {
    Store::new(&s.root)
        .read_journal()
        .unwrap_or_default()
        .iter()
        .filter(|e| e.event == "effect" && e.detail == "admin fallback")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_serves_the_whole_run_and_the_fallback_is_persisted_once() {
    // Before: a client for the steps before the fallback, another after it (forgetting its
    // clock sync and Retry-After windows).
    let s = in_process_scenario().await;
    let built = Arc::new(AtomicU32::new(0));
    let outcome = tokio::time::timeout(
        Duration::from_secs(300),
        engine(&s, &built).run(std::future::pending::<()>()),
    )
    .await
    .expect("the enrollment hung");
    assert_eq!(outcome, Outcome::Done);
    assert_eq!(built.load(Ordering::SeqCst), 1, "one client for the run");
    assert_eq!(sntp_calls(&s), 1);
    assert_eq!(fallback_lines(&s), 1, "decided and journaled once");
    let signed: Vec<u16> = s
        .tenant
        .requests()
        .iter()
        .filter(|r| r.auth == AuthKind::System)
        .map(|r| r.status)
        .collect();
    assert_eq!(
        signed,
        vec![401, 401],
        "signed, signed after the sync, then never"
    );
    let Ok(Loaded::Resumed(state)) = Store::new(&s.root).load() else {
        panic!("no state")
    };
    assert!(state.org.admin_fallback);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_fallback_mode_sends_no_signed_request() {
    let s = in_process_scenario().await;
    let built = Arc::new(AtomicU32::new(0));
    // Stopped (SIGTERM) as soon as the decision is in the journal.
    let stop = async {
        while fallback_lines(&s) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let first = tokio::time::timeout(Duration::from_secs(300), engine(&s, &built).run(stop))
        .await
        .expect("the first run hung");
    assert_eq!(first, Outcome::Stopped);
    let before = s.tenant.requests().len();
    let second = tokio::time::timeout(
        Duration::from_secs(300),
        engine(&s, &built).run(std::future::pending::<()>()),
    )
    .await
    .expect("the second run hung");
    assert_eq!(second, Outcome::Done);
    let after = s.tenant.requests();
    assert!(after.len() > before, "the second run called JumpCloud");
    assert!(
        after[before..].iter().all(|r| r.auth != AuthKind::System),
        "the restart went straight to the admin key"
    );
    assert_eq!(sntp_calls(&s), 1, "no clock sync after the restart");
    assert_eq!(fallback_lines(&s), 1, "not decided again");
}

/// The fake System keychain, noting the step the engine was in at each read.
struct StepNotingKeychain {
    inner: prestage::host::fake::keychain::FakeKeychain,
    root: prestage::paths::Root,
    reads: Arc<Mutex<Vec<prestage::engine::state::Step>>>,
}

impl prestage::config::keychain::Keychain for StepNotingKeychain {
    fn read(
        &self,
        service: &str,
    ) -> Result<Option<SecretString>, prestage::config::keychain::KeychainError> {
        if let Ok(Loaded::Resumed(state)) = Store::new(&self.root).load() {
            self.reads.lock().unwrap().push(state.step);
        }
        self.inner.read(service)
    }

    fn delete(&self, service: &str) -> Result<(), prestage::config::keychain::KeychainError> {
        self.inner.delete(service)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keychain_is_read_only_once_a_step_needs_the_key() {
    // Before: the keychain was read before the group join, whose system call needs no key.
    use prestage::engine::state::Step;
    let mut s = in_process_scenario().await;
    s.tenant.set_faults(prestage::sim::Faults::default());
    s.config.remove("APIKey");
    s.config
        .insert("APIKeyKeychainService".into(), "io.prestage.apikey".into());
    prestage::demo::write_plist(
        &s.root.resolve(prestage::paths::mac::LOCAL_CONFIG),
        &s.config,
    )
    .unwrap();
    let inner = prestage::host::fake::keychain::FakeKeychain::for_root(&s.root);
    inner
        .store(
            "io.prestage.apikey",
            &SecretString::from(s.tenant.api_key().expose_secret().to_owned()),
        )
        .unwrap();
    let reads = Arc::new(Mutex::new(Vec::new()));
    let keychain = Box::new(StepNotingKeychain {
        inner,
        root: s.root.clone(),
        reads: Arc::clone(&reads),
    });
    let built = Arc::new(AtomicU32::new(0));
    let outcome = tokio::time::timeout(
        Duration::from_secs(300),
        engine_with(&s, &built, keychain).run(std::future::pending::<()>()),
    )
    .await
    .expect("the enrollment hung");
    assert_eq!(outcome, Outcome::Done);
    let reads = reads.lock().unwrap().clone();
    assert_eq!(reads.first(), Some(&Step::ReadOrg), "{reads:?}");
    assert_eq!(
        reads.iter().filter(|&&step| step < Step::Cleanup).count(),
        1,
        "read once and kept in memory: {reads:?}"
    );
}
