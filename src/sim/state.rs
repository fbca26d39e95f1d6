//! The tenant's in-memory directory (organisation, users, systems, groups, associations) and
//! the operations the HTTP routes perform on it.
//!
//! Operations return a [`Reply`] shaped as JumpCloud answers: v1 errors are
//! `{"message": "..."}` (e.g. `{"message":"Unauthorized: no organization selected"}`, quoted in
//! lbrictson/wazuh-jumpcloud-integration#1), v2 errors add `error`
//! (`{"error":"Unauthorized","message":"Unauthorized: api key user not found"}`, quoted in
//! DefGuard/defguard#2743). Both fit the specs' `Error` schema.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use super::filter::{self, FilterError};
use super::password;
use super::{
    AgentBehaviour, EmailKind, Faults, RateLimit, RequestRecord, RetryWindow, SimEmail, SimOptions,
    SimSystemView, SimUser, SimUserView,
};
use crate::jumpcloud::UserState;
use crate::policy::PasswordPolicy;

/// An HTTP answer before it is serialised.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(String, String)>,
    /// The status was chosen by a knob because JumpCloud's is not on record (a refused
    /// password, a duplicate add): the contract check, which wants documented statuses, skips
    /// this answer.
    pub off_record: bool,
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Self {
            status: 200,
            body: Some(body),
            headers: Vec::new(),
            off_record: false,
        }
    }
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            body: None,
            headers: Vec::new(),
            off_record: false,
        }
    }
    /// A v1 error body.
    pub fn v1(status: u16, message: &str) -> Self {
        Self {
            status,
            body: Some(json!({ "message": message })),
            headers: Vec::new(),
            off_record: false,
        }
    }
    /// A v2 error body.
    pub fn v2(status: u16, error: &str, message: &str) -> Self {
        Self {
            status,
            body: Some(json!({ "error": error, "message": message })),
            headers: Vec::new(),
            off_record: false,
        }
    }
    /// This answer with a status JumpCloud has not documented (see `off_record`).
    #[must_use]
    pub fn off_record(mut self) -> Self {
        self.off_record = true;
        self
    }

    /// The error body of the API version a path belongs to.
    pub fn error_for(path: &str, status: u16, message: &str) -> Self {
        if path.starts_with("/api/v2/") {
            Self::v2(status, reason(status), message)
        } else {
            Self::v1(status, message)
        }
    }
}

/// The reason phrase of a status, used as the v2 `error` field.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

#[derive(Debug, Clone)]
pub(crate) struct UserRec {
    pub id: String,
    pub user: SimUser,
    pub created: String,
    pub password_sets: u32,
    pub password_rejections: u32,
    pub password_history: Vec<String>,
    pub password_date: Option<String>,
    pub emails: Vec<SimEmail>,
}

#[derive(Debug, Clone)]
pub(crate) struct SystemRec {
    pub id: String,
    pub hostname: String,
    pub display_name: String,
    pub descriptions: Vec<String>,
    pub public_key: Vec<u8>,
    pub created: String,
}

#[derive(Debug, Clone)]
pub(crate) struct GroupRec {
    pub id: String,
    pub name: String,
    pub members: Vec<String>,
}

/// A token bucket (see [`RateLimit`]).
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    pub limit: RateLimit,
    pub tokens: f64,
    pub last: Instant,
}

impl Bucket {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst),
            last: Instant::now(),
        }
    }

    /// Takes a token, or says how long until one is available.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens =
            (self.tokens + elapsed * self.limit.per_second).min(f64::from(self.limit.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else if self.limit.per_second > 0.0 {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.limit.per_second,
            ))
        } else {
            Err(Duration::from_secs(3600))
        }
    }
}

