//! Checks responses against JumpCloud's published OpenAPI (Swagger 2.0) specs, v1.json and
//! v2.json: the path and method must be an operation of the spec, the status one of its
//! responses (or one of the spec's shared `trait:standardErrors:<code>` responses, which the
//! operations refer to in JumpCloud's docs), and the body must fit the response schema.
//!
//! The schema check is the subset of JSON Schema these specs use: `$ref` to
//! `#/definitions/...`, `type`, `properties`, `required`, `items`, `enum`, `allOf`,
//! `additionalProperties: false` and `x-nullable`.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Why the specs could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("cannot read the OpenAPI spec {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the OpenAPI spec {path} is not JSON: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Both published specs.
#[derive(Debug, Clone)]
pub struct Specs {
    v1: Value,
    v2: Value,
}

impl Specs {
    /// Reads `v1.json` and `v2.json` from `dir`.
    pub fn load(dir: &Path) -> Result<Specs, ContractError> {
        let read = |name: &str| -> Result<Value, ContractError> {
            let path = dir.join(name);
            let bytes = std::fs::read(&path).map_err(|source| ContractError::Read {
                path: path.clone(),
                source,
            })?;
            serde_json::from_slice(&bytes).map_err(|source| ContractError::Parse { path, source })
        };
        Ok(Specs {
            v1: read("v1.json")?,
            v2: read("v2.json")?,
        })
    }

    /// From already parsed specs.
    pub fn from_values(v1: Value, v2: Value) -> Specs {
        Specs { v1, v2 }
    }

    /// Checks one response. `path` is the full request path (`/api/v2/systems/x/memberof`);
    /// `body` is `None` for an empty body. Returns every problem found.
    pub fn check_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: Option<&Value>,
    ) -> Result<(), Vec<String>> {
        let (spec, rest) = if let Some(rest) = path.strip_prefix("/api/v2/") {
            (&self.v2, rest)
        } else if let Some(rest) = path.strip_prefix("/api/") {
            (&self.v1, rest)
        } else {
            return Err(vec![format!("{path} is outside both specs")]);
        };
        let Some(template) = find_template(spec, rest) else {
            return Err(vec![format!("no operation in the spec matches {path}")]);
        };
        let Some(op) = spec
            .pointer(&format!("/paths/{}", escape(&template)))
            .and_then(|p| p.get(method.to_ascii_lowercase()))
        else {
            return Err(vec![format!("{method} is not an operation of {template}")]);
        };
        let code = status.to_string();
        let response = op
            .pointer(&format!("/responses/{code}"))
            .or_else(|| op.pointer("/responses/default"))
            .or_else(|| {
                (status >= 400)
                    .then(|| spec.pointer(&format!("/responses/trait:standardErrors:{code}")))
                    .flatten()
            });
        let Some(response) = response else {
            return Err(vec![format!(
                "status {status} is not documented for {method} {template}"
            )]);
        };
        let response = resolve(spec, response);
        let mut errors = Vec::new();
        match (response.get("schema"), body) {
            (None, Some(b)) if status == 204 => {
                errors.push(format!("204 must have no body, got {b}"));
            }
            (None, _) => {}
            (Some(_), None) => errors.push(format!("status {status} needs a body")),
            (Some(schema), Some(body)) => check(spec, schema, body, "$", &mut errors),
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// JSON pointer escaping (RFC 6901).
fn escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// The spec path template (`/systems/{id}`) matching `rest` (`systems/abc`); literal
/// segments win over parameters.
fn find_template(spec: &Value, rest: &str) -> Option<String> {
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    spec.get("paths")?
        .as_object()?
        .keys()
        .filter_map(|t| {
            let tsegs: Vec<&str> = t.split('/').filter(|s| !s.is_empty()).collect();
            if tsegs.len() != segs.len() {
                return None;
            }
            let mut literal = 0;
            for (a, b) in tsegs.iter().zip(&segs) {
                if a.starts_with('{') && a.ends_with('}') {
                    continue;
                }
                if a != b {
                    return None;
                }
                literal += 1;
            }
            Some((literal, t.clone()))
        })
        .max_by_key(|(literal, _)| *literal)
        .map(|(_, t)| t)
}

/// Follows `$ref` chains to `#/definitions/...` or `#/responses/...`.
fn resolve<'a>(spec: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..32 {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => match r.strip_prefix('#').and_then(|p| spec.pointer(p)) {
                Some(target) => v = target,
                None => return v,
            },
            None => return v,
        }
    }
    v
}

fn type_ok(ty: &str, v: &Value) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => true,
    }
}

fn check(spec: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    if v.is_null()
        && schema
            .get("x-nullable")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    {
        return;
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            check(spec, s, v, at, errors);
        }
    }
    if let Some(ty) = schema.get("type").and_then(Value::as_str) {
        if !type_ok(ty, v) {
            errors.push(format!("{at}: expected {ty}, got {v}"));
            return;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(v) {
            errors.push(format!(
                "{at}: {v} is not one of {}",
                Value::Array(options.clone())
            ));
        }
    }
    if let Value::Object(map) = v {
        let props = schema.get("properties").and_then(Value::as_object);
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for r in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(r) {
                    errors.push(format!("{at}: required property {r} is missing"));
                }
            }
        }
        for (k, val) in map {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check(spec, s, val, &format!("{at}.{k}"), errors),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        errors.push(format!("{at}: property {k} is not allowed"));
                    }
                    Some(extra @ Value::Object(_)) => {
                        check(spec, extra, val, &format!("{at}.{k}"), errors);
                    }
                    _ => {}
                },
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (v, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check(spec, item_schema, item, &format!("{at}[{i}]"), errors);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn specs() -> Specs {
        let v1 = json!({
            "paths": {
                "/systems/{id}": {"get": {"responses": {"200": {"schema": {"$ref": "#/definitions/S"}}}}},
                "/systems/special": {"get": {"responses": {"204": {"description": "OK"}}}},
            },
            "definitions": {"S": {"type": "object", "required": ["_id"], "properties": {
                "_id": {"type": "string"}, "state": {"enum": ["A", "B"], "type": "string"},
                "list": {"type": "array", "items": {"type": "integer"}}}}},
            "responses": {"trait:standardErrors:404": {"schema": {"$ref": "#/definitions/E"}}},
        });
        let mut v1 = v1;
        v1["definitions"]["E"] =
            json!({"type": "object", "properties": {"message": {"type": "string"}}});
        Specs::from_values(v1, json!({"paths": {}}))
    }

    #[test]
    fn accepts_conforming_and_names_problems() {
        let s = specs();
        assert!(s
            .check_response(
                "GET",
                "/api/systems/x",
                200,
                Some(&json!({"_id": "x", "state": "A", "list": [1]}))
            )
            .is_ok());
        let errs = s
            .check_response(
                "GET",
                "/api/systems/x",
                200,
                Some(&json!({"state": "C", "list": ["a"]})),
            )
            .unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(s
            .check_response("GET", "/api/systems/special", 204, None)
            .is_ok());
        assert!(s
            .check_response(
                "GET",
                "/api/systems/x",
                404,
                Some(&json!({"message": "no"}))
            )
            .is_ok());
        assert!(s
            .check_response("GET", "/api/systems/x", 409, None)
            .is_err());
        assert!(s
            .check_response("PUT", "/api/systems/x", 200, None)
            .is_err());
        assert!(s
            .check_response("GET", "/api/nothing/x/y", 200, None)
            .is_err());
    }
}
