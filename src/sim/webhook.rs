//! A webhook receiver for the simulation: a loopback HTTP server that records every message
//! posted to it, as the admin's Slack, Teams or own service would get it, so `prestage demo`
//! shows what would be sent and tests check that each event arrives once.
//!
//! `fail_every_other`: every second POST gets a 503 (a receiver that fails half the time),
//! which the sender must retry.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// One message as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request path (tells receivers apart: `/slack/T0/B0/secret`).
    pub path: String,
    pub body: serde_json::Value,
    /// The raw body, for searching it for secrets.
    pub raw: String,
    /// The `Idempotency-Key` header: the same for every try of one message.
    pub idempotency_key: Option<String>,
}

struct Inner {
    fail_every_other: bool,
    /// Every POST gets a 503 while set (a receiver that is down).
    down: std::sync::atomic::AtomicBool,
    posts: AtomicUsize,
    received: Mutex<Vec<Received>>,
}

/// A running receiver; stops when dropped.
pub struct WebhookReceiver {
    url: url::Url,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    pub async fn start(fail_every_other: bool) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let url = url::Url::parse(&format!("http://{addr}/"))
            .map_err(|e| std::io::Error::other(format!("bad local address {addr}: {e}")))?;
        let inner = Arc::new(Inner {
            fail_every_other,
            down: std::sync::atomic::AtomicBool::new(false),
            posts: AtomicUsize::new(0),
            received: Mutex::new(Vec::new()),
        });
        let shared = Arc::clone(&inner);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let inner = Arc::clone(&shared);
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(Arc::clone(&inner), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Self { url, inner, task })
    }

    /// The URL of a receiver at `path` (e.g. `slack/T000/B000/XXXX`).
    pub fn url(&self, path: &str) -> url::Url {
        self.url.join(path).unwrap_or_else(|_| self.url.clone())
    }

    /// Every message accepted (2xx), in order.
    pub fn received(&self) -> Vec<Received> {
        self.inner
            .received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Takes the receiver down (every POST answered 503) or back up.
    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
    }

    /// POSTs seen, the refused ones included.
    pub fn posts(&self) -> usize {
        self.inner.posts.load(Ordering::SeqCst)
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    inner: Arc<Inner>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = req.uri().path().to_owned();
    let post = req.method() == hyper::Method::POST;
    let idempotency_key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = req.into_body().collect().await?.to_bytes();
    let reply = |code: u16, text: &'static str| {
        let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
        *r.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::OK);
        Ok(r)
    };
    if !post {
        return reply(405, "POST only");
    }
    let n = inner.posts.fetch_add(1, Ordering::SeqCst);
    if inner.down.load(Ordering::SeqCst) || (inner.fail_every_other && n % 2 == 0) {
        return reply(503, "busy");
    }
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        // Slack answers `invalid_payload` with 400 to a body that is not JSON.
        return reply(400, "invalid_payload");
    };
    inner
        .received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(Received {
            path,
            body,
            raw: String::from_utf8_lossy(&bytes).into_owned(),
            idempotency_key,
        });
    // Slack's incoming webhooks answer 200 `ok`.
    reply(200, "ok")
}
