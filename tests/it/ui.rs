//! Integration tests: the employee's screens through the swiftDialog backend, with the fake
//! `dialog` (the prestage binary run as `<root>/usr/local/bin/dialog`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use prestage::config::UiConfig;
use prestage::host::fake::world::World;
use prestage::host::{Caffeinate, Host, HostError, PackageSignature};
use prestage::paths::{mac, Root};
use prestage::policy::{PasswordPolicy, Rule};
use prestage::ui::dialog::DialogUi;
use prestage::ui::fake_dialog::{self, ScriptedAnswer};
use prestage::ui::strings::{Strings, IDS};
use prestage::ui::{IdentityPrompt, ItemStatus, PasswordPrompt, Progress, StepItem, Ui, UiError};
use secrecy::ExposeSecret;

use super::util::wait_until;

/// A host that only answers what the UI asks: the console user, and package checks/installs.
pub(super) struct StubHost {
    pub(super) root: Root,
    pub(super) console: String,
    pub(super) signer: Option<String>,
    pub(super) installed: Mutex<Vec<PathBuf>>,
}

#[async_trait]
impl Host for StubHost {
    async fn console_user(&self) -> Result<String, HostError> {
        Ok(self.console.clone())
    }
    async fn finder_running(&self) -> Result<bool, HostError> {
        unimplemented!()
    }
    async fn user_id(&self, _: &str) -> Result<Option<u32>, HostError> {
        unimplemented!()
    }
    async fn has_secure_token(&self, _: &str) -> Result<bool, HostError> {
        unimplemented!()
    }
    async fn hide_user(&self, _: &str) -> Result<(), HostError> {
        unimplemented!()
    }
    async fn show_user(&self, _: &str) -> Result<(), HostError> {
        unimplemented!()
    }
    async fn delete_user(&self, _: &str) -> Result<(), HostError> {
        unimplemented!()
    }
    async fn log_out(&self, _: u32) -> Result<(), HostError> {
        unimplemented!()
    }
    async fn kickstart_agent(&self) -> Result<(), HostError> {
        unimplemented!()
    }
    async fn remove_daemon(&self) -> Result<(), HostError> {
        unimplemented!()
    }
    async fn package_signature(&self, _: &Path) -> Result<PackageSignature, HostError> {
        Ok(PackageSignature {
            status: "signed by a developer certificate issued by Apple for distribution".into(),
            chain: self.signer.iter().cloned().collect(),
        })
    }
    async fn install_package(&self, pkg: &Path) -> Result<(), HostError> {
        self.installed.lock().unwrap().push(pkg.to_owned());
        prestage::host::fake::install_fake_dialog(
            &self.root,
            Path::new(env!("CARGO_BIN_EXE_prestage-fake")),
        )
        .unwrap();
        Ok(())
    }
    async fn sync_clock(&self, _: &str) -> Result<(), HostError> {
        unimplemented!()
    }
    async fn keep_awake(&self, _: u32) -> Result<Caffeinate, HostError> {
        unimplemented!()
    }
    async fn log_out_gui(&self, _: u32) -> Result<(), HostError> {
        unimplemented!()
    }
    async fn system_settings_running(&self) -> Result<bool, HostError> {
        unimplemented!()
    }
    async fn filevault_on(&self) -> Result<Option<bool>, HostError> {
        unimplemented!()
    }
    async fn update_preboot(&self) -> Result<(), HostError> {
        unimplemented!()
    }
    fn processes_spawned(&self) -> u64 {
        0
    }
}

pub(super) struct Mac {
    _dir: tempfile::TempDir,
    pub(super) root: Root,
    pub(super) host: Arc<StubHost>,
}

/// A fake Mac with `console` logged in and (when `with_dialog`) the fake dialog installed.
pub(super) fn mac_with(console: &str, with_dialog: bool, signer: Option<&str>) -> Mac {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    let mut world = World {
        console_user: console.into(),
        ..World::default()
    };
    world.add_user(console, true, true);
    world.save(&root).unwrap();
    if with_dialog {
        prestage::host::fake::install_fake_dialog(
            &root,
            Path::new(env!("CARGO_BIN_EXE_prestage-fake")),
        )
        .unwrap();
    }
    let host = Arc::new(StubHost {
        root: root.clone(),
        console: console.into(),
        signer: signer.map(str::to_owned),
        installed: Mutex::new(Vec::new()),
    });
    Mac {
        _dir: dir,
        root,
        host,
    }
}

