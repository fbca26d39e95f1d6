//! The JumpCloud client: every call against the published specs, both auth modes, the search,
//! paged lists, typed errors and already-done answers.

use super::{
    client, every_call, fixtures, happy_tenant, oid, public_key, reply, user_json, Captured, Mock,
    Reply, API_KEY, GROUP, ORG, POST_GROUP, SYS, USER,
};
use prestage::config::Identifier;
use prestage::jumpcloud::contract::Contract;
use prestage::jumpcloud::signing::{self};
use prestage::jumpcloud::{Directory, JcError};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

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
