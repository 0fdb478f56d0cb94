#!/usr/bin/env bash
# A real Request Tracker 5 on loopback, for the ticket connector tests.
#
#   scripts/rt5.sh install          install RT5 from Debian's archive (idempotent; root or sudo)
#   scripts/rt5.sh start DIR PORT   a fresh RT instance: SQLite database, config and logs in DIR,
#                                   serving http://127.0.0.1:PORT; prints the root password
#   scripts/rt5.sh stop DIR         stops the instance started in DIR
#
# Each instance has its own site config, DIR/RT_SiteConfig.pm: RT (RT::Config::LoadConfig)
# loads the file named by the RT_SITE_CONFIG environment variable instead of
# /etc/request-tracker5/RT_SiteConfig.pm, and RT_SITE_CONFIG_DIR=/dev/null keeps it from loading
# the packaged RT_SiteConfig.d snippets (which force WebPath /rt and the packaged database)
# after it. So several instances run side by side, each with its own database and port. In DIR after `start`:
#   rt.db        the SQLite database        root.pass  root's password (REST2 basic auth)
#   rt.log       the server's log           rt.pid     the server's PID
#   root.token   an RT auth token of root (`Authorization: token ...`)
# The database has queue "General", a second queue "Network", and the ticket custom field
# "Correlation Key" (FreeformSingle) applied to both.
#
# Timings measured on a 2-core Debian 12 machine: install ~40-60 s from Debian's archive (about
# 220 packages, 36 s measured); start of a fresh instance ~6 s (schema init ~2 s, queue and
# field ~1 s, auth token ~1.5 s, server ready ~1.5 s); stop ~2 s; restart (same database) ~2 s.
set -euo pipefail

RT_LIB=/usr/share/request-tracker5
RT_SERVER=$RT_LIB/libexec/rt-server
RT_SETUP=/usr/sbin/rt-setup-database-5
# curl: how `start` sees that the REST API answers.
PACKAGES=(request-tracker5 rt5-db-sqlite rt5-standalone rt5-clients dma curl)

die() {
    echo "rt5.sh: $*" >&2
    exit 1
}

sudo_if_needed() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

installed() {
    local package
    for package in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || return 1
    done
    [ -x "$RT_SERVER" ] && [ -x "$RT_SETUP" ]
}

cmd_install() {
    if installed; then
        echo "rt5.sh: Request Tracker 5 is already installed"
        return 0
    fi
    local started=$SECONDS
    echo "rt5.sh: installing ${PACKAGES[*]}"
    # Preseed so nothing prompts: no dbconfig (each test instance makes its own SQLite
    # database), no cron jobs, no mail server (dma only satisfies the MTA dependency).
    sudo_if_needed debconf-set-selections <<'EOF'
request-tracker5 request-tracker5/dbconfig-install boolean false
request-tracker5 request-tracker5/database-type select sqlite3
request-tracker5 request-tracker5/install-cronjobs boolean false
request-tracker5 request-tracker5/handle-siteconfig-permissions boolean true
request-tracker5 request-tracker5/webbaseurl string http://127.0.0.1:8080
request-tracker5 request-tracker5/rtname string steward-test
request-tracker5 request-tracker5/organization string steward.invalid
request-tracker5 request-tracker5/correspondaddress string rt@localhost
request-tracker5 request-tracker5/commentaddress string rt-comment@localhost
dma dma/mailname string localhost
dma dma/relayhost string
EOF
    # A partial index failure (one unreachable mirror) must not stop the install.
    sudo_if_needed apt-get update -qq || true
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${PACKAGES[@]}"
    installed || die "the packages installed but $RT_SERVER or $RT_SETUP is missing"
    echo "rt5.sh: installed in $((SECONDS - started)) s"
}

# The per-instance site config: database in DIR, this port, no mail, log to stderr.
write_site_config() {
    local dir=$1 port=$2
    cat >"$dir/RT_SiteConfig.pm" <<EOF
# Site config of the test instance in $dir (loaded through RT_SITE_CONFIG).
Set(\$rtname, 'steward-test');
Set(\$Organization, 'steward.invalid');
Set(\$DatabaseType, 'SQLite');
Set(\$DatabaseName, '$dir/rt.db');
Set(\$WebPath, '');
Set(\$WebDomain, '127.0.0.1');
Set(\$WebPort, $port);
Set(\$WebBaseURL, 'http://127.0.0.1:$port');
Set(\$CanonicalizeRedirectURLs, 0);
Set(\$CorrespondAddress, 'rt@localhost');
Set(\$CommentAddress, 'rt-comment@localhost');
Set(\$Timezone, 'UTC');
# Outgoing mail (auto-replies to requestors) goes to DIR/sendmail, which discards it.
Set(\$MailCommand, 'sendmailpipe');
Set(\$SendmailPath, '$dir/sendmail');
Set(\$SendmailArguments, '');
Set(\$LogToSTDERR, 'info');
Set(\$LogToSyslog, undef);
Set(\$LogToFile, undef);
1;
EOF
    chmod 0600 "$dir/RT_SiteConfig.pm"
    printf '#!/bin/sh\nexec cat >/dev/null\n' >"$dir/sendmail"
    chmod 0755 "$dir/sendmail"
}

