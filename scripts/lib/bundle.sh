# shellcheck shell=bash
# scripts/lib/bundle.sh — sourced library: where the benchmarks find their
# programs, from build/ and the installed DPDK, or from a bundle made by
# scripts/bench/bundle (on a machine with no package registry).
#
#   ringsock_use_bundle DIR   checks DIR is a bundle and switches to it: sets
#                             RINGSOCK_BUNDLE to its absolute path and exports
#                             LD_LIBRARY_PATH, RINGSOCK_TESTPMD (the testpmd
#                             to run) and RINGSOCK_TESTPMD_EAL_ARGS (its -d
#                             plugin arguments), which scripts/memif-gen and
#                             scripts/lib/memif-receivers.sh honour. Exits 2
#                             with a message when DIR is no bundle.
#   ringsock_program NAME     the path of ringsock program NAME: the
#                             bundle's, or build/'s ($RINGSOCK_BUILD_DIR
#                             when set)
#   ringsock_program_settings NAME [EAL_ARG...]
#                             the --set arguments NAME needs for the
#                             bundle's plugins, one word a line (none
#                             without a bundle: EAL loads the installed
#                             plugins itself), with EAL_ARGs in the same
#                             eal.extra_args (a later --set would replace it)
#   ringsock_prepare [BUNDLE] the bundle, or packages and build/ (below)

ringsock_use_bundle() {
    RINGSOCK_BUNDLE=$(cd -- "$1" 2>/dev/null && pwd -P) || { echo "no bundle at $1" >&2; exit 2; }
    if [[ ! -x $RINGSOCK_BUNDLE/bin/dpdk-testpmd || ! -d $RINGSOCK_BUNDLE/plugins ]]; then
        echo "$1 is not a bundle (make one with scripts/bench/bundle)" >&2
        exit 2
    fi
    # EAL loads no plugin from below a world-writable directory ("directory
    # path /tmp is world-writable and insecure"): say so before it does.
    local dir=$RINGSOCK_BUNDLE/plugins
    while [[ $dir != / ]]; do
        if [[ -n $(find "$dir" -maxdepth 0 -perm -o+w) ]]; then
            echo "the bundle lies below $dir, which anyone may write to: EAL refuses plugins there;" \
                "move the bundle (into the repository, for instance)" >&2
            exit 2
        fi
        dir=$(dirname -- "$dir")
    done
    local plugin args=
    while read -r plugin; do
        args+="${args:+ }-d $RINGSOCK_BUNDLE/plugins/$plugin"
    done <"$RINGSOCK_BUNDLE/plugins/for-dpdk-testpmd"
    export RINGSOCK_BUNDLE LD_LIBRARY_PATH=$RINGSOCK_BUNDLE/lib RINGSOCK_TESTPMD=$RINGSOCK_BUNDLE/bin/dpdk-testpmd
    export RINGSOCK_TESTPMD_EAL_ARGS=$args
}

ringsock_program() {
    if [[ -n ${RINGSOCK_BUNDLE:-} ]]; then
        echo "$RINGSOCK_BUNDLE/bin/$1"
        return
    fi
    local build
    build=${RINGSOCK_BUILD_DIR:-$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)/build}
    case "$1" in
    ringsock-sink | ringsock-udp-gen) echo "$build/dataplane/tools/$1" ;;
    ringsock-bench-*) echo "$build/api/bench/$1" ;;
    *) echo "$build/api/tools/$1" ;;
    esac
}

ringsock_program_settings() {
    local program=$1 plugin arg list=
    shift
    if [[ -n ${RINGSOCK_BUNDLE:-} ]]; then
        while read -r plugin; do
            list+="${list:+,}\"-d\",\"$RINGSOCK_BUNDLE/plugins/$plugin\""
        done <"$RINGSOCK_BUNDLE/plugins/for-$program"
    fi
    for arg in "$@"; do list+="${list:+,}\"$arg\""; done
    [[ -z $list ]] || printf '%s\n' --set "eal.extra_args=[$list]"
}

# ringsock_prepare [BUNDLE]: with a bundle, switches to it and installs and
# builds nothing; without, installs the packages and builds build/ as
# scripts/demo does (needs scripts/lib/deps.sh and build.sh sourced),
# printing the build's output and exiting 1 if it fails.
ringsock_prepare() {
    if [[ -n ${1:-} ]]; then
        ringsock_use_bundle "$1"
        return
    fi
    ringsock_install_deps
    local log
    if ! log=$(ringsock_build build 2>&1); then
        echo "$log" >&2
        exit 1
    fi
}
