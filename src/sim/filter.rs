//! Search filters of `POST /api/search/systemusers` (v1 `search` body).
//!
//! `filter` is documented as `{"and":[...]}` / `{"or":[...]}`, and the spec's own exact-search
//! example is a list `[{"department":"IT"}]` (all must match). A condition `{field: value}`
//! with a plain value matches exactly and case-sensitively (v2 filter docs: "Is case
//! sensitive"); `{field: {"$regex": "..."}}` matches a regular expression, which is what
//! JumpCloud's own tools use for case-insensitive matches (`(?i)`, TheJumpCloud/support PR
//! #399). `searchFilter` (`{searchTerm, fields}`) is a case-insensitive substring search.

use serde_json::Value;

/// Why a filter was refused (a 400 message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FilterError(pub String);

#[derive(Debug)]
pub(crate) enum Cond {
    Eq(String, Value),
    Regex(String, regex::Regex),
}

/// A parsed `filter`.
#[derive(Debug)]
pub(crate) enum Filter {
    All(Vec<Filter>),
    Any(Vec<Filter>),
    Cond(Cond),
}

impl Filter {
    /// Parses a filter; `reject_regex` turns every `$regex` into an error (fault knob).
    pub fn parse(v: &Value, reject_regex: bool) -> Result<Filter, FilterError> {
        match v {
            Value::Array(items) => items
                .iter()
                .map(|i| Self::parse(i, reject_regex))
                .collect::<Result<_, _>>()
                .map(Filter::All),
            Value::Object(map) => {
                let mut all = Vec::new();
                for (key, val) in map {
                    match key.as_str() {
                        "and" | "$and" | "or" | "$or" => {
                            let Value::Array(items) = val else {
                                return Err(FilterError(format!("{key} must be a list")));
                            };
                            let parts = items
                                .iter()
                                .map(|i| Self::parse(i, reject_regex))
                                .collect::<Result<_, _>>()?;
                            all.push(if key.ends_with("and") {
                                Filter::All(parts)
                            } else {
                                Filter::Any(parts)
                            });
                        }
                        field => all.push(Filter::Cond(cond(field, val, reject_regex)?)),
                    }
                }
                Ok(Filter::All(all))
            }
            _ => Err(FilterError("filter must be an object or a list".into())),
        }
    }

    /// Whether a user object matches.
    pub fn matches(&self, user: &Value) -> bool {
        match self {
            Filter::All(parts) => parts.iter().all(|p| p.matches(user)),
            Filter::Any(parts) => parts.iter().any(|p| p.matches(user)),
            Filter::Cond(Cond::Eq(field, want)) => user.get(field) == Some(want),
            Filter::Cond(Cond::Regex(field, re)) => user
                .get(field)
                .and_then(Value::as_str)
                .is_some_and(|s| re.is_match(s)),
        }
    }
}

fn cond(field: &str, val: &Value, reject_regex: bool) -> Result<Cond, FilterError> {
    match val {
        Value::Object(ops) => {
            // MongoDB's form: `{"$regex": pattern}` with optional `"$options": "imsx"`.
            let pattern = ops.get("$regex").and_then(Value::as_str);
            let options = match ops.get("$options") {
                None => Some(""),
                Some(v) => v.as_str().filter(|o| o.chars().all(|c| "imsx".contains(c))),
            };
            let known = ops.keys().all(|k| k == "$regex" || k == "$options");
            let (Some(pattern), Some(options), true) = (pattern, options, known) else {
                return Err(FilterError(format!(
                    "invalid filter on {field}: only plain values and {{\"$regex\": string, \"$options\": \"imsx\"}} are supported"
                )));
            };
            if reject_regex {
                return Err(FilterError(format!(
                    "invalid filter on {field}: $regex is not supported"
                )));
            }
            let pattern = if options.is_empty() {
                pattern.to_owned()
            } else {
                format!("(?{options}){pattern}")
            };
            regex::Regex::new(&pattern)
                .map(|re| Cond::Regex(field.into(), re))
                .map_err(|e| FilterError(format!("invalid $regex on {field}: {e}")))
        }
        Value::Array(_) => Err(FilterError(format!(
            "invalid filter on {field}: a list is not a value"
        ))),
        plain => Ok(Cond::Eq(field.into(), plain.clone())),
    }
}