pub(super) fn ui_for(mac: &Mac, config: UiConfig) -> DialogUi {
    DialogUi::new(
        mac.root.clone(),
        config,
        Strings::default(),
        mac.host.clone(),
    )
}

pub(super) fn answer(values: &[(&str, &str)]) -> ScriptedAnswer {
    ScriptedAnswer {
        values: values
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        exit: 0,
    }
}

/// The value following `opt` in the last recorded dialog call.
pub(super) fn last_call_values(root: &Root, opt: &str) -> Vec<String> {
    let calls = fake_dialog::calls(root);
    let args = &calls.last().expect("dialog was called").args;
    args.windows(2)
        .filter(|w| w[0] == opt)
        .map(|w| w[1].clone())
        .collect()
}

/// Every byte of every file under `dir`, for "the secret is nowhere on disk" checks.
fn all_file_text(dir: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            out.push_str(&all_file_text(&path));
        } else if meta.is_file() {
            out.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    out
}

pub(super) fn identity_prompt(secret: bool, attempts_left: Option<u32>) -> IdentityPrompt {
    IdentityPrompt {
        identifier_label_id: "identity.label.company_email",
        secret_label_id: secret.then_some("identity.secret.employee_id"),
        attempts_left,
    }
}

#[tokio::test]
async fn identity_without_a_secret() {
    let mac = mac_with("welcome", true, None);
    fake_dialog::write_script(
        &mac.root,
        &[answer(&[("identifier", "  Ada@Example.com ")])],
    )
    .unwrap();
    let mut ui = ui_for(&mac, UiConfig::default());
    let a = ui
        .ask_identity(&identity_prompt(false, None))
        .await
        .unwrap();
    assert_eq!(a.identifier, "Ada@Example.com");
    assert!(a.secret.is_none());
    let fields = last_call_values(&mac.root, "--textfield");
    assert_eq!(fields.len(), 1, "{fields:?}");
    assert!(
        fields[0].starts_with("Your company email address,name=identifier,required,regex=^"),
        "{fields:?}"
    );
    assert!(fields[0].contains(",regexerror=Please enter an email address"));
    let calls = fake_dialog::calls(&mac.root);
    assert!(calls.last().unwrap().args.contains(&"--json".to_owned()));
}

#[tokio::test]
async fn identity_with_a_secret_keeps_it_off_disk() {
    let mac = mac_with("welcome", true, None);
    fake_dialog::write_script(
        &mac.root,
        &[answer(&[
            ("identifier", "ada@example.com"),
            ("secret", "E-77-secret"),
        ])],
    )
    .unwrap();
    let mut ui = ui_for(&mac, UiConfig::default());
    let a = ui.ask_identity(&identity_prompt(true, None)).await.unwrap();
    assert_eq!(a.secret.unwrap().expose_secret(), "E-77-secret");
    let fields = last_call_values(&mac.root, "--textfield");
    assert_eq!(fields[1], "Your employee ID,name=secret,secure,required");
    // The script file held it (test input); it was consumed and nothing else has it.
    assert!(!all_file_text(mac.root.dir()).contains("E-77-secret"));
}

#[tokio::test]
async fn a_wrong_secret_shows_attempts_left() {
    let mac = mac_with("welcome", true, None);
    fake_dialog::write_script(
        &mac.root,
        &[answer(&[
            ("identifier", "ada@example.com"),
            ("secret", "x"),
        ])],
    )
    .unwrap();
    let mut ui = ui_for(&mac, UiConfig::default());
    ui.ask_identity(&identity_prompt(true, Some(4)))
        .await
        .unwrap();
    let message = &last_call_values(&mac.root, "--message")[0];
    assert!(
        message.contains("We could not confirm who you are"),
        "{message}"
    );
    assert!(message.contains("Attempts left: 4"), "{message}");
    // Rejection with a cool-down closes by itself through swiftDialog's timer.
    ui.identity_rejected(0, Some(300)).await.unwrap();
    assert_eq!(last_call_values(&mac.root, "--timer"), vec!["300"]);
    assert!(last_call_values(&mac.root, "--message")[0].contains("5 minutes"));
}

pub(super) fn password_prompt(unmet: Vec<Rule>, mismatch: bool) -> PasswordPrompt {
    PasswordPrompt {
        account: "ada".into(),
        policy: PasswordPolicy {
            min_length: 12,
            require_uppercase: true,
            require_lowercase: true,
            require_number: true,
            require_symbol: false,
            ..PasswordPolicy::default()
        },
        unmet,
        mismatch,
        rejected_by_directory: None,
    }
}

