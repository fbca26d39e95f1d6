//! `Webhooks`: tell the admin's Slack, Teams or own service when an enrollment starts,
//! finishes, fails or keeps the setup account (SPEC §3).
//!
//! An outbox in the state directory (`webhooks.json`, root only) records every message before
//! it is sent and marks it sent once the receiver answered 2xx, so each event reaches each
//! receiver once per Mac across restarts and kill -9 (at least once: a crash between the
//! receiver's answer and the write sends it again, the best HTTP allows). Messages are posted
//! by a background task with backoff: the employee never waits for a receiver. A run picks up
//! what an earlier run left pending; the end of the enrollment (which removes the daemon) and a
//! failure wait a bounded time for the outbox to drain.
//!
//! Jamf Setup Manager sends `started` and `finished` once and does not retry (its
//! `Docs/Webhooks.md`); we also retry and add `Failed` and `AccountKept`.
//!
//! The URL is a secret (Slack's and Teams' URLs are bearer tokens): the outbox names a receiver
//! by [`WebhookConfig::id`] (a hash) and its position, and errors are logged `without_url`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tracing::{info, warn};

use super::state::{write_atomically, StateError, Step};
use super::Engine;
use crate::config::{WebhookConfig, WebhookEvent, WebhookKind};

/// The outbox file in the state directory.
pub const OUTBOX_FILE: &str = "webhooks.json";
/// How long one POST may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Retry backoff: doubling from the base, capped.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// How long the end of an enrollment (or a failure) waits for pending messages.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    Pending,
    Sent,
    /// The receiver refused it for good (a 4xx other than 408 and 429).
    Refused,
}

/// One message to one receiver. No URL, no secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Delivery {
    /// The event, and for `Failed` its reference code (a new failure is a new message).
    key: String,
    /// [`WebhookConfig::id`] of the receiver.
    hook: String,
    body: Value,
    status: Status,
    #[serde(default)]
    attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    /// Sent as `Idempotency-Key` with every try of this message (the header of the IETF
    /// httpapi draft "The Idempotency-Key HTTP Header Field"): a power cut between the
    /// receiver's answer and this file's record means the next start sends the message again,
    /// and a receiver of our own can tell that copy from a new message. Slack and Teams ignore
    /// it, so there a lost-record resend shows twice (at least once, never lost). Empty in
    /// outboxes written before it existed: no header then.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    id: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct OutboxFile {
    deliveries: Vec<Delivery>,
}

/// What a message says. Built from the persisted state; no secret in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    pub event: &'static str,
    pub serial: Option<String>,
    pub computer_name: Option<String>,
    #[serde(rename = "systemID")]
    pub system_id: Option<String>,
    /// Only on `Finished` (SPEC §3).
    pub user: Option<String>,
    pub step: &'static str,
    pub reference: Option<String>,
    pub duration_seconds: u64,
    pub version: &'static str,
}

struct Shared {
    path: PathBuf,
    hooks: Vec<WebhookConfig>,
    file: Mutex<OutboxFile>,
    wake: tokio::sync::Notify,
    started: std::sync::atomic::AtomicBool,
}

/// The webhook outbox of one Mac. Cheap to clone; all clones share the background task.
#[derive(Clone)]
pub struct Outbox {
    shared: Arc<Shared>,
}

