//! Contract checks against JumpCloud's published OpenAPI (Swagger 2.0) specs, `v1.json` and
//! `v2.json` (copies in `tests/fixtures/openapi/`, provenance in `SOURCE.md` there).
//!
//! [`Contract::check_request`] finds the operation a request addresses (basePath `/api/` for v1,
//! `/api/v2/` for v2, path templates such as `/systemusers/{id}`) and checks its query
//! parameters (declared, required, types, enums) and JSON body against the operation's body
//! schema (`$ref`, `allOf`, required properties, types, enums, `maxLength`, `minimum`;
//! `additionalProperties` only where the spec sets it). [`Contract::check_response`] checks a
//! JSON answer against the operation's schema for that status. Both return every violation at
//! once. Used by the client's contract tests and usable by the simulator's.
//!
//! Known, deliberate deviations from the published schema (REFERENCE.md) are whitelisted
//! precisely in [`Contract::check_request`]; everything else is reported.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

/// The two specs, parsed.
#[derive(Debug, Clone)]
pub struct Contract {
    v1: Value,
    v2: Value,
}

/// The operation a request was matched to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationRef {
    /// `v1` or `v2`.
    pub spec: &'static str,
    /// Path template inside the spec, e.g. `/systemusers/{id}`.
    pub template: String,
    /// Lower-case method, e.g. `put`.
    pub method: String,
    /// `operationId`, e.g. `User_Set`.
    pub operation_id: String,
}

impl Contract {
    /// Parses the two spec documents.
    pub fn from_json(v1: &str, v2: &str) -> Result<Self, serde_json::Error> {
        Ok(Self {
            v1: serde_json::from_str(v1)?,
            v2: serde_json::from_str(v2)?,
        })
    }

    /// Reads `v1.json` and `v2.json` from a directory.
    pub fn load(dir: &Path) -> std::io::Result<Self> {
        let v1 = std::fs::read_to_string(dir.join("v1.json"))?;
        let v2 = std::fs::read_to_string(dir.join("v2.json"))?;
        Self::from_json(&v1, &v2)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    /// The spec document, the path inside it, and the query of a request target.
    /// The operation of the spec that `method path_and_query` names, with its spec document
    /// and the query string; an error line when there is none.
    #[allow(clippy::type_complexity)] // a private helper's tuple, read right where it is used
    fn locate<'a>(
        &'a self,
        method: &str,
        path_and_query: &'a str,
    ) -> Result<(OperationRef, &'a Value, &'a Value, &'a str), Vec<String>> {
        let method_lc = method.to_ascii_lowercase();
        let Some((spec, doc, path, query)) = self.split(path_and_query) else {
            return Err(vec![format!(
                "{path_and_query}: not under /api/ or /api/v2/"
            )]);
        };
        let Some((template, op)) = find_operation(doc, &method_lc, path) else {
            return Err(vec![format!(
                "{method} {path_and_query}: no such operation in {spec}"
            )]);
        };
        let op_ref = OperationRef {
            spec,
            template,
            method: method_lc,
            operation_id: op
                .get("operationId")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        };
        Ok((op_ref, doc, op, query))
    }

