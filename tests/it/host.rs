//! Integration tests: `MacHost` against the fake macOS tools installed into a temporary root
//! (the `prestage` binary itself, invoked under the tools' paths), and the agent's files.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use prestage::host::fake::world::{self, Behaviour, Call, FakePackage, World, DIALOG_PACKAGE_ID};
use prestage::host::fake::{dispatch, install_fake_tools};
use prestage::host::{
    kickstart_urls, wait_for_change, AgentFiles, Host, HostError, LogFollower, MacHost,
    TAKEOVER_DONE,
};
use prestage::paths::{mac, Root};
use secrecy::ExposeSecret;

const EXE: &str = env!("CARGO_BIN_EXE_prestage-fake");
const ORG: &str = "5f1a2b3c4d5e6f7a8b9c0d1e";

/// A fake Mac in a temporary folder, with the fake tools installed.
struct FakeMac {
    _dir: tempfile::TempDir,
    root: Root,
    host: MacHost,
}

impl FakeMac {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        install_fake_tools(&root, Path::new(EXE)).unwrap();
        let host = MacHost::new(root.clone());
        Self {
            _dir: dir,
            root,
            host,
        }
    }

    fn world(&self) -> World {
        World::load(&self.root).unwrap()
    }

    fn update<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        World::update(&self.root, f).unwrap()
    }

    fn calls(&self) -> Vec<Call> {
        world::calls(&self.root).unwrap()
    }

    /// Lets the fake Mac's clock apply what is due (a login at the login window), as macOS does
    /// on its own: the host answers the console user from `/dev/console` without a process
    /// while that file is unchanged, so no tool run moves the world on any more.
    fn advance(&self) {
        World::advance(&self.root).unwrap();
    }

    /// Runs a fake tool directly, the way an admin would, returning (code, stdout, stderr).
    fn run(&self, tool: &str, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(self.root.tool(tool))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Writes a fake package at a macOS path and returns that path.
    fn package(&self, mac_path: &str, pkg: &FakePackage) -> PathBuf {
        pkg.write(&self.root.resolve(mac_path)).unwrap();
        PathBuf::from(mac_path)
    }

    /// Waits (at most 20 s; only a hang fails) until `cond` holds for the world.
    async fn until(&self, what: &str, cond: impl Fn(&World) -> bool) {
        for _ in 0..200 {
            self.advance();
            self.host.console_user().await.unwrap();
            if cond(&self.world()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for {what}; world: {:#?}", self.world());
    }

    fn no_sigterm(&self) {
        self.update(|w| w.edit_behaviour(|b| b.bootout_kills_caller = false));
    }
}

#[tokio::test]
async fn console_user_and_finder() {
    let m = FakeMac::new();
    assert_eq!(m.host.console_user().await.unwrap(), "root");
    assert!(!m.host.finder_running().await.unwrap());
    m.update(|w| {
        w.console_user = "_mbsetupuser".into();
        w.finder_running = true;
    });
    assert_eq!(m.host.console_user().await.unwrap(), "_mbsetupuser");
    assert!(m.host.finder_running().await.unwrap());
    let calls = m.calls();
    assert_eq!(calls[0].tool, "/usr/bin/stat");
    assert_eq!(calls[0].args, ["-f", "%Su", "/dev/console"]);
    assert_eq!(calls[1].tool, "/usr/bin/pgrep");
    assert_eq!(calls[1].args, ["-x", "Finder"]);
    // pgrep prints Finder's pid like the real one, and a bad option is exit 2.
    let (code, out, _) = m.run(mac::PGREP, &["-x", "Finder"]);
    assert_eq!((code, out.trim().parse::<u32>().is_ok()), (0, true));
    assert_eq!(m.run(mac::PGREP, &["-q", "Finder"]).0, 2);
}

#[tokio::test]
async fn user_ids_and_unknown_users() {
    let m = FakeMac::new();
    let uid = m.update(|w| w.add_user("welcome", true, true));
    assert_eq!(uid, 501);
    assert_eq!(m.host.user_id("welcome").await.unwrap(), Some(501));
    assert_eq!(m.host.user_id("ghost").await.unwrap(), None);
    assert_eq!(
        m.run(mac::ID, &["-u", "ghost"]),
        (1, String::new(), "id: ghost: no such user\n".to_owned())
    );
}

#[tokio::test]
async fn secure_token_status() {
    let m = FakeMac::new();
    m.update(|w| {
        w.add_user("welcome", true, true);
        w.add_user("ada", false, false);
    });
    assert!(m.host.has_secure_token("welcome").await.unwrap());
    assert!(!m.host.has_secure_token("ada").await.unwrap());
    // The real tool writes its answer to stderr with an NSLog prefix.
    let (code, out, err) = m.run(mac::SYSADMINCTL, &["-secureTokenStatus", "welcome"]);
    assert_eq!((code, out.as_str()), (0, ""));
    assert!(err.contains(" sysadminctl["), "{err}");
    assert!(
        err.ends_with("] Secure token is ENABLED for user welcome\n"),
        "{err}"
    );
    let e = m.host.has_secure_token("ghost").await.unwrap_err();
    assert!(matches!(e, HostError::Unexpected { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("/usr/sbin/sysadminctl -secureTokenStatus ghost"),
        "{e}"
    );
}

#[tokio::test]
async fn hiding_users() {
    let m = FakeMac::new();
    m.update(|w| w.add_user("welcome", true, true));
    m.host.hide_user("welcome").await.unwrap();
    assert!(m.world().users["welcome"].hidden);
    m.host.show_user("welcome").await.unwrap();
    assert!(!m.world().users["welcome"].hidden);
    assert!(matches!(
        m.host.show_user("-welcome").await,
        Err(HostError::BadName { .. })
    ));
    let e = m.host.hide_user("ghost").await.unwrap_err();
    match &e {
        HostError::Failed {
            command,
            code,
            stderr,
        } => {
            assert_eq!(command, "/usr/bin/dscl . -create /Users/ghost IsHidden 1");
            assert_eq!(*code, 56);
            assert_eq!(stderr, "<dscl_cmd> DS Error: -14136 (eDSRecordNotFound)");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn deleting_users() {
    let m = FakeMac::new();
    m.update(|w| {
        w.add_user("welcome", true, true);
        w.add_user("decrypt", false, false);
        w.add_user("ada", false, false);
        w.console_user = "ada".into();
    });
    m.host.delete_user("decrypt").await.unwrap();
    assert_eq!(m.world().deleted_users, ["decrypt"]);
    // Deleting again is done already.
    m.host.delete_user("decrypt").await.unwrap();

    // The console user cannot be deleted.
    let e = m.host.delete_user("ada").await.unwrap_err();
    assert!(matches!(e, HostError::NotDeleted { .. }), "{e}");
    assert!(e.to_string().contains("logged in"), "{e}");

    // The last Secure Token holder: sysadminctl exits 0 and complains on stderr.
    let (code, _, err) = m.run(mac::SYSADMINCTL, &["-deleteUser", "welcome"]);
    assert_eq!(code, 0);
    assert!(err.contains("Error"), "{err}");
    let e = m.host.delete_user("welcome").await.unwrap_err();
    match &e {
        HostError::NotDeleted { user, detail, .. } => {
            assert_eq!(user, "welcome");
            assert!(detail.contains("last Secure Token holder"), "{detail}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(m.world().users.contains_key("welcome"));

    // Once the employee holds a token too, the setup account can go.
    m.update(|w| w.users.get_mut("ada").unwrap().secure_token = true);
    m.host.delete_user("welcome").await.unwrap();
    assert_eq!(m.world().deleted_users, ["decrypt", "welcome"]);
}

#[tokio::test]
async fn setup_assistant_logout_and_employee_login() {
    let m = FakeMac::new();
    m.update(|w| {
        w.in_setup_assistant("welcome", 200);
        w.employee_logs_in("ada", 60_000);
    });
    assert_eq!(m.host.console_user().await.unwrap(), "_mbsetupuser");
    m.until("the setup account's desktop", |w| {
        w.console_user == "welcome" && w.finder_running
    })
    .await;

    let uid = m.host.user_id("welcome").await.unwrap().unwrap();
    m.host.log_out(uid).await.unwrap();
    assert_eq!(m.host.console_user().await.unwrap(), "root");
    assert!(!m.host.finder_running().await.unwrap());
    // Logging out someone who is not logged in is already done.
    m.host.log_out(uid).await.unwrap();

    // The employee's account appears (the agent creates it), but the login is a minute away.
    m.update(|w| w.add_user("ada", false, false));
    assert_eq!(m.host.console_user().await.unwrap(), "root");
    // A minute passes.
    m.update(|w| w.edit_behaviour(|b| b.logged_out_at_ms = b.logged_out_at_ms.map(|t| t - 60_000)));
    m.advance();
    assert_eq!(m.host.console_user().await.unwrap(), "ada");
    assert!(m.host.finder_running().await.unwrap());
    // macOS granted a Secure Token at first login, since welcome had one.
    assert!(m.host.has_secure_token("ada").await.unwrap());
}

#[tokio::test]
async fn logins_are_visible_on_dev_console_without_running_stat() {
    let m = FakeMac::new();
    let console = m.root.resolve(mac::CONSOLE);
    assert_eq!(std::fs::read_to_string(&console).unwrap(), "root\n");
    let stamp = prestage::host::FileStamp::of(&console);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let waiter = tokio::spawn({
        let console = console.clone();
        async move { prestage::host::wait_for_change_since(&console, stamp, deadline).await }
    });
    m.update(|w| {
        w.add_user("ada", false, false);
        w.console_user = "ada".into();
    });
    assert!(waiter.await.unwrap());
    assert_eq!(std::fs::read_to_string(&console).unwrap(), "ada\n");
    assert_eq!(m.host.processes_spawned(), 0);
}

#[tokio::test]
async fn employee_who_never_logs_in_and_no_token_grant() {
    let m = FakeMac::new();
    m.update(|w| {
        w.add_user("welcome", true, true);
        w.console_user = "welcome".into();
        w.finder_running = true;
        w.add_user("ada", false, false);
        w.employee_logs_in("ada", 0);
        w.edit_behaviour(|b| b.employee_never_logs_in = true);
    });
    m.host.log_out(501).await.unwrap();
    for _ in 0..3 {
        assert_eq!(m.host.console_user().await.unwrap(), "root");
    }
    // The employee logs in after all, on a Mac that does not grant tokens.
    m.update(|w| {
        w.edit_behaviour(|b| {
            b.employee_never_logs_in = false;
            b.grant_secure_token_at_login = false;
        });
    });
    m.advance();
    assert_eq!(m.host.console_user().await.unwrap(), "ada");
    assert!(!m.host.has_secure_token("ada").await.unwrap());
}

#[tokio::test]
async fn agent_kickstart_needs_the_agent() {
    let m = FakeMac::new();
    let e = m.host.kickstart_agent().await.unwrap_err();
    match &e {
        HostError::Failed { command, code, .. } => {
            assert_eq!(
                command,
                "/bin/launchctl kickstart -k system/com.jumpcloud.darwin-agent"
            );
            assert_eq!(*code, 113);
        }
        other => panic!("unexpected {other:?}"),
    }
    let pkg = m.package(
        "/var/tmp/jumpcloud-agent.pkg",
        &FakePackage::jumpcloud_agent(),
    );
    m.host.install_package(&pkg).await.unwrap();
    m.host.kickstart_agent().await.unwrap();
    m.host.kickstart_agent().await.unwrap();
    assert_eq!(m.world().agent_kickstarts, 2);
}

#[tokio::test]
async fn removing_the_daemon_is_idempotent() {
    let m = FakeMac::new();
    m.no_sigterm();
    assert!(m.world().daemon_loaded);
    m.host.remove_daemon().await.unwrap();
    assert!(!m.world().daemon_loaded);
    // Not loaded any more: `Boot-out failed: 113` counts as done.
    m.host.remove_daemon().await.unwrap();
    let (code, _, err) = m.run(mac::LAUNCHCTL, &["bootout", "system/io.prestage.enroll"]);
    assert_eq!(code, 113);
    assert_eq!(
        err,
        "Boot-out failed: 113: Could not find specified service\n"
    );
    // bootstrap loads it again (and twice is the real I/O error).
    let plist = m.root.resolve(mac::LAUNCH_DAEMON);
    std::fs::write(&plist, b"<plist/>").unwrap();
    assert_eq!(
        m.run(mac::LAUNCHCTL, &["bootstrap", "system", mac::LAUNCH_DAEMON])
            .0,
        0
    );
    assert!(m.world().daemon_loaded);
    assert_eq!(
        m.run(mac::LAUNCHCTL, &["bootstrap", "system", mac::LAUNCH_DAEMON])
            .0,
        5
    );
}

#[test]
fn bootout_of_our_daemon_terminates_the_caller() {
    let m = FakeMac::new();
    // A shell stands for the daemon: it runs launchctl, then would print "survived".
    let status = Command::new("/bin/sh")
        .arg("-c")
        .arg(r#""$0" bootout system/io.prestage.enroll; sleep 5; echo survived"#)
        .arg(m.root.tool(mac::LAUNCHCTL))
        .output()
        .unwrap();
    assert_eq!(status.status.signal(), Some(15), "{status:?}");
    assert!(!String::from_utf8_lossy(&status.stdout).contains("survived"));
    assert!(!m.world().daemon_loaded);
}

#[tokio::test]
async fn package_signatures() {
    let m = FakeMac::new();
    let agent = m.package("/var/tmp/agent.pkg", &FakePackage::jumpcloud_agent());
    let sig = m.host.package_signature(&agent).await.unwrap();
    assert_eq!(
        sig.status,
        "signed by a developer certificate issued by Apple for distribution"
    );
    assert_eq!(
        sig.chain[0],
        "Developer ID Installer: JUMPCLOUD INC. (N985MXSH85)"
    );
    assert!(sig.is_signed_by("Developer ID Installer: JumpCloud"));
    assert_eq!(sig.chain.len(), 3);

    let unsigned = m.package(
        "/var/tmp/unsigned.pkg",
        &FakePackage {
            signer: None,
            ..FakePackage::jumpcloud_agent()
        },
    );
    let sig = m.host.package_signature(&unsigned).await.unwrap();
    assert_eq!(sig.status, "no signature");
    assert!(!sig.is_signed_by("Developer ID Installer: JumpCloud"));
    let (code, out, _) = m.run(
        mac::PKGUTIL,
        &["--check-signature", "/var/tmp/unsigned.pkg"],
    );
    assert_eq!(code, 1);
    assert_eq!(out, "Package \"unsigned.pkg\":\n   Status: no signature\n");

    // A real path under the root works as well as the macOS path.
    let real = m.root.resolve("/var/tmp/agent.pkg");
    assert!(m.host.package_signature(&real).await.is_ok());

    std::fs::write(m.root.resolve("/var/tmp/junk.pkg"), b"\x00\x01junk").unwrap();
    let e = m
        .host
        .package_signature(Path::new("/var/tmp/junk.pkg"))
        .await
        .unwrap_err();
    assert!(matches!(e, HostError::Failed { code: 1, .. }), "{e}");
}

#[tokio::test]
async fn installing_packages() {
    let m = FakeMac::new();
    let agent = m.package("/var/tmp/agent.pkg", &FakePackage::jumpcloud_agent());
    m.host.install_package(&agent).await.unwrap();
    assert_eq!(
        m.world().installed_packages,
        ["com.jumpcloud.pkg.JumpCloudAgent"]
    );
    let call = m.calls().pop().unwrap();
    assert_eq!(call.tool, "/usr/sbin/installer");
    assert_eq!(call.args, ["-pkg", "/var/tmp/agent.pkg", "-target", "/"]);

    // swiftDialog's package installs the dialog launcher.
    let dialog = m.package(
        "/var/tmp/dialog.pkg",
        &FakePackage {
            identifier: DIALOG_PACKAGE_ID.into(),
            version: "2.5.6".into(),
            signer: Some("Developer ID Installer: Bart Reardon (PWA5E9TQ59)".into()),
        },
    );
    assert!(!m.root.tool(mac::DIALOG).exists());
    m.host.install_package(&dialog).await.unwrap();
    assert_eq!(
        std::fs::read_link(m.root.tool(mac::DIALOG)).unwrap(),
        m.root.resolve(prestage::host::fake::SHIM)
    );

    let e = m
        .host
        .install_package(Path::new("/var/tmp/missing.pkg"))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("installer: Error - the package path specified was invalid"),
        "{e}"
    );
    let error = "An error occurred while running scripts from the package";
    m.update(|w| w.edit_behaviour(|b| b.install_error = Some(error.into())));
    let e = m.host.install_package(&agent).await.unwrap_err();
    assert!(e.to_string().contains("running scripts"), "{e}");
}

#[tokio::test]
async fn clock_sync() {
    let m = FakeMac::new();
    m.host.sync_clock("time.apple.com").await.unwrap();
    let (code, out, _) = m.run(mac::SNTP, &["-sS", "time.apple.com"]);
    assert_eq!(code, 0);
    assert!(out.contains(" time.apple.com "), "{out}");
    m.update(|w| w.edit_behaviour(|b| b.sntp_unreachable = true));
    let e = m.host.sync_clock("time.apple.com").await.unwrap_err();
    assert!(
        e.to_string().contains("/usr/bin/sntp -sS time.apple.com"),
        "{e}"
    );
}

fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
    stat.is_ok_and(|s| {
        s.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

#[tokio::test]
async fn caffeinate_ends_with_its_process() {
    let m = FakeMac::new();
    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    let caffeinate = m.host.keep_awake(sleeper.id()).await.unwrap();
    let pid = caffeinate.pid.unwrap();
    // It waits while the process lives...
    m.until("caffeinate's call record", |_| {
        world::calls(&m.root)
            .unwrap()
            .iter()
            .any(|c| c.tool == mac::CAFFEINATE)
    })
    .await;
    assert!(alive(pid));
    let call = m
        .calls()
        .into_iter()
        .find(|c| c.tool == mac::CAFFEINATE)
        .unwrap();
    assert_eq!(call.args, ["-dimsu", "-w", &sleeper.id().to_string()]);
    // ...and ends soon after it.
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    for _ in 0..200 {
        if !alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("caffeinate outlived its process");
}

#[tokio::test]
async fn processes_spawned_counts_every_tool() {
    let m = FakeMac::new();
    m.update(|w| w.add_user("decrypt", false, false));
    assert_eq!(m.host.processes_spawned(), 0);
    m.host.console_user().await.unwrap();
    m.host.finder_running().await.unwrap();
    m.host.user_id("nobody2").await.unwrap();
    assert_eq!(m.host.processes_spawned(), 3);
    // Deleting checks the result with `id -u`: two processes.
    m.host.delete_user("decrypt").await.unwrap();
    assert_eq!(m.host.processes_spawned(), 5);
    assert_eq!(m.calls().len(), 5);
    // A clone shares the counter.
    let clone = m.host.clone();
    clone.sync_clock("time.apple.com").await.unwrap();
    assert_eq!(m.host.processes_spawned(), 6);
}

#[tokio::test]
async fn hung_tools_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    let stat = root.tool(mac::STAT);
    std::fs::create_dir_all(stat.parent().unwrap()).unwrap();
    std::fs::write(&stat, "#!/bin/sh\nexec sleep 60\n").unwrap();
    std::fs::set_permissions(&stat, std::fs::Permissions::from_mode(0o755)).unwrap();
    let host = MacHost::new(root).with_timeouts(Duration::from_secs(1), Duration::from_secs(1));
    let e = host.console_user().await.unwrap_err();
    assert!(
        matches!(&e, HostError::TimedOut { command, seconds: 1 } if command == "/usr/bin/stat -f %Su /dev/console"),
        "{e}"
    );
}

#[tokio::test]
async fn missing_tools_are_spawn_errors() {
    let dir = tempfile::tempdir().unwrap();
    let host = MacHost::new(Root::new(dir.path()));
    let e = host.console_user().await.unwrap_err();
    assert!(
        matches!(&e, HostError::Spawn { tool, .. } if tool == "/usr/bin/stat"),
        "{e}"
    );
}

#[test]
fn dispatch_only_under_a_fake_root() {
    let m = FakeMac::new();
    // pgrep with Finder not running prints nothing and exits 1.
    let tool = m.root.tool(mac::PGREP);
    let args = ["-x".to_owned(), "Finder".to_owned()];
    assert_eq!(dispatch(&tool, &args), Some(1));
    std::fs::remove_dir_all(m.root.resolve("/.fakemac")).unwrap();
    assert_eq!(dispatch(&tool, &args), None);
}

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

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
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

#[test]
fn fake_world_behaviour_round_trips() {
    let mut w = World::default();
    assert_eq!(w.behaviour(), Behaviour::default());
    assert!(w.behaviour().bootout_kills_caller);
    assert!(w.behaviour().grant_secure_token_at_login);
    w.edit_behaviour(|b| b.sntp_unreachable = true);
    let text = serde_json::to_string(&w).unwrap();
    let back: World = serde_json::from_str(&text).unwrap();
    assert!(back.behaviour().sntp_unreachable);
}

#[tokio::test]
async fn bad_account_names_never_reach_a_tool() {
    let m = FakeMac::new();
    for name in ["-deleteUser", "../etc", "ada lovelace", ""] {
        let e = m.host.hide_user(name).await.unwrap_err();
        assert!(matches!(e, HostError::BadName { .. }), "{e}");
        assert!(m.host.delete_user(name).await.is_err());
    }
    assert!(m.host.sync_clock("-q").await.is_err());
    assert_eq!(m.host.processes_spawned(), 0);
    assert!(m.calls().is_empty());
}

/// Writes an executable shell script as the tool at `mac_path` under `root`.
fn shell_tool(root: &Root, mac_path: &str, body: &str) {
    let path = root.tool(mac_path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The simplest fakes an outside tester would write from SPEC §4 alone (no `.fakemac` world):
/// `id -u` exits 1 without a word for an unknown user, `sysadminctl` writes only its status line
/// on stderr, `pkgutil` prints REFERENCE.md's layout. `MacHost` must read them all.
#[tokio::test]
async fn minimal_outside_fakes_are_understood() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    let users = root.resolve("/users");
    std::fs::create_dir_all(&users).unwrap();
    std::fs::write(users.join("welcome"), "501").unwrap();
    let u = users.display();
    shell_tool(&root, mac::STAT, "echo welcome\n");
    shell_tool(
        &root,
        mac::ID,
        &format!("[ -f '{u}'/\"$2\" ] || exit 1\ncat '{u}'/\"$2\"; echo\n"),
    );
    shell_tool(
        &root,
        mac::SYSADMINCTL,
        &format!(
            "case \"$1\" in\n\
             -secureTokenStatus) echo \"2024-01-01 12:00:00.000 sysadminctl[1:2] Secure token is ENABLED for user $2\" >&2 ;;\n\
             -deleteUser) rm -f '{u}'/\"$2\" ;;\n\
             *) exit 1 ;;\n\
             esac\n"
        ),
    );
    let host = MacHost::new(root.clone());
    assert_eq!(host.console_user().await.unwrap(), "welcome");
    assert_eq!(host.user_id("welcome").await.unwrap(), Some(501));
    assert_eq!(host.user_id("ghost").await.unwrap(), None);
    assert!(host.has_secure_token("welcome").await.unwrap());
    host.delete_user("welcome").await.unwrap();
    assert_eq!(host.user_id("welcome").await.unwrap(), None);

    // pkgutil: trusted only with exit 0 (SPEC §4: "exit 0 and `Developer ID Installer:
    // JumpCloud` in its chain").
    let signed = "Package \"agent.pkg\":\n   Status: signed by a developer certificate issued by Apple for distribution\n   Certificate Chain:\n    1. Developer ID Installer: JUMPCLOUD INC. (N985MXSH85)\n    2. Developer ID Certification Authority\n    3. Apple Root CA\n";
    let exit = root.resolve("/pkgutil-exit");
    std::fs::write(&exit, "0").unwrap();
    shell_tool(
        &root,
        mac::PKGUTIL,
        &format!("printf '%s' '{signed}'\nexit $(cat '{}')\n", exit.display()),
    );
    let pkg = Path::new("/var/tmp/agent.pkg");
    let sig = host.package_signature(pkg).await.unwrap();
    assert!(sig.is_developer_id_of("N985MXSH85"), "{sig:?}");
    assert!(sig.is_signed_by("Developer ID Installer: JumpCloud"));
    std::fs::write(&exit, "1").unwrap();
    let sig = host.package_signature(pkg).await.unwrap();
    assert!(!sig.is_developer_id_of("N985MXSH85"), "{sig:?}");
    assert!(sig.status.contains("pkgutil exited 1"), "{sig:?}");
}

#[tokio::test]
async fn the_console_user_is_read_again_only_after_dev_console_changed() {
    use std::os::unix::fs::MetadataExt;
    let m = FakeMac::new();
    let stats = || m.calls().iter().filter(|c| c.tool == mac::STAT).count();
    for _ in 0..5 {
        assert_eq!(m.host.console_user().await.unwrap(), "root");
    }
    assert_eq!(stats(), 1, "one stat while /dev/console did not change");
    let uid = m.update(|w| {
        let uid = w.add_user("ada", false, false);
        w.console_user = "ada".into();
        uid
    });
    // Like macOS, the fake Mac's console device belongs to the console user (when the fakes
    // may chown, i.e. run as root).
    let console = m.root.resolve(mac::CONSOLE);
    if rustix::process::geteuid().is_root() {
        assert_eq!(std::fs::metadata(&console).unwrap().uid(), uid);
    }
    assert_eq!(m.host.console_user().await.unwrap(), "ada");
    assert_eq!(m.host.console_user().await.unwrap(), "ada");
    assert_eq!(stats(), 2, "one more stat after the login");
}