impl Outbox {
    /// Opens the outbox in `state_dir` for these receivers. An unreadable file is set aside
    /// (named in the log) and the outbox starts empty.
    pub fn open(state_dir: &Path, hooks: Vec<WebhookConfig>) -> Self {
        let path = state_dir.join(OUTBOX_FILE);
        let file = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|err| {
                let aside = path.with_extension("json.bad");
                warn!(file = %path.display(), error = %err, moved_to = %aside.display(), "the webhook outbox is unreadable; starting a new one");
                let _ = std::fs::rename(&path, &aside);
                OutboxFile::default()
            }),
            Err(_) => OutboxFile::default(),
        };
        Self {
            shared: Arc::new(Shared {
                path,
                hooks,
                file: Mutex::new(file),
                wake: tokio::sync::Notify::new(),
                started: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, OutboxFile> {
        self.shared
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn persist(&self, file: &OutboxFile) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(file).map_err(|source| StateError::Encode {
            path: self.shared.path.clone(),
            source,
        })?;
        write_atomically(&self.shared.path, &bytes, 0o600)
    }

    /// Records `facts` for every receiver that wants this event, unless already recorded
    /// under `key`, and wakes the sender. Persisted before anything is sent.
    pub fn enqueue(&self, event: WebhookEvent, key: &str, facts: &Facts) -> Result<(), StateError> {
        let mut file = self.lock();
        let mut added = false;
        for hook in &self.shared.hooks {
            if !hook.events.contains(&event) {
                continue;
            }
            let id = hook.id();
            if file.deliveries.iter().any(|d| d.key == key && d.hook == id) {
                continue;
            }
            file.deliveries.push(Delivery {
                key: key.to_owned(),
                hook: id,
                body: body(hook.kind, facts),
                status: Status::Pending,
                attempts: 0,
                last_error: None,
                id: format!("{:032x}", rand::random::<u128>()),
            });
            added = true;
        }
        if added {
            self.persist(&file)?;
            drop(file);
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Pending messages (for the drain and tests).
    pub fn pending(&self) -> usize {
        self.lock()
            .deliveries
            .iter()
            .filter(|d| d.status == Status::Pending)
            .count()
    }

    /// Starts the background sender (once; needs a tokio runtime). It sends what earlier runs
    /// left pending too.
    pub fn start(&self) {
        if self.shared.hooks.is_empty()
            || self
                .shared
                .started
                .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move { me.send_loop().await });
    }

    /// Waits until nothing is pending, at most `limit`.
    pub async fn drain(&self, limit: Duration) {
        if self.pending() == 0 {
            return;
        }
        let deadline = tokio::time::Instant::now() + limit;
        while self.pending() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let left = self.pending();
        if left > 0 {
            warn!(
                pending = left,
                "webhook messages still pending; the next start sends them"
            );
        }
    }

    async fn send_loop(self) {
        let http = match reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("prestage/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(c) => c,
            Err(err) => {
                warn!(error = %err.without_url(), "cannot build the webhook client; no webhook is sent");
                return;
            }
        };
        // Per (key, hook): when the next try may go (in memory: a restart tries at once).
        let mut not_before: std::collections::HashMap<(String, String), tokio::time::Instant> =
            std::collections::HashMap::new();
        loop {
            let now = tokio::time::Instant::now();
            let pending: Vec<Delivery> = self
                .lock()
                .deliveries
                .iter()
                .filter(|d| d.status == Status::Pending)
                .cloned()
                .collect();
            let mut next_wake: Option<tokio::time::Instant> = None;
            // Each receiver gets its messages in the order they were recorded: behind one
            // that waits for a retry, the later ones to the same receiver wait too (so a
            // receiver never reads `Finished` before `Started`).
            let mut waiting: std::collections::HashSet<String> = std::collections::HashSet::new();
            for d in pending {
                if waiting.contains(&d.hook) {
                    continue;
                }
                let k = (d.key.clone(), d.hook.clone());
                if let Some(at) = not_before.get(&k) {
                    if *at > now {
                        next_wake = Some(next_wake.map_or(*at, |w| w.min(*at)));
                        waiting.insert(d.hook.clone());
                        continue;
                    }
                }
                let Some(hook) = self.shared.hooks.iter().find(|h| h.id() == d.hook) else {
                    // The receiver is no longer configured: nothing to send it to.
                    continue;
                };
                let outcome = post(&http, hook, &d).await;
                let attempts = d.attempts + 1;
                let status = match &outcome {
                    Ok(()) => Status::Sent,
                    Err(Attempt::Refused(_)) => Status::Refused,
                    Err(Attempt::Retry(_)) => Status::Pending,
                };
                match &outcome {
                    Ok(()) => {
                        info!(event = %d.key, webhook = %format!("Webhooks[{}]", hook.index), attempts, "webhook delivered");
                    }
                    Err(Attempt::Refused(why)) => {
                        warn!(event = %d.key, webhook = %format!("Webhooks[{}]", hook.index), reason = %why, "the webhook receiver refused the message; check Webhooks[{}].URL and Kind", hook.index);
                    }
                    Err(Attempt::Retry(why)) => {
                        let delay = backoff(attempts);
                        warn!(event = %d.key, webhook = %format!("Webhooks[{}]", hook.index), reason = %why, retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), "webhook not delivered; will retry");
                        let at = tokio::time::Instant::now() + delay;
                        not_before.insert(k.clone(), at);
                        waiting.insert(d.hook.clone());
                        next_wake = Some(next_wake.map_or(at, |w| w.min(at)));
                    }
                }
                let mut file = self.lock();
                if let Some(rec) = file
                    .deliveries
                    .iter_mut()
                    .find(|r| r.key == d.key && r.hook == d.hook)
                {
                    rec.status = status;
                    rec.attempts = attempts;
                    rec.last_error = outcome.err().map(|a| a.reason().to_owned());
                }
                if let Err(err) = self.persist(&file) {
                    warn!(error = %err, "could not record a webhook delivery");
                }
            }
            match next_wake {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = self.shared.wake.notified() => {}
                    }
                }
                None => self.shared.wake.notified().await,
            }
        }
    }
}

