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
// LaunchDaemon

#[test]
fn launch_daemon_matches_spec() {
    let path = repo().join(DAEMON_TEMPLATE);
    let value = plist::Value::from_file(&path).unwrap();
    let dict = value.as_dictionary().expect("top level is a dictionary");

    assert_eq!(
        path.file_stem().unwrap(),
        mac::LABEL,
        "file named after the label"
    );
    assert_eq!(
        Path::new(mac::LAUNCH_DAEMON).file_name(),
        path.file_name(),
        "installed under the same name"
    );
    assert_eq!(dict["Label"].as_string(), Some(mac::LABEL));
    let args: Vec<&str> = dict["ProgramArguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_string().unwrap())
        .collect();
    assert_eq!(args, [mac::BINARY, "run"]);
    assert_eq!(dict["RunAtLoad"].as_boolean(), Some(true));

    // Restart only after a failed exit: KeepAlive is exactly {SuccessfulExit = false}.
    let keep_alive = dict["KeepAlive"].as_dictionary().expect("KeepAlive dict");
    assert_eq!(keep_alive.len(), 1, "only SuccessfulExit: {keep_alive:?}");
    assert_eq!(keep_alive["SuccessfulExit"].as_boolean(), Some(false));

    // Exit 78 (configuration invalid) is restarted too: the throttle keeps that to one start
    // a minute or less, without making a real failure wait for minutes.
    let throttle = dict["ThrottleInterval"].as_signed_integer().unwrap();
    assert!(
        (30..=300).contains(&throttle),
        "ThrottleInterval {throttle}"
    );
    assert_eq!(dict["AbandonProcessGroup"].as_boolean(), Some(true));
    assert_eq!(dict["StandardOutPath"].as_string(), Some(mac::LOG_FILE));
    assert_eq!(dict["StandardErrorPath"].as_string(), Some(mac::LOG_FILE));
    let exit_timeout = dict["ExitTimeOut"].as_signed_integer().unwrap();
    assert!(exit_timeout >= 20, "time to persist state on SIGTERM");

    // No other keys sneak in (UserName would drop root; WatchPaths would restart after success).
    let keys: BTreeSet<&str> = dict.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = [
        "Label",
        "ProgramArguments",
        "RunAtLoad",
        "KeepAlive",
        "ThrottleInterval",
        "AbandonProcessGroup",
        "ExitTimeOut",
        "ProcessType",
        "StandardOutPath",
        "StandardErrorPath",
    ]
    .into();
    assert_eq!(keys, expected);
    assert_eq!(dict["ProcessType"].as_string(), Some("Interactive"));
}

#[test]
fn product_requirements_name_both_architectures() {
    let value = plist::Value::from_file(repo().join("packaging/requirements.plist")).unwrap();
    let dict = value.as_dictionary().unwrap();
    let arch: Vec<&str> = dict["arch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_string().unwrap())
        .collect();
    assert_eq!(arch, ["arm64", "x86_64"]);
    assert_eq!(dict["os"].as_array().unwrap()[0].as_string(), Some("11.0"));
}

// ---------------------------------------------------------------------------------------------
// Installer scripts

#[test]
fn postinstall_on_boot_volume_sets_owners_and_modes_then_bootstraps() {
    let mac = FakeMac::new();
    mac.lay_payload();

    let out = mac.run_installer_script("postinstall", &mac.root);
    assert!(out.status.success(), "{}", describe("postinstall", &out));

    let libexec = mac.path(mac::BINARY).parent().unwrap().to_path_buf();
    let expected_modes = [
        (libexec.clone(), 0o755),
        (mac.path(mac::BINARY), 0o755),
        (libexec.join("uninstall.sh"), 0o755),
        (libexec.join("swiftDialog.pkg"), 0o644),
        (mac.path(mac::LAUNCH_DAEMON), 0o644),
        (mac.path(mac::LOCAL_CONFIG), 0o600),
        (mac.path(mac::STATE_DIR), 0o700),
        (mac.path(mac::LOG_FILE), 0o640),
    ];
    for (path, want) in &expected_modes {
        assert_eq!(mode(path), *want, "mode of {}", path.display());
    }

    let chowns: BTreeSet<String> = mac.calls_of("chown").into_iter().collect();
    let mut expected_chowns: BTreeSet<String> = expected_modes
        .iter()
        .map(|(p, _)| format!("chown root:wheel {}", p.display()))
        .collect();
    expected_chowns.insert(format!(
        "chown -h root:wheel {}",
        mac.path(mac::BINARY_LINK).display()
    ));
    assert_eq!(chowns, expected_chowns);
    assert!(
        fs::symlink_metadata(mac.path(mac::BINARY_LINK))
            .unwrap()
            .is_symlink(),
        "the link stays a link"
    );

    let label = format!("system/{}", mac::LABEL);
    assert_eq!(
        mac.calls_of("launchctl"),
        [
            format!("launchctl enable {label}"),
            format!("launchctl print {label}"),
            format!(
                "launchctl bootstrap system {}",
                mac.path(mac::LAUNCH_DAEMON).display()
            ),
        ]
    );
    // The fake's own record of the bootstrap: the tool's macOS path and the real plist path
    // under the root that the script passes.
    let bootstrap = world::calls(&mac.mac_root())
        .unwrap()
        .into_iter()
        .find(|c| c.args.first().map(String::as_str) == Some("bootstrap"))
        .unwrap();
    assert_eq!(bootstrap.tool, mac::LAUNCHCTL);
    assert_eq!(
        bootstrap.args,
        [
            "bootstrap".to_owned(),
            "system".to_owned(),
            mac.path(mac::LAUNCH_DAEMON).display().to_string()
        ]
    );
    assert!(mac.is_loaded(), "launchd has the daemon loaded");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("started system/io.prestage.enroll"),
        "{}",
        describe("postinstall", &out)
    );
}

#[test]
fn postinstall_on_another_volume_fixes_modes_but_does_not_load_the_daemon() {
    let mac = FakeMac::new();
    let volume = tempfile::tempdir().unwrap();
    lay_payload(volume.path());
    let on_volume = |p: &str| Root::new(volume.path()).resolve(p);

    // Trailing slash as installer passes volume paths ("/Volumes/Macintosh HD/").
    let target = PathBuf::from(format!("{}/", volume.path().display()));
    let out = mac.run_installer_script("postinstall", &target);
    assert!(out.status.success(), "{}", describe("postinstall", &out));
    assert_eq!(mode(&on_volume(mac::LOCAL_CONFIG)), 0o600);
    assert_eq!(mode(&on_volume(mac::LAUNCH_DAEMON)), 0o644);
    assert_eq!(mode(&on_volume(mac::STATE_DIR)), 0o700);
    assert!(mac.calls_of("launchctl").is_empty(), "{:?}", mac.calls());
    assert!(!mac.is_loaded());
}

#[test]
fn postinstall_refuses_an_incomplete_payload() {
    let mac = FakeMac::new();
    mac.lay_payload();
    fs::remove_file(mac.path(mac::BINARY)).unwrap();

    let out = mac.run_installer_script("postinstall", &mac.root);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        describe("postinstall", &out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("payload is incomplete"),
        "{}",
        describe("postinstall", &out)
    );
    assert!(mac.calls_of("launchctl").is_empty());
}

#[test]
fn postinstall_leaves_an_already_loaded_daemon_running() {
    let mac = FakeMac::new();
    mac.lay_payload();
    mac.set_loaded(true);

    let out = mac.run_installer_script("postinstall", &mac.root);
    assert!(out.status.success(), "{}", describe("postinstall", &out));
    let label = format!("system/{}", mac::LABEL);
    assert_eq!(
        mac.calls_of("launchctl"),
        [
            format!("launchctl enable {label}"),
            format!("launchctl print {label}"),
        ],
        "no second bootstrap of a loaded job"
    );
}

#[test]
fn postinstall_fails_with_a_fix_when_launchd_keeps_refusing() {
    let mac = FakeMac::new();
    mac.lay_payload();
    mac.refuse_bootstrap();

    // Takes a few seconds: the script waits between its three attempts.
    let out = mac.run_installer_script("postinstall", &mac.root);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        describe("postinstall", &out)
    );
    let bootstraps = mac
        .calls_of("launchctl")
        .into_iter()
        .filter(|c| c.starts_with("launchctl bootstrap "))
        .count();
    assert_eq!(bootstraps, 3, "{:?}", mac.calls());
    assert!(!mac.is_loaded(), "launchd never loaded it");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("sudo launchctl bootstrap system"),
        "{}",
        describe("postinstall", &out)
    );
    // The files are in place all the same, so a reboot starts prestage.
    assert_eq!(mode(&mac.path(mac::LAUNCH_DAEMON)), 0o644);
}

