//! Packaging: the example configuration profile and its schema.

use super::{
    check_keys_in_schema, describe, extract_profile_settings, is_uuid, profile_settings, repo,
    PROFILE, SCHEMA,
};
use prestage::paths::mac;
use std::collections::BTreeSet;
use std::fs;
use std::process::Command;

#[test]
fn example_profile_is_a_system_custom_settings_profile_without_secrets() {
    let value = plist::Value::from_file(repo().join(PROFILE)).unwrap();
    let top = value.as_dictionary().unwrap();
    assert_eq!(top["PayloadType"].as_string(), Some("Configuration"));
    assert_eq!(top["PayloadScope"].as_string(), Some("System"));
    assert_eq!(top["PayloadVersion"].as_signed_integer(), Some(1));
    let top_id = top["PayloadIdentifier"].as_string().unwrap();
    assert!(top_id.starts_with(mac::LABEL));

    let mut uuids = vec![top["PayloadUUID"].as_string().unwrap()];
    for payload in top["PayloadContent"].as_array().unwrap() {
        let p = payload.as_dictionary().unwrap();
        assert_eq!(
            p["PayloadType"].as_string(),
            Some("com.apple.ManagedClient.preferences")
        );
        assert_eq!(p["PayloadVersion"].as_signed_integer(), Some(1));
        let id = p["PayloadIdentifier"].as_string().unwrap();
        assert!(id.starts_with(top_id) && id != top_id, "{id}");
        uuids.push(p["PayloadUUID"].as_string().unwrap());
    }
    assert!(uuids.iter().all(|u| is_uuid(u)), "{uuids:?}");
    let distinct: BTreeSet<_> = uuids.iter().collect();
    assert_eq!(distinct.len(), uuids.len(), "PayloadUUIDs are distinct");

    let settings = profile_settings(&repo().join(PROFILE));
    let settings = settings.as_dictionary().unwrap();
    for secret in ["APIKey", "EncryptedAPIKey", "DecryptUser"] {
        assert!(!settings.contains_key(secret), "{secret} in the profile");
    }
    assert!(settings["APIKeyKeychainService"].as_string().is_some());
}

#[test]
fn extracted_profile_settings_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let path = extract_profile_settings(tmp.path());
    let back = plist::Value::from_file(&path).unwrap();
    assert_eq!(back, profile_settings(&repo().join(PROFILE)));
}

/// Every key the example profile sets is described by the schema admins load into Jamf Pro.
#[test]
fn example_profile_keys_are_in_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(repo().join(SCHEMA)).unwrap()).unwrap();
    let settings = profile_settings(&repo().join(PROFILE));
    check_keys_in_schema(settings.as_dictionary().unwrap(), &schema, "");
}

#[test]
fn schema_file_matches_prestage_config_schema() {
    let out = Command::new(env!("CARGO_BIN_EXE_prestage"))
        .args(["config", "schema"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        describe("prestage config schema", &out)
    );
    let generated: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let committed: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(repo().join(SCHEMA)).unwrap()).unwrap();
    assert!(
        generated == committed,
        "{SCHEMA} is out of date; regenerate it with\n  \
         cargo run -- config schema > {SCHEMA}"
    );
}

#[test]
fn example_profile_settings_pass_config_check() {
    let tmp = tempfile::tempdir().unwrap();
    let path = extract_profile_settings(tmp.path());
    let out = Command::new(env!("CARGO_BIN_EXE_prestage"))
        .args(["config", "check"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        describe("prestage config check <example profile settings>", &out)
    );
}
