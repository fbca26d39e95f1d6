//! Integration tests: the simulated JumpCloud tenant (over real HTTP with plain reqwest) and
//! the simulated agent on a temporary fake Mac. Every tenant here checks its own responses
//! against the published specs (`tests/fixtures/openapi/`), and each test ends by asserting
//! there was no contract violation.

use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use prestage::host::fake::world::{FakePackage, World, AGENT_PACKAGE_ID};
use prestage::jumpcloud::UserState;
use prestage::paths::{mac, Root};
use prestage::policy::PasswordPolicy;
use prestage::sim::contract::Specs;
use prestage::sim::{
    AgentBehaviour, AgentMode, AuthKind, Faults, RateLimit, SimOptions, SimUser, SystemKey, Tenant,
};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

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

#[tokio::test]
async fn search_filters_are_case_sensitive_plain_and_regex_insensitive() {
    let t = start(opts()).await;
    let ada =
        t.add_user(SimUser::pending("ada", "Ada.Lovelace+eng@Example.com").lastname("Lovelace"));
    let bob = t.add_user(SimUser::active("bob", "bob@example.com").lastname("Lovelace"));

    // Plain values match exactly and case-sensitively.
    let a = admin(
        &t,
        "POST",
        "/api/search/systemusers",
        Some(&search(
            json!([{"email": "ada.lovelace+eng@example.com"}]),
            "_id email",
            2,
        )),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body.as_ref().unwrap()["totalCount"], 0);
    let a = admin(
        &t,
        "POST",
        "/api/search/systemusers",
        Some(&search(
            json!([{"email": "Ada.Lovelace+eng@Example.com"}]),
            "_id email",
            2,
        )),
    )
    .await;
    assert_eq!(ids(&a), vec![ada.clone()]);

    // `$regex` with (?i) and the input escaped matches whatever the case; the `+` in the data
    // is a quantifier when left unescaped, so that form does not match.
    let escaped = format!("(?i)^{}$", regex::escape("ada.lovelace+eng@example.com"));
    let a = admin(
        &t,
        "POST",
        "/api/search/systemusers",
        Some(&search(
            json!([{"email": {"$regex": escaped}}]),
            "_id email",
            2,
        )),
    )
    .await;
    assert_eq!(ids(&a), vec![ada.clone()]);
    let a = admin(
        &t,
        "POST",
        "/api/search/systemusers",
        Some(&search(
            json!([{"email": {"$regex": "(?i)^ada.lovelace+eng@example.com$"}}]),
            "",
            2,
        )),
    )
    .await;
    assert_eq!(ids(&a), Vec::<String>::new());

    // and/or forms.
    let a = admin(
        &t,
        "POST",
        "/api/search/systemusers",
        Some(&json!({"filter": {"or": [{"username": "bob"}, {"username": "ada"}]}})),
    )
    .await;
    assert_eq!(ids(&a), vec![ada.clone(), bob.clone()]);
    let a = admin(
        &t,
        "POST",
        "/api/search/systemusers",
        Some(&json!({"filter": {"and": [{"lastname": "Lovelace"}, {"username": "bob"}]}})),
    )
    .await;
    assert_eq!(ids(&a), vec![bob.clone()]);

    // A broken regex is a 400 with a v1 error body.
    let a = admin(
        &t,
        "POST",
        "/api/search/systemusers",
        Some(&search(json!([{"email": {"$regex": "("}}]), "", 2)),
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(a.body.unwrap()["message"]
        .as_str()
        .unwrap()
        .contains("regex"));

    // The knob that makes the tenant refuse `$regex` (SPEC §5 fallback).
    t.set_faults(Faults {
        reject_regex: true,
        ..Faults::default()
    });
    let a = admin(
        &t,
        "POST",
        "/api/search/systemusers",
        Some(&search(json!([{"email": {"$regex": "(?i)^x$"}}]), "", 2)),
    )
    .await;
    assert_eq!(a.status, 400);
    let a = admin(
        &t,
        "POST",
        "/api/search/systemusers",
        Some(&search(json!([{"username": "ada"}]), "", 2)),
    )
    .await;
    assert_eq!(ids(&a), vec![ada]);
    assert_contract(&t);
}

#[tokio::test]
async fn search_fields_limit_and_skip() {
    let t = start(opts()).await;
    let all: Vec<String> = (0..12)
        .map(|i| {
            t.add_user(
                SimUser::active(&format!("u{i}"), &format!("u{i}@example.com"))
                    .employee_id(&format!("E{i}")),
            )
        })
        .collect();

    // Default limit 10, totalCount counts every match.
    let a = admin(&t, "POST", "/api/search/systemusers", Some(&json!({}))).await;
    assert_eq!(a.body.as_ref().unwrap()["totalCount"], 12);
    assert_eq!(ids(&a), all[..10].to_vec());
    let a = admin(
        &t,
        "POST",
        "/api/search/systemusers",
        Some(&json!({"limit": 3, "skip": 10})),
    )
    .await;
    assert_eq!(ids(&a), all[10..].to_vec());

    // `fields` is a space-separated string; `_id` always comes back.
    let a = admin(
        &t,
        "POST",
        "/api/search/systemusers",
        Some(&json!({"fields": "email employeeIdentifier", "limit": 1})),
    )
    .await;
    let user = &a.body.as_ref().unwrap()["results"][0];
    let mut keys: Vec<&str> = user
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, vec!["_id", "email", "employeeIdentifier"]);
    assert_eq!(user["employeeIdentifier"], "E0");

    let a = admin(
        &t,
        "POST",
        "/api/search/systemusers",
        Some(&json!({"fields": ["email"]})),
    )
    .await;
    assert_eq!(a.status, 400);
    let a = admin(
        &t,
        "POST",
        "/api/search/systemusers",
        Some(&json!({"limit": 101})),
    )
    .await;
    assert_eq!(a.status, 400);
    assert_contract(&t);
}

