#!/usr/bin/env bash
# Builds of the shipped agent (agent-release profile) for hosts and IoT gateways, measured and
# smoke-tested: static musl binaries for x86_64 and aarch64, and an armv7 (hard-float) binary
# linked against glibc (Rust ships no armv7 musl standard library for this toolchain), which
# runs on 32-bit Raspberry Pi OS and other Debian-based armhf systems:
#   scripts/cross.sh [TARGET...]
# TARGET is any of x86_64-unknown-linux-musl, aarch64-unknown-linux-musl,
# armv7-unknown-linux-gnueabihf (default: all three). On a bare Debian 12 machine it installs
# what it needs (as root, or with sudo): the rustup targets, musl-tools, the Debian cross
# compilers (ring compiles C for the target), qemu-user and `file`. The linkers and the C
# compilers per target are set in .cargo/config.toml.
# Then, per target: the size in bytes (x86_64 within the 4 MB budget), `file` must say the
# right architecture and static (armv7: linked against the armhf glibc), and `collect --json`
# must print one JSON object with `host`, `metrics` and `inventory` objects (natively for x86_64, under qemu-user for the ARM ones).
# Each binary is copied to target/dist/steward-agent-<arch>-linux-<libc> for shipping.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

ALL_TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf)
BUDGET=4000000 # bytes, x86_64 (the same budget as .ci/run)

# One row per target: the Debian package with its C cross compiler, the command that package
# provides, the qemu-user program that runs the binary ("-": it runs natively), what `file`
# says about the architecture, and the name it ships under in target/dist/.
row() {
    case "$1" in
        x86_64-unknown-linux-musl)
            echo "musl-tools|musl-gcc|-|ELF 64-bit LSB .*x86-64|steward-agent-x86_64-linux-musl" ;;
        aarch64-unknown-linux-musl)
            echo "gcc-aarch64-linux-gnu|aarch64-linux-gnu-gcc|qemu-aarch64|ELF 64-bit LSB .*ARM aarch64|steward-agent-aarch64-linux-musl" ;;
        armv7-unknown-linux-gnueabihf)
            echo "gcc-arm-linux-gnueabihf|arm-linux-gnueabihf-gcc|qemu-arm|ELF 32-bit LSB .*ARM, EABI5|steward-agent-armv7-linux-gnueabihf" ;;
    esac
}
column() { row "$1" | cut -d'|' -f"$2"; }
apt_package() { column "$1" 1; }
apt_command() { column "$1" 2; }
qemu_for() { column "$1" 3 | sed 's/^-$//'; }
file_arch() { column "$1" 4; }
dist_name() { column "$1" 5; }