/// A parsed `searchFilter`.
#[derive(Debug)]
pub(crate) struct SearchFilter {
    term: String,
    fields: Vec<String>,
}

impl SearchFilter {
    pub fn parse(v: &Value) -> Result<SearchFilter, FilterError> {
        let term = v
            .get("searchTerm")
            .and_then(Value::as_str)
            .ok_or_else(|| FilterError("searchFilter.searchTerm must be a string".into()))?;
        let fields = match v.get("fields") {
            None => vec!["email".into(), "username".into()],
            Some(Value::Array(f)) => f
                .iter()
                .map(|x| x.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| FilterError("searchFilter.fields must be strings".into()))?,
            Some(_) => return Err(FilterError("searchFilter.fields must be a list".into())),
        };
        Ok(SearchFilter {
            term: term.to_lowercase(),
            fields,
        })
    }

    pub fn matches(&self, user: &Value) -> bool {
        self.fields.iter().any(|f| {
            user.get(f)
                .and_then(Value::as_str)
                .is_some_and(|s| s.to_lowercase().contains(&self.term))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({"email": "Ada.Lovelace+x@Example.com", "username": "ada", "department": "IT"})
    }

    #[test]
    fn plain_values_are_case_sensitive() {
        let f = Filter::parse(&json!([{"email": "ada.lovelace+x@example.com"}]), false).unwrap();
        assert!(!f.matches(&user()));
        let f = Filter::parse(&json!([{"email": "Ada.Lovelace+x@Example.com"}]), false).unwrap();
        assert!(f.matches(&user()));
    }

    #[test]
    fn regex_and_or() {
        let f = Filter::parse(
            &json!({"or": [{"username": "nobody"}, {"email": {"$regex": "(?i)^ada\\.lovelace\\+x@example\\.com$"}}]}),
            false,
        )
        .unwrap();
        assert!(f.matches(&user()));
        // An unescaped `+` is a quantifier, so the unescaped input does not match.
        let f = Filter::parse(
            &json!([{"email": {"$regex": "(?i)^ada.lovelace+x@example.com$"}}]),
            false,
        )
        .unwrap();
        assert!(!f.matches(&user()));
    }

    proptest::proptest! {
        // No regression files: they would land outside this module's folder.
        #![proptest_config(proptest::prelude::ProptestConfig {
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]
        /// Whatever printable text the data holds (every regex metacharacter included), the escaped
        /// case-insensitive regex of SPEC §3 finds it, in any case, and a plain filter only
        /// in the exact case.
        #[test]
        fn escaped_regex_finds_any_value(s in "[ -~äöüéÅ]{1,24}") {
            let user = json!({"email": s});
            let re = format!("(?i)^{}$", regex::escape(&s.to_uppercase()));
            let f = Filter::parse(&json!([{"email": {"$regex": re}}]), false).unwrap();
            proptest::prop_assert!(f.matches(&user));
            let plain = Filter::parse(&json!([{"email": s.clone()}]), false).unwrap();
            proptest::prop_assert!(plain.matches(&user));
            if s.to_uppercase() != s {
                let upper = Filter::parse(&json!([{"email": s.to_uppercase()}]), false).unwrap();
                proptest::prop_assert!(!upper.matches(&user));
            }
        }
    }

    #[test]
    fn regex_options_like_mongodb() {
        let f = Filter::parse(
            &json!([{"username": {"$regex": "^ADA$", "$options": "i"}}]),
            false,
        )
        .unwrap();
        assert!(f.matches(&user()));
        assert!(Filter::parse(
            &json!([{"username": {"$regex": "a", "$options": "z"}}]),
            false
        )
        .is_err());
    }

    #[test]
    fn bad_filters_are_refused() {
        assert!(Filter::parse(&json!([{"email": {"$regex": "("}}]), false).is_err());
        assert!(Filter::parse(&json!([{"email": {"$in": ["a"]}}]), false).is_err());
        assert!(Filter::parse(&json!([{"email": {"$regex": "a"}}]), true).is_err());
        assert!(Filter::parse(&json!("x"), false).is_err());
    }
}
