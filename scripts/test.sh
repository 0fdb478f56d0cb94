#!/usr/bin/env bash
# The whole Steward test suite, including its own setup, on a fresh Debian machine:
#   scripts/test.sh
# It installs the Debian packages the tests need (when run as root, or with sudo), builds the
# binaries the end-to-end tests run, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use. gcc builds the bundled SQLite and ring; hostname is what the
# end-to-end tests compare the CMDB against; snmpd is the real agent the SNMP tests poll, and
# snmp (snmpbulkwalk) the reference their walks are checked against; systemd gives the install
# tests the real `systemctl --root` and `systemd-sysusers --root` (nothing runs as PID 1), and
# util-linux their `unshare` and `setpriv`.
APT_PACKAGES=(gcc libc6-dev hostname snmpd snmp systemd util-linux)

missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    # A partial index failure (one unreachable mirror) must not stop the install.
    $SUDO apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

command -v cargo >/dev/null || { echo "error: cargo not found; install Rust with rustup (rust-toolchain.toml pins the version)"; exit 1; }

# The ticket connector tests run a real Request Tracker 5 on loopback (installed once).
scripts/rt5.sh install

# The end-to-end tests run the real binaries from target/debug.
cargo build --workspace --bins --locked
cargo test --workspace --locked
