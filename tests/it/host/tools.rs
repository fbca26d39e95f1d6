//! `MacHost` against the fake macOS tools installed into a temporary root: accounts, logins,
//! packages, the clock, caffeinate, hung and missing tools.

use super::{alive, FakeMac};
use prestage::host::fake::dispatch;
use prestage::host::fake::world::{self, FakePackage, DIALOG_PACKAGE_ID};
use prestage::host::{Host, HostError, MacHost};
use prestage::paths::{mac, Root};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

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