#[test]
fn preinstall_stops_a_running_prestage() {
    let mac = FakeMac::new();
    mac.set_loaded(true);

    let out = mac.run_installer_script("preinstall", &mac.root);
    assert!(out.status.success(), "{}", describe("preinstall", &out));
    let label = format!("system/{}", mac::LABEL);
    assert_eq!(
        mac.calls_of("launchctl"),
        [
            format!("launchctl print {label}"),
            format!("launchctl bootout {label}"),
            format!("launchctl print {label}"),
        ]
    );
    assert!(!mac.is_loaded());
}

#[test]
fn preinstall_without_a_running_prestage_only_looks() {
    let mac = FakeMac::new();
    let out = mac.run_installer_script("preinstall", &mac.root);
    assert!(out.status.success(), "{}", describe("preinstall", &out));
    assert_eq!(
        mac.calls_of("launchctl"),
        [format!("launchctl print system/{}", mac::LABEL)]
    );

    // On a volume other than the running system there is nothing to stop.
    let other = tempfile::tempdir().unwrap();
    mac.set_loaded(true);
    let out = mac.run_installer_script("preinstall", other.path());
    assert!(out.status.success(), "{}", describe("preinstall", &out));
    assert_eq!(mac.calls_of("launchctl").len(), 1, "{:?}", mac.calls());
    assert!(mac.is_loaded());
}

