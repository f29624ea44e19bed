#!/usr/bin/env bash
# The benchmarks' bundle (scripts/bench/bundle) must stay whole: it is only
# used on the rare machine with no package registry, where a library or
# plugin it lacks would cost that session its device time. Made from this
# build, it must run scale, api-rx-ring and udp-replay (net_pcap, libpcap;
# one engine, then two with a socket and thread each, each engine's thread
# reaping part) while the system's DPDK
# libraries, every other library the bundle carries and DPDK's plugin
# directory are hidden (bind mounts over them in a private mount
# namespace), as on a machine that has none of them. Needs root and
# unshare; exits 77 (skipped) otherwise. Bounded in time.
set -euo pipefail

src=${RINGSOCK_SOURCE_ROOT:?set by meson test}
build=${RINGSOCK_BUILD_ROOT:?set by meson test}
if ((EUID != 0)) || ! command -v unshare >/dev/null; then
    echo "skipped: needs root and unshare"
    exit 77
fi
# EAL loads no plugin from below a world-writable directory (such as /tmp,
# where a checkout may well live): the first of these with no such
# directory above it holds the bundle.
writable_above() {
    local dir=$1
    while [[ $dir != / ]]; do
        [[ -z $(find "$dir" -maxdepth 0 -perm -o+w) ]] || return 0
        dir=$(dirname -- "$dir")
    done
    return 1
}
parent=
for candidate in "$build" "$HOME" /root /var/lib; do
    if [[ -d $candidate ]] && ! writable_above "$candidate"; then
        parent=$candidate
        break
    fi
done
[[ -n $parent ]] || { echo "skipped: no directory without a world-writable one above it"; exit 77; }
work=$(mktemp -d "$parent/ringsock-test-bundle.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$src/scripts/bench/bundle" --from "$build" "$work/bundle"
plugin_dir=$(pkg-config --variable=pmdsdir libdpdk 2>/dev/null || true)
[[ -n $plugin_dir && -d $plugin_dir ]] || plugin_dir=$(find /usr/lib -maxdepth 3 -type d -name 'pmds-*' | head -n 1)
mkdir "$work/empty"

# shellcheck disable=SC2016 # expanded by the inner shell
timeout -k 5 170 unshare -m bash -c '
    set -euo pipefail
    bundle=$1 plugin_dir=$2 empty=$3 src=$4
    mount --bind "$empty" "$plugin_dir"
    for lib in "$bundle"/lib/*; do
        for dir in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu; do
            if [[ -e $dir/${lib##*/} ]]; then mount --bind /dev/null "$dir/${lib##*/}"; fi
        done
    done
    cd "$src"
    scripts/bench/scale --prebuilt "$bundle" --engines 1 --seconds 2 --rounds 1
    scripts/bench/api-rx-ring --prebuilt "$bundle" --frames 64 --seconds 1 --rounds 1
    scripts/bench/api-tx-ring --prebuilt "$bundle" --frames 64 --families 6 --seconds 1 --rounds 1
    scripts/bench/udp-replay --prebuilt "$bundle" --sizes 64 --seconds 2 --rounds 1
    scripts/bench/udp-replay --prebuilt "$bundle" --sizes 64 --seconds 2 --rounds 1 --engines 2
' bash "$work/bundle" "$plugin_dir" "$work/empty" "$src" | tee "$work/out.txt"

grep -qE 'N=1 round 1: testpmd rxonly +[0-9.]+ Mpps +ringsock-sink +[0-9.]+ Mpps' "$work/out.txt" ||
    { echo "FAILED: scale measured nothing from the bundle"; exit 1; }
grep -qE '^api-rx-ring: 64 B: ceiling' "$work/out.txt" ||
    { echo "FAILED: api-rx-ring measured nothing from the bundle"; exit 1; }
grep -qE '^api-tx-ring: +64 B IPv6: ringsock WSASendTo .* [0-9.]+ Mpps .*kernel sendmmsg [0-9.]+ Mpps' "$work/out.txt" ||
    { echo "FAILED: api-tx-ring measured nothing from the bundle"; exit 1; }
grep -qE '^ +64 B +ceiling +[0-9.]+ Mpps +ringsock-sink +[0-9.]+ Mpps \([0-9.]+ %\) +API +[0-9.]+ Mpps \([0-9.]+ %\) +API on the engine +[0-9.]+ Mpps \([0-9.]+ %' \
    "$work/out.txt" && ! grep -q "measured nothing" "$work/out.txt" ||
    { echo "FAILED: udp-replay measured nothing from the bundle (net_pcap, libpcap)"; exit 1; }
grep -qE '^ +API per engine: [1-9][0-9]*,[1-9][0-9]*, on the engines: [1-9][0-9]*,[1-9][0-9]*$' "$work/out.txt" ||
    { echo "FAILED: udp-replay --engines 2 did not receive on both engines, by threads and by pollers"; exit 1; }
echo "the bundle ran scale, api-rx-ring and udp-replay on its own"
