//! Integration tests: `MacHost` against the fake macOS tools installed into a temporary root
//! (the `prestage` binary itself, invoked under the tools' paths), and the agent's files.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use prestage::host::fake::install_fake_tools;
use prestage::host::fake::world::{self, Call, FakePackage, World};
use prestage::host::{Host, MacHost};
use prestage::paths::Root;

mod agent_files;
mod outside;
mod tools;

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

fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
    stat.is_ok_and(|s| {
        s.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
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

/// Writes an executable shell script as the tool at `mac_path` under `root`.
fn shell_tool(root: &Root, mac_path: &str, body: &str) {
    let path = root.tool(mac_path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
