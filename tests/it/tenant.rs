//! The whole engine against a simulated tenant that answers as JumpCloud does where that is on
//! record, and no kinder where it is not (issue 14): refused passwords in 422 and 400, the
//! tenant's rules beyond length and classes, activation without a Welcome email, duplicates
//! answered 400 `Already Exists`, signatures that must cover the query, and Macs without system
//! context whose API key was to come from a command bound to `EnrollmentGroupID`.

use std::time::{Duration, SystemTime};

use prestage::demo::{EmployeeKind, Scenario};
use prestage::jumpcloud::signing::{http_date, SystemIdentity};
use prestage::paths::mac;
use prestage::policy::PasswordPolicy;
use prestage::sim::{AuthKind, Faults};
use prestage::ui::fake_dialog;
use prestage::ui::scripted::{Script, ScriptedPassword};
use secrecy::SecretString;

use super::engine::{assert_enrolled, clean_script, options, run_once, scenario, state, system_id};
use super::util::{assert_exit, assert_success};

/// SHA-256 hex, as the tenant's request log records bodies.
fn sha256_hex(data: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    d.as_ref().iter().fold(String::new(), |mut out, b| {
        use std::fmt::Write as _;
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// The scripted employee: the identity answers of a clean run, then these passwords in turn.
fn with_passwords(s: &Scenario, passwords: &[&str]) -> Script {
    Script {
        passwords: passwords
            .iter()
            .map(|p| ScriptedPassword {
                password: (*p).to_owned(),
                confirmation: None,
            })
            .collect(),
        ..clean_script(s)
    }
}

/// The `--message` of every password screen shown, in order.
fn password_screens(s: &Scenario) -> Vec<String> {
    fake_dialog::calls(&s.root)
        .into_iter()
        .filter(|c| c.args.iter().any(|a| a.contains("name=password")))
        .filter_map(|c| {
            let i = c.args.iter().position(|a| a == "--message")?;
            c.args.get(i + 1).cloned()
        })
        .collect()
}

/// Password sets the tenant received for the employee.
fn password_puts(s: &Scenario) -> Vec<u16> {
    let path = format!("/api/systemusers/{}", s.user_id);
    s.tenant
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path == path && !r.injected)
        .map(|r| r.status)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_refused_with_422_then_400_are_chosen_again_in_the_same_run() {
    // JumpCloud's status for a password its policy refuses is not on record: the tenant
    // refuses two commonly used passwords (that pass every rule prestage checks) with 422,
    // then 400, and the employee chooses again each time.
    let mut opts = options(EmployeeKind::Pending);
    opts.sim.password_policy.forbid_common = true;
    opts.sim.password_refusal_statuses = vec![422, 400];
    let s = scenario(opts).await;
    let good = s.employee.password.clone();
    s.write_dialog_script(&with_passwords(
        &s,
        &["Welcome@2020", "Summer@2024!", &good],
    ))
    .unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_enrolled(&s);
    assert_eq!(password_puts(&s), [422, 400, 200]);
    let user = s.tenant.user(&s.user_id).unwrap();
    assert_eq!((user.password_sets, user.password_rejections), (1, 2));
    // The second and third screens say why the one before was refused.
    let screens = password_screens(&s);
    assert_eq!(screens.len(), 3, "{screens:#?}");
    assert!(!screens[0].contains("did not accept"), "{}", screens[0]);
    for screen in &screens[1..] {
        assert!(
            screen.contains("did not accept this password: Password is too common"),
            "{screen}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_screen_lists_the_tenants_extra_rules_and_checks_what_it_can() {
    let mut opts = options(EmployeeKind::Pending);
    opts.sim.password_policy = PasswordPolicy {
        forbid_username: true,
        forbid_sequences: true,
        forbid_common: true,
        history: 5,
        min_change_days: 2,
        ..prestage::demo::demo_policy()
    };
    let s = scenario(opts).await;
    let good = s.employee.password.clone();
    // The username inside, then a run of three: both refused here, never sent.
    s.write_dialog_script(&with_passwords(
        &s,
        &["Ada.Lovelace-1843!", "Engine-Xyz-1843!", &good],
    ))
    .unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_eq!(password_puts(&s), [200], "only the good password was sent");
    let screens = password_screens(&s);
    assert_eq!(screens.len(), 3, "{screens:#?}");
    let first = &screens[0];
    for rule in [
        "at least 12 characters",
        "- no trace of your username",
        "- no three repeated or consecutive letters or digits in a row",
        "- to be something other than a commonly used password (JumpCloud checks this when you continue)",
        "- to differ from your last 5 passwords (JumpCloud checks this when you continue)",
        "- to come at least 2 days after your last password change (JumpCloud checks this when you continue)",
    ] {
        assert!(first.contains(rule), "{rule:?} missing from:\n{first}");
    }
    // After each refused try, one checklist (issue 16): the missed rule marked unmet, the
    // others met.
    assert!(
        screens[1].contains("✗ **no trace of your username**"),
        "{}",
        screens[1]
    );
    assert!(
        screens[1].contains("✓ at least 12 characters"),
        "{}",
        screens[1]
    );
    assert!(
        screens[2].contains("✗ **no three repeated"),
        "{}",
        screens[2]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_employee_is_activated_without_a_welcome_email() {
    // v1.json: an activation with an empty body sends "Users with a password" a Welcome
    // email; prestage sets the password first, so only `{"email": false}` avoids it.
    let s = scenario(options(EmployeeKind::Staged)).await;
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_enrolled(&s);
    let user = s.tenant.user(&s.user_id).unwrap();
    assert_eq!(user.state, prestage::jumpcloud::UserState::Activated);
    assert_eq!(user.welcome_emails(), 0, "{:?}", user.emails);
    assert!(user.emails.is_empty(), "{:?}", user.emails);
    let activations: Vec<_> = s
        .tenant
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/state/activate"))
        .collect();
    assert_eq!(activations.len(), 1, "{activations:#?}");
    assert_eq!(
        activations[0].body_sha256,
        sha256_hex(br#"{"email":false}"#)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_activation_answer_is_read_back_not_repeated() {
    // JumpCloud's answer to activating a user who is no longer STAGED is not on record: after
    // a lost answer prestage reads the state (ACTIVATED now) instead of sending it again.
    let s = scenario(options(EmployeeKind::Staged)).await;
    s.tenant.set_faults(Faults {
        lose_first: vec!["/state/activate".into()],
        ..Faults::default()
    });
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_enrolled(&s);
    let activations = s
        .tenant
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/state/activate"))
        .count();
    assert_eq!(activations, 1, "sent again after a lost answer");
    let user = s.tenant.user(&s.user_id).unwrap();
    assert_eq!(user.state, prestage::jumpcloud::UserState::Activated);
    assert!(user.emails.is_empty(), "{:?}", user.emails);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_answered_400_already_exists_count_as_done() {
    // The status of a duplicate bind or group add is not on record; JumpCloud's own script
    // knows a duplicate by the body `Already Exists`. Here the tenant answers 400 with that
    // body, and the first answers of the group join and of the bind are lost after they took
    // effect, so the client's repeat of each meets its own success.
    let mut opts = options(EmployeeKind::Pending);
    opts.sim.duplicate_status = 400;
    let s = scenario(opts).await;
    s.tenant.set_faults(Faults {
        lose_first: vec!["/members".into(), "/associations".into()],
        ..Faults::default()
    });
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_enrolled(&s);
    let duplicates: Vec<String> = s
        .tenant
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.status == 400)
        .map(|r| r.path)
        .collect();
    let sys = system_id(&s);
    assert_eq!(
        duplicates,
        [
            format!("/api/v2/systemgroups/{}/members", s.group_id),
            format!("/api/v2/systems/{sys}/associations"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_without_the_query_is_refused_and_ours_is_accepted() {
    let s = scenario(options(EmployeeKind::Active)).await;
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    let sys = system_id(&s);
    let path = format!("/api/v2/systems/{sys}/associations");
    // Ours: the bind check, signed over path and query, accepted. The engine reads the binds
    // back only after a lost answer (issue 11), so prestage's client asks here with the Mac's
    // own key.
    let pem = std::fs::read_to_string(s.root.resolve(mac::JC_CLIENT_KEY)).unwrap();
    let mut options = prestage::jumpcloud::ClientOptions::new(s.tenant.url());
    options.org_id = Some(s.tenant.org_id());
    options.system = Some(SystemIdentity::from_pem(&sys, &SecretString::from(pem)).unwrap());
    let client = prestage::jumpcloud::Client::new(options).unwrap();
    let bound = prestage::jumpcloud::Directory::bound_users(&client)
        .await
        .unwrap();
    assert_eq!(bound.len(), 1);
    assert!(
        s.tenant.requests().iter().any(|r| r.path == path
            && r.query.as_deref() == Some("targets=user")
            && r.auth == AuthKind::System
            && r.status == 200),
        "{:#?}",
        s.tenant.requests()
    );
    // The same request signed over the path alone, with the Mac's own key: refused.
    let pem = std::fs::read_to_string(s.root.resolve(mac::JC_CLIENT_KEY)).unwrap();
    let me = SystemIdentity::from_pem(&sys, &SecretString::from(pem)).unwrap();
    let http = reqwest::Client::new();
    let url = format!(
        "{}{}?targets=user",
        s.tenant.url().as_str().trim_end_matches('/'),
        path
    );
    let send = |signed: String| {
        let date = http_date(SystemTime::now());
        http.get(&url)
            .header("date", &date)
            .header("authorization", me.authorization("GET", &signed, &date))
            .timeout(Duration::from_secs(10))
            .send()
    };
    let path_only = send(path.clone()).await.unwrap();
    assert_eq!(path_only.status().as_u16(), 401);
    let with_query = send(format!("{path}?targets=user")).await.unwrap();
    assert_eq!(with_query.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mac_without_system_context_waiting_for_a_key_from_its_group_says_so_at_once() {
    // An ADE Mac enrolled through JumpCloud's MDM: every signature gets 401, so it cannot
    // join EnrollmentGroupID, and the command bound to that group that would write the API
    // key into the keychain never runs. The run says so in one line and stops.
    let s = scenario(options(EmployeeKind::Pending)).await;
    let mut config = s.config.clone();
    config.remove("APIKey");
    config.insert("APIKeyKeychainService".into(), "io.prestage.apikey".into());
    plist::Value::Dictionary(config)
        .to_file_xml(s.root.resolve(mac::LOCAL_CONFIG))
        .unwrap();
    s.tenant.set_faults(Faults {
        system_context_disabled: true,
        ..Faults::default()
    });
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_exit(&s, &out, 1);
    let error = state(&s).unwrap().last_error.unwrap();
    assert!(error.permanent);
    let line = error.message;
    for part in [
        "401",
        "JumpCloud's own MDM",
        &format!("EnrollmentGroupID {}", s.group_id),
        "\"io.prestage.apikey\"",
        "another way",
        "EncryptedAPIKey or APIKey",
    ] {
        assert!(line.contains(part), "{part:?} missing from {line:?}");
    }
    assert!(!line.contains('\n'), "one line: {line:?}");
    assert!(
        out.stderr.contains(&line) || out.stdout.contains(&line),
        "{out:#?}"
    );
    // No JumpCloud call but the refused system-context ones: it did not wait for the key.
    assert!(s
        .tenant
        .requests()
        .iter()
        .all(|r| r.auth == AuthKind::System && r.status == 401));
}

// ---------------------------------------------------------------------------------------------
// The simulated tenant itself: no kinder than JumpCloud.

mod simulator {
    use prestage::policy::PasswordPolicy;
    use prestage::sim::{EmailKind, SimOptions, SimUser};
    use serde_json::json;

    use super::super::sim::{
        admin, assert_contract, opts, request, send, sign_header, signed, start, system,
    };
    use secrecy::ExposeSecret as _;

    #[tokio::test]
    async fn activation_emails_follow_the_operations_text() {
        let t = start(opts()).await;
        let act = |id: &str| format!("/api/systemusers/{id}/state/activate");
        // Empty body, a password: Welcome email to the primary address.
        let a = t.add_user(SimUser::staged("a", "a@example.com"));
        admin(
            &t,
            "PUT",
            &format!("/api/systemusers/{a}"),
            Some(&json!({"password": "Long-enough-9"})),
        )
        .await;
        assert_eq!(admin(&t, "POST", &act(&a), None).await.status, 200);
        let view = t.user(&a).unwrap();
        assert_eq!(view.welcome_emails(), 1);
        assert_eq!(view.emails[0].to, "a@example.com");
        // No password: an Activation email, to the address given.
        let b = t.add_user(SimUser::staged("b", "b@example.com"));
        let body = json!({"email": "b@home.example"});
        assert_eq!(admin(&t, "POST", &act(&b), Some(&body)).await.status, 200);
        let view = t.user(&b).unwrap();
        assert_eq!(view.emails[0].kind, EmailKind::Activation);
        assert_eq!(view.emails[0].to, "b@home.example");
        // `false`: none.
        let c = t.add_user(SimUser::staged("c", "c@example.com"));
        let body = json!({"email": false});
        assert_eq!(admin(&t, "POST", &act(&c), Some(&body)).await.status, 200);
        assert!(t.user(&c).unwrap().emails.is_empty());
        assert_contract(&t);
    }

    #[tokio::test]
    async fn refusals_take_the_statuses_given_and_common_passwords_are_refused() {
        let t = start(SimOptions {
            password_policy: PasswordPolicy {
                forbid_common: true,
                ..prestage::demo::demo_policy()
            },
            password_refusal_statuses: vec![422, 400],
            ..opts()
        })
        .await;
        let ada = t.add_user(SimUser::pending("ada", "ada@example.com"));
        let path = format!("/api/systemusers/{ada}");
        let set = |pw: &str| json!({ "password": pw });
        let first = admin(&t, "PUT", &path, Some(&set("Welcome@2020"))).await;
        assert_eq!(first.status, 422);
        assert!(first.body.unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("too common"));
        assert_eq!(
            admin(&t, "PUT", &path, Some(&set("short"))).await.status,
            400
        );
        assert_eq!(
            admin(&t, "PUT", &path, Some(&set("p@ssw0rd2020!")))
                .await
                .status,
            400
        );
        assert_eq!(
            admin(&t, "PUT", &path, Some(&set("Analytical-Engine-1843")))
                .await
                .status,
            200
        );
        let view = t.user(&ada).unwrap();
        assert_eq!((view.password_sets, view.password_rejections), (1, 3));
        // The organisation serves the rule it enforces.
        let org = admin(
            &t,
            "GET",
            &format!("/api/organizations/{}", t.org_id()),
            None,
        )
        .await;
        let policy = &org.body.unwrap()["settings"]["passwordPolicy"];
        assert_eq!(policy["disallowCommonlyUsedPasswords"], true);
        assert_eq!(policy["allowUsernameSubstring"], true);
        assert_contract(&t);
    }

    #[tokio::test]
    async fn duplicates_take_the_status_given_with_already_exists() {
        let t = start(SimOptions {
            duplicate_status: 400,
            ..opts()
        })
        .await;
        let ada = t.add_user(SimUser::active("ada", "ada@example.com"));
        let (sys, key) = system(&t, "mac-1");
        let group = t.add_group("New Macs");
        let bind = json!({"op": "add", "type": "user", "id": ada});
        let assoc = format!("/api/v2/systems/{sys}/associations");
        assert_eq!(
            signed(&t, &key, &sys, "POST", &assoc, Some(&bind))
                .await
                .status,
            204
        );
        let again = signed(&t, &key, &sys, "POST", &assoc, Some(&bind)).await;
        assert_eq!(again.status, 400);
        assert_eq!(again.body.unwrap(), json!({"message": "Already Exists"}));
        let join = json!({"op": "add", "type": "system", "id": sys});
        let members = format!("/api/v2/systemgroups/{group}/members");
        assert_eq!(
            signed(&t, &key, &sys, "POST", &members, Some(&join))
                .await
                .status,
            204
        );
        let again = signed(&t, &key, &sys, "POST", &members, Some(&join)).await;
        assert_eq!(again.status, 400);
        assert_eq!(again.body.unwrap()["message"], "Already Exists");
    }

    #[tokio::test]
    async fn a_signature_must_cover_the_query() {
        let t = start(opts()).await;
        let (sys, key) = system(&t, "mac-1");
        let path = format!("/api/v2/systems/{sys}/associations");
        let target = format!("{path}?targets=user");
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let path_only = send(
            request(&t, "GET", &target, None)
                .header("date", &date)
                .header(
                    "authorization",
                    sign_header(&key, &sys, "GET", &path, &date),
                ),
        )
        .await;
        assert_eq!(path_only.status, 401);
        assert_eq!(
            signed(&t, &key, &sys, "GET", &target, None).await.status,
            200
        );
    }

    #[tokio::test]
    async fn x_org_id_is_answered_as_the_v1_info_text_says() {
        let t = start(opts()).await;
        let key = t.api_key().expose_secret().to_owned();
        let org = t.org_id();
        let with = |path: &str, header: &str| {
            send(
                request(&t, "GET", path, None)
                    .header("x-api-key", &key)
                    .header("x-org-id", header),
            )
        };
        let own = format!("/api/organizations/{org}");
        assert_eq!(with(&own, "not-an-id").await.status, 400, "malformed");
        assert_eq!(
            with(&own, "bbbbbbbbbbbbbbbbbbbbbbbb").await.status,
            400,
            "path and header differ"
        );
        assert_eq!(
            with(
                "/api/systemusers/000000000000000000000000",
                "bbbbbbbbbbbbbbbbbbbbbbbb"
            )
            .await
            .status,
            404,
            "organisation not found"
        );
        assert_eq!(
            with("/api/organizations", &org).await.status,
            403,
            "unsupported route"
        );
        assert_eq!(with(&own, &org).await.status, 200);

        // A multi-tenant administrator's key without x-org-id: 401, except the list.
        let t = start(SimOptions {
            multi_tenant: true,
            ..opts()
        })
        .await;
        let own = format!("/api/organizations/{}", t.org_id());
        let a = admin(&t, "GET", &own, None).await;
        assert_eq!(a.status, 401);
        assert_eq!(
            a.body.unwrap()["message"],
            "Unauthorized: no organization selected"
        );
        assert_eq!(
            admin(&t, "GET", "/api/organizations", None).await.status,
            200
        );
    }
}

/// What the password screen is given to draw: every rule with met, unmet, not yet checked, or
/// "checked by JumpCloud".
#[test]
fn the_prompt_gives_the_ui_a_checklist() {
    use prestage::policy::{Rule, RuleStatus};
    use prestage::ui::PasswordPrompt;
    let policy = PasswordPolicy {
        forbid_username: true,
        forbid_common: true,
        history: 3,
        ..prestage::demo::demo_policy()
    };
    let mut prompt = PasswordPrompt {
        account: "ada".into(),
        policy,
        unmet: Vec::new(),
        mismatch: false,
        rejected_by_directory: None,
    };
    let status = |p: &PasswordPrompt, r: Rule| {
        p.checklist()
            .into_iter()
            .find(|c| c.rule == r)
            .map(|c| c.status)
    };
    assert_eq!(
        status(&prompt, Rule::NoUsername),
        Some(RuleStatus::Unchecked)
    );
    assert_eq!(
        status(&prompt, Rule::NotCommon),
        Some(RuleStatus::CheckedByDirectory)
    );
    assert_eq!(
        status(&prompt, Rule::History(3)),
        Some(RuleStatus::CheckedByDirectory)
    );
    assert_eq!(
        status(&prompt, Rule::NoSequences),
        None,
        "not in this policy"
    );
    prompt.unmet = vec![Rule::NoUsername];
    assert_eq!(status(&prompt, Rule::NoUsername), Some(RuleStatus::Unmet));
    assert_eq!(status(&prompt, Rule::MinLength(12)), Some(RuleStatus::Met));
    // After JumpCloud refused a password that met every local rule.
    prompt.unmet = Vec::new();
    prompt.rejected_by_directory = Some("Password is too common".into());
    assert_eq!(status(&prompt, Rule::NoUsername), Some(RuleStatus::Met));
}
