//! The console user without `stat` after a login to an account whose UID is known (issue 11).

use std::path::Path;

use prestage::host::fake::install_fake_tools;
use prestage::host::fake::world::{self, World};
use prestage::host::{Host, MacHost};
use prestage::paths::{mac, Root};

const EXE: &str = env!("CARGO_BIN_EXE_prestage-fake");

#[tokio::test]
async fn a_login_to_a_known_uid_is_named_without_running_stat() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    install_fake_tools(&root, Path::new(EXE)).unwrap();
    let host = MacHost::new(root.clone());
    let stats = || {
        world::calls(&root)
            .unwrap()
            .iter()
            .filter(|c| c.tool == mac::STAT)
            .count()
    };
    let login = |name: &str| {
        World::update(&root, |w| name.clone_into(&mut w.console_user)).unwrap();
    };
    // Only a fake run as root can chown the console device, as loginwindow does on a Mac; a
    // console file whose owner never moves always costs the tool (the module doc).
    let owner_moves = rustix::process::geteuid().is_root();

    World::update(&root, |w| {
        w.add_user("welcome", true, true);
        w.add_user("ada", false, false);
        w.add_user("bob", false, false);
        w.console_user = "welcome".into();
    })
    .unwrap();
    assert_eq!(host.console_user().await.unwrap(), "welcome");
    assert_eq!(stats(), 1, "the first look runs the tool");
    let ada = host.user_id("ada").await.unwrap().unwrap();
    assert!(ada > 0);

    // The setup account logs out: /dev/console goes back to root (UID 0).
    login("root");
    assert_eq!(host.console_user().await.unwrap(), "root");
    let after_logout = if owner_moves { 1 } else { 2 };
    assert_eq!(stats(), after_logout, "UID 0 is root on every Mac");

    // The employee, whose UID `id -u` printed, logs in.
    login("ada");
    assert_eq!(host.console_user().await.unwrap(), "ada");
    assert_eq!(host.console_user().await.unwrap(), "ada");
    let after_login = if owner_moves { 1 } else { 3 };
    assert_eq!(stats(), after_login, "ada's UID was known from id -u");

    // Someone whose UID was never asked for: the tool names them.
    login("bob");
    assert_eq!(host.console_user().await.unwrap(), "bob");
    assert_eq!(stats(), after_login + 1);

    // An account that is gone forgets its UID: a new account may get it.
    World::update(&root, |w| {
        w.users.remove("ada");
    })
    .unwrap();
    assert_eq!(host.user_id("ada").await.unwrap(), None);
    World::update(&root, |w| {
        w.add_user("carol", false, false);
        // The next account created takes the UID ada had.
        if let Some(u) = w.users.get_mut("carol") {
            u.uid = ada;
        }
        w.console_user = "carol".into();
    })
    .unwrap();
    assert_eq!(host.console_user().await.unwrap(), "carol");
    assert_eq!(
        stats(),
        after_login + 2,
        "a forgotten UID runs the tool again"
    );
}
