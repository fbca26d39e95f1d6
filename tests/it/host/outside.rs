//! The fake world itself, bad account names, minimal fakes written by others, and re-reading
//! the console user.

use super::{shell_tool, FakeMac};
use prestage::host::fake::world::{Behaviour, World};
use prestage::host::{Host, HostError, MacHost};
use prestage::paths::{mac, Root};
use std::path::Path;

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
