//! The agent's files: jcagent.conf, the client key, the bootstrap file, the log follower and
//! change notices.

use super::{append, FakeMac, ORG};
use prestage::host::{kickstart_urls, wait_for_change, AgentFiles, LogFollower, TAKEOVER_DONE};
use prestage::paths::mac;
use secrecy::ExposeSecret;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// The agent's files.

#[test]
fn agent_conf_variants() {
    let m = FakeMac::new();
    let files = AgentFiles::new(m.root.clone());
    assert_eq!(files.read_conf().unwrap(), None);
    let path = m.root.resolve(mac::JC_AGENT_CONF);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();

    let nested = format!(
        r#"{{"agentServerHost":"agent.jumpcloud.com","caCrt":"/opt/jc/ca.crt","clientCrt":"/opt/jc/client.crt","clientKey":"/opt/jc/client.key","osPlugin":"darwin","systemKey":"63a1b2c3d4e5f60718293a4b","systemToken":"x","userMgmt":{{"ldap_domain":"{ORG}.jumpcloud.com"}}}}"#
    );
    // Half written: "not yet".
    std::fs::write(&path, &nested[..nested.len() / 2]).unwrap();
    assert_eq!(files.read_conf().unwrap(), None);
    std::fs::write(&path, &nested).unwrap();
    let conf = files.read_conf().unwrap().unwrap();
    assert_eq!(conf.system_key, "63a1b2c3d4e5f60718293a4b");
    assert_eq!(conf.org_id.as_deref(), Some(ORG));

    std::fs::write(
        &path,
        format!(
            r#"{{"systemKey":"63a1b2c3d4e5f60718293a4b","ldap_domain":"{ORG}.jumpcloud.com"}}"#
        ),
    )
    .unwrap();
    assert_eq!(
        files.read_conf().unwrap().unwrap().org_id.as_deref(),
        Some(ORG)
    );

    std::fs::write(&path, r#"{"systemKey":"63a1b2c3d4e5f60718293a4b"}"#).unwrap();
    assert_eq!(files.read_conf().unwrap().unwrap().org_id, None);

    std::fs::write(&path, "systemKey=abc\n").unwrap();
    let e = files.read_conf().unwrap_err();
    assert!(
        e.to_string().contains("jcagent.conf is not valid JSON"),
        "{e}"
    );
}

#[test]
fn client_key_is_secret() {
    let m = FakeMac::new();
    let files = AgentFiles::new(m.root.clone());
    assert!(files.read_client_key().is_err());
    let path = m.root.resolve(mac::JC_CLIENT_KEY);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n",
    )
    .unwrap();
    let key = files.read_client_key().unwrap();
    assert!(key
        .expose_secret()
        .starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    assert!(!format!("{key:?}").contains("MIIE"));
}

#[test]
fn bootstrap_file_is_private_and_regional() {
    let m = FakeMac::new();
    let files = AgentFiles::new(m.root.clone());
    let (public, private) =
        kickstart_urls(&url::Url::parse("https://console.eu.jumpcloud.com").unwrap());
    let key =
        prestage::config::ConnectKey::parse("0123456789abcdef0123456789abcdef01234567").unwrap();
    files
        .write_bootstrap(&key.bootstrap_json(&public, &private))
        .unwrap();
    let path = m.root.resolve(mac::JC_BOOTSTRAP);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "publicKickstartUrl": "https://kickstart.eu.jumpcloud.com:443",
            "privateKickstartUrl": "https://private-kickstart.eu.jumpcloud.com:443",
            "connectKey": "0123456789abcdef0123456789abcdef01234567",
        })
    );
    // Rewriting replaces it whole and leaves no temporary file behind.
    let (public, private) =
        kickstart_urls(&url::Url::parse("https://console.jumpcloud.com").unwrap());
    files
        .write_bootstrap(&key.bootstrap_json(&public, &private))
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("https://kickstart.jumpcloud.com:443"),
        "{text}"
    );
    let entries: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["agentBootstrap.json"]);
}

