# shellcheck shell=bash
# scripts/lib/bundle.sh — sourced library: running the benchmarks from a
# bundle made by scripts/bench/bundle (on a machine with no package
# registry), instead of from build/ and the installed DPDK.
#
#   ringsock_use_bundle DIR   checks DIR is a bundle; sets RINGSOCK_BUNDLE to
#                             its absolute path and exports LD_LIBRARY_PATH
#                             and RINGSOCK_TESTPMD (scripts/lib/memif-receivers.sh)
#                             so its libraries and testpmd are the ones used.
#                             Exits 2 with a message when DIR is no bundle.
#   bundle_eal_args PROGRAM   EAL's -d arguments for the bundle's plugins
#                             that PROGRAM does not link, one word a line
#   bundle_profile_setting PROGRAM
#                             the same as one ringsock profile override
#                             (eal.extra_args=[...]), for --set

ringsock_use_bundle() {
    RINGSOCK_BUNDLE=$(cd -- "$1" 2>/dev/null && pwd -P) || { echo "no bundle at $1" >&2; exit 2; }
    if [[ ! -x $RINGSOCK_BUNDLE/bin/dpdk-testpmd || ! -d $RINGSOCK_BUNDLE/plugins ]]; then
        echo "$1 is not a bundle (make one with scripts/bench/bundle)" >&2
        exit 2
    fi
    export LD_LIBRARY_PATH=$RINGSOCK_BUNDLE/lib RINGSOCK_TESTPMD=$RINGSOCK_BUNDLE/bin/dpdk-testpmd
}

bundle_eal_args() {
    local plugin
    while read -r plugin; do
        printf '%s\n' -d "$RINGSOCK_BUNDLE/plugins/$plugin"
    done <"$RINGSOCK_BUNDLE/plugins/for-$1"
}

bundle_profile_setting() {
    local plugin list=
    while read -r plugin; do
        list+="${list:+,}\"-d\",\"$RINGSOCK_BUNDLE/plugins/$plugin\""
    done <"$RINGSOCK_BUNDLE/plugins/for-$1"
    printf 'eal.extra_args=[%s]\n' "$list"
}