#[tokio::test]
async fn users_passwords_policy_history_and_activation() {
    let t = start(SimOptions {
        password_policy: PasswordPolicy {
            min_length: 12,
            require_number: true,
            ..PasswordPolicy::default()
        },
        password_history: 2,
        ..opts()
    })
    .await;
    let ada = t.add_user(SimUser::pending("ada", "ada@example.com"));
    let path = format!("/api/systemusers/{ada}");

    // Policy: 400 naming the rule, nothing changes.
    let a = admin(&t, "PUT", &path, Some(&json!({"password": "short1"}))).await;
    assert_eq!(a.status, 400);
    assert!(a.body.unwrap()["message"]
        .as_str()
        .unwrap()
        .contains("at least 12"));
    let a = admin(
        &t,
        "PUT",
        &path,
        Some(&json!({"password": "no-digits-at-all"})),
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(a.body.unwrap()["message"]
        .as_str()
        .unwrap()
        .contains("number"));
    let v = t.user(&ada).unwrap();
    assert_eq!(
        (v.password_sets, v.password_rejections, v.activated),
        (0, 2, false)
    );

    // Accepted: password_date set, the pending user becomes active.
    let a = admin(
        &t,
        "PUT",
        &path,
        Some(&json!({"password": "correct-horse-1"})),
    )
    .await;
    assert_eq!(a.status, 200);
    let body = a.body.unwrap();
    assert_eq!(body["activated"], true);
    assert!(body["password_date"].is_string());
    assert!(!String::from_utf8_lossy(&a.raw).contains("correct-horse-1"));

    // History: the same password again is a 400.
    let a = admin(
        &t,
        "PUT",
        &path,
        Some(&json!({"password": "correct-horse-1"})),
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(a.body.unwrap()["message"]
        .as_str()
        .unwrap()
        .contains("used recently"));
    let v = t.user(&ada).unwrap();
    assert_eq!(v.password_sets, 1);
    assert_eq!(v.password_history.len(), 1);
    assert_ne!(v.password_history[0], "correct-horse-1");

    // GET reads it back, all of it or the `fields` asked for.
    let a = admin(&t, "GET", &path, None).await;
    assert_eq!(a.body.unwrap()["activated"], true);
    let a = admin(
        &t,
        "GET",
        &format!("{path}?fields=activated%20password_date"),
        None,
    )
    .await;
    let body = a.body.unwrap();
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
    assert!(body["password_date"].is_string());
    assert_eq!(
        admin(&t, "GET", "/api/systemusers/000000000000000000000000", None)
            .await
            .status,
        404
    );

    // Staged → activate → ACTIVATED; repeating is harmless; suspended is refused.
    let sam = t.add_user(SimUser::staged("sam", "sam@example.com"));
    let act = format!("/api/systemusers/{sam}/state/activate");
    assert_eq!(admin(&t, "POST", &act, None).await.status, 200);
    assert_eq!(t.user(&sam).unwrap().state, UserState::Activated);
    assert_eq!(admin(&t, "POST", &act, None).await.status, 200);
    let sus = t.add_user(SimUser::suspended("sus", "sus@example.com"));
    assert_eq!(
        admin(
            &t,
            "POST",
            &format!("/api/systemusers/{sus}/state/activate"),
            None
        )
        .await
        .status,
        400
    );
    let a = admin(
        &t,
        "PUT",
        &format!("/api/systemusers/{sus}"),
        Some(&json!({"state": "ACTIVATED"})),
    )
    .await;
    assert_eq!(a.body.unwrap()["state"], "ACTIVATED");
    assert_contract(&t);
}

#[tokio::test]
async fn organisation_and_groups() {
    let t = start(SimOptions {
        org_name: "Acme".into(),
        password_policy: PasswordPolicy {
            min_length: 10,
            require_symbol: true,
            ..PasswordPolicy::default()
        },
        ..opts()
    })
    .await;
    let a = admin(
        &t,
        "GET",
        &format!("/api/organizations/{}", t.org_id()),
        None,
    )
    .await;
    assert_eq!(a.status, 200);
    let org = a.body.unwrap();
    assert_eq!(org["displayName"], "Acme");
    assert_eq!(org["settings"]["passwordPolicy"]["minLength"], 10);
    assert_eq!(org["settings"]["passwordPolicy"]["needsSymbolic"], true);
    let a = admin(&t, "GET", "/api/organizations", None).await;
    assert_eq!(a.body.unwrap()["results"][0]["_id"], t.org_id());
    assert_eq!(
        admin(
            &t,
            "GET",
            "/api/organizations/aaaaaaaaaaaaaaaaaaaaaaaa",
            None
        )
        .await
        .status,
        404
    );

    let g = t.add_group("Enrolling");
    let a = admin(&t, "GET", &format!("/api/v2/systemgroups/{g}"), None).await;
    assert_eq!(a.body.unwrap()["name"], "Enrolling");
    let a = admin(
        &t,
        "GET",
        "/api/v2/systemgroups/aaaaaaaaaaaaaaaaaaaaaaaa",
        None,
    )
    .await;
    assert_eq!(a.status, 404);
    assert_eq!(a.body.unwrap()["error"], "Not Found");
    assert_eq!(t.connect_key().len(), 40);
    assert_contract(&t);
}

#[tokio::test]
async fn admin_key_and_signature_rejections_both_ways() {
    let t = start(opts()).await;
    let ada = t.add_user(SimUser::active("ada", "ada@example.com"));
    let (sys, key) = system(&t, "mac-1");
    let (other, other_key) = system(&t, "mac-2");
    let user_path = format!("/api/systemusers/{ada}");

    // No credentials, a wrong key, a mismatched org (v1.json info text: 404 organisation not
    // found, 400 malformed).
    let a = send(request(&t, "GET", &user_path, None)).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.body.unwrap()["message"], "Unauthorized");
    let a = send(request(&t, "GET", &user_path, None).header("x-api-key", "nope")).await;
    assert_eq!(a.status, 401);
    let a = send(
        request(&t, "GET", &user_path, None)
            .header("x-api-key", t.api_key().expose_secret())
            .header("x-org-id", "bbbbbbbbbbbbbbbbbbbbbbbb"),
    )
    .await;
    assert_eq!(a.status, 404);
    let a = send(
        request(&t, "GET", &user_path, None)
            .header("x-api-key", t.api_key().expose_secret())
            .header("x-org-id", "not-an-id"),
    )
    .await;
    assert_eq!(a.status, 400);
    let a = send(
        request(&t, "GET", &user_path, None)
            .header("x-api-key", t.api_key().expose_secret())
            .header("x-org-id", t.org_id()),
    )
    .await;
    assert_eq!(a.status, 200);

    // Admin-only routes refuse a valid signature.
    assert_eq!(
        signed(&t, &key, &sys, "GET", &user_path, None).await.status,
        401
    );
    let body = search(json!([]), "", 1);
    assert_eq!(
        signed(
            &t,
            &key,
            &sys,
            "POST",
            "/api/search/systemusers",
            Some(&body)
        )
        .await
        .status,
        401
    );

    // System routes: its own signature yes, another system's no, the admin key yes (fallback).
    let path = format!("/api/systems/{sys}");
    let a = signed(&t, &key, &sys, "GET", &path, None).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body.unwrap()["organization"], t.org_id());
    assert_eq!(
        signed(&t, &other_key, &other, "GET", &path, None)
            .await
            .status,
        401
    );
    assert_eq!(
        signed(&t, &key, &other, "GET", &path, None).await.status,
        401,
        "signed with the wrong key"
    );
    assert_eq!(admin(&t, "GET", &path, None).await.status, 200);

    // Tampered signature and a request line that does not match.
    let date = httpdate::fmt_http_date(SystemTime::now());
    let forged = sign_header(&key, &sys, "GET", &format!("/api/systems/{other}"), &date);
    let a = send(
        request(&t, "GET", &path, None)
            .header("date", &date)
            .header("authorization", forged),
    )
    .await;
    assert_eq!(a.status, 401);
    let a = send(request(&t, "GET", &path, None).header(
        "authorization",
        sign_header(&key, &sys, "GET", &path, &date),
    ))
    .await;
    assert_eq!(a.status, 401, "no Date header");

    // Date skew: 10 minutes off is refused, 1 minute is fine; the server clock knob too.
    let old = SystemTime::now() - Duration::from_secs(600);
    assert_eq!(
        signed_at(&t, &key, &sys, "GET", &path, None, old)
            .await
            .status,
        401
    );
    let near = SystemTime::now() - Duration::from_secs(60);
    assert_eq!(
        signed_at(&t, &key, &sys, "GET", &path, None, near)
            .await
            .status,
        200
    );
    t.set_faults(Faults {
        clock_offset_secs: 3600,
        ..Faults::default()
    });
    assert_eq!(signed(&t, &key, &sys, "GET", &path, None).await.status, 401);

    // ADE systems without system context: every signature is 401, the admin key still works.
    t.set_faults(Faults {
        system_context_disabled: true,
        ..Faults::default()
    });
    assert_eq!(signed(&t, &key, &sys, "GET", &path, None).await.status, 401);
    assert_eq!(admin(&t, "GET", &path, None).await.status, 200);

    // The log says how each request authenticated.
    let log = t.requests();
    assert_eq!(log[0].auth, AuthKind::None);
    assert_eq!(log[1].auth, AuthKind::Admin);
    assert!(log
        .iter()
        .any(|r| r.auth == AuthKind::System && r.status == 200));
    assert_contract(&t);
}

