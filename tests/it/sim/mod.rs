//! Integration tests: the simulated JumpCloud tenant (over real HTTP with plain reqwest) and
//! the simulated agent on a temporary fake Mac. Every tenant here checks its own responses
//! against the published specs (`tests/fixtures/openapi/`), and each test ends by asserting
//! there was no contract violation.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use prestage::host::fake::world::{FakePackage, World, AGENT_PACKAGE_ID};
use prestage::paths::{mac, Root};
use prestage::sim::contract::Specs;
use prestage::sim::{SimOptions, SystemKey, Tenant};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

mod agent;
mod tenant_api;
mod tenant_faults;

fn specs() -> Arc<Specs> {
    static SPECS: OnceLock<Arc<Specs>> = OnceLock::new();
    SPECS
        .get_or_init(|| {
            let dir =
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openapi");
            Arc::new(Specs::load(&dir).unwrap())
        })
        .clone()
}

pub(super) fn opts() -> SimOptions {
    SimOptions {
        contract: Some(specs()),
        ..SimOptions::default()
    }
}

pub(super) async fn start(o: SimOptions) -> Tenant {
    Tenant::start(o).await.unwrap()
}

pub(super) fn assert_contract(t: &Tenant) {
    let v = t.contract_violations();
    assert!(v.is_empty(), "contract violations: {v:#?}");
}

/// One HTTP answer.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: u16,
    headers: reqwest::header::HeaderMap,
    pub(super) body: Option<Value>,
    raw: Vec<u8>,
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent("sim-tests")
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub(super) async fn send(rb: reqwest::RequestBuilder) -> Answer {
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let raw = resp.bytes().await.unwrap().to_vec();
    let body = serde_json::from_slice(&raw).ok();
    Answer {
        status,
        headers,
        body,
        raw,
    }
}

pub(super) fn request(
    t: &Tenant,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> reqwest::RequestBuilder {
    let url = t.url().join(path.trim_start_matches('/')).unwrap();
    let mut rb = http().request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
    rb = rb.header("accept", "application/json");
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(serde_json::to_vec(b).unwrap());
    }
    rb
}

pub(super) async fn admin(t: &Tenant, method: &str, path: &str, body: Option<&Value>) -> Answer {
    send(request(t, method, path, body).header("x-api-key", t.api_key().expose_secret())).await
}

pub(super) fn sign_header(
    key: &SystemKey,
    system: &str,
    method: &str,
    target: &str,
    date: &str,
) -> String {
    let signed = format!("{method} {target} HTTP/1.1\ndate: {date}");
    let sig = base64::engine::general_purpose::STANDARD.encode(key.sign(signed.as_bytes()));
    format!(
        r#"Signature keyId="system/{system}",headers="request-line date",algorithm="rsa-sha256",signature="{sig}""#
    )
}

async fn signed_at(
    t: &Tenant,
    key: &SystemKey,
    system: &str,
    method: &str,
    target: &str,
    body: Option<&Value>,
    when: SystemTime,
) -> Answer {
    let date = httpdate::fmt_http_date(when);
    let auth = sign_header(key, system, method, target, &date);
    send(
        request(t, method, target, body)
            .header("date", date)
            .header("authorization", auth),
    )
    .await
}

pub(super) async fn signed(
    t: &Tenant,
    key: &SystemKey,
    system: &str,
    method: &str,
    target: &str,
    body: Option<&Value>,
) -> Answer {
    signed_at(t, key, system, method, target, body, SystemTime::now()).await
}

/// A system registered with a key the test holds.
pub(super) fn system(t: &Tenant, name: &str) -> (String, SystemKey) {
    let key = SystemKey::generate().unwrap();
    let id = t.register_system(name, &key.public_der());
    (id, key)
}

#[allow(clippy::needless_pass_by_value)] // call sites read better with json! literals
fn search(filter: Value, fields: &str, limit: u64) -> Value {
    json!({"filter": filter, "fields": fields, "limit": limit})
}

fn ids(a: &Answer) -> Vec<String> {
    a.body.as_ref().unwrap()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["_id"].as_str().unwrap().to_owned())
        .collect()
}

/// A fake Mac with the agent package on disk and installed, and a bootstrap file.
fn fake_mac(connect_key: &str) -> (tempfile::TempDir, Root) {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    FakePackage::jumpcloud_agent()
        .write(&root.resolve("/private/tmp/jumpcloud-agent.pkg"))
        .unwrap();
    let bootstrap = root.resolve(mac::JC_BOOTSTRAP);
    std::fs::create_dir_all(bootstrap.parent().unwrap()).unwrap();
    std::fs::write(
        &bootstrap,
        serde_json::to_vec(&json!({
            "publicKickstartUrl": "https://kickstart.jumpcloud.com:443",
            "privateKickstartUrl": "https://private-kickstart.jumpcloud.com:443",
            "connectKey": connect_key,
        }))
        .unwrap(),
    )
    .unwrap();
    World::update(&root, |w| {
        w.add_user("welcome", true, true);
        w.extra.insert("hostname".into(), json!("ada-mbp"));
    })
    .unwrap();
    (dir, root)
}

fn install_agent(root: &Root) {
    World::update(root, |w| w.installed_packages.push(AGENT_PACKAGE_ID.into())).unwrap();
}

fn agent_log(root: &Root) -> String {
    std::fs::read_to_string(root.resolve(mac::JC_AGENT_LOG)).unwrap_or_default()
}
