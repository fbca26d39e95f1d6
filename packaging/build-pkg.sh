#!/usr/bin/env bash
# Builds prestage's signed, notarized distribution package on a Mac.
#
#   1. release builds for aarch64-apple-darwin and x86_64-apple-darwin (cargo)
#   2. one universal binary (lipo(1): -create -output)
#   3. code signature with the hardened runtime and a secure timestamp, as notarization requires
#      (codesign(1): --options runtime --timestamp)
#   4. component package from a payload root with our installer scripts (pkgbuild(1))
#   5. signed distribution package (productbuild(1) --synthesize, then --distribution --sign):
#      MDM prestage enrollment only installs signed distribution packages
#   6. notarization and stapling (xcrun notarytool submit --wait, xcrun stapler staple)
#
# --dry-run prints every command, one per line prefixed "+ ", quoted as it would run, and runs
# none of them; it works on any OS. Written for the bash 3.2 that ships with macOS.
set -euo pipefail

label=io.prestage.enroll
repo="$(cd "$(dirname "$0")/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"

usage() {
    cat <<USAGE
Usage: packaging/build-pkg.sh [options]

Builds prestage-VERSION.pkg: a universal, signed, notarized and stapled distribution package.

  --version VERSION            package version (default: the version in Cargo.toml)
  --app-identity NAME          "Developer ID Application: Org (TEAMID)" for the binary
  --installer-identity NAME    "Developer ID Installer: Org (TEAMID)" for the package
  --team-id TEAMID             Apple team ID; must match both identities (default: the
                               team ID both identities end with, when they agree)
  --notary-profile PROFILE     keychain profile made with 'xcrun notarytool store-credentials'
  --dialog-pkg PATH            swiftDialog package to ship as
                               /usr/local/libexec/prestage/swiftDialog.pkg (set
                               UI.DialogPackagePath to that path in the configuration)
  --config PATH                local configuration installed as
                               /Library/Preferences/$label.plist (root:wheel 0600)
  --out DIR                    output directory (default: dist)
  --unsigned                   ad-hoc signed binary, unsigned package, no notarization
                               (for local testing only: MDMs refuse unsigned packages)
  --dry-run                    print every command instead of running it
  -h, --help                   this help
USAGE
}

die() {
    printf 'build-pkg: error: %s\n' "$*" >&2
    exit 1
}

note() { printf 'build-pkg: %s\n' "$*" >&2; }

# quote ARG: ARG as a shell word, unquoted when that is unambiguous.
quote() {
    case "$1" in
    '' | *[!A-Za-z0-9_./:=@%+,-]*)
        printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
        ;;
    *) printf '%s' "$1" ;;
    esac
}

# run CMD ARGS...: print the command; run it unless this is a dry run.
run() {
    local line="+" arg
    for arg in "$@"; do
        line="$line $(quote "$arg")"
    done
    printf '%s\n' "$line"
    if [ "$dry_run" -eq 0 ]; then
        "$@"
    fi
}

version=""
app_identity=""
installer_identity=""
team_id=""
notary_profile=""
dialog_pkg=""
config=""
out="dist"
dry_run=0
unsigned=0

need_value() {
    if [ "$#" -lt 2 ] || [ -z "$2" ]; then
        die "$1 needs a value (see --help)"
    fi
}

while [ "$#" -gt 0 ]; do
    case "$1" in
    --version) need_value "$@"; version="$2"; shift 2 ;;
    --app-identity) need_value "$@"; app_identity="$2"; shift 2 ;;
    --installer-identity) need_value "$@"; installer_identity="$2"; shift 2 ;;
    --team-id) need_value "$@"; team_id="$2"; shift 2 ;;
    --notary-profile) need_value "$@"; notary_profile="$2"; shift 2 ;;
    --dialog-pkg) need_value "$@"; dialog_pkg="$2"; shift 2 ;;
    --config) need_value "$@"; config="$2"; shift 2 ;;
    --out) need_value "$@"; out="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --unsigned) unsigned=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
done

if [ -z "$version" ]; then
    version="$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$repo/Cargo.toml" | head -n 1)"
    [ -n "$version" ] || die "could not read the version from $repo/Cargo.toml; pass --version"
fi
case "$version" in
*[!0-9A-Za-z.+-]* | '') die "--version '$version' is not a version such as 1.2.3" ;;
esac

if [ "$unsigned" -eq 0 ]; then
    [ -n "$app_identity" ] || die "--app-identity is required (or --unsigned for a local test build)"
    [ -n "$installer_identity" ] || die "--installer-identity is required (or --unsigned for a local test build)"
    # Both identities carry the team ID in parentheses at their end (`Developer ID
    # Application: Example Corp (ABCDE12345)`): without --team-id, take it from them; they
    # must agree.
    app_team="$(printf '%s' "$app_identity" | sed -n 's/.*(\([A-Z0-9]\{10\}\))$/\1/p')"
    installer_team="$(printf '%s' "$installer_identity" | sed -n 's/.*(\([A-Z0-9]\{10\}\))$/\1/p')"
    if [ -z "$team_id" ]; then
        [ -n "$app_team" ] || die "--app-identity '$app_identity' does not end with a team ID in parentheses; pass --team-id"
        [ -n "$installer_team" ] || die "--installer-identity '$installer_identity' does not end with a team ID in parentheses; pass --team-id"
        [ "$app_team" = "$installer_team" ] || die "the identities name two teams ($app_team and $installer_team); sign with one team's Developer ID Application and Installer certificates"
        team_id="$app_team"
        note "team ID $team_id (from the signing identities)"
    fi
    [ -n "$notary_profile" ] || die "--notary-profile is required (or --unsigned for a local test build)"
    if ! printf '%s' "$team_id" | grep -Eq '^[A-Z0-9]{10}$'; then
        die "--team-id '$team_id' is not an Apple team ID (10 upper-case letters and digits)"
    fi
    case "$app_identity" in
    "Developer ID Application:"*"($team_id)") ;;
    *) die "--app-identity must be 'Developer ID Application: <name> ($team_id)', got '$app_identity'" ;;
    esac
    case "$installer_identity" in
    "Developer ID Installer:"*"($team_id)") ;;
    *) die "--installer-identity must be 'Developer ID Installer: <name> ($team_id)', got '$installer_identity'" ;;
    esac