/// The whole tenant. Guarded by one mutex in `server::Inner`, never held across an await.
pub(crate) struct State {
    pub org_id: String,
    pub org_name: String,
    pub org_created: String,
    pub policy: PasswordPolicy,
    pub history: u32,
    pub extra_policy: Map<String, Value>,
    pub users: Vec<UserRec>,
    pub systems: Vec<SystemRec>,
    pub groups: Vec<GroupRec>,
    /// system id → bound users `(user id, sudo)` in bind order.
    pub binds: BTreeMap<String, Vec<(String, bool)>>,
    pub log: Vec<RequestRecord>,
    pub windows: Vec<RetryWindow>,
    pub faults: Faults,
    pub bucket: Option<Bucket>,
    pub agent: AgentBehaviour,
    pub rng: StdRng,
    /// Admin keys beyond the first (one per simulated Mac in fleet runs).
    pub extra_keys: Vec<secrecy::SecretString>,
    /// [`SimOptions::password_refusal_statuses`], and how many refusals were given so far.
    pub refusal_statuses: Vec<u16>,
    pub refusals: usize,
    /// [`SimOptions::duplicate_status`].
    pub duplicate_status: u16,
    /// [`SimOptions::multi_tenant`].
    pub multi_tenant: bool,
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, as JumpCloud writes dates.
pub(crate) fn iso(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Reads back a date written by [`iso`].
pub(crate) fn parse_iso(s: &str) -> Option<SystemTime> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| SystemTime::from(d.with_timezone(&chrono::Utc)))
}

/// SHA-256 hex of some bytes.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    digest
        .as_ref()
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn hex_id(rng: &mut StdRng, chars: usize) -> String {
    use std::fmt::Write;
    (0..chars.div_ceil(2))
        .fold(String::new(), |mut s, _| {
            let _ = write!(s, "{:02x}", rng.random::<u8>());
            s
        })
        .chars()
        .take(chars)
        .collect()
}

impl State {
    pub fn new(opts: &SimOptions) -> (Self, String, String) {
        let mut rng = StdRng::seed_from_u64(opts.seed);
        let org_id = hex_id(&mut rng, 24);
        let api_key = format!("jca_{}", hex_id(&mut rng, 36));
        let connect_key = hex_id(&mut rng, 40);
        let st = Self {
            org_id,
            org_name: opts.org_name.clone(),
            org_created: iso(SystemTime::now()),
            policy: opts.password_policy.clone(),
            // `SimOptions::password_history` or the policy's own `history`.
            history: opts.password_history.max(opts.password_policy.history),
            extra_policy: opts.extra_policy_fields.clone(),
            users: Vec::new(),
            systems: Vec::new(),
            groups: Vec::new(),
            binds: BTreeMap::new(),
            log: Vec::new(),
            windows: Vec::new(),
            faults: opts.faults.clone(),
            bucket: opts.rate_limit.map(Bucket::new),
            agent: opts.agent.clone(),
            rng,
            extra_keys: Vec::new(),
            refusal_statuses: opts.password_refusal_statuses.clone(),
            refusals: 0,
            duplicate_status: opts.duplicate_status,
            multi_tenant: opts.multi_tenant,
        };
        (st, api_key, connect_key)
    }

    /// A further admin API key.
    pub fn add_api_key(&mut self) -> secrecy::SecretString {
        let key = secrecy::SecretString::from(format!("jca_{}", hex_id(&mut self.rng, 36)));
        self.extra_keys.push(key.clone());
        key
    }

    pub fn new_id(&mut self) -> String {
        hex_id(&mut self.rng, 24)
    }

    /// The server clock, shifted by the clock-offset knob.
    pub fn now(&self) -> SystemTime {
        let offset = Duration::from_secs(self.faults.clock_offset_secs.unsigned_abs());
        if self.faults.clock_offset_secs >= 0 {
            SystemTime::now() + offset
        } else {
            SystemTime::now() - offset
        }
    }

    // ---- set-up and assertions (no HTTP) ----

    pub fn add_user(&mut self, user: SimUser) -> String {
        let id = self.new_id();
        let password_date = user.activated.then(|| iso(SystemTime::now()));
        self.users.push(UserRec {
            id: id.clone(),
            user,
            created: iso(SystemTime::now()),
            password_sets: 0,
            password_rejections: 0,
            password_history: Vec::new(),
            password_date,
            emails: Vec::new(),
        });
        id
    }

    pub fn add_group(&mut self, name: &str) -> String {
        let id = self.new_id();
        self.groups.push(GroupRec {
            id: id.clone(),
            name: name.into(),
            members: Vec::new(),
        });
        id
    }

    pub fn register_system(&mut self, hostname: &str, public_key: Vec<u8>) -> String {
        let id = self.new_id();
        self.systems.push(SystemRec {
            id: id.clone(),
            hostname: hostname.into(),
            display_name: hostname.into(),
            descriptions: vec![String::new()],
            public_key,
            created: iso(SystemTime::now()),
        });
        id
    }

