//! Integration tests: packaging. The LaunchDaemon, the installer scripts, the uninstaller,
//! `build-pkg.sh --dry-run` and the example configuration profile, checked on Linux against
//! SPEC §1 (paths come from `prestage::paths::mac`, so a change there shows up here).
//!
//! The shell scripts run for real against a temporary tree standing for the Mac's `/`, selected
//! with `PRESTAGE_TOOLS_ROOT`. The macOS tools they call are prestage's own fakes
//! (`prestage::host::fake`: the `prestage` binary linked under the tools' paths, sharing one
//! fake launchd and receipt database in the world file), so the tests assert on the fake Mac's
//! state and on its record of every call. Only `chown`, which prestage never runs and so does
//! not fake, is a tiny recording shell script.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use prestage::host::fake::install_fake_tools;
use prestage::host::fake::world::{self, World};
use prestage::paths::{mac, Root};
use tempfile::TempDir;

mod build;
mod profile;
mod scripts;

/// The fake macOS tools (one multi-call binary).
const FAKES: &str = env!("CARGO_BIN_EXE_prestage-fake");

const DAEMON_TEMPLATE: &str = "launchd/io.prestage.enroll.plist";

const PROFILE: &str = "packaging/profile/io.prestage.enroll.mobileconfig";

const SCHEMA: &str = "packaging/profile/io.prestage.enroll.schema.json";

const SCRIPTS: &[&str] = &[
    "packaging/build-pkg.sh",
    "packaging/uninstall.sh",
    "packaging/scripts/preinstall",
    "packaging/scripts/postinstall",
    ".ci/run",
    ".ci/mac-check",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Everything needed to understand a failed script run.
fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn write(path: &Path, text: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Every file and link (not directory) under `dir`, relative to it, but the fake world's own
/// bookkeeping (`/.fakemac`: world file, lock, call log), which a real Mac does not have.
fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                walk(base, &path, out);
            } else {
                out.insert(path.strip_prefix(base).unwrap().to_path_buf());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    let bookkeeping = Root::new(dir).resolve(world::WORLD_DIR);
    let bookkeeping = bookkeeping.strip_prefix(dir).unwrap();
    out.retain(|p| !p.starts_with(bookkeeping));
    out
}

/// A temporary Mac: `root` stands for `/`, with prestage's fake macOS tools installed and a
/// recording fake `chown`. The chown log lives outside the root, so it never counts as a file
/// left behind.
struct FakeMac {
    _dir: TempDir,
    root: PathBuf,
    chowns: PathBuf,
}

impl FakeMac {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("mac");
        let outside = dir.path().join("outside");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&outside).unwrap();
        let mac = Self {
            _dir: dir,
            chowns: outside.join("chown.log"),
            root,
        };
        install_fake_tools(&mac.mac_root(), Path::new(FAKES)).unwrap();
        mac.update(|w| {
            // A Mac prestage was never installed on.
            w.daemon_loaded = false;
            // The scripts are launchctl's callers here, not the daemon it stops: the real
            // `bootout` signals the job, never its caller.
            w.edit_behaviour(|b| b.bootout_kills_caller = false);
        });
        let chown = format!(
            "#!/bin/sh\necho \"chown $*\" >> '{}'\n",
            mac.chowns.display()
        );
        write(&mac.root.join("usr/sbin/chown"), &chown, 0o755);
        mac
    }

    fn mac_root(&self) -> Root {
        Root::new(&self.root)
    }

    fn path(&self, mac_path: &str) -> PathBuf {
        self.mac_root().resolve(mac_path)
    }

    fn world(&self) -> World {
        World::load(&self.mac_root()).unwrap()
    }

    fn update<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        World::update(&self.mac_root(), f).unwrap()
    }

    /// Whether prestage's daemon is loaded in the fake launchd.
    fn is_loaded(&self) -> bool {
        self.world().daemon_loaded
    }

    fn set_loaded(&self, loaded: bool) {
        self.update(|w| w.daemon_loaded = loaded);
    }

    /// Makes the fake launchd refuse to bootstrap prestage's daemon.
    fn refuse_bootstrap(&self) {
        self.update(|w| w.edit_behaviour(|b| b.bootstrap_fails = true));
    }

    /// Every call of the fake tools, as `name arg...` (the fakes' own record), then the
    /// `chown` calls.
    fn calls(&self) -> Vec<String> {
        let mut calls: Vec<String> = world::calls(&self.mac_root())
            .unwrap()
            .into_iter()
            .map(|c| {
                let name = Path::new(&c.tool).file_name().unwrap().to_str().unwrap();
                std::iter::once(name.to_owned())
                    .chain(c.args)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let chowns = fs::read_to_string(&self.chowns).unwrap_or_default();
        calls.extend(chowns.lines().map(str::to_owned));
        calls
    }

    fn calls_of(&self, tool: &str) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.starts_with(&format!("{tool} ")))
            .collect()
    }

    /// Runs one fake tool the way a script does, returning (code, stdout, stderr).
    fn run_tool(&self, tool: &str, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(self.mac_root().tool(tool))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    fn lay_payload(&self) {
        lay_payload(&self.root);
    }

    /// Runs an installer script the way installer(8) does: package path, install location,
    /// target volume.
    fn run_installer_script(&self, script: &str, target_volume: &Path) -> Output {
        Command::new("bash")
            .arg(repo().join("packaging/scripts").join(script))
            .arg("/tmp/prestage.pkg")
            .arg("/")
            .arg(target_volume)
            .env("PRESTAGE_TOOLS_ROOT", &self.root)
            .output()
            .unwrap()
    }

    /// Runs the uninstaller: the repository's copy, or with `installed` the copy the package
    /// put under the root (which deletes itself while it runs).
    fn run_uninstall(&self, target_volume: &Path, installed: bool) -> Output {
        let script = if installed {
            self.path("/usr/local/libexec/prestage/uninstall.sh")
        } else {
            repo().join("packaging/uninstall.sh")
        };
        Command::new("bash")
            .arg(script)
            .arg(target_volume)
            .env("PRESTAGE_TOOLS_ROOT", &self.root)
            .output()
            .unwrap()
    }
}

