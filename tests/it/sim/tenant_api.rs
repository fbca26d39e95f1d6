//! The simulated JumpCloud tenant over real HTTP: search, users, groups, keys and signatures,
//! lists and associations, each answer checked against the published specs.

use super::{
    admin, assert_contract, ids, opts, request, search, send, sign_header, signed, signed_at,
    start, system,
};
use prestage::jumpcloud::UserState;
use prestage::policy::PasswordPolicy;
use prestage::sim::{AuthKind, Faults, SimOptions, SimUser};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime};

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
