//! The tenant's HTTP side: a hyper HTTP/1.1 server on `127.0.0.1:0`, authentication (admin key
//! or system signature), the fault knobs, routing to `state`, and the request log.
//!
//! hyper is used directly (not a router framework) because a dropped connection must close the
//! socket without any response: hyper does that when the service returns an error.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::state::{reason, sha256_hex, Reply, State};
use super::{signature, AuthKind, RequestRecord, RetryWindow, SimOptions};

/// Shared by the server task, the agents and every [`super::Tenant`] handle.
pub(crate) struct Inner {
    pub url: url::Url,
    pub api_key: SecretString,
    pub connect_key: String,
    /// The `agentBootstrap.json` payloads of the tenant connect keys (`jcc_`) handed out. Once
    /// one was, the simulated agent registers only with a bootstrap file that is exactly one
    /// of them, as a Mac whose installer wrote the decoded payload unchanged.
    pub tenant_key_payloads: Mutex<Vec<Vec<u8>>>,
    pub org_id: String,
    pub started: Instant,
    /// One key for every Mac when `AgentBehaviour::shared_key` is set.
    /// Made once, by the first agent that needs it (500 agents must not all generate one).
    pub shared_key: tokio::sync::OnceCell<super::SystemKey>,
    contract: Option<Arc<super::contract::Specs>>,
    state: Mutex<State>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Inner {
    /// Locks the tenant. A panic while locked (a bug in the simulator) leaves the data as it
    /// was, so a poisoned lock is still usable.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// Binds and starts serving.
pub(crate) async fn start(opts: SimOptions) -> std::io::Result<Arc<Inner>> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let url = url::Url::parse(&format!("http://{addr}/"))
        .map_err(|e| std::io::Error::other(format!("bad local address {addr}: {e}")))?;
    let (state, api_key, connect_key) = State::new(&opts);
    let (stop, stop_rx) = watch::channel(false);
    let inner = Arc::new(Inner {
        url,
        api_key: SecretString::from(api_key),
        connect_key,
        tenant_key_payloads: Mutex::new(Vec::new()),
        org_id: state.org_id.clone(),
        started: Instant::now(),
        shared_key: tokio::sync::OnceCell::new(),
        contract: opts.contract.clone(),
        state: Mutex::new(state),
        stop,
        task: Mutex::new(None),
    });
    let task = tokio::spawn(accept_loop(listener, Arc::clone(&inner), stop_rx));
    *inner
        .task
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(task);
    tracing::debug!(url = %inner.url, "simulated JumpCloud tenant listening");
    Ok(inner)
}

async fn accept_loop(listener: TcpListener, inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let inner = Arc::clone(&inner);
                conns.spawn(async move {
                    let svc = service_fn(move |req| handle(Arc::clone(&inner), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
}

/// Largest request body the tenant reads.
const MAX_BODY: usize = 1 << 20;

/// Returned by the service to make hyper close the connection without a response.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped on purpose by the simulator")]
struct Dropped;

/// Who a request claims to be, after checking.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Auth {
    None,
    /// Index of the key: 0 is [`super::Tenant::api_key`], others from `add_api_key`.
    Admin(usize),
    BadKey,
    System(String),
    BadSignature(Option<String>, String),
}

impl Auth {
    fn kind(&self) -> AuthKind {
        match self {
            Auth::None => AuthKind::None,
            Auth::Admin(_) | Auth::BadKey => AuthKind::Admin,
            Auth::System(_) | Auth::BadSignature(..) => AuthKind::System,
        }
    }
    fn client(&self) -> String {
        match self {
            Auth::Admin(0) | Auth::BadKey => "admin".into(),
            Auth::Admin(n) => format!("admin:{n}"),
            Auth::System(id) | Auth::BadSignature(Some(id), _) => format!("system:{id}"),
            Auth::None | Auth::BadSignature(None, _) => "anonymous".into(),
        }
    }
}

struct Req {
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn page(&self) -> super::state::Page {
        super::state::Page {
            limit: self.query_param("limit"),
            skip: self.query_param("skip"),
        }
    }
    fn query_param(&self, name: &str) -> Option<String> {
        let q = self.query.as_deref()?;
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// What the fault dice decided for one request.
enum Fault {
    None,
    Drop,
    Error(u16),
    Throttle(Duration),
}

async fn handle(
    inner: Arc<Inner>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let at = Instant::now();
    let (parts, body) = req.into_parts();
    // JumpCloud's bodies here are small; a runaway client gets its connection closed.
    let body = http_body_util::Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|_| Dropped)?
        .to_bytes();
    let req = Req {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
    };

    let (latency, fault, after_effect, auth) = {
        let mut st = inner.lock();
        let auth = authenticate(&inner, &st, &req);
        let (fault, after_effect) = roll_faults(&mut st, &req, at);
        (st.faults.latency, fault, after_effect, auth)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let record = |st: &mut State, status: u16, injected: bool, violations: Vec<String>| {
        tracing::debug!(
            method = %req.method,
            path = %req.path,
            status,
            injected,
            "simulated tenant answered"
        );
        st.log.push(RequestRecord {
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.query.clone(),
            auth: auth.kind(),
            client: auth.client(),
            user_agent: req.header("user-agent").map(str::to_owned),
            org_id_header: req.header("x-org-id").map(str::to_owned),
            body_sha256: sha256_hex(&req.body),
            status,
            injected,
            at,
            at_ms: u64::try_from(at.duration_since(inner.started).as_millis()).unwrap_or(u64::MAX),
            contract_violations: violations,
        });
    };

    let injected = match fault {
        Fault::Throttle(wait) => Some(throttled(&inner, &req, &auth, at, wait)),
        Fault::Drop if !after_effect => {
            record(&mut inner.lock(), 0, true, Vec::new());
            return Err(Dropped);
        }
        Fault::Error(code) if !after_effect => Some(server_error(code)),
        _ => None,
    };
    if let Some(reply) = injected {
        let status = reply.status;
        record(&mut inner.lock(), status, true, Vec::new());
        return Ok(to_response(reply));
    }

    let reply = {
        let mut st = inner.lock();
        dispatch(&mut st, &req, &auth)
    };
    let reply = match fault {
        Fault::Drop => {
            record(&mut inner.lock(), 0, true, Vec::new());
            return Err(Dropped);
        }
        Fault::Error(code) => {
            let r = server_error(code);
            record(&mut inner.lock(), r.status, true, Vec::new());
            return Ok(to_response(r));
        }
        Fault::None | Fault::Throttle(_) => reply,
    };
    let checked = inner.contract.as_ref().filter(|_| !reply.off_record);
    let violations = checked.map_or_else(Vec::new, |specs| {
        specs
            .check_response(&req.method, &req.path, reply.status, reply.body.as_ref())
            .err()
            .unwrap_or_default()
    });
    record(&mut inner.lock(), reply.status, false, violations);
    Ok(to_response(reply))
}

/// Decides the fault for a request (token bucket first, then the dice).
fn roll_faults(st: &mut State, req: &Req, at: Instant) -> (Fault, bool) {
    if let Some(bucket) = st.bucket.as_mut() {
        if let Err(wait) = bucket.take(at) {
            return (Fault::Throttle(wait), false);
        }
    }
    if let Some(i) = st
        .faults
        .lose_first
        .iter()
        .position(|p| req.path.contains(p.as_str()))
    {
        st.faults.lose_first.remove(i);
        return (Fault::Drop, true);
    }
    let f = &st.faults;
    let applies = f.only_paths.is_empty() || f.only_paths.iter().any(|p| req.path.contains(p));
    if !applies {
        return (Fault::None, false);
    }
    let after = f.faults_after_effect;
    let (retry_after, drop_rate, throttle_rate, error_rate) =
        (f.retry_after, f.drop_rate, f.throttle_rate, f.error_rate);
    if st.faults.throttle_next > 0 {
        st.faults.throttle_next -= 1;
        return (Fault::Throttle(retry_after), after);
    }
    if drop_rate > 0.0 && st.rng.random::<f64>() < drop_rate {
        return (Fault::Drop, after);
    }
    if throttle_rate > 0.0 && st.rng.random::<f64>() < throttle_rate {
        return (Fault::Throttle(retry_after), after);
    }
    if error_rate > 0.0 && st.rng.random::<f64>() < error_rate {
        let code = [500, 502, 503][st.rng.random_range(0..3)];
        return (Fault::Error(code), after);
    }
    (Fault::None, after)
}

/// A 429 with `Retry-After` (whole seconds, rounded up; or an HTTP-date), remembered as a
/// window the client should keep out of.
fn throttled(inner: &Inner, req: &Req, auth: &Auth, at: Instant, wait: Duration) -> Reply {
    let mut st = inner.lock();
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    let value = if st.faults.retry_after_as_date {
        httpdate::fmt_http_date(st.now() + Duration::from_secs(secs))
    } else {
        secs.to_string()
    };
    // With an HTTP-date the client can only be held to whole seconds of its own clock.
    let window = if st.faults.retry_after_as_date {
        Duration::from_secs(secs - 1)
    } else {
        Duration::from_secs(secs)
    };
    let until = at + window;
    st.windows.push(RetryWindow {
        client: auth.client(),
        from: at,
        until,
    });
    let mut reply = Reply::error_for(&req.path, 429, "Too Many Requests");
    reply.headers.push(("retry-after".into(), value));
    reply
}

/// A 5xx as a gateway or the API would send it: 500 with a JSON error, 502/503 with HTML from
/// the load balancer (clients must not assume JSON).
fn server_error(code: u16) -> Reply {
    if code == 500 {
        return Reply::v1(500, "Internal Server Error");
    }
    let mut reply = Reply::empty(code);
    reply
        .headers
        .push(("content-type".into(), "text/html".into()));
    reply.headers.push((
        "x-sim-html".into(),
        format!("<html><body><h1>{code} {}</h1></body></html>", reason(code)),
    ));
    reply
}

fn to_response(reply: Reply) -> Response<Full<Bytes>> {
    let mut html = None;
    let mut builder = Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        if k == "x-sim-html" {
            html = Some(v.clone());
            continue;
        }
        builder = builder.header(k.as_str(), v.as_str());
    }
    let body = match (reply.body, html) {
        (Some(v), _) => {
            builder = builder.header(
                "content-type",
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
        }
        (None, Some(h)) => Bytes::from(h),
        (None, None) => Bytes::new(),
    };
    builder.body(Full::new(body)).unwrap_or_else(|_| {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

/// Checks the credentials a request carries.
fn authenticate(inner: &Inner, st: &State, req: &Req) -> Auth {
    if let Some(value) = req.header("authorization") {
        if let Some(parsed) = signature::parse(value) {
            let sig = match parsed {
                Ok(sig) => sig,
                Err(why) => return Auth::BadSignature(None, why),
            };
            let id = sig.system_id.clone();
            if st.faults.system_context_disabled {
                return Auth::BadSignature(
                    Some(id),
                    "system context is not available to this system".into(),
                );
            }
            let Some(system) = st.system_rec(&id) else {
                return Auth::BadSignature(Some(id), "unknown system".into());
            };
            let signed = signature::Signed {
                method: &req.method,
                path: &req.path,
                query: req.query.as_deref(),
                date: req.header("date"),
            };
            return match signature::verify(
                &sig,
                &system.public_key,
                &signed,
                st.now(),
                st.faults.max_skew,
            ) {
                Ok(()) => Auth::System(id),
                Err(why) => Auth::BadSignature(Some(id), why),
            };
        }
    }
    if let Some(key) = req.headers.get("x-api-key") {
        let keys = std::iter::once(&inner.api_key).chain(&st.extra_keys);
        for (n, known) in keys.enumerate() {
            if bool::from(key.as_bytes().ct_eq(known.expose_secret().as_bytes())) {
                return Auth::Admin(n);
            }
        }
        return Auth::BadKey;
    }
    Auth::None
}

/// Which credentials a route takes.
enum Access<'a> {
    AdminOnly,
    /// The system itself (or an admin key: SPEC §5 fallback for ADE-enrolled systems).
    System(&'a str),
    /// A system acting on itself, named in the body's `id`.
    SystemInBody,
}

fn authorize(st: &State, req: &Req, auth: &Auth, access: &Access<'_>) -> Result<(), Reply> {
    let deny = |msg: &str| Err(Reply::error_for(&req.path, 401, msg));
    if matches!(auth, Auth::Admin(_)) {
        check_org_header(st, req)?;
    }
    match (auth, access) {
        (Auth::None, _) | (Auth::System(_), Access::AdminOnly) => deny("Unauthorized"),
        (Auth::BadKey, _) => deny("Unauthorized: api key user not found"),
        (Auth::BadSignature(_, why), _) => {
            tracing::debug!(reason = %why, path = %req.path, "simulated tenant refused a signature");
            deny("Unauthorized")
        }
        (Auth::Admin(_), _) => Ok(()),
        (Auth::System(me), Access::System(id)) => {
            if me == id {
                Ok(())
            } else {
                deny("Unauthorized")
            }
        }
        (Auth::System(me), Access::SystemInBody) => {
            let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            let target = body.get("id").and_then(Value::as_str);
            let kind = body.get("type").and_then(Value::as_str);
            if target == Some(me.as_str()) && kind == Some("system") {
                Ok(())
            } else {
                deny("Unauthorized")
            }
        }
    }
}

/// The `x-org-id` rules of v1.json's info text ("Multi-Tenant Portal Headers", "API Response
/// Codes"): `400` malformed id; `400` x-org-id and the organisation path id do not match; `401`
/// no id from a multi-tenant administrator; `403` an id on a route that does not take it (the
/// list of organisations, which the same text says to read without it); `404` organisation
/// not found. The texts are ours except the 401's, which is JumpCloud's as quoted in
/// lbrictson/wazuh-jumpcloud-integration#1.
fn check_org_header(st: &State, req: &Req) -> Result<(), Reply> {
    let list_of_orgs =
        req.method == "GET" && req.path.trim_end_matches('/') == "/api/organizations";
    let Some(org) = req.header("x-org-id") else {
        if st.multi_tenant && !list_of_orgs {
            return Err(Reply::error_for(
                &req.path,
                401,
                "Unauthorized: no organization selected",
            ));
        }
        return Ok(());
    };
    let well_formed = org.len() == 24 && org.bytes().all(|b| b.is_ascii_hexdigit());
    if !well_formed {
        return Err(Reply::error_for(
            &req.path,
            400,
            "Bad Request: malformed x-org-id",
        ));
    }
    if list_of_orgs {
        return Err(Reply::error_for(
            &req.path,
            403,
            "Forbidden: x-org-id is not supported on this route",
        ));
    }
    if let Some(path_org) = req.path.strip_prefix("/api/organizations/") {
        if path_org.trim_end_matches('/') != org {
            return Err(Reply::error_for(
                &req.path,
                400,
                "Bad Request: x-org-id and the organization id of the path do not match",
            ));
        }
    }
    if org != st.org_id {
        return Err(Reply::error_for(
            &req.path,
            404,
            "Organization ID Not Found",
        ));
    }
    Ok(())
}

/// Routes a request to the tenant.
fn dispatch(st: &mut State, req: &Req, auth: &Auth) -> Reply {
    let segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let m = req.method.as_str();
    let access = match segs.as_slice() {
        ["api", "search" | "organizations", "systemusers"]
        | ["api", "organizations"]
        | ["api", "systemusers" | "organizations", _]
        | ["api", "systemusers", _, "state", "activate"]
        | ["api", "v2", "systemgroups", _] => Access::AdminOnly,
        ["api", "systems", id] | ["api", "v2", "systems", id, "memberof" | "associations"] => {
            Access::System(id)
        }
        ["api", "v2", "systemgroups", _, "members"] => Access::SystemInBody,
        _ => return Reply::error_for(&req.path, 404, "Not Found"),
    };
    if let Err(reply) = authorize(st, req, auth, &access) {
        return reply;
    }
    let body = || -> Result<Value, Reply> {
        serde_json::from_slice(&req.body)
            .map_err(|e| Reply::error_for(&req.path, 400, &format!("invalid JSON body: {e}")))
    };
    let result = match (m, segs.as_slice()) {
        ("POST", ["api", "search", "systemusers"]) => body().map(|b| st.search_users(&b)),
        ("GET", ["api", "systemusers", id]) => {
            Ok(st.get_user(id, req.query_param("fields").as_deref()))
        }
        ("PUT", ["api", "systemusers", id]) => body().map(|b| st.put_user(id, &b)),
        ("POST", ["api", "systemusers", id, "state", "activate"]) => {
            // An empty body is `{}` (the operation's text: "Sending an empty body").
            if req.body.is_empty() {
                Ok(st.activate(id, &Value::Object(serde_json::Map::new())))
            } else {
                body().map(|b| st.activate(id, &b))
            }
        }
        ("GET", ["api", "organizations"]) => Ok(st.list_orgs()),
        ("GET", ["api", "organizations", id]) => Ok(st.get_org(id)),
        ("GET", ["api", "v2", "systemgroups", id]) => Ok(st.get_group(id)),
        ("GET", ["api", "systems", id]) => Ok(st.get_system(id)),
        ("PUT", ["api", "systems", id]) => body().map(|b| st.put_system(id, &b)),
        ("GET", ["api", "v2", "systems", id, "memberof"]) => Ok(st.memberof(id, &req.page())),
        ("GET", ["api", "v2", "systems", id, "associations"]) => {
            Ok(st.associations(id, req.query_param("targets").as_deref(), &req.page()))
        }
        ("POST", ["api", "v2", "systems", id, "associations"]) => {
            body().map(|b| st.post_association(id, &b))
        }
        ("POST", ["api", "v2", "systemgroups", gid, "members"]) => {
            body().map(|b| st.post_member(gid, &b))
        }
        _ => Ok(Reply::error_for(&req.path, 405, "Method Not Allowed")),
    };
    result.unwrap_or_else(|reply| reply)
}