/// What the package's payload lays down under `root`, with deliberately wrong modes so the
/// tests see postinstall fix them.
fn lay_payload(root: &Path) {
    let at = |p: &str| Root::new(root).resolve(p);
    let libexec = at(mac::BINARY).parent().unwrap().to_path_buf();
    write(&at(mac::BINARY), "#!/bin/sh\nexit 0\n", 0o777);
    fs::set_permissions(&libexec, fs::Permissions::from_mode(0o777)).unwrap();
    let uninstall = fs::read_to_string(repo().join("packaging/uninstall.sh")).unwrap();
    write(&libexec.join("uninstall.sh"), &uninstall, 0o700);
    write(&libexec.join("swiftDialog.pkg"), "xar!", 0o666);
    let daemon = fs::read_to_string(repo().join(DAEMON_TEMPLATE)).unwrap();
    write(&at(mac::LAUNCH_DAEMON), &daemon, 0o666);
    write(&at(mac::LOCAL_CONFIG), "<plist/>", 0o644);
    let link = at(mac::BINARY_LINK);
    fs::create_dir_all(link.parent().unwrap()).unwrap();
    symlink("../libexec/prestage/prestage", &link).unwrap();
}

// ---------------------------------------------------------------------------------------------
// build-pkg.sh

/// Quotes like build-pkg.sh's `quote`: bare when only safe characters, else single quotes.
fn sh_quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c));
    if safe {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn plus(args: &[&str]) -> String {
    let words: Vec<String> = args.iter().map(|a| sh_quote(a)).collect();
    format!("+ {}", words.join(" "))
}

fn build_pkg(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(repo().join("packaging/build-pkg.sh"))
        .args(args)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("MACOSX_DEPLOYMENT_TARGET")
        .output()
        .unwrap()
}

const APP_ID: &str = "Developer ID Application: Example Corp (ABCDE12345)";

const INSTALLER_ID: &str = "Developer ID Installer: Example Corp (ABCDE12345)";

// ---------------------------------------------------------------------------------------------
// Configuration profile and schema

/// The `mcx_preference_settings` dictionary of the example profile's `io.prestage.enroll`
/// payload, as a plist value.
fn profile_settings(profile: &Path) -> plist::Value {
    let value = plist::Value::from_file(profile).unwrap();
    let payloads = value.as_dictionary().unwrap()["PayloadContent"]
        .as_array()
        .unwrap();
    let prefs = payloads
        .iter()
        .find(|p| {
            p.as_dictionary().unwrap()["PayloadType"].as_string()
                == Some("com.apple.ManagedClient.preferences")
        })
        .expect("a Custom Settings payload");
    let domain = &prefs.as_dictionary().unwrap()["PayloadContent"]
        .as_dictionary()
        .unwrap()[mac::LABEL];
    let forced = domain.as_dictionary().unwrap()["Forced"]
        .as_array()
        .unwrap();
    assert_eq!(forced.len(), 1);
    forced[0].as_dictionary().unwrap()["mcx_preference_settings"].clone()
}

/// Writes the example profile's settings to a plist file in `dir`, as macOS would write them
/// to `/Library/Managed Preferences/io.prestage.enroll.plist`.
fn extract_profile_settings(dir: &Path) -> PathBuf {
    let path = dir.join("io.prestage.enroll.plist");
    profile_settings(&repo().join(PROFILE))
        .to_file_xml(&path)
        .unwrap();
    path
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Checks that every key of `settings` (recursively) is a property in `schema`.
fn check_keys_in_schema(settings: &plist::Dictionary, schema: &serde_json::Value, at: &str) {
    let props = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no properties for {at} in the schema"));
    for (key, value) in settings {
        let path = format!("{at}{key}");
        let prop = props
            .get(key)
            .unwrap_or_else(|| panic!("{path} is not in the schema"));
        if let (Some(dict), Some(_)) = (value.as_dictionary(), prop.get("properties")) {
            check_keys_in_schema(dict, prop, &format!("{path}."));
        }
    }
}
