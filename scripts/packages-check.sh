#!/usr/bin/env bash
# Installs the amd64 Debian packages scripts/packages.sh built, on this machine, and checks what
# they did; then removes and purges them and checks that too:
#   scripts/packages-check.sh [AGENT_DEB COLLECTOR_DEB]
# (default: the newest target/debian/steward-{agent,collector}_*_amd64.deb). Needs root and a
# Debian-like system; works without systemd as PID 1 (as in a container): then nothing may be
# started, and the units are only enabled (links in /etc/systemd/system).
# Checks: files in place (binaries run, units, sysusers files, conffiles, man pages, completions),
# service users, state and data directories (0700, owned by their service user), the collector's
# collector.toml link, no steward process started by the install, a reinstall (the upgrade path),
# `init` as the collector's user (adopting the edited conffile through the link), the whole path
# (the collector serving as its user, the agent enrolled by root and reporting as its user,
# the host in the CMDB), `dpkg -r` (conffiles and data stay) and `dpkg -P` (all gone). Runs lintian
# on every package in target/debian/ and prints what it says (not fatal). Leaves the machine as
# it found it: anything under the package paths before the run is moved aside and put back, and
# users the run created are deleted.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

AGENT_DIR=/var/lib/steward-agent
COLLECTOR_DIR=/var/lib/steward-collector
ETC_DIR=/etc/steward
PACKAGES=(steward-agent steward-collector)

if [ "$(id -u)" != 0 ]; then
    # It installs packages: as root, through sudo where that is how this machine gets root.
    command -v sudo >/dev/null && exec sudo -- "$0" "$@"
    echo "error: run as root (it installs packages)" >&2
    exit 2
fi
command -v dpkg >/dev/null || { echo "error: dpkg not found: a Debian-like system is needed" >&2; exit 2; }

# shellcheck disable=SC2012 # our own file names, no odd characters
newest() { ls -t "$root"/target/debian/"$1"_*_amd64.deb 2>/dev/null | head -n 1; }
if [ $# -eq 2 ]; then
    agent_deb=$(realpath "$1")
    collector_deb=$(realpath "$2")
elif [ $# -eq 0 ]; then
    agent_deb=$(newest steward-agent)
    collector_deb=$(newest steward-collector)
else
    echo "usage: $0 [AGENT_DEB COLLECTOR_DEB]" >&2
    exit 2
fi
for deb in "$agent_deb" "$collector_deb"; do
    if [ -z "$deb" ] || [ ! -f "$deb" ]; then
        echo "error: package not found (run scripts/packages.sh first)" >&2
        exit 2
    fi
done
echo "agent:     $agent_deb"
echo "collector: $collector_deb"

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then ok "$what"; else fail "$what"; fi
}
# Fatal: a step the rest depends on went wrong.
die() { echo "FAIL: $*"; echo "packages-check: FAILED (stopped early)"; exit 1; }
# dpkg_step NAME DPKG-ARGS...: runs dpkg, prints what it said, stops the run if it failed.
dpkg_step() {
    local name=$1
    shift
    dpkg "$@" >"$work/$name.log" 2>&1 || { cat "$work/$name.log"; die "dpkg $*"; }
    cat "$work/$name.log"
}
# status_is PACKAGE STATUS: dpkg's status of the package is STATUS ("install ok installed").
status_is() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "$2" ]; }
# known PACKAGE: dpkg has the package in any state but not-installed (config-files included).
known() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -qv not-installed; }
forgotten() { ! known "$1"; }

work=$(mktemp -d)
created_users=()