#[test]
fn installer_scripts_need_the_target_volume() {
    for script in ["preinstall", "postinstall"] {
        let out = Command::new("bash")
            .arg(repo().join("packaging/scripts").join(script))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{}", describe(script, &out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("target volume"),
            "{}",
            describe(script, &out)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The fake tools the scripts need beyond what prestage itself runs

/// `launchctl print`, `launchctl enable`, a refused `bootstrap` and `pkgutil --forget` answer
/// like the real tools: the scripts only branch on exit codes, so those and the texts an admin
/// reads in the installer log must match.
#[test]
fn fake_tools_answer_the_scripts_like_macos() {
    let mac = FakeMac::new();
    let service = format!("system/{}", mac::LABEL);

    // print of a service launchd does not have: message on stderr, exit 113.
    let (code, out, err) = mac.run_tool(mac::LAUNCHCTL, &["print", &service]);
    assert_eq!(code, 113);
    assert_eq!(out, "");
    assert_eq!(
        err,
        format!(
            "Could not find service \"{}\" in domain for system\n",
            mac::LABEL
        )
    );
    mac.set_loaded(true);
    let (code, out, err) = mac.run_tool(mac::LAUNCHCTL, &["print", &service]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(&format!("{service} = {{\n")), "{out}");
    assert!(out.contains(mac::BINARY), "{out}");
    assert_eq!(err, "");

    // enable succeeds silently, loaded or not, and loads nothing.
    for loaded in [true, false] {
        mac.set_loaded(loaded);
        let (code, out, err) = mac.run_tool(mac::LAUNCHCTL, &["enable", &service]);
        assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
        assert_eq!(mac.is_loaded(), loaded);
    }
    // ... but wants a service, not a domain.
    let (code, _, err) = mac.run_tool(mac::LAUNCHCTL, &["enable", "system"]);
    assert_ne!(code, 0);
    assert!(err.contains("Unrecognized target specifier"), "{err}");

    // A launchd that refuses: error 5, nothing loaded; without the knob the same call loads.
    let plist = mac.path(mac::LAUNCH_DAEMON);
    write(&plist, "<plist/>", 0o644);
    let plist = plist.to_str().unwrap();
    mac.refuse_bootstrap();
    let (code, _, err) = mac.run_tool(mac::LAUNCHCTL, &["bootstrap", "system", plist]);
    assert_eq!(code, 5);
    assert_eq!(err, "Bootstrap failed: 5: Input/output error\n");
    assert!(!mac.is_loaded());
    mac.update(|w| w.edit_behaviour(|b| b.bootstrap_fails = false));
    let (code, _, err) = mac.run_tool(mac::LAUNCHCTL, &["bootstrap", "system", plist]);
    assert_eq!(code, 0, "{err}");
    assert!(mac.is_loaded());

    // pkgutil --forget: only a receipt the volume has, which is then gone.
    let volume = mac.root.to_str().unwrap();
    let forget = ["--volume", volume, "--forget", mac::LABEL];
    let (code, out, err) = mac.run_tool(mac::PKGUTIL, &forget);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        format!("No receipt for '{}' found at '{volume}'.\n", mac::LABEL)
    );
    mac.update(|w| w.installed_packages.push(mac::LABEL.to_owned()));
    let other = tempfile::tempdir().unwrap();
    let (code, _, _) = mac.run_tool(
        mac::PKGUTIL,
        &[
            "--volume",
            other.path().to_str().unwrap(),
            "--forget",
            mac::LABEL,
        ],
    );
    assert_eq!(code, 1, "another volume has its own receipts");
    let (code, out, err) = mac.run_tool(mac::PKGUTIL, &forget);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!("Forgot package '{}' on '{volume}'.\n", mac::LABEL)
    );
    assert!(mac.world().installed_packages.is_empty());

    // Every call above is in the fakes' record, in order.
    let tools: Vec<String> = mac
        .calls()
        .iter()
        .map(|c| c.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        tools,
        [
            "launchctl print",
            "launchctl print",
            "launchctl enable",
            "launchctl enable",
            "launchctl enable",
            "launchctl bootstrap",
            "launchctl bootstrap",
            "pkgutil --volume",
            "pkgutil --volume",
            "pkgutil --volume",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Uninstaller

#[test]
fn uninstall_removes_everything_installed_and_nothing_else() {
    let mac = FakeMac::new();
    // Files that are not ours and must survive: the setup account's home, another tool in
    // /usr/local/bin, JumpCloud's agent, the managed preferences written by the MDM profile.
    let keep = [
        "/Users/welcome/Desktop/notes.txt",
        "/usr/local/bin/dialog",
        "/opt/jc/jcagent.conf",
        mac::MANAGED_CONFIG,
    ];
    for path in keep {
        write(&mac.path(path), "keep", 0o644);
    }
    let before = files_under(&mac.root);

    mac.lay_payload();
    let out = mac.run_installer_script("postinstall", &mac.root);
    assert!(out.status.success(), "{}", describe("postinstall", &out));
    // installer(8) records the package's receipt; prestage's own files appear while it runs.
    mac.update(|w| w.installed_packages.push(mac::LABEL.to_owned()));
    write(&mac.path(mac::STATE_FILE), "{}", 0o600);
    write(&mac.path(mac::JOURNAL_FILE), "{}\n", 0o600);
    assert!(mac.is_loaded());

    // The way an MDM runs it: the installed copy, which removes itself.
    let out = mac.run_uninstall(&mac.root, true);
    assert!(out.status.success(), "{}", describe("uninstall", &out));
    assert!(
        String::from_utf8_lossy(&out.stdout).ends_with("prestage uninstall: done\n"),
        "ran to the end after deleting itself: {}",
        describe("uninstall", &out)
    );

    assert_eq!(
        files_under(&mac.root),
        before,
        "exactly the files that were there before the install are left\n{}",
        describe("uninstall", &out)
    );
    for gone in [
        mac::STATE_DIR,
        "/usr/local/libexec/prestage",
        mac::LAUNCH_DAEMON,
    ] {
        assert!(
            fs::symlink_metadata(mac.path(gone)).is_err(),
            "{gone} is left"
        );
    }
    assert!(!mac.is_loaded(), "the daemon was booted out");
    assert!(mac
        .calls_of("launchctl")
        .contains(&format!("launchctl bootout system/{}", mac::LABEL)));
    assert_eq!(
        mac.calls_of("pkgutil"),
        [format!(
            "pkgutil --volume {} --forget {}",
            mac.root.display(),
            mac::LABEL
        )]
    );
    assert!(
        !mac.world()
            .installed_packages
            .iter()
            .any(|p| p == mac::LABEL),
        "the receipt is forgotten: {:?}",
        mac.world().installed_packages
    );
    // Never a user account tool: every macOS tool prestage knows is faked and records its
    // calls (sysadminctl, dscl, ...), and only these ran.
    for call in mac.calls() {
        assert!(
            ["launchctl ", "chown ", "pkgutil "]
                .iter()
                .any(|t| call.starts_with(t)),
            "unexpected tool call {call}"
        );
    }
}

#[test]
fn uninstall_leaves_a_foreign_link_alone() {
    let mac = FakeMac::new();
    let link = mac.path(mac::BINARY_LINK);
    fs::create_dir_all(link.parent().unwrap()).unwrap();
    symlink("/opt/homebrew/bin/prestage", &link).unwrap();

    let out = mac.run_uninstall(&mac.root, false);
    assert!(out.status.success(), "{}", describe("uninstall", &out));
    assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
    // Nothing was loaded, so nothing was booted out.
    assert_eq!(
        mac.calls_of("launchctl"),
        [format!("launchctl print system/{}", mac::LABEL)]
    );
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

#[test]
fn build_pkg_dry_run_prints_the_signed_build() {
    let tmp = tempfile::tempdir().unwrap();
    let dialog = tmp.path().join("dialog-2.5.2.pkg");
    let config = tmp.path().join("prestage config.plist");
    fs::write(&dialog, "xar!").unwrap();
    fs::write(&config, "<plist/>").unwrap();
    let out_dir = tmp.path().join("dist");
    let (dialog, config, out_dir) = (
        dialog.to_str().unwrap(),
        config.to_str().unwrap(),
        out_dir.to_str().unwrap(),
    );

    let out = build_pkg(&[
        "--dry-run",
        "--version",
        "1.2.3",
        "--app-identity",
        APP_ID,
        "--installer-identity",
        INSTALLER_ID,
        "--team-id",
        "ABCDE12345",
        "--notary-profile",
        "prestage-notary",
        "--dialog-pkg",
        dialog,
        "--config",
        config,
        "--out",
        out_dir,
    ]);
    assert!(out.status.success(), "{}", describe("build-pkg.sh", &out));

    let repo = repo();
    let r = |p: &str| repo.join(p).to_str().unwrap().to_owned();
    let stage = format!("{out_dir}/stage");
    let payload = format!("{stage}/payload");
    let scripts = format!("{stage}/scripts");
    let scripts_raw = scripts.clone();
    let pay = |p: &str| format!("{payload}{p}");
    let binary = pay(mac::BINARY);
    let component = format!("{stage}/prestage-component.pkg");
    let distribution = format!("{stage}/distribution.xml");
    let product = format!("{out_dir}/prestage-1.2.3.pkg");
    let manifest = r("Cargo.toml");

    // The dry run prints the commands exactly as the real build runs them, in this order.
    let q = |s: &str| sh_quote(s);
    let (label, app, installer) = (mac::LABEL, q(APP_ID), q(INSTALLER_ID));
    let (stage, payload, scripts) = (q(&stage), q(&payload), q(&scripts));
    let (binary, component, distribution, product) =
        (q(&binary), q(&component), q(&distribution), q(&product));
    let (config, dialog, manifest) = (q(config), q(dialog), q(&manifest));
    let expected = [
        format!("+ cargo build --release --locked --no-default-features --bin prestage --manifest-path {manifest} --target aarch64-apple-darwin"),
        format!("+ cargo build --release --locked --no-default-features --bin prestage --manifest-path {manifest} --target x86_64-apple-darwin"),
        format!("+ rm -rf {stage}"),
        format!(
            "+ mkdir -p {} {} {} {scripts}",
            q(&pay("/usr/local/libexec/prestage")),
            q(&pay("/usr/local/bin")),
            q(&pay("/Library/LaunchDaemons"))
        ),
        format!(
            "+ lipo -create -output {binary} {} {}",
            q(&r("target/aarch64-apple-darwin/release/prestage")),
            q(&r("target/x86_64-apple-darwin/release/prestage"))
        ),
        format!("+ codesign --force --options runtime --timestamp --identifier {label} --sign {app} {binary}"),
        format!("+ codesign --verify --strict --verbose=2 {binary}"),
        format!("+ ln -s ../libexec/prestage/prestage {}", q(&pay(mac::BINARY_LINK))),
        format!("+ install -m 0644 {} {}", q(&r(DAEMON_TEMPLATE)), q(&pay(mac::LAUNCH_DAEMON))),
        format!(
            "+ install -m 0755 {} {}",
            q(&r("packaging/uninstall.sh")),
            q(&pay("/usr/local/libexec/prestage/uninstall.sh"))
        ),
        format!("+ mkdir -p {}", q(&pay("/Library/Preferences"))),
        format!("+ install -m 0600 {config} {}", q(&pay(mac::LOCAL_CONFIG))),
        format!(
            "+ install -m 0644 {dialog} {}",
            q(&pay("/usr/local/libexec/prestage/swiftDialog.pkg"))
        ),
        format!(
            "+ install -m 0755 {} {}",
            q(&r("packaging/scripts/preinstall")),
            q(&format!("{scripts_raw}/preinstall"))
        ),
        format!(
            "+ install -m 0755 {} {}",
            q(&r("packaging/scripts/postinstall")),
            q(&format!("{scripts_raw}/postinstall"))
        ),
        format!(
            "+ pkgbuild --root {payload} --scripts {scripts} --identifier {label} --version 1.2.3 \
             --install-location / --ownership recommended {component}"
        ),
        format!(
            "+ productbuild --synthesize --product {} --package {component} {distribution}",
            q(&r("packaging/requirements.plist"))
        ),
        format!(
            "+ productbuild --distribution {distribution} --package-path {stage} \
             --identifier {label} --version 1.2.3 --sign {installer} --timestamp {product}"
        ),
        format!("+ pkgutil --check-signature {product}"),
        format!("+ xcrun notarytool submit {product} --keychain-profile prestage-notary --wait"),
        format!("+ xcrun stapler staple {product}"),
        format!("+ xcrun stapler validate {product}"),
    ];
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let actual: Vec<&str> = stdout.lines().collect();
    assert_eq!(actual, expected, "{}", describe("build-pkg.sh", &out));
    assert!(
        !Path::new(out_dir).exists(),
        "a dry run creates nothing: {out_dir}"
    );
}

#[test]
fn build_pkg_dry_run_unsigned_skips_identities_and_notarization() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("it's out");
    let out_dir = out_dir.to_str().unwrap();
    let out = build_pkg(&["--dry-run", "--unsigned", "--out", out_dir]);
    assert!(out.status.success(), "{}", describe("build-pkg.sh", &out));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();

    let binary = format!("{out_dir}/stage/payload{}", mac::BINARY);
    assert!(
        stdout.lines().any(|l| l
            == plus(&[
                "codesign",
                "--force",
                "--sign",
                "-",
                "--identifier",
                mac::LABEL,
                &binary
            ])),
        "ad-hoc signature, quoted path\n{stdout}"
    );
    let version = env!("CARGO_PKG_VERSION");
    let last = stdout.lines().last().unwrap();
    assert!(
        last.starts_with("+ productbuild --distribution ")
            && last.ends_with(&sh_quote(&format!(
                "{out_dir}/prestage-{version}-unsigned.pkg"
            ))),
        "ends with the unsigned product, version from Cargo.toml: {last}"
    );
    for absent in ["--sign '", "notarytool", "stapler", "--options runtime"] {
        assert!(!stdout.contains(absent), "{absent} in\n{stdout}");
    }
    assert!(stdout.lines().all(|l| l.starts_with("+ ")), "{stdout}");
}

#[test]
fn build_pkg_takes_the_team_id_from_the_identities_when_they_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("dist");
    let out = build_pkg(&[
        "--dry-run",
        "--version",
        "1.2.3",
        "--app-identity",
        APP_ID,
        "--installer-identity",
        INSTALLER_ID,
        "--notary-profile",
        "prestage-notary",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let all = describe("build-pkg.sh", &out);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("team ID ABCDE12345 (from the signing identities)"),
        "{all}"
    );
    assert!(
        all.contains("--sign 'Developer ID Installer: Example Corp (ABCDE12345)'"),
        "{all}"
    );
    // Two teams: refused, naming both.
    let out = build_pkg(&[
        "--dry-run",
        "--app-identity",
        APP_ID,
        "--installer-identity",
        "Developer ID Installer: Other Corp (ZZZZZ99999)",
        "--notary-profile",
        "p",
    ]);
    let all = describe("build-pkg.sh", &out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("ABCDE12345 and ZZZZZ99999"), "{all}");
}

#[test]
fn build_pkg_refuses_incomplete_or_mismatched_signing_flags() {
    let cases: &[(&[&str], &str)] = &[
        (&["--dry-run"], "--app-identity is required"),
        (
            &[
                "--dry-run",
                "--app-identity",
                APP_ID,
                "--installer-identity",
                INSTALLER_ID,
                "--team-id",
                "ZZZZZ99999",
                "--notary-profile",
                "p",
            ],
            "--app-identity must be",
        ),
        (
            &[
                "--dry-run",
                "--app-identity",
                INSTALLER_ID,
                "--installer-identity",
                INSTALLER_ID,
                "--team-id",
                "ABCDE12345",
                "--notary-profile",
                "p",
            ],
            "Developer ID Application",
        ),
        (
            &["--dry-run", "--unsigned", "--version"],
            "--version needs a value",
        ),
        (
            &["--dry-run", "--unsigned", "--versoin", "1"],
            "unknown option --versoin",
        ),
        (
            &[
                "--dry-run",
                "--unsigned",
                "--dialog-pkg",
                "/nonexistent/dialog.pkg",
            ],
            "does not exist",
        ),
    ];
    for (args, message) in cases {
        let out = build_pkg(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            describe(&format!("{args:?}"), &out)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(message),
            "{}",
            describe(&format!("{args:?} should say {message}"), &out)
        );
        assert!(out.stdout.is_empty(), "nothing ran: {}", describe("", &out));
    }
}

#[test]
fn build_pkg_help_lists_every_flag() {
    let out = build_pkg(&["--help"]);
    assert!(out.status.success(), "{}", describe("--help", &out));
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--version",
        "--app-identity",
        "--installer-identity",
        "--team-id",
        "--notary-profile",
        "--dialog-pkg",
        "--config",
        "--out",
        "--dry-run",
        "--unsigned",
        "--help",
    ] {
        assert!(help.contains(flag), "{flag} missing from\n{help}");
    }
}

// ---------------------------------------------------------------------------------------------
// shellcheck

#[test]
fn shell_scripts_pass_shellcheck() {
    let available = Command::new("shellcheck")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        eprintln!(
            "shellcheck is not installed: skipped (install it with apt-get install shellcheck)"
        );
        return;
    }
    let out = Command::new("shellcheck")
        .current_dir(repo())
        .args(["--shell=bash", "--severity=style"])
        .args(SCRIPTS)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe("shellcheck", &out));
}

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

