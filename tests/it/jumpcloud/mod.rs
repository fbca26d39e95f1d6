//! Integration tests of the JumpCloud client against small scripted HTTP servers on
//! 127.0.0.1:0: every call of SPEC §5 checked against the published specs, both auth modes,
//! the search, retries and `Retry-After`, the clock-sync and admin-key fallback, typed errors,
//! `config check --online`, and that no secret reaches a log line or an error.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use prestage::config::{Identifier, ObjectId};
use prestage::jumpcloud::signing::SystemIdentity;
use prestage::jumpcloud::{Client, ClientOptions, ClockSync, Directory, RetryPolicy};
use secrecy::SecretString;
use serde_json::{json, Value};
use url::Url;

mod calls;
mod online_check;
mod retries;
mod secrets;

pub(super) const SYS: &str = "5f0c5f4d2b3c4a1e9d8f7a6b";

pub(super) const ORG: &str = "5a1b2c3d4e5f60718293a4b5";

pub(super) const GROUP: &str = "5e0000000000000000000001";

pub(super) const POST_GROUP: &str = "5e0000000000000000000002";

pub(super) const USER: &str = "5d0000000000000000000abc";

pub(super) const API_KEY: &str = "jcapi-test-0123456789abcdef0123456789abcdef";

pub(super) const PASSWORD: &str = "Correct-Horse-7-Battery";

pub(super) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

// ---------------------------------------------------------------------------------------------
// A scripted server that records every request.

#[derive(Clone, Debug)]
pub(super) struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

#[allow(clippy::needless_pass_by_value)] // `json!(...)` literals read best by value
pub(super) fn reply(status: u16, body: Value) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: if body.is_null() {
            String::new()
        } else {
            body.to_string()
        },
        delay: Duration::ZERO,
    }
}

impl Reply {
    pub(super) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(super) fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Clone, Debug)]
pub(super) struct Captured {
    pub(super) method: String,
    /// Path and query as received.
    pub(super) target: String,
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
    pub(super) at: Instant,
    pub(super) status: u16,
    pub(super) reply_body: String,
}

impl Captured {
    pub(super) fn json(&self) -> Option<Value> {
        (!self.body.is_empty()).then(|| serde_json::from_slice(&self.body).unwrap())
    }

    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub(super) fn is_admin(&self) -> bool {
        self.headers.contains_key("x-api-key")
    }
}

type Responder = Box<dyn Fn(&Captured, usize) -> Reply + Send + Sync>;

/// (method, path, responder, requests answered so far).
type Route = (String, String, Arc<Responder>, usize);

#[derive(Default)]
struct MockState {
    routes: Mutex<Vec<Route>>,
    log: Mutex<Vec<Captured>>,
}

pub(super) struct Mock {
    pub(super) url: Url,
    state: Arc<MockState>,
}

impl Mock {
    pub(super) async fn start() -> Self {
        let state = Arc::new(MockState::default());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url: Url::parse(&format!("http://{addr}")).unwrap(),
            state,
        }
    }

    /// Answers `method path` (path without query) with `f(request, n)`, n counting from 0.
    pub(super) fn on(
        &self,
        method: &str,
        path: &str,
        f: impl Fn(&Captured, usize) -> Reply + Send + Sync + 'static,
    ) {
        self.state.routes.lock().unwrap().push((
            method.to_owned(),
            path.to_owned(),
            Arc::new(Box::new(f)),
            0,
        ));
    }

    /// Answers with `replies` in turn, repeating the last.
    pub(super) fn seq(&self, method: &str, path: &str, replies: Vec<Reply>) {
        self.on(method, path, move |_, n| {
            replies[n.min(replies.len() - 1)].clone()
        });
    }

    pub(super) fn requests(&self) -> Vec<Captured> {
        self.state.log.lock().unwrap().clone()
    }

    pub(super) fn requests_to(&self, method: &str, path: &str) -> Vec<Captured> {
        self.requests()
            .into_iter()
            .filter(|c| c.method == method && c.target.split('?').next() == Some(path))
            .collect()
    }
}