#[tokio::test]
async fn v2_lists_page_like_jumpcloud() {
    // v2.json `trait:limit:limit`: default 10, at most 100; `trait:skip:skip`.
    let t = start(opts()).await;
    let (sys, key) = system(&t, "mac-1");
    for i in 0..12 {
        let g = t.add_group(&format!("group {i}"));
        let add = json!({"op": "add", "type": "system", "id": sys});
        let members = format!("/api/v2/systemgroups/{g}/members");
        assert_eq!(admin(&t, "POST", &members, Some(&add)).await.status, 204);
    }
    let memberof = format!("/api/v2/systems/{sys}/memberof");
    let count = |v: Option<Value>| v.unwrap().as_array().unwrap().len();
    let a = signed(&t, &key, &sys, "GET", &memberof, None).await;
    assert_eq!(count(a.body), 10);
    let a = signed(
        &t,
        &key,
        &sys,
        "GET",
        &format!("{memberof}?limit=100&skip=10"),
        None,
    )
    .await;
    assert_eq!(count(a.body), 2);
    let a = signed(
        &t,
        &key,
        &sys,
        "GET",
        &format!("{memberof}?limit=101"),
        None,
    )
    .await;
    assert_eq!(a.status, 400);
}

#[tokio::test]
async fn associations_and_group_membership_204_409_404() {
    let t = start(opts()).await;
    let ada = t.add_user(SimUser::active("ada", "ada@example.com"));
    let (sys, key) = system(&t, "mac-1");
    let (other, _) = system(&t, "mac-2");
    let assoc = format!("/api/v2/systems/{sys}/associations");
    let bind = json!({"op": "add", "type": "user", "id": ada, "attributes": {"sudo": {"enabled": true, "withoutPassword": false}}});

    let a = signed(&t, &key, &sys, "POST", &assoc, Some(&bind)).await;
    assert_eq!(a.status, 204);
    assert!(a.raw.is_empty());
    assert_eq!(t.bindings(&sys), vec![(ada.clone(), true)]);
    let a = signed(&t, &key, &sys, "POST", &assoc, Some(&bind)).await;
    assert_eq!(a.status, 409);
    assert_eq!(a.body.unwrap()["message"], "Already Exists");

    // GET needs `targets`.
    assert_eq!(
        signed(&t, &key, &sys, "GET", &assoc, None).await.status,
        400
    );
    let a = signed(
        &t,
        &key,
        &sys,
        "GET",
        &format!("{assoc}?targets=user"),
        None,
    )
    .await;
    assert_eq!(a.status, 200);
    let list = a.body.unwrap();
    assert_eq!(list[0]["to"]["id"], ada.as_str());
    assert_eq!(list[0]["attributes"]["sudo"]["enabled"], true);

    let remove = json!({"op": "remove", "type": "user", "id": ada});
    assert_eq!(
        signed(&t, &key, &sys, "POST", &assoc, Some(&remove))
            .await
            .status,
        204
    );
    assert_eq!(
        signed(&t, &key, &sys, "POST", &assoc, Some(&remove))
            .await
            .status,
        404
    );
    let ghost = json!({"op": "add", "type": "user", "id": "cccccccccccccccccccccccc"});
    assert_eq!(
        signed(&t, &key, &sys, "POST", &assoc, Some(&ghost))
            .await
            .status,
        404
    );

    // Group membership: only itself, 204 / 409 / 404.
    let g = t.add_group("Enrolling");
    let members = format!("/api/v2/systemgroups/{g}/members");
    let add = json!({"op": "add", "type": "system", "id": sys});
    assert_eq!(
        signed(&t, &key, &sys, "POST", &members, Some(&add))
            .await
            .status,
        204
    );
    assert_eq!(
        signed(&t, &key, &sys, "POST", &members, Some(&add))
            .await
            .status,
        409
    );
    assert_eq!(t.group_members(&g), vec![sys.clone()]);
    let add_other = json!({"op": "add", "type": "system", "id": other});
    assert_eq!(
        signed(&t, &key, &sys, "POST", &members, Some(&add_other))
            .await
            .status,
        401
    );
    assert_eq!(
        admin(&t, "POST", &members, Some(&add_other)).await.status,
        204
    );

    let a = signed(
        &t,
        &key,
        &sys,
        "GET",
        &format!("/api/v2/systems/{sys}/memberof"),
        None,
    )
    .await;
    assert_eq!(a.body.unwrap()[0]["id"], g.as_str());

    let rm = json!({"op": "remove", "type": "system", "id": sys});
    assert_eq!(
        signed(&t, &key, &sys, "POST", &members, Some(&rm))
            .await
            .status,
        204
    );
    assert_eq!(
        signed(&t, &key, &sys, "POST", &members, Some(&rm))
            .await
            .status,
        404
    );
    let a = signed(
        &t,
        &key,
        &sys,
        "GET",
        &format!("/api/v2/systems/{sys}/memberof"),
        None,
    )
    .await;
    assert_eq!(a.body.unwrap(), json!([]));

    // Reporting progress keeps a history of descriptions.
    let a = signed(
        &t,
        &key,
        &sys,
        "PUT",
        &format!("/api/systems/{sys}"),
        Some(&json!({"description": "prestage: binding"})),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body.unwrap()["description"], "prestage: binding");
    let view = t.systems().into_iter().find(|s| s.id == sys).unwrap();
    assert_eq!(
        view.descriptions,
        vec![String::new(), "prestage: binding".to_owned()]
    );
    assert_contract(&t);
}

