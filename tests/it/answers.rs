//! The JumpCloud client against answers as a real tenant gives them, where they differ from the
//! happy path the specs show (issue 14, evidence in the audit `jumpcloud-api.md`): signed
//! requests over HTTP/1.1 only, a refused password in any 4xx, "Already Exists" in any 4xx,
//! the Welcome email of an activation, and the admin hints of 401 and 403.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prestage::jumpcloud::{Client, ClientOptions, Directory, JcError, RetryPolicy, Timeouts};
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpListener, TcpStream};
use url::Url;

use super::jumpcloud::{
    client, identity, oid, options, reply, Mock, API_KEY, GROUP, ORG, PASSWORD, POST_GROUP, SYS,
    USER,
};

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 for signed requests.

/// The ALPN protocol names (RFC 7301 §3.1) of the TLS ClientHello (RFC 8446 §4.1.2) that
/// starts `stream`; empty when the hello has no ALPN extension, `None` when it is no hello.
async fn client_hello_alpn(stream: &mut TcpStream) -> Option<Vec<String>> {
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).await.ok()?;
    // A handshake record (content type 22).
    if head[0] != 22 {
        return None;
    }
    let mut record = vec![0u8; usize::from(u16::from_be_bytes([head[3], head[4]]))];
    stream.read_exact(&mut record).await.ok()?;
    let u16_at = |p: usize| -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([
            *record.get(p)?,
            *record.get(p + 1)?,
        ])))
    };
    // msg_type 1 (client_hello) and a 3-byte length, then legacy_version (2) and random (32).
    if record.first() != Some(&1) {
        return None;
    }
    let mut p = 4 + 2 + 32;
    p += 1 + usize::from(*record.get(p)?); // legacy_session_id
    p += 2 + u16_at(p)?; // cipher_suites
    p += 1 + usize::from(*record.get(p)?); // legacy_compression_methods
    let end = p + 2 + u16_at(p)?;
    p += 2;
    while p + 4 <= end {
        let (kind, len) = (u16_at(p)?, u16_at(p + 2)?);
        if kind == 16 {
            // application_layer_protocol_negotiation: a 2-byte list length, then
            // length-prefixed names.
            let list = record.get(p + 6..p + 4 + len)?;
            let mut names = Vec::new();
            let mut q = 0;
            while let Some(&n) = list.get(q) {
                let name = list.get(q + 1..q + 1 + usize::from(n))?;
                names.push(String::from_utf8_lossy(name).into_owned());
                q += 1 + usize::from(n);
            }
            return Some(names);
        }
        p += 4 + len;
    }
    Some(Vec::new())
}

/// A TCP server on 127.0.0.1 that reads each connection's TLS ClientHello, keeps its ALPN
/// list and hangs up (so every request fails, and is retried, after its hello).
async fn hello_recorder() -> (Url, Arc<Mutex<Vec<Vec<String>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("https://{}", listener.local_addr().unwrap())).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            if let Some(alpn) = client_hello_alpn(&mut stream).await {
                log.lock().unwrap().push(alpn);
            }
        }
    });
    (url, seen)
}