#[tokio::test]
async fn a_password_that_misses_two_rules_names_both() {
    let mac = mac_with("welcome", true, None);
    fake_dialog::write_script(
        &mac.root,
        &[answer(&[
            ("password", "Correct-Horse-7-Battery"),
            ("confirmation", "Correct-Horse-7-Battery"),
        ])],
    )
    .unwrap();
    let mut ui = ui_for(&mac, UiConfig::default());
    let a = ui
        .ask_password(&password_prompt(
            vec![Rule::MinLength(12), Rule::Number],
            false,
        ))
        .await
        .unwrap();
    assert_eq!(a.password.expose_secret(), "Correct-Horse-7-Battery");
    assert_eq!(a.confirmation.expose_secret(), "Correct-Horse-7-Battery");
    // One checklist: every rule once, each marked met or not (`ui preview` screen 06).
    let message = last_call_values(&mac.root, "--message")[0].replace("\\n", "\n");
    assert!(
        message.contains("Your password does not meet every rule yet."),
        "{message}"
    );
    let rules: Vec<&str> = message.lines().filter(|l| l.starts_with("- ")).collect();
    assert_eq!(
        rules,
        vec![
            "- ✗ **at least 12 characters**",
            "- ✓ an upper-case letter (A–Z)",
            "- ✓ a lower-case letter (a–z)",
            "- ✗ **a number (0–9)**",
        ],
        "{message}"
    );
    let fields = last_call_values(&mac.root, "--textfield");
    assert_eq!(
        fields,
        vec![
            "New password,name=password,secure,required",
            "Type it again,name=confirmation,secure,required"
        ]
    );
    // The password travelled on the stdout pipe only: not in argv, not in any file.
    assert!(!all_file_text(mac.root.dir()).contains("Correct-Horse-7-Battery"));
}

#[tokio::test]
async fn mismatched_confirmation_is_said_and_both_values_come_back() {
    let mac = mac_with("welcome", true, None);
    fake_dialog::write_script(
        &mac.root,
        &[answer(&[
            ("password", "Aaaaaaaaaaa1"),
            ("confirmation", "Aaaaaaaaaaa2"),
        ])],
    )
    .unwrap();
    let mut ui = ui_for(&mac, UiConfig::default());
    let a = ui
        .ask_password(&password_prompt(Vec::new(), true))
        .await
        .unwrap();
    assert_ne!(a.password.expose_secret(), a.confirmation.expose_secret());
    let message = &last_call_values(&mac.root, "--message")[0];
    assert!(
        message.contains("The two passwords do not match"),
        "{message}"
    );
}

#[tokio::test]
async fn closing_a_question_is_a_cancel_and_nobody_logged_in_is_reported() {
    let mac = mac_with("welcome", true, None);
    fake_dialog::write_script(
        &mac.root,
        &[ScriptedAnswer {
            exit: 10,
            ..ScriptedAnswer::default()
        }],
    )
    .unwrap();
    let mut ui = ui_for(&mac, UiConfig::default());
    let err = ui
        .ask_identity(&identity_prompt(false, None))
        .await
        .unwrap_err();
    assert!(matches!(err, UiError::Cancelled { code: 10 }), "{err:?}");

    let nobody = mac_with("root", true, None);
    World::update(&nobody.root, |w| w.console_user = "root".into()).unwrap();
    let host = Arc::new(StubHost {
        root: nobody.root.clone(),
        console: "root".into(),
        signer: None,
        installed: Mutex::new(Vec::new()),
    });
    let mut ui = DialogUi::new(
        nobody.root.clone(),
        UiConfig::default(),
        Strings::default(),
        host,
    );
    let err = ui
        .ask_identity(&identity_prompt(false, None))
        .await
        .unwrap_err();
    assert!(matches!(err, UiError::NoConsoleUser), "{err:?}");
}

pub(super) fn progress(percent: u8, text_id: &'static str, done: usize) -> Progress {
    let ids = ["steps.prepare", "steps.agent", "steps.identity"];
    Progress {
        percent,
        text_id,
        args: Vec::new(),
        steps: ids
            .iter()
            .enumerate()
            .map(|(i, id)| StepItem {
                title_id: id,
                status: match i.cmp(&done) {
                    std::cmp::Ordering::Less => ItemStatus::Success,
                    std::cmp::Ordering::Equal => ItemStatus::Wait,
                    std::cmp::Ordering::Greater => ItemStatus::Pending,
                },
            })
            .collect(),
    }
}

