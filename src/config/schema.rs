//! placeholder
pub fn json_schema() -> serde_json::Value { serde_json::Value::Null }
pub fn accepted_keys() -> Vec<String> { Vec::new() }
