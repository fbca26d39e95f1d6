//! Whether a password set took effect, told from the user read back after it.
//!
//! A `PUT /api/systemusers/{id}` whose answer was lost (`JcError::Uncertain`) or that a restart
//! interrupted may or may not have changed the password. Sending it again blindly could be
//! refused by the password history rules (SPEC §5), so the engine reads the user back and
//! compares with the facts it persisted before the `PUT`: JumpCloud moves `password_date` on
//! every set, and a pending user becomes activated by its first password.

use crate::jumpcloud::DirectoryUser;

/// True when `now` (the user read back) shows the set took effect: its `password_date` or its
/// `activated` differ from what was read before the `PUT`.
pub fn password_took_effect(
    before_password_date: Option<&str>,
    before_activated: bool,
    now: &DirectoryUser,
) -> bool {
    now.password_date.as_deref() != before_password_date || now.activated != before_activated
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(password_date: Option<&str>, activated: bool) -> DirectoryUser {
        serde_json::from_value(serde_json::json!({
            "_id": "5d0000000000000000000abc",
            "activated": activated,
            "password_date": password_date,
        }))
        .expect("a valid systemuserreturn")
    }

    #[test]
    fn a_moved_password_date_or_a_new_activation_is_proof() {
        let date = Some("2024-01-01T00:00:00.000Z");
        assert!(password_took_effect(
            date,
            true,
            &user(Some("2024-06-01T00:00:00.000Z"), true)
        ));
        assert!(password_took_effect(None, false, &user(None, true)));
        assert!(password_took_effect(None, true, &user(date, true)));
    }

    #[test]
    fn an_unchanged_user_is_no_proof() {
        let date = Some("2024-01-01T00:00:00.000Z");
        assert!(!password_took_effect(date, true, &user(date, true)));
        assert!(!password_took_effect(None, false, &user(None, false)));
    }
}
