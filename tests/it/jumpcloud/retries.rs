//! The JumpCloud client: retries, `Retry-After`, the password set that is never repeated
//! blindly, and the clock-sync and admin-key fallback.

use super::{
    client, happy_tenant, oid, options, reply, system_json, user_json, Captured, CountingClock,
    Mock, API_KEY, ORG, PASSWORD, SYS, USER,
};
use prestage::jumpcloud::{Client, ClientOptions, Directory, JcError, RetryPolicy, Timeouts};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

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