write_initialdata() {
    local dir=$1
    cat >"$dir/initialdata.pl" <<'EOF'
@Queues = (
    { Name => 'Network', Description => 'Network devices', CorrespondAddress => '', CommentAddress => '' },
);
@CustomFields = (
    {
        Name        => 'Correlation Key',
        Type        => 'FreeformSingle',
        LookupType  => 'RT::Queue-RT::Ticket',
        Description => 'Steward correlation key',
        ApplyTo     => ['General', 'Network'],
    },
);
1;
EOF
}

rest_ready() {
    local port=$1 pass=$2
    curl -fsS -o /dev/null --max-time 5 -u "root:$pass" "http://127.0.0.1:$port/REST/2.0/rt" 2>/dev/null
}

cmd_start() {
    local dir=${1:-} port=${2:-}
    [ -n "$dir" ] && [ -n "$port" ] || die "usage: rt5.sh start DIR PORT"
    installed || die "Request Tracker 5 is not installed: run scripts/rt5.sh install (scripts/test.sh does it)"
    command -v curl >/dev/null || die "curl is needed to check that RT answers"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    local started=$SECONDS
    export RT_SITE_CONFIG="$dir/RT_SiteConfig.pm" RT_SITE_CONFIG_DIR=/dev/null
    if [ ! -s "$dir/rt.db" ]; then
        write_site_config "$dir" "$port"
        write_initialdata "$dir"
        local pass
        pass=$(head -c 18 /dev/urandom | base64 | tr -d '+/=' | head -c 20)
        (umask 077 && printf '%s' "$pass" >"$dir/root.pass")
        "$RT_SETUP" --action init --skip-create --root-password-file "$dir/root.pass" \
            >"$dir/setup.log" 2>&1 || { tail -n 30 "$dir/setup.log" >&2; die "database init failed"; }
        "$RT_SETUP" --action insert --skip-create --datafile "$dir/initialdata.pl" \
            >>"$dir/setup.log" 2>&1 || { tail -n 30 "$dir/setup.log" >&2; die "inserting the queue and custom field failed"; }
        # An RT auth token for root (`Authorization: token ...`); only RT's Perl API makes them.
        (umask 077 && perl -I"$RT_LIB/lib" -e '
            use strict; use warnings; use RT; RT::LoadConfig(); RT::Init();
            my $root = RT::User->new(RT->SystemUser); $root->Load("root");
            my ($ok, $msg, $auth) = RT::AuthToken->new(RT->SystemUser)
                ->Create(Owner => $root->Id, Description => "steward tests");
            die "auth token: $msg\n" unless $ok;
            print $auth;' >"$dir/root.token" 2>>"$dir/setup.log") \
            || { tail -n 30 "$dir/setup.log" >&2; die "creating root's auth token failed"; }
    else
        # A restart of an existing instance: same database, same port.
        write_site_config "$dir" "$port"
    fi
    local pass
    pass=$(cat "$dir/root.pass")
    if [ -s "$dir/rt.pid" ] && kill -0 "$(cat "$dir/rt.pid")" 2>/dev/null; then
        die "an instance already runs in $dir (PID $(cat "$dir/rt.pid"))"
    fi
    # setsid: the server gets its own process group, so `stop` ends it and its workers only.
    setsid "$RT_SERVER" --host 127.0.0.1 --port "$port" --max-workers 2 \
        </dev/null >>"$dir/rt.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$dir/rt.pid"
    local deadline=$((SECONDS + 60))
    until rest_ready "$port" "$pass"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 40 "$dir/rt.log" >&2
            die "rt-server exited before answering (log: $dir/rt.log)"
        fi
        if [ $SECONDS -ge $deadline ]; then
            tail -n 40 "$dir/rt.log" >&2
            die "RT did not answer GET http://127.0.0.1:$port/REST/2.0/rt within 60 s (log: $dir/rt.log)"
        fi
        sleep 0.2
    done
    echo "rt5.sh: RT ready on http://127.0.0.1:$port (PID $pid, $((SECONDS - started)) s)" >&2
}

cmd_stop() {
    local dir=${1:-}
    [ -n "$dir" ] || die "usage: rt5.sh stop DIR"
    [ -s "$dir/rt.pid" ] || return 0
    local pid
    pid=$(cat "$dir/rt.pid")
    if kill -0 "$pid" 2>/dev/null; then
        # The server leads its own process group (setsid): signal the group, i.e. it and
        # its workers, and nothing else.
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        local i
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$dir/rt.pid"
}

case "${1:-}" in
install) cmd_install ;;
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
*) die "usage: rt5.sh install | start DIR PORT | stop DIR" ;;
esac
