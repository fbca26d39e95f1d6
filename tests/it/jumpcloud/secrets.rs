//! The JumpCloud client: no secret reaches a log line or an error, and no OpenSSL.

use super::{
    client, every_call, happy_tenant, oid, options, reply, CountingClock, LogBuffer, Mock, API_KEY,
    ORG, PASSWORD, SYS, USER,
};
use prestage::config::Identifier;
use prestage::jumpcloud::{Client, Directory, JcError};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;

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
