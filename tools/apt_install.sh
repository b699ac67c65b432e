#!/bin/sh
# apt_install.sh NAME "TOOLS" "PACKAGES" ["CHECKS"]: install the Debian PACKAGES with
# apt-get, only if one of the commands TOOLS is missing, then check the commands CHECKS
# (default: TOOLS) exist. Non-interactive; runs apt-get directly as root, else through
# sudo -n; waits (up to 10 minutes) while another apt or dpkg holds its lock. Exits
# non-zero with a message saying what to do when it cannot install. NAME prefixes every
# line. Used by tools/mcu/install_toolchain.sh and tools/browser/install_chromium.sh.
set -eu

NAME=$1
TOOLS=$2
PACKAGES=$3
CHECKS=${4:-$2}

say() { printf '%s: %s\n' "$NAME" "$*"; }
fail() { printf '%s: error: %s\n' "$NAME" "$*" >&2; exit 1; }

missing=""
for tool in $TOOLS; do
    if command -v "$tool" >/dev/null 2>&1; then
        say "found $tool: $(command -v "$tool")"
    else
        missing="$missing $tool"
    fi
done

if [ -z "$missing" ]; then
    say "nothing to install"
    exit 0
fi
say "missing:$missing"

command -v apt-get >/dev/null 2>&1 ||
    fail "apt-get not found; install $PACKAGES with your package manager"

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    fail "need root (or password-less sudo) to run apt-get install $PACKAGES"
fi

APT="env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600"
LOCK_WAIT=600  # seconds to wait for another apt/dpkg (unattended-upgrades, a CI step)
POLL=${APT_LOCK_POLL:-10}  # seconds between attempts while the lock is held

# apt_run ARGS...: apt-get ARGS, waiting while another process holds an apt or dpkg lock
# (DPkg::Lock::Timeout covers dpkg's lock; the lists lock of "update" is retried here).
apt_run() {
    waited=0
    log=$(mktemp)
    while :; do
        if $SUDO $APT "$@" 2>"$log"; then
            cat "$log" >&2; rm -f "$log"; return 0
        fi
        if grep -qi "could not get lock\|unable to acquire\|is another process using it" "$log" &&
                [ "$waited" -lt "$LOCK_WAIT" ]; then
            say "another apt/dpkg holds the lock; waiting ($waited s of $LOCK_WAIT s)"
            sleep "$POLL"
            waited=$((waited + POLL))
            continue
        fi
        cat "$log" >&2; rm -f "$log"; return 1
    done
}

say "running: ${SUDO:+$SUDO }apt-get update"
apt_run update -q || fail "apt-get update failed"
say "running: ${SUDO:+$SUDO }apt-get install -y --no-install-recommends $PACKAGES"
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt_run install -y -q --no-install-recommends $PACKAGES ||
    fail "apt-get install $PACKAGES failed"

for tool in $CHECKS; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool still missing after installing $PACKAGES"
    say "installed: $tool: $(command -v "$tool")"
done