serve_pid=
cleanup() {
    local status=$?
    set +e
    if [ -n "$serve_pid" ]; then
        kill "$serve_pid" 2>/dev/null
        wait "$serve_pid" 2>/dev/null
    fi
    for package in "${PACKAGES[@]}"; do
        if known "$package"; then
            dpkg -P "$package" >/dev/null 2>&1 || echo "warning: cleanup could not purge $package"
        fi
    done
    for user in "${created_users[@]}"; do
        userdel "$user" >/dev/null 2>&1
        groupdel "$user" >/dev/null 2>&1
    done
    for path in "$AGENT_DIR" "$COLLECTOR_DIR" "$ETC_DIR"; do
        local saved="$work/saved$path"
        if [ -e "$saved" ] || [ -L "$saved" ]; then
            rm -rf "$path"
            mv "$saved" "$path"
            echo "restored $path"
        fi
    done
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

# --- the starting point --------------------------------------------------------------------

# Packages left by an interrupted earlier run go first.
for package in "${PACKAGES[@]}"; do
    if known "$package"; then
        echo "purging $package left installed by an earlier run"
        dpkg -P "$package" >/dev/null
    fi
done
# Whatever else is at the package's paths (a hand-made collector, an agent enrolled without the
# package) is moved aside and put back at the end: dpkg would otherwise ask about an existing
# /etc/steward/agent.toml, and purging would delete the data.
for path in "$AGENT_DIR" "$COLLECTOR_DIR" "$ETC_DIR"; do
    if [ -e "$path" ] || [ -L "$path" ]; then
        mkdir -p "$work/saved$(dirname "$path")"
        mv "$path" "$work/saved$path"
        echo "moved $path aside for the run"
    fi
done
for user in "${PACKAGES[@]}"; do
    getent passwd "$user" >/dev/null || created_users+=("$user")
done

# Steward processes running now (other tests may run their own); any other one running the
# installed binaries afterwards was started by the packages.
# (By the program file: pgrep matches at most 15 characters of a process name.)
steward_pids() {
    local exe
    for exe in /proc/[0-9]*/exe; do
        case "$(readlink "$exe" 2>/dev/null)" in
            */steward-agent|*/steward-collector) exe=${exe#/proc/}; echo "${exe%/exe}" ;;
        esac
    done | sort
}
steward_pids >"$work/pids.before"
# Files named like the packages outside the package database, to find what purge leaves behind.
steward_files() {
    find /etc /usr /var/lib /run \( -name 'steward-agent*' -o -name 'steward-collector*' -o -name '_steward-*' \) \
        -not -path '/var/lib/dpkg/*' 2>/dev/null | sort || true
}
steward_files >"$work/files.before"

systemd_running=false
[ -d /run/systemd/system ] && systemd_running=true
echo "systemd running as the init system: $systemd_running"

# --- install -------------------------------------------------------------------------------

echo
echo "=== dpkg -i"
dpkg_step install -i "$agent_deb" "$collector_deb"
for package in "${PACKAGES[@]}"; do
    check "$package installed" status_is "$package" "install ok installed"
done
check "first install printed the agent's next steps (enroll)" grep -q "steward-agent enroll" "$work/install.log"
check "first install printed the collector's next steps (init)" grep -q "steward-collector init" "$work/install.log"

echo
echo "=== files"
version=$(dpkg-query -W -f='${Version}' steward-agent)
upstream=${version%-*}
check "steward-agent --version says $upstream" sh -c "/usr/bin/steward-agent --version | grep -qx 'steward-agent $upstream'"
check "steward-collector --version says $upstream" sh -c "/usr/bin/steward-collector --version | grep -qx 'steward-collector $upstream'"
if command -v file >/dev/null; then
    check "the agent binary is static" sh -c "file -L /usr/bin/steward-agent | grep -Eq '(statically|static-pie) linked'"
fi
for package in "${PACKAGES[@]}"; do
    check "$package.service in /usr/lib/systemd/system" test -f "/usr/lib/systemd/system/$package.service"
    check "$package sysusers.d file" test -f "/usr/lib/sysusers.d/$package.conf"
    check "$package README and copyright" test -f "/usr/share/doc/$package/README.md" -a -f "/usr/share/doc/$package/copyright"
    check "$package changelog.Debian.gz" gzip -t "/usr/share/doc/$package/changelog.Debian.gz"
    check "bash completion for $package" bash -n "/usr/share/bash-completion/completions/$package"
    check "zsh completion for $package" sh -c "head -n 1 /usr/share/zsh/vendor-completions/_$package | grep -q '^#compdef $package'"
    check "fish completion for $package" sh -c "grep -q 'complete -c $package' /usr/share/fish/vendor_completions.d/$package.fish"
done
check "conffile /etc/steward/agent.toml" sh -c "dpkg-query -W -f='\${Conffiles}' steward-agent | grep -q '^ /etc/steward/agent.toml '"
check "conffile /etc/steward/collector.toml" sh -c "dpkg-query -W -f='\${Conffiles}' steward-collector | grep -q '^ /etc/steward/collector.toml '"
check "/etc/steward/agent.toml is packaging/agent.toml" cmp /etc/steward/agent.toml packaging/agent.toml
check "/etc/steward/collector.toml is packaging/etc/collector.toml (the init defaults)" \
    cmp /etc/steward/collector.toml packaging/etc/collector.toml
check "collector examples (collector.toml, rules.toml)" test -f /usr/share/doc/steward-collector/examples/collector.toml -a -f /usr/share/doc/steward-collector/examples/rules.toml

man_pages=$(dpkg -L steward-agent steward-collector | grep -c '^/usr/share/man/man1/.*\.1\.gz$' || true)
echo "man pages installed: $man_pages"
[ "$man_pages" -gt 20 ] || fail "expected more than 20 man pages, found $man_pages"
for page in steward-agent steward-agent-enroll steward-agent-run steward-collector steward-collector-init steward-collector-ci-list; do
    file=/usr/share/man/man1/$page.1.gz
    if ! gzip -t "$file" 2>/dev/null; then
        fail "man page $file"
    elif command -v man >/dev/null; then
        # Formatted without warnings, and saying what the command is.
        name=${page#steward-agent-}
        name=${name#steward-collector-}
        if LC_ALL=C MANWIDTH=100 man -l "$file" 2>"$work/man.err" | grep -q -- "$name" && [ ! -s "$work/man.err" ]; then
            ok "man -l $file"
        else
            fail "man -l $file: $(head -c 500 "$work/man.err")"
        fi
    else
        ok "man page $file (gzip -t; man not installed)"
    fi
done

echo
echo "=== users and directories"
for user in "${PACKAGES[@]}"; do
    check "user $user exists" getent passwd "$user"
    check "group $user exists" getent group "$user"
    check "user $user has no login shell" sh -c "getent passwd $user | cut -d: -f7 | grep -Eq '/(nologin|false)$'"
done
for pair in "$AGENT_DIR:steward-agent" "$COLLECTOR_DIR:steward-collector"; do
    dir=${pair%%:*}
    user=${pair#*:}
    actual=$(stat -c '%a %U %G' "$dir" 2>/dev/null || echo missing)
    if [ "$actual" = "700 $user $user" ]; then ok "$dir is 0700 $user:$user"; else fail "$dir: expected 700 $user $user, got $actual"; fi
done
link=$(readlink "$COLLECTOR_DIR/collector.toml" || true)
if [ "$link" = /etc/steward/collector.toml ]; then ok "$COLLECTOR_DIR/collector.toml -> $link"; else fail "$COLLECTOR_DIR/collector.toml is not a link to /etc/steward/collector.toml (${link:-no link})"; fi
for package in "${PACKAGES[@]}"; do
    check "$package.service enabled (multi-user.target.wants)" test -L "/etc/systemd/system/multi-user.target.wants/$package.service"
done

echo
echo "=== nothing started"
check_nothing_started() {
    local pid exe started=0
    for pid in $(steward_pids | comm -13 "$work/pids.before" -); do
        exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
        case "$exe" in
            /usr/bin/steward-agent|/usr/bin/steward-collector)
                fail "$1: $exe is running (pid $pid)"
                started=1
                ;;
        esac
    done
    if $systemd_running; then
        for package in "${PACKAGES[@]}"; do
            if systemctl is-active --quiet "$package.service"; then
                fail "$1: $package.service is active"
                started=1
            fi
        done
    fi
    [ "$started" = 1 ] || ok "$1: no steward service running"
}
sleep 1
check_nothing_started "after install"

echo
echo "=== reinstall (the upgrade path: postinst configure <old-version>)"
dpkg_step reinstall -i "$agent_deb" "$collector_deb"
check "conffiles untouched by the reinstall" sh -c "cmp /etc/steward/agent.toml packaging/agent.toml && cmp /etc/steward/collector.toml packaging/etc/collector.toml"
check "collector.toml link kept" test -L "$COLLECTOR_DIR/collector.toml"
sleep 1
check_nothing_started "after reinstall"

echo
echo "=== steward-collector init as steward-collector"
# As the README has it: the admin edits the conffile (here: listen on a free loopback port), then
# `init` adopts it through the link and makes the rest.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -i "s/^listen = .*/listen = \"127.0.0.1:$port\"/" /etc/steward/collector.toml
cp /etc/steward/collector.toml "$work/collector.toml.edited"
init_ok=false
if runuser -u steward-collector -- /usr/bin/steward-collector init --data-dir "$COLLECTOR_DIR" \
    >"$work/init.out" 2>&1; then
    init_ok=true
    ok "init succeeded; last line: $(tail -n 1 "$work/init.out")"
    check "init created steward.db" test -f "$COLLECTOR_DIR/steward.db"
    check "steward.db belongs to steward-collector" sh -c "stat -c %U $COLLECTOR_DIR/steward.db | grep -qx steward-collector"
    check "init kept the collector.toml link" test -L "$COLLECTOR_DIR/collector.toml"
    check "init left the edited conffile as it was" cmp /etc/steward/collector.toml "$work/collector.toml.edited"
    # Certificates are public; keys, the admin token and the database are the collector's alone.
    check "nothing in $COLLECTOR_DIR but certificates is readable by others" sh -c "[ -z \"\$(find $COLLECTOR_DIR -mindepth 1 ! -type l ! -name '*.crt' -perm /o=rwx)\" ]"
    check "steward.db is 0600" sh -c "stat -c %a $COLLECTOR_DIR/steward.db | grep -qx 600"
else
    fail "init as steward-collector:"
    sed 's/^/    /' "$work/init.out"
fi
sleep 1
check_nothing_started "after init"

echo
echo "=== the packaged path: the collector as its user, the agent enrolled by root and run as its user"
if $init_ok; then
    runuser -u steward-collector -- /usr/bin/steward-collector serve --data-dir "$COLLECTOR_DIR" \
        >"$work/serve.log" 2>&1 &
    serve_pid=$!
    for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    fingerprint=$(tail -n 1 "$work/init.out")
    if token=$(runuser -u steward-collector -- /usr/bin/steward-collector enroll-token create \
            --data-dir "$COLLECTOR_DIR" 2>"$work/token.err") \
        && /usr/bin/steward-agent enroll --collector "https://127.0.0.1:$port" --token "$token" \
            --ca-fingerprint "$fingerprint" >"$work/enroll.log" 2>&1; then
        ok "root enrolled the packaged agent with the packaged collector"
        # What root wrote into the service user's directory is the service user's.
        check "everything in $AGENT_DIR belongs to steward-agent" \
            sh -c "[ -z \"\$(find $AGENT_DIR ! -user steward-agent)\" ]"
        # The directory is 0700; within it the key is the agent's alone (certificates and who it
        # is are public).
        check "$AGENT_DIR is still 0700" sh -c "stat -c %a $AGENT_DIR | grep -qx 700"
        check "the agent's key is 0600" sh -c "stat -c %a $AGENT_DIR/agent.key | grep -qx 600"
        check "the unit's condition holds: $AGENT_DIR/agent.json" test -f "$AGENT_DIR/agent.json"
        if runuser -u steward-agent -- /usr/bin/steward-agent run --once >"$work/run.log" 2>&1; then
            ok "steward-agent run --once as steward-agent"
        else
            fail "steward-agent run --once as steward-agent: $(tail -n 5 "$work/run.log")"
        fi
        check "the collector's CMDB shows this host ($(hostname))" sh -c \
            "runuser -u steward-collector -- /usr/bin/steward-collector ci list --json --data-dir $COLLECTOR_DIR | grep -q '$(hostname)'"
    else
        fail "enroll: $(cat "$work/token.err" "$work/enroll.log" 2>/dev/null | tail -n 5)"
    fi
    kill "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
    serve_pid=
else
    echo "skipped: init failed"
fi

echo
echo "=== dpkg -r"
dpkg_step remove -r "${PACKAGES[@]}"
for package in "${PACKAGES[@]}"; do
    check "$package: config-files only" status_is "$package" "deinstall ok config-files"
    check "/usr/bin/$package gone" test ! -e "/usr/bin/$package"
    check "$package.service gone" test ! -e "/usr/lib/systemd/system/$package.service"
    check "$package man page gone" test ! -e "/usr/share/man/man1/$package.1.gz"
    check "$package bash completion gone" test ! -e "/usr/share/bash-completion/completions/$package"
done
check "conffile agent.toml kept" test -f /etc/steward/agent.toml
check "conffile collector.toml kept" test -f /etc/steward/collector.toml
check "$AGENT_DIR kept" test -d "$AGENT_DIR"
check "$COLLECTOR_DIR kept" test -d "$COLLECTOR_DIR"
if $init_ok; then check "the collector database kept" test -f "$COLLECTOR_DIR/steward.db"; fi

echo
echo "=== dpkg -P"
dpkg_step purge -P "${PACKAGES[@]}"
for package in "${PACKAGES[@]}"; do
    check "$package: not installed" forgotten "$package"
    check "$package.service not enabled or masked any more" \
        sh -c "[ ! -e /etc/systemd/system/multi-user.target.wants/$package.service ] && [ ! -L /etc/systemd/system/multi-user.target.wants/$package.service ] && [ ! -L /etc/systemd/system/$package.service ]"
    # Debian keeps system users on purge (their uid may still own files).
    check "user $package kept (Debian policy)" getent passwd "$package"
done
check "conffiles gone (/etc/steward)" test ! -e "$ETC_DIR"
check "$AGENT_DIR gone" test ! -e "$AGENT_DIR"
check "$COLLECTOR_DIR gone" test ! -e "$COLLECTOR_DIR"
leftovers=$(steward_files | comm -13 "$work/files.before" -)
if [ -z "$leftovers" ]; then ok "no files left behind"; else fail "left behind: $leftovers"; fi

echo
echo "=== lintian"
if ! command -v lintian >/dev/null; then
    echo "installing lintian"
    (apt-get update -qq || true) >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lintian >/dev/null 2>&1 || echo "could not install lintian"
fi
if command -v lintian >/dev/null; then
    for deb in "$root"/target/debian/steward-*_"$version"_*.deb; do
        echo "--- $(basename "$deb")"
        lintian --info --display-info --no-tag-display-limit "$deb" 2>&1 | grep -v '^N: *$' | sed -n '/^[EWIPX]:/p' || true
    done
else
    echo "lintian not available: skipped"
fi

echo
if [ "$failures" -gt 0 ]; then
    echo "packages-check: FAILED ($failures check(s))"
    exit 1
fi
echo "packages-check: all checks passed"