#[tokio::test]
async fn signed_requests_offer_only_http_1_1_and_admin_calls_may_use_h2() {
    // The system-context signature covers "<METHOD> <path?query> HTTP/1.1" (v1.json info
    // text, SPEC §5): over HTTP/2 there is no such request line. What decides the protocol on
    // a TLS connection is the client's ALPN offer, so that is what is checked, byte by byte.
    let (url, seen) = hello_recorder().await;
    let mut o = ClientOptions::new(url);
    o.api_key = Some(SecretString::from(API_KEY));
    o.org_id = Some(ORG.to_owned());
    o.system = Some(identity());
    o.retry = RetryPolicy {
        max_attempts: 2,
        ..RetryPolicy::fast()
    };
    o.timeouts = Timeouts {
        connect: Duration::from_secs(5),
        request: Duration::from_secs(5),
    };
    let c = Client::new(o).unwrap();

    let err = c.system().await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    let signed: Vec<Vec<String>> = std::mem::take(&mut *seen.lock().unwrap());
    assert!(!signed.is_empty(), "no ClientHello seen");
    for alpn in &signed {
        assert_eq!(alpn, &["http/1.1"], "a signed request offered {alpn:?}");
    }

    let err = c.org(&oid(ORG)).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    let admin = seen.lock().unwrap().clone();
    assert!(!admin.is_empty(), "no ClientHello seen");
    for alpn in &admin {
        assert!(
            alpn.iter().any(|p| p == "h2"),
            "admin calls keep HTTP/2: {alpn:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The password set: a refusal in any 4xx that says why is the employee's to act on.

#[tokio::test]
async fn a_password_refused_in_any_4xx_with_a_message_is_the_employees_to_act_on() {
    let path = format!("/api/systemusers/{USER}");
    let mock = Mock::start().await;
    mock.seq(
        "PUT",
        &path,
        vec![
            reply(422, json!({"message": "Password is too common"})),
            reply(
                409,
                json!({"error": "Conflict", "message": "Password was used recently"}),
            ),
            reply(
                400,
                json!({"message": "Password must not contain the username"}),
            ),
            // No message: not something the employee can act on.
            reply(422, Value::Null),
            reply(401, json!({"message": "Unauthorized"})),
            reply(403, json!({"message": "Forbidden"})),
            reply(404, json!({"message": "User not found"})),
        ],
    );
    let c = client(&mock);
    let pw = SecretString::from(PASSWORD);
    for (status, text) in [
        (422, "Password is too common"),
        (409, "Password was used recently (Conflict)"),
        (400, "Password must not contain the username"),
    ] {
        match c.set_password(USER, &pw).await.unwrap_err() {
            JcError::PasswordRefused { status: s, message } => {
                assert_eq!((s, message.as_str()), (status, text));
            }
            other => panic!("{status}: {other:?}"),
        }
    }
    let err = c.set_password(USER, &pw).await.unwrap_err();
    assert!(
        matches!(err, JcError::Rejected { status: 422, .. }),
        "{err:?}"
    );
    let err = c.set_password(USER, &pw).await.unwrap_err();
    assert!(matches!(err, JcError::ApiKeyRejected { .. }), "{err:?}");
    let err = c.set_password(USER, &pw).await.unwrap_err();
    assert!(matches!(err, JcError::Forbidden { .. }), "{err:?}");
    let err = c.set_password(USER, &pw).await.unwrap_err();
    assert!(matches!(err, JcError::NotFound { .. }), "{err:?}");
    // Each was sent once: a refusal is an answer, not a reason to repeat.
    assert_eq!(mock.requests_to("PUT", &path).len(), 7);
}

// ---------------------------------------------------------------------------------------------
// "Already Exists" is done, whatever its 4xx status.

#[tokio::test]
async fn already_exists_in_any_4xx_is_done_for_binds_and_group_adds() {
    let mock = Mock::start().await;
    let members = format!("/api/v2/systemgroups/{GROUP}/members");
    let post_members = format!("/api/v2/systemgroups/{POST_GROUP}/members");
    let assoc = format!("/api/v2/systems/{SYS}/associations");
    mock.seq(
        "POST",
        &members,
        vec![
            reply(400, json!({"message": "Already Exists"})),
            reply(409, Value::Null),
            reply(
                422,
                json!({"code": 422, "message": "already exists", "status": "x"}),
            ),
        ],
    );
    mock.seq(
        "POST",
        &assoc,
        vec![
            reply(400, json!({"message": "Already Exists"})),
            reply(
                409,
                json!({"error": "Conflict", "message": "Already Exists"}),
            ),
            reply(400, json!({"message": "Bad Request: invalid attributes"})),
        ],
    );
    mock.seq(
        "POST",
        &post_members,
        vec![reply(400, json!({"message": "Bad Request"}))],
    );
    let c = client(&mock);
    for _ in 0..3 {
        c.add_system_to_group(&oid(GROUP)).await.unwrap();
    }
    c.bind_user(USER, false).await.unwrap();
    c.bind_user(USER, false).await.unwrap();
    let err = c.bind_user(USER, false).await.unwrap_err();
    assert!(
        matches!(err, JcError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    // A 400 that says something else is an error.
    let err = c.add_system_to_group(&oid(POST_GROUP)).await.unwrap_err();
    assert!(
        matches!(err, JcError::Rejected { status: 400, .. }),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Activation: no Welcome email, and never repeated blindly.

#[tokio::test]
async fn activation_asks_for_no_email_and_is_not_repeated_after_a_lost_answer() {
    let mock = Mock::start().await;
    let path = format!("/api/systemusers/{USER}/state/activate");
    mock.seq(
        "POST",
        &path,
        vec![reply(502, Value::Null), reply(200, Value::Null)],
    );
    let c = client(&mock);
    let err = c.activate_user(USER).await.unwrap_err();
    assert!(err.is_uncertain(), "{err:?}");
    let sent = mock.requests_to("POST", &path);
    assert_eq!(sent.len(), 1, "repeated without reading the state first");
    assert_eq!(sent[0].json(), Some(json!({"email": false})));
    c.activate_user(USER).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Admin hints that match JumpCloud's codes.

#[tokio::test]
async fn the_org_id_hint_is_on_401_when_no_org_is_known_and_403_names_rights_and_blocks() {
    let mock = Mock::start().await;
    let search = "/api/search/systemusers";
    mock.seq(
        "POST",
        search,
        vec![
            reply(
                401,
                json!({"message": "Unauthorized: no organization selected"}),
            ),
            reply(401, json!({"message": "Unauthorized"})),
            reply(403, json!({"message": "Forbidden"})),
            reply(404, json!({"message": "Organization ID Not Found"})),
        ],
    );
    let mut o = options(&mock);
    o.org_id = None;
    let c = Client::new(o).unwrap();
    let find = || c.find_users(prestage::config::Identifier::Username, "ada");
    let err = find().await.unwrap_err().to_string();
    assert!(err.contains("(401)") && err.contains("set OrgID"), "{err}");
    c.set_org_id(ORG);
    let err = find().await.unwrap_err().to_string();
    assert!(err.contains("(401)") && !err.contains("OrgID"), "{err}");
    let err = find().await.unwrap_err().to_string();
    assert!(
        err.contains("(403)") && err.contains("write access"),
        "{err}"
    );
    assert!(err.contains("blocked this network's address"), "{err}");
    assert!(
        !err.contains("OrgID"),
        "the OrgID hint belongs to 401: {err}"
    );
    let err = find().await.unwrap_err();
    match &err {
        JcError::NotFound { key, what } => {
            assert_eq!(key, "OrgID");
            assert!(what.contains(ORG), "{what}");
        }
        other => panic!("{other:?}"),
    }
}
