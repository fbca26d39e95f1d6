#!/bin/bash
# prestage uninstaller: stop the daemon and remove every file the package installed, the
# state directory and the log. User accounts are never touched: not the setup account, not the
# employee's account.
#
# Usage: sudo uninstall.sh [TARGET_VOLUME]     (default "/")
# The package also installs this script as /usr/local/libexec/prestage/uninstall.sh, so an MDM
# can run it from a policy or script payload.
#
# Left alone on purpose: the configuration profile (remove it in the MDM), the JumpCloud agent
# and the Mac's record in JumpCloud, and a System keychain item named by APIKeyKeychainService
# (prestage deletes it itself at the end of an enrollment).
#
# PRESTAGE_TOOLS_ROOT (tests only): the directory standing for the running Mac's "/". Tools run
# from under it, and a target volume equal to it counts as the boot volume. Default "/".
set -euo pipefail
export PATH=/usr/bin:/bin:/usr/sbin:/sbin

label=io.prestage.enroll
case "${1:-}" in
-h | --help)
    printf 'Usage: sudo %s [TARGET_VOLUME]\nRemoves prestage (daemon, binary, configuration file, state, log) from TARGET_VOLUME (default /).\n' "$0"
    exit 0
    ;;
esac
target_volume="${1:-/}"
target="${target_volume%/}"
tools="${PRESTAGE_TOOLS_ROOT:-/}"
tools="${tools%/}"
launchctl="$tools/bin/launchctl"
pkgutil="$tools/usr/sbin/pkgutil"

log() { printf 'prestage uninstall: %s\n' "$*"; }

if [ -z "${PRESTAGE_TOOLS_ROOT:-}" ] && [ "$(id -u)" -ne 0 ]; then
    log "error: must run as root; run it again with sudo"
    exit 1
fi
if [ ! -d "${target:-/}" ]; then
    log "error: target volume $target_volume does not exist"
    exit 1
fi

if [ "${target:-/}" = "${tools:-/}" ]; then
    if "$launchctl" print "system/$label" >/dev/null 2>&1; then
        log "stopping system/$label"
        "$launchctl" bootout "system/$label" || true
    fi
fi

remove() {
    if [ -e "$1" ] || [ -L "$1" ]; then
        rm -rf -- "$1"
        log "removed $1"
    fi
}

remove "$target/Library/LaunchDaemons/$label.plist"
# The link is ours only while it points at our binary; anything else an admin put there stays.
link="$target/usr/local/bin/prestage"
if [ -L "$link" ]; then
    case "$(readlink "$link")" in
    */libexec/prestage/prestage) remove "$link" ;;
    *) log "left $link alone: it does not point at prestage's binary" ;;
    esac
fi
remove "$target/usr/local/libexec/prestage"
remove "$target/Library/Preferences/$label.plist"
remove "$target/var/db/prestage"
remove "$target/var/log/prestage.log"

# Forget the receipt so the MDM sees the package as not installed (pkgutil(1)); a missing
# receipt is fine.
if [ -x "$pkgutil" ]; then
    "$pkgutil" --volume "${target:-/}" --forget "$label" >/dev/null 2>&1 || true
fi
log "done"