    pub fn bind(&mut self, system: &str, user: &str, sudo: bool) {
        let list = self.binds.entry(system.into()).or_default();
        match list.iter_mut().find(|(u, _)| u == user) {
            Some(entry) => entry.1 = sudo,
            None => list.push((user.into(), sudo)),
        }
    }

    pub fn add_member(&mut self, group: &str, system: &str) {
        if let Some(g) = self.groups.iter_mut().find(|g| g.id == group) {
            if !g.members.iter().any(|m| m == system) {
                g.members.push(system.into());
            }
        }
    }

    pub fn user_rec(&self, id: &str) -> Option<&UserRec> {
        self.users.iter().find(|u| u.id == id)
    }

    pub fn system_rec(&self, id: &str) -> Option<&SystemRec> {
        self.systems.iter().find(|s| s.id == id)
    }

    pub fn user_view(&self, id: &str) -> Option<SimUserView> {
        self.user_rec(id).map(|r| SimUserView {
            id: r.id.clone(),
            user: r.user.clone(),
            password_sets: r.password_sets,
            password_rejections: r.password_rejections,
            password_history: r.password_history.clone(),
            password_date: r.password_date.clone(),
            activated: r.user.activated,
            state: r.user.state,
            emails: r.emails.clone(),
        })
    }

    pub fn bindings(&self, system: &str) -> Vec<(String, bool)> {
        self.binds.get(system).cloned().unwrap_or_default()
    }

    pub fn group_members(&self, group: &str) -> Vec<String> {
        self.groups
            .iter()
            .find(|g| g.id == group)
            .map(|g| g.members.clone())
            .unwrap_or_default()
    }

    pub fn system_views(&self) -> Vec<SimSystemView> {
        self.systems
            .iter()
            .map(|s| SimSystemView {
                id: s.id.clone(),
                hostname: s.hostname.clone(),
                descriptions: s.descriptions.clone(),
                display_name: s.display_name.clone(),
            })
            .collect()
    }

    // ---- JSON shapes (v1 `systemuserreturn`, `JcSystem`, `organization`) ----

    fn user_json(&self, r: &UserRec) -> Value {
        let u = &r.user;
        let mut v = json!({
            "_id": r.id,
            "username": u.username,
            "email": u.email,
            "firstname": u.firstname,
            "lastname": u.lastname,
            "displayname": format!("{} {}", u.firstname, u.lastname).trim().to_owned(),
            "description": u.description,
            "activated": u.activated,
            "state": state_str(u.state),
            "suspended": u.state == UserState::Suspended,
            "account_locked": false,
            "organization": self.org_id,
            "created": r.created,
            "sudo": false,
            "passwordless_sudo": false,
            "password_expired": false,
            "attributes": u.attributes.iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect::<Vec<_>>(),
        });
        if let Value::Object(map) = &mut v {
            if let Some(s) = &u.system_username {
                map.insert("systemUsername".into(), json!(s));
            }
            if let Some(e) = &u.employee_identifier {
                map.insert("employeeIdentifier".into(), json!(e));
            }
            if let Some(d) = &r.password_date {
                map.insert("password_date".into(), json!(d));
            }
        }
        v
    }

    fn system_json(&self, s: &SystemRec) -> Value {
        json!({
            "_id": s.id,
            "hostname": s.hostname,
            "displayName": s.display_name,
            "description": s.descriptions.last().cloned().unwrap_or_default(),
            "organization": self.org_id,
            "os": "Mac OS X",
            "osFamily": "darwin",
            "arch": "arm64",
            "active": true,
            "agentVersion": "3.2.1",
            "created": s.created,
            "lastContact": iso(self.now()),
        })
    }