async fn handle(State(state): State<Arc<MockState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap().to_vec();
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), ToString::to_string);
    let mut captured = Captured {
        method: parts.method.to_string(),
        target: target.clone(),
        headers: parts.headers,
        body,
        at: Instant::now(),
        status: 0,
        reply_body: String::new(),
    };
    let path = target.split('?').next().unwrap_or("").to_owned();
    let found = {
        let mut routes = state.routes.lock().unwrap();
        routes
            .iter_mut()
            .find(|(m, p, _, _)| *m == captured.method && *p == path)
            .map(|(_, _, f, n)| {
                let nth = *n;
                *n += 1;
                (f.clone(), nth)
            })
    };
    let r = match found {
        Some((f, nth)) => f(&captured, nth),
        None => reply(404, json!({"message": "Not Found"})),
    };
    captured.status = r.status;
    captured.reply_body = r.body.clone();
    state.log.lock().unwrap().push(captured);
    if !r.delay.is_zero() {
        tokio::time::sleep(r.delay).await;
    }
    let mut response = Response::builder().status(StatusCode::from_u16(r.status).unwrap());
    if !r.body.is_empty() {
        response = response.header("content-type", "application/json");
    }
    for (name, value) in &r.headers {
        response = response.header(*name, value);
    }
    response.body(Body::from(r.body)).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Clients.

pub(super) fn identity() -> SystemIdentity {
    let pem = std::fs::read_to_string(fixtures().join("jumpcloud/client-pkcs1.key")).unwrap();
    SystemIdentity::from_pem(SYS, &SecretString::from(pem)).unwrap()
}

pub(super) fn public_key() -> Vec<u8> {
    std::fs::read(fixtures().join("jumpcloud/client-pub-pkcs1.der")).unwrap()
}

pub(super) fn options(mock: &Mock) -> ClientOptions {
    let mut o = ClientOptions::new(mock.url.clone());
    o.api_key = Some(SecretString::from(API_KEY));
    o.org_id = Some(ORG.to_owned());
    o.system = Some(identity());
    o.retry = RetryPolicy::fast();
    o.group_keys.insert(GROUP.to_owned(), "EnrollmentGroupID");
    o.group_keys
        .insert(POST_GROUP.to_owned(), "PostEnrollmentGroupID");
    o
}

pub(super) fn client(mock: &Mock) -> Client {
    Client::new(options(mock)).unwrap()
}