#[tokio::test]
async fn missing_dialog_is_installed_only_from_swiftdialogs_signed_package() {
    // No package configured: a clear error.
    let mac = mac_with("welcome", false, None);
    let mut ui = ui_for(&mac, UiConfig::default());
    let err = ui
        .progress(&progress(0, "progress.preflight", 0))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, UiError::DialogMissing { path, .. } if path == mac::DIALOG),
        "{err:?}"
    );
    assert!(err.to_string().contains("UI.DialogPackagePath"), "{err}");

    let pkg = "/Library/Application Support/prestage/dialog.pkg";
    let with_pkg = |mac: &Mac| {
        let real = mac.root.resolve(pkg);
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        std::fs::write(real, b"pkg").unwrap();
        UiConfig {
            dialog_package_path: Some(pkg.into()),
            ..UiConfig::default()
        }
    };

    // Signed by someone else: refused, nothing installed.
    let mac = mac_with(
        "welcome",
        false,
        Some("Developer ID Installer: Mallory Ltd (AAAAAAAAAA)"),
    );
    let mut ui = ui_for(&mac, with_pkg(&mac));
    let err = ui
        .progress(&progress(0, "progress.preflight", 0))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("PWA5E9TQ59"), "{err}");
    assert!(mac.host.installed.lock().unwrap().is_empty());

    // swiftDialog's own signature: installed, then used.
    let mac = mac_with(
        "welcome",
        false,
        Some("Developer ID Installer: Bart Reardon (PWA5E9TQ59)"),
    );
    let mut ui = ui_for(&mac, with_pkg(&mac));
    ui.progress(&progress(0, "progress.preflight", 0))
        .await
        .unwrap();
    // What was checked and installed is the copy in the root-only state directory, not the
    // admin's path (which another user might be able to swap in between).
    assert_eq!(
        *mac.host.installed.lock().unwrap(),
        vec![PathBuf::from("/var/db/prestage/staged/swiftDialog.pkg")]
    );
    ui.close().await.unwrap();
}

#[test]
fn every_string_id_has_english_and_german_texts() {
    let en = Strings::new("en", &std::collections::BTreeMap::default());
    let de = Strings::new("de", &std::collections::BTreeMap::default());
    for id in IDS {
        assert_ne!(en.get(id), *id, "{id} has no English text");
        assert_ne!(de.get(id), *id, "{id} has no German text");
    }
    // German is really German, not the English fallback, for the screens' main texts.
    for id in [
        "welcome.title",
        "identity.title",
        "password.title",
        "done.title",
    ] {
        assert_ne!(en.get(id), de.get(id), "{id}");
    }
}

/// Draws every screen with the real browser when there is one (slow: run with `--ignored`).
/// `PRESTAGE_PREVIEW_OUT` keeps the output for a look; `PRESTAGE_PREVIEW_LANG` picks the table;
/// `PRESTAGE_PREVIEW_ICON` / `PRESTAGE_PREVIEW_BANNER` brand it.
#[test]
#[ignore = "starts headless Chromium once per screen"]
fn preview_draws_pngs_with_chromium() {
    let chromium = Path::new(prestage::ui::preview::CHROMIUM);
    if !chromium.is_file() {
        eprintln!("no {} here; nothing to check", chromium.display());
        return;
    }
    let keep = std::env::var_os("PRESTAGE_PREVIEW_OUT").map(PathBuf::from);
    let tmp = tempfile::tempdir().unwrap();
    let out = keep.unwrap_or_else(|| tmp.path().to_owned());
    let lang = std::env::var("PRESTAGE_PREVIEW_LANG").unwrap_or_else(|_| "en".into());
    let config = UiConfig {
        icon: std::env::var_os("PRESTAGE_PREVIEW_ICON").map(PathBuf::from),
        banner_image: std::env::var_os("PRESTAGE_PREVIEW_BANNER").map(PathBuf::from),
        ..UiConfig::default()
    };
    let files = prestage::ui::preview::render(
        &config,
        &Strings::new(&lang, &std::collections::BTreeMap::default()),
        &out,
    )
    .unwrap();
    let pngs = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "png"))
        .count();
    assert_eq!(pngs, 10, "{files:?}");
}