enum Attempt {
    Retry(String),
    Refused(String),
}

impl Attempt {
    fn reason(&self) -> &str {
        match self {
            Attempt::Retry(r) | Attempt::Refused(r) => r,
        }
    }
}

async fn post(http: &reqwest::Client, hook: &WebhookConfig, d: &Delivery) -> Result<(), Attempt> {
    // The one place the URL is used; reqwest's errors carry it, so they are stripped.
    let mut request = http.post(hook.url.expose_secret()).json(&d.body);
    if !d.id.is_empty() {
        request = request.header("Idempotency-Key", &d.id);
    }
    let response = request
        .send()
        .await
        .map_err(|e| Attempt::Retry(super::chain(&e.without_url())))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else if status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
    {
        Err(Attempt::Retry(format!("HTTP {status}")))
    } else {
        Err(Attempt::Refused(format!("HTTP {status}")))
    }
}

fn backoff(attempts: u32) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1 << attempts.saturating_sub(1).min(16));
    let capped = exp.min(BACKOFF_CAP);
    // Full jitter would let a retry come at once; half of it keeps some spacing.
    let half = capped / 2;
    half + half.mul_f64(rand::random::<f64>())
}

/// The message for a receiver of `kind`.
fn body(kind: WebhookKind, f: &Facts) -> Value {
    match kind {
        WebhookKind::Generic => serde_json::to_value(f).unwrap_or(Value::Null),
        // Slack incoming webhooks take `text` (also the notification's fallback) and optional
        // `blocks` (api.slack.com/messaging/webhooks).
        WebhookKind::Slack => json!({
            "text": summary(f),
            "blocks": [
                { "type": "section", "text": { "type": "mrkdwn", "text": format!("*{}*", summary(f)) } },
                { "type": "section", "fields": facts_list(f).into_iter().map(|(k, v)| json!({ "type": "mrkdwn", "text": format!("*{k}*\n{v}") })).collect::<Vec<_>>() },
            ],
        }),
        // Teams "Workflows" webhooks ("Send webhook alerts to a channel", which replaced the
        // Office 365 connectors) take a message with an Adaptive Card attachment (Microsoft's
        // msteams-docs, "Send Adaptive Cards using an Incoming Webhook"; Setup Manager's
        // `teams` kind posts to the same Workflows URL).
        WebhookKind::Teams => json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        { "type": "TextBlock", "text": summary(f), "weight": "Bolder", "size": "Medium", "wrap": true },
                        { "type": "FactSet", "facts": facts_list(f).into_iter().map(|(k, v)| json!({ "title": k, "value": v })).collect::<Vec<_>>() },
                    ],
                },
            }],
        }),
    }
}

fn mac_name(f: &Facts) -> String {
    match (&f.computer_name, &f.serial) {
        (Some(n), Some(s)) => format!("{n} ({s})"),
        (Some(n), None) => n.clone(),
        (None, Some(s)) => s.clone(),
        (None, None) => "a Mac".to_owned(),
    }
}

/// One line for people.
fn summary(f: &Facts) -> String {
    let mac = mac_name(f);
    match f.event {
        "Started" => format!("prestage: enrollment of {mac} started"),
        "Finished" => format!(
            "prestage: {mac} is enrolled{} (in {})",
            f.user
                .as_ref()
                .map(|u| format!(" for {u}"))
                .unwrap_or_default(),
            if f.duration_seconds < 120 {
                format!("{} s", f.duration_seconds)
            } else {
                format!("{} min", f.duration_seconds.div_ceil(60))
            }
        ),
        "Failed" => format!(
            "prestage: enrollment of {mac} stopped at {} (reference {})",
            f.step,
            f.reference.as_deref().unwrap_or("-")
        ),
        _ => format!("prestage: {mac} kept its setup account; an admin must finish it"),
    }
}

