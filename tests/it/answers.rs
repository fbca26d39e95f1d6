//! The JumpCloud client against answers as a real tenant gives them, where they differ from the
//! happy path the specs show (issue 14, evidence in the audit `jumpcloud-api.md`): signed
//! requests over HTTP/1.1 only, a refused password in any 4xx, "Already Exists" in any 4xx,
//! the Welcome email of an activation, and the admin hints of 401 and 403.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prestage::jumpcloud::{Client, ClientOptions, Directory, RetryPolicy, Timeouts};
use secrecy::SecretString;
use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpListener, TcpStream};
use url::Url;

use super::jumpcloud::{identity, oid, API_KEY, ORG};

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