fi
if [ -n "$dialog_pkg" ] && [ ! -f "$dialog_pkg" ]; then
    die "--dialog-pkg $dialog_pkg does not exist"
fi
if [ -n "$config" ] && [ ! -f "$config" ]; then
    die "--config $config does not exist"
fi
if [ "$dry_run" -eq 0 ] && [ "$(uname -s)" != Darwin ]; then
    die "building the package needs macOS (pkgbuild, productbuild, codesign); use --dry-run to see the commands"
fi

stage="$out/stage"
payload="$stage/payload"
scripts="$stage/scripts"
binary="$payload/usr/local/libexec/prestage/prestage"
component="$stage/prestage-component.pkg"
distribution="$stage/distribution.xml"
product="$out/prestage-$version.pkg"
if [ "$unsigned" -eq 1 ]; then
    product="$out/prestage-$version-unsigned.pkg"
fi

# Binaries built for macOS 11, the first release with Apple silicon; also what
# cargo's aarch64-apple-darwin target assumes.
export MACOSX_DEPLOYMENT_TARGET="${MACOSX_DEPLOYMENT_TARGET:-11.0}"
note "building prestage $version (MACOSX_DEPLOYMENT_TARGET=$MACOSX_DEPLOYMENT_TARGET)"

# 1. Release builds.
for triple in aarch64-apple-darwin x86_64-apple-darwin; do
    run cargo build --release --locked --no-default-features --bin prestage --manifest-path "$repo/Cargo.toml" --target "$triple"
done

# 2. Payload root, laid out as on the Mac (SPEC §1).
run rm -rf "$stage"
run mkdir -p "$payload/usr/local/libexec/prestage" "$payload/usr/local/bin" \
    "$payload/Library/LaunchDaemons" "$scripts"
run lipo -create -output "$binary" \
    "$target_dir/aarch64-apple-darwin/release/prestage" \
    "$target_dir/x86_64-apple-darwin/release/prestage"

# 3. Sign the binary: hardened runtime and secure timestamp (codesign(1)); the identifier is
# our label so the signature names the product, not the file.
if [ "$unsigned" -eq 1 ]; then
    run codesign --force --sign - --identifier "$label" "$binary"
else
    run codesign --force --options runtime --timestamp --identifier "$label" \
        --sign "$app_identity" "$binary"
    run codesign --verify --strict --verbose=2 "$binary"
fi

# Relative link, so it resolves on any target volume.
run ln -s ../libexec/prestage/prestage "$payload/usr/local/bin/prestage"
run install -m 0644 "$repo/launchd/$label.plist" "$payload/Library/LaunchDaemons/$label.plist"
run install -m 0755 "$repo/packaging/uninstall.sh" "$payload/usr/local/libexec/prestage/uninstall.sh"
if [ -n "$config" ]; then
    run mkdir -p "$payload/Library/Preferences"
    run install -m 0600 "$config" "$payload/Library/Preferences/$label.plist"
fi
if [ -n "$dialog_pkg" ]; then
    run install -m 0644 "$dialog_pkg" "$payload/usr/local/libexec/prestage/swiftDialog.pkg"
fi
run install -m 0755 "$repo/packaging/scripts/preinstall" "$scripts/preinstall"
run install -m 0755 "$repo/packaging/scripts/postinstall" "$scripts/postinstall"

# 4. Component package (pkgbuild(1)); ownership "recommended" installs everything root:wheel.
run pkgbuild --root "$payload" --scripts "$scripts" --identifier "$label" --version "$version" \
    --install-location / --ownership recommended "$component"

# 5. Distribution package (productbuild(1)): synthesize the distribution file with our
# requirements (both architectures, so Apple silicon never asks for Rosetta; macOS 11+), then
# build and sign the product archive from it.
run productbuild --synthesize --product "$repo/packaging/requirements.plist" \
    --package "$component" "$distribution"
if [ "$unsigned" -eq 1 ]; then
    run productbuild --distribution "$distribution" --package-path "$stage" \
        --identifier "$label" --version "$version" "$product"
    note "unsigned test package: $product (MDMs and prestage enrollment refuse unsigned packages)"
    exit 0
fi
run productbuild --distribution "$distribution" --package-path "$stage" \
    --identifier "$label" --version "$version" --sign "$installer_identity" --timestamp "$product"
run pkgutil --check-signature "$product"

# 6. Notarize and staple (notarytool(1), stapler(1)). stapler fails when Apple issued no
# ticket, so a rejected submission stops the build here; `xcrun notarytool log <id>
# --keychain-profile <profile>` says why.
run xcrun notarytool submit "$product" --keychain-profile "$notary_profile" --wait
run xcrun stapler staple "$product"
run xcrun stapler validate "$product"
note "done: $product"
