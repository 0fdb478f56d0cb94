#!/usr/bin/env bash
# Debian packages of Steward, built with cargo-deb into target/debian/:
#   scripts/packages.sh [TARGET...]
#   steward-agent_<version>-1_<arch>.deb      the agent per TARGET: amd64
#                                             (x86_64-unknown-linux-musl, static), arm64
#                                             (aarch64-unknown-linux-musl, static), armhf
#                                             (armv7-unknown-linux-gnueabihf, on glibc: the
#                                             `glibc` variant, which depends on libc6)
#   steward-collector_<version>-1_amd64.deb   the collector (glibc, release profile)
# Default TARGETs: x86_64-unknown-linux-musl, plus each ARM target whose agent was built before
# (scripts/cross.sh builds them and installs their toolchains). Every binary is (re)built with
# cargo first, a no-op when it is fresh, so a package never holds a stale binary.
# Man pages and completions come from `steward-assets` (packaging/assets) into
# packaging/assets/out/ (not in git), where the [package.metadata.deb] of agent/ and collector/
# look: a path under target/ would have cargo-deb take it for a build product.
# Prints `dpkg-deb --info` and `--contents` of each package; scripts/packages-check.sh installs
# and checks them.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TERM_COLOR=never

ALL_TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf)
CARGO_DEB_VERSION=3.8.0 # the 3.x release this packaging is written for (cargo install --locked)

command -v cargo >/dev/null || { echo "error: cargo not found; install Rust with rustup (rust-toolchain.toml pins the version)" >&2; exit 1; }

for target in "$@"; do
    case " ${ALL_TARGETS[*]} " in
        *" $target "*) ;;
        *) echo "error: unknown target $target (expected one of: ${ALL_TARGETS[*]})" >&2; exit 2 ;;
    esac
done

# cargo-deb 3.x, installed when missing (or when an older major version is installed).
installed_deb=$(cargo deb --version 2>/dev/null | awk '{print $2}' || true)
if [ "${installed_deb%%.*}" != 3 ]; then
    echo "installing cargo-deb $CARGO_DEB_VERSION (found: ${installed_deb:-none})"
    cargo install --locked cargo-deb --version "$CARGO_DEB_VERSION"
fi
echo "cargo-deb $(cargo deb --version | awk '{print $2}')"

target_dir=$(cargo metadata --format-version 1 --no-deps --locked \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null \
    || echo "${CARGO_TARGET_DIR:-$root/target}")
assets_dir=$root/packaging/assets/out
out_dir=$target_dir/debian

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=(x86_64-unknown-linux-musl)
    for target in aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf; do
        if [ -x "$target_dir/$target/agent-release/steward-agent" ]; then
            targets+=("$target")
        fi
    done
fi
echo "agent targets: ${targets[*]}"

# The top entry of the Debian changelog must name the version the packages get.
version=$(cargo metadata --format-version 1 --no-deps --locked \
    | python3 -c 'import json, sys; print({p["name"]: p["version"] for p in json.load(sys.stdin)["packages"]}["steward-agent"])')
deb_version="$version-1"
changelog_version=$(sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' packaging/debian/changelog)
if [ "$changelog_version" != "$deb_version" ]; then
    echo "error: packaging/debian/changelog starts with $changelog_version, but the packages are $deb_version: add an entry for $deb_version at its top" >&2
    exit 1
fi

echo
echo "=== man pages and completions -> $assets_dir"
rm -rf "$assets_dir"
cargo run --locked -q -p steward-assets -- "$assets_dir" >/dev/null
echo "$(find "$assets_dir/man" -name '*.1' | wc -l) man pages, $(find "$assets_dir/completions" -type f | wc -l) completion files"

built=()

echo
echo "=== steward-collector (release)"
cargo build --locked --release -p steward-collector
# Binaries are stripped by their profiles (strip = true); --no-strip keeps cargo-deb's hands off.
deb=$(cargo deb --locked -p steward-collector --no-build --no-strip -o "$out_dir" | tail -n 1)
built+=("$deb")

for target in "${targets[@]}"; do
    echo
    echo "=== steward-agent ($target, agent-release)"
    if ! cargo build --locked --profile agent-release -p steward-agent --target "$target"; then
        echo "error: building the agent for $target failed; scripts/cross.sh $target installs its toolchain" >&2
        exit 1
    fi
    variant=()
    [ "$target" != armv7-unknown-linux-gnueabihf ] || variant=(--variant glibc)
    deb=$(cargo deb --locked -p steward-agent --target "$target" --profile agent-release \
        "${variant[@]}" --no-build --no-strip -o "$out_dir" | tail -n 1)
    built+=("$deb")
done

for deb in "${built[@]}"; do
    [ -f "$deb" ] || { echo "error: cargo-deb did not print a package path (got: $deb)" >&2; exit 1; }
    echo
    echo "=== $deb"
    dpkg-deb --info "$deb"
    echo "--- contents"
    dpkg-deb --contents "$deb"
done

echo
echo "packages:"
for deb in "${built[@]}"; do
    printf '  %s (%s bytes)\n' "$deb" "$(stat -c %s "$deb")"
done
