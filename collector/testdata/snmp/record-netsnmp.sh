#!/usr/bin/env bash
# Records a walk of this machine from a private net-snmp snmpd on loopback, in Steward's
# recorded-walk format. See README.md in this folder.
#
#   record-netsnmp.sh OUT.walk [LATER.walk SECONDS]
#
# With LATER.walk, a second walk of the same daemon is recorded SECONDS later (for rates).
# Needs snmpd, snmpbulkwalk and snmpget (net-snmp 5.9) and python3. Touches nothing outside
# a temporary directory; the daemon is stopped by its PID on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: record-netsnmp.sh OUT.walk [LATER.walk SECONDS]}
later=${2:-}
gap=${3:-30}
port=${PORT:-16161}
agent=127.0.0.1:$port

dir=$(mktemp -d)
cat >"$dir/snmpd.conf" <<CONF
rocommunity public 127.0.0.1
master no
dontLogTCPWrappersConnects yes
sysName steward-lab-1
sysLocation Rack 12, Server room B, Example HQ
sysContact noc@example.invalid
CONF

SNMP_PERSISTENT_DIR="$dir/persist" /usr/sbin/snmpd -f -Lo -C -c "$dir/snmpd.conf" \
    -p "$dir/pid" "udp:$agent" >"$dir/snmpd.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT

# hrProcessorLoad is the average over the last minute, and net-snmp answers it only once it
# has a minute of samples: wait for it (at most 90 s).
for _ in $(seq 90); do
    if snmpget -v2c -c public -On -Oe "$agent" 1.3.6.1.2.1.25.3.3.1.2.196608 2>/dev/null |
        grep -q 'INTEGER'; then
        break
    fi
    sleep 1
done

# One line per module root (keep in step with the modules' roots(); a test checks).
walk() {
    for root in \
        1.3.6.1.2.1.1 \
        1.3.6.1.2.1.2.2.1 \
        1.3.6.1.2.1.31.1.1.1 \
        1.3.6.1.2.1.25.3.3.1.2 \
        1.3.6.1.2.1.25.2.3.1; do
        # -On numeric OIDs (no MIB files needed), -Oe numeric enums, -Ox octet strings in hex.
        snmpbulkwalk -v2c -c public -On -Oe -Ox "$agent" "$root"
    done | python3 "$here/netsnmp-to-walk.py"
}

walk >"$out"
if [ -n "$later" ]; then
    sleep "$gap"
    walk >"$later"
fi