#[test]
fn example_profile_is_a_system_custom_settings_profile_without_secrets() {
    let value = plist::Value::from_file(repo().join(PROFILE)).unwrap();
    let top = value.as_dictionary().unwrap();
    assert_eq!(top["PayloadType"].as_string(), Some("Configuration"));
    assert_eq!(top["PayloadScope"].as_string(), Some("System"));
    assert_eq!(top["PayloadVersion"].as_signed_integer(), Some(1));
    let top_id = top["PayloadIdentifier"].as_string().unwrap();
    assert!(top_id.starts_with(mac::LABEL));

    let mut uuids = vec![top["PayloadUUID"].as_string().unwrap()];
    for payload in top["PayloadContent"].as_array().unwrap() {
        let p = payload.as_dictionary().unwrap();
        assert_eq!(
            p["PayloadType"].as_string(),
            Some("com.apple.ManagedClient.preferences")
        );
        assert_eq!(p["PayloadVersion"].as_signed_integer(), Some(1));
        let id = p["PayloadIdentifier"].as_string().unwrap();
        assert!(id.starts_with(top_id) && id != top_id, "{id}");
        uuids.push(p["PayloadUUID"].as_string().unwrap());
    }
    assert!(uuids.iter().all(|u| is_uuid(u)), "{uuids:?}");
    let distinct: BTreeSet<_> = uuids.iter().collect();
    assert_eq!(distinct.len(), uuids.len(), "PayloadUUIDs are distinct");

    let settings = profile_settings(&repo().join(PROFILE));
    let settings = settings.as_dictionary().unwrap();
    for secret in ["APIKey", "EncryptedAPIKey", "DecryptUser"] {
        assert!(!settings.contains_key(secret), "{secret} in the profile");
    }
    assert!(settings["APIKeyKeychainService"].as_string().is_some());
}

