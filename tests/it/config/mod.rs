//! Integration tests: configuration (`prestage::config`): `config check` on the examples and on
//! every bad fixture, bad inputs made at test time, binary plists, managed-over-local merging,
//! the secrets rules, redaction, and `config import` of a filled-in bash template.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use prestage::config::{check_command, check_command_with, LoadOptions};

mod check;
mod import;
mod sources;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/config").join(name)
}

/// The string ids our tests pretend the UI knows.
fn known(id: &str) -> bool {
    ["welcome.title", "done.message"].contains(&id)
}

fn me() -> LoadOptions {
    LoadOptions {
        expected_owner: rustix::process::getuid().as_raw(),
    }
}

/// Runs `config check` as the binary would (root expected) and returns (exit code, output).
fn check(file: &Path) -> (i32, String) {
    let mut out = Vec::new();
    let code = check_command(file, false, &known, &mut out);
    (code, String::from_utf8(out).unwrap())
}

fn check_as_me(file: &Path, allow: bool) -> (i32, String) {
    let mut out = Vec::new();
    let code = check_command_with(file, allow, &known, me(), &mut out);
    (code, String::from_utf8(out).unwrap())
}

fn write_mode(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    p
}

const PLIST_HEAD: &str =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">\n<dict>\n";
const PLIST_TAIL: &str = "</dict>\n</plist>\n";
const CONNECT: &str =
    "<key>ConnectKey</key><string>0123456789abcdef0123456789abcdef01234567</string>\n";

fn plist(body: &str) -> Vec<u8> {
    format!("{PLIST_HEAD}{body}{PLIST_TAIL}").into_bytes()
}