pub(super) fn oid(s: &str) -> ObjectId {
    ObjectId::parse(s).unwrap()
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

// ---------------------------------------------------------------------------------------------
// Spec-valid answers of a happy tenant.

pub(super) fn user_json(password_date: Option<&str>) -> Value {
    json!({
        "_id": USER, "username": "ada", "systemUsername": "ada.l", "email": "Ada@Example.com",
        "lastname": "Lovelace", "description": "ada@home.example", "employeeIdentifier": "E-1",
        "activated": password_date.is_some(), "state": "ACTIVATED",
        "attributes": [{"name": "code", "value": "1234"}], "password_date": password_date
    })
}

fn system_json() -> Value {
    json!({"_id": SYS, "organization": ORG, "hostname": "mac-1", "description": "prestage: start"})
}

fn org_json() -> Value {
    json!({"_id": ORG, "displayName": "Acme", "settings": {
        "name": "Acme", "passwordCompliance": "custom",
        "passwordPolicy": {"enableMinLength": true, "minLength": 12, "needsUppercase": true,
                           "needsLowercase": false, "needsNumeric": false, "needsSymbolic": false,
                           "allowUsernameSubstring": false,
                           "disallowSequentialOrRepetitiveChars": true,
                           "disallowCommonlyUsedPasswords": true,
                           "enableMaxHistory": true, "maxHistory": 5,
                           "enableMinChangePeriodInDays": true, "minChangePeriodInDays": 1}}})
}

pub(super) fn happy_tenant(mock: &Mock) {
    mock.seq(
        "POST",
        &format!("/api/v2/systemgroups/{GROUP}/members"),
        vec![reply(204, Value::Null)],
    );
    mock.seq(
        "POST",
        &format!("/api/v2/systemgroups/{POST_GROUP}/members"),
        vec![reply(204, Value::Null)],
    );
    mock.seq(
        "GET",
        &format!("/api/v2/systems/{SYS}/memberof"),
        vec![reply(
            200,
            json!([{"id": GROUP, "type": "system_group",
                    "paths": [[{"to": {"id": GROUP, "type": "system_group"}}]]}]),
        )],
    );
    mock.seq(
        "GET",
        &format!("/api/systems/{SYS}"),
        vec![reply(200, system_json())],
    );
    mock.seq(
        "PUT",
        &format!("/api/systems/{SYS}"),
        vec![reply(200, system_json())],
    );
    mock.seq(
        "GET",
        &format!("/api/organizations/{ORG}"),
        vec![reply(200, org_json())],
    );
    mock.seq(
        "GET",
        "/api/organizations",
        vec![reply(
            200,
            json!({"totalCount": 1, "results": [{"_id": ORG, "displayName": "Acme"}]}),
        )],
    );
    mock.seq(
        "POST",
        "/api/search/systemusers",
        vec![reply(
            200,
            json!({"totalCount": 1, "results": [user_json(None)]}),
        )],
    );
    mock.seq(
        "POST",
        &format!("/api/systemusers/{USER}/state/activate"),
        vec![reply(200, Value::Null)],
    );
    mock.seq(
        "PUT",
        &format!("/api/systemusers/{USER}"),
        vec![reply(200, user_json(Some("2026-11-25T08:31:00.000Z")))],
    );
    mock.seq(
        "GET",
        &format!("/api/systemusers/{USER}"),
        vec![reply(200, user_json(Some("2026-11-25T08:31:00.000Z")))],
    );
    mock.seq(
        "POST",
        &format!("/api/v2/systems/{SYS}/associations"),
        vec![reply(204, Value::Null)],
    );
    mock.seq(
        "GET",
        &format!("/api/v2/systems/{SYS}/associations"),
        vec![reply(
            200,
            json!([{"to": {"id": USER, "type": "user"},
                    "attributes": {"sudo": {"enabled": true, "withoutPassword": false}}}]),
        )],
    );
    mock.seq(
        "GET",
        &format!("/api/v2/systemgroups/{GROUP}"),
        vec![reply(
            200,
            json!({"id": GROUP, "name": "Enrollment", "type": "system_group"}),
        )],
    );
}

/// Every Directory call of SPEC §5, in enrollment order, plus the two online-check reads.
async fn every_call(c: &Client) {
    c.add_system_to_group(&oid(GROUP)).await.unwrap();
    assert_eq!(c.system_groups().await.unwrap(), vec![GROUP.to_owned()]);
    let sys = c.system().await.unwrap();
    assert_eq!((sys.id.as_str(), sys.organization.as_str()), (SYS, ORG));
    let org = c.org(&oid(ORG)).await.unwrap();
    assert_eq!(org.name, "Acme");
    assert_eq!(org.password_policy.min_length, 12);
    assert!(org.password_policy.require_uppercase);
    let p = &org.password_policy;
    assert!(p.forbid_username && p.forbid_sequences && p.forbid_common);
    assert_eq!((p.history, p.min_change_days), (5, 1));
    let users = c
        .find_users(Identifier::CompanyEmail, "ada@example.com")
        .await
        .unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].local_name(), "ada.l");
    c.activate_user(USER).await.unwrap();
    c.set_password(USER, &SecretString::from(PASSWORD))
        .await
        .unwrap();
    let back = c.user(USER).await.unwrap();
    assert!(back.activated && back.password_date.is_some());
    c.bind_user(USER, true).await.unwrap();
    let bound = c.bound_users().await.unwrap();
    assert_eq!(bound.len(), 1);
    assert!(bound[0].sudo);
    c.remove_system_from_group(&oid(GROUP)).await.unwrap();
    c.add_system_to_group(&oid(POST_GROUP)).await.unwrap();
    c.report("prestage: enrolled ada.l").await.unwrap();
    // `ComputerName`: `displayName` is a `systemput` property (no exception in the checker).
    c.set_display_name("MAC-JHJG5J").await.unwrap();
    assert_eq!(c.organizations().await.unwrap().len(), 1);
    assert_eq!(
        c.system_group(&oid(GROUP), "EnrollmentGroupID")
            .await
            .unwrap(),
        "Enrollment"
    );
}

/// A buffer the log is written into.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
