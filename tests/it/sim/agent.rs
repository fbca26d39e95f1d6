//! The simulated JumpCloud agent on a temporary fake Mac: registration, signing, takeover,
//! and the ways an agent misbehaves.

use super::super::util::wait_for;
use super::{
    agent_log, assert_contract, fake_mac, http, install_agent, opts, request, send, start,
};
use base64::Engine as _;
use prestage::host::fake::world::World;
use prestage::paths::mac;
use prestage::sim::{AgentBehaviour, AgentMode, SimOptions, SimUser};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

#[tokio::test]
async fn agent_registers_signs_and_takes_over_a_bound_user() {
    let t = start(opts()).await;
    let ada = t.add_user(SimUser::active("ada", "ada@example.com").system_username("ada.lovelace"));
    let (_dir, root) = fake_mac(&t.connect_key());
    let agent = t.attach_mac(&root);

    // Nothing happens before the package is installed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(agent.system_id().is_none());
    install_agent(&root);

    let conf_path = root.resolve(mac::JC_AGENT_CONF);
    let conf: Value = wait_for(&(&t, &root), "jcagent.conf", || {
        std::fs::read(&conf_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    })
    .await;
    let sys = conf["systemKey"].as_str().unwrap().to_owned();
    assert_eq!(agent.system_id().as_deref(), Some(sys.as_str()));
    assert_eq!(
        conf["userMgmt"]["ldap_domain"],
        format!("{}.jumpcloud.com", t.org_id())
    );
    assert_eq!(t.systems()[0].hostname, "ada-mbp");

    // client.key: 0600, PKCS#1 PEM, and it signs requests the tenant accepts.
    let key_path = root.resolve(mac::JC_CLIENT_KEY);
    assert_eq!(
        std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let pem = std::fs::read_to_string(&key_path).unwrap();
    let der = base64::engine::general_purpose::STANDARD
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    let pair = aws_lc_rs::rsa::KeyPair::from_der(&der).unwrap();
    let path = format!("/api/v2/systems/{sys}/associations");
    let date = httpdate::fmt_http_date(SystemTime::now());
    let msg = format!("POST {path} HTTP/1.1\ndate: {date}");
    let mut sig = vec![0; pair.public_modulus_len()];
    pair.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        msg.as_bytes(),
        &mut sig,
    )
    .unwrap();
    let auth = format!(
        r#"Signature keyId="system/{sys}",headers="request-line date",algorithm="rsa-sha256",signature="{}""#,
        base64::engine::general_purpose::STANDARD.encode(sig)
    );
    let bind = json!({"op": "add", "type": "user", "id": ada, "attributes": {"sudo": {"enabled": true, "withoutPassword": false}}});
    let a = send(
        request(&t, "POST", &path, Some(&bind))
            .header("date", date)
            .header("authorization", auth),
    )
    .await;
    assert_eq!(a.status, 204);

    // The account appears, managed by JumpCloud, admin, no Secure Token; the log says so.
    let user = wait_for(&(&t, &root), "the local account", || {
        World::load(&root)
            .unwrap()
            .users
            .get("ada.lovelace")
            .cloned()
    })
    .await;
    assert!(user.managed_by_jumpcloud && user.admin && !user.secure_token);
    let log = wait_for(&(&t, &root), "User updates complete", || {
        let l = agent_log(&root);
        l.contains("User updates complete").then_some(l)
    })
    .await;
    let processing = log.find("Processing user updates").unwrap();
    assert!(processing < log.find("User updates complete").unwrap());
    let stamp = regex::Regex::new(r"^\d{2}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} ").unwrap();
    assert!(log.lines().all(|l| stamp.is_match(l)), "{log}");
    assert_eq!(agent.taken_over(), vec!["ada.lovelace".to_owned()]);

    // A restarted agent (reboot) keeps its registration.
    drop(agent);
    let again = t.attach_mac(&root);
    let same = wait_for(&(&t, &root), "re-attached agent", || again.system_id()).await;
    assert_eq!(same, sys);
    assert_eq!(t.systems().len(), 1);
    // The MDM's account is untouched.
    assert!(!World::load(&root).unwrap().users["welcome"].managed_by_jumpcloud);
    assert_contract(&t);
}

#[tokio::test]
async fn agent_takes_over_an_existing_account_and_can_omit_the_org() {
    let t = start(SimOptions {
        agent: AgentBehaviour {
            omit_org: true,
            register_delay: Duration::ZERO,
            takeover_delay: Duration::ZERO,
            ..AgentBehaviour::default()
        },
        ..opts()
    })
    .await;
    let ada = t.add_user(SimUser::active("ada", "ada@example.com"));
    let (_dir, root) = fake_mac(&t.connect_key());
    World::update(&root, |w| w.add_user("ada", true, false)).unwrap();
    let uid = World::load(&root).unwrap().users["ada"].uid;
    install_agent(&root);
    let agent = t.attach_mac(&root);
    let sys = wait_for(&(&t, &root), "registration", || agent.system_id()).await;
    let conf: Value =
        serde_json::from_slice(&std::fs::read(root.resolve(mac::JC_AGENT_CONF)).unwrap()).unwrap();
    assert!(conf.get("userMgmt").is_none());
    t.bind(&sys, &ada, false);
    let user = wait_for(&(&t, &root), "takeover", || {
        World::load(&root)
            .unwrap()
            .users
            .get("ada")
            .filter(|u| u.managed_by_jumpcloud)
            .cloned()
    })
    .await;
    assert_eq!(user.uid, uid);
    assert!(user.secure_token && !user.admin);
}

#[tokio::test(start_paused = true)]
async fn agent_with_a_wrong_connect_key_never_registers() {
    let t = start(opts()).await;
    let (_dir, root) = fake_mac("0000000000000000000000000000000000000000");
    install_agent(&root);
    let agent = t.attach_mac(&root);
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(agent.system_id().is_none());
    assert!(t.systems().is_empty());
    assert!(!root.resolve(mac::JC_AGENT_CONF).exists());
    assert!(agent_log(&root).contains("connect key was rejected"));
}

#[tokio::test(start_paused = true)]
async fn with_a_tenant_key_the_agent_needs_its_payload_byte_for_byte() {
    let t = start(opts()).await;
    let key = t.tenant_connect_key(
        "https://kickstart.eu.jumpcloud.com:443",
        "https://private-kickstart.eu.jumpcloud.com:443",
    );
    let payload = match prestage::config::ConnectKey::parse(&key).unwrap() {
        prestage::config::ConnectKey::Tenant { bootstrap, .. } => bootstrap,
        other @ prestage::config::ConnectKey::Classic(_) => panic!("{other:?}"),
    };
    // Same connect key inside, but rewritten (other hosts, other layout): refused.
    let (_d1, rewritten) = fake_mac(&t.connect_key());
    install_agent(&rewritten);
    let refused = t.attach_mac(&rewritten);
    // The payload exactly as decoded: registers.
    let (_d2, exact) = fake_mac(&t.connect_key());
    std::fs::write(exact.resolve(mac::JC_BOOTSTRAP), payload.expose_secret()).unwrap();
    install_agent(&exact);
    let accepted = t.attach_mac(&exact);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(refused.system_id().is_none());
    assert!(agent_log(&rewritten).contains("connect key was rejected"));
    assert!(accepted.system_id().is_some(), "{}", agent_log(&exact));
    assert_eq!(t.systems().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn silent_and_never_registering_agents() {
    let t = start(opts()).await;
    let ada = t.add_user(SimUser::active("ada", "ada@example.com"));

    let (_d1, never) = fake_mac(&t.connect_key());
    install_agent(&never);
    let a1 = t.attach_mac_with(
        &never,
        AgentBehaviour {
            mode: AgentMode::NeverRegisters,
            ..AgentBehaviour::default()
        },
    );

    let (_d2, silent) = fake_mac(&t.connect_key());
    install_agent(&silent);
    let a2 = t.attach_mac_with(
        &silent,
        AgentBehaviour {
            mode: AgentMode::Silent,
            ..AgentBehaviour::default()
        },
    );
    let sys = wait_for(&(&t, &silent), "silent agent registration", || {
        a2.system_id()
    })
    .await;
    let log_len = agent_log(&silent).len();
    t.bind(&sys, &ada, false);
    tokio::time::sleep(Duration::from_secs(600)).await;

    assert!(a1.system_id().is_none());
    assert!(!never.resolve(mac::JC_AGENT_CONF).exists());
    assert!(!World::load(&silent).unwrap().users.contains_key("ada"));
    assert_eq!(
        agent_log(&silent).len(),
        log_len,
        "a silent agent writes nothing more"
    );
    assert_eq!(t.systems().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn stalled_agent_resumes_after_a_kickstart_and_slow_agent_is_slow() {
    let t = start(opts()).await;
    let ada = t.add_user(SimUser::active("ada", "ada@example.com"));
    let (_dir, root) = fake_mac(&t.connect_key());
    install_agent(&root);
    let agent = t.attach_mac_with(
        &root,
        AgentBehaviour {
            mode: AgentMode::StallUntilKickstart,
            ..AgentBehaviour::default()
        },
    );
    let sys = wait_for(&(&t, &root), "registration", || agent.system_id()).await;
    t.bind(&sys, &ada, true);
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert!(!World::load(&root).unwrap().users.contains_key("ada"));
    assert!(!agent_log(&root).contains("Processing user updates"));
    assert!(
        !agent_log(&root).contains("check-in"),
        "a stalled agent is quiet"
    );

    // `launchctl kickstart -k system/com.jumpcloud.darwin-agent` (the fake counts it).
    World::update(&root, |w| w.agent_kickstarts += 1).unwrap();
    wait_for(&(&t, &root), "takeover after kickstart", || {
        World::load(&root).unwrap().users.get("ada").cloned()
    })
    .await;
    assert!(agent_log(&root).contains("User updates complete"));
    // Once running again it checks in now and then, like the real agent's busy log.
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(agent_log(&root).contains("Agent check-in complete"));

    // Slow: nothing after the normal delays, done after the extra one.
    let (_d2, slow) = fake_mac(&t.connect_key());
    install_agent(&slow);
    let extra = Duration::from_secs(90);
    let a2 = t.attach_mac_with(
        &slow,
        AgentBehaviour {
            mode: AgentMode::Slow { extra },
            ..AgentBehaviour::default()
        },
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(a2.system_id().is_none());
    wait_for(&(&t, &slow), "the slow agent's registration", || {
        a2.system_id()
    })
    .await;
}

#[tokio::test]
async fn shared_key_fleet_and_shutdown() {
    const FLEET: usize = 30;
    let t = start(SimOptions {
        agent: AgentBehaviour {
            shared_key: true,
            register_delay: Duration::ZERO,
            ..AgentBehaviour::default()
        },
        ..opts()
    })
    .await;
    let macs: Vec<_> = (0..FLEET).map(|_| fake_mac(&t.connect_key())).collect();
    let agents: Vec<_> = macs
        .iter()
        .map(|(_, root)| {
            install_agent(root);
            t.attach_mac(root)
        })
        .collect();
    for a in &agents {
        wait_for(&t, "fleet registration", || a.system_id()).await;
    }
    let keys: Vec<String> = macs
        .iter()
        .map(|(_, r)| std::fs::read_to_string(r.resolve(mac::JC_CLIENT_KEY)).unwrap())
        .collect();
    assert!(keys.windows(2).all(|w| w[0] == w[1]));
    let ids: std::collections::BTreeSet<_> = agents
        .iter()
        .filter_map(prestage::sim::AgentHandle::system_id)
        .collect();
    assert_eq!(ids.len(), FLEET);

    // Bind one user per Mac; every Mac gets its own account.
    for (i, a) in agents.iter().enumerate() {
        let user = t.add_user(SimUser::active(
            &format!("emp{i}"),
            &format!("emp{i}@example.com"),
        ));
        t.bind(&a.system_id().unwrap(), &user, false);
    }
    for (i, (_, root)) in macs.iter().enumerate() {
        let name = format!("emp{i}");
        wait_for(&t, "fleet takeover", || {
            World::load(root).unwrap().users.get(&name).map(|_| ())
        })
        .await;
        assert_eq!(
            World::load(root).unwrap().users.len(),
            2,
            "welcome + emp{i} only"
        );
    }

    let url = t.url();
    t.clone().shutdown().await;
    let after = http()
        .get(url.join("api/organizations").unwrap())
        .send()
        .await;
    assert!(after.is_err(), "the server is gone: {after:?}");
}