    fn split<'a>(
        &'a self,
        path_and_query: &'a str,
    ) -> Option<(&'static str, &'a Value, &'a str, &'a str)> {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        // basePath: v1 "/api/", v2 "/api/v2/" (both specs' `basePath`).
        if let Some(rest) = path.strip_prefix("/api/v2") {
            Some(("v2", &self.v2, rest, query))
        } else {
            path.strip_prefix("/api")
                .map(|rest| ("v1", &self.v1, rest, query))
        }
    }

    /// Finds the operation for a method and request target.
    pub fn operation(&self, method: &str, path_and_query: &str) -> Option<OperationRef> {
        let (spec, doc, path, _) = self.split(path_and_query)?;
        let (template, op) = find_operation(doc, &method.to_ascii_lowercase(), path)?;
        Some(OperationRef {
            spec,
            template,
            method: method.to_ascii_lowercase(),
            operation_id: op
                .get("operationId")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        })
    }

    /// Checks a request: method and path, query parameters, JSON body.
    pub fn check_request(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<OperationRef, Vec<String>> {
        let (op_ref, doc, _op, query) = self.locate(method, path_and_query)?;
        let (template, method_lc) = (op_ref.template.clone(), op_ref.method.clone());
        let mut errors = Vec::new();
        let params = parameters(doc, &template, &method_lc);

        // Query parameters: every one sent is declared and well-typed; required ones are sent.
        let sent: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let declared: BTreeSet<&str> = params
            .iter()
            .filter(|p| p.get("in").and_then(Value::as_str) == Some("query"))
            .filter_map(|p| p.get("name").and_then(Value::as_str))
            .collect();
        for (name, value) in &sent {
            if !declared.contains(name.as_str()) {
                errors.push(format!("query parameter {name:?} is not declared"));
                continue;
            }
            if let Some(p) = params.iter().find(|p| {
                p.get("in").and_then(Value::as_str) == Some("query")
                    && p.get("name").and_then(Value::as_str) == Some(name)
            }) {
                check_scalar_param(p, name, value, &mut errors);
            }
        }
        for p in &params {
            let required = p.get("required").and_then(Value::as_bool) == Some(true);
            let name = p.get("name").and_then(Value::as_str).unwrap_or("");
            if required
                && p.get("in").and_then(Value::as_str) == Some("query")
                && !sent.iter().any(|(k, _)| k == name)
            {
                errors.push(format!("required query parameter {name:?} is missing"));
            }
        }

        // Body.
        let body_param = params
            .iter()
            .find(|p| p.get("in").and_then(Value::as_str) == Some("body"));
        match (body_param, body) {
            (Some(p), Some(body)) => {
                let body = whitelist_request(&op_ref, body);
                if let Some(schema) = p.get("schema") {
                    validate(doc, schema, &body, "body", &mut errors);
                }
            }
            (Some(p), None) => {
                if p.get("required").and_then(Value::as_bool) == Some(true) {
                    errors.push("the body is required".to_owned());
                }
            }
            (None, Some(_)) => errors.push("the operation takes no body".to_owned()),
            (None, None) => {}
        }
        if errors.is_empty() {
            Ok(op_ref)
        } else {
            Err(errors
                .into_iter()
                .map(|e| format!("{method} {path_and_query} ({}): {e}", op_ref.operation_id))
                .collect())
        }
    }

    /// Checks a response: a 2xx status must be documented for the operation; a JSON body is
    /// checked against the schema documented for its status (undocumented error statuses are
    /// not checked).
    pub fn check_response(
        &self,
        method: &str,
        path_and_query: &str,
        status: u16,
        body: Option<&Value>,
    ) -> Result<OperationRef, Vec<String>> {
        let (op_ref, doc, op, _) = self.locate(method, path_and_query)?;
        let responses = op.get("responses");
        let documented = responses
            .and_then(|r| r.get(status.to_string()))
            .or_else(|| responses.and_then(|r| r.get("default")));
        let mut errors = Vec::new();
        match documented {
            None if (200..300).contains(&status) => {
                errors.push(format!("status {status} is not documented"));
            }
            None => {}
            Some(resp) => {
                let resp = resolve(doc, resp);
                match (resp.get("schema"), body) {
                    (Some(schema), Some(body)) => validate(doc, schema, body, "body", &mut errors),
                    (Some(_), None) if status != 204 => {
                        errors.push("a body is documented but none was sent".to_owned());
                    }
                    _ => {}
                }
            }
        }
        if errors.is_empty() {
            Ok(op_ref)
        } else {
            Err(errors
                .into_iter()
                .map(|e| {
                    format!(
                        "{method} {path_and_query} -> {status} ({}): {e}",
                        op_ref.operation_id
                    )
                })
                .collect())
        }
    }
}

/// Deliberate deviations from the published schemas, each precise and cited.
fn whitelist_request(op: &OperationRef, body: &Value) -> Value {
    let mut body = body.clone();
    // `POST /search/systemusers`: the schema types `filter` as an object (`{"and": [...]}` /
    // `{"or": [...]}`), but the operation's own "exact search" sample sends a list,
    // `"filter" : [{"department" : "IT"}]`, and SPEC §5 uses that form. A list of objects is
    // checked as the equivalent `{"and": [...]}`. The `$regex` values inside are not in the
    // spec either (REFERENCE.md) but the filter's properties are unconstrained, so they need
    // no exception; nor does `systemUsername` in `fields`, which is a plain string.
    if op.spec == "v1" && op.template == "/search/systemusers" && op.method == "post" {
        if let Some(filter) = body.get_mut("filter") {
            if filter
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_object))
            {
                let list = filter.take();
                *filter = serde_json::json!({ "and": list });
            }
        }
    }
    // `POST /systemusers/{id}/state/activate` with `{"email": false}`: the schema types `email`
    // as a string, but the operation's own text documents the boolean ("Sending `email=false`
    // will suppress sending the email", `{ "email": false }`). Exactly `false` is accepted.
    if op.spec == "v1" && op.template == "/systemusers/{id}/state/activate" && op.method == "post" {
        if let Some(obj) = body.as_object_mut() {
            if obj.get("email") == Some(&Value::Bool(false)) {
                obj.remove("email");
            }
        }
    }
    // `PUT /systems/{id}` with `description`: `systemput` does not list it (it is a `JcSystem`
    // field) but does not forbid other properties, so it passes without an exception.
    body
}