fn facts_list(f: &Facts) -> Vec<(&'static str, String)> {
    let mut out = vec![("Event", f.event.to_owned()), ("Step", f.step.to_owned())];
    for (k, v) in [
        ("Serial", &f.serial),
        ("Computer name", &f.computer_name),
        ("System ID", &f.system_id),
        ("User", &f.user),
        ("Reference", &f.reference),
    ] {
        if let Some(v) = v {
            out.push((k, v.clone()));
        }
    }
    out.push(("Duration", format!("{} s", f.duration_seconds)));
    out.push(("prestage", f.version.to_owned()));
    out
}

/// The facts of `event` at this point of the enrollment.
pub fn facts(e: &Engine, event: WebhookEvent, step: Step, reference: Option<String>) -> Facts {
    let started = e
        .state
        .steps
        .values()
        .map(|r| r.started_ms)
        .min()
        .unwrap_or_else(super::clock::now_ms);
    Facts {
        event: event.name(),
        serial: e.state.naming.serial.clone(),
        computer_name: e.state.naming.computer_name.clone(),
        system_id: e.state.agent.system_key.clone(),
        user: (event == WebhookEvent::Finished)
            .then(|| e.state.identity.user.as_ref().map(|u| u.local_name.clone()))
            .flatten(),
        step: step.name(),
        reference,
        duration_seconds: super::clock::now_ms().saturating_sub(started) / 1000,
        version: env!("CARGO_PKG_VERSION"),
    }
}

/// Records `event` for the receivers (once per Mac; `Failed` once per reference code). Best
/// effort: a full disk must not stop the enrollment over a chat message (the log says so).
pub fn notify(e: &Engine, event: WebhookEvent, step: Step, reference: Option<&str>) {
    if e.config.webhooks.is_empty() {
        return;
    }
    let key = match reference {
        Some(r) => format!("{}:{r}", event.name()),
        None => event.name().to_owned(),
    };
    let facts = facts(e, event, step, reference.map(str::to_owned));
    if let Err(err) = e.webhooks.enqueue(event, &key, &facts) {
        warn!(error = %err, event = event.name(), "could not record a webhook message");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            event: "Finished",
            serial: Some("C02XK1JHJG5J".into()),
            computer_name: Some("MAC-JHJG5J".into()),
            system_id: Some("5f0000000000000000000001".into()),
            user: Some("ada.lovelace".into()),
            step: "cleanup",
            reference: None,
            duration_seconds: 125,
            version: "0.1.0",
        }
    }

    #[test]
    fn generic_has_exactly_the_spec_fields() {
        let v = body(WebhookKind::Generic, &facts());
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "computerName",
                "durationSeconds",
                "event",
                "reference",
                "serial",
                "step",
                "systemID",
                "user",
                "version"
            ]
        );
        assert_eq!(v["event"], "Finished");
    }

    #[test]
    fn slack_and_teams_formats() {
        let s = body(WebhookKind::Slack, &facts());
        assert!(s["text"].as_str().unwrap().contains("MAC-JHJG5J"));
        assert_eq!(s["blocks"][0]["type"], "section");
        let t = body(WebhookKind::Teams, &facts());
        assert_eq!(t["type"], "message");
        let att = &t["attachments"][0];
        assert_eq!(
            att["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(att["content"]["type"], "AdaptiveCard");
    }

    #[test]
    fn an_event_is_recorded_once_per_receiver_and_the_url_never() {
        let dir = tempfile::tempdir().unwrap();
        let hook = |url: &str, index| WebhookConfig {
            url: secrecy::SecretString::from(url.to_owned()),
            kind: WebhookKind::Generic,
            events: WebhookEvent::ALL.to_vec(),
            index,
        };
        let hooks = vec![
            hook("https://hooks.example.com/T000/B000/XXXXSECRET", 0),
            hook("https://other.example.com/abc", 1),
        ];
        let out = Outbox::open(dir.path(), hooks.clone());
        out.enqueue(WebhookEvent::Finished, "Finished", &facts())
            .unwrap();
        out.enqueue(WebhookEvent::Finished, "Finished", &facts())
            .unwrap();
        assert_eq!(out.pending(), 2);
        // A restart reads what was recorded.
        let again = Outbox::open(dir.path(), hooks);
        again
            .enqueue(WebhookEvent::Finished, "Finished", &facts())
            .unwrap();
        assert_eq!(again.pending(), 2);
        let text = std::fs::read_to_string(dir.path().join(OUTBOX_FILE)).unwrap();
        assert!(
            !text.contains("XXXXSECRET") && !text.contains("example.com"),
            "{text}"
        );
    }
}