#[test]
fn extracted_profile_settings_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let path = extract_profile_settings(tmp.path());
    let back = plist::Value::from_file(&path).unwrap();
    assert_eq!(back, profile_settings(&repo().join(PROFILE)));
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

/// Every key the example profile sets is described by the schema admins load into Jamf Pro.
#[test]
fn example_profile_keys_are_in_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(repo().join(SCHEMA)).unwrap()).unwrap();
    let settings = profile_settings(&repo().join(PROFILE));
    check_keys_in_schema(settings.as_dictionary().unwrap(), &schema, "");
}

#[test]
fn schema_file_matches_prestage_config_schema() {
    let out = Command::new(env!("CARGO_BIN_EXE_prestage"))
        .args(["config", "schema"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        describe("prestage config schema", &out)
    );
    let generated: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let committed: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(repo().join(SCHEMA)).unwrap()).unwrap();
    assert!(
        generated == committed,
        "{SCHEMA} is out of date; regenerate it with\n  \
         cargo run -- config schema > {SCHEMA}"
    );
}

#[test]
fn example_profile_settings_pass_config_check() {
    let tmp = tempfile::tempdir().unwrap();
    let path = extract_profile_settings(tmp.path());
    let out = Command::new(env!("CARGO_BIN_EXE_prestage"))
        .args(["config", "check"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        describe("prestage config check <example profile settings>", &out)
    );
}