#[tokio::test]
async fn faults_errors_throttling_drops_and_the_request_log() {
    let t = start(opts()).await;
    let ada = t.add_user(SimUser::pending("ada", "ada@example.com"));
    let path = format!("/api/systemusers/{ada}");

    // Error rate 1: every answer is a 5xx, 500 as JSON, 502/503 as a gateway's HTML.
    t.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let a = admin(&t, "GET", &path, None).await;
        assert!([500, 502, 503].contains(&a.status), "{}", a.status);
        if a.status != 500 {
            assert!(a.body.is_none());
        }
        seen.insert(a.status);
    }
    assert_eq!(seen.len(), 3, "all three 5xx appear: {seen:?}");

    // Errors after the effect: the password was set although the client got a 502/503/500.
    t.set_faults(Faults {
        error_rate: 1.0,
        faults_after_effect: true,
        only_paths: vec!["/api/systemusers/".into()],
        ..Faults::default()
    });
    let a = admin(
        &t,
        "PUT",
        &path,
        Some(&json!({"password": "correct-horse-1"})),
    )
    .await;
    assert!(a.status >= 500);
    assert_eq!(t.user(&ada).unwrap().password_sets, 1);
    // Paths outside `only_paths` are healthy.
    assert_eq!(
        admin(&t, "GET", "/api/organizations", None).await.status,
        200
    );

    // The next two requests get 429 with Retry-After in seconds, then all is well.
    t.set_faults(Faults {
        throttle_next: 2,
        retry_after: Duration::from_secs(7),
        ..Faults::default()
    });
    for _ in 0..2 {
        let a = admin(&t, "GET", &path, None).await;
        assert_eq!(a.status, 429);
        assert_eq!(a.headers["retry-after"], "7");
    }
    assert_eq!(admin(&t, "GET", &path, None).await.status, 200);
    // Both the second 429 and the 200 came inside the window the first 429 opened.
    assert_eq!(t.requests_inside_retry_after_windows(), 2);
    assert_eq!(t.retry_windows().len(), 2);
    assert_eq!(t.retry_windows()[0].client, "admin");

    // Retry-After as an HTTP-date.
    t.set_faults(Faults {
        throttle_next: 1,
        retry_after: Duration::from_secs(120),
        retry_after_as_date: true,
        ..Faults::default()
    });
    let a = admin(&t, "GET", &path, None).await;
    let when = httpdate::parse_http_date(a.headers["retry-after"].to_str().unwrap()).unwrap();
    assert!(when > SystemTime::now() + Duration::from_secs(60));

    // Latency: every answer waits at least this long (a lower bound only: never flaky).
    t.set_faults(Faults {
        latency: Duration::from_millis(300),
        ..Faults::default()
    });
    let before = std::time::Instant::now();
    assert_eq!(
        admin(&t, "GET", "/api/organizations", None).await.status,
        200
    );
    assert!(before.elapsed() >= Duration::from_millis(300));

    // Dropped connections: no response at all.
    t.set_faults(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    });
    let err = request(&t, "GET", &path, None)
        .header("x-api-key", t.api_key().expose_secret())
        .send()
        .await;
    assert!(err.is_err(), "{err:?}");
    // A drop after the effect: the password was set, the client saw the connection close.
    t.set_faults(Faults {
        drop_rate: 1.0,
        faults_after_effect: true,
        ..Faults::default()
    });
    let err = request(
        &t,
        "PUT",
        &path,
        Some(&json!({"password": "another-horse-2"})),
    )
    .header("x-api-key", t.api_key().expose_secret())
    .send()
    .await;
    assert!(err.is_err(), "{err:?}");
    assert_eq!(t.user(&ada).unwrap().password_sets, 2);
    t.set_faults(Faults::default());

    // The request log: method, path, query, auth, body hash, status, injected.
    let log = t.requests();
    let put = log.iter().find(|r| r.method == "PUT").unwrap();
    assert_eq!(put.path, path);
    assert_eq!(put.auth, AuthKind::Admin);
    assert_eq!(put.client, "admin");
    assert_eq!(put.user_agent.as_deref(), Some("sim-tests"));
    let body = serde_json::to_vec(&json!({"password": "correct-horse-1"})).unwrap();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body);
    let hex: String = digest
        .as_ref()
        .iter()
        .fold(String::new(), |s, b| s + &format!("{b:02x}"));
    assert_eq!(put.body_sha256, hex);
    assert!(put.injected && put.status >= 500);
    let dropped = log.last().unwrap();
    assert_eq!((dropped.status, dropped.injected), (0, true));
    assert!(log
        .windows(2)
        .all(|w| w[0].at <= w[1].at && w[0].at_ms <= w[1].at_ms));
    assert_contract(&t);
}