if [ $# -gt 0 ]; then targets=("$@"); else targets=("${ALL_TARGETS[@]}"); fi
for target in "${targets[@]}"; do
    [ -n "$(apt_package "$target")" ] || {
        echo "error: unknown target $target (expected one of: ${ALL_TARGETS[*]})" >&2
        exit 2
    }
done

command -v cargo >/dev/null || { echo "error: cargo not found; install Rust with rustup (rust-toolchain.toml pins the version)" >&2; exit 1; }

# --- setup (each step is skipped when already done) ---------------------------------------

# Debian packages: only what is missing, with one `apt-get update` at most.
is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
need_qemu=false
for target in "${targets[@]}"; do
    command -v "$(apt_command "$target")" >/dev/null || missing+=("$(apt_package "$target")")
    qemu=$(qemu_for "$target")
    if [ -n "$qemu" ] && ! command -v "$qemu" >/dev/null && ! command -v "$qemu-static" >/dev/null; then
        need_qemu=true
    fi
done
command -v file >/dev/null || missing+=(file)
# The JSON check uses python3, else jq.
command -v python3 >/dev/null || command -v jq >/dev/null || missing+=(jq)
if [ ${#missing[@]} -gt 0 ] || $need_qemu; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    # A partial index failure (one unreachable mirror) must not stop the install.
    $SUDO apt-get update -qq || true
    if $need_qemu; then
        # Debian 12 has both; qemu-user gives qemu-aarch64/qemu-arm, qemu-user-static the
        # same programs named *-static.
        for package in qemu-user qemu-user-static; do
            if [ -n "$(apt-cache policy "$package" 2>/dev/null | sed -n 's/^ *Candidate: *//p' | grep -v '(none)')" ]; then
                missing+=("$package")
                break
            fi
        done
    fi
    echo "installing: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

installed_targets=$(rustup target list --installed)
for target in "${targets[@]}"; do
    grep -qx "$target" <<<"$installed_targets" || rustup target add "$target"
done

target_dir=$(cargo metadata --format-version 1 --no-deps --locked \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null \
    || echo "${CARGO_TARGET_DIR:-target}")

# Succeeds if stdin is one JSON object whose `host`, `metrics` and `inventory` are objects.
check_collect_json() {
    if command -v python3 >/dev/null; then
        python3 -c '
import json, sys
report = json.load(sys.stdin)
assert isinstance(report, dict), "not a JSON object"
for key in ("host", "metrics", "inventory"):
    assert isinstance(report.get(key), dict), f"top-level {key!r} is missing or not an object"
'
    else
        jq -e 'type == "object" and (.host | type == "object") and (.metrics | type == "object")
               and (.inventory | type == "object")' >/dev/null
    fi
}

# --- build and check each target -------------------------------------------------------------

# An explicit, empty config: defaults (inventory on) whatever /etc/steward/agent.toml says.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: >"$work/agent.toml"

failures=()
declare -A sizes seconds
for target in "${targets[@]}"; do
    echo
    echo "=== $target"
    start=$(date +%s)
    cargo build --locked --profile agent-release -p steward-agent --target "$target"
    seconds[$target]=$(( $(date +%s) - start ))
    binary="$target_dir/$target/agent-release/steward-agent"
    size=$(stat -c %s "$binary")
    sizes[$target]=$size
    echo "build: ${seconds[$target]} s"
    echo "size: $size bytes"
    if [ "$target" = x86_64-unknown-linux-musl ] && [ "$size" -gt "$BUDGET" ]; then
        echo "FAIL: $target: $size bytes is over the $BUDGET byte budget"
        failures+=("$target: over the size budget")
    fi

    description=$(file -b "$binary")
    echo "file: $description"
    if ! grep -Eq "$(file_arch "$target")" <<<"$description"; then
        echo "FAIL: $target: not built for the expected architecture"
        failures+=("$target: wrong architecture")
    fi
    if [ "$target" = armv7-unknown-linux-gnueabihf ]; then
        # Linked against glibc: the newest glibc symbol version it needs is the oldest glibc
        # it runs on (the armhf package depends on it).
        glibc=$(arm-linux-gnueabihf-objdump -T "$binary" | grep -o 'GLIBC_[0-9.]*' | sort -Vu | tail -n 1)
        echo "needs: ${glibc:-no versioned glibc symbols} ($(arm-linux-gnueabihf-objdump -p "$binary" | awk '/NEEDED/ {print $2}' | paste -sd ' '))"
        if ! grep -q "dynamically linked, interpreter /lib/ld-linux-armhf.so.3" <<<"$description"; then
            echo "FAIL: $target: not linked against the armhf glibc"
            failures+=("$target: linkage")
        fi
    # "statically linked", or "static-pie linked" for a static position-independent executable.
    elif ! grep -Eq "(statically|static-pie) linked" <<<"$description" \
        || grep -Eq "dynamically linked|interpreter" <<<"$description"; then
        echo "FAIL: $target: not statically linked"
        failures+=("$target: not static")
    fi

    runner=()
    qemu=$(qemu_for "$target")
    if [ -n "$qemu" ]; then
        runner=("$(command -v "$qemu" || command -v "$qemu-static")")
        # The glibc build loads its libraries from the cross compiler's armhf sysroot.
        [ "$target" != armv7-unknown-linux-gnueabihf ] || runner+=(-L /usr/arm-linux-gnueabihf)
    fi
    if "${runner[@]}" "$binary" --config "$work/agent.toml" collect --json \
        >"$work/$target.json" 2>"$work/$target.err" \
        && check_collect_json <"$work/$target.json"; then
        echo "collect --json${qemu:+ (under $qemu)}: ok ($(stat -c %s "$work/$target.json") bytes of JSON)"
    else
        echo "FAIL: $target: collect --json${qemu:+ under $qemu} did not print the expected JSON"
        head -c 2000 "$work/$target.err" || true
        failures+=("$target: collect --json")
    fi
    mkdir -p "$target_dir/dist"
    cp "$binary" "$target_dir/dist/$(dist_name "$target")"
done

echo
printf '%-32s %10s %8s  %s\n' target bytes "build s" shipped
for target in "${targets[@]}"; do
    printf '%-32s %10s %8s  %s\n' "$target" "${sizes[$target]}" "${seconds[$target]}" \
        "$target_dir/dist/$(dist_name "$target")"
done

if [ ${#failures[@]} -gt 0 ]; then
    echo
    printf 'FAIL: %s\n' "${failures[@]}"
    exit 1
fi