    fn policy_json(&self) -> Value {
        let p = &self.policy;
        let mut map = Map::new();
        map.insert("enableMinLength".into(), json!(p.min_length > 0));
        map.insert("minLength".into(), json!(p.min_length));
        map.insert("needsUppercase".into(), json!(p.require_uppercase));
        map.insert("needsLowercase".into(), json!(p.require_lowercase));
        map.insert("needsNumeric".into(), json!(p.require_number));
        map.insert("needsSymbolic".into(), json!(p.require_symbol));
        map.insert("enableMaxHistory".into(), json!(self.history > 0));
        if self.history > 0 {
            map.insert("maxHistory".into(), json!(self.history));
        }
        map.insert("allowUsernameSubstring".into(), json!(!p.forbid_username));
        map.insert(
            "disallowSequentialOrRepetitiveChars".into(),
            json!(p.forbid_sequences),
        );
        map.insert(
            "disallowCommonlyUsedPasswords".into(),
            json!(p.forbid_common),
        );
        map.insert(
            "enableMinChangePeriodInDays".into(),
            json!(p.min_change_days > 0),
        );
        if p.min_change_days > 0 {
            map.insert("minChangePeriodInDays".into(), json!(p.min_change_days));
        }
        for (k, v) in &self.extra_policy {
            map.insert(k.clone(), v.clone());
        }
        Value::Object(map)
    }

    fn org_json(&self) -> Value {
        json!({
            "_id": self.org_id,
            "displayName": self.org_name,
            "created": self.org_created,
            "settings": {
                "name": self.org_name,
                "passwordCompliance": "custom",
                "passwordPolicy": self.policy_json(),
            }
        })
    }

    // ---- routes ----

