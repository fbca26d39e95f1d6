//! `config check --online` against a scripted tenant.

use super::{happy_tenant, oid, reply, Mock, API_KEY, GROUP, ORG, POST_GROUP};
use prestage::config::{
    AgentConfig, ApiKeySource, Config, Identifier, IdentityConfig, PasswordConfig, PolicySource,
    SecretKind, UiConfig,
};
use prestage::jumpcloud::online::{all_ok, online_check};
use secrecy::SecretString;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use url::Url;

fn config(url: &Url, post_group: &str, policy: PolicySource) -> Config {
    Config {
        connect_key: prestage::config::ConnectKey::parse(
            "0123456789abcdef0123456789abcdef01234567",
        )
        .unwrap(),
        api_key: ApiKeySource::Plain(SecretString::from(API_KEY)),
        api_base_url: url.clone(),
        org_id: None,
        enrollment_group_id: Some(oid(GROUP)),
        post_enrollment_group_id: Some(oid(post_group)),
        enrollment_user: Some("welcome".to_owned()),
        enrollment_user_password: None,
        secure_token_timeout: Duration::from_secs(300),
        delete_enrollment_users: true,
        admin: false,
        identity: IdentityConfig {
            identifier: Identifier::CompanyEmail,
            secret: SecretKind::None,
            max_attempts: 5,
            cooldown: Duration::from_secs(300),
            preset: None,
            preset_raw: None,
        },
        password: PasswordConfig {
            require_for_active_users: false,
            policy,
        },
        ui: UiConfig::default(),
        agent: AgentConfig {
            package_url: Url::parse("https://cdn02.jumpcloud.com/production/jumpcloud-agent.pkg")
                .unwrap(),
            package_path: None,
            install_timeout: Duration::from_secs(600),
            takeover_timeout: Duration::from_secs(600),
        },
        ntp_server: "time.apple.com".to_owned(),
        report_to_directory: true,
        computer_name: None,
        webhooks: Vec::new(),
        preflight: prestage::config::PreflightConfig::default(),
    }
}

#[tokio::test]
async fn online_check_reports_a_line_per_check_and_only_reads() {
    let mock = Mock::start().await;
    happy_tenant(&mock);
    let lines = online_check(
        &config(&mock.url, POST_GROUP, PolicySource::Tenant),
        &SecretString::from(API_KEY),
    )
    .await;
    let shown: Vec<String> = lines.iter().map(ToString::to_string).collect();
    eprintln!("{}", shown.join("\n"));
    let by_name: BTreeMap<&str, &prestage::jumpcloud::online::CheckLine> =
        lines.iter().map(|l| (l.name.as_str(), l)).collect();
    assert!(by_name["ConnectKey"].ok);
    assert!(by_name["API key"].ok);
    assert!(by_name["OrgID"].ok && by_name["OrgID"].detail.contains("Acme"));
    assert!(by_name["EnrollmentGroupID"].ok);
    assert!(
        !by_name["PostEnrollmentGroupID"].ok,
        "no such group in the mock"
    );
    assert_eq!(
        by_name["PostEnrollmentGroupID"].detail,
        format!("PostEnrollmentGroupID {POST_GROUP} does not exist in this organisation: check PostEnrollmentGroupID")
    );
    assert!(by_name["Password.Policy"].ok);
    assert!(by_name["Password.Policy"]
        .detail
        .contains("at least 12 characters, an upper-case letter"));
    assert!(!all_ok(&lines));
    assert!(
        mock.requests().iter().all(|r| r.method == "GET"),
        "read-only"
    );
    let list = &mock.requests_to("GET", "/api/organizations")[0];
    assert!(list.header("x-org-id").is_none());
    let group = &mock.requests_to("GET", &format!("/api/v2/systemgroups/{GROUP}"))[0];
    assert_eq!(
        group.header("x-org-id"),
        Some(ORG),
        "the org found is used afterwards"
    );

    // A rejected key stops the checks with the admin-facing message.
    let mock = Mock::start().await;
    mock.seq(
        "GET",
        "/api/organizations",
        vec![reply(401, json!({"message": "Unauthorized"}))],
    );
    let lines = online_check(
        &config(&mock.url, POST_GROUP, PolicySource::Tenant),
        &SecretString::from("wrong"),
    )
    .await;
    let key = lines.iter().find(|l| l.name == "API key").unwrap();
    assert!(!key.ok);
    assert!(
        key.detail
            .contains("rejected by 127.0.0.1 (401): check APIKey"),
        "{key}"
    );
    assert_eq!(mock.requests().len(), 1);
}
