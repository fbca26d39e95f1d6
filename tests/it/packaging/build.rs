//! Packaging: `build-pkg.sh --dry-run` (signing, notarization, flags) and shellcheck.

use super::{
    build_pkg, describe, plus, repo, sh_quote, APP_ID, DAEMON_TEMPLATE, INSTALLER_ID, SCRIPTS,
};
use prestage::paths::mac;
use std::fs;
use std::path::Path;
use std::process::Command;

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
