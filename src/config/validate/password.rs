//! `Password`: when a password is asked for, and the policy (the tenant's, or a local one).

use plist::{Dictionary, Value};

use super::level::Level;
use super::Validator;
use crate::config::{PasswordConfig, PolicySource};
use crate::policy::PasswordPolicy;

impl Validator<'_> {
    pub(super) fn password(&mut self, top: &mut Level<'_>) -> Option<PasswordConfig> {
        let dict = self.dict(top, "Password");
        let failed = top.has("Password") && dict.is_none();
        let mut l = Level::new("Password", dict);
        let require = self.boolean(&mut l, "RequireForActiveUsers");
        let path = l.path("Policy");
        let policy = match l.get("Policy") {
            None => Some(PolicySource::Tenant),
            Some(Value::String(s)) if s == "Tenant" => Some(PolicySource::Tenant),
            Some(Value::Dictionary(d)) => self.local_policy(d),
            Some(Value::String(s)) => {
                self.err(
                    &path,
                    format!("`{s}` is not Tenant"),
                    "write Tenant, or a dictionary with MinLength and the Require... keys",
                );
                None
            }
            Some(other) => {
                let other = other.clone();
                self.wrong_type(&path, "the string Tenant or a dictionary", &other);
                None
            }
        };
        self.close(&l);
        if failed {
            return None;
        }
        Some(PasswordConfig {
            require_for_active_users: require.unwrap_or(false),
            policy: policy?,
        })
    }

    pub(super) fn local_policy(&mut self, d: &Dictionary) -> Option<PolicySource> {
        let mut l = Level::new("Password.Policy", Some(d));
        let min = self.integer(&mut l, "MinLength", 1, 256, "characters");
        let upper = self.boolean(&mut l, "RequireUppercase");
        let lower = self.boolean(&mut l, "RequireLowercase");
        let number = self.boolean(&mut l, "RequireNumber");
        let symbol = self.boolean(&mut l, "RequireSymbol");
        self.close(&l);
        let defaults = PasswordPolicy::default();
        Some(PolicySource::Local(PasswordPolicy {
            min_length: min
                .ok()?
                .map_or(Some(defaults.min_length), |n| u32::try_from(n).ok())?,
            require_uppercase: upper.unwrap_or(defaults.require_uppercase),
            require_lowercase: lower.unwrap_or(defaults.require_lowercase),
            require_number: number.unwrap_or(defaults.require_number),
            require_symbol: symbol.unwrap_or(defaults.require_symbol),
            ..defaults
        }))
    }
}