    /// `POST /api/search/systemusers` (v1 `search` body).
    pub fn search_users(&self, body: &Value) -> Reply {
        let Some(obj) = body.as_object() else {
            return Reply::v1(400, "request body must be a JSON object");
        };
        let limit = match obj.get("limit") {
            None | Some(Value::Null) => 10,
            Some(v) => match v.as_u64() {
                Some(n) if n <= 100 => n,
                _ => return Reply::v1(400, "limit must be an integer between 0 and 100"),
            },
        };
        let skip = match obj.get("skip") {
            None | Some(Value::Null) => 0,
            Some(v) => match v.as_u64() {
                Some(n) => n,
                None => return Reply::v1(400, "skip must be a non-negative integer"),
            },
        };
        let fields: Option<Vec<&str>> = match obj.get("fields") {
            None | Some(Value::Null) => None,
            // v1 `search.fields` is a string: space-separated field names.
            Some(Value::String(s)) => Some(s.split_whitespace().collect()),
            Some(_) => return Reply::v1(400, "fields must be a space-separated string"),
        };
        let filter = match obj.get("filter") {
            None | Some(Value::Null) => None,
            Some(f) => match filter::Filter::parse(f, self.faults.reject_regex) {
                Ok(f) => Some(f),
                Err(FilterError(msg)) => return Reply::v1(400, &msg),
            },
        };
        let search = match obj.get("searchFilter") {
            None | Some(Value::Null) => None,
            Some(s) => match filter::SearchFilter::parse(s) {
                Ok(s) => Some(s),
                Err(FilterError(msg)) => return Reply::v1(400, &msg),
            },
        };
        let matches: Vec<Value> = self
            .users
            .iter()
            .map(|r| self.user_json(r))
            .filter(|u| filter.as_ref().is_none_or(|f| f.matches(u)))
            .filter(|u| search.as_ref().is_none_or(|s| s.matches(u)))
            .collect();
        let total = matches.len();
        let results: Vec<Value> = matches
            .into_iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(100))
            .map(|u| project(u, fields.as_deref()))
            .collect();
        Reply::ok(json!({ "totalCount": total, "results": results }))
    }

    /// `GET /api/systemusers/{id}`, with the optional `fields` query (space-separated, v1).
    pub fn get_user(&self, id: &str, fields: Option<&str>) -> Reply {
        let fields: Option<Vec<&str>> = fields.map(|f| f.split_whitespace().collect());
        match self.user_rec(id) {
            Some(r) => Reply::ok(project(self.user_json(r), fields.as_deref())),
            None => Reply::v1(404, "User not found"),
        }
    }

    /// `PUT /api/systemusers/{id}` (v1 `systemuserput`). A password is checked against the
    /// organisation's policy and history first; an accepted one sets `password_date` and makes
    /// the user active (`activated: true`: JumpCloud's "pending" means "no password yet"). The
    /// bash script sets a pending user's password with exactly `{"password": ...}` (its
    /// `user_configuration` section of jumpcloud_bootstrap_template.sh), no `activated` field.
    pub fn put_user(&mut self, id: &str, body: &Value) -> Reply {
        let Some(obj) = body.as_object() else {
            return Reply::v1(400, "request body must be a JSON object");
        };
        let Some(idx) = self.users.iter().position(|u| u.id == id) else {
            return Reply::v1(404, "User not found");
        };
        let state = match obj.get("state") {
            None => None,
            Some(Value::String(s)) if s == "ACTIVATED" => Some(UserState::Activated),
            Some(Value::String(s)) if s == "SUSPENDED" => Some(UserState::Suspended),
            Some(Value::String(s)) if s == "STAGED" => {
                return Reply::v1(400, "state can only be set to ACTIVATED or SUSPENDED")
            }
            Some(_) => return Reply::v1(400, "state must be ACTIVATED or SUSPENDED"),
        };
        let mut strings = Vec::new();
        for key in [
            "email",
            "username",
            "firstname",
            "lastname",
            "description",
            "employeeIdentifier",
            "systemUsername",
        ] {
            match obj.get(key) {
                None => {}
                Some(Value::String(s)) => strings.push((key, s.clone())),
                Some(_) => return Reply::v1(400, &format!("{key} must be a string")),
            }
        }
        if let Some(pw) = obj.get("password") {
            let Some(pw) = pw.as_str() else {
                return Reply::v1(400, "password must be a string");
            };
            let hash = sha256_hex(pw.as_bytes());
            let rec = &self.users[idx];
            let mut usernames = vec![rec.user.username.as_str()];
            usernames.extend(rec.user.system_username.as_deref());
            let subject = password::Subject {
                usernames: &usernames,
                history: &rec.password_history,
                changed_at: rec.password_date.as_deref().and_then(parse_iso),
            };
            if let Some(why) =
                password::refusal(&self.policy, self.history, &subject, pw, &hash, self.now())
            {
                self.users[idx].password_rejections += 1;
                let status = self.refusal_status();
                return Reply::v1(status, &why).off_record();
            }
            let now = iso(self.now());
            let rec = &mut self.users[idx];
            rec.password_history.push(hash);
            rec.password_sets += 1;
            rec.password_date = Some(now);
            rec.user.activated = true;
        }
        let rec = &mut self.users[idx];
        if let Some(s) = state {
            rec.user.state = s;
        }
        for (key, value) in strings {
            match key {
                "email" => rec.user.email = value,
                "username" => rec.user.username = value,
                "firstname" => rec.user.firstname = value,
                "lastname" => rec.user.lastname = value,
                "description" => rec.user.description = value,
                "employeeIdentifier" => rec.user.employee_identifier = Some(value),
                _ => rec.user.system_username = Some(value),
            }
        }
        let rec = self.users[idx].clone();
        Reply::ok(self.user_json(&rec))
    }

    /// The status of the next password refusal ([`SimOptions::password_refusal_statuses`]).
    fn refusal_status(&mut self) -> u16 {
        let n = self.refusals;
        self.refusals += 1;
        self.refusal_statuses
            .get(n)
            .or_else(|| self.refusal_statuses.last())
            .copied()
            .unwrap_or(400)
    }

    /// `POST /api/systemusers/{id}/state/activate`: STAGED → ACTIVATED, with the email the
    /// operation's text describes: no `email` flag (an empty body) or `true` sends "a Welcome
    /// email" to a user with a password and "an Activation email" to one without (to the
    /// primary address: the sim keeps no alternate one); a string sends it there instead;
    /// `false` sends none. Already ACTIVATED is a no-op 200 without email (JumpCloud's answer
    /// is not on record; prestage reads the state before it activates); SUSPENDED is refused.
    pub fn activate(&mut self, id: &str, body: &Value) -> Reply {
        let to = match body.get("email") {
            None | Some(Value::Null | Value::Bool(true)) => Some(None),
            Some(Value::Bool(false)) => None,
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(_) => return Reply::v1(400, "email must be a boolean or an address"),
        };
        let Some(rec) = self.users.iter_mut().find(|u| u.id == id) else {
            return Reply::v1(404, "User not found");
        };
        match rec.user.state {
            UserState::Staged => {
                rec.user.state = UserState::Activated;
                if let Some(to) = to {
                    let kind = if rec.user.activated {
                        EmailKind::Welcome
                    } else {
                        EmailKind::Activation
                    };
                    let to = to.unwrap_or_else(|| rec.user.email.clone());
                    rec.emails.push(SimEmail { kind, to });
                }
                Reply::empty(200)
            }
            UserState::Activated => Reply::empty(200),
            UserState::Suspended => Reply::v1(400, "A suspended user cannot be activated"),
        }
    }

    /// `GET /api/organizations/{id}`.
    pub fn get_org(&self, id: &str) -> Reply {
        if id == self.org_id {
            Reply::ok(self.org_json())
        } else {
            Reply::v1(404, "Organization not found")
        }
    }

    /// `GET /api/organizations` (v1 `organizationslist`).
    pub fn list_orgs(&self) -> Reply {
        Reply::ok(json!({
            "totalCount": 1,
            "results": [{ "_id": self.org_id, "displayName": self.org_name, "logoUrl": "" }],
        }))
    }

    /// `GET /api/v2/systemgroups/{id}` (v2 `SystemGroup`).
    pub fn get_group(&self, id: &str) -> Reply {
        match self.groups.iter().find(|g| g.id == id) {
            Some(g) => Reply::ok(json!({
                "id": g.id,
                "name": g.name,
                "type": "system_group",
                "organizationObjectId": self.org_id,
            })),
            None => Reply::v2(404, "Not Found", "System group not found"),
        }
    }

    /// `GET /api/systems/{id}`.
    pub fn get_system(&self, id: &str) -> Reply {
        match self.system_rec(id) {
            Some(s) => Reply::ok(self.system_json(s)),
            None => Reply::v1(404, "System not found"),
        }
    }

    /// `PUT /api/systems/{id}`: `description` and `displayName` are kept.
    pub fn put_system(&mut self, id: &str, body: &Value) -> Reply {
        let Some(obj) = body.as_object() else {
            return Reply::v1(400, "request body must be a JSON object");
        };
        let Some(idx) = self.systems.iter().position(|s| s.id == id) else {
            return Reply::v1(404, "System not found");
        };
        for key in ["description", "displayName"] {
            if obj.get(key).is_some_and(|v| !v.is_string()) {
                return Reply::v1(400, &format!("{key} must be a string"));
            }
        }
        let sys = &mut self.systems[idx];
        if let Some(d) = obj.get("description").and_then(Value::as_str) {
            sys.descriptions.push(d.to_owned());
        }
        if let Some(d) = obj.get("displayName").and_then(Value::as_str) {
            d.clone_into(&mut sys.display_name);
        }
        let sys = self.systems[idx].clone();
        Reply::ok(self.system_json(&sys))
    }
}

