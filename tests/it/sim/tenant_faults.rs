//! The simulated JumpCloud tenant's faults, throttling and request log.

use super::{admin, assert_contract, opts, request, send, signed, start, system};
use prestage::sim::{AuthKind, Faults, RateLimit, SimOptions, SimUser};
use secrecy::ExposeSecret;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

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
