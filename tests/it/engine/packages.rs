//! The engine end to end: the agent's and swiftDialog's packages (downloaded, checked,
//! installed or refused).

use super::super::util::{assert_exit, assert_success};
use super::{assert_enrolled, clean_script, options, run_once, scenario, state, world};
use prestage::demo::{EmployeeKind, Scenario};
use prestage::engine::state::{Step, Store};
use prestage::paths::mac;

/// Serves `bytes` at `/production/jumpcloud-agent.pkg` on loopback; returns the URL.
async fn serve_package(bytes: Vec<u8>) -> String {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/production/jumpcloud-agent.pkg",
        get(move || {
            let bytes = bytes.clone();
            async move { bytes }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/production/jumpcloud-agent.pkg")
}

fn use_package_url(s: &mut Scenario, url: &str) {
    let mut agent = s.config["Agent"].as_dictionary().unwrap().clone();
    agent.remove("PackagePath");
    agent.insert("PackageURL".into(), url.into());
    s.config.insert("Agent".into(), agent.into());
    prestage::demo::write_plist(&s.root.resolve(mac::LOCAL_CONFIG), &s.config).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_package_is_downloaded_from_package_url() {
    let mut s = scenario(options(EmployeeKind::Active)).await;
    let pkg = std::fs::read(s.root.resolve(prestage::demo::DEMO_AGENT_PACKAGE)).unwrap();
    std::fs::remove_file(s.root.resolve(prestage::demo::DEMO_AGENT_PACKAGE)).unwrap();
    let url = serve_package(pkg.clone()).await;
    use_package_url(&mut s, &url);
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_enrolled(&s);
    // The download landed in the state directory and was checked, then installed.
    let downloaded = Store::new(&s.root).dir().join("jumpcloud-agent.pkg");
    assert_eq!(std::fs::read(&downloaded).unwrap(), pkg);
    let calls = world::calls(&s.root).unwrap();
    let check = calls
        .iter()
        .position(|c| c.tool == mac::PKGUTIL)
        .expect("signature checked");
    let install = calls
        .iter()
        .position(|c| c.tool == mac::INSTALLER)
        .expect("installed");
    assert!(check < install, "checked before installing");
    // Both tools get the package's macOS path: arguments are not rewritten under --root
    // (SPEC §1).
    assert_eq!(
        calls[check].args,
        ["--check-signature", "/var/db/prestage/jumpcloud-agent.pkg"]
    );
    assert_eq!(
        calls[install].args,
        [
            "-pkg",
            "/var/db/prestage/jumpcloud-agent.pkg",
            "-target",
            "/"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_package_not_signed_by_jumpcloud_is_refused() {
    let s = scenario(options(EmployeeKind::Active)).await;
    prestage::host::fake::world::FakePackage {
        signer: Some("Developer ID Installer: Someone Else (ABCDE12345)".into()),
        ..prestage::host::fake::world::FakePackage::jumpcloud_agent()
    }
    .write(&s.root.resolve(prestage::demo::DEMO_AGENT_PACKAGE))
    .unwrap();
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_exit(&s, &out, 1);
    let st = state(&s).unwrap();
    assert_eq!(st.step, Step::InstallAgent);
    let err = st.last_error.unwrap();
    assert!(
        err.message.contains("is not signed by JumpCloud"),
        "{}",
        err.message
    );
    assert!(!world::calls(&s.root)
        .unwrap()
        .iter()
        .any(|c| c.tool == mac::INSTALLER));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_swiftdialog_is_installed_from_its_package() {
    let mut s = scenario(options(EmployeeKind::Active)).await;
    std::fs::remove_file(s.root.resolve(mac::DIALOG)).unwrap();
    let pkg = "/Library/Application Support/prestage/swiftDialog.pkg";
    prestage::host::fake::world::FakePackage {
        identifier: prestage::host::fake::world::DIALOG_PACKAGE_ID.into(),
        version: "2.5.6".into(),
        signer: Some("Developer ID Installer: Bart Reardon (PWA5E9TQ59)".into()),
    }
    .write(&s.root.resolve(pkg))
    .unwrap();
    let mut ui = s.config["UI"].as_dictionary().unwrap().clone();
    ui.insert("DialogPackagePath".into(), pkg.into());
    s.config.insert("UI".into(), ui.into());
    prestage::demo::write_plist(&s.root.resolve(mac::LOCAL_CONFIG), &s.config).unwrap();
    s.write_dialog_script(&clean_script(&s)).unwrap();
    let out = run_once(&s).await;
    assert_success(&s, &out);
    assert_enrolled(&s);
    assert!(world(&s)
        .installed_packages
        .contains(&prestage::host::fake::world::DIALOG_PACKAGE_ID.to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_swiftdialog_without_a_package_is_reported() {
    let s = scenario(options(EmployeeKind::Active)).await;
    std::fs::remove_file(s.root.resolve(mac::DIALOG)).unwrap();
    let out = run_once(&s).await;
    assert_exit(&s, &out, 1);
    let st = state(&s).unwrap();
    let err = st.last_error.unwrap();
    assert!(err.permanent);
    assert!(
        err.message.contains("swiftDialog is not installed"),
        "{}",
        err.message
    );
    let log = std::fs::read_to_string(s.root.resolve(mac::LOG_FILE)).unwrap();
    assert!(
        log.contains("swiftDialog is not installed"),
        "in the log too"
    );
    // Nothing was done to the Mac's accounts.
    assert!(world(&s).users.contains_key("welcome"));
}
