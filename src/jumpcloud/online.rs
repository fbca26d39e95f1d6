//! `prestage config check --online`: read-only checks of a configuration against the tenant,
//! one line per check (SPEC §2). Nothing is written: only GET requests are sent.

use std::fmt;

use secrecy::SecretString;

use super::client::{Client, ClientOptions, RetryPolicy};
use super::Directory;
use crate::config::{Config, ObjectId, PolicySource};
use crate::policy::{PasswordPolicy, Rule};

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    /// What was checked, e.g. `API key` or `EnrollmentGroupID`.
    pub name: String,
    pub ok: bool,
    /// What was found, or what is wrong and how to fix it.
    pub detail: String,
}

impl CheckLine {
    fn ok(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ok: true,
            detail: detail.into(),
        }
    }

    fn fail(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ok: false,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for CheckLine {
    /// `ok    API key: accepted by console.jumpcloud.com` / `FAIL  OrgID: ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.ok { "ok  " } else { "FAIL" };
        write!(f, "{mark}  {}: {}", self.name, self.detail)
    }
}

/// Runs every online check with the configuration's `APIBaseURL` and `OrgID`.
pub async fn online_check(config: &Config, api_key: &SecretString) -> Vec<CheckLine> {
    let mut options = ClientOptions::from_config(config);
    options.api_key = Some(api_key.clone());
    // An admin running a check waits a little, not minutes.
    options.retry = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    online_check_with(config, options).await
}

/// [`online_check`] with explicit client options (tests use fast retries).
pub async fn online_check_with(config: &Config, options: ClientOptions) -> Vec<CheckLine> {
    let mut lines = vec![connect_key_line(&config.connect_key)];
    let client = match Client::new(options) {
        Ok(client) => client,
        Err(err) => {
            lines.push(CheckLine::fail("API key", err.to_string()));
            return lines;
        }
    };

    // 1. The key: a harmless list read.
    let orgs = match client.organizations().await {
        Ok(orgs) => {
            lines.push(CheckLine::ok(
                "API key",
                format!(
                    "accepted by {} ({} organisation(s) visible)",
                    client.host(),
                    orgs.len()
                ),
            ));
            orgs
        }
        Err(err) => {
            lines.push(CheckLine::fail("API key", err.to_string()));
            lines.push(CheckLine::fail(
                "remaining checks",
                "skipped: they need a working API key",
            ));
            return lines;
        }
    };

    // 2. The organisation: the configured one, or the only one the key sees.
    let org = match (&config.org_id, orgs.as_slice()) {
        (Some(org), _) => match client.org(org).await {
            Ok(facts) => {
                lines.push(CheckLine::ok(
                    "OrgID",
                    format!("{} ({})", facts.name, facts.id),
                ));
                Some((org.clone(), facts.password_policy))
            }
            Err(err) => {
                lines.push(CheckLine::fail("OrgID", err.to_string()));
                None
            }
        },
        (None, [(id, name)]) => {
            if let Some(org) = ObjectId::parse(id) {
                let policy = client.org(&org).await.map(|f| f.password_policy);
                lines.push(CheckLine::ok(
                    "OrgID",
                    format!("not set; the key's only organisation is {name} ({id})"),
                ));
                match policy {
                    Ok(p) => Some((org, p)),
                    Err(err) => {
                        lines.push(CheckLine::fail("organisation", err.to_string()));
                        None
                    }
                }
            } else {
                lines.push(CheckLine::fail(
                    "OrgID",
                    format!("JumpCloud returned an organisation id {id:?} of an unexpected form"),
                ));
                None
            }
        }
        (None, many) => {
            lines.push(CheckLine::fail(
                "OrgID",
                format!(
                    "not set, and the key sees {} organisations: set OrgID to the one Macs enroll into",
                    many.len()
                ),
            ));
            None
        }
    };
    if let Some((org, _)) = &org {
        client.set_org_id(org.as_str());
    }

    // 3. The groups.
    for (key, group) in [
        ("EnrollmentGroupID", &config.enrollment_group_id),
        ("PostEnrollmentGroupID", &config.post_enrollment_group_id),
    ] {
        let Some(group) = group else { continue };
        lines.push(match client.system_group(group, key).await {
            Ok(name) => CheckLine::ok(key, format!("system group \"{name}\" ({group})")),
            Err(err) => CheckLine::fail(key, err.to_string()),
        });
    }

    // 4. The password policy.
    lines.push(match (&config.password.policy, &org) {
        (PolicySource::Local(policy), _) => CheckLine::ok(
            "Password.Policy",
            format!(
                "set in the configuration, not read from the tenant: {}",
                describe(policy)
            ),
        ),
        (PolicySource::Tenant, Some((_, policy))) => CheckLine::ok(
            "Password.Policy",
            format!("read from the tenant: {}", describe(policy)),
        ),
        (PolicySource::Tenant, None) => CheckLine::fail(
            "Password.Policy",
            "Tenant: cannot be read without a readable organisation (see OrgID above)",
        ),
    });
    lines
}

