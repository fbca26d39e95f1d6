//! The tenant's v2 graph routes: a system's groups and bound users, binds and group membership
//! (v2 `GraphConnection`, `GraphObjectWithPaths`, `SystemGraphManagementReq`,
//! `GraphOperation-SystemGroupMember`), with "already done" answered as
//! [`super::SimOptions::duplicate_status`] says.

use serde_json::{json, Value};

use super::state::{Page, Reply, State};

impl State {
    /// An add that already happened ([`super::SimOptions::duplicate_status`]).
    fn duplicate(&self) -> Reply {
        if self.duplicate_status == 409 {
            Reply::v2(409, "Conflict", "Already Exists")
        } else {
            // The body JumpCloud's script saw (TheJumpCloud/support
            // `usertosystem_serialNumber.ps1`).
            Reply::v1(self.duplicate_status, "Already Exists").off_record()
        }
    }

    /// `GET /api/v2/systems/{id}/memberof` (v2 `GraphObjectWithPaths[]`), one page of it.
    pub fn memberof(&self, id: &str, page: &Page) -> Reply {
        if self.system_rec(id).is_none() {
            return Reply::v2(404, "Not Found", "System not found");
        }
        let list: Vec<Value> = self
            .groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == id))
            .map(|g| {
                json!({
                    "id": g.id,
                    "type": "system_group",
                    "paths": [[{ "to": { "id": g.id, "type": "system_group" } }]],
                    "compiledAttributes": {},
                })
            })
            .collect();
        page.reply(list)
    }

    /// `GET /api/v2/systems/{id}/associations?targets=...` (v2 `GraphConnection[]`), one page.
    pub fn associations(&self, id: &str, targets: Option<&str>, page: &Page) -> Reply {
        let Some(targets) = targets else {
            return Reply::v2(400, "Bad Request", "targets is a required query parameter");
        };
        if self.system_rec(id).is_none() {
            return Reply::v2(404, "Not Found", "System not found");
        }
        if targets != "user" {
            return Reply::ok(json!([]));
        }
        let list: Vec<Value> = self
            .bindings(id)
            .into_iter()
            .map(|(user, sudo)| {
                let attrs = json!({ "sudo": { "enabled": sudo, "withoutPassword": false } });
                json!({
                    "to": { "id": user, "type": "user", "attributes": attrs },
                    "attributes": attrs,
                })
            })
            .collect();
        page.reply(list)
    }

    /// `POST /api/v2/systems/{id}/associations` (v2 `SystemGraphManagementReq`): 204; 409 on
    /// adding an existing bind (or `duplicate_status`), 404 on removing a missing one.
    pub fn post_association(&mut self, id: &str, body: &Value) -> Reply {
        let (op, kind, target) = match graph_op(body) {
            Ok(t) => t,
            Err(reply) => return reply,
        };
        if kind != "user" {
            return Reply::v2(
                400,
                "Bad Request",
                "only type user is supported by this tenant",
            );
        }
        if self.system_rec(id).is_none() {
            return Reply::v2(404, "Not Found", "System not found");
        }
        if self.user_rec(&target).is_none() {
            return Reply::v2(404, "Not Found", "User not found");
        }
        let sudo = body
            .pointer("/attributes/sudo/enabled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let bound = self.bindings(id).iter().any(|(u, _)| *u == target);
        match (op.as_str(), bound) {
            ("add", true) => self.duplicate(),
            ("add", false) | ("update", true) => {
                self.bind(id, &target, sudo);
                Reply::empty(204)
            }
            ("remove", true) => {
                if let Some(list) = self.binds.get_mut(id) {
                    list.retain(|(u, _)| *u != target);
                }
                Reply::empty(204)
            }
            _ => Reply::v2(404, "Not Found", "Association not found"),
        }
    }

    /// `POST /api/v2/systemgroups/{gid}/members` (v2 `GraphOperation-SystemGroupMember`):
    /// 204; 409 (or `duplicate_status`) when already a member, 404 when removing a non-member.
    pub fn post_member(&mut self, gid: &str, body: &Value) -> Reply {
        let (op, kind, target) = match graph_op(body) {
            Ok(t) => t,
            Err(reply) => return reply,
        };
        if kind != "system" {
            return Reply::v2(400, "Bad Request", "type must be system");
        }
        let Some(gidx) = self.groups.iter().position(|g| g.id == gid) else {
            return Reply::v2(404, "Not Found", "System group not found");
        };
        if self.system_rec(&target).is_none() {
            return Reply::v2(404, "Not Found", "System not found");
        }
        if op == "add" && self.groups[gidx].members.contains(&target) {
            return self.duplicate();
        }
        let group = &mut self.groups[gidx];
        let member = group.members.contains(&target);
        match (op.as_str(), member) {
            ("add", false) => {
                group.members.push(target);
                Reply::empty(204)
            }
            ("remove", true) => {
                group.members.retain(|m| *m != target);
                Reply::empty(204)
            }
            ("remove", false) => Reply::v2(404, "Not Found", "Member not found"),
            _ => Reply::v2(400, "Bad Request", "op must be add or remove"),
        }
    }
}

/// `{op, type, id}` of a v2 graph operation body.
pub(crate) fn graph_op(body: &Value) -> Result<(String, String, String), Reply> {
    let get = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(op), Some(kind), Some(id)) = (get("op"), get("type"), get("id")) else {
        return Err(Reply::v2(
            400,
            "Bad Request",
            "body must have op, type and id strings",
        ));
    };
    if !matches!(op.as_str(), "add" | "remove" | "update") {
        return Err(Reply::v2(
            400,
            "Bad Request",
            "op must be add, remove or update",
        ));
    }
    Ok((op, kind, id))
}