fn state_str(s: UserState) -> &'static str {
    match s {
        UserState::Staged => "STAGED",
        UserState::Activated => "ACTIVATED",
        UserState::Suspended => "SUSPENDED",
    }
}

/// Keeps only `fields` (and `_id`, which JumpCloud always returns) of a user object.
fn project(user: Value, fields: Option<&[&str]>) -> Value {
    let (Some(fields), Value::Object(map)) = (fields, &user) else {
        return user;
    };
    if fields.is_empty() {
        return user;
    }
    let kept: Map<String, Value> = map
        .iter()
        .filter(|(k, _)| k.as_str() == "_id" || fields.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(kept)
}

/// `limit` and `skip` of a v2 list read (v2.json `trait:limit:limit`: default 10, at most 100;
/// `trait:skip:skip`: default 0), as the query strings the client sent.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub limit: Option<String>,
    pub skip: Option<String>,
}

impl Page {
    /// The page of `list` these parameters select, or a 400 for values that are not numbers.
    pub(crate) fn reply(&self, list: Vec<Value>) -> Reply {
        let limit = match self.limit.as_deref().map(str::parse::<usize>) {
            None => 10,
            Some(Ok(n)) if n <= 100 => n,
            Some(_) => return Reply::v2(400, "Bad Request", "limit must be between 0 and 100"),
        };
        let skip = match self.skip.as_deref().map(str::parse::<usize>) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => {
                return Reply::v2(400, "Bad Request", "skip must be a non-negative integer")
            }
        };
        Reply::ok(Value::Array(
            list.into_iter().skip(skip).take(limit).collect(),
        ))
    }
}