#[test]
fn a_tenant_connect_key_is_written_as_its_payload_byte_for_byte() {
    let m = FakeMac::new();
    let files = AgentFiles::new(m.root.clone());
    // Compact, in an order serde would not choose, with EU hosts: kept exactly as it is.
    let payload = r#"{"publicKickstartUrl":"https://kickstart.eu.jumpcloud.com:443","privateKickstartUrl":"https://private-kickstart.eu.jumpcloud.com:443","connectKey":"jcc-inner"}"#;
    let key = prestage::config::ConnectKey::parse(
        &prestage::config::connect_key::encode_tenant_key(payload.as_bytes()),
    )
    .unwrap();
    // Our URLs (US here) lose to the payload's.
    let (public, private) =
        kickstart_urls(&url::Url::parse("https://console.jumpcloud.com").unwrap());
    files
        .write_bootstrap(&key.bootstrap_json(&public, &private))
        .unwrap();
    let written = std::fs::read(m.root.resolve(mac::JC_BOOTSTRAP)).unwrap();
    assert_eq!(written, payload.as_bytes());
}

#[test]
fn log_follower_offsets_truncation_and_rotation() {
    let m = FakeMac::new();
    let files = AgentFiles::new(m.root.clone());
    let log = m.root.resolve(mac::JC_AGENT_LOG);
    let mut follower = files.follow_log(0);
    assert!(follower.read_new_lines().unwrap().is_empty());
    assert_eq!(follower.last_growth(), None);

    append(
        &log,
        "24-01-01 12:00:00 Processing user updates\n24-01-01 12:00:01 User updates com",
    );
    assert_eq!(
        follower.read_new_lines().unwrap(),
        ["24-01-01 12:00:00 Processing user updates"]
    );
    assert!(follower.last_growth().is_some());
    let offset = follower.offset();
    assert_eq!(offset, 42);

    // The half line completes; a follower resumed from the persisted offset sees only it.
    append(&log, "plete\n");
    let mut resumed = files.follow_log(offset);
    let lines = resumed.read_new_lines().unwrap();
    assert_eq!(lines, ["24-01-01 12:00:01 User updates complete"]);
    assert!(lines[0].contains(TAKEOVER_DONE));
    assert_eq!(follower.read_new_lines().unwrap(), lines);
    assert!(follower.read_new_lines().unwrap().is_empty());

    // Truncated below the offset: read again from the start.
    std::fs::write(&log, "24-01-02 08:00:00 agent restarted\n").unwrap();
    assert_eq!(
        follower.read_new_lines().unwrap(),
        ["24-01-02 08:00:00 agent restarted"]
    );

    // Rotated (renamed away, a new file, already longer than our offset): the new file whole.
    std::fs::rename(&log, log.with_extension("log.1")).unwrap();
    append(
        &log,
        "24-01-02 08:00:05 a new log file begins here\n24-01-02 08:00:06 second\n",
    );
    assert_eq!(
        follower.read_new_lines().unwrap(),
        [
            "24-01-02 08:00:05 a new log file begins here",
            "24-01-02 08:00:06 second"
        ]
    );

    // Following from the end ignores what was there.
    let mut fresh = LogFollower::at_end(&log);
    assert!(fresh.read_new_lines().unwrap().is_empty());
    append(&log, "new\n");
    assert_eq!(fresh.read_new_lines().unwrap(), ["new"]);
    assert!(files.log_last_written().is_some());
}

#[tokio::test(start_paused = true)]
async fn file_changes_are_noticed_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jcagent.conf");
    let start = tokio::time::Instant::now();
    let deadline = start + Duration::from_secs(30);
    let writer = {
        let path = path.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            std::fs::write(&path, b"{}").unwrap();
            tokio::time::Instant::now()
        }
    };
    let (changed, written_at) = tokio::join!(wait_for_change(&path, deadline), writer);
    assert!(changed);
    // Virtual time (paused clock): noticed within one poll of the write.
    let noticed = tokio::time::Instant::now();
    assert!(
        noticed - written_at <= Duration::from_secs(1),
        "{:?}",
        noticed - written_at
    );

    // No change: false at the deadline, not before.
    let start = tokio::time::Instant::now();
    assert!(!wait_for_change(&path, start + Duration::from_secs(5)).await);
    assert!(tokio::time::Instant::now() - start >= Duration::from_secs(5));
}