#[tokio::test]
async fn overrides_branding_done_and_error_screens_reach_swiftdialog() {
    let mac = mac_with("welcome", true, None);
    let mut overrides = std::collections::BTreeMap::new();
    overrides.insert(
        "done.title".to_owned(),
        "Welcome aboard, {account}".to_owned(),
    );
    let config = UiConfig {
        strings: overrides.clone(),
        ..UiConfig::default()
    };
    let strings = Strings::new("de", &overrides);
    let mut ui = DialogUi::new(mac.root.clone(), config, strings, mac.host.clone());
    ui.done("ada").await.unwrap();
    // The override text is used as is ({account} is not a placeholder of done.title).
    assert_eq!(
        last_call_values(&mac.root, "--title"),
        vec!["Welcome aboard, {account}"]
    );
    assert!(last_call_values(&mac.root, "--message")[0].contains("Ihr Konto **ada** ist bereit"));
    assert_eq!(last_call_values(&mac.root, "--timer"), vec!["60"]);

    ui.fatal("PS-05-3F9A1C", "error.agent_timeout")
        .await
        .unwrap();
    let root = mac.root.clone();
    wait_until(&root, "the error window", || {
        fake_dialog::calls(&root).len() == 2
    })
    .await;
    let message = &last_call_values(&mac.root, "--message")[0];
    assert!(message.contains("**PS-05-3F9A1C**"), "{message}");
    assert!(
        message.contains("nicht rechtzeitig mit JumpCloud"),
        "{message}"
    );
}

#[test]
fn the_demo_script_fixture_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ui/demo-script.json");
    let script = prestage::ui::scripted::Script::load(&path).unwrap();
    assert_eq!(script.identities.len(), 2);
    assert_eq!(script.passwords.len(), 3);
    assert!(script.passwords[2].confirmation.is_none());
    let err = prestage::ui::scripted::Script::load(Path::new("/nonexistent.json")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent.json"));
}

/// Reads answers from this process's stdin (run by hand:
/// `printf 'ada@example.com\nE-1\nPw-123456789\nPw-123456789\n' | cargo test --test tests
/// it::ui::terminal -- --ignored --nocapture`, or under `script` for a terminal with echo off).
#[tokio::test]
#[ignore = "reads the test process's stdin"]
async fn terminal_reads_answers_from_stdin() {
    use prestage::ui::terminal::TerminalUi;
    let mut ui = TerminalUi::new(UiConfig::default(), Strings::default());
    ui.progress(&progress(10, "progress.preflight", 0))
        .await
        .unwrap();
    let a = ui
        .ask_identity(&identity_prompt(true, Some(2)))
        .await
        .unwrap();
    assert_eq!(a.identifier, "ada@example.com");
    assert_eq!(a.secret.unwrap().expose_secret(), "E-1");
    let p = ui
        .ask_password(&password_prompt(vec![Rule::Number], false))
        .await
        .unwrap();
    assert_eq!(p.password.expose_secret(), p.confirmation.expose_secret());
    ui.done("ada").await.unwrap();
}

/// `UI.Icon` and `UI.BannerImage` may be a path, a URL or an SF Symbol (README, swiftDialog
/// wiki "Icons"): only a path can be checked for existence; the others reach swiftDialog.
#[tokio::test]
async fn icons_given_as_url_or_sf_symbol_reach_swiftdialog() {
    let mac = mac_with("welcome", true, None);
    let config = UiConfig {
        icon: Some("SF=person.badge.key.fill".into()),
        banner_image: Some("https://example.com/banner.png".into()),
        ..UiConfig::default()
    };
    let mut ui = ui_for(&mac, config);
    ui.done("ada").await.unwrap();
    assert_eq!(
        last_call_values(&mac.root, "--icon"),
        vec!["SF=person.badge.key.fill"]
    );
    assert_eq!(
        last_call_values(&mac.root, "--bannerimage"),
        vec!["https://example.com/banner.png"]
    );
    // A path that is not there is still left out (swiftDialog would show its default icon).
    let config = UiConfig {
        icon: Some("/Library/Acme/missing.png".into()),
        ..UiConfig::default()
    };
    let mut ui = ui_for(&mac, config);
    ui.done("ada").await.unwrap();
    assert!(last_call_values(&mac.root, "--icon").is_empty());
    // An app bundle is a folder: swiftDialog shows the app's icon (`IconView.swift`).
    std::fs::create_dir_all(mac.root.resolve("/Applications/Self Service.app/Contents")).unwrap();
    let config = UiConfig {
        icon: Some("/Applications/Self Service.app".into()),
        ..UiConfig::default()
    };
    let mut ui = ui_for(&mac, config);
    ui.done("ada").await.unwrap();
    assert_eq!(
        last_call_values(&mac.root, "--icon"),
        vec!["/Applications/Self Service.app"]
    );
}
