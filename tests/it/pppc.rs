//! Integration tests (packaging): the privacy (PPPC) profile prestage ships for the JumpCloud
//! agent, `packaging/profile/jumpcloud-agent-pppc.mobileconfig`, a deployment prerequisite.

use std::collections::BTreeSet;
use std::path::PathBuf;

const PROFILE: &str = "packaging/profile/jumpcloud-agent-pppc.mobileconfig";

/// The agent's code requirement, as REFERENCE.md and JumpCloud's own profile
/// (TheJumpCloud/support, `MDM/Custom Configuration Profiles/profiles/JumpCloud-Agent.mobileconfig`)
/// give it.
const CODE_REQUIREMENT: &str = "identifier \"jumpcloud-agent\" and anchor apple generic and certificate 1[field.1.2.840.113635.100.6.2.6] /* exists */ and certificate leaf[field.1.2.840.113635.100.6.1.13] /* exists */ and certificate leaf[subject.OU] = N985MXSH85";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

#[test]
fn the_agents_pppc_profile_grants_full_disk_access_to_jumpclouds_signed_agent() {
    let value = plist::Value::from_file(repo().join(PROFILE)).unwrap();
    let top = value.as_dictionary().unwrap();
    assert_eq!(top["PayloadType"].as_string(), Some("Configuration"));
    assert_eq!(top["PayloadScope"].as_string(), Some("System"));
    assert_eq!(top["PayloadVersion"].as_signed_integer(), Some(1));
    let top_id = top["PayloadIdentifier"].as_string().unwrap();
    let mut uuids = vec![top["PayloadUUID"].as_string().unwrap().to_owned()];

    let payloads = top["PayloadContent"].as_array().unwrap();
    assert_eq!(payloads.len(), 1);
    let tcc = payloads[0].as_dictionary().unwrap();
    assert_eq!(
        tcc["PayloadType"].as_string(),
        Some("com.apple.TCC.configuration-profile-policy")
    );
    assert_eq!(tcc["PayloadVersion"].as_signed_integer(), Some(1));
    let id = tcc["PayloadIdentifier"].as_string().unwrap();
    assert!(id.starts_with(top_id) && id != top_id, "{id}");
    uuids.push(tcc["PayloadUUID"].as_string().unwrap().to_owned());
    assert!(uuids.iter().all(|u| is_uuid(u)), "{uuids:?}");
    assert_ne!(uuids[0], uuids[1]);

    let services = tcc["Services"].as_dictionary().unwrap();
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    // The services of JumpCloud's own profile; Full Disk Access is what the installer asks for.
    assert_eq!(
        names,
        BTreeSet::from([
            "Accessibility",
            "AppleEvents",
            "PostEvent",
            "SystemPolicyAllFiles"
        ])
    );
    let mut receivers = BTreeSet::new();
    for (service, entries) in services {
        let entries = entries.as_array().unwrap();
        assert!(!entries.is_empty(), "{service}");
        for entry in entries {
            let e = entry.as_dictionary().unwrap();
            assert_eq!(e["Authorization"].as_string(), Some("Allow"), "{service}");
            assert_eq!(
                e["CodeRequirement"].as_string(),
                Some(CODE_REQUIREMENT),
                "{service}"
            );
            assert_eq!(
                e["Identifier"].as_string(),
                Some("/opt/jc/bin/jumpcloud-agent"),
                "{service}"
            );
            assert_eq!(e["IdentifierType"].as_string(), Some("path"), "{service}");
            if service == "AppleEvents" {
                let receiver = e["AEReceiverIdentifier"].as_string().unwrap();
                assert_eq!(e["AEReceiverIdentifierType"].as_string(), Some("bundleID"));
                assert_eq!(
                    e["AEReceiverCodeRequirement"].as_string().unwrap(),
                    format!("identifier \"{receiver}\" and anchor apple")
                );
                receivers.insert(receiver.to_owned());
            }
        }
    }
    assert_eq!(
        receivers,
        BTreeSet::from([
            "com.apple.finder".to_owned(),
            "com.apple.systemevents".to_owned(),
            "com.apple.systemuiserver".to_owned()
        ])
    );
}

#[test]
fn the_readme_lists_the_pppc_profile_as_a_deployment_prerequisite() {
    for doc in ["README.md", "docs/deploying.md"] {
        let text = std::fs::read_to_string(repo().join(doc)).unwrap();
        let deploying = text
            .split("# Deploying with Jamf Pro")
            .nth(1)
            .unwrap_or_else(|| panic!("{doc} has a deployment section"));
        assert!(deploying.contains(PROFILE), "{doc} names {PROFILE}");
        assert!(deploying.contains("Full Disk Access"), "{doc}");
    }
}
