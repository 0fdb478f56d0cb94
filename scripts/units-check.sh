#!/usr/bin/env bash
# The systemd units as systemd itself judges them: `systemd-analyze verify` (syntax, the binary
# exists and runs) and `systemd-analyze security --offline=yes` (exposure; the agent's must be
# at most 2.0, the collector's too). Run from CI; needs the `systemd` package (not systemd as PID 1).
#   scripts/units-check.sh [TARGET_DIR_PROFILE]   (default target/debug, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v systemd-analyze >/dev/null; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq systemd
fi

bins="${1:-${CARGO_TARGET_DIR:-target}/debug}"
[ -x "$bins/steward-agent" ] && [ -x "$bins/steward-collector" ] ||
    cargo build --locked -p steward-agent -p steward-collector
bins="$(cd "$bins" && pwd)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
status=0
for unit in steward-agent steward-collector; do
    # verify checks that ExecStart's binary exists: point it at the one just built.
    sed "s#/usr/bin/$unit #$bins/$unit #" "packaging/systemd/$unit.service" > "$work/$unit.service"
    echo "== systemd-analyze verify $unit.service"
    # Other units on this machine may have their own complaints: only ours count.
    if ! out=$(systemd-analyze verify --man=no "$work/$unit.service" 2>&1); then
        echo "$out"
        echo "FAIL: $unit.service does not verify"
        status=1
    elif grep "^$work/$unit.service\|^$unit.service" <<<"$out"; then
        echo "FAIL: systemd-analyze verify complained about $unit.service"
        status=1
    else
        echo "ok"
    fi
    echo "== systemd-analyze security --offline=yes $unit.service"
    # --threshold is on the 0-100 scale of the summary's 0.0-10.0: 20 is an exposure of 2.0.
    if out=$(systemd-analyze security --offline=yes --threshold=20 "packaging/systemd/$unit.service" 2>&1); then
        grep "Overall exposure level" <<<"$out"
    else
        echo "$out" | grep -E "✗|Overall"
        echo "FAIL: $unit.service is exposed beyond 2.0"
        status=1
    fi
done
exit $status
