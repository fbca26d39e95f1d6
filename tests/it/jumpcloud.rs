//! Integration tests of the JumpCloud client against small scripted HTTP servers on
//! 127.0.0.1:0: every call of SPEC §5 checked against the published specs, both auth modes,
//! the search, retries and `Retry-After`, the clock-sync and admin-key fallback, typed errors,
//! `config check --online`, and that no secret reaches a log line or an error.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use prestage::config::{
    AgentConfig, ApiKeySource, Config, Identifier, IdentityConfig, ObjectId, PasswordConfig,
    PolicySource, SecretKind, UiConfig,
};
use prestage::host::HostError;
use prestage::jumpcloud::contract::Contract;
use prestage::jumpcloud::online::{all_ok, online_check};
use prestage::jumpcloud::signing::{self, SystemIdentity};
use prestage::jumpcloud::{
    Client, ClientOptions, ClockSync, Directory, JcError, RetryPolicy, Timeouts,
};
use secrecy::SecretString;
use serde_json::{json, Value};
use url::Url;

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
    async fn sync_clock(&self) -> Result<(), HostError> {
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

// ---------------------------------------------------------------------------------------------
// Tests.

#[tokio::test]
async fn every_request_and_answer_matches_the_published_spec() {
    let mock = Mock::start().await;
    happy_tenant(&mock);
    let c = client(&mock);
    every_call(&c).await;

    let contract = Contract::load(&fixtures().join("openapi")).unwrap();
    let mut operations = BTreeSet::new();
    let mut problems = Vec::new();
    for r in mock.requests() {
        match contract.check_request(&r.method, &r.target, r.json().as_ref()) {
            Ok(op) => {
                operations.insert(op.operation_id);
            }
            Err(e) => problems.extend(e),
        }
        let answer: Option<Value> =
            (!r.reply_body.is_empty()).then(|| serde_json::from_str(&r.reply_body).unwrap());
        if let Err(e) = contract.check_response(&r.method, &r.target, r.status, answer.as_ref()) {
            problems.extend(e);
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    let expected: BTreeSet<String> = [
        "Organization_Get",
        "Organization_List",
        "SystemAssociation_Get",
        "SystemAssociation_Set",
        "SystemGroupMembers_Set",
        "SystemGroup_Get",
        "SystemMember_Get",
        "System_Get",
        "System_Set",
        "UserState_Activate",
        "User_Get",
        "User_Search",
        "User_Set",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(operations, expected);

    // Figures: one request per call on a healthy tenant.
    let counts = c.request_counts();
    eprintln!("requests per call: {counts:?}");
    assert_eq!(c.requests_sent(), 16);
    assert_eq!(counts["join a system group"], 2);
    assert_eq!(counts["find the employee"], 1);
    assert_eq!(
        u64::try_from(mock.requests().len()).unwrap(),
        c.requests_sent()
    );
}

#[tokio::test]
async fn admin_calls_carry_the_key_and_system_calls_a_valid_signature() {
    let mock = Mock::start().await;
    happy_tenant(&mock);
    let c = client(&mock);
    c.org(&oid(ORG)).await.unwrap();
    c.bound_users().await.unwrap();

    let admin = &mock.requests_to("GET", &format!("/api/organizations/{ORG}"))[0];
    assert_eq!(admin.header("x-api-key"), Some(API_KEY));
    assert_eq!(admin.header("x-org-id"), Some(ORG));
    assert!(admin.header("authorization").is_none());
    assert!(admin.header("user-agent").unwrap().starts_with("prestage/"));
    assert_eq!(admin.header("accept"), Some("application/json"));
    assert_eq!(admin.header("content-type"), Some("application/json"));

    let system = &mock.requests_to("GET", &format!("/api/v2/systems/{SYS}/associations"))[0];
    assert!(!system.is_admin());
    assert_eq!(
        system.target,
        format!("/api/v2/systems/{SYS}/associations?targets=user")
    );
    let date = system.header("date").unwrap();
    let sent = httpdate::parse_http_date(date).unwrap();
    let skew = sent
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_else(|e| e.duration());
    assert!(skew < Duration::from_secs(300), "Date {date} is not now");
    let auth = system.header("authorization").unwrap();
    assert!(auth.starts_with(&format!("Signature keyId=\"system/{SYS}\",headers=\"request-line date\",algorithm=\"rsa-sha256\",signature=\"")));
    // The signed request line includes the query string, exactly as sent.
    assert!(signing::verify(
        &public_key(),
        "GET",
        &system.target,
        date,
        auth
    ));
    assert!(!signing::verify(
        &public_key(),
        "GET",
        system.target.split('?').next().unwrap(),
        date,
        auth
    ));
}

#[tokio::test]
async fn search_escapes_the_regex_falls_back_on_400_and_confirms_locally() {
    let mock = Mock::start().await;
    let mut other = user_json(None);
    other["_id"] = json!("5d0000000000000000000def");
    other["email"] = json!("ada.l+test@example.com.evil");
    let mut wanted = user_json(None);
    wanted["email"] = json!("ADA.L+Test@Example.com");
    mock.seq(
        "POST",
        "/api/search/systemusers",
        vec![
            reply(400, json!({"message": "invalid filter"})),
            reply(200, json!({"totalCount": 2, "results": [other, wanted]})),
        ],
    );
    let c = client(&mock);
    let found = c
        .find_users(Identifier::CompanyEmail, "  Ada.L+test@Example.com \n")
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "the non-matching result is dropped");
    assert_eq!(found[0].id, USER);

    let sent = mock.requests_to("POST", "/api/search/systemusers");
    assert_eq!(sent.len(), 2);
    let first = sent[0].json().unwrap();
    assert_eq!(
        first["filter"],
        json!([{"email": {"$regex": r"(?i)^Ada\.L\+test@Example\.com$"}}])
    );
    assert_eq!(first["limit"], 2);
    let fields = first["fields"].as_str().unwrap();
    for f in [
        "_id",
        "username",
        "systemUsername",
        "email",
        "activated",
        "state",
    ] {
        assert!(fields.split(' ').any(|x| x == f), "{f} not in {fields}");
    }
    assert_eq!(
        sent[1].json().unwrap()["filter"],
        json!([{"email": "ada.l+test@example.com"}])
    );

    // Nothing to search for: no request.
    assert!(c
        .find_users(Identifier::LastName, "   ")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_as_transient() {
    let mock = Mock::start().await;
    mock.seq(
        "GET",
        &format!("/api/systems/{SYS}"),
        vec![
            reply(503, json!({"message": "unavailable"})),
            reply(500, Value::Null),
            reply(200, system_json()),
        ],
    );
    let c = client(&mock);
    assert_eq!(c.system().await.unwrap().hostname, "mac-1");
    assert_eq!(c.requests_sent(), 3);

    let mock = Mock::start().await;
    mock.seq(
        "GET",
        &format!("/api/systems/{SYS}"),
        vec![reply(502, Value::Null)],
    );
    let c = client(&mock);
    let err = c.system().await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("HTTP 502"), "{err}");
    assert_eq!(mock.requests().len(), 4, "RetryPolicy::fast has 4 attempts");
}

#[tokio::test]
async fn retry_after_is_honoured_in_seconds_and_http_date_form_across_calls() {
    let mock = Mock::start().await;
    mock.on("GET", &format!("/api/systems/{SYS}"), |_, n| match n {
        0 => reply(429, json!({"message": "Too Many Requests"})).header("retry-after", "1"),
        // An HTTP-date two seconds from now (whole seconds, so at least one second away).
        1 => reply(429, json!({"message": "Too Many Requests"})).header(
            "retry-after",
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2)),
        ),
        _ => reply(200, system_json()),
    });
    let c = client(&mock);
    c.system().await.unwrap();
    let at: Vec<Instant> = mock.requests().iter().map(|r| r.at).collect();
    assert_eq!(at.len(), 3);
    // Lower bounds only: a sleep never ends early, however busy the machine.
    assert!(
        at[1] - at[0] >= Duration::from_millis(990),
        "{:?}",
        at[1] - at[0]
    );
    assert!(
        at[2] - at[1] >= Duration::from_millis(990),
        "{:?}",
        at[2] - at[1]
    );

    // The window also holds back the next call, even after this one gave up.
    let mock = Mock::start().await;
    happy_tenant(&mock);
    mock.state
        .routes
        .lock()
        .unwrap()
        .retain(|(m, p, _, _)| !(m == "GET" && p == &format!("/api/organizations/{ORG}")));
    mock.seq(
        "GET",
        &format!("/api/organizations/{ORG}"),
        vec![reply(429, json!({"message": "Too Many Requests"})).header("retry-after", "1")],
    );
    let mut o = options(&mock);
    o.retry.max_attempts = 1;
    let c = Client::new(o).unwrap();
    let err = c.org(&oid(ORG)).await.unwrap_err();
    assert!(
        err.is_transient() && err.to_string().contains("429"),
        "{err}"
    );
    c.system().await.unwrap();
    let at: Vec<Instant> = mock.requests().iter().map(|r| r.at).collect();
    assert!(
        at[1] - at[0] >= Duration::from_millis(990),
        "{:?}",
        at[1] - at[0]
    );
}

#[tokio::test]
async fn a_password_set_is_never_blindly_repeated() {
    let path = format!("/api/systemusers/{USER}");
    let pw = SecretString::from(PASSWORD);

    // A 502: the set may have happened. One request, an Uncertain error.
    let mock = Mock::start().await;
    mock.seq("PUT", &path, vec![reply(502, Value::Null)]);
    let err = client(&mock).set_password(USER, &pw).await.unwrap_err();
    assert!(err.is_uncertain() && err.is_transient(), "{err}");
    assert_eq!(mock.requests().len(), 1);

    // A timeout: same.
    let mock = Mock::start().await;
    mock.seq(
        "PUT",
        &path,
        vec![reply(200, user_json(Some("x"))).delayed(Duration::from_secs(5))],
    );
    let mut o = options(&mock);
    o.timeouts = Timeouts {
        connect: Duration::from_secs(5),
        request: Duration::from_millis(300),
    };
    let err = Client::new(o)
        .unwrap()
        .set_password(USER, &pw)
        .await
        .unwrap_err();
    assert!(err.is_uncertain(), "{err}");
    assert_eq!(mock.requests().len(), 1);

    // A 429 was refused unprocessed: retried.
    let mock = Mock::start().await;
    mock.seq(
        "PUT",
        &path,
        vec![
            reply(429, Value::Null).header("retry-after", "0"),
            reply(200, user_json(Some("x"))),
        ],
    );
    client(&mock).set_password(USER, &pw).await.unwrap();
    assert_eq!(mock.requests().len(), 2);

    // Nobody listening: it never arrived, so retrying is safe; in the end a transient error.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut o = ClientOptions::new(Url::parse(&format!("http://127.0.0.1:{port}")).unwrap());
    o.api_key = Some(SecretString::from(API_KEY));
    o.retry = RetryPolicy::fast();
    let c = Client::new(o).unwrap();
    let err = c.set_password(USER, &pw).await.unwrap_err();
    assert!(err.is_transient() && !err.is_uncertain(), "{err}");
    assert_eq!(c.requests_sent(), 4);
}

#[tokio::test]
async fn system_401_syncs_the_clock_once_then_falls_back_to_the_admin_key() {
    let mock = Mock::start().await;
    let admin_only = |r: &Captured, _| {
        if r.is_admin() {
            reply(200, system_json())
        } else {
            reply(401, json!({"message": "Unauthorized"}))
        }
    };
    mock.on("GET", &format!("/api/systems/{SYS}"), admin_only);
    mock.on(
        "GET",
        &format!("/api/v2/systems/{SYS}/associations"),
        move |r, _| {
            if r.is_admin() {
                reply(200, json!([]))
            } else {
                reply(401, json!({"message": "Unauthorized"}))
            }
        },
    );
    let clock = Arc::new(CountingClock::default());
    let mut o = options(&mock);
    o.clock_sync = Some(clock.clone());
    let c = Client::new(o).unwrap();
    c.system().await.unwrap();
    assert_eq!(clock.0.load(Ordering::SeqCst), 1);
    assert!(c.uses_admin_fallback());
    let kinds: Vec<bool> = mock.requests().iter().map(Captured::is_admin).collect();
    assert_eq!(
        kinds,
        vec![false, false, true],
        "signed, signed after sync, admin"
    );
    // Later system calls go straight to the admin key, without a signature.
    c.bound_users().await.unwrap();
    let last = mock.requests().pop().unwrap();
    assert!(last.is_admin() && last.header("authorization").is_none());
    assert_eq!(clock.0.load(Ordering::SeqCst), 1);

    // A clock that was off: the sync fixes it, no fallback.
    let mock = Mock::start().await;
    mock.seq(
        "GET",
        &format!("/api/systems/{SYS}"),
        vec![reply(401, Value::Null), reply(200, system_json())],
    );
    let clock = Arc::new(CountingClock::default());
    let mut o = options(&mock);
    o.clock_sync = Some(clock.clone());
    let c = Client::new(o).unwrap();
    c.system().await.unwrap();
    assert!(!c.uses_admin_fallback());
    assert_eq!(
        (clock.0.load(Ordering::SeqCst), mock.requests().len()),
        (1, 2)
    );

    // No API key to fall back on: a typed error naming the system.
    let mock = Mock::start().await;
    mock.seq(
        "GET",
        &format!("/api/systems/{SYS}"),
        vec![reply(401, Value::Null)],
    );
    let mut o = options(&mock);
    o.api_key = None;
    let err = Client::new(o).unwrap().system().await.unwrap_err();
    assert!(matches!(err, JcError::SignatureRejected { .. }), "{err:?}");
    assert!(err.to_string().contains(SYS), "{err}");
}

#[tokio::test]
async fn typed_errors_name_the_host_and_the_config_key() {
    let mock = Mock::start().await;
    mock.seq(
        "GET",
        &format!("/api/organizations/{ORG}"),
        vec![reply(401, json!({"message": "Unauthorized"}))],
    );
    mock.seq(
        "POST",
        "/api/search/systemusers",
        vec![reply(403, json!({"message": "Forbidden"}))],
    );
    mock.seq(
        "POST",
        &format!("/api/v2/systemgroups/{GROUP}/members"),
        vec![reply(404, json!({"message": "Not Found"}))],
    );
    let c = client(&mock);
    let err = c.org(&oid(ORG)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the API key was rejected by 127.0.0.1 (401): check APIKey (or the key source in use)"
    );
    let err = c.find_users(Identifier::Username, "ada").await.unwrap_err();
    assert!(matches!(err, JcError::Forbidden { .. }), "{err:?}");
    let err = c.add_system_to_group(&oid(GROUP)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("EnrollmentGroupID {GROUP} does not exist in this organisation: check EnrollmentGroupID")
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn already_done_is_success() {
    let mock = Mock::start().await;
    mock.seq(
        "POST",
        &format!("/api/v2/systemgroups/{GROUP}/members"),
        vec![reply(409, json!({"message": "Already Exists"}))],
    );
    mock.seq(
        "POST",
        &format!("/api/v2/systemgroups/{POST_GROUP}/members"),
        vec![reply(404, json!({"message": "Not Found"}))],
    );
    mock.on(
        "POST",
        &format!("/api/v2/systems/{SYS}/associations"),
        |_, _| reply(409, json!({"message": "Already Exists"})),
    );
    let c = client(&mock);
    c.add_system_to_group(&oid(GROUP)).await.unwrap();
    c.remove_system_from_group(&oid(POST_GROUP)).await.unwrap();
    // SPEC §5: "an existing bind counts as done", whatever its sudo right: one `add` each,
    // nothing read, nothing updated.
    c.bind_user(USER, false).await.unwrap();
    c.bind_user(USER, true).await.unwrap();
    let binds = mock.requests_to("POST", &format!("/api/v2/systems/{SYS}/associations"));
    let ops: Vec<Value> = binds
        .iter()
        .map(|r| r.json().unwrap()["op"].clone())
        .collect();
    assert_eq!(ops, [json!("add"), json!("add")]);
    assert_eq!(
        binds[1].json().unwrap()["attributes"]["sudo"],
        json!({"enabled": true, "withoutPassword": false})
    );
    assert_eq!(mock.requests().len(), 4, "only the four adds and removes");
}

#[tokio::test]
async fn list_reads_follow_every_page() {
    // A server that pages like JumpCloud: `limit` defaults to 10 (v2.json trait:limit).
    fn paged(r: &Captured, total: usize) -> Reply {
        let param = |name: &str| {
            r.target
                .split(['?', '&'])
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .map(|v| v.parse::<usize>().unwrap())
        };
        let (skip, limit) = (param("skip").unwrap_or(0), param("limit").unwrap_or(10));
        let page: Vec<Value> = (skip..total.min(skip + limit))
            .map(|i| json!({"id": format!("g{i}"), "type": "system_group", "paths": []}))
            .collect();
        reply(200, Value::Array(page))
    }
    let mock = Mock::start().await;
    mock.on("GET", &format!("/api/v2/systems/{SYS}/memberof"), |r, _| {
        paged(r, 115)
    });
    let groups = client(&mock).system_groups().await.unwrap();
    assert_eq!(groups.len(), 115);
    assert_eq!(groups[114], "g114");
    let targets: Vec<String> = mock.requests().into_iter().map(|r| r.target).collect();
    // The first read is the call exactly as SPEC §5 lists it; only a full page asks for more.
    assert_eq!(
        targets,
        vec![
            format!("/api/v2/systems/{SYS}/memberof"),
            format!("/api/v2/systems/{SYS}/memberof?limit=100&skip=10"),
            format!("/api/v2/systems/{SYS}/memberof?limit=100&skip=110"),
        ]
    );

    // A short first page is the whole list: one request, no query string.
    let mock = Mock::start().await;
    mock.on("GET", &format!("/api/v2/systems/{SYS}/memberof"), |r, _| {
        paged(r, 3)
    });
    assert_eq!(client(&mock).system_groups().await.unwrap().len(), 3);
    let targets: Vec<String> = mock.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, vec![format!("/api/v2/systems/{SYS}/memberof")]);
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

#[tokio::test]
async fn no_secret_reaches_a_log_line_or_an_error() {
    let buffer = LogBuffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    // tracing-core caches each callsite's interest globally. With exactly one registered
    // dispatcher it computes that interest from the *current thread's* default, so a callsite
    // first hit by a parallel test thread (no subscriber) would be cached as "never" and our
    // events lost. A second live dispatcher makes it consult every registered one.
    let second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();

    let mock = Mock::start().await;
    happy_tenant(&mock);
    let clock = Arc::new(CountingClock::default());
    let mut o = options(&mock);
    o.clock_sync = Some(clock);
    let c = Client::new(o).unwrap();
    every_call(&c).await;

    // Failures, retries, a server that echoes the password, the admin fallback.
    let mut errors: Vec<JcError> = Vec::new();
    let mock2 = Mock::start().await;
    mock2.seq(
        "PUT",
        &format!("/api/systemusers/{USER}"),
        vec![reply(
            400,
            json!({"message": format!("password {PASSWORD} was used before"), "error": API_KEY}),
        )],
    );
    mock2.seq(
        "GET",
        &format!("/api/organizations/{ORG}"),
        vec![reply(503, Value::Null)],
    );
    mock2.seq(
        "GET",
        &format!("/api/systems/{SYS}"),
        vec![reply(401, Value::Null)],
    );
    mock2.seq(
        "POST",
        "/api/search/systemusers",
        vec![
            reply(429, Value::Null).header("retry-after", "0"),
            reply(401, Value::Null),
        ],
    );
    let c2 = client(&mock2);
    errors.push(
        c2.set_password(USER, &SecretString::from(PASSWORD))
            .await
            .unwrap_err(),
    );
    errors.push(c2.org(&oid(ORG)).await.unwrap_err());
    errors.push(c2.system().await.unwrap_err());
    errors.push(
        c2.find_users(Identifier::CompanyEmail, "ada@example.com")
            .await
            .unwrap_err(),
    );
    drop(guard);
    drop(second);

    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("JumpCloud request"), "the log was captured");
    assert!(log.contains("retrying"), "retries were logged");
    let mut secrets = vec![API_KEY.to_owned(), PASSWORD.to_owned()];
    for r in mock.requests().iter().chain(mock2.requests().iter()) {
        if let Some(auth) = r.header("authorization") {
            let sig = auth
                .split("signature=\"")
                .nth(1)
                .unwrap()
                .trim_end_matches('"');
            secrets.push(sig.to_owned());
        }
    }
    assert!(secrets.len() > 5, "signatures were sent");
    assert!(
        errors[0].to_string().contains("<redacted>"),
        "{}",
        errors[0]
    );
    let options_debug = format!("{:?}", options(&mock));
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "a secret is in the log");
        assert!(!options_debug.contains(secret.as_str()));
        for e in &errors {
            assert!(!e.to_string().contains(secret.as_str()), "{e}");
            assert!(!format!("{e:?}").contains(secret.as_str()), "{e:?}");
        }
    }
}

fn config(url: &Url, post_group: &str, policy: PolicySource) -> Config {
    Config {
        connect_key: prestage::config::ConnectKey::parse(
            "0123456789abcdef0123456789abcdef01234567",
        )
        .unwrap(),
        api_key: ApiKeySource::Plain(SecretString::from(API_KEY)),
        api_base_url: url.clone(),
        org_id: None,
        enrollment_group_id: Some(oid(GROUP)),
        post_enrollment_group_id: Some(oid(post_group)),
        enrollment_user: Some("welcome".to_owned()),
        enrollment_user_password: None,
        secure_token_timeout: Duration::from_secs(300),
        delete_enrollment_users: true,
        admin: false,
        identity: IdentityConfig {
            identifier: Identifier::CompanyEmail,
            secret: SecretKind::None,
            max_attempts: 5,
            cooldown: Duration::from_secs(300),
            preset: None,
            preset_raw: None,
        },
        password: PasswordConfig {
            require_for_active_users: false,
            policy,
        },
        ui: UiConfig::default(),
        agent: AgentConfig {
            package_url: Url::parse("https://cdn02.jumpcloud.com/production/jumpcloud-agent.pkg")
                .unwrap(),
            package_path: None,
            install_timeout: Duration::from_secs(600),
            takeover_timeout: Duration::from_secs(600),
        },
        ntp_server: "time.apple.com".to_owned(),
        report_to_directory: true,
        computer_name: None,
        webhooks: Vec::new(),
        preflight: prestage::config::PreflightConfig::default(),
    }
}

#[tokio::test]
async fn online_check_reports_a_line_per_check_and_only_reads() {
    let mock = Mock::start().await;
    happy_tenant(&mock);
    let lines = online_check(
        &config(&mock.url, POST_GROUP, PolicySource::Tenant),
        &SecretString::from(API_KEY),
    )
    .await;
    let shown: Vec<String> = lines.iter().map(ToString::to_string).collect();
    eprintln!("{}", shown.join("\n"));
    let by_name: BTreeMap<&str, &prestage::jumpcloud::online::CheckLine> =
        lines.iter().map(|l| (l.name.as_str(), l)).collect();
    assert!(by_name["ConnectKey"].ok);
    assert!(by_name["API key"].ok);
    assert!(by_name["OrgID"].ok && by_name["OrgID"].detail.contains("Acme"));
    assert!(by_name["EnrollmentGroupID"].ok);
    assert!(
        !by_name["PostEnrollmentGroupID"].ok,
        "no such group in the mock"
    );
    assert_eq!(
        by_name["PostEnrollmentGroupID"].detail,
        format!("PostEnrollmentGroupID {POST_GROUP} does not exist in this organisation: check PostEnrollmentGroupID")
    );
    assert!(by_name["Password.Policy"].ok);
    assert!(by_name["Password.Policy"]
        .detail
        .contains("at least 12 characters, an upper-case letter"));
    assert!(!all_ok(&lines));
    assert!(
        mock.requests().iter().all(|r| r.method == "GET"),
        "read-only"
    );
    let list = &mock.requests_to("GET", "/api/organizations")[0];
    assert!(list.header("x-org-id").is_none());
    let group = &mock.requests_to("GET", &format!("/api/v2/systemgroups/{GROUP}"))[0];
    assert_eq!(
        group.header("x-org-id"),
        Some(ORG),
        "the org found is used afterwards"
    );

    // A rejected key stops the checks with the admin-facing message.
    let mock = Mock::start().await;
    mock.seq(
        "GET",
        "/api/organizations",
        vec![reply(401, json!({"message": "Unauthorized"}))],
    );
    let lines = online_check(
        &config(&mock.url, POST_GROUP, PolicySource::Tenant),
        &SecretString::from("wrong"),
    )
    .await;
    let key = lines.iter().find(|l| l.name == "API key").unwrap();
    assert!(!key.ok);
    assert!(
        key.detail
            .contains("rejected by 127.0.0.1 (401): check APIKey"),
        "{key}"
    );
    assert_eq!(mock.requests().len(), 1);
}

#[test]
fn no_openssl_in_the_dependency_tree() {
    // Cargo.lock lists every package of every target; `openssl-probe` (a pure-Rust lookup of
    // certificate directories) is not OpenSSL.
    let lock =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock")).unwrap();
    for banned in ["openssl-sys", "openssl", "native-tls", "openssl-src"] {
        assert!(
            !lock.contains(&format!("name = \"{banned}\"")),
            "{banned} is in Cargo.lock"
        );
    }
}

#[tokio::test]
async fn an_echoed_password_is_hidden_in_any_encoding() {
    // A password with characters JSON escapes: an error body that echoes the request shows it
    // escaped, not as typed.
    let password = "Tr\"icky\\Pass-9";
    let escaped = serde_json::to_string(password).unwrap();
    let escaped = escaped.trim_matches('"').to_owned();
    let mock = Mock::start().await;
    mock.seq(
        "PUT",
        &format!("/api/systemusers/{USER}"),
        vec![
            // The message quotes the request body.
            reply(
                400,
                json!({"message": format!("bad request {{\"password\":\"{escaped}\"}}")}),
            ),
            // No readable message at all: the raw body would be all there is.
            reply(400, json!({"message": {"password": password}})),
        ],
    );
    let c = client(&mock);
    for _ in 0..2 {
        let err = c
            .set_password(USER, &SecretString::from(password))
            .await
            .unwrap_err()
            .to_string();
        assert!(!err.contains(password), "{err}");
        assert!(!err.contains(&escaped), "{err}");
        assert!(!err.contains("icky"), "{err}");
    }
}