#[tokio::test]
async fn rate_limit_token_bucket() {
    let t = start(SimOptions {
        rate_limit: Some(RateLimit {
            per_second: 0.5,
            burst: 3,
        }),
        ..opts()
    })
    .await;
    let mut statuses = Vec::new();
    // A second admin key is a separate client for the Retry-After proof.
    let other = t.add_api_key();
    let a = send(
        request(&t, "GET", "/api/organizations", None).header("x-api-key", other.expose_secret()),
    )
    .await;
    assert_eq!(a.status, 200);
    for _ in 0..4 {
        let a = admin(&t, "GET", "/api/organizations", None).await;
        if a.status == 429 {
            let secs: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=2).contains(&secs), "{secs}");
        }
        statuses.push(a.status);
    }
    assert_eq!(statuses, vec![200, 200, 429, 429]);
    assert_eq!(t.requests_inside_retry_after_windows(), 1);
    let a = send(
        request(&t, "GET", "/api/organizations", None).header("x-api-key", other.expose_secret()),
    )
    .await;
    assert_eq!(a.status, 429);
    assert_eq!(t.retry_windows().last().unwrap().client, "admin:1");
    assert_eq!(
        t.requests_inside_retry_after_windows(),
        1,
        "admin:1 was never told to wait before"
    );
    assert_contract(&t);
}

