#!/usr/bin/env bash
# Fuzz smoke test for CI: builds every cargo-fuzz target in fuzz/ with the pinned toolchain
# (rust-toolchain.toml; RUSTC_BOOTSTRAP=1 stands in for nightly), then runs each one: it
# replays the committed corpus (fuzz/corpus/<target>, regression inputs included) and fuzzes on
# until FUZZ_SECONDS have passed. Fails on any crash, panic, timeout or OOM; the input that
# failed is left under $FUZZ_OUT/artifacts/<target>/.
#
# Environment:
#   FUZZ_SECONDS  seconds per target, corpus replay included (default 15)
#   FUZZ_JOBS     targets run at once (default 2)
#   FUZZ_OUT      where new corpus entries, artifacts and logs go (default: a temp dir); the
#                 committed corpus under fuzz/corpus/ is only read
#   FUZZ_TARGETS  space-separated subset of targets (default: all of `cargo fuzz list`)
#   FUZZ_PROFILE  dev (default) or release. dev builds in a third of the CPU time of release
#                 (the cold build dominates this script), still with overflow checks and
#                 AddressSanitizer; a release build fuzzes 10-50x faster, for longer runs.
set -euo pipefail

cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1
FUZZ_SECONDS=${FUZZ_SECONDS:-15}
FUZZ_JOBS=${FUZZ_JOBS:-2}
CARGO_FUZZ_VERSION=0.13.2
# ASan needs no nightly-only std rebuild on x86_64 Linux; the sanitizer runtime ships with
# the stable toolchain.
SANITIZER=${FUZZ_SANITIZER:-address}

if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    echo "fuzz-smoke: installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

out=${FUZZ_OUT:-$(mktemp -d -t steward-fuzz.XXXXXX)}
mkdir -p "$out"
echo "fuzz-smoke: output in $out"

# Overflow checks on in both profiles (-a for release), so arithmetic overflow is a crash here
# as it is in the debug builds the tests use.
case ${FUZZ_PROFILE:-dev} in
    dev) profile_flags=(--dev) profile_dir=debug ;;
    release) profile_flags=(-O -a) profile_dir=release ;;
    *) echo "fuzz-smoke: FUZZ_PROFILE must be dev or release" >&2; exit 2 ;;
esac

start=$(date +%s)
cargo fuzz build "${profile_flags[@]}" --sanitizer "$SANITIZER"
echo "fuzz-smoke: built in $(( $(date +%s) - start )) s"

bin_dir=fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/$profile_dir
read -r -a targets <<<"${FUZZ_TARGETS:-$(cargo fuzz list | tr '\n' ' ')}"

run_one() {
    local target=$1
    mkdir -p "$out/corpus/$target" "$out/artifacts/$target"
    # New inputs go to the first directory only; fuzz/corpus/<target> is read, not written.
    # The binary built above, run directly: `cargo fuzz run` would rebuild first, and two
    # of them at once wait on each other's build lock.
    if "$bin_dir/$target" "$out/corpus/$target" "fuzz/corpus/$target" \
        -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$out/artifacts/$target/" -print_final_stats=1 \
        >"$out/$target.log" 2>&1; then
        echo "fuzz-smoke: ok     $target ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/$target.log" | grep -o '[0-9]*$') runs)"
    else
        echo "fuzz-smoke: FAILED $target, log: $out/$target.log, input: $out/artifacts/$target/"
        tail -n 40 "$out/$target.log"
        return 1
    fi
}

failed=0
pids=()
names=()
for target in "${targets[@]}"; do
    run_one "$target" &
    pids+=($!)
    names+=("$target")
    if (( ${#pids[@]} >= FUZZ_JOBS )); then
        wait "${pids[0]}" || failed=1
        pids=("${pids[@]:1}")
        names=("${names[@]:1}")
    fi
done
for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
done

echo "fuzz-smoke: ${#targets[@]} targets in $(( $(date +%s) - start )) s"
if (( failed )); then
    echo "fuzz-smoke: a target failed"
    exit 1
fi