/// The path template and operation object for a method and a path inside one spec. Literal
/// segments win over templates (`/systemusers/{id}/state/activate` over `/systemusers/{id}/...`).
fn find_operation<'a>(doc: &'a Value, method: &str, path: &str) -> Option<(String, &'a Value)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let paths = doc.get("paths")?.as_object()?;
    let mut best: Option<(usize, &String, &Value)> = None;
    for (template, item) in paths {
        let Some(op) = item.get(method) else { continue };
        let t_segments: Vec<&str> = template.trim_matches('/').split('/').collect();
        if t_segments.len() != segments.len() {
            continue;
        }
        let mut holes = 0;
        let matches = t_segments.iter().zip(&segments).all(|(t, s)| {
            if t.starts_with('{') && t.ends_with('}') {
                holes += 1;
                !s.is_empty()
            } else {
                t == s
            }
        });
        if matches && best.is_none_or(|(h, _, _)| holes < h) {
            best = Some((holes, template, op));
        }
    }
    best.map(|(_, t, op)| (t.clone(), op))
}

/// Path-item and operation parameters, `$ref`s resolved.
fn parameters<'a>(doc: &'a Value, template: &str, method: &str) -> Vec<&'a Value> {
    let Some(item) = doc.get("paths").and_then(|p| p.get(template)) else {
        return Vec::new();
    };
    let of = |v: Option<&'a Value>| -> Vec<&'a Value> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().map(|p| resolve(doc, p)).collect())
            .unwrap_or_default()
    };
    let mut all = of(item.get("parameters"));
    all.extend(of(item.get(method).and_then(|op| op.get("parameters"))));
    all
}

/// Follows a local `$ref` (`#/definitions/X`, `#/parameters/X`, `#/responses/X`).
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    let mut current = v;
    for _ in 0..32 {
        let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
            return current;
        };
        let Some(pointer) = reference.strip_prefix('#') else {
            return current;
        };
        // JSON pointer tokens escape `~` and `/`; parameter names such as
        // `trait:fields:fields` contain neither.
        match doc.pointer(pointer) {
            Some(next) => current = next,
            None => return current,
        }
    }
    current
}

fn check_scalar_param(param: &Value, name: &str, value: &str, errors: &mut Vec<String>) {
    let ty = param
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string");
    let ok = match ty {
        "integer" => value.parse::<i64>().is_ok(),
        "number" => value.parse::<f64>().is_ok(),
        "boolean" => matches!(value, "true" | "false"),
        _ => true,
    };
    if !ok {
        errors.push(format!("query parameter {name:?}={value:?} is not a {ty}"));
    }
    if let (Some(min), Ok(n)) = (
        param.get("minimum").and_then(Value::as_f64),
        value.parse::<f64>(),
    ) {
        if n < min {
            errors.push(format!("query parameter {name:?}={value} is below {min}"));
        }
    }
    if let Some(options) = param.get("enum").and_then(Value::as_array) {
        if !options.iter().any(|o| o.as_str() == Some(value)) {
            errors.push(format!(
                "query parameter {name:?}={value:?} is not one of {options:?}"
            ));
        }
    }
}