/// Polls `f` until it gives a value; panics with `what` after a generous bound of real time
/// (only a real hang fails this; with a paused tokio clock the sleeps pass instantly, so the
/// bound is measured on the wall clock).
async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("timed out waiting for {what}");
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

#[tokio::test]
async fn agent_registers_signs_and_takes_over_a_bound_user() {
    let t = start(opts()).await;
    let ada = t.add_user(SimUser::active("ada", "ada@example.com").system_username("ada.lovelace"));
    let (_dir, root) = fake_mac(&t.connect_key());
    let agent = t.attach_mac(&root);

    // Nothing happens before the package is installed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(agent.system_id().is_none());
    install_agent(&root);

    let conf_path = root.resolve(mac::JC_AGENT_CONF);
    let conf: Value = wait_for("jcagent.conf", || {
        std::fs::read(&conf_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    })
    .await;
    let sys = conf["systemKey"].as_str().unwrap().to_owned();
    assert_eq!(agent.system_id().as_deref(), Some(sys.as_str()));
    assert_eq!(
        conf["userMgmt"]["ldap_domain"],
        format!("{}.jumpcloud.com", t.org_id())
    );
    assert_eq!(t.systems()[0].hostname, "ada-mbp");

    // client.key: 0600, PKCS#1 PEM, and it signs requests the tenant accepts.
    let key_path = root.resolve(mac::JC_CLIENT_KEY);
    assert_eq!(
        std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let pem = std::fs::read_to_string(&key_path).unwrap();
    let der = base64::engine::general_purpose::STANDARD
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    let pair = aws_lc_rs::rsa::KeyPair::from_der(&der).unwrap();
    let path = format!("/api/v2/systems/{sys}/associations");
    let date = httpdate::fmt_http_date(SystemTime::now());
    let msg = format!("POST {path} HTTP/1.1\ndate: {date}");
    let mut sig = vec![0; pair.public_modulus_len()];
    pair.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        msg.as_bytes(),
        &mut sig,
    )
    .unwrap();
    let auth = format!(
        r#"Signature keyId="system/{sys}",headers="request-line date",algorithm="rsa-sha256",signature="{}""#,
        base64::engine::general_purpose::STANDARD.encode(sig)
    );
    let bind = json!({"op": "add", "type": "user", "id": ada, "attributes": {"sudo": {"enabled": true, "withoutPassword": false}}});
    let a = send(
        request(&t, "POST", &path, Some(&bind))
            .header("date", date)
            .header("authorization", auth),
    )
    .await;
    assert_eq!(a.status, 204);

    // The account appears, managed by JumpCloud, admin, no Secure Token; the log says so.
    let user = wait_for("the local account", || {
        World::load(&root)
            .unwrap()
            .users
            .get("ada.lovelace")
            .cloned()
    })
    .await;
    assert!(user.managed_by_jumpcloud && user.admin && !user.secure_token);
    let log = wait_for("User updates complete", || {
        let l = agent_log(&root);
        l.contains("User updates complete").then_some(l)
    })
    .await;
    let processing = log.find("Processing user updates").unwrap();
    assert!(processing < log.find("User updates complete").unwrap());
    let stamp = regex::Regex::new(r"^\d{2}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} ").unwrap();
    assert!(log.lines().all(|l| stamp.is_match(l)), "{log}");
    assert_eq!(agent.taken_over(), vec!["ada.lovelace".to_owned()]);

    // A restarted agent (reboot) keeps its registration.
    drop(agent);
    let again = t.attach_mac(&root);
    let same = wait_for("re-attached agent", || again.system_id()).await;
    assert_eq!(same, sys);
    assert_eq!(t.systems().len(), 1);
    // The MDM's account is untouched.
    assert!(!World::load(&root).unwrap().users["welcome"].managed_by_jumpcloud);
    assert_contract(&t);
}

#[tokio::test]
async fn agent_takes_over_an_existing_account_and_can_omit_the_org() {
    let t = start(SimOptions {
        agent: AgentBehaviour {
            omit_org: true,
            register_delay: Duration::ZERO,
            takeover_delay: Duration::ZERO,
            ..AgentBehaviour::default()
        },
        ..opts()
    })
    .await;
    let ada = t.add_user(SimUser::active("ada", "ada@example.com"));
    let (_dir, root) = fake_mac(&t.connect_key());
    World::update(&root, |w| w.add_user("ada", true, false)).unwrap();
    let uid = World::load(&root).unwrap().users["ada"].uid;
    install_agent(&root);
    let agent = t.attach_mac(&root);
    let sys = wait_for("registration", || agent.system_id()).await;
    let conf: Value =
        serde_json::from_slice(&std::fs::read(root.resolve(mac::JC_AGENT_CONF)).unwrap()).unwrap();
    assert!(conf.get("userMgmt").is_none());
    t.bind(&sys, &ada, false);
    let user = wait_for("takeover", || {
        World::load(&root)
            .unwrap()
            .users
            .get("ada")
            .filter(|u| u.managed_by_jumpcloud)
            .cloned()
    })
    .await;
    assert_eq!(user.uid, uid);
    assert!(user.secure_token && !user.admin);
}

#[tokio::test(start_paused = true)]
async fn agent_with_a_wrong_connect_key_never_registers() {
    let t = start(opts()).await;
    let (_dir, root) = fake_mac("0000000000000000000000000000000000000000");
    install_agent(&root);
    let agent = t.attach_mac(&root);
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(agent.system_id().is_none());
    assert!(t.systems().is_empty());
    assert!(!root.resolve(mac::JC_AGENT_CONF).exists());
    assert!(agent_log(&root).contains("connect key was rejected"));
}

#[tokio::test(start_paused = true)]
async fn with_a_tenant_key_the_agent_needs_its_payload_byte_for_byte() {
    let t = start(opts()).await;
    let key = t.tenant_connect_key(
        "https://kickstart.eu.jumpcloud.com:443",
        "https://private-kickstart.eu.jumpcloud.com:443",
    );
    let payload = match prestage::config::ConnectKey::parse(&key).unwrap() {
        prestage::config::ConnectKey::Tenant { bootstrap, .. } => bootstrap,
        other @ prestage::config::ConnectKey::Classic(_) => panic!("{other:?}"),
    };
    // Same connect key inside, but rewritten (other hosts, other layout): refused.
    let (_d1, rewritten) = fake_mac(&t.connect_key());
    install_agent(&rewritten);
    let refused = t.attach_mac(&rewritten);
    // The payload exactly as decoded: registers.
    let (_d2, exact) = fake_mac(&t.connect_key());
    std::fs::write(exact.resolve(mac::JC_BOOTSTRAP), payload.expose_secret()).unwrap();
    install_agent(&exact);
    let accepted = t.attach_mac(&exact);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(refused.system_id().is_none());
    assert!(agent_log(&rewritten).contains("connect key was rejected"));
    assert!(accepted.system_id().is_some(), "{}", agent_log(&exact));
    assert_eq!(t.systems().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn silent_and_never_registering_agents() {
    let t = start(opts()).await;
    let ada = t.add_user(SimUser::active("ada", "ada@example.com"));

    let (_d1, never) = fake_mac(&t.connect_key());
    install_agent(&never);
    let a1 = t.attach_mac_with(
        &never,
        AgentBehaviour {
            mode: AgentMode::NeverRegisters,
            ..AgentBehaviour::default()
        },
    );

    let (_d2, silent) = fake_mac(&t.connect_key());
    install_agent(&silent);
    let a2 = t.attach_mac_with(
        &silent,
        AgentBehaviour {
            mode: AgentMode::Silent,
            ..AgentBehaviour::default()
        },
    );
    let sys = wait_for("silent agent registration", || a2.system_id()).await;
    let log_len = agent_log(&silent).len();
    t.bind(&sys, &ada, false);
    tokio::time::sleep(Duration::from_secs(600)).await;

    assert!(a1.system_id().is_none());
    assert!(!never.resolve(mac::JC_AGENT_CONF).exists());
    assert!(!World::load(&silent).unwrap().users.contains_key("ada"));
    assert_eq!(
        agent_log(&silent).len(),
        log_len,
        "a silent agent writes nothing more"
    );
    assert_eq!(t.systems().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn stalled_agent_resumes_after_a_kickstart_and_slow_agent_is_slow() {
    let t = start(opts()).await;
    let ada = t.add_user(SimUser::active("ada", "ada@example.com"));
    let (_dir, root) = fake_mac(&t.connect_key());
    install_agent(&root);
    let agent = t.attach_mac_with(
        &root,
        AgentBehaviour {
            mode: AgentMode::StallUntilKickstart,
            ..AgentBehaviour::default()
        },
    );
    let sys = wait_for("registration", || agent.system_id()).await;
    t.bind(&sys, &ada, true);
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert!(!World::load(&root).unwrap().users.contains_key("ada"));
    assert!(!agent_log(&root).contains("Processing user updates"));
    assert!(
        !agent_log(&root).contains("check-in"),
        "a stalled agent is quiet"
    );

    // `launchctl kickstart -k system/com.jumpcloud.darwin-agent` (the fake counts it).
    World::update(&root, |w| w.agent_kickstarts += 1).unwrap();
    wait_for("takeover after kickstart", || {
        World::load(&root).unwrap().users.get("ada").cloned()
    })
    .await;
    assert!(agent_log(&root).contains("User updates complete"));
    // Once running again it checks in now and then, like the real agent's busy log.
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(agent_log(&root).contains("Agent check-in complete"));

    // Slow: nothing after the normal delays, done after the extra one.
    let (_d2, slow) = fake_mac(&t.connect_key());
    install_agent(&slow);
    let extra = Duration::from_secs(90);
    let a2 = t.attach_mac_with(
        &slow,
        AgentBehaviour {
            mode: AgentMode::Slow { extra },
            ..AgentBehaviour::default()
        },
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(a2.system_id().is_none());
    wait_for("the slow agent's registration", || a2.system_id()).await;
}

#[tokio::test]
async fn shared_key_fleet_and_shutdown() {
    const FLEET: usize = 30;
    let t = start(SimOptions {
        agent: AgentBehaviour {
            shared_key: true,
            register_delay: Duration::ZERO,
            ..AgentBehaviour::default()
        },
        ..opts()
    })
    .await;
    let macs: Vec<_> = (0..FLEET).map(|_| fake_mac(&t.connect_key())).collect();
    let agents: Vec<_> = macs
        .iter()
        .map(|(_, root)| {
            install_agent(root);
            t.attach_mac(root)
        })
        .collect();
    for a in &agents {
        wait_for("fleet registration", || a.system_id()).await;
    }
    let keys: Vec<String> = macs
        .iter()
        .map(|(_, r)| std::fs::read_to_string(r.resolve(mac::JC_CLIENT_KEY)).unwrap())
        .collect();
    assert!(keys.windows(2).all(|w| w[0] == w[1]));
    let ids: std::collections::BTreeSet<_> = agents
        .iter()
        .filter_map(prestage::sim::AgentHandle::system_id)
        .collect();
    assert_eq!(ids.len(), FLEET);

    // Bind one user per Mac; every Mac gets its own account.
    for (i, a) in agents.iter().enumerate() {
        let user = t.add_user(SimUser::active(
            &format!("emp{i}"),
            &format!("emp{i}@example.com"),
        ));
        t.bind(&a.system_id().unwrap(), &user, false);
    }
    for (i, (_, root)) in macs.iter().enumerate() {
        let name = format!("emp{i}");
        wait_for("fleet takeover", || {
            World::load(root).unwrap().users.get(&name).map(|_| ())
        })
        .await;
        assert_eq!(
            World::load(root).unwrap().users.len(),
            2,
            "welcome + emp{i} only"
        );
    }

    let url = t.url();
    t.clone().shutdown().await;
    let after = http()
        .get(url.join("api/organizations").unwrap())
        .send()
        .await;
    assert!(after.is_err(), "the server is gone: {after:?}");
}

#[tokio::test]
async fn the_contract_check_is_live() {
    // POST /api/organizations is no operation of v1.json: the tenant answers 405 and the
    // check flags it, so the `assert_contract` calls above are not vacuous.
    let t = start(opts()).await;
    let a = admin(&t, "POST", "/api/organizations", Some(&json!({}))).await;
    assert_eq!(a.status, 405);
    let v = t.contract_violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("POST is not an operation"), "{v:?}");
}

#[tokio::test]
async fn concurrent_clients_share_the_token_bucket() {
    let t = start(SimOptions {
        rate_limit: Some(RateLimit {
            per_second: 0.1,
            burst: 10,
        }),
        ..opts()
    })
    .await;
    let (sys, key) = system(&t, "mac-1");
    let key = Arc::new(key);
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (t, sys, key) = (t.clone(), sys.clone(), Arc::clone(&key));
            tokio::spawn(async move {
                if i % 2 == 0 {
                    admin(&t, "GET", "/api/organizations", None).await.status
                } else {
                    signed(&t, &key, &sys, "GET", &format!("/api/systems/{sys}"), None)
                        .await
                        .status
                }
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            200 => ok += 1,
            429 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    // 10 tokens at once, refilled at one per ten seconds: at most one more in this burst.
    assert!((10..=11).contains(&ok), "{ok} answered 200");
    let log = t.requests();
    assert_eq!(log.len(), 40);
    assert!(log.windows(2).all(|w| w[0].at <= w[1].at));
    let clients: std::collections::BTreeSet<_> =
        t.retry_windows().into_iter().map(|w| w.client).collect();
    assert!(
        clients.contains("admin") && clients.contains(&format!("system:{sys}")),
        "{clients:?}"
    );
    assert_contract(&t);
}