/// The connect key can only be checked for its form: JumpCloud has no read-only call that
/// validates it before the agent installs. Configuration validation already refused a key of
/// neither form, so this line says which form it is.
fn connect_key_line(key: &crate::config::ConnectKey) -> CheckLine {
    CheckLine::ok(
        "ConnectKey",
        format!(
            "well-formed, {} (JumpCloud only checks it when the agent registers)",
            key.describe()
        ),
    )
}

fn describe(policy: &PasswordPolicy) -> String {
    let rules: Vec<String> = policy
        .rules()
        .into_iter()
        .map(|rule| match rule {
            Rule::MinLength(n) => format!("at least {n} characters"),
            Rule::Uppercase => "an upper-case letter".to_owned(),
            Rule::Lowercase => "a lower-case letter".to_owned(),
            Rule::Number => "a digit".to_owned(),
            Rule::Symbol => "a symbol".to_owned(),
            Rule::NoUsername => "not containing the username".to_owned(),
            Rule::NoSequences => {
                "no run of three repeated or consecutive letters or digits".to_owned()
            }
            Rule::NotCommon => "not a commonly used password (checked by JumpCloud)".to_owned(),
            Rule::History(n) => format!("not one of the last {n} (checked by JumpCloud)"),
            Rule::MinAge(n) => {
                format!("{n} day(s) since the last change (checked by JumpCloud)")
            }
        })
        .collect();
    if rules.is_empty() {
        "no rules".to_owned()
    } else {
        rules.join(", ")
    }
}

/// True when every line passed.
pub fn all_ok(lines: &[CheckLine]) -> bool {
    lines.iter().all(|l| l.ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_key_form() {
        let classic = crate::config::ConnectKey::parse(&"a".repeat(40)).unwrap();
        let line = connect_key_line(&classic);
        assert!(line.ok && line.detail.contains("40-character"), "{line:?}");
        let payload =
            br#"{"publicKickstartUrl":"https://kickstart.eu.jumpcloud.com:443","connectKey":"k"}"#;
        let tenant = crate::config::ConnectKey::parse(
            &crate::config::connect_key::encode_tenant_key(payload),
        )
        .unwrap();
        let line = connect_key_line(&tenant);
        assert!(line.ok && line.detail.contains("jcc_"), "{line:?}");
        assert!(
            line.detail.contains("kickstart.eu.jumpcloud.com"),
            "{line:?}"
        );
    }

    #[test]
    fn lines_read_well() {
        assert_eq!(
            CheckLine::ok("API key", "accepted").to_string(),
            "ok    API key: accepted"
        );
        assert_eq!(CheckLine::fail("OrgID", "x").to_string(), "FAIL  OrgID: x");
    }
}