/// Validates `value` against a Swagger 2.0 schema.
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        for part in parts {
            validate(doc, part, value, at, errors);
        }
    }
    if value.is_null() {
        if schema.get("x-nullable").and_then(Value::as_bool) != Some(true)
            && schema.get("type").is_some()
        {
            errors.push(format!("{at} is null"));
        }
        return;
    }
    if let Some(ty) = schema.get("type").and_then(Value::as_str) {
        let ok = match ty {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            _ => true,
        };
        if !ok {
            errors.push(format!("{at} should be {ty}, is {}", kind(value)));
            return;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            errors.push(format!(
                "{at} = {value} is not one of {}",
                Value::Array(options.clone())
            ));
        }
    }
    if let (Some(max), Some(s)) = (
        schema.get("maxLength").and_then(Value::as_u64),
        value.as_str(),
    ) {
        if s.chars().count() as u64 > max {
            errors.push(format!("{at} is longer than {max}"));
        }
    }
    if let (Some(min), Some(n)) = (
        schema.get("minimum").and_then(Value::as_f64),
        value.as_f64(),
    ) {
        if n < min {
            errors.push(format!("{at} = {n} is below {min}"));
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !object.contains_key(name) {
                    errors.push(format!("{at}.{name} is required"));
                }
            }
        }
        for (name, v) in object {
            let here = format!("{at}.{name}");
            match properties.and_then(|p| p.get(name)) {
                Some(prop) => validate(doc, prop, v, &here, errors),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        errors.push(format!("{here} is not allowed"));
                    }
                    Some(extra @ Value::Object(_)) => validate(doc, extra, v, &here, errors),
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, v) in array.iter().enumerate() {
            validate(doc, items, v, &format!("{at}[{i}]"), errors);
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contract() -> Contract {
        Contract::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openapi"))
            .unwrap()
    }

    #[test]
    fn finds_operations_in_both_specs() {
        let c = contract();
        let op = c
            .operation("POST", "/api/systemusers/abc/state/activate")
            .unwrap();
        assert_eq!(
            (op.spec, op.template.as_str()),
            ("v1", "/systemusers/{id}/state/activate")
        );
        let op = c
            .operation("GET", "/api/v2/systems/abc/memberof?limit=100")
            .unwrap();
        assert_eq!(
            (op.spec, op.template.as_str()),
            ("v2", "/systems/{system_id}/memberof")
        );
        assert!(c.operation("GET", "/api/nothing/here").is_none());
        assert!(c.operation("PATCH", "/api/systemusers/abc").is_none());
    }

    #[test]
    fn catches_wrong_bodies_and_queries() {
        let c = contract();
        // Missing required `id`, wrong enum for `op`.
        let errors = c
            .check_request(
                "POST",
                "/api/v2/systemgroups/g/members",
                Some(&json!({"op": "join", "type": "system"})),
            )
            .unwrap_err();
        assert!(
            errors.iter().any(|e| e.contains("body.id is required")),
            "{errors:?}"
        );
        assert!(errors.iter().any(|e| e.contains("body.op")), "{errors:?}");
        // Missing required `targets`; undeclared parameter.
        let errors = c
            .check_request("GET", "/api/v2/systems/s/associations?bogus=1", None)
            .unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        // Wrong type.
        let errors = c
            .check_request("PUT", "/api/systemusers/u", Some(&json!({"password": 5})))
            .unwrap_err();
        assert!(
            errors[0].contains("body.password should be string"),
            "{errors:?}"
        );
        assert!(c
            .check_request("PUT", "/api/systemusers/u", Some(&json!({"password": "x"})))
            .is_ok());
    }

    #[test]
    fn list_filter_is_whitelisted_only_for_user_search() {
        let c = contract();
        let body =
            json!({"filter": [{"email": {"$regex": "(?i)^a$"}}], "fields": "_id", "limit": 2});
        assert!(c
            .check_request("POST", "/api/search/systemusers", Some(&body))
            .is_ok());
        let bad = json!({"filter": "email", "fields": "_id"});
        assert!(c
            .check_request("POST", "/api/search/systemusers", Some(&bad))
            .is_err());
    }

    #[test]
    fn activation_without_email_is_whitelisted_exactly() {
        let c = contract();
        let path = "/api/systemusers/u/state/activate";
        assert!(c
            .check_request("POST", path, Some(&json!({"email": false})))
            .is_ok());
        assert!(c
            .check_request("POST", path, Some(&json!({"email": "a@example.com"})))
            .is_ok());
        // `true` is documented too, but prestage never sends it: not whitelisted.
        assert!(c
            .check_request("POST", path, Some(&json!({"email": true})))
            .is_err());
    }

    #[test]
    fn checks_responses() {
        let c = contract();
        assert!(c
            .check_response("POST", "/api/v2/systemgroups/g/members", 204, None)
            .is_ok());
        assert!(c
            .check_response("POST", "/api/v2/systemgroups/g/members", 200, None)
            .is_err());
        let errors = c
            .check_response(
                "GET",
                "/api/v2/systems/s/memberof",
                200,
                Some(&json!([{"id": "g", "type": "system_group"}])),
            )
            .unwrap_err();
        assert!(errors[0].contains("paths is required"), "{errors:?}");
        assert!(c
            .check_response(
                "GET",
                "/api/systems/s",
                401,
                Some(&json!({"message": "Unauthorized"}))
            )
            .is_ok());
    }
}
